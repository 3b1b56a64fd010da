"""``tinygrad-mnist gradcheck``: a float64 model's gradients against central differences."""

from __future__ import annotations

import argparse
from typing import Tuple

import numpy as np

from ..check.gradcheck import DEFAULT_EPS, DEFAULT_TOL, check_model
from ..models import CourseCNNSpec, MLPSpec, build, build_mlp
from ..nn.losses import CrossEntropy, Loss, MSELoss, SoftmaxCrossEntropy
from ..nn.module import Module


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Register ``gradcheck`` on an ``argparse`` sub-parser collection; returns the parser."""
    p = subparsers.add_parser(
        "gradcheck", help="check a model's gradients against central differences (float64)",
        description="Build a float64 model with random weights, compute the loss of a random batch, "
                    "and compare back-propagation with central differences for the input and every "
                    "parameter. Prints one row per array and exits 1 when any check fails.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--arch", default="mlp", choices=["mlp", "cnn"],
                   help="mlp: Linear/activation stack; cnn: the course CNN (tinygrad_mnist.models)")
    p.add_argument("--hidden", type=int, nargs="*", default=[16, 16], help="MLP hidden widths")
    p.add_argument("--activation", default="tanh", choices=["sigmoid", "tanh", "relu", "identity"])
    p.add_argument("--output", default="logits", choices=["logits", "softmax"],
                   help="end with a Softmax layer (then the loss is cross-entropy on probabilities)")
    p.add_argument("--loss", default="cross_entropy", choices=["cross_entropy", "mse"], help="loss on the model output")
    p.add_argument("--reduction", default="mean", choices=["mean", "sum"], help="loss reduction over the batch")
    p.add_argument("--in-features", type=int, default=784, help="MLP input size")
    p.add_argument("--classes", type=int, default=10, help="output classes")
    p.add_argument("--image-size", type=int, default=28, help="CNN input height and width")
    p.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32], help="CNN channels")
    p.add_argument("--residual-depth", type=int, default=0, choices=[0, 2, 3], help="CNN residual blocks")
    p.add_argument("--batch", type=int, default=4, help="examples in the random batch")
    p.add_argument("--seed", type=int, default=0, help="seeds the weights, the batch and the checked entries")
    p.add_argument("--eps", type=float, default=DEFAULT_EPS, help="central-difference step")
    p.add_argument("--tol", type=float, default=DEFAULT_TOL, help="largest relative error that passes")
    p.add_argument("--max-checks", type=int, default=1000,
                   help="check at most this many random entries per array (0: all)")
    p.set_defaults(func=run_gradcheck)
    return p


def _build_model(args: argparse.Namespace) -> Tuple[Module, Tuple[int, ...]]:
    if args.arch == "mlp":
        spec = MLPSpec((args.in_features, *args.hidden, args.classes), args.activation, args.output)
        return build_mlp(spec, seed=args.seed, dtype=np.float64), (args.in_features,)
    activation = "relu" if args.activation == "identity" else args.activation
    cnn = CourseCNNSpec(activation=activation, residual_depth=args.residual_depth,
                         channels=tuple(args.channels), image_size=args.image_size,
                         num_classes=args.classes, output=args.output)
    return build(cnn.layers(), seed=args.seed, dtype=np.float64), (1, args.image_size, args.image_size)


def run_gradcheck(args: argparse.Namespace) -> int:
    """Run the check the parsed ``args`` describe, print the table; 0 if it passed else 1."""
    if args.batch < 1:
        raise ValueError(f"gradcheck: --batch must be at least 1, got {args.batch}")
    model, example_shape = _build_model(args)
    loss: Loss
    if args.loss == "mse":
        loss = MSELoss(reduction=args.reduction)
    elif args.output == "softmax":
        loss = CrossEntropy(reduction=args.reduction)
    else:
        loss = SoftmaxCrossEntropy(reduction=args.reduction)
    rng = np.random.default_rng(args.seed)
    x = rng.uniform(0.0, 1.0, size=(args.batch, *example_shape))
    y = rng.integers(0, args.classes, size=args.batch)
    print(f"model ({model.num_parameters():,} parameters, float64):\n{model}\nloss: {loss!r}, "
          f"batch {args.batch}, seed {args.seed}\n")
    report = check_model(model, loss, x, y, eps=args.eps, tol=args.tol,
                         max_checks=args.max_checks or None, seed=args.seed)
    print(report)
    return 0 if report.passed else 1
