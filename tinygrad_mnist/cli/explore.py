"""``tinygrad-mnist explore``: a web page that steps through one example's backward pass,
layer by layer, against PyTorch.

    tinygrad-mnist explore                                   # deep-mlp, trained for a moment
    tinygrad-mnist explore --train-images 0                  # fresh (untrained) weights, said so on the page
    tinygrad-mnist explore --model course-cnn --train-images 5000 --out results/explore/cnn
    tinygrad-mnist explore --checkpoint results/train/classic-mlp/checkpoint.npz --serve
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..data import Dataset, MNISTNotFoundError, load_dataset
from ..presets import NAMES, get, model_name, names_help
from .common import DefaultsFormatter, warn

if TYPE_CHECKING:
    from ..explore import ExploreModel

#: The explorer's own preset (``tinygrad_mnist.explore.models``) for each registry name it has,
#: with the overrides that make it that model; used for a checkpoint without its architecture.
EXPLORE_PRESETS = {"deep-mlp": ("mlp", None, None), "classic-mlp": ("classic-mlp", None, None),
                   "wide-mlp": ("mlp", (512, 512), "relu"), "course-cnn": ("course-cnn", None, None),
                   "small-cnn": ("small-cnn", None, None)}

#: Training images of the brief default training (one epoch: about a tenth of a second for the MLP).
DEFAULT_TRAIN_IMAGES = 3000


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Register ``explore`` on an ``argparse`` sub-parser collection; returns the parser."""
    p = subparsers.add_parser(
        "explore", help="write (or serve) a page that steps through the backward pass against PyTorch",
        description="Trace a few test images through a small model in float64: each layer's activations, "
                    "the incoming gradient g, the local Jacobian J, J^T g and PyTorch autograd's value for the "
                    "same tensor, the parameter gradients, and per-layer numpy/torch times for a batch. Writes "
                    "one self-contained HTML page (no network needed) to OUT/index.html.",
        formatter_class=DefaultsFormatter)
    p.add_argument("--model", default="deep-mlp", type=model_name, choices=NAMES,
                   help=f"the model to trace, {names_help()}")
    p.add_argument("--hidden", type=int, nargs="+", default=None,
                   help="hidden widths of the MLP presets (default: the preset's)")
    p.add_argument("--activation", default=None, choices=["sigmoid", "tanh", "relu"],
                   help="hidden activation (default: the preset's)")
    p.add_argument("--checkpoint", default=None,
                   help="a checkpoint (e.g. results/train/classic-mlp/checkpoint.npz of `tinygrad-mnist train`; its "
                        "architecture replaces --model) or a plain .npz state dict that fits --model (a "
                        "config.json beside it with an MLP spec gives the shape)")
    p.add_argument("--train-images", type=int, default=None,
                   help=f"first train the model for one epoch (Adam, lr 1e-3, batch 64) on this many training "
                        f"images (default {DEFAULT_TRAIN_IMAGES:,}, or 0 with --checkpoint); 0 keeps the fresh "
                        "(or checkpoint) weights, and the page then says fresh weights are untrained")
    p.add_argument("--example", type=int, default=None,
                   help="test-set index of the example shown first (default: the first of --examples, else 0)")
    p.add_argument("--examples", type=int, nargs="+", default=None,
                   help="test-set indices precomputed into the page (default: --example and the next 3)")
    p.add_argument("--timing-batch", type=int, default=128, help="batch size of the per-layer timings (0: none)")
    p.add_argument("--repeats", type=int, default=5, help="timing repeats per layer (median reported)")
    p.add_argument("--threads", type=int, default=1,
                   help="numpy BLAS and torch threads while timing (0: leave them as they are)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fresh initialisation and the training order")
    p.add_argument("--dataset", default="mnist", help="'mnist', 'digits', or a path (IDX or PNG folders)")
    p.add_argument("--data-dir", default=None, help="directory holding the MNIST IDX files "
                   "(else $TINYGRAD_MNIST_DATA, else the cache directory)")
    p.add_argument("--no-download", action="store_true", help="never try to download MNIST")
    p.add_argument("--out", default=None, help="output directory (default: results/explore/MODEL)")
    p.add_argument("--screenshot", default=None, metavar="PNG",
                   help="also save a PNG of the page (needs Playwright and /usr/bin/chromium; default: none)")
    p.add_argument("--step", type=int, default=1,
                   help="backward step of --screenshot, counted as on the page and in its URL (#step=N): 1 the "
                        "loss, 2 the last layer, ... (default: 1)")
    p.add_argument("--serve", action="store_true", help="serve the page on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, default=8000, help="port of --serve (0: any free port)")
    p.set_defaults(func=run_explore)
    return p


def _load(args: argparse.Namespace) -> Tuple[Tuple[Dataset, Dataset], str]:
    try:
        return load_dataset(args.dataset, data_dir=args.data_dir, download=not args.no_download), args.dataset
    except MNISTNotFoundError as err:
        if args.dataset != "mnist":
            raise
        warn(f"MNIST IS NOT AVAILABLE, so the page uses scikit-learn's 8x8 digits instead.\n\n{err}")
        return load_dataset("digits"), "digits"


def example_indices(example: Optional[int], examples: Optional[Sequence[int]], n_test: int) -> List[int]:
    """The test-set indices to precompute, the one shown first leading, each once.

    ``examples`` given: those, with ``example`` moved (or added) to the front when given.
    Otherwise ``example`` (default 0) and the next three that exist.
    """
    if examples:
        order = ([example] if example is not None else []) + [i for i in examples if i != example]
    else:
        start = 0 if example is None else example
        order = [i for i in range(start, start + 4) if i < n_test] or [start]
    order = list(dict.fromkeys(int(i) for i in order))
    bad = [i for i in order if not 0 <= i < n_test]
    if bad:
        raise ValueError(f"explore: example indices must lie in [0, {n_test}) (the test set), got {bad}")
    return order


def explore_model(name: str, image_shape: Tuple[int, int], num_classes: int, hidden: Optional[Sequence[int]],
                  activation: Optional[str], checkpoint: Optional[str], seed: int) -> "ExploreModel":
    """The explorer's model for the registry name ``name``: fresh weights built from the registry's
    layers, or ``checkpoint``'s weights (and architecture, where it records one)."""
    from ..explore import ExploreModel, make_model
    from ..explore.models import checkpoint_spec, read_checkpoint
    from ..models import build

    preset = get(name, warn=False)
    if checkpoint is not None:
        described = read_checkpoint(checkpoint)[0] is not None or checkpoint_spec(checkpoint) is not None
        if name not in EXPLORE_PRESETS and not described:
            raise ValueError(f"explore: {checkpoint} does not record its architecture; for --model {name} give a "
                             "checkpoint of tinygrad-mnist train (model.npz or checkpoint.npz)")
        explore_name, preset_hidden, preset_activation = EXPLORE_PRESETS.get(name, ("classic-mlp", None, None))
        return make_model(explore_name, image_shape=image_shape, num_classes=num_classes,
                          hidden=hidden or preset_hidden, activation=activation or preset_activation,
                          checkpoint=checkpoint, seed=seed)
    changes: Dict[str, Any] = {"activation": activation}
    if preset.flat_input:
        changes["hidden"] = None if hidden is None else tuple(hidden)
    elif hidden:
        raise ValueError(f"explore: --hidden applies to the MLPs, not to {name}")
    spec = preset.spec_for(image_shape, num_classes, **changes)
    layers = spec.layers()
    init = getattr(spec, "init", preset.init)
    init_kwargs = dict(getattr(spec, "init_kwargs", {}))
    model = build(layers, seed=seed, dtype=np.float64, init=init, init_kwargs=init_kwargs).eval()
    return ExploreModel(name, tuple(layers), model, (int(image_shape[0]), int(image_shape[1])), preset.flat_input,
                        f"fresh initialisation ({init}, seed {seed})")


def run_explore(args: argparse.Namespace) -> int:
    """Generate the page the parsed ``args`` describe; with ``--serve`` serve it until interrupted."""
    try:
        import torch  # noqa: F401  (the page compares against torch autograd)
    except ImportError:
        warn("explore compares every gradient with PyTorch: install it first (pip install torch==2.13.0)")
        return 1
    from ..explore import generate, screenshot, start_server, stop_server, train_briefly, write_page

    n_train = args.train_images
    if n_train is None:
        n_train = 0 if args.checkpoint else DEFAULT_TRAIN_IMAGES
    if n_train < 0:
        raise ValueError(f"explore: --train-images must be >= 0, got {n_train}")
    t0 = time.perf_counter()
    (train, test), dataset_name = _load(args)
    indices = example_indices(args.example, args.examples, len(test))
    em = explore_model(args.model, test.image_shape, test.num_classes, args.hidden, args.activation,
                       args.checkpoint, args.seed)
    if n_train:
        t_train = time.perf_counter()
        train_briefly(em, train, n_train, seed=args.seed)
        print(f"trained for one epoch on {min(n_train, len(train)):,} images in {time.perf_counter() - t_train:.1f} s")
    print(f"model {em.name}: {em.model.num_parameters():,} parameters; weights: {em.source}")
    data = generate(em, test, indices, timing_batch=args.timing_batch, repeats=args.repeats,
                    threads=args.threads or None, dataset_name=dataset_name)
    out = Path(args.out) if args.out else Path("results") / "explore" / args.model
    path = write_page(data, out)
    size_mb = path.stat().st_size / 1e6
    print(f"wrote {path} ({size_mb:.1f} MB, {len(indices)} examples, {len(em.layers)} layers, "
          f"{time.perf_counter() - t0:.1f} s); open it in a browser (no network needed)")
    worst = max(s["diff"]["max_rel"] for e in data["examples"] for s in e["steps"])
    print(f"largest relative difference numpy vs torch autograd over every step: {worst:.2e}")
    if args.screenshot:
        if not 1 <= args.step <= len(em.layers) + 1:
            raise ValueError(f"explore: --step must lie in [1, {len(em.layers) + 1}] (1 the loss, then "
                             f"{len(em.layers)} layers), got {args.step}")
        try:
            png = screenshot(path, args.screenshot, step=args.step)
        except ImportError as err:
            warn(str(err))
            return 1
        print(f"wrote {png} (step {args.step}, {png.stat().st_size / 1e3:.0f} kB)")
    if not args.serve:
        return 0
    server, thread, url = start_server(out, port=args.port, quiet=True)
    print(f"serving {url}index.html on 127.0.0.1 (Ctrl-C to stop)", flush=True)
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop_server(server, thread)
    print("server stopped", flush=True)
    return 0
