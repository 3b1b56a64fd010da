"""``tinygrad-mnist train``: train any model the engine builds on MNIST (or Fashion-MNIST,
digits, an IDX or PNG folder) and write its checkpoint, history, learning curves and config.

    tinygrad-mnist train                              # classic-mlp (784-64-10 sigmoid) into results/train/classic-mlp/
    tinygrad-mnist train --model course-cnn --epochs 3   # into results/train/course-cnn/
    tinygrad-mnist train --model course-cnn --resume  # after a crash or Ctrl-C
    tinygrad-mnist train --config run.toml --lr 0.01  # flags win over the file

The output folder (``--out``, default ``results/train/<model>``) gets a checkpoint
(``checkpoint.npz``) written atomically at the end of every epoch; ``--resume`` continues
from it and ends with the same history and weights, bit for bit, as a run never
interrupted.  A folder that already holds a ``model.npz`` or ``checkpoint.npz`` is never
replaced silently: the run stops (exit 2) unless ``--resume`` or ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import numpy as np

from ..checkpoint import atomic_write, save
from ..data import DataLoader, Dataset, MNISTNotFoundError, load_dataset, train_val_split
from ..data.augment import AugmentedLoader
from ..data.mnist import source_name
from ..history import History
from ..models import build, with_dropout
from ..nn.init import INITIALIZER_ALIASES, INITIALIZERS, initializer_name
from ..nn.losses import CrossEntropy, Loss, MSELoss, SoftmaxCrossEntropy
from ..optim import OPTIMIZERS, SCHEDULES, optimizer_by_name, schedule_by_name
from ..presets import model_name, names_help
from ..train import CHECKPOINT_NAME, TrainingInterrupted, fit
from .common import (
    DefaultsFormatter,
    Reporter,
    UsageError,
    add_output_flags,
    environment,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    unit_interval,
    warn,
)
from .models import MODEL_DEFAULTS, MODEL_NAMES, is_image_model, model_layers


def _initializer_arg(text: str) -> str:
    """``argparse`` type of ``--init``: an old spelling becomes its canonical name, with a note;
    any other text is left for ``choices`` to reject."""
    return initializer_name(text) if text in INITIALIZER_ALIASES else text


def _per_model(key: str) -> str:
    values: Dict[Any, List[str]] = {}
    for model, d in MODEL_DEFAULTS.items():
        if d[key] is not None:
            raw = d[key]
            value = " ".join(map(str, raw)) if isinstance(raw, list) else raw
            values.setdefault(value, []).append(model)
    if len(values) == 1:
        return f"default: {next(iter(values))} for every model"
    return "default: " + "; ".join(f"{v} for {', '.join(m)}" for v, m in values.items())


#: Options that do not change what is computed (not compared when resuming).
NOT_COMPARED = ("epochs", "resume", "overwrite", "quiet", "json", "no_progress", "config", "out", "argv", "func",
                "no_download", "data_dir", "allow_divergence", "no_figure")


def add_train_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train", help="train a model of the registry; checkpoint every epoch; resume after a crash",
        description="Train a from-scratch numpy model. The default, classic-mlp, reproduces the classic "
                    "assignment: 784-64-10, sigmoid hidden layer, softmax output, N(0, 0.1^2) weights, "
                    "zero biases, batch 256, cross-entropy summed over the batch, SGD lr 0.001 (the "
                    "assignment recipe). The other models default to their preset's layers, mean loss and "
                    "Adam lr 0.001. "
                    "Exit status: 0 done, 1 failed (bad data, diverged, interrupted), 2 usage error.",
        formatter_class=DefaultsFormatter)
    p.add_argument("--config", metavar="FILE.toml", default=None,
                   help="read options from a TOML file (keys as the long options, e.g. batch-size = 64, "
                        "at the top level or in a [train] table); flags given on the command line win")
    g = p.add_argument_group("model")
    g.add_argument("--model", default="classic-mlp", type=model_name, choices=MODEL_NAMES,
                   help=f"which network to build, {names_help()}; 'mlp' still means classic-mlp")
    g.add_argument("--hidden", type=positive_int, nargs="+", default=None,
                   help=f"MLP hidden layer widths ({_per_model('hidden')})")
    g.add_argument("--activation", default=None, choices=["sigmoid", "tanh", "relu", "identity"],
                   help=f"hidden activation ({_per_model('activation')})")
    g.add_argument("--output", default=None, choices=["softmax", "logits"],
                   help=f"softmax layer + cross-entropy on probabilities, or logits + fused loss "
                        f"({_per_model('output')})")
    g.add_argument("--init", default=None, type=_initializer_arg, choices=sorted(INITIALIZERS),
                   help=f"weight initialiser ({_per_model('init')}); old spellings ("
                        f"{', '.join(sorted(INITIALIZER_ALIASES))}) still map to these, with a note")
    g.add_argument("--init-std", type=positive_float, default=0.1, help="std of the 'normal' initialiser")
    g.add_argument("--channels", type=positive_int, nargs="+", default=None,
                   help="course-cnn, small-cnn: channels of the 3x3 convolutions (a 2x2 max-pool after all "
                        f"but the last; {_per_model('channels')})")
    g.add_argument("--pool-first", action="store_true", help="course-cnn, small-cnn: conv -> pool -> activation")
    g.add_argument("--residual-depth", type=int, default=0, choices=[0, 2, 3],
                   help="course-cnn, small-cnn: conv+activation pairs per residual block (0: plain layers)")
    g.add_argument("--batch-norm", action="store_true", help="CNNs: BatchNorm2d after each plain convolution")
    g.add_argument("--padding", type=non_negative_int, default=0, help="lenet: padding of the first convolution")
    g.add_argument("--dropout", type=unit_interval, default=0.0,
                   help="dropout probability in [0, 1): after each MLP hidden activation, before a CNN's classifier")
    g.add_argument("--augment-shift", type=non_negative_int, default=0,
                   help="shift each training image by up to N pixels (seeded per epoch; 0: off)")
    g.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="parameter and batch dtype")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=positive_int, default=10, help="epochs in all (a resumed run continues to it)")
    g.add_argument("--batch-size", type=positive_int, default=256, help="training mini-batch size")
    g.add_argument("--lr", type=positive_float, default=None, help=f"learning rate ({_per_model('lr')})")
    g.add_argument("--loss", default="cross_entropy", choices=["cross_entropy", "mse"], help="training loss")
    g.add_argument("--reduction", default=None, choices=["sum", "mean"],
                   help=f"'sum' makes --lr apply to gradients summed over the batch ({_per_model('reduction')})")
    g.add_argument("--optimizer", default=None, choices=sorted(OPTIMIZERS), help=_per_model("optimizer"))
    g.add_argument("--momentum", type=unit_interval, default=0.0, help="SGD and RMSprop momentum, in [0, 1)")
    g.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    g.add_argument("--weight-decay", type=non_negative_float, default=0.0, help="weight decay of the optimiser")
    g.add_argument("--schedule", default="none", choices=sorted(SCHEDULES) + ["none"],
                   help="learning-rate schedule, stepped once per epoch (cosine runs over --epochs)")
    g.add_argument("--warmup-epochs", type=non_negative_int, default=0,
                   help="linear warm-up epochs before the schedule")
    g.add_argument("--seed", type=non_negative_int, default=0,
                   help="fixes the weights, data order, dropout masks and shifts (bitwise, for a given thread count)")
    g.add_argument("--allow-divergence", action="store_true",
                   help="only warn when the loss grows over an epoch (default: stop, keeping the last checkpoint)")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="mnist",
                   help="'mnist', 'fashion-mnist', 'digits', or a folder (IDX files, torchvision's "
                        "MNIST/raw or FashionMNIST/raw, or Train/ and Test/ PNG folders)")
    g.add_argument("--data-dir", default=None, help="folder holding the MNIST IDX files (or torchvision's "
                   "MNIST/raw under it); else $TINYGRAD_MNIST_DATA, else the cache directory")
    g.add_argument("--no-download", action="store_true", help="never try to download MNIST")
    g.add_argument("--val-size", type=non_negative_float, default=0,
                   help="validation images held out of training (count, or fraction < 1); 0 = none")
    g.add_argument("--train-size", type=positive_int, default=None,
                   help="use only the first N training images (default: all)")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=None,
                   help="output folder: checkpoint.npz (every epoch), model.npz, history.json, config.json, "
                        "figure (default: results/train/MODEL)")
    g.add_argument("--no-figure", action="store_true", help="do not draw learning_curves.png (skips matplotlib)")
    g.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz (same options; --epochs may grow)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace the model.npz and checkpoint.npz of an earlier run in OUT (default: refuse)")
    add_output_flags(g)
    p.set_defaults(func=run_train)
    return p


def _load_data(args: argparse.Namespace, rep: Reporter) -> Tuple[Dataset, Dataset, str]:
    """``(train, test, name)``; the name says what was really loaded (a folder's name unless MNIST)."""
    if args.dataset.lower() == "mnist":
        try:
            train, test = load_dataset("mnist", data_dir=args.data_dir, download=not args.no_download)
        except MNISTNotFoundError as err:
            if args.data_dir is not None:
                raise  # a folder the user named is never silently replaced
            warn(f"MNIST IS NOT AVAILABLE, so this run uses scikit-learn's 8x8 digits instead.\n\n{err}")
            train, test = load_dataset("digits")
            return train, test, "digits"
        name = source_name(args.data_dir)
        train.name, test.name = f"{name}-train", f"{name}-test"
        return train, test, name
    train, test = load_dataset(args.dataset, data_dir=args.data_dir, download=not args.no_download)
    return train, test, train.name.removesuffix("-train")


def _run_config(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if k not in ("func", "argv")}


def _check_resume(args: argparse.Namespace, out: Path, config: dict) -> None:
    """On ``--resume`` the options that change the computation must be the saved run's."""
    saved_path = out / "config.json"
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text()).get("args", {})
    for key, value in config.items():
        if key in NOT_COMPARED or key not in saved:
            continue
        if json.loads(json.dumps(value)) != saved[key]:
            flag = "--" + key.replace("_", "-")
            raise ValueError(f"--resume: {flag} is {value!r} but the run in {out} was started with "
                             f"{saved[key]!r}; resume with the same options (only --epochs may change)")


