"""The stacked trainer trains each model exactly as it would train alone."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from initbench.config import ConfigError, DataConfig, ModelConfig, TrainConfig
from initbench.data import normalize
from initbench.train.model import build_model, compile_model
from initbench.train.schedule import Schedule
from initbench.train.stacked import StackedMLP, epoch_order

from .conftest import PLAIN, spec

STEPS, BATCH = 300, 32


@pytest.fixture(scope="module")
def data(mnist):
    arrays, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 12000, 1000))
    return arrays


@pytest.mark.parametrize(("optimizer", "lr", "momentum", "hidden", "activation"), [
    ("adam", 0.001, 0.0, (128,), "relu"),
    ("sgd", 0.05, 0.9, (64, 64), "tanh"),
    ("sgd", 0.1, 0.0, (32,), "relu"),
])
def test_a_model_in_a_stack_trains_exactly_as_alone(data, optimizer, lr, momentum, hidden, activation):
    """300 steps of Keras' own train_on_batch vs the same model as member 1 of a 3-stack; the
    last batch is short (Keras: a batch of 16; the stack: a padded batch with 16 zero weights)."""
    cfg, mc = TrainConfig(optimizer, lr, momentum, BATCH, 1, 0, **PLAIN), ModelConfig(hidden, activation)
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
    assert int(stack.optimizer.iterations.numpy()) == STEPS
    stack.write_back(members)
    for got, want in zip(members[1].get_weights(), alone.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    # train_on_batch reports each batch's loss; the stack reports their mean over the examples.
    sizes = [len(b) for b in batches]
    assert stack_loss[1] == pytest.approx(np.average(alone_losses, weights=sizes), rel=1e-4)
    # The other members moved away from the solo model (they are not all the same model).
    assert not np.allclose(members[0].get_weights()[0], alone.get_weights()[0])


def test_partial_last_batch_and_evaluation(data):
    cfg = TrainConfig("adam", 0.001, 0.0, 1000, 1, 0, **PLAIN)
    members = [build_model(ModelConfig((32,), "relu"), spec("he_normal"), s) for s in (1, 2)]
    stack = StackedMLP(members, "relu", cfg)
    x, y = tf.constant(data["x_train"]), tf.constant(data["y_train"])
    order = epoch_order(2500, 3, 1)  # two full batches of 1000, one of 500
    stack.train_epoch(x, y, order)
    assert int(stack.optimizer.iterations.numpy()) == 3
    # A batch that does not divide the test set: the predictions of every batch are kept.
    loss, acc, pred = stack.evaluate(tf.constant(data["x_test"]), tf.constant(data["y_test"]),
                                     batch=300)
    assert pred.shape == (2, len(data["y_test"])) and pred.dtype.kind == "i"
    stack.write_back(members)
    for k, model in enumerate(members):
        compile_model(model, cfg)
        want_loss, want_acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
        assert loss[k] == pytest.approx(want_loss, rel=1e-4)
        assert acc[k] == pytest.approx(want_acc, abs=1e-6)
        assert acc[k] == pytest.approx(np.mean(pred[k] == data["y_test"]), abs=1e-12)
        want_pred = np.argmax(model.predict(data["x_test"], verbose=0), axis=-1)
        # Ties and float rounding aside, the stack predicts what the model alone predicts.
        assert np.mean(pred[k] == want_pred) > 0.999


def test_fit_is_deterministic_and_reports_every_epoch(data):
    cfg = TrainConfig("sgd", 0.05, 0.9, 64, 2, 0, **PLAIN)

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
    # The stack implements OPTIMIZERS; the config is what keeps any other out.
    with pytest.raises(ConfigError, match=r"train\.optimizer: got 'rmsprop'; allowed: adam, sgd"):
        TrainConfig("rmsprop", 0.1, 0.0, 32, 1, 0, **PLAIN)
    models = [build_model(ModelConfig((8,), "relu"), spec("zeros"), 0),
              build_model(ModelConfig((9,), "relu"), spec("zeros"), 0)]
    with pytest.raises(ValueError, match="share one architecture"):
        StackedMLP(models, "relu", TrainConfig("adam", 0.1, 0.0, 32, 1, 0, **PLAIN))


def test_reset_trains_exactly_as_a_fresh_stack(data):
    """train_cell reuses a compiled stack for the next models of the same size: after reset, the
    weights, optimizer state and step count of the previous models must be gone."""
    cfg, mc = TrainConfig("adam", 0.001, 0.0, 64, 1, 0, **PLAIN), ModelConfig((32,), "relu")
    x, y = tf.constant(data["x_train"][:2000]), tf.constant(data["y_train"][:2000])
    order = epoch_order(2000, 0, 1)

    def models(seeds):
        return [build_model(mc, spec("he_normal"), s) for s in seeds]

    reused = StackedMLP(models((1, 2)), "relu", cfg)
    reused.train_epoch(x, y, order)  # leaves trained weights, Adam moments and a step count
    again = models((3, 4))
    reused.reset(again)
    assert int(reused.optimizer.iterations.numpy()) == 0
    loss, acc = reused.train_epoch(x, y, order)
    reused.write_back(again)
    alone = models((3, 4))
    fresh = StackedMLP(alone, "relu", cfg)
    want_loss, want_acc = fresh.train_epoch(x, y, order)
    fresh.write_back(alone)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    np.testing.assert_array_equal(acc, want_acc)
    for a, b in zip((w for m in again for w in m.get_weights()),
                    (w for m in alone for w in m.get_weights()), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="same architecture and count"):
        reused.reset(models((5,)))


@pytest.mark.parametrize(("optimizer", "momentum", "rates"), [
    ("adam", 0.0, (0.0003, 0.003, 0.001)), ("sgd", 0.9, (0.01, 0.1, 0.03))])
def test_each_model_trains_at_its_own_learning_rate_exactly_as_alone(data, optimizer, momentum, rates):
    """A learning-rate sweep in one stack: member k follows Keras' optimizer at rates[k]."""
    mc = ModelConfig((64,), "relu")
    cfg = TrainConfig(optimizer, 0.5, momentum, BATCH, 1, 0, **PLAIN)  # 0.5: the cell default, unused here
    members = [build_model(mc, spec("he_normal"), 3) for _ in rates]  # same start, 3 rates
    stack = StackedMLP(members, "relu", cfg, learning_rates=rates)
    x, y = data["x_train"], data["y_train"]
    order = epoch_order(len(y), 0, 1)[: 100 * BATCH]
    stack.train_epoch(tf.constant(x), tf.constant(y), order)
    stack.write_back(members)
    for k, lr in enumerate(rates):
        alone = compile_model(build_model(mc, spec("he_normal"), 3),
                              TrainConfig(optimizer, lr, momentum, BATCH, 1, 0, **PLAIN))
        for i in range(0, len(order), BATCH):
            alone.train_on_batch(x[order[i:i + BATCH]], y[order[i:i + BATCH]])
        for got, want in zip(members[k].get_weights(), alone.get_weights(), strict=True):
            np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    assert not np.allclose(members[0].get_weights()[0], members[1].get_weights()[0])
    with pytest.raises(ValueError, match="2 learning rates for 3 models"):
        stack.reset(members, learning_rates=rates[:2])


