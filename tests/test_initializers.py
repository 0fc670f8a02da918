"""Every registered initializer against its formula: moments, limits, structure, seeds, saving.

The expected moments below are written out independently of the registry's own text, so a wrong
formula (or wrong fan_in/fan_out) in the registry fails here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import keras
import numpy as np
import pytest

from initbench.config import InitializerSpec, ModelConfig
from initbench.init import registry as initializers
from initbench.train.model import build_model

DENSE = (1024, 512)  # fan_in 1024, fan_out 512
CONV = (3, 3, 64, 128)  # fan_in 3*3*64 = 576, fan_out 3*3*128 = 1152
TRUNC = 0.87962566103423978  # sd of a standard normal truncated at +-2
KURT_TRUNC = 2.3655  # kurtosis of a standard normal truncated at +-2 (normal: 3)


def fans(shape):
    if len(shape) == 2:
        return shape[0], shape[1]
    rf = math.prod(shape[:-2])
    return rf * shape[-2], rf * shape[-1]


class Case(NamedTuple):
    name: str
    args: dict
    # (fan_in, fan_out, rows, cols) -> (mean, variance, kurtosis)
    moments: object


def _vs(n_of, scale=1.0, dist="trunc"):
    kurt = {"trunc": KURT_TRUNC, "normal": 3.0, "uniform": 1.8}[dist]
    return lambda fi, fo, r, c: (0.0, scale / n_of(fi, fo), kurt)


def _sparse(sparsity, sd):
    def moments(fi, fo, r, c):
        k = max(1, math.floor((1 - sparsity) * fi + 0.5))
        return 0.0, k / fi * sd**2, 3.0 * fi / k
    return moments


FAN_IN, FAN_OUT = (lambda fi, fo: fi), (lambda fi, fo: fo)
FAN_AVG = lambda fi, fo: (fi + fo) / 2  # noqa: E731
CASES = [
    Case("zeros", {}, lambda *_: (0.0, 0.0, 1.0)),
    Case("constant", {"value": 0.3}, lambda *_: (0.3, 0.0, 1.0)),
    Case("random_uniform", {}, lambda *_: (0.0, 0.1**2 / 12, 1.8)),
    Case("random_uniform", {"minval": -0.1, "maxval": 0.3}, lambda *_: (0.1, 0.4**2 / 12, 1.8)),
    Case("random_normal", {}, lambda *_: (0.0, 0.05**2, 3.0)),
    Case("gaussian", {"mean": 1.0, "stddev": 0.5}, lambda *_: (1.0, 0.25, 3.0)),
    Case("truncated_normal", {"stddev": 0.2}, lambda *_: (0.0, (0.2 * TRUNC) ** 2, KURT_TRUNC)),
    Case("glorot_uniform", {}, _vs(FAN_AVG, 1.0, "uniform")),
    Case("glorot_normal", {}, _vs(FAN_AVG)),
    Case("he_uniform", {}, _vs(FAN_IN, 2.0, "uniform")),
    Case("he_normal", {}, _vs(FAN_IN, 2.0)),
    Case("he_uniform", {"negative_slope": 0.2}, _vs(FAN_IN, 2 / 1.04, "uniform")),
    Case("he_normal", {"negative_slope": 0.2}, _vs(FAN_IN, 2 / 1.04)),
    Case("lecun_uniform", {}, _vs(FAN_IN, 1.0, "uniform")),
    Case("lecun_normal", {}, _vs(FAN_IN)),
    Case("standard_uniform", {}, _vs(FAN_IN, 1 / 3, "uniform")),  # Var 1 / (3 fan_in)
    Case("pytorch_default", {}, _vs(FAN_IN, 1 / 3, "uniform")),  # its kernel; bias: test_knobs
    Case("variance_scaling", {}, _vs(FAN_IN)),
    Case("variance_scaling", {"scale": 3.0, "mode": "fan_out", "distribution": "uniform"},
         _vs(FAN_OUT, 3.0, "uniform")),
    Case("variance_scaling", {"scale": 0.5, "mode": "fan_avg", "distribution": "untruncated_normal"},
         _vs(FAN_AVG, 0.5, "normal")),
    Case("orthogonal", {"gain": 2.0}, lambda fi, fo, r, c: (0.0, 4.0 / max(r, c), 3.0)),
    Case("lsuv", {}, lambda fi, fo, r, c: (0.0, 1.0 / max(r, c), 3.0)),  # its orthogonal base
    Case("sparse", {}, _sparse(0.9, 0.01)),
    Case("sparse", {"sparsity": 0.5, "stddev": 1.0}, _sparse(0.5, 1.0)),
]
IDS = [f"{c.name}-{'-'.join(map(str, c.args.values())) or 'default'}" for c in CASES]


def sample(name, shape, seed=1, args=None, dtype=None, activation=None) -> np.ndarray:
    init = initializers.make(name, seed, args, activation=activation)
    return keras.ops.convert_to_numpy(init(shape, dtype=dtype)).astype(np.float64)


def test_every_registered_initializer_is_covered():
    assert {c.name for c in CASES} | {"identity"} == set(initializers.names())


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_mean_and_variance_match_formula(case, shape):
    fi, fo = fans(shape)
    w = sample(case.name, shape, args=case.args)
    assert w.shape == shape
    mean, var, kurt = case.moments(fi, fo, math.prod(shape[:-1]), shape[-1])
    n = w.size
    # 5 standard errors: sd(mean) = sqrt(var/N), sd(sample variance) = var * sqrt((kurt - 1)/N).
    assert abs(w.mean() - mean) <= 5 * math.sqrt(var / n) + 1e-7
    assert abs(w.var() - var) <= 5 * var * math.sqrt((kurt - 1) / n) + 1e-12


def test_fans_of_the_study_shapes():
    assert fans(DENSE) == (1024, 512) and fans(CONV) == (576, 1152)
    # Glorot on the conv kernel: the receptive field must count (else Var = 2 / (64 + 128)).
    w = sample("glorot_normal", CONV)
    assert w.var() == pytest.approx(2 / (576 + 1152), rel=0.02)


UNIFORM = [("random_uniform", {"minval": -0.1, "maxval": 0.3}, lambda fi, fo: (-0.1, 0.3)),
           ("glorot_uniform", {}, lambda fi, fo: (math.sqrt(6 / (fi + fo)),) * 2),
           ("he_uniform", {}, lambda fi, fo: (math.sqrt(6 / fi),) * 2),
           ("he_uniform", {"negative_slope": 0.5}, lambda fi, fo: (math.sqrt(6 / (1.25 * fi)),) * 2),
           ("lecun_uniform", {}, lambda fi, fo: (math.sqrt(3 / fi),) * 2),
           ("standard_uniform", {}, lambda fi, fo: (1 / math.sqrt(fi),) * 2),
           ("pytorch_default", {}, lambda fi, fo: (1 / math.sqrt(fi),) * 2),
           ("variance_scaling", {"scale": 3.0, "mode": "fan_out", "distribution": "uniform"},
            lambda fi, fo: (math.sqrt(9 / fo),) * 2)]


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv"])
@pytest.mark.parametrize(("name", "args", "limits"), UNIFORM, ids=[u[0] for u in UNIFORM])
def test_uniform_schemes_stay_within_their_limit(name, args, limits, shape):
    low, high = limits(*fans(shape))
    low = low if name == "random_uniform" else -low
    w = sample(name, shape, args=args)
    assert w.min() >= low - 1e-7 and w.max() <= high + 1e-7
    span = high - low
    assert w.min() < low + 0.001 * span and w.max() > high - 0.001 * span  # the whole range is used


TRUNCATED = [("glorot_normal", {}, lambda fi, fo: 2 / (fi + fo)),
             ("he_normal", {}, lambda fi, fo: 2 / fi),
             ("he_normal", {"negative_slope": 0.2}, lambda fi, fo: 2 / (1.04 * fi)),
             ("lecun_normal", {}, lambda fi, fo: 1 / fi),
             ("variance_scaling", {"scale": 2.0, "mode": "fan_avg"}, lambda fi, fo: 4 / (fi + fo))]


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv"])
@pytest.mark.parametrize(("name", "args", "variance"), TRUNCATED, ids=[t[0] for t in TRUNCATED])
def test_truncated_schemes_stay_within_two_sigma(name, args, variance, shape):
    sigma = math.sqrt(variance(*fans(shape))) / TRUNC  # the pre-truncation sigma
    w = np.abs(sample(name, shape, args=args))
    assert w.max() <= 2 * sigma * (1 + 1e-6) and w.max() > 1.95 * sigma


def test_truncated_normal_is_cut_at_two_stddev_around_the_mean():
    w = sample("truncated_normal", DENSE, args={"mean": 1.0, "stddev": 0.2})
    assert np.abs(w - 1.0).max() <= 0.4 + 1e-6 and np.abs(w - 1.0).max() > 0.39


@pytest.mark.parametrize("shape", [DENSE, (256, 1024), CONV], ids=["tall", "wide", "conv"])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(shape, gain):
    w = sample("orthogonal", shape, args={"gain": gain}, dtype="float64")
    m = w.reshape(-1, shape[-1])  # Keras flattens to (prod(shape[:-1]), shape[-1])
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(len(gram)), atol=1e-5)
    # float32, the dtype layers use: orthonormal to float32 round-off
    m32 = sample("orthogonal", shape, args={"gain": gain}).reshape(m.shape)
    gram32 = m32.T @ m32 if m.shape[0] >= m.shape[1] else m32 @ m32.T
    np.testing.assert_allclose(gram32, gain**2 * np.eye(len(gram)), atol=1e-4 * gain**2)


@pytest.mark.parametrize(("shape", "args", "k"), [
    (DENSE, {}, 102),  # round(0.1 * 1024 = 102.4)
    (CONV, {}, 58),  # fan_in 576: round(57.6)
    ((5, 40), {"sparsity": 0.5}, 3),  # 2.5 rounds half up
    ((100, 7), {"sparsity": 0.999}, 1),  # at least one
    ((30, 20), {"sparsity": 0.0}, 30),  # dense
])
def test_sparse_has_exactly_k_nonzeros_per_output_unit(shape, args, k):
    w = sample("sparse", shape, args=args).reshape(-1, shape[-1])
    np.testing.assert_array_equal((w != 0).sum(axis=0), np.full(shape[-1], k))
    other = sample("sparse", shape, seed=2, args=args).reshape(w.shape)
    assert not np.array_equal(w != 0, other != 0) or k == w.shape[0]  # positions are random


@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_identity_is_gain_times_eye_and_square_only(gain):
    np.testing.assert_array_equal(sample("identity", (64, 64), args={"gain": gain}), gain * np.eye(64))
    for shape in [(784, 128), (3, 3, 8, 8)]:
        with pytest.raises(ValueError, match=rf"square 2D kernel .*got shape \({shape[0]}, {shape[1]}"):
            sample("identity", shape)


RANDOM = sorted(set(initializers.names()) - {"zeros", "constant", "identity"})


@pytest.mark.parametrize("name", RANDOM)
def test_same_seed_same_weights_other_seed_other_weights(name):
    a, b = initializers.make(name, 7), initializers.make(name, 7)
    assert a is not b
    np.testing.assert_array_equal(sample(name, (64, 32), 7), sample(name, (64, 32), 7))
    assert not np.array_equal(sample(name, (64, 32), 7), sample(name, (64, 32), 8))


def _kernels(model):
    return [layer.kernel.numpy() for layer in model.layers if isinstance(layer, keras.layers.Dense)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside Keras' model.save
@pytest.mark.parametrize("name", initializers.names())
def test_config_round_trip_and_saved_model_reloads_without_custom_objects(name, tmp_path):
    args = {"gain": "auto"} if name in ("orthogonal", "identity") else {}
    init = initializers.make(name, 5, args, activation="tanh")
    again = type(init).from_config(init.get_config())
    assert again.get_config() == init.get_config()
    restored = keras.initializers.deserialize(keras.initializers.serialize(init))
    values = [keras.ops.convert_to_numpy(i((32, 32))) for i in (init, again, restored)]
    np.testing.assert_array_equal(values[0], values[1])
    np.testing.assert_array_equal(values[0], values[2])

    wide = name == "identity"  # every kernel must be square: 784 -> 784 -> 784
    cfg, classes = ModelConfig((784,) if wide else (16, 16), "relu"), 784 if wide else 10
    spec = InitializerSpec(name, name, initializers.resolve_args(name, args))
    model = build_model(cfg, spec, seed=3, n_classes=classes)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")  # no custom_objects
    for w, w2 in zip(_kernels(model), _kernels(loaded), strict=True):
        np.testing.assert_array_equal(w, w2)
    for layer, layer2 in zip(model.layers, loaded.layers, strict=True):
        if isinstance(layer, keras.layers.Dense):
            assert type(layer2.kernel_initializer) is type(layer.kernel_initializer)
            assert layer2.kernel_initializer.get_config() == layer.kernel_initializer.get_config()
    if wide:  # identity with gain: auto is I for the relu layer and for the (linear) output
        w0, w1 = _kernels(model)
        np.testing.assert_array_equal(w0, np.eye(784))
        np.testing.assert_array_equal(w1, np.eye(784))
