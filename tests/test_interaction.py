"""The difference-of-differences contrast (initializer x setting): its interval against an
independent implementation (statsmodels' two-way OLS with seed blocks), its coverage by
simulation, and its verdicts on gaps built to widen, narrow, reverse, stay or be undecidable."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from initbench.report import blocked, interaction
from initbench.report.interaction import Setting, change, compare


def member(label: str, seed: int, acc: float | None) -> dict:
    """A run; ``None``: it failed (diverged at chance)."""
    failed = acc is None
    acc = 0.1 if failed else acc
    return {"label": label, "seed_index": seed, "test_accuracy": acc, "final_train_loss": 0.1,
            "diverged": failed, "history": [{"epoch": 1, "loss": 0.1, "accuracy": acc}],
            "confusion": [[10 if i == j else 0 for j in range(10)] for i in range(10)]}


def cell_of(groups: dict[str, list[float | None]], activation: str = "relu") -> dict:
    """A cell: label -> accuracy per seed (``None``: failed)."""
    return {"activation": activation,
            "members": [member(k, i, a) for k, v in groups.items() for i, a in enumerate(v)]}


def gapped(gaps: dict[str, float], seeds: int, noise: float, rng: np.random.Generator,
           ref: str = "he_normal", seed_effect: np.ndarray | None = None) -> dict[str, list[float]]:
    """Accuracies: the reference at 0.95 plus a per-seed effect shared by every run of a seed,
    each initializer ``gaps[label]`` from it, every run with independent N(0, noise^2) noise."""
    shared = rng.normal(0, 0.01, seeds) if seed_effect is None else seed_effect
    return {k: list(0.95 + g + shared + rng.normal(0, noise, seeds))
            for k, g in {ref: 0.0, **gaps}.items()}


def test_interval_matches_two_way_ols_with_seed_blocks():
    """The per-seed DiD t interval is the interaction's interval of acc ~ seed x init +
    seed x setting + init:setting (residual df n - 1), fitted by statsmodels."""
    rng = np.random.default_rng(3)
    n = 6
    rows = [{"seed": s, "init": i, "setting": v, "acc": rng.normal(0.9, 0.01)
             + 0.004 * (i == "b" and v == "y")}
            for s in range(n) for i in ("a", "b") for v in ("x", "y")]
    df = pd.DataFrame(rows)
    fit = smf.ols("acc ~ C(seed) * C(init) + C(seed) * C(setting) + C(init):C(setting)", df).fit()
    name = next(p for p in fit.params.index if p.startswith("C(init)[T.b]:C(setting)[T.y]"))
    low, high = fit.conf_int(alpha=0.1).loc[name]
    acc = {(i, v): dict(zip(g["seed"], g["acc"], strict=True))
           for (i, v), g in df.groupby(["init", "setting"])}
    base = {s: acc["b", "x"][s] - acc["a", "x"][s] for s in range(n)}
    other = {s: acc["b", "y"][s] - acc["a", "y"][s] for s in range(n)}
    e = change(base, other, 0.9, 0.01)
    assert fit.df_resid == n - 1
    assert e["change"] == pytest.approx(fit.params[name], abs=1e-12)
    assert (e["low"], e["high"]) == pytest.approx((low, high), abs=1e-12)


@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_the_interval_covers_the_true_interaction_at_its_level(confidence):
    """400 simulated 2 x 2 x 5-seed designs with a true interaction of +0.4 pp, a seed effect
    (sd 1 pp) shared by all four runs and run noise (sd 0.3 pp): the interval covers +0.4 pp
    about ``confidence`` of the time (binomial sd 1.1-1.5 points at 400)."""
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(400):
        shared = rng.normal(0, 0.01, 5)
        plain = gapped({"x": -0.01}, 5, 0.003, rng, seed_effect=shared)
        adam = gapped({"x": -0.006}, 5, 0.003, rng, seed_effect=shared)
        a = Setting("plain", {k: dict(enumerate(v)) for k, v in plain.items()}, {})
        b = Setting("adam", {k: dict(enumerate(v)) for k, v in adam.items()}, {})
        e = change(interaction.gaps(a.acc, "x", "he_normal"),
                   interaction.gaps(b.acc, "x", "he_normal"), confidence, 0.01)
        covered += e["low"] <= 0.004 <= e["high"]
    assert abs(covered / 400 - confidence) < 3 * math.sqrt(confidence * (1 - confidence) / 400)


@pytest.mark.parametrize(("before", "after", "says"), [
    (-0.02, -0.01, interaction.NARROWS),     # halved
    (-0.01, -0.02, interaction.WIDENS),      # doubled
    (0.02, 0.01, interaction.NARROWS),       # the initializer above the reference, by less
    (0.0005, -0.02, interaction.WIDENS),     # from about 0 to 2 pp below: widens, whatever the sign
    (-0.02, 0.012, interaction.NARROWS),     # reversed, but smaller in magnitude
])
def test_widens_or_narrows_by_the_gaps_magnitude(before, after, says):
    base = {s: before + 1e-4 * (s % 2) for s in range(6)}
    other = {s: after + 1e-4 * ((s + 1) % 3) for s in range(6)}
    e = change(base, other, 0.95, 0.003)
    assert e["verdict"] == says and (e["low"] > 0 or e["high"] < 0)
    assert (e["base_gap"], e["other_gap"]) == pytest.approx((before, after), abs=2e-4)


def test_a_real_change_inside_the_margin_says_so():
    e = change({s: -0.010 for s in range(5)}, {s: -0.009 + 1e-5 * s for s in range(5)}, 0.95, 0.01)
    assert e["verdict"] == "the gap narrows, by less than the margin"


def test_unchanged_needs_equivalence_and_inconclusive_says_how_many_seeds():
    rng = np.random.default_rng(5)
    base = dict(enumerate(rng.normal(-0.01, 1e-3, 20)))
    quiet = change(base, dict(enumerate(rng.normal(-0.01, 1e-3, 20))), 0.95, 0.003)
    assert quiet["verdict"] == interaction.UNCHANGED
    assert quiet["equivalence_low"] > -0.003 and quiet["equivalence_high"] < 0.003
    few = change(dict(enumerate(rng.normal(-0.01, 0.01, 3))),
                 dict(enumerate(rng.normal(-0.01, 0.01, 3))), 0.95, 0.003)
    assert few["verdict"].startswith("inconclusive: about ")
    n = int(few["verdict"].split("about ")[1].split()[0])
    # The planning figure at the observed change and sd (normal quantiles): an equivalence
    # when the change is inside the margin (one-sided 5%), a difference when not (two-sided).
    d, sd = abs(few["change"]), few["sd"]
    gap, z = (0.003 - d, sps.norm.ppf(0.95)) if d < 0.003 else (d, sps.norm.ppf(0.975))
    assert n == max(4, math.ceil((z * sd / gap) ** 2))


def test_compare_adjusts_over_the_testable_contrasts_only():
    plain = Setting.of("plain", cell_of({"he": [0.9, 0.91, 0.92, 0.93], "a": [0.89, 0.9, 0.91, 0.92],
                                         "b": [None, 0.9, 0.91, 0.92], "z": [None] * 4}))
    adam = Setting.of("adam", cell_of({"he": [0.9, 0.91, 0.92, 0.93], "a": [0.895, 0.905, 0.915, 0.925],
                                       "b": [0.9, 0.9, 0.91, 0.92], "z": [None] * 4}))
    out, level, m = compare({k: (plain, adam, k, "he") for k in ("a", "b", "z")}, 0.95, 0.003)
    assert m == 1 and level == pytest.approx(0.95)
    assert out["a"]["verdict"] == interaction.NARROWS and out["a"]["confidence"] == level
    assert out["b"]["verdict"].startswith("inconclusive: trained 3/4 (plain) vs 4/4 (adam), not a "
                                          "significant change of the success rate")
    # An initializer that trains under neither setting has no gap: a status, not a verdict.
    assert "verdict" not in out["z"]
    assert out["z"]["status"] == "trains under neither setting: 0/4 (plain), 0/4 (adam)"
    assert interaction.row(out["z"]) == "0/4 trained | 0/4 trained | - | " + out["z"]["status"]
    assert interaction.row(out["a"]).startswith("-1.00 | -0.50 | +0.50 [+0.50, +0.50] |")


def test_a_success_rate_that_changes_between_settings_is_tested_exactly():
    """0/6 -> 6/6 trained is a decided change (Boschloo), not a pair of accuracies to compare."""
    plain = Setting.of("plain", cell_of({"he": [0.9] * 6, "g": [None] * 6}))
    adam = Setting.of("adam", cell_of({"he": [0.9] * 6, "g": [0.88] * 6}))
    out, _, _ = compare({"g": (plain, adam, "g", "he")}, 0.95, 0.01)
    assert out["g"]["verdict"] == "trains more often: 6/6 (adam) vs 0/6 (plain)"
    assert out["g"]["success_p"] < 0.05


def test_an_undecided_change_of_success_rates_says_how_many_seeds_would_decide_it():
    text = interaction._rate_seeds(1 / 3, 1.0, 0.05)
    n = int(text.split("about ")[1].split()[0])
    assert blocked.success_p(n, n, round(n / 3), n) < 0.05
    assert blocked.success_p(n - 1, n - 1, round((n - 1) / 3), n - 1) >= 0.05
    assert interaction._rate_seeds(0.5, 0.5, 0.05) == ""  # equal rates: no number of seeds decides
