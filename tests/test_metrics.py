"""Classification metrics: predictions, accuracy and the confusion matrix."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist.metrics import accuracy, confusion_matrix, predictions


def test_predictions_and_accuracy_on_a_hand_made_example():
    outputs = np.array([[0.1, 0.9], [2.0, -1.0], [0.3, 0.7]])
    assert predictions(outputs).tolist() == [1, 0, 1]
    assert accuracy(outputs, np.array([1, 1, 1])) == pytest.approx(2 / 3)


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    m = confusion_matrix(labels, predicted, num_classes=3)
    assert m.dtype == np.int64
    assert m.tolist() == [[1, 1, 0],
                          [0, 1, 0],
                          [1, 0, 2]]


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=50))
def test_confusion_matrix_totals_match_the_labels_and_the_accuracy(pairs):
    labels, predicted = (np.array(column) for column in zip(*pairs, strict=True))
    m = confusion_matrix(labels, predicted)
    assert m.sum() == len(pairs)
    assert m.sum(axis=1).tolist() == np.bincount(labels, minlength=10).tolist()
    assert m.sum(axis=0).tolist() == np.bincount(predicted, minlength=10).tolist()
    assert np.trace(m) / m.sum() == pytest.approx(np.mean(labels == predicted))


def test_confusion_matrix_rejects_mismatched_shapes_and_out_of_range_labels():
    with pytest.raises(ValueError, match="shapes differ"):
        confusion_matrix(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="outside 0..9"):
        confusion_matrix(np.array([0, 10]), np.array([0, 1]))
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion_matrix(np.array([0, 1]), np.array([0, -1]), num_classes=3)