@pytest.mark.parametrize(("kind", "warmup"), [("constant", 0), ("cosine", 0), ("cosine", 2), ("step", 0)])
def test_every_schedule_is_keras_own(kind, warmup):
    """The in-graph factor times a rate equals Keras' own schedule object at every step, past
    the end included (Keras holds the last value)."""
    cfg = TrainConfig("sgd", 0.02, 0.0, BATCH, 4, 0, weight_decay=0.0, lr_schedule=kind,
                      warmup_epochs=warmup)
    schedule = Schedule.of(cfg, 25)
    keras_lr = schedule.keras(0.02)
    steps = np.arange(0, 4 * 25 + 5)
    ours = np.array([0.02 * float(schedule.factor(tf.constant(s, tf.int64))) for s in steps])
    theirs = np.array([float(keras_lr(s)) if callable(keras_lr) else keras_lr for s in steps])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-9)
    if kind == "cosine":
        assert ours[0] == (0.0 if warmup else 0.02) and ours[-1] == pytest.approx(0.0, abs=1e-9)
        assert ours[warmup * 25] == pytest.approx(0.02)  # the peak, after the warm-up
    if kind == "step":  # x0.1 after step 50 (half), x0.01 after step 75
        assert (ours[50], ours[51], ours[75], ours[76]) == pytest.approx((0.02, 0.002, 0.002, 0.0002))


@pytest.mark.parametrize(("optimizer", "lr", "momentum", "kind", "warmup", "decay"), [
    ("adam", 0.002, 0.0, "cosine", 1, 0.05),
    ("sgd", 0.05, 0.9, "step", 0, 0.01),
    ("adam", 0.001, 0.0, "constant", 0, 0.1),
])
def test_schedules_and_weight_decay_train_as_keras_does(data, optimizer, lr, momentum, kind, warmup,
                                                        decay):
    """Three epochs of 100 steps: member 1 of a 2-stack vs the same model trained with Keras'
    own optimizer, schedule object and (decoupled) weight_decay, train_on_batch by batch."""
    epochs, spe = 3, 100
    cfg = TrainConfig(optimizer, lr, momentum, BATCH, epochs, 0, weight_decay=decay,
                      lr_schedule=kind, warmup_epochs=warmup)
    mc = ModelConfig((64,), "relu")
    members = [build_model(mc, spec(n), s) for n, s in (("glorot_uniform", 5), ("he_normal", 1))]
    alone = compile_model(build_model(mc, spec("he_normal"), 1), cfg, spe)
    x, y = data["x_train"], data["y_train"]
    stack = StackedMLP(members, "relu", cfg, steps_per_epoch=spe)
    orders = [epoch_order(len(y), 0, e)[: spe * BATCH] for e in range(1, epochs + 1)]

    def keras_epochs(model):
        for order in orders:
            for i in range(0, len(order), BATCH):
                model.train_on_batch(x[order[i:i + BATCH]], y[order[i:i + BATCH]])
        return model.get_weights()

    for order in orders:
        stack.train_epoch(tf.constant(x), tf.constant(y), order)
    want = keras_epochs(alone)
    stack.write_back(members)
    for got, expected in zip(members[1].get_weights(), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=5e-5)
    # Weight decay did something: the same training without it ends elsewhere.
    plain = TrainConfig(optimizer, lr, momentum, BATCH, epochs, 0, weight_decay=0.0,
                        lr_schedule=kind, warmup_epochs=warmup)
    undecayed = keras_epochs(compile_model(build_model(mc, spec("he_normal"), 1), plain, spe))
    assert np.abs(undecayed[0] - want[0]).max() > 1e-3
