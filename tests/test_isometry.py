"""The input-output Jacobian spectrum at initialization (dynamical isometry, Pennington et al. 2017)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from initbench.config import TrainConfig
from initbench.train.diagnostics import JACOBIAN_INPUTS, jacobian_spectrum
from initbench.train.stacked import StackedMLP

from .conftest import PLAIN

CFG = TrainConfig("sgd", 0.01, 0.0, 32, 1, 0, **PLAIN)


def mlp(widths, activation, init, seed):
    layers = [keras.Input((28, 28)), keras.layers.Flatten()]
    for i, w in enumerate(widths):
        layers.append(keras.layers.Dense(w, activation, kernel_initializer=init(seed * 100 + i)))
    layers.append(keras.layers.Dense(10, "softmax", kernel_initializer=init(seed * 100 + 99)))
    return keras.Sequential(layers)


def spectrum_of(models, activation, x):
    """(percentiles, mean square) of J's singular values per model."""
    r = jacobian_spectrum(StackedMLP(models, activation, CFG), x)
    return r["percentiles"], r["mean_sq"]


def test_orthogonal_linear_net_is_an_exact_isometry_and_gaussian_is_not():
    x = np.random.default_rng(0).random((16, 28, 28), dtype=np.float32)
    ortho = [mlp([64] * 12, "linear", lambda s: keras.initializers.Orthogonal(1.0, seed=s), i)
             for i in range(2)]
    spectrum, mean_sq = spectrum_of(ortho, "linear", x)
    assert spectrum.shape == (2, 101)
    np.testing.assert_allclose(mean_sq, 1.0, atol=1e-5)
    np.testing.assert_allclose(spectrum, 1.0, atol=1e-5)  # every singular value is 1
    gauss = [mlp([64] * 12, "linear", lambda s: keras.initializers.RandomNormal(0, 1 / 8, seed=s), i)
             for i in range(2)]
    g, g_sq = spectrum_of(gauss, "linear", x)
    # Same variance (1 / fan_in), so the same mean-field mean square singular value (~1), but a
    # product of 11 Gaussian matrices spreads the spectrum over orders of magnitude.
    assert (g[:, 95] / g[:, 5] > 10).all()
    assert (g_sq > 0.2).all() and (g_sq < 5).all()


def test_spectrum_matches_the_autodiff_jacobian():
    x = np.random.default_rng(1).random((JACOBIAN_INPUTS, 28, 28), dtype=np.float32)
    models = [mlp([32] * 4, "tanh", lambda s: keras.initializers.GlorotNormal(seed=s), i)
              for i in range(2)]
    spectrum, mean_sq = spectrum_of(models, "tanh", x)
    for k, model in enumerate(models):
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        values = []
        for b in range(JACOBIAN_INPUTS):
            h1 = dense[0](tf.reshape(x[b:b + 1], (1, -1)))
            with tf.GradientTape() as tape:
                tape.watch(h1)
                h = h1
                for layer in dense[1:-1]:
                    h = layer(h)
            jac = tape.batch_jacobian(h, h1)[0].numpy()
            values.append(np.linalg.svd(jac.astype(np.float64), compute_uv=False))
        pooled = np.concatenate(values)
        expected = np.percentile(pooled, np.linspace(0, 100, 101))
        np.testing.assert_allclose(spectrum[k], expected, rtol=1e-4, atol=1e-6)
        assert mean_sq[k] == pytest.approx(np.mean(pooled**2), rel=1e-4)


def test_no_spectrum_without_square_hidden_layers():
    x = np.zeros((8, 28, 28), np.float32)
    one = [mlp([16], "relu", lambda s: keras.initializers.HeNormal(seed=s), 0)]
    assert jacobian_spectrum(StackedMLP(one, "relu", CFG), x) is None
    uneven = [mlp([16, 8], "relu", lambda s: keras.initializers.HeNormal(seed=s), 0)]
    assert jacobian_spectrum(StackedMLP(uneven, "relu", CFG), x) is None


def _synthetic(label: str, seed: int, spread: float, mean_sq: float) -> dict:
    """A linear 3-hidden-layer member of width 4 with sigma_w^2 = 4 x 0.5^2 = 1: theory says 1."""
    p = np.geomspace(1 / np.sqrt(spread), np.sqrt(spread), 101).tolist()
    diag = {"pre_mean": [[0.0] * 4], "pre_std": [[1.0] * 4], "kernel_std": [[0.1, 0.5, 0.5, 0.3]]}
    return {"label": label, "seed_index": seed, "diagnostics": diag,
            "jacobian_sv_percentiles": p, "jacobian_mean_sq": mean_sq}


