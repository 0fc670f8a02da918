"""The stacked trainer trains each model exactly as it would train alone."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from initbench import normalize
from initbench.config import DataConfig, InitializerSpec, ModelConfig, TrainConfig
from initbench.initializers import resolve_args
from initbench.model import build_model, compile_model
from initbench.stacked import StackedMLP, epoch_order

STEPS, BATCH = 300, 32


@pytest.fixture(scope="module")
def data(mnist):
    arrays, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 12000, 1000))
    return arrays


def spec(name: str) -> InitializerSpec:
    return InitializerSpec(name, name, resolve_args(name, {}))


@pytest.mark.parametrize(("optimizer", "lr", "momentum", "hidden", "activation"), [
    ("adam", 0.001, 0.0, (128,), "relu"),
    ("sgd", 0.05, 0.9, (64, 64), "tanh"),
    ("sgd", 0.1, 0.0, (32,), "relu"),
])
def test_a_model_in_a_stack_trains_exactly_as_alone(data, optimizer, lr, momentum, hidden, activation):
    """300 steps of Keras' own train_on_batch vs the same model as member 1 of a 3-stack; the
    last batch is short (Keras: a batch of 16; the stack: a padded batch with 16 zero weights)."""
    cfg, mc = TrainConfig(optimizer, lr, momentum, BATCH, 1, 0), ModelConfig(hidden, activation)
    members = [build_model(mc, spec(n), s) for n, s in
               (("glorot_uniform", 5), ("he_normal", 1), ("random_normal", 9))]
    alone = compile_model(build_model(mc, spec("he_normal"), 1), cfg)
    x, y = data["x_train"], data["y_train"]
    order = epoch_order(len(y), 0, 1)[: (STEPS - 1) * BATCH + BATCH // 2]
    stack = StackedMLP(members, activation, cfg)
    stack_loss, _ = stack.train_epoch(tf.constant(x), tf.constant(y), order)
    batches = [order[i:i + BATCH] for i in range(0, len(order), BATCH)]
    assert len(batches) == STEPS and len(batches[-1]) == BATCH // 2
    alone_losses = [alone.train_on_batch(x[b], y[b], return_dict=True)["loss"] for b in batches]
    assert int(stack.iterations.numpy()) == STEPS
    stack.write_back(members)
    for got, want in zip(members[1].get_weights(), alone.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    # train_on_batch reports each batch's loss; the stack reports their mean over the examples.
    sizes = [len(b) for b in batches]
    assert stack_loss[1] == pytest.approx(np.average(alone_losses, weights=sizes), rel=1e-4)
    # The other members moved away from the solo model (they are not all the same model).
    assert not np.allclose(members[0].get_weights()[0], alone.get_weights()[0])


def test_partial_last_batch_and_evaluation(data):
    cfg = TrainConfig("adam", 0.001, 0.0, 1000, 1, 0)
    members = [build_model(ModelConfig((32,), "relu"), spec("he_normal"), s) for s in (1, 2)]
    stack = StackedMLP(members, "relu", cfg)
    x, y = tf.constant(data["x_train"]), tf.constant(data["y_train"])
    order = epoch_order(2500, 3, 1)  # two full batches of 1000, one of 500
    stack.train_epoch(x, y, order)
    assert int(stack.iterations.numpy()) == 3
    loss, acc = stack.evaluate(tf.constant(data["x_test"]), tf.constant(data["y_test"]))
    stack.write_back(members)
    for k, model in enumerate(members):
        compile_model(model, cfg)
        want_loss, want_acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
        assert loss[k] == pytest.approx(want_loss, rel=1e-4)
        assert acc[k] == pytest.approx(want_acc, abs=1e-6)


def test_fit_is_deterministic_and_reports_every_epoch(data):
    cfg = TrainConfig("sgd", 0.05, 0.9, 64, 2, 0)

    def run():
        members = [build_model(ModelConfig((32,), "tanh"), spec("glorot_uniform"), 4)]
        stack = StackedMLP(members, "tanh", cfg)
        seen = []
        (rows,) = stack.fit(data["x_train"][:3000], data["y_train"][:3000], data["x_val"],
                            data["y_val"], 2, 7, lambda e, r: seen.append(e))
        return rows, seen, members[0].get_weights()

    rows, seen, weights = run()
    rows2, _, weights2 = run()
    assert seen == [1, 2] and [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["val_accuracy"] > 0.8
    for a, b in zip(weights, weights2, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r["loss"] for r in rows] == [r["loss"] for r in rows2]


def test_unsupported_optimizer_and_mixed_architectures():
    with pytest.raises(ValueError, match=r"train\.optimizer: got 'rmsprop'; allowed: adam, sgd"):
        StackedMLP([], "relu", TrainConfig("rmsprop", 0.1, 0.0, 32, 1, 0))
    models = [build_model(ModelConfig((8,), "relu"), spec("zeros"), 0),
              build_model(ModelConfig((9,), "relu"), spec("zeros"), 0)]
    with pytest.raises(ValueError, match="share one architecture"):
        StackedMLP(models, "relu", TrainConfig("adam", 0.1, 0.0, 32, 1, 0))
