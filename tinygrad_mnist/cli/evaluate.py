"""``tinygrad-mnist evaluate CHECKPOINT``: a saved model on a dataset: loss, accuracy,
per-class accuracy and the confusion matrix.

    tinygrad-mnist evaluate results/train/classic-mlp/model.npz              # its own dataset's test split
    tinygrad-mnist evaluate results/cnn/checkpoint.npz --dataset digits --split train --json
"""

from __future__ import annotations

import argparse
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..checkpoint import Checkpoint, load
from ..data import DataLoader, Dataset, load_dataset
from ..metrics import confusion_matrix
from ..nn.losses import CrossEntropy, SoftmaxCrossEntropy
from ..train import mean_per_example, progress_bar
from .common import DefaultsFormatter, Reporter, add_output_flags, positive_int


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate", help="a checkpoint's loss, accuracy and confusion matrix on a dataset",
        description="Rebuild the model a checkpoint describes (model.npz or checkpoint.npz from "
                    "`tinygrad-mnist train`) and evaluate it in eval mode. By default on the test "
                    "split of the dataset it was trained on. Exit status: 0 done, 1 failed, 2 usage error.",
        formatter_class=DefaultsFormatter)
    p.add_argument("checkpoint",
                   help="a .npz checkpoint written by tinygrad-mnist train or tinygrad_mnist.checkpoint.save")
    p.add_argument("--config", metavar="FILE.toml", default=None, help="read options from a TOML file; flags win")
    p.add_argument("--dataset", default=None, help="'mnist', 'fashion-mnist', 'digits' or a folder "
                   "(default: the one the checkpoint was trained on)")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: the training run's, else "
                   "$TINYGRAD_MNIST_DATA)")
    p.add_argument("--no-download", action="store_true", help="never try to download MNIST")
    p.add_argument("--split", default="test", choices=["test", "train"], help="which split to evaluate on")
    p.add_argument("--batch-size", type=positive_int, default=1000, help="images per forward pass")
    add_output_flags(p)
    p.set_defaults(func=run_evaluate)
    return p


def model_io(ck: Checkpoint) -> Tuple[bool, Optional[Tuple[int, int]], Optional[int], bool]:
    """``(flatten, image_shape or None, num_classes, outputs_are_probabilities)`` of a checkpoint,
    from what ``train`` recorded or else from its architecture."""
    layers = ck.layers
    extra = ck.extra
    first = layers[0]
    flatten = extra.get("flatten", first.kind != "conv2d" and not (
        first.kind == "residual" and first.kwargs["block"][0].kind == "conv2d"))
    image_shape: Optional[Tuple[int, int]] = tuple(extra["image_shape"]) if "image_shape" in extra else None
    probs: bool = layers[-1].kind == "activation" and layers[-1].kwargs.get("name") == "softmax"
    last_linear = [d for d in layers if d.kind == "linear"]
    num_classes = extra.get("num_classes", last_linear[-1].kwargs["out_features"] if last_linear else None)
    if image_shape is None and flatten and first.kind == "linear":
        side = int(round(np.sqrt(first.kwargs["in_features"])))
        image_shape = (side, side) if side * side == first.kwargs["in_features"] else None
    return flatten, image_shape, num_classes, probs


def load_eval_data(ck: Checkpoint, args: argparse.Namespace) -> Tuple[Dataset, str]:
    """The split ``args`` names, by default of the checkpoint's own dataset."""
    saved = ck.config.get("args", {})
    dataset = args.dataset or saved.get("dataset")
    if dataset is None:
        raise ValueError(f"{ck.path} does not say which dataset it was trained on; pass --dataset")
    data_dir = args.data_dir if args.data_dir is not None else (saved.get("data_dir") if args.dataset is None else None)
    train, test = load_dataset(dataset, data_dir=data_dir, download=not args.no_download)
    return (test if args.split == "test" else train), dataset


def run_evaluate(args: argparse.Namespace) -> int:
    rep = Reporter(args)
    ck = load(args.checkpoint)
    model = ck.model.eval()
    flatten, image_shape, num_classes, probs = model_io(ck)
    data, dataset = load_eval_data(ck, args)
    if image_shape is not None and tuple(data.image_shape) != tuple(image_shape):
        raise ValueError(f"evaluate: the checkpoint's model takes {image_shape[0]}x{image_shape[1]} images, "
                         f"{dataset} has {data.image_shape[0]}x{data.image_shape[1]}")
    if num_classes is not None and data.num_classes > num_classes:
        raise ValueError(f"evaluate: the model predicts {num_classes} classes, {dataset} has {data.num_classes}")
    loss = CrossEntropy() if probs else SoftmaxCrossEntropy()
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=False, flatten=flatten,
                        dtype=model.dtype or np.float32)
    total = 0.0
    label_batches: List[np.ndarray] = []
    predicted_batches: List[np.ndarray] = []
    for x, y in progress_bar(loader, rep.progress, f"evaluate {data.name}", len(loader)):
        out = model.forward(x)
        total += mean_per_example(loss, loss.forward(out, y), out) * len(y)
        label_batches.append(y)
        predicted_batches.append(out.argmax(axis=1))
    if not label_batches:
        raise ValueError(f"evaluate: the {args.split} split of {dataset} is empty")
    labels, predicted = np.concatenate(label_batches), np.concatenate(predicted_batches)
    k = int(num_classes or data.num_classes)
    cm = confusion_matrix(labels, predicted, k)
    acc = float((labels == predicted).mean())
    mean_loss = total / len(labels)
    per_class = [float(cm[c, c] / cm[c].sum()) if cm[c].sum() else None for c in range(k)]
    rep.say(f"checkpoint: {args.checkpoint} ({model.num_parameters():,} parameters"
            + (f", epoch {ck.epoch}" if ck.epoch else "") + ")")
    rep.say(f"data: {data.name} ({len(labels)} images)")
    rep.result(f"accuracy {100 * acc:.2f}%  loss {mean_loss:.4f}  ({len(labels)} images)")
    rep.say("\nconfusion matrix (rows: true class, columns: predicted)\n" + format_confusion(cm, per_class))
    rep.event("evaluate", checkpoint=str(args.checkpoint), dataset=dataset, split=args.split, n=len(labels),
              accuracy=acc, loss=mean_loss, per_class_accuracy=per_class, confusion_matrix=cm.tolist())
    return 0


def format_confusion(cm: np.ndarray, per_class: Sequence[Optional[float]]) -> str:
    k = cm.shape[0]
    width = max(5, len(str(int(cm.max()))) + 1)
    lines = ["true\\pred" + "".join(f"{c:>{width}d}" for c in range(k)) + "  accuracy"]
    for c in range(k):
        share = per_class[c]
        acc = "" if share is None else f"{100 * share:8.2f}%"
        lines.append(f"{c:>9d}" + "".join(f"{int(v):>{width}d}" for v in cm[c]) + acc)
    return "\n".join(lines)
