"""``tinygrad-mnist predict CHECKPOINT INPUT...``: labels and probabilities for PNG images,
folders of PNGs, or IDX image files, as a table or JSON lines.

    tinygrad-mnist predict results/train/classic-mlp/model.npz digit.png
    tinygrad-mnist predict results/cnn/model.npz my_digits/ --top 3 --json
    tinygrad-mnist predict results/cnn/model.npz t10k-images-idx3-ubyte.gz --quiet

A PNG is read as grayscale and resized to the model's input size; MNIST digits are light
on a dark background, so a picture whose border is mostly light is inverted first
(``--invert auto``, the default; ``yes`` or ``no`` to force).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..checkpoint import load
from ..data.idx import IDXFormatError, read_idx
from ..nn.activations import softmax
from .common import DefaultsFormatter, Reporter, add_output_flags, positive_int
from .evaluate import model_io


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict", help="labels and probabilities for PNG images, folders or IDX files",
        description="Classify images with a saved model. INPUT is a .png file, a folder (every .png "
                    "in it, sorted), or an IDX image file (gzip or raw). Exit status: 0 done, 1 "
                    "failed (unreadable input), 2 usage error.",
        formatter_class=DefaultsFormatter)
    p.add_argument("checkpoint", help="a .npz checkpoint written by tinygrad-mnist train")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="PNG file, folder of PNGs, or IDX image file")
    p.add_argument("--config", metavar="FILE.toml", default=None, help="read options from a TOML file; flags win")
    p.add_argument("--top", type=positive_int, default=3, help="how many classes to list per image")
    p.add_argument("--invert", default="auto", choices=["auto", "yes", "no"],
                   help="invert PNGs (auto: when the border is mostly light, i.e. a dark digit on white)")
    p.add_argument("--batch-size", type=positive_int, default=1000, help="images per forward pass")
    add_output_flags(p)
    p.set_defaults(func=run_predict)
    return p


def read_png(path: Path, image_shape: Optional[Tuple[int, int]], invert: str) -> np.ndarray:
    """A PNG as uint8 (H, W) in the model's size, light digit on dark (MNIST's convention)."""
    try:
        from PIL import Image
    except ImportError:
        raise ValueError("predict: reading PNG files needs Pillow (pip install pillow)") from None
    try:
        with Image.open(path) as opened:
            im = opened.convert("L")
            if image_shape is not None and im.size != (image_shape[1], image_shape[0]):
                im = im.resize((image_shape[1], image_shape[0]), Image.LANCZOS)  # type: ignore[attr-defined]  # set at import by Pillow; Image.Resampling needs Pillow >= 9.1
            img = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"predict: cannot read {path} as an image ({err})") from None
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    if invert == "yes" or (invert == "auto" and border.mean() > 127):
        img = 255 - img
    return img


def gather(inputs: Sequence[str], image_shape: Optional[Tuple[int, int]], invert: str) -> Tuple[List[str], np.ndarray]:
    """``(names, images uint8 (n, H, W))`` from PNG files, folders and IDX files."""
    names, images = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.suffix.lower() == ".png")
            if not files:
                raise ValueError(f"predict: the folder {path} holds no .png files")
            for f in files:
                names.append(str(f))
                images.append(read_png(f, image_shape, invert))
        elif not path.exists():
            raise FileNotFoundError(f"predict: {path} does not exist")
        elif path.suffix.lower() == ".png":
            names.append(str(path))
            images.append(read_png(path, image_shape, invert))
        else:
            try:
                arr = read_idx(path)
            except IDXFormatError as err:
                raise ValueError(f"predict: {path} is neither a PNG nor an IDX image file ({err})") from None
            if arr.ndim == 2:
                arr = arr[None]
            if arr.ndim != 3 or arr.dtype != np.uint8:
                raise ValueError(f"predict: {path} holds {arr.dtype} of shape {arr.shape}, expected uint8 "
                                 "images of shape (n, H, W)")
            if image_shape is not None and arr.shape[1:] != tuple(image_shape):
                raise ValueError(f"predict: {path} holds {arr.shape[1]}x{arr.shape[2]} images, the model takes "
                                 f"{image_shape[0]}x{image_shape[1]}")
            names += [f"{path}[{i}]" for i in range(len(arr))]
            images += list(arr)
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"predict: the inputs have different sizes {sorted(shapes)}; the model needs one")
    return names, np.stack(images)


def run_predict(args: argparse.Namespace) -> int:
    rep = Reporter(args)
    ck = load(args.checkpoint)
    model = ck.model.eval()
    flatten, image_shape, num_classes, probs = model_io(ck)
    names, images = gather(args.inputs, image_shape, args.invert)
    dtype = model.dtype or np.float32
    scale = ck.extra.get("scale", 1 / 255)
    rows = []
    for start in range(0, len(images), args.batch_size):
        batch = images[start:start + args.batch_size]
        x = np.multiply(batch, scale, dtype=dtype)
        x = x.reshape(len(batch), -1) if flatten else x[:, None]
        out = model.forward(x)
        if not np.isfinite(out).all():
            raise ValueError(f"predict: the model's output is not finite for inputs {names[start]} ... "
                             f"(a checkpoint of a diverged run?)")
        p = out if probs else softmax(out.astype(np.float64))
        rows.append(np.asarray(p, dtype=np.float64))
    p = np.concatenate(rows)
    top = min(args.top, p.shape[1])
    order = np.argsort(-p, axis=1, kind="stable")[:, :top]
    width = max(len("input"), *(len(n) for n in names))
    rep.say(f"{'input':<{width}}  label  probability  top {top}")
    for name, pi, oi in zip(names, p, order, strict=True):
        label = int(oi[0])
        tops = ", ".join(f"{int(c)}: {pi[c]:.3f}" for c in oi)
        rep.result(f"{name}\t{label}" if rep.quiet else f"{name:<{width}}  {label:>5d}  {pi[label]:>11.4f}  {tops}")
        rep.event("prediction", input=name, label=label, probability=float(pi[label]),
                  top=[[int(c), float(pi[c])] for c in oi], probabilities=[float(v) for v in pi])
    return 0
