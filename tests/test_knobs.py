"""The knobs published experiments use: bias draws (sigma_b, PyTorch's default), fan-out phase
weights, a step budget, shifted inputs, softsign."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from scipy import stats

from initbench.config import ConfigError, DataConfig, ModelConfig, TrainConfig, from_dict
from initbench.data import normalize
from initbench.init import registry
from initbench.train.model import build_model
from initbench.train.stacked import StackedMLP

from .conftest import PLAIN, set_param, spec

WIDE = ModelConfig((3000, 3000), "tanh")  # 3000 biases per hidden layer: tight moment tests


def biases(model: keras.Model) -> list[np.ndarray]:
    return [layer.bias.numpy().astype(np.float64) for layer in model.layers
            if isinstance(layer, keras.layers.Dense)]


def kernels(model: keras.Model) -> list[np.ndarray]:
    return [layer.kernel.numpy().astype(np.float64) for layer in model.layers
            if isinstance(layer, keras.layers.Dense)]


def test_pytorch_default_draws_kernel_and_bias_uniform_in_one_over_sqrt_fan_in():
    model = build_model(WIDE, spec("pytorch_default"), 3)
    for fan_in, w, b in zip((784, 3000, 3000), kernels(model), biases(model), strict=True):
        bound = 1 / math.sqrt(fan_in)
        for v in (w.ravel(), b):
            assert np.abs(v).max() <= bound * (1 + 1e-6)
            # U(-l, l): variance l^2 / 3 = 1 / (3 fan_in); Kolmogorov-Smirnov against the law
            assert stats.kstest(v, stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3
        assert abs(b.var() * 3 * fan_in - 1) < 5 * math.sqrt(0.8 / len(b))  # Var(U^2) = 4 l^4 / 45
    first, second = biases(model)[:2]
    assert not np.allclose(first, second)  # a distinct seed per layer's bias
    assert np.array_equal(biases(build_model(WIDE, spec("pytorch_default"), 3))[1], second)
    assert not np.array_equal(biases(build_model(WIDE, spec("pytorch_default"), 4))[1], second)


def test_sigma_b_draws_gaussian_biases_and_zero_stays_zero():
    model = build_model(WIDE, spec("lecun_normal"), 0, sigma_b=math.sqrt(0.05))
    for b in biases(model):
        assert stats.kstest(b, stats.norm(0, math.sqrt(0.05)).cdf).pvalue > 1e-3
    # the chi-square interval of the variance holds 0.05
    b = biases(model)[0]
    lo, hi = (b.size * b.var() / stats.chi2.ppf(q, b.size) for q in (0.9995, 0.0005))
    assert lo < 0.05 < hi
    assert all(not b.any() for b in biases(build_model(WIDE, spec("lecun_normal"), 0)))
    # the kernels do not depend on the bias rule (the same seeds draw them)
    for a, c in zip(kernels(model), kernels(build_model(WIDE, spec("lecun_normal"), 0)), strict=True):
        np.testing.assert_array_equal(a, c)


def test_phase_weights_scale_by_fan_out_when_asked(raw_params):
    raw_params["study"]["phase"].update(mode="fan_out", sigma_w=[2.0], depths=[2], width=64)
    cell = from_dict(raw_params).cell("phase-2-relu")
    model = build_model(cell.model, cell.initializers["sw_2"], 0)
    w = kernels(model)[0]  # (784, 64): Var = sigma_w^2 / fan_out
    assert abs(w.var() * 64 / 4.0 - 1) < 0.02


def test_sigma_b_and_an_initializer_with_its_own_bias_cannot_share_a_cell(raw_params):
    raw_params["study"]["depth"]["sigma_b"] = 0.1
    raw_params["study"]["depth"]["initializers"]["torch"] = {"name": "pytorch_default"}
    with pytest.raises(ConfigError, match=r"study\.depth\.sigma_b: got 0\.1.*torch"):
        from_dict(raw_params)


@pytest.mark.parametrize(("key", "value", "says"), [
    (("train", "steps"), 0, r"train\.steps: got 0"),
    (("data", "shift"), 2.0, r"data\.shift: got 2\.0"),
    (("study", "phase", "mode"), "fan_avg", r"study\.phase\.mode: got 'fan_avg'"),
    (("study", "phase", "sigma_b"), -1.0, r"study\.phase\.sigma_b: got -1\.0"),
])
def test_bad_knobs_get_one_line(raw_params, key, value, says):
    set_param(raw_params, key, value)
    with pytest.raises(ConfigError, match=says) as err:
        from_dict(raw_params)
    assert "\n" not in str(err.value)


def test_the_step_budget_stops_at_exactly_that_many_updates(mnist):
    arrays, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 2000, 500))
    x, y = arrays["x_train"], arrays["y_train"]  # 1800 images: 15 batches of 128 per epoch
    cfg = TrainConfig("sgd", 0.01, 0.0, 128, 3, 0, **PLAIN, steps=37)
    stack = StackedMLP([build_model(ModelConfig((16,), "relu"), spec("he_normal"), 0)], "relu", cfg)
    history = stack.fit(x, y, arrays["x_val"], arrays["y_val"], 3, 0)[0]
    assert int(stack.optimizer.iterations.numpy()) == 37
    assert len(history) == 3  # 15 + 15 + 7 updates
    one = TrainConfig("sgd", 0.01, 0.0, 128, 3, 0, **PLAIN, steps=15)
    stack = StackedMLP([build_model(ModelConfig((16,), "relu"), spec("he_normal"), 0)], "relu", one)
    assert len(stack.fit(x, y, arrays["x_val"], arrays["y_val"], 3, 0)[0]) == 1
    assert int(stack.optimizer.iterations.numpy()) == 15


@pytest.mark.parametrize(("section", "steps", "says"), [
    (("train",), 10**6, r"train\.steps: got 1000000; allowed: at most train\.epochs x batches "
                         r"per epoch = 10 x 1688 = 16880"),
    (("study", "phase"), 200, r"study\.phase\.steps: got 200; allowed: at most study\.phase\.epochs"
                               r" x batches per epoch = 2 x 79 = 158"),
])
def test_a_step_budget_beyond_the_epochs_fails_in_the_config(raw_params, section, steps, says):
    set_param(raw_params, (*section, "steps"), steps)
    with pytest.raises(ConfigError, match=says):
        from_dict(raw_params)
    set_param(raw_params, (*section, "steps"), 100)
    from_dict(raw_params)


def test_a_step_budget_beyond_the_epochs_is_refused_before_training():
    from initbench.train.schedule import epochs_run

    cfg = TrainConfig("sgd", 0.01, 0.0, 128, 2, 0, **PLAIN, steps=31)
    with pytest.raises(ValueError, match=r"a step budget of 31 updates does not fit 2 epochs x 15"):
        epochs_run(cfg, 15)
    assert epochs_run(TrainConfig("sgd", 0.01, 0.0, 128, 2, 0, **PLAIN, steps=16), 15) == 2


def test_shifted_inputs_are_the_unit_pixels_minus_the_shift(mnist):
    plain, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 1000, 200))
    shifted, st = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 1000, 200, 0.5))
    for k in ("x_train", "x_val", "x_test"):
        np.testing.assert_array_equal(shifted[k], plain[k] - np.float32(0.5))
        assert shifted[k].min() >= -0.5 and shifted[k].max() <= 0.5
    assert st["shift"] == 0.5


def test_softsign_is_an_activation(raw_params):
    raw_params["study"]["phase"]["activations"] = ["softsign"]
    assert "phase-16-softsign" in from_dict(raw_params).cells()
    assert registry.effective_args("glorot_uniform", {}, "softsign") == {}
