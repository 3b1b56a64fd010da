"""Accuracy on real MNIST: the classic MLP and a wide ReLU MLP (slow; kept in CI)."""

import numpy as np
import pytest

from tinygrad_mnist import CLASSIC_MLP, SGD, CrossEntropy, MLPSpec, SoftmaxCrossEntropy, build_mlp
from tinygrad_mnist.data import train_val_split
from tinygrad_mnist.train import fit

pytestmark = pytest.mark.slow


def stop_at(threshold, key):
    return lambda epoch, h: getattr(h, key)[-1] >= threshold


def test_classic_mlp_reaches_90_percent_test_accuracy_within_3_epochs(mnist):
    train, test = mnist
    model = build_mlp(CLASSIC_MLP, seed=0)
    h = fit(model, CrossEntropy(reduction="sum"), SGD(model.parameters(), lr=0.001), train, test=test,
            epochs=3, batch_size=256, seed=0, progress=False)
    assert max(h.test_accuracy) >= 0.90, h.test_accuracy


def test_relu_512_512_glorot_reaches_97_percent_validation_within_10_epochs(mnist):
    train, _ = mnist
    train, val = train_val_split(train, val_size=10000, seed=0)
    spec = MLPSpec((784, 512, 512, 10), "relu", "logits", "glorot_uniform")
    model = build_mlp(spec, seed=0)
    assert model.num_parameters() == 669_706
    h = fit(model, SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.1, momentum=0.9), train, val=val,
            epochs=10, batch_size=128, seed=0, progress=False, callbacks=[stop_at(0.97, "val_accuracy")])
    assert h.val_accuracy[-1] >= 0.97, h.val_accuracy
    assert np.isfinite(h.train_loss).all()
