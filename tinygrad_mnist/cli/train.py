"""``tinygrad-mnist train``: train a numpy MLP on MNIST (or digits, an IDX or PNG folder)
and write its history, learning curves, weights and config.

    tinygrad-mnist train                      # the classic 784-64-10 sigmoid MLP on MNIST
    tinygrad-mnist train --hidden 512 512 --activation relu --init glorot_uniform \\
        --output logits --reduction mean --lr 0.1 --momentum 0.9 --epochs 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .. import __version__
from ..data import MNISTNotFoundError, load_dataset, train_val_split
from ..models import MLPSpec, build_mlp
from ..nn.init import INITIALIZERS
from ..nn.losses import CrossEntropy, MSELoss, SoftmaxCrossEntropy
from ..nn.module import Sequential
from ..nn.regularization import Dropout
from ..optim import OPTIMIZERS, SCHEDULES, optimizer_by_name, schedule_by_name
from ..train import fit
from .common import warn


def add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a numpy MLP and write its learning curves",
        description="Train a from-scratch numpy MLP. Defaults reproduce the classic assignment: "
                    "784-64-10, sigmoid hidden layer, softmax output, N(0, 0.1^2) weights, "
                    "zero biases, batch 256, cross-entropy summed over the batch, SGD lr 0.001.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--hidden", type=int, nargs="+", default=[64], help="hidden layer widths")
    p.add_argument("--activation", default="sigmoid", choices=["sigmoid", "tanh", "relu", "identity"])
    p.add_argument("--init", default="normal", choices=sorted(INITIALIZERS))
    p.add_argument("--init-std", type=float, default=0.1, help="std of the 'normal' initialiser")
    p.add_argument("--output", default="softmax", choices=["softmax", "logits"],
                   help="softmax layer + cross-entropy on probabilities, or logits + fused loss")
    p.add_argument("--loss", default="cross_entropy", choices=["cross_entropy", "mse"])
    p.add_argument("--reduction", default="sum", choices=["sum", "mean"],
                   help="'sum' makes --lr apply to gradients summed over the batch")
    p.add_argument("--optimizer", default="sgd", choices=sorted(OPTIMIZERS))
    p.add_argument("--momentum", type=float, default=0.0, help="SGD and RMSprop momentum")
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="weight decay of the optimiser")
    p.add_argument("--schedule", default="none", choices=sorted(SCHEDULES) + ["none"],
                   help="learning-rate schedule, stepped once per epoch (cosine runs over --epochs)")
    p.add_argument("--warmup-epochs", type=int, default=0, help="linear warm-up epochs before the schedule")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout probability after each hidden activation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default="mnist", help="'mnist', 'digits', or a path (IDX or PNG folders)")
    p.add_argument("--data-dir", default=None, help="directory holding the MNIST IDX files "
                   "(else $TINYGRAD_MNIST_DATA, else the cache directory)")
    p.add_argument("--no-download", action="store_true", help="never try to download MNIST")
    p.add_argument("--val-size", type=float, default=0,
                   help="validation images held out of training (count, or fraction < 1); 0 = none")
    p.add_argument("--train-size", type=int, default=None, help="use only the first N training images")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--out", default="results/train", help="output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)


def with_dropout(model: Sequential, p: float, seed: int = 0) -> Sequential:
    """The same layers with ``Dropout(p)`` after every hidden activation."""
    layers, rng = list(model), np.random.default_rng([seed, 1])
    out = []
    for i, layer in enumerate(layers):
        out.append(layer)
        is_hidden_activation = 0 < i < len(layers) - 1 and not layer.parameters() and any(
            m.parameters() for m in layers[i + 1:])
        if is_hidden_activation:
            out.append(Dropout(p, rng=rng))
    return Sequential(*out)


def _load_data(args):
    try:
        return load_dataset(args.dataset, data_dir=args.data_dir, download=not args.no_download), args.dataset
    except MNISTNotFoundError as err:
        if args.dataset != "mnist":
            raise
        warn(f"MNIST IS NOT AVAILABLE, so this run uses scikit-learn's 8x8 digits instead.\n\n{err}")
        return load_dataset("digits"), "digits"


def run_train(args) -> int:
    (train, test), dataset_name = _load_data(args)
    if args.train_size is not None:
        train = train.first(args.train_size)
    val = None
    if args.val_size:
        val_size = int(args.val_size) if args.val_size >= 1 else args.val_size
        train, val = train_val_split(train, val_size=val_size, seed=args.seed)
    spec = MLPSpec((train.n_features, *args.hidden, train.num_classes), args.activation,
                   args.output, args.init, {"std": args.init_std} if args.init == "normal" else {})
    dtype = np.dtype(args.dtype)
    model = build_mlp(spec, seed=args.seed, dtype=dtype, needs_input_grad=False)
    if args.dropout:
        model = with_dropout(model, args.dropout, seed=args.seed)
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
    config = {k: v for k, v in vars(args).items() if k != "func"}
    config.update(dataset_used=dataset_name, spec=spec.to_dict(), n_train=len(train),
                  n_val=0 if val is None else len(val), n_test=len(test), version=__version__)

    print(f"dataset: {dataset_name}  train {len(train)}  val {0 if val is None else len(val)}  test {len(test)}")
    print(f"model: {model.num_parameters():,} parameters\n{model}")
    print(f"loss: {loss!r}  optimizer: {optimizer!r}  batch size {args.batch_size}\n")
    history = fit(model, loss, optimizer, train, val=val, test=test, epochs=args.epochs,
                  batch_size=args.batch_size, seed=args.seed, scheduler=scheduler,
                  progress=False if args.no_progress else None, log=print, config=config)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    history.save(out / "history.json")
    np.savez(out / "model.npz", **model.state_dict())
    (out / "config.json").write_text(json.dumps(config, indent=1, default=str))
    title = (f"{dataset_name} MLP {'-'.join(map(str, spec.sizes))} {args.activation}: batch {args.batch_size}, "
             f"lr {args.lr:g}, {history.epochs} epochs, {history.total_seconds:.1f} s")
    try:
        from ..plots import plot_learning_curves
        fig = plot_learning_curves(history, out / "learning_curves.png", title=title)
    except ImportError:
        fig = None
        warn("matplotlib is not installed: no figure (pip install matplotlib)")
    final = history.test_accuracy[-1]
    print(f"\nfinal test accuracy {100 * final:.2f}%  ({history.total_seconds:.1f} s, "
          f"{np.mean(history.epoch_seconds):.2f} s/epoch)")
    print(f"wrote {out / 'history.json'}, {out / 'model.npz'}, {out / 'config.json'}"
          + (f", {fig}" if fig else ""))
    return 0
