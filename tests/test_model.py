"""Model building: the study's architecture, per-layer seeds, zero biases, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from initbench.config import InitializerSpec, ModelConfig, TrainConfig
from initbench.train.model import build_model, compile_model, layer_seed, make_optimizer

from .conftest import PLAIN


def spec(name="he_normal", **args):
    from initbench.init.registry import resolve_args

    return InitializerSpec(name, name, resolve_args(name, args))


def kernels(model):
    return [layer.get_weights()[0] for layer in model.layers if layer.get_weights()]


def test_default_architecture():
    model = build_model(ModelConfig((128,), "relu"), spec(), seed=42)
    dense = [layer for layer in model.layers if layer.get_weights()]
    assert [layer.units for layer in dense] == [128, 10]
    assert dense[0].activation.__name__ == "relu" and dense[1].activation.__name__ == "softmax"
    assert model.count_params() == 784 * 128 + 128 + 128 * 10 + 10  # 101,770
    assert model.input_shape == (None, 28, 28)
    for layer in dense:
        assert not layer.get_weights()[1].any()  # biases start at zero


def test_kernel_statistics_follow_the_initializer():
    model = build_model(ModelConfig((512, 512), "relu"), spec("he_normal"), seed=0)
    w0, w1, _ = kernels(model)
    assert w0.std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    assert w1.std() == pytest.approx(np.sqrt(2 / 512), rel=0.02)


def test_layers_get_distinct_seeds_and_models_are_reproducible():
    cfg = ModelConfig((100, 100), "tanh")
    a = build_model(cfg, spec("glorot_uniform"), seed=3)
    b = build_model(cfg, spec("glorot_uniform"), seed=3)
    c = build_model(cfg, spec("glorot_uniform"), seed=4)
    for wa, wb in zip(kernels(a), kernels(b), strict=True):
        np.testing.assert_array_equal(wa, wb)
    # Two same-shaped layers (100x100) must not share draws.
    assert not np.array_equal(kernels(a)[1], build_model(ModelConfig((100, 100, 100), "tanh"),
                                                         spec("glorot_uniform"), 3).get_weights()[4])
    assert not np.array_equal(kernels(a)[0], kernels(c)[0])
    assert len({layer_seed(3, i) for i in range(50)}) == 50


def test_same_shape_layers_differ():
    model = build_model(ModelConfig((64, 64, 64), "relu"), spec("random_normal"), seed=1)
    _, w1, w2, _ = kernels(model)
    assert w1.shape == w2.shape and not np.array_equal(w1, w2)


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_optimizers(name):
    opt = make_optimizer(TrainConfig(name, 0.01, 0.9, 32, 1, 0, **PLAIN))
    assert float(opt.learning_rate) == pytest.approx(0.01)
    if name == "sgd":
        assert opt.momentum == pytest.approx(0.9)


def test_optimizers_carry_the_schedule_and_weight_decay(tmp_path):
    """The saved model's optimizer is the cell's: Keras' own schedule object and weight_decay,
    and it survives a save and a reload."""
    import keras

    cfg = TrainConfig("adam", 0.01, 0.0, 32, 4, 0, weight_decay=0.02, lr_schedule="cosine",
                      warmup_epochs=1)
    opt = make_optimizer(cfg, steps_per_epoch=10, learning_rate=0.003)
    assert opt.weight_decay == pytest.approx(0.02)
    schedule = opt._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert (schedule.warmup_target, schedule.warmup_steps, schedule.decay_steps) == (0.003, 10, 30)
    assert make_optimizer(TrainConfig("sgd", 0.1, 0.9, 32, 1, 0, **PLAIN)).weight_decay is None
    with pytest.raises(ValueError, match="a cosine schedule needs the steps per epoch"):
        make_optimizer(cfg)
    model = compile_model(build_model(ModelConfig((8,), "relu"), spec(), 0), cfg, 10)
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras").optimizer
    assert again.weight_decay == pytest.approx(0.02)
    assert again.get_config()["learning_rate"]["class_name"] == "CosineDecay"


def test_a_few_steps_reduce_the_loss():
    rng = np.random.default_rng(0)
    x = rng.random((256, 28, 28), dtype=np.float32)
    y = (x.reshape(256, -1)[:, :10].argmax(1)).astype(np.int64)
    model = compile_model(build_model(ModelConfig((32,), "relu"), spec(), 0),
                          TrainConfig("adam", 0.01, 0.0, 32, 1, 0, **PLAIN))
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
