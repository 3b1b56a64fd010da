"""Checkpoints: everything a run needs survives save/load, writes are atomic, a bad file is
named, and a training process killed with SIGKILL resumes to the same bits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from tinygrad_mnist import SGD, Adam, CourseCNNSpec, LayerDesc, MLPSpec, RMSprop, SoftmaxCrossEntropy, build, build_mlp
from tinygrad_mnist.checkpoint import (
    CheckpointError,
    atomic_write,
    describe_model,
    layers_from_json,
    layers_to_json,
    load,
    save,
)
from tinygrad_mnist.data import write_idx
from tinygrad_mnist.data.mnist import MNIST_FILES
from tinygrad_mnist.optim import schedule_by_name
from tinygrad_mnist.train import CHECKPOINT_NAME, History, TrainingDivergedError, TrainingInterrupted, fit

from .conftest import REPO, square_images


def blobs(n=96, size=8, seed=0, classes=4):
    """uint8 images whose class is a bright square at a class-dependent corner (learnable)."""
    return square_images(n, size, seed, classes, per_row=2, value=200, name="blobs", num_classes=classes)


CNN_LAYERS = CourseCNNSpec(channels=(2, 3), image_size=8, residual_depth=2, num_classes=4).layers()
RICH_LAYERS = (CNN_LAYERS[:1] + (LayerDesc.make("batchnorm2d", num_features=2),) + CNN_LAYERS[1:-1]
               + (LayerDesc.make("dropout", p=0.3), CNN_LAYERS[-1]))


def strip(h: History) -> dict:
    d = h.to_dict()
    for k in ("epoch_seconds", "total_seconds"):
        d.pop(k)
    return d


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


def run(ckdir, epochs, resume=False, opt="adam", data=None, seed=3):
    model = build(RICH_LAYERS, seed=seed)
    if opt == "adam":
        o = Adam(model.parameters(), lr=0.01)
    elif opt == "sgd":
        o = SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    else:
        o = RMSprop(model.parameters(), lr=0.01, momentum=0.5, centered=True)
    sched = schedule_by_name("cosine", o, T_max=4, warmup_steps=1)
    h = fit(model, SoftmaxCrossEntropy(), o, data if data is not None else blobs(), test=blobs(40, seed=1),
            epochs=epochs, batch_size=32, flatten=False, scheduler=sched, progress=False, seed=seed,
            checkpoint_dir=ckdir, resume=resume)
    return h, model, o


@pytest.mark.parametrize("opt", ["adam", "sgd", "rmsprop"])
def test_resumed_fit_is_bitwise_identical_to_an_uninterrupted_one(tmp_path, opt):
    h_full, m_full, o_full = run(tmp_path / "full", 4, opt=opt)
    run(tmp_path / "part", 2, opt=opt)  # stops after epoch 2, as a killed run would have saved
    h_res, m_res, o_res = run(tmp_path / "part", 4, resume=True, opt=opt)
    assert strip(h_res) == strip(h_full) and h_res.epochs == 4
    assert same_weights(m_res, m_full)
    assert o_res.step_count == o_full.step_count and o_res.lr == o_full.lr
    # and an independent uninterrupted run gives the same bits again (determinism)
    h_again, m_again, _ = run(tmp_path / "again", 4, opt=opt)
    assert strip(h_again) == strip(h_full) and same_weights(m_again, m_full)


def test_checkpoint_rebuilds_the_model_without_its_code(tmp_path):
    h, model, opt = run(tmp_path / "a", 2)
    ck = load(tmp_path / "a" / CHECKPOINT_NAME)
    assert ck.epoch == 2 and strip(ck.history) == strip(h)
    rebuilt = ck.model
    assert same_weights(rebuilt, model) and repr(rebuilt) == repr(model)
    x = np.random.default_rng(0).uniform(size=(3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(rebuilt.eval().forward(x), model.eval().forward(x))
    dropout = [m for m in rebuilt if type(m).__name__ == "Dropout"][0]
    original = [m for m in model if type(m).__name__ == "Dropout"][0]
    assert dropout.rng.bit_generator.state == original.rng.bit_generator.state
    assert ck.meta["optimizer"]["class"] == "Adam" and ck.meta["scheduler"]["class"] == "LinearWarmup"
    assert ck.meta["versions"]["numpy"] == np.__version__


def test_architecture_json_round_trip():
    for layers in (RICH_LAYERS, MLPSpec((16, 8, 4), "tanh", "softmax").layers()):
        model = build(layers, seed=0)
        described = describe_model(model)
        text = json.dumps(layers_to_json(described))
        again = build(layers_from_json(json.loads(text)), seed=0)
        assert repr(again) == repr(model) and same_weights(again, model)


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "c.npz"
    model = build_mlp(MLPSpec((4, 3)), seed=0)
    save(path, model)
    before = path.read_bytes()

    def broken(fh):
        fh.write(b"half a checkpoint")
        raise KeyboardInterrupt  # a Ctrl-C in the middle of the write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, broken)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left behind
    assert same_weights(load(path).model, model)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_write_keeps_the_users_umask(tmp_path, umask):
    import os
    import stat

    previous = os.umask(umask)
    try:
        path = atomic_write(tmp_path / "c.bin", lambda fh: fh.write(b"x"))
        plain = tmp_path / "plain.bin"
        plain.write_bytes(b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask


def test_corrupt_and_foreign_files_are_named(tmp_path):
    model = build_mlp(MLPSpec((4, 3)), seed=0)
    path = save(tmp_path / "c.npz", model, optimizer=SGD(model.parameters(), lr=0.1, momentum=0.5))
    data = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"trunc.npz: corrupt or truncated"):
        load(tmp_path / "trunc.npz")
    flipped = bytearray(data)
    i = data.index(b"0.weight.npy") + 200  # inside the stored weights
    flipped[i] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="flip.npz: corrupt"):
        load(tmp_path / "flip.npz")
    np.savez(tmp_path / "plain.npz", **model.state_dict())
    with pytest.raises(CheckpointError, match="not a tinygrad_mnist checkpoint"):
        load(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "missing.npz")
    assert zipfile.is_zipfile(path)


def test_mismatched_checkpoints_name_what_differs(tmp_path):
    model = build_mlp(MLPSpec((4, 5, 3)), seed=0)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.5)
    path = save(tmp_path / "c.npz", model, optimizer=opt)
    ck = load(path)
    wider = build_mlp(MLPSpec((4, 6, 3)), seed=0)
    with pytest.raises(CheckpointError, match=r"0.weight has shape \(5, 4\) in the checkpoint, \(6, 4\) in the model"):
        ck.restore(wider)
    deeper = build_mlp(MLPSpec((4, 5, 5, 3)), seed=0)
    with pytest.raises(CheckpointError, match=r"missing \['4.weight', '4.bias'\]"):
        ck.restore(deeper)
    with pytest.raises(CheckpointError, match="the optimiser is Adam, the checkpoint was saved from SGD"):
        ck.restore(model, Adam(model.parameters()))
    with pytest.raises(CheckpointError, match="optimiser momentum is 0.9, the checkpoint was saved with 0.5"):
        ck.restore(model, SGD(model.parameters(), lr=0.1, momentum=0.9))
    sched_opt = SGD(model.parameters(), lr=0.1, momentum=0.5)
    with pytest.raises(CheckpointError, match="holds no schedule state"):
        ck.restore(model, sched_opt, schedule_by_name("cosine", sched_opt, T_max=3))
    with pytest.raises(CheckpointError, match="float32 in the checkpoint, float64 in the model"):
        ck.restore(build_mlp(MLPSpec((4, 5, 3)), seed=0, dtype=np.float64))


def test_resume_with_other_settings_is_refused(tmp_path):
    run(tmp_path / "a", 1)
    with pytest.raises(CheckpointError, match="the run uses seed=4, the checkpoint was written with seed=3"):
        run(tmp_path / "a", 2, resume=True, seed=4)
    with pytest.raises(CheckpointError, match="n_train=50"):
        run(tmp_path / "a", 2, resume=True, data=blobs(50))


def test_nan_stops_naming_epoch_and_batch_and_keeps_the_last_good_checkpoint(tmp_path):
    model = build_mlp(MLPSpec((64, 8, 4), "relu"), seed=0)
    opt = SGD(model.parameters(), lr=0.05)

    def blow_up(epoch, history):
        opt.lr = 1e30  # the next epoch overflows

    with np.errstate(all="ignore"), pytest.raises(TrainingDivergedError) as err:
        fit(model, SoftmaxCrossEntropy(), opt, blobs(), epochs=3, batch_size=32, progress=False,
            checkpoint_dir=tmp_path, callbacks=[blow_up])
    msg = str(err.value)
    assert "became nan at epoch 2, batch" in msg or "became inf at epoch 2, batch" in msg
    assert f"the last good checkpoint (epoch 1) is kept at {tmp_path / CHECKPOINT_NAME}" in msg
    assert err.value.epoch == 2 and err.value.checkpoint == tmp_path / CHECKPOINT_NAME
    ck = load(tmp_path / CHECKPOINT_NAME)
    assert ck.epoch == 1 and all(np.isfinite(v).all() for v in ck.model_state.values())


def test_divergence_is_reported_and_can_stop(tmp_path):
    def go(mode):
        model = build_mlp(MLPSpec((64, 16, 4), "sigmoid", "softmax"), seed=0)
        from tinygrad_mnist import CrossEntropy
        return fit(model, CrossEntropy(reduction="sum"), SGD(model.parameters(), lr=1e4), blobs(), epochs=2,
                   batch_size=32, progress=False, on_divergence=mode)

    with pytest.warns(UserWarning, match="diverging: the training loss grew over epoch"):
        go("warn")
    with pytest.raises(TrainingDivergedError,
                       match="diverging: the training loss grew over epoch 1.*lower the learning rate"):
        go("stop")


def test_ctrl_c_keeps_the_last_finished_epoch(tmp_path):
    model = build_mlp(MLPSpec((64, 8, 4)), seed=0)

    def interrupt(epoch, history):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as err:
        fit(model, SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1), blobs(), epochs=5, batch_size=32,
            progress=False, callbacks=[interrupt], checkpoint_dir=tmp_path)
    # the Ctrl-C came at the end of epoch 2, before its checkpoint: epoch 1's is the one to resume from
    assert err.value.epoch == 1 and err.value.checkpoint == tmp_path / CHECKPOINT_NAME
    assert (f"interrupted at epoch 2, batch 3; the checkpoint of epoch 1 is {tmp_path / CHECKPOINT_NAME}"
            in str(err.value))
    assert load(tmp_path / CHECKPOINT_NAME).epoch == 1 and err.value.history.epochs == 2


# -- a real training process, killed with SIGKILL mid-epoch, resumed --------------------------
def write_blob_idx(root, n_train=1200, n_test=100, size=12):
    root.mkdir(parents=True)
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        ds = blobs(n, size=size, seed=seed)
        write_idx(root / MNIST_FILES[f"{split}_images"], ds.images)
        write_idx(root / MNIST_FILES[f"{split}_labels"], ds.labels.astype(np.uint8))
    return root


def train_cmd(data, out, epochs=3):
    return [sys.executable, "-m", "tinygrad_mnist", "train", "--dataset", str(data), "--model", "course-cnn",
            "--channels", "4", "8", "--dropout", "0.2", "--augment-shift", "1", "--batch-size", "16",
            "--schedule", "cosine", "--epochs", str(epochs), "--seed", "5", "--out", str(out), "--json", "--no-figure"]


def child_env():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("CI", None)
    return env


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_mid_epoch_then_resume_gives_identical_history_and_weights(tmp_path):
    data = write_blob_idx(tmp_path / "blobs")
    full = subprocess.run(train_cmd(data, tmp_path / "full"), cwd=REPO, env=child_env(), capture_output=True,
                          text=True, timeout=120)
    assert full.returncode == 0, full.stderr

    victim = subprocess.Popen(train_cmd(data, tmp_path / "killed"), cwd=REPO, env=child_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = []
    for line in victim.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "epoch" and events[-1]["epoch"] == 1:
            time.sleep(events[-1]["seconds"] / 2)  # about half-way through epoch 2
            victim.send_signal(signal.SIGKILL)
            break
    victim.wait(timeout=60)
    victim.stdout.close()
    victim.stderr.close()
    assert victim.returncode == -signal.SIGKILL
    assert load(tmp_path / "killed" / CHECKPOINT_NAME).epoch == 1  # died inside epoch 2
    assert not (tmp_path / "killed" / "history.json").exists()

    resumed = subprocess.run(train_cmd(data, tmp_path / "killed") + ["--resume"], cwd=REPO, env=child_env(),
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    h_full = History.load(tmp_path / "full" / "history.json")
    h_res = History.load(tmp_path / "killed" / "history.json")
    c_res, c_full = h_res.config.pop("out"), h_full.config.pop("out")  # the only setting that differs
    assert (c_res, c_full) == (str(tmp_path / "killed"), str(tmp_path / "full"))
    assert h_res.epochs == 3 and strip(h_res) == strip(h_full)
    a, b = np.load(tmp_path / "full" / "model.npz"), np.load(tmp_path / "killed" / "model.npz")
    weights = [k for k in a.files if k != "__meta__"]
    assert weights and all(np.array_equal(a[k], b[k]) for k in weights)
    assert a["0.weight"].tobytes() == b["0.weight"].tobytes()


def test_torch_twin_is_bitwise_deterministic_with_seed_everything(one_torch_thread):
    torch = pytest.importorskip("torch")
    from torch_baselines import build as torch_build
    from torch_baselines import seed_everything
    from torch_baselines.train import fit as torch_fit

    def go():
        seed_everything(7)
        model = torch_build(RICH_LAYERS)  # residual blocks, batch norm, dropout: torch's RNG matters
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        h = torch_fit(model, torch.nn.CrossEntropyLoss(), opt, blobs(), test=blobs(40, seed=1), epochs=2,
                      batch_size=32, flatten=False, seed=7, progress=False)
        return h, model

    try:
        (h1, m1), (h2, m2) = go(), go()
    finally:
        seed_everything(0, deterministic=False)
    assert strip(h1) == strip(h2)
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