def test_isometry_table_checks_theory_and_the_orthogonal_claim():
    from initbench.report import isometry

    def cell(ortho_spread: float) -> dict:
        members = [_synthetic("orthogonal_g1", i, ortho_spread, 1.0) for i in range(3)]
        members += [_synthetic("lecun_normal", i, 30.0 + i, 1.02 - 0.02 * i) for i in range(3)]
        members += [_synthetic("wrong", i, 5.0, 9.0) for i in range(3)]
        return {"activation": "linear", "config": {"model.hidden": [4, 4, 4]}, "members": members}

    text = "\n".join(isometry.table(cell(1.5), 0.95))
    # Every seed measures 1: the printed interval is [1, 1], not widened by the 10% tolerance.
    assert ("| orthogonal_g1 | 1 | 1 [1, 1] | +0.00 [+0.00, +0.00] | yes | 0%, 0%, 0% "
            "| 1.44, 1.44, 1.44 |") in text  # p95/p5 of geomspace over 1.5: 1.5^0.9
    assert "| wrong | 1 | 9 [9, 9] | +2.20 [+2.20, +2.20] | **no** |" in text  # 9x: log 9 = 2.20
    assert "✓ Orthogonal weights (gain 1) keep J's spectrum narrower" in text
    assert "✗ Orthogonal" in "\n".join(isometry.table(cell(40.0), 0.95))  # must fail: wider
    relu = {**cell(1.5), "activation": "relu"}  # ReLU cannot be isometric: the claim is not made
    assert "Orthogonal weights" not in "\n".join(isometry.table(relu, 0.95))


def _relu_like(zeros: int, total: int = 2048, seed: int = 0) -> tuple[dict, np.ndarray]:
    """A member whose pooled singular values are ``zeros`` round-off zeros (1e-90 to 1e-40 of the
    largest: what float64 makes of exact zeros) and log-uniform non-zero ones over 0.05-2."""
    rng = np.random.default_rng(seed)
    nonzero = np.exp(rng.uniform(np.log(0.05), np.log(2.0), total - zeros))
    values = np.concatenate([10.0 ** rng.uniform(-90, -40, zeros), nonzero])
    member = _synthetic("he_normal", seed, 2.0, 1.0)
    member["jacobian_sv_percentiles"] = np.percentile(values, np.linspace(0, 100, 101)).tolist()
    return member, nonzero


@pytest.mark.parametrize("zeros, rel", [(0, 1e-9), (300, 0.1), (1126, 0.2), (1800, None)])
def test_zero_singular_values_are_counted_apart_from_the_spread(zeros, rel):
    """The old spread p95/p5 over all values read 1e40-1e90 for ReLU: round-off of exact zeros.
    The zero share is known to the stored percentiles' 1%, the non-zero spread to ``rel``."""
    from initbench.report import isometry

    member, nonzero = _relu_like(zeros)
    low, high = isometry.zero_share(member, 256)
    assert low <= zeros / 2048 <= high and high - low <= 0.01 + 1e-12
    spread = isometry.spread(member, 256)
    if rel is None:  # 88% zeros: 12 non-zero percentiles resolve no 5th percentile
        assert math.isnan(spread)
        return
    assert spread == pytest.approx(np.percentile(nonzero, 95) / np.percentile(nonzero, 5), rel=rel)


def test_relu_table_reports_the_zero_share_and_a_finite_spread():
    from initbench.report import isometry

    members = [_relu_like(1126, seed=s)[0] for s in range(3)]
    cell = {"activation": "relu", "config": {"model.hidden": [4, 4, 4]}, "members": members}
    row = next(line for line in isometry.table(cell, 0.95) if line.startswith("| he_normal |"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[6] == "54-55%, 54-55%, 54-55%"
    assert all(20 < float(v) < 35 for v in cells[7].split(", "))  # not 1e+40 and more


def test_intro_says_what_sets_the_spread():
    """Not the weights alone: the activation's derivatives too (ReLU: exact zeros)."""
    from initbench.report import isometry

    text = isometry.intro()
    assert "set by the weights' distribution" not in text
    assert "depends on both the weights' distribution" in text and "derivatives" in text
    assert "exactly-zero singular values" in text and "Pennington, Schoenholz & Ganguli 2017" in text
