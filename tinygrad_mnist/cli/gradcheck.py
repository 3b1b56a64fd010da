"""``tinygrad-mnist gradcheck``: a float64 model's gradients against central differences.

    tinygrad-mnist gradcheck                                   # classic-mlp
    tinygrad-mnist gradcheck --model deep-mlp --hidden 16 16   # a smaller tanh MLP
    tinygrad-mnist gradcheck --model course-cnn --image-size 8 --channels 2 2 3
"""

from __future__ import annotations

import argparse
from typing import Tuple

import numpy as np

from ..check.gradcheck import DEFAULT_EPS, DEFAULT_TOL, check_model
from ..models import MLPSpec, build
from ..nn.losses import CrossEntropy, Loss, MSELoss, SoftmaxCrossEntropy
from ..nn.module import Module
from ..presets import NAMES, canonical, get, model_name, names_help
from .common import DefaultsFormatter


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Register ``gradcheck`` on an ``argparse`` sub-parser collection; returns the parser."""
    p = subparsers.add_parser(
        "gradcheck", help="check a model's gradients against central differences (float64)",
        description="Build a float64 model with random weights, compute the loss of a random batch, "
                    "and compare back-propagation with central differences for the input and every "
                    "parameter. Prints one row per array and exits 1 when any check fails.",
        formatter_class=DefaultsFormatter)
    p.add_argument("--model", default="classic-mlp", type=model_name, choices=NAMES,
                   help=f"the model to check, {names_help()}; the flags below change its layers")
    p.add_argument("--arch", dest="model", type=_old_arch, help=argparse.SUPPRESS)  # old spelling: mlp, cnn
    p.add_argument("--hidden", type=int, nargs="*", default=None,
                   help="MLP hidden widths (default: the preset's, e.g. 64 for classic-mlp)")
    p.add_argument("--activation", default=None, choices=["sigmoid", "tanh", "relu", "identity"],
                   help="hidden activation (default: the preset's, e.g. sigmoid for classic-mlp, relu for course-cnn)")
    p.add_argument("--output", default=None, choices=["logits", "softmax"],
                   help="end with a Softmax layer, then the loss is cross-entropy on probabilities "
                        "(default: the preset's, softmax for classic-mlp, else logits)")
    p.add_argument("--loss", default="cross_entropy", choices=["cross_entropy", "mse"], help="loss on the model output")
    p.add_argument("--reduction", default="mean", choices=["mean", "sum"], help="loss reduction over the batch")
    p.add_argument("--image-size", type=int, default=28,
                   help="input images are IMAGE_SIZE x IMAGE_SIZE (an MLP takes them flattened)")
    p.add_argument("--in-features", type=int, default=None,
                   help="MLP input width (default: --image-size squared, 784)")
    p.add_argument("--classes", type=int, default=10, help="output classes")
    p.add_argument("--channels", type=int, nargs="+", default=None,
                   help="course-cnn, small-cnn: channels of the convolutions (default: the preset's)")
    p.add_argument("--residual-depth", type=int, default=None, choices=[0, 2, 3],
                   help="course-cnn, small-cnn: conv+activation pairs per residual block (default: 0, plain)")
    p.add_argument("--batch", type=int, default=4, help="examples in the random batch")
    p.add_argument("--seed", type=int, default=0, help="seeds the weights, the batch and the checked entries")
    p.add_argument("--eps", type=float, default=DEFAULT_EPS, help="central-difference step")
    p.add_argument("--tol", type=float, default=DEFAULT_TOL, help="largest relative error that passes")
    p.add_argument("--max-checks", type=int, default=1000,
                   help="check at most this many random entries per array (0: all)")
    p.set_defaults(func=run_gradcheck)
    return p


def _old_arch(text: str) -> str:
    """``--arch mlp|cnn`` (the old spelling of ``--model``), with a note."""
    if text not in ("mlp", "cnn"):
        raise argparse.ArgumentTypeError(f"--arch is now --model; choose one of {', '.join(NAMES)}")
    return canonical(text)


def _build_model(args: argparse.Namespace) -> Tuple[Module, Tuple[int, ...]]:
    """The float64 model ``args.model`` names, with the flags' changes, and one example's shape."""
    preset = get(args.model, warn=False)
    changes = {"activation": args.activation, "output": args.output}
    if preset.flat_input:
        changes["hidden"] = None if args.hidden is None else tuple(args.hidden)
        image_shape = (args.in_features, 1) if args.in_features else (args.image_size, args.image_size)
    else:
        changes.update(channels=None if args.channels is None else tuple(args.channels),
                       residual_depth=args.residual_depth)
        image_shape = (args.image_size, args.image_size)
    spec = preset.spec_for(image_shape, args.classes, **changes)
    args.output = spec.output  # the preset's when not given: it picks the loss
    init = spec.init if isinstance(spec, MLPSpec) else preset.init
    init_kwargs = spec.init_kwargs if isinstance(spec, MLPSpec) else {}
    model = build(spec.layers(), seed=args.seed, dtype=np.float64, init=init, init_kwargs=init_kwargs)
    return model, ((image_shape[0] * image_shape[1],) if preset.flat_input else (1, *image_shape))


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
