"""The stacked CNN trains each model exactly as it would train alone (Keras' own train_on_batch)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from initbench.config import DataConfig, InitializerSpec, TrainConfig
from initbench.data import normalize
from initbench.init.registry import resolve_args
from initbench.train.model import compile_model
from initbench.train.stacked import epoch_order
from initbench.train.stacked_conv import StackedCNN, build_cnn, stage_sizes

from .conftest import PLAIN

BATCH = 32


@pytest.fixture(scope="module")
def data(mnist):
    arrays, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 4000, 500))
    return arrays


def spec(name: str) -> InitializerSpec:
    return InitializerSpec(name, name, resolve_args(name, {}))


def test_the_architecture():
    model = build_cnn(8, 3, "relu", spec("he_normal"), 0)
    assert stage_sizes(3) == (2, 1) and stage_sizes(1) == (1, 0)
    assert [w.shape for w in model.get_weights()] == [
        (3, 3, 1, 8), (8,), (3, 3, 8, 8), (8,), (3, 3, 8, 8), (8,), (7 * 7 * 8, 10), (10,)]
    # He on a conv kernel: Var = 2 / fan_in, fan_in = receptive field x input channels.
    kernel = build_cnn(64, 2, "relu", spec("he_normal"), 1).get_weights()[2]
    assert kernel.std() == pytest.approx(np.sqrt(2 / (9 * 64)), rel=0.05)


@pytest.mark.parametrize(("optimizer", "lr", "momentum", "depth", "activation"), [
    ("adam", 0.002, 0.0, 2, "relu"),
    ("sgd", 0.05, 0.9, 3, "tanh"),
])
def test_a_cnn_in_a_stack_trains_exactly_as_alone(data, optimizer, lr, momentum, depth, activation):
    """60 steps: member 1 of a 3-stack vs the same CNN trained alone by Keras; then both predict
    the same on held-out images."""
    steps, channels = 60, 4
    cfg = TrainConfig(optimizer, lr, momentum, BATCH, 1, 0, **PLAIN)
    members = [build_cnn(channels, depth, activation, spec(n), s)
               for n, s in (("glorot_uniform", 5), ("he_normal", 1), ("lecun_normal", 9))]
    alone = compile_model(build_cnn(channels, depth, activation, spec("he_normal"), 1), cfg)
    x, y = data["x_train"], data["y_train"]
    order = epoch_order(len(y), 0, 1)[: steps * BATCH]
    stack = StackedCNN(members, activation, cfg)
    stack.train_epoch(tf.constant(x), tf.constant(y), order)
    for i in range(0, len(order), BATCH):
        alone.train_on_batch(x[order[i:i + BATCH]], y[order[i:i + BATCH]])
    stack.write_back(members)
    for got, want in zip(members[1].get_weights(), alone.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=5e-5)
    assert not np.allclose(members[0].get_weights()[0], alone.get_weights()[0])
    _, acc, pred = stack.evaluate(tf.constant(data["x_val"]), tf.constant(data["y_val"]))
    keras_pred = alone.predict(data["x_val"], verbose=0).argmax(axis=1)
    assert (pred[1] == keras_pred).mean() > 0.995
    assert acc[1] == pytest.approx((keras_pred == data["y_val"]).mean(), abs=0.005)
