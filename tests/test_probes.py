"""The at-init probes against theory on random networks (no training): the correlation map per
layer, the Jacobian's second moment, the per-layer Jacobians, the log norms."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from initbench.report import cmap, meanfield, theory
from initbench.train.diagnostics import jacobian_spectrum
from initbench.train.probes import PAIRS, init_probes
from initbench.train.stacked import StackedMLP

from .conftest import PLAIN

WIDTH, DEPTH, MODELS = 512, 8, 4


def mlp(activation: str, sigma_w2: float, sigma_b: float, seed: int, width: int = WIDTH,
        depth: int = DEPTH, orthogonal: bool = False) -> keras.Model:
    def kernel(i: int) -> keras.initializers.Initializer:
        if orthogonal and i:
            return keras.initializers.Orthogonal(math.sqrt(sigma_w2), seed=seed * 1000 + i)
        return keras.initializers.VarianceScaling(sigma_w2, "fan_in", "untruncated_normal",
                                                  seed=seed * 1000 + i)

    def bias(i: int) -> keras.initializers.Initializer:
        return (keras.initializers.RandomNormal(0.0, sigma_b, seed=seed * 1000 + 500 + i) if sigma_b
                else keras.initializers.Zeros())

    layers = [keras.Input((28, 28)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(width, activation, kernel_initializer=kernel(i),
                                  bias_initializer=bias(i)) for i in range(depth)]
    layers.append(keras.layers.Dense(10, "softmax", kernel_initializer=kernel(depth)))
    return keras.Sequential(layers)


def stack(models: list[keras.Model], activation: str) -> StackedMLP:
    from initbench.config import TrainConfig

    return StackedMLP(models, activation, TrainConfig("sgd", 0.01, 0.0, 32, 1, 0, **PLAIN))


@pytest.fixture(scope="module")
def images(mnist) -> tuple[np.ndarray, np.ndarray]:
    from initbench.config import DataConfig
    from initbench.data import normalize

    arrays, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 1000, 200, 0.5))
    return arrays["x_train"][:2 * PAIRS], arrays["y_train"][:2 * PAIRS]


@pytest.mark.parametrize(("activation", "sigma_w2", "sigma_b"), [
    ("tanh", 1.0, 0.0), ("tanh", 1.76, math.sqrt(0.05)), ("tanh", 3.0, math.sqrt(0.05)),
    ("relu", 2.0, 0.0), ("relu", 1.6, 0.3),
])
def test_the_measured_correlation_map_follows_its_iteration(images, activation, sigma_w2, sigma_b):
    x, y = images
    models = [mlp(activation, sigma_w2, sigma_b, s) for s in range(MODELS)]
    p = init_probes(stack(models, activation), x, y)
    q, c = p["pair_q"], p["pair_c"]  # (K, layers, 2P), (K, layers, P)
    assert c.shape == (MODELS, DEPTH + 1, PAIRS)
    s2 = [sigma_w2] * (DEPTH - 1)
    pred = np.stack([cmap.propagate_pairs(activation, q[k, 0, 0::2], q[k, 0, 1::2], c[k, 0], s2,
                                          sigma_b**2) for k in range(MODELS)])
    gap = c[:, DEPTH - 1] - pred  # (K, P): the last hidden layer
    # Finite width: each c_L fluctuates by O(1 / sqrt(width)) around the map; the mean over
    # 4 models x 16 pairs is held to 4 of its standard errors plus an O(1 / width) bias.
    se = gap.std(ddof=1) / math.sqrt(gap.size)
    assert abs(gap.mean()) < 4 * se + 2 / WIDTH, (gap.mean(), se)
    if sigma_b:  # and the map without biases is rejected: the bias is measured, not ignored
        wrong = np.stack([cmap.propagate_pairs(activation, q[k, 0, 0::2], q[k, 0, 1::2], c[k, 0],
                                               s2) for k in range(MODELS)])
        assert abs((c[:, DEPTH - 1] - wrong).mean()) > 10 * se + 2 / WIDTH


def test_the_vectorized_map_equals_the_reference_quadrature():
    rng = np.random.default_rng(3)
    for activation in ("tanh", "relu", "sigmoid", "softsign", "linear"):
        qa, qb, c = rng.uniform(0.2, 4, 5), rng.uniform(0.2, 4, 5), rng.uniform(-0.3, 0.99, 5)
        fast = cmap.propagate_pairs(activation, qa, qb, c, [1.7, 1.2, 2.5], 0.05)
        slow = [meanfield.propagate_pair(activation, *v, [1.7, 1.2, 2.5], 0.05)[-1]
                for v in zip(qa, qb, c, strict=True)]
        np.testing.assert_allclose(fast, slow, atol=5e-5)
    assert np.isnan(cmap.propagate_pairs("tanh", [0.0], [1.0], [0.5], [1.0])).all()


@pytest.mark.parametrize("orthogonal", [False, True])
def test_the_jacobian_second_moment_follows_the_free_probability_rule(images, orthogonal):
    x, y = images
    models = [mlp("tanh", 1.5, 0.0, s, width=256, depth=6, orthogonal=orthogonal) for s in range(3)]
    st = stack(models, "tanh")
    spec = jacobian_spectrum(st, x)
    measured = spec["mean_4th"] / spec["mean_sq"] ** 2 - 1
    q = init_probes(st, x, y)["pair_q"]  # (K, layers, 2P)
    for k in range(3):
        # q_2..q_L of the hidden layers, from the model's own layer 1 (means over the inputs)
        pred = theory.propagate("tanh", float(q[k, 0].mean()), [1.5] * 5)
        rule = theory.jacobian_spread("tanh", pred.q[1:], pred.sigma_w2, orthogonal)
        assert measured[k] == pytest.approx(rule, rel=0.2), (measured[k], rule)
    assert spec["layer_sv_mean"].shape == (3, 5)
    # orthogonal layers: each W_l D_l has singular values gain x |phi'|, none above the gain
    if orthogonal:
        assert (spec["layer_sv_mean"] < math.sqrt(1.5)).all()


def test_the_log_norms_and_backprop_stds_have_a_value_per_input_and_layer(images):
    x, y = images
    p = init_probes(stack([mlp("relu", 2.0, 0.0, s, depth=3) for s in range(2)], "relu"), x, y)
    assert p["log_sq_norm"].shape == (2, len(x)) and np.isfinite(p["log_sq_norm"]).all()
    assert p["backprop_std"].shape == (2, 4) and (p["backprop_std"] > 0).all()
