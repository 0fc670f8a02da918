"""Mean-field predictions (report.theory) against closed forms, Monte Carlo and real networks,
and the report's checks (report.checks): each must be able to fail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initbench.report import checks, theory


def test_relu_map_is_he_s_factor_two():
    glorot = theory.propagate("relu", 0.3, [1.0] * 19)  # sigma_w^2 = 1: E[a^2] halves per layer
    assert glorot.act_std[-1] / glorot.act_std[0] == pytest.approx(2 ** -9.5, rel=1e-12)
    he = theory.propagate("relu", 0.3, [2.0] * 19)
    assert he.q == pytest.approx([0.3] * 20) and he.act_std[-1] == pytest.approx(he.act_std[0])
    assert theory.chi_1("relu", 1.0, 2.0) == 1.0  # He: the edge between vanishing and exploding


def test_tanh_map_matches_monte_carlo():
    z = np.random.default_rng(0).standard_normal(2_000_000)
    for q in (0.05, 0.7, 4.0, 250.0):
        assert theory.moments("tanh", q)[1] == pytest.approx(np.mean(np.tanh(math.sqrt(q) * z) ** 2),
                                                             rel=3e-3)
        sat = theory.propagate("tanh", q, []).saturated[0]
        assert sat == pytest.approx(np.mean(np.abs(np.tanh(math.sqrt(q) * z)) > 0.99), abs=2e-3)
    assert theory.chi_1("tanh", 1e-8, 1.0) == pytest.approx(1.0, rel=1e-6)  # linear near 0


@pytest.mark.parametrize("activation, sigma_w2, tolerance", [
    ("tanh", 1.0, 0.05),     # Glorot: a slow decay
    ("tanh", 256.0, 0.05),   # N(0,1): saturated
    ("relu", 1.0, 0.3),      # Glorot with ReLU: halving (finite width: larger fluctuations)
])
def test_prediction_matches_a_real_deep_network(activation, sigma_w2, tolerance):
    """A 20-layer width-512 network at initialization, measured as the diagnostics measure it."""
    rng = np.random.default_rng(1)
    width, depth = 512, 20
    phi = np.tanh if activation == "tanh" else (lambda v: np.maximum(v, 0))
    h = rng.standard_normal((1024, 784)) * 0.5
    z = h @ (rng.standard_normal((784, width)) * math.sqrt(1 / 784))
    q1, stds = float(np.mean(z**2)), []
    for _ in range(depth - 1):
        a = phi(z)
        stds.append(a.std())
        z = a @ (rng.standard_normal((width, width)) * math.sqrt(sigma_w2 / width))
    stds.append(phi(z).std())
    pred = theory.propagate(activation, q1, [sigma_w2] * (depth - 1))
    assert stds[-1] / stds[0] == pytest.approx(pred.act_std[-1] / pred.act_std[0], rel=tolerance)


def test_agreement_can_fail():
    assert checks.agreement([0.41, 0.41, 0.41], [0.40, 0.42, 0.41], 0.95)[-1] is True
    # The old check accepted any ratio in 0.1-10: a 2x miss must now be reported.
    assert checks.agreement([0.41, 0.41, 0.41], [0.80, 0.84, 0.82], 0.95)[-1] is False
    assert checks.agreement([0.86], [0.60], 0.95, log=False)[-1] is False
    assert checks.agreement([math.nan], [0.6], 0.95)[-1] is None


def _baseline(config_changes: dict) -> dict:
    config = {**checks.ARTICLE, **config_changes}
    members = []
    for label, base in (("random_normal", 0.976), ("gaussian", 0.975), ("glorot_uniform", 0.976),
                        ("he_normal", 0.977)):
        for seed in range(5):
            acc = base + 0.0003 * seed
            members.append({"label": label, "seed_index": seed, "test_accuracy": acc,
                            "diverged": False, "history": [{"loss": 0.1, "accuracy": acc}],
                            "confusion": [[1] * 10] * 10})
    return {"config": config, "members": members}


def test_claims_are_tested_only_on_their_configuration_and_as_gaps():
    other = checks.claims(None, _baseline({"data.dataset": "fashion-mnist"}), 0.95)
    assert len(other) == 1 and other[0].startswith("Not tested") and "fashion-mnist" in other[0]
    rows = "\n".join(checks.claims(None, _baseline({}), 0.95))
    assert "| He | he_normal | 94.5 | 97.76 [97.70, 97.82] | not reproduced: 3.3 pp higher |" in rows
    # He - random is +0.10 pp in every seed: the claimed +2.5 pp gap is not reproduced.
    assert "| He - random | +2.5 | +0.10 [+0.10, +0.10] | not reproduced: +0.10 pp |" in rows
