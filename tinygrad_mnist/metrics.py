"""Classification metrics on model outputs (logits or probabilities)."""

from __future__ import annotations

import numpy as np


def predictions(outputs: np.ndarray) -> np.ndarray:
    """Predicted class per row: ``argmax_c outputs[i, c]``; (n, C) → (n,)."""
    outputs = np.asarray(outputs)
    if outputs.ndim != 2:
        raise ValueError(f"predictions: expected outputs of shape (n, C), got {outputs.shape}")
    return outputs.argmax(axis=1)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose argmax equals the label, in [0, 1]."""
    labels = np.asarray(labels)
    pred = predictions(outputs)
    if labels.shape != pred.shape:
        raise ValueError(f"accuracy: expected {pred.shape[0]} labels, got shape {labels.shape}")
    return float((pred == labels).mean()) if labels.size else float("nan")


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Counts ``M[t, p]`` of examples with true class t predicted as p; (C, C) int64."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if labels.shape != predicted.shape:
        raise ValueError(f"confusion_matrix: shapes differ, {labels.shape} vs {predicted.shape}")
    for name, values in (("labels", labels), ("predicted", predicted)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} outside 0..{num_classes - 1}: "
                             f"found {values.min()}..{values.max()}")
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m
