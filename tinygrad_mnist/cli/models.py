"""How ``tinygrad-mnist train --model NAME`` builds a preset of :mod:`tinygrad_mnist.presets`
with the command's options and the per-model defaults.

The model options apply where the preset has them: ``--hidden`` to the MLPs; ``--channels``,
``--pool-first``, ``--residual-depth`` to ``course-cnn`` and ``small-cnn``; ``--padding`` to
``lenet``; ``--activation``, ``--output``, ``--init``, ``--batch-norm``, ``--dropout`` to all.
"""

from __future__ import annotations

import argparse
from typing import Tuple

from ..models import CourseCNNSpec, LayerDesc, MLPSpec
from ..presets import NAMES, PRESETS

MODEL_NAMES = NAMES

#: Defaults that depend on the model (its preset and recipe); a flag or config key overrides them.
MODEL_DEFAULTS = {
    name: {"hidden": list(p.hidden) or None, "channels": list(getattr(p.spec, "channels", ())) or None,
           "activation": p.spec.activation, "output": p.spec.output, "init": p.init,
           "reduction": p.recipe.reduction, "optimizer": p.recipe.optimizer, "lr": p.recipe.lr}
    for name, p in PRESETS.items()
}


def is_image_model(name: str) -> bool:
    """True for the models that take (N, 1, H, W) images instead of flat vectors."""
    return not PRESETS[name].flat_input


def model_layers(args: argparse.Namespace, image_shape: Tuple[int, int],
                 num_classes: int) -> Tuple[Tuple[LayerDesc, ...], dict, str, dict]:
    """``(layers, spec dict, init, init_kwargs)`` for ``args.model`` on images of ``image_shape``
    (``--dropout`` is added after building, by :func:`tinygrad_mnist.models.with_dropout`)."""
    preset = PRESETS[args.model]
    init_kwargs = {"std": args.init_std} if args.init == "normal" else {}
    changes = {"activation": args.activation, "output": args.output}
    if isinstance(preset.spec, MLPSpec):
        changes.update(hidden=tuple(args.hidden), init=args.init, init_kwargs=init_kwargs)
    elif isinstance(preset.spec, CourseCNNSpec):
        changes.update(channels=tuple(args.channels), pool_first=args.pool_first, residual_depth=args.residual_depth)
    else:
        changes.update(padding=args.padding)
    if not isinstance(preset.spec, MLPSpec) and args.activation not in ("relu", "tanh", "sigmoid"):
        raise ValueError(f"--model {args.model}: --activation must be relu, tanh or sigmoid, got {args.activation!r}")
    spec = preset.spec_for(image_shape, num_classes, **changes)
    layers = list(spec.layers())
    spec_dict = {"preset": args.model, **spec.to_dict()}
    if isinstance(spec, MLPSpec):
        return tuple(layers), spec_dict, spec.init, spec.init_kwargs
    if args.batch_norm:  # BatchNorm2d after every convolution outside residual blocks
        out = []
        for d in layers:
            out.append(d)
            if d.kind == "conv2d":
                out.append(LayerDesc.make("batchnorm2d", num_features=d.kwargs["out_channels"]))
        layers = out
    spec_dict.update(batch_norm=args.batch_norm, dropout=args.dropout)
    return tuple(layers), spec_dict, args.init, init_kwargs
