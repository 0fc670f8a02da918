"""The stacked CNN trains each model exactly as it would train alone (Keras' own train_on_batch)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from initbench.config import DataConfig, TrainConfig
from initbench.data import normalize
from initbench.train.model import compile_model
from initbench.train.stacked import epoch_order
from initbench.train.stacked_conv import StackedCNN, build_cnn, stage_sizes

from .conftest import PLAIN, spec

BATCH = 32


@pytest.fixture(scope="module")
def data(mnist):
    arrays, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 4000, 500))
    return arrays


def test_the_architecture():
    model = build_cnn(8, 3, "relu", spec("he_normal"), 0)
    assert stage_sizes(3) == (2, 1) and stage_sizes(1) == (1, 0)
    assert [w.shape for w in model.get_weights()] == [
        (3, 3, 1, 8), (8,), (3, 3, 8, 8), (8,), (3, 3, 8, 8), (8,), (7 * 7 * 8, 10), (10,)]
    # He on a conv kernel: Var = 2 / fan_in, fan_in = receptive field x input channels.
    kernel = build_cnn(64, 2, "relu", spec("he_normal"), 1).get_weights()[2]
    assert kernel.std() == pytest.approx(np.sqrt(2 / (9 * 64)), rel=0.05)


@pytest.mark.parametrize(("optimizer", "lr", "momentum", "depth", "activation", "epochs"), [
    ("adam", 0.002, 0.0, 2, "relu", 3),
    ("sgd", 0.01, 0.9, 3, "tanh", 1),
])
def test_a_cnn_in_a_stack_trains_exactly_as_alone(data, optimizer, lr, momentum, depth, activation,
                                                  epochs):
    """Epochs of 100 steps: member 1 of a 3-stack vs the same CNN trained alone by Keras; then
    both predict the same on held-out images. With SGD and momentum 0.9 (the conv study's
    optimizer) the rounding differences between Keras' XLA program and the stack's oneDNN
    kernels are amplified about 60x per 100 steps, and by how much depends on the CPU: on
    2026-11-30's AMD EPYC VM 2.5e-7 after 100 steps, 1.5e-5 after 200, 5.8e-4 after 300 (which
    an Intel Xeon VM kept under 5e-5 the day before), so that case stops at 100 steps. Adam's
    normalized steps do not amplify them (5e-7 after 300 steps there)."""
    steps, channels = 100, 4
    cfg = TrainConfig(optimizer, lr, momentum, BATCH, epochs, 0, **PLAIN)
    members = [build_cnn(channels, depth, activation, spec(n), s)
               for n, s in (("glorot_uniform", 5), ("he_normal", 1), ("lecun_normal", 9))]
    alone = compile_model(build_cnn(channels, depth, activation, spec("he_normal"), 1), cfg)
    x, y = data["x_train"], data["y_train"]
    stack = StackedCNN(members, activation, cfg)
    for epoch in range(1, epochs + 1):
        order = epoch_order(len(y), 0, epoch)[: steps * BATCH]
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


def test_conv_diagnostics_lsuv_and_a_whole_conv_cell(data):
    """Per-layer statistics of a stacked CNN (a conv unit is a channel), LSUV on conv outputs, and
    a conv cell trained and tested by the cell trainer."""
    from initbench.config import CellConfig, ConvModelConfig
    from initbench.init import lsuv
    from initbench.train.cell import plan, train_cell
    from initbench.train.diagnostics import jacobian_spectrum, signal_stats

    models = [build_cnn(4, 3, "relu", spec(n), 2) for n in ("he_normal", "lsuv")]
    report = lsuv.lsuv_init(models[1], data["x_train"][:128], tol=0.05, max_iter=5)
    assert list(report) == ["conv_0", "conv_1", "conv_2", "output"]
    for layer in lsuv.dense_layers(models[1]):
        z = lsuv.pre_activation(models[1], layer, data["x_train"][:128])
        assert z.var() == pytest.approx(1, abs=0.05)
    cfg = TrainConfig("sgd", 0.01, 0.9, BATCH, 1, 0, **PLAIN)
    stack = StackedCNN(models, "relu", cfg)
    stats = signal_stats(stack, data["x_train"][:64], data["y_train"][:64], "relu")
    assert {k: v.shape for k, v in stats.items()} == {k: (2, 4) for k in stats}
    dead = stats["dead_fraction"]
    assert np.all(np.isfinite(stats["act_std"])) and np.all((dead >= 0) & (dead <= 1))
    # After LSUV every conv layer's pre-activation std is 1, measured by the stack itself.
    np.testing.assert_allclose(stats["pre_std"][1, :3], 1.0, atol=0.1)
    assert jacobian_spectrum(stack, data["x_train"][:8]) is None
    cell = CellConfig("conv-3-relu", ConvModelConfig(4, 3, "relu"), cfg,
                      {"he_normal": spec("he_normal"), "glorot_uniform": spec("glorot_uniform")},
                      1, None, False, "mnist")
    small = {k: v[:600] for k, v in data.items()}
    results, timing = train_cell(cell, plan(cell, 42, True), small, 64, log=lambda *_: None)
    assert [r["label"] for r in results] == ["he_normal", "glorot_uniform"]
    assert all(r["test_accuracy"] > 0.2 and len(r["diagnostics"]["act_std"]) == 2 for r in results)
    assert timing["model_epochs"] == 2
