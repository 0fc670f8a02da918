"""The literature checks (report.checks) test the claim they are named after: each statement is
predicted from the initializer's nominal variance, and apart from the model's measured weights.

The cells are real deep ReLU networks at initialization, measured in numpy as the train stage's
diagnostics measure them, so the only thing that varies between the tests is the variance the
weights were actually drawn with."""

from __future__ import annotations

import math

import numpy as np

from initbench.paths import cell_name
from initbench.report import checks, stats

DEPTH, WIDTH, INPUTS, BATCH = 10, 256, 784, 512


def _diagnostics(rng: np.random.Generator, sigma_w2: float) -> dict[str, list[list[float]]]:
    """Epoch-0 diagnostics of a 784-256x10-10 ReLU MLP whose kernels are N(0, sigma_w2 / fan_in)."""
    x = rng.random((BATCH, INPUTS)) * (rng.random((BATCH, INPUTS)) < 0.2)  # sparse, MNIST-like
    fans = [INPUTS] + [WIDTH] * DEPTH + [10]
    stats: dict[str, list[float]] = {k: [] for k in ("pre_mean", "pre_std", "act_std", "kernel_std",
                                                     "dead_fraction", "grad_norm")}
    h = x
    for i in range(DEPTH + 1):
        w = rng.standard_normal((fans[i], fans[i + 1])) * math.sqrt(sigma_w2 / fans[i])
        z = h @ w
        h = np.maximum(z, 0) if i < DEPTH else z
        stats["pre_mean"].append(float(z.mean()))
        stats["pre_std"].append(float(z.std()))
        stats["act_std"].append(float(h.std()))
        stats["kernel_std"].append(float(w.std()))
        stats["dead_fraction"].append(float(np.mean(np.all(h <= 0, axis=0))))
        stats["grad_norm"].append(1.0)
    return {k: [v] for k, v in stats.items()}


def _cell(he_sigma_w2: float) -> dict:
    """A depth-10 ReLU cell whose he_normal models were drawn with ``he_sigma_w2`` (He: 2) and
    whose glorot_uniform models are right (sigma_w^2 = 1 for square layers)."""
    rng = np.random.default_rng(3)
    members = [{"label": label, "initializer": label, "args": {}, "seed_index": seed,
                "diagnostics": _diagnostics(rng, s2)}
               for label, s2 in (("he_normal", he_sigma_w2), ("glorot_uniform", 1.0))
               for seed in range(3)]
    return {"activation": "relu", "config": {"model.hidden": [WIDTH] * DEPTH}, "members": members}


def _check(cell: dict, statement: str) -> list[str]:
    lines = checks.literature_checks({cell_name(DEPTH, "relu"): cell}, DEPTH, 0.95, 0.003)
    at = next(i for i, line in enumerate(lines) if line.startswith(f"- {statement}"))
    return lines[at:at + 3]


def test_a_wrong_he_variance_fails_the_he_claim_but_agrees_with_mean_field():
    """He's sigma_w^2 = 2 keeps the ReLU scale; weights drawn at sigma_w^2 = 1 halve E[a^2] per
    layer. Predicting from the measured variance, as the old check did, still reads 'agrees'."""
    _, claim, field = _check(_cell(1.0), "He keeps the ReLU activation scale")
    assert claim.startswith("  - claim (he_normal's nominal variance), sigma_w^2 = 2: predicted 1;")
    assert "**disagrees beyond the 10% tolerance -- investigate**" in claim
    assert field.startswith("  - mean-field (measured weights), sigma_w^2 = 1")
    assert field.endswith("agrees within the 10% tolerance.")
    # The measured ratio is 2^-4.5 ~ 0.044: log(measured / 1) ~ -3.1, far outside +-0.1.
    log_ratio = float(claim.split("log(measured/predicted) ")[1].split(" ")[0])
    assert -3.4 < log_ratio < -2.8


def test_the_right_he_variance_passes_both_and_glorot_halving_is_claimed():
    _, claim, field = _check(_cell(2.0), "He keeps the ReLU activation scale")
    assert claim.endswith("agrees within the 10% tolerance.")
    assert field.endswith("agrees within the 10% tolerance.")
    _, claim, field = _check(_cell(2.0), "Glorot with ReLU halves E[a^2] per layer")
    assert "sigma_w^2 = 1: predicted 0.0442;" in claim  # 2^-4.5, 784 inputs only in layer 1
    assert claim.endswith("agrees within the 10% tolerance.")


def test_the_printed_interval_is_the_measurement_s_own():
    """The measured interval is the t interval of the seeds' ratios, not widened by 10%."""
    cell = _cell(2.0)
    ratios = [m["diagnostics"]["act_std"][0][-2] / m["diagnostics"]["act_std"][0][0]
              for m in cell["members"] if m["label"] == "he_normal"]
    iv = stats.t_interval(np.log(ratios), 0.95)
    _, claim, _ = _check(cell, "He keeps the ReLU activation scale")
    assert f"[{math.exp(iv.low):.3g}, {math.exp(iv.high):.3g}] (95% CI)" in claim
    table = "\n".join(checks.theory_table(cell, 0.95))
    assert f"| {math.exp(iv.mean):.3g} [{math.exp(iv.low):.3g}, {math.exp(iv.high):.3g}] |" in table
    assert "| he_normal | 2 | 2" in table  # sigma_w^2: nominal, measured


def test_a_missing_initializer_is_reported_not_tested():
    lines = checks.literature_checks({cell_name(DEPTH, "relu"): _cell(2.0)}, DEPTH, 0.95, 0.003)
    assert "- N(0,1) explodes deep ReLU (activation std, last hidden layer): not in this run." in lines
