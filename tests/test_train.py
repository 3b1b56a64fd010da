"""fit / evaluate / History on small synthetic data."""

import json

import numpy as np
import pytest

from tinygrad_mnist import SGD, CrossEntropy, MSELoss, SoftmaxCrossEntropy, mlp
from tinygrad_mnist.data import DataLoader, Dataset
from tinygrad_mnist.train import History, TrainingDivergedError, evaluate, fit


def quadrant_dataset(n=400, seed=0):
    """4×4 images whose label (0..3) is the brightest 2×2 quadrant: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n)
    images = rng.integers(0, 60, size=(n, 4, 4)).astype(np.uint8)
    for i, lab in enumerate(labels):
        r, c = divmod(int(lab), 2)
        images[i, 2 * r:2 * r + 2, 2 * c:2 * c + 2] += 180
    return Dataset(images, labels.astype(np.int64), name="quadrants", num_classes=4)


def make(seed=0, output="logits"):
    model = mlp((16, 8, 4), "tanh", output=output, init="glorot_uniform", seed=seed)
    return model, SGD(model.parameters(), lr=0.5)


def test_fit_records_every_list_and_learns():
    train, val, test = quadrant_dataset(400, 0), quadrant_dataset(100, 1), quadrant_dataset(100, 2)
    model, opt = make()
    h = fit(model, SoftmaxCrossEntropy(), opt, train, val=val, test=test, epochs=4, batch_size=32, progress=False)
    assert h.epochs == 4
    for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
                 "epoch_seconds"):
        assert len(getattr(h, name)) == 4, name
    assert [len(b) for b in h.batch_loss] == [13] * 4  # ceil(400 / 32)
    assert h.train_loss[0] == pytest.approx(np.mean(h.batch_loss[0]))
    assert h.train_accuracy[-1] == pytest.approx(np.mean(h.batch_accuracy[-1]))
    assert h.train_loss[-1] < h.train_loss[0]
    assert h.test_accuracy[-1] > 0.9
    assert all(0.0 <= a <= 1.0 for a in h.val_accuracy)
    assert h.total_seconds >= sum(h.epoch_seconds) * 0.99


def test_best_epoch_and_its_test_val_pair():
    h = History(val_accuracy=[0.5, 0.9, 0.9, 0.7], test_accuracy=[0.4, 0.8, 0.85, 0.6],
                train_loss=[1, 1, 1, 1])
    assert h.best_epoch == 2  # earliest of the tie
    assert h.best_test_val == (0.8, 0.9)
    assert History().best_epoch is None


def test_history_json_round_trip(tmp_path):
    model, opt = make()
    h = fit(model, SoftmaxCrossEntropy(), opt, quadrant_dataset(64), val=quadrant_dataset(32, 1),
            epochs=2, batch_size=16, progress=False, config={"lr": 0.5, "seed": 0})
    path = h.save(tmp_path / "h" / "history.json")
    raw = json.loads(path.read_text())
    assert raw["best_epoch"] == h.best_epoch and raw["config"] == {"lr": 0.5, "seed": 0}
    back = History.load(path)
    assert back.train_loss == h.train_loss and back.batch_accuracy == h.batch_accuracy
    assert back.val_accuracy == h.val_accuracy and back.config == h.config


def test_same_seed_same_history_different_seed_different_order():
    def run(seed):
        model, opt = make(seed=0)
        return fit(model, SoftmaxCrossEntropy(), opt, quadrant_dataset(128), epochs=2, batch_size=16,
                   seed=seed, progress=False)

    assert run(3).batch_loss == run(3).batch_loss
    assert run(3).batch_loss != run(4).batch_loss


def test_sum_reduction_is_reported_as_mean_per_example():
    data = quadrant_dataset(64)
    model, _ = make(output="softmax")
    mean_loss, acc = evaluate(model, CrossEntropy(reduction="mean"), data)
    sum_loss, acc2 = evaluate(model, CrossEntropy(reduction="sum"), data)
    assert sum_loss == pytest.approx(mean_loss, rel=1e-6) and acc == acc2
    mse_mean, _ = evaluate(model, MSELoss(), data)
    mse_sum, _ = evaluate(model, MSELoss(reduction="sum"), data)
    assert mse_sum == pytest.approx(mse_mean, rel=1e-6)


def test_sum_reduction_with_lr_equals_mean_reduction_with_lr_times_batch():
    data = quadrant_dataset(64)
    a, _ = make(seed=1)
    b, _ = make(seed=1)
    ha = fit(a, SoftmaxCrossEntropy("sum"), SGD(a.parameters(), lr=0.01), data, epochs=1, batch_size=16,
             shuffle=False, progress=False)
    hb = fit(b, SoftmaxCrossEntropy("mean"), SGD(b.parameters(), lr=0.16), data, epochs=1, batch_size=16,
             shuffle=False, progress=False)
    np.testing.assert_allclose(ha.batch_loss, hb.batch_loss, rtol=1e-5)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(pa.data, pb.data, rtol=1e-4, atol=1e-6)


def test_evaluate_restores_train_mode_and_uses_eval_mode():
    seen = []
    model, _ = make()

    class Spy(SoftmaxCrossEntropy):
        def forward(self, logits, target):
            seen.append(model.training)
            return super().forward(logits, target)

    model.train()
    evaluate(model, Spy(), quadrant_dataset(40), batch_size=16)
    assert seen == [False, False, False] and model.training


def test_divergence_stops_with_epoch_and_batch_named():
    model = mlp((16, 32, 4), "relu", seed=0)  # unbounded activations overflow float32
    with np.errstate(all="ignore"), \
            pytest.raises(TrainingDivergedError, match=r"became (nan|inf) at epoch 1, batch [2-4] of 4"):
        fit(model, SoftmaxCrossEntropy(), SGD(model.parameters(), lr=1e30), quadrant_dataset(64),
            epochs=2, batch_size=16, progress=False)


def test_callbacks_can_stop_and_log_prints_the_table():
    lines = []
    model, opt = make()
    h = fit(model, SoftmaxCrossEntropy(), opt, quadrant_dataset(64), test=quadrant_dataset(32, 1),
            epochs=5, batch_size=16, progress=False, log=lines.append,
            callbacks=[lambda epoch, hist: epoch == 2])
    assert h.epochs == 2
    assert lines[0].split()[:3] == ["epoch", "train", "loss"] and "test acc" in lines[0]
    assert lines[2].split()[0] == "2"


def test_fit_accepts_a_loader_and_checks_arguments():
    model, opt = make()
    loader = DataLoader(quadrant_dataset(64), batch_size=32, seed=1)
    assert fit(model, SoftmaxCrossEntropy(), opt, loader, epochs=1, progress=False).epochs == 1
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        fit(model, SoftmaxCrossEntropy(), opt, loader, epochs=0)
    with pytest.raises(TypeError, match="expected a Dataset or a DataLoader"):
        fit(model, SoftmaxCrossEntropy(), opt, np.zeros((4, 16)), epochs=1)


def test_float64_model_gets_float64_batches():
    model = mlp((16, 4), seed=0, dtype=np.float64)
    h = fit(model, SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1), quadrant_dataset(32), epochs=1,
            batch_size=8, progress=False)
    assert h.epochs == 1 and model.dtype == np.float64