def check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse (:class:`UsageError`, exit 2) to train into a folder holding another run's model
    or checkpoint, unless the run resumes it or is told to overwrite it."""
    found = [name for name in ("model.npz", CHECKPOINT_NAME) if (out / name).exists()]
    if found and not (resume or overwrite):
        raise UsageError(f"{out} already holds {' and '.join(found)} from another run; give --overwrite to "
                         f"replace it, --resume to continue it, or another --out")


def run_train(args: argparse.Namespace) -> int:
    rep = Reporter(args)
    for key, value in MODEL_DEFAULTS[args.model].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None:
        args.out = str(Path("results") / "train" / args.model)
    check_out(Path(args.out), args.resume, args.overwrite)
    train, test, dataset_name = _load_data(args, rep)
    if args.train_size is not None:
        if args.train_size > len(train):
            raise ValueError(f"--train-size {args.train_size} is larger than the {len(train)} training "
                             f"images of {dataset_name}")
        train = train.first(args.train_size)
    val = None
    if args.val_size:
        val_size = int(args.val_size) if args.val_size >= 1 else args.val_size
        try:
            train, val = train_val_split(train, val_size=val_size, seed=args.seed)
        except ValueError as err:
            raise ValueError(f"--val-size {args.val_size} with {len(train)} training images leaves a "
                             f"split empty ({err})") from None
    layers, spec, init, init_kwargs = model_layers(args, train.image_shape, train.num_classes)
    dtype = np.dtype(args.dtype)
    model = build(layers, seed=args.seed, dtype=dtype, init=init, init_kwargs=init_kwargs, needs_input_grad=False)
    if args.dropout:
        model = with_dropout(model, args.dropout, is_image_model(args.model), seed=args.seed)
    loss: Loss
    if args.loss == "mse":
        loss = MSELoss(reduction=args.reduction)
    elif args.output == "softmax":
        loss = CrossEntropy(reduction=args.reduction)
    else:
        loss = SoftmaxCrossEntropy(reduction=args.reduction)
    opt_kwargs = {"lr": args.lr, "weight_decay": args.weight_decay}
    if args.optimizer == "sgd":
        opt_kwargs.update(momentum=args.momentum, nesterov=args.nesterov)
    elif args.optimizer == "rmsprop":
        opt_kwargs.update(momentum=args.momentum)
    optimizer = optimizer_by_name(args.optimizer, model.parameters(), **opt_kwargs)
    sched_kwargs = {"T_max": args.epochs} if args.schedule == "cosine" else {}
    if args.schedule == "step":
        sched_kwargs = {"step_size": max(1, args.epochs // 3)}
    scheduler = schedule_by_name(args.schedule, optimizer, warmup_steps=args.warmup_epochs, **sched_kwargs)
    flatten = not is_image_model(args.model)

    out = Path(args.out)
    config = _run_config(args)
    if args.resume:
        _check_resume(args, out, config)
    record = dict(config)  # flat keys kept for readers of config.json
    record.update(args=config, dataset_used=dataset_name, spec=spec, n_train=len(train),
                  n_val=0 if val is None else len(val), n_test=len(test), environment=environment(),
                  command=_command(args))
    history_config = {k: v for k, v in config.items() if k not in ("resume", "quiet", "json", "no_progress", "config")}
    history_config.update(dataset_used=dataset_name, spec=spec, n_train=record["n_train"],
                          n_val=record["n_val"], n_test=record["n_test"])
    text = json.dumps(record, indent=1, default=str)
    atomic_write(out / "config.json", lambda fh: fh.write(text.encode()))

    rep.say(f"dataset: {dataset_name}  train {len(train)}  val {0 if val is None else len(val)}  test {len(test)}")
    rep.say(f"model: {args.model}, {model.num_parameters():,} parameters\n{model}")
    rep.say(f"loss: {loss!r}  optimizer: {optimizer!r}  batch size {args.batch_size}\n")
    rep.event("start", dataset=dataset_name, n_train=len(train), n_val=0 if val is None else len(val),
              n_test=len(test), model=args.model, parameters=model.num_parameters(), out=str(out))
    extra = {"model": args.model, "flatten": flatten, "image_shape": list(train.image_shape),
             "num_classes": train.num_classes, "dataset": dataset_name, "scale": 1 / 255,
             "loss": type(loss).__name__, "reduction": args.reduction, "output": args.output}
    train_data: Union[Dataset, DataLoader] = train
    if args.augment_shift:
        train_data = AugmentedLoader(train, max_shift=args.augment_shift, shift_order="per_axis",
                                     batch_size=args.batch_size, seed=args.seed, flatten=flatten, dtype=dtype)

    def emit(epoch: int, history: History) -> bool:
        i = epoch - 1
        row = {"epoch": epoch, "train_loss": history.train_loss[i], "train_accuracy": history.train_accuracy[i],
               "seconds": history.epoch_seconds[i]}
        for split in ("val", "test"):
            if getattr(history, f"{split}_loss"):
                row[f"{split}_loss"] = getattr(history, f"{split}_loss")[i]
                row[f"{split}_accuracy"] = getattr(history, f"{split}_accuracy")[i]
        rep.event("epoch", **row)
        return False

    try:
        history = fit(model, loss, optimizer, train_data, val=val, test=test, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, flatten=flatten, scheduler=scheduler,
                      progress=rep.progress, log=None if (rep.quiet or rep.json) else rep.say,
                      config=history_config, callbacks=[emit], checkpoint_dir=out, resume=args.resume,
                      on_divergence="warn" if args.allow_divergence else "stop",
                      checkpoint_info={"config": {"args": config}, "extra": extra})
    except TrainingInterrupted as err:
        how = _command(args, resume=True)
        msg = (f"tinygrad-mnist: {err}\nresume with: {how}" if err.checkpoint else f"tinygrad-mnist: {err}")
        print(msg, file=__import__("sys").stderr)
        rep.event("interrupted", epoch=err.epoch, checkpoint=err.checkpoint, resume=how if err.checkpoint else None)
        return 1

    history.save(out / "history.json")
    save(out / "model.npz", model, history=history, epoch=history.epochs,
         config={"args": config}, extra=extra)
    fig = None
    title = (f"{dataset_name} {args.model} ({model.num_parameters():,} parameters): batch {args.batch_size}, "
             f"lr {args.lr:g}, {history.epochs} epoch{'s' if history.epochs != 1 else ''}, "
             f"{history.total_seconds:.1f} s training")
    try:
        if not args.no_figure:
            from ..plots import plot_learning_curves
            fig = plot_learning_curves(history, out / "learning_curves.png", title=title)
    except ImportError:
        if not (rep.quiet or rep.json):
            warn("matplotlib is not installed: no figure (pip install matplotlib)")
    final = history.test_accuracy[-1]
    rep.result(f"\nfinal test accuracy {100 * final:.2f}%  ({history.total_seconds:.1f} s, "
               f"{np.mean(history.epoch_seconds):.2f} s/epoch)")
    rep.say(f"wrote {out / CHECKPOINT_NAME}, {out / 'model.npz'}, {out / 'history.json'}, {out / 'config.json'}"
            + (f", {fig}" if fig else ""))
    rep.event("done", test_accuracy=final, test_loss=history.test_loss[-1], epochs=history.epochs,
              seconds=history.total_seconds, model=str(out / "model.npz"), history=str(out / "history.json"))
    return 0


def _command(args: argparse.Namespace, resume: bool = False) -> str:
    """The command line of this run (with ``--resume`` added when asked)."""
    argv = list(getattr(args, "argv", None) or [])
    if resume and "--resume" not in argv:
        argv.append("--resume")
    return shlex.join(["tinygrad-mnist", *argv])
