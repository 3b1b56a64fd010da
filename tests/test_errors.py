"""Bad input: one case per row, each checking the exception type and that the message names
the problem (the layer or argument, what was expected, what was received)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from tinygrad_mnist import (
    SGD,
    Adam,
    BatchNorm1d,
    Conv2d,
    CrossEntropy,
    Dropout,
    LayerDesc,
    Linear,
    MaxPool2d,
    MLPSpec,
    MSELoss,
    ReLU,
    RMSprop,
    Sequential,
    SoftmaxCrossEntropy,
    activation_by_name,
    build,
    build_mlp,
    initializer,
    optimizer_by_name,
)
from tinygrad_mnist.data import (
    DataLoader,
    Dataset,
    IDXFormatError,
    MNISTNotFoundError,
    find_mnist,
    load_dataset,
    load_idx_dir,
    load_png_folder,
    read_idx,
    train_val_split,
    write_idx,
)
from tinygrad_mnist.data.mnist import MNIST_FILES
from tinygrad_mnist.models import CourseCNNSpec
from tinygrad_mnist.nn import NonFiniteError
from tinygrad_mnist.optim import schedule_by_name
from tinygrad_mnist.train import fit

F32 = np.float32


def ones(*shape, dtype=F32):
    return np.ones(shape, dtype=dtype)


def with_nan(shape, index, value=np.nan):
    x = np.zeros(shape, dtype=F32)
    x[index] = value
    return x


def empty_dataset():
    return Dataset(np.zeros((0, 4, 4), np.uint8), np.zeros(0, np.int64), "empty")


def small_dataset(n=8):
    rng = np.random.default_rng(0)
    return Dataset(rng.integers(0, 255, (n, 4, 4), dtype=np.uint8), rng.integers(0, 3, n), "small")


def unchained():
    return Sequential(Linear(4, 5), ReLU(), Linear(6, 3))


# (id, call, exception type, regex the message must match)
CASES = [
    # -- a layer's input: shape, dtype, rank; sizes that do not chain ------------------------
    ("linear-shape", lambda: Linear(4, 3).forward(ones(2, 5)), ValueError,
     r"Linear: expected input of shape \(n, 4\), got shape \(2, 5\)"),
    ("linear-rank", lambda: Linear(4, 3).forward(ones(4)), ValueError,
     r"Linear: expected a 2-d input, got shape \(4,\)"),
    ("linear-int-dtype", lambda: Linear(4, 3).forward(ones(2, 4, dtype=np.int64)), TypeError,
     r"Linear: expected float32 or float64 input, got int64"),
    ("linear-mixed-dtype", lambda: Linear(4, 3).forward(ones(2, 4, dtype=np.float64)), TypeError,
     r"Linear: input dtype float64 does not match parameter dtype float32"),
    ("linear-not-array", lambda: Linear(4, 3).forward([[1.0] * 4]), TypeError,
     r"Linear: expected a numpy ndarray, got list"),
    ("conv-channels", lambda: Conv2d(3, 4, 3).forward(ones(2, 1, 8, 8)), ValueError,
     r"Conv2d: expected 3 input channels \(N, 3, H, W\), got shape \(2, 1, 8, 8\)"),
    ("conv-rank", lambda: Conv2d(1, 4, 3).forward(ones(2, 8, 8)), ValueError,
     r"Conv2d: expected a 4-d input \(N, 1, H, W\), got shape \(2, 8, 8\)"),
    ("conv-kernel-too-big", lambda: Conv2d(1, 2, 5).forward(ones(1, 1, 3, 3)), ValueError,
     r"Conv2d: kernel \(5, 5\) is larger than the input: spatial size \(3, 3\)"),
    ("pool-rank", lambda: MaxPool2d(2).forward(ones(4, 4)), ValueError, r"MaxPool2d: expected a 4-d input"),
    ("batchnorm-features", lambda: BatchNorm1d(3).forward(ones(4, 5)), ValueError,
     r"BatchNorm1d: expected input of shape \(n, 3\) or \(n, 3, L\), got \(4, 5\)"),
    ("layers-do-not-chain", lambda: unchained().forward(ones(2, 4)), ValueError,
     r"Sequential layer 2 \(Linear\): Linear: expected input of shape \(n, 6\), got shape \(2, 5\)"),
    ("cnn-input-size", lambda: build(CourseCNNSpec().layers()).forward(ones(1, 1, 20, 20)), ValueError,
     r"Sequential layer 9 \(Linear\): Linear: expected input of shape \(n, 1568\), got shape \(1, 800\)"),
    ("build-missing-argument", lambda: build([LayerDesc.make("linear", in_features=3)]), ValueError,
     r"build: layer 'linear' is missing the argument 'out_features'"),
    # -- targets ---------------------------------------------------------------------------
    ("labels-out-of-range", lambda: SoftmaxCrossEntropy().forward(ones(2, 4), np.array([1, 4])), ValueError,
     r"SoftmaxCrossEntropy: labels must lie in \[0, 4\), got range \[1, 4\]"),
    ("labels-negative", lambda: SoftmaxCrossEntropy().forward(ones(2, 4), np.array([-1, 0])), ValueError,
     r"labels must lie in \[0, 4\), got range \[-1, 0\]"),
    ("labels-not-integer", lambda: SoftmaxCrossEntropy().forward(ones(2, 4), np.array([1.0, 2.0])), TypeError,
     r"SoftmaxCrossEntropy: integer labels expected for a 1-d target, got float64"),
    ("soft-targets-not-summing-to-one", lambda: SoftmaxCrossEntropy().forward(
        ones(2, 3), np.array([[0.5, 0.5, 0.0], [0.5, 0.4, 0.0]], F32)), ValueError,
     r"SoftmaxCrossEntropy: soft targets must be probabilities .*row 1 sums to 0\.9"),
    ("soft-targets-negative", lambda: CrossEntropy().forward(
        np.full((1, 2), 0.5, F32), np.array([[1.5, -0.5]], F32)), ValueError,
     r"CrossEntropy: soft targets must be probabilities .*row 0 sums to 1 with minimum -0\.5"),
    ("target-shape", lambda: MSELoss().forward(ones(2, 3), ones(2, 4)), ValueError,
     r"MSELoss: expected target of shape \(2, 3\) or \(2,\), got \(2, 4\)"),
    ("empty-batch", lambda: SoftmaxCrossEntropy().forward(ones(0, 10), np.zeros(0, np.int64)), ValueError,
     r"SoftmaxCrossEntropy: empty batch: prediction of shape \(0, 10\) holds no examples"),
    ("no-classes", lambda: MSELoss().forward(ones(1, 0), ones(1, 0)), ValueError,
     r"MSELoss: prediction of shape \(1, 0\) has no classes \(C = 0\)"),
    ("label-count-differs-loss", lambda: SoftmaxCrossEntropy().forward(ones(3, 4), np.array([0, 1])), ValueError,
     r"SoftmaxCrossEntropy: expected 3 labels, got 2"),
    ("label-count-differs-dataset", lambda: Dataset(np.zeros((5, 2, 2), np.uint8), np.zeros(4, np.int64), "d"),
     ValueError, r"Dataset 'd': expected labels of shape \(5,\) to match 5 images, got \(4,\)"),
    ("dataset-labels-float", lambda: Dataset(np.zeros((2, 2, 2), np.uint8), np.zeros(2), "d"), TypeError,
     r"Dataset 'd': labels must be integers, got dtype float64"),
    ("dataset-labels-range", lambda: Dataset(np.zeros((2, 2, 2), np.uint8), np.array([0, 12]), "d"), ValueError,
     r"Dataset 'd': labels must lie in \[0, 10\), found range \[0, 12\]"),
    # -- NaN or infinite values --------------------------------------------------------------
    ("nan-input-linear", lambda: Linear(4, 3).forward(with_nan((2, 4), (1, 2))), NonFiniteError,
     r"Linear: input of shape \(2, 4\) holds 1 non-finite value\(s\) \(NaN\), first at index \(1, 2\)"),
    ("inf-input-conv", lambda: Conv2d(1, 2, 3).forward(with_nan((1, 1, 4, 4), (0, 0, 3, 3), np.inf)), NonFiniteError,
     r"Conv2d: input of shape \(1, 1, 4, 4\) holds 1 non-finite value\(s\) \(inf\)"),
    ("minus-inf-input-relu", lambda: ReLU().forward(with_nan((3,), 0, -np.inf)), ValueError, r"ReLU: .*\(inf\)"),
    ("nan-input-batchnorm", lambda: BatchNorm1d(2).forward(with_nan((3, 2), (2, 1))), ValueError,
     r"BatchNorm1d: input of shape \(3, 2\) holds 1 non-finite"),
    ("nan-logits-loss", lambda: SoftmaxCrossEntropy().forward(with_nan((2, 3), (0, 0)), np.array([0, 1])), ValueError,
     r"SoftmaxCrossEntropy: input .* \(NaN\)"),
    ("nan-target-mse", lambda: MSELoss().forward(ones(2, 2), with_nan((2, 2), (1, 1))), ValueError,
     r"MSELoss target: input of shape \(2, 2\) holds 1 non-finite"),
    ("nan-in-model", lambda: build_mlp(MLPSpec((4, 3, 2))).forward(with_nan((1, 4), (0, 3))), ValueError,
     r"Sequential: input of shape \(1, 4\) holds 1 non-finite value\(s\) \(NaN\), first at index \(0, 3\)"),
    # -- hyperparameters -----------------------------------------------------------------------
    ("lr-zero", lambda: SGD(Linear(2, 2).parameters(), lr=0.0), ValueError,
     r"SGD: learning rate must be positive and finite, got 0.0"),
    ("lr-negative", lambda: Adam(Linear(2, 2).parameters(), lr=-1e-3), ValueError,
     r"Adam: learning rate must be positive and finite, got -0.001"),
    ("lr-inf", lambda: SGD(Linear(2, 2).parameters(), lr=float("inf")), ValueError,
     r"SGD: learning rate must be positive and finite, got inf"),
    ("lr-nan", lambda: RMSprop(Linear(2, 2).parameters(), lr=float("nan")), ValueError,
     r"RMSprop: learning rate must be positive and finite, got nan"),
    ("lr-string", lambda: SGD(Linear(2, 2).parameters(), lr="0.1"), TypeError, r"SGD: learning rate must be a number"),
    ("momentum-above-one", lambda: SGD(Linear(2, 2).parameters(), lr=0.1, momentum=2), ValueError,
     r"SGD: momentum must be non-negative and below 1 \(in \[0, 1\)\), got 2"),
    ("momentum-one", lambda: SGD(Linear(2, 2).parameters(), lr=0.1, momentum=1.0), ValueError,
     r"SGD: momentum must be .* got 1.0"),
    ("momentum-negative-rmsprop", lambda: RMSprop(Linear(2, 2).parameters(), momentum=-0.1), ValueError,
     r"RMSprop: momentum must be non-negative and below 1"),
    ("dropout-p-above-one", lambda: Dropout(1.5), ValueError, r"Dropout: p must be a probability in \[0, 1\], got 1.5"),
    ("dropout-p-negative", lambda: Dropout(-0.1), ValueError, r"Dropout: p must be a probability"),
    ("epochs-zero", lambda: fit(build_mlp(MLPSpec((16, 3))), SoftmaxCrossEntropy(), SGD(
        build_mlp(MLPSpec((16, 3))).parameters(), lr=0.1), small_dataset(), epochs=0), ValueError,
     r"fit: epochs must be at least 1, got 0"),
    ("train-split-empty", lambda: fit(build_mlp(MLPSpec((16, 3))), SoftmaxCrossEntropy(), SGD(
        build_mlp(MLPSpec((16, 3))).parameters(), lr=0.1), empty_dataset(), epochs=1), ValueError,
     r"fit: the training data is empty"),
    ("val-size-leaves-train-empty", lambda: train_val_split(small_dataset(8), val_size=8), ValueError,
     r"train_val_split: val_size must leave at least one example on each side of a split of 8 examples"),
    ("val-size-zero", lambda: train_val_split(small_dataset(8), val_size=0), ValueError,
     r"val_size must leave at least one example"),
    ("batch-size-zero", lambda: DataLoader(small_dataset(), batch_size=0), ValueError,
     r"DataLoader: batch_size must be in \[1, inf\], got 0"),
    ("unknown-optimizer", lambda: optimizer_by_name("adamax", Linear(2, 2).parameters()), ValueError,
     r"unknown optimiser 'adamax'; choose one of \['adagrad', 'adam', 'adamw', 'rmsprop', 'sgd'\]"),
    ("unknown-activation", lambda: activation_by_name("softsign"), ValueError,
     r"unknown activation 'softsign'; choose one of \[.*'relu'.*'sigmoid'.*'tanh'"),
    ("unknown-activation-in-spec", lambda: MLPSpec((4, 2), activation="swish"), ValueError,
     r"MLPSpec: unknown activation 'swish'; choose one of"),
    ("unknown-initializer", lambda: initializer("orthogonal"), ValueError,
     r"unknown initialiser 'orthogonal'; choose one of \[.*'glorot_uniform'.*'he_uniform'"),
    ("unknown-layer-kind", lambda: build([LayerDesc.make("lstm")]), ValueError,
     r"build: unknown layer kind 'lstm'; choose one of \('conv2d'"),
    ("unknown-schedule", lambda: schedule_by_name("linear", SGD(Linear(2, 2).parameters(), lr=0.1)), ValueError,
     r"unknown schedule 'linear'; choose one of \['cosine', 'step', 'warmup', 'none'\]"),
]


@pytest.mark.parametrize("call, exc, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_named_error(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# -- data files and folders ------------------------------------------------------------------
def write_tiny_idx(root, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        write_idx(root / MNIST_FILES[f"{split}_images"], rng.integers(0, 256, (n, 3, 3), dtype=np.uint8))
        write_idx(root / MNIST_FILES[f"{split}_labels"], rng.integers(0, 10, n).astype(np.uint8))
    return root


def test_missing_idx_file_is_named(tmp_path):
    root = write_tiny_idx(tmp_path / "d")
    (root / MNIST_FILES["test_labels"]).unlink()
    with pytest.raises(MNISTNotFoundError, match=r"missing t10k-labels-idx1-ubyte.gz"):
        load_idx_dir(root)


def test_truncated_idx_file_is_named(tmp_path):
    path = tmp_path / "x.idx"
    write_idx(path, np.zeros((4, 3, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(IDXFormatError, match=r"x.idx: truncated: expected 36 payload bytes for shape \(4, 3, 3\)"):
        read_idx(path)


def test_corrupt_gzip_idx_file_is_named(tmp_path):
    path = tmp_path / "x.idx.gz"
    data = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02ab")
    path.write_bytes(data[:12] + b"garbage" + data[19:])
    with pytest.raises(IDXFormatError, match=r"x.idx.gz: corrupt gzip data"):
        read_idx(path)


def test_wrong_magic_idx_file_is_named(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(IDXFormatError, match=r"x.idx: bad magic: expected 4 bytes starting 00 00, found 50 4b 03 04"):
        read_idx(path)


def test_idx_labels_that_do_not_match_the_images_are_named(tmp_path):
    root = write_tiny_idx(tmp_path / "d")
    write_idx(root / MNIST_FILES["train_labels"], np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match=r"expected labels of shape \(6,\) to match 6 images, got \(5,\)"):
        load_idx_dir(root)


def _png(path, size=(4, 4), value=0):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)


def test_png_folder_with_a_missing_class_is_named(tmp_path):
    pytest.importorskip("PIL")
    for split in ("Train", "Test"):
        for label in (0, 1):
            _png(tmp_path / "p" / split / str(label) / "a.png")
    _png(tmp_path / "p" / "Train" / "2" / "a.png")
    with pytest.raises(ValueError, match=r"missing classes: class 2 has no folder in Test/"):
        load_png_folder(tmp_path / "p")


def test_png_folder_with_an_empty_class_is_named(tmp_path):
    pytest.importorskip("PIL")
    for split in ("Train", "Test"):
        _png(tmp_path / "p" / split / "0" / "a.png")
    (tmp_path / "p" / "Test" / "1").mkdir()
    with pytest.raises(ValueError, match=r"class 1 is missing: .*Test/1 holds no .png files"):
        load_png_folder(tmp_path / "p")


def test_png_folder_with_an_unreadable_image_is_named(tmp_path):
    pytest.importorskip("PIL")
    for split in ("Train", "Test"):
        _png(tmp_path / "p" / split / "0" / "a.png")
    (tmp_path / "p" / "Train" / "0" / "b.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"unreadable image .*Train/0/b.png"):
        load_png_folder(tmp_path / "p")


def test_data_directory_that_does_not_exist_is_named(tmp_path):
    missing = tmp_path / "no-such-dir"
    with pytest.raises(FileNotFoundError,
                       match=r"no-such-dir.*is neither 'mnist', 'digits', 'fashion-mnist' nor an existing directory"):
        load_dataset(missing)
    with pytest.raises(MNISTNotFoundError, match=r"no-such-dir \(data_dir argument\): does not exist"):
        find_mnist(missing)
    with pytest.raises(FileNotFoundError, match=r"PNG folder .*no-such-dir: the directory does not exist"):
        load_png_folder(missing)


def test_a_dataset_that_is_not_mnist_is_named_by_its_folder(tmp_path):
    from tinygrad_mnist.data.mnist import source_name

    write_tiny_idx(tmp_path / "fashion")
    assert source_name(tmp_path / "fashion") == "fashion"
    assert load_dataset(tmp_path / "fashion")[0].name == "fashion-train"
    write_tiny_idx(tmp_path / "root" / "FashionMNIST" / "raw")
    assert load_dataset(tmp_path / "root")[0].name == "FashionMNIST-train"
    assert load_dataset("fashion-mnist", data_dir=tmp_path / "root")[1].name == "FashionMNIST-test"
    assert source_name(tmp_path / "root") == "FashionMNIST"


def test_torchvision_mnist_layout_is_found_from_its_root(tmp_path):
    raw = write_tiny_idx(tmp_path / "tv" / "MNIST" / "raw")
    assert find_mnist(tmp_path / "tv") == raw.resolve()
    train, test = load_dataset("mnist", data_dir=tmp_path / "tv", download=False)
    assert (len(train), len(test)) == (6, 4)
