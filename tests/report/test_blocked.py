"""The seed-blocked analysis and the synthesis across cells: against statsmodels on simulated
cells with known effects, coverage and test size by simulation, and the verdict words."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from initbench.report import blocked, synthesis


def _cell(rng: np.random.Generator, effects: dict[str, float], seeds: int, sd: float,
          block_sd: float = 0.01) -> dict[str, dict[int, float]]:
    block = rng.normal(0, block_sd, seeds)
    return {k: {s: 0.9 + e + block[s] + rng.normal(0, sd) for s in range(seeds)}
            for k, e in effects.items()}


def test_pooled_model_matches_statsmodels_ols_with_initializer_and_seed_factors():
    rng = np.random.default_rng(1)
    values = _cell(rng, {"a": 0.0, "b": 0.004, "c": -0.01, "d": 0.002}, 6, 0.002)
    rows = [(k, s, v) for k, vs in values.items() for s, v in vs.items()]
    frame = pd.DataFrame(rows, columns=["init", "seed", "acc"])
    ols = smf.ols("acc ~ C(init, Treatment('a')) + C(seed)", data=frame).fit()
    fit = blocked.pooled(values)
    assert fit.df == ols.df_resid == 15
    assert fit.sd == pytest.approx(math.sqrt(ols.scale), rel=1e-10)
    c = blocked.contrast(values["b"], values["a"], fit, ("b", "a"))
    name = "C(init, Treatment('a'))[T.b]"
    assert c.estimate == pytest.approx(ols.params[name], abs=1e-12)
    assert c.se == pytest.approx(ols.bse[name], rel=1e-10)
    low, high = c.interval(0.99)
    assert (low, high) == pytest.approx(tuple(ols.conf_int(0.01).loc[name]), rel=1e-9)


def test_an_initializer_with_holes_is_left_out_of_the_pool_and_gets_its_own_paired_t():
    rng = np.random.default_rng(2)
    values = _cell(rng, {"a": 0.0, "b": 0.0, "c": 0.0}, 5, 0.002)
    del values["c"][3]
    values["c"][0] = 0.5  # a wild run that must not enter the pooled variance
    fit = blocked.pooled(values)
    assert fit.labels == ("a", "b") and fit.df == 4
    c = blocked.contrast(values["c"], values["a"], fit, ("c", "a"))
    assert c.method == "paired t" and c.n == 4 and c.df == 3


def test_intervals_cover_the_true_difference_at_the_nominal_rate():
    rng = np.random.default_rng(3)
    true, hits, runs = 0.003, 0, 2000
    for _ in range(runs):
        values = _cell(rng, {"ref": 0.0, "x": true, "y": -0.002, "z": 0.001}, 4, 0.003, 0.02)
        c = blocked.contrast(values["x"], values["ref"], blocked.pooled(values), ("x", "ref"))
        low, high = c.interval(0.95)
        hits += low <= true <= high
    assert 0.935 < hits / runs < 0.965  # binomial sd of the rate ~0.005


def test_equivalence_has_its_stated_size_at_the_margin():
    """TOST at alpha: when the true difference sits on the margin, 'equivalent' comes out with
    probability about alpha (not alpha / 2, the old two-sided 1 - alpha interval's size)."""
    rng = np.random.default_rng(4)
    margin, alpha, runs, eq = 0.003, 0.05, 3000, 0
    for _ in range(runs):
        values = _cell(rng, {"ref": 0.0, "x": margin, "y": 0.0}, 8, 0.002)
        c = blocked.contrast(values["x"], values["ref"], blocked.pooled(values), ("x", "ref"))
        eq += blocked.decide(c, margin, alpha).verdict in ("equivalent", "different but negligible")
    assert 0.035 < eq / runs < 0.065


@pytest.mark.parametrize(("effect", "sd", "seeds", "words"), [
    (0.02, 0.002, 6, "higher accuracy"),
    (-0.02, 0.002, 6, "lower accuracy"),
    (0.0, 0.0005, 6, "equivalent"),
    (0.0015, 0.0002, 8, "different but negligible"),
    (0.0, 0.01, 3, "inconclusive"),
])
def test_verdicts_on_cells_built_to_give_them(effect, sd, seeds, words):
    rng = np.random.default_rng(5)
    values = _cell(rng, {"ref": 0.0, "x": effect, "y": 0.0, "z": 0.0}, seeds, sd)
    c = blocked.contrast(values["x"], values["ref"], blocked.pooled(values), ("x", "ref"))
    d = blocked.decide(c, 0.003, 0.05 / 3)
    assert d.verdict == words
    if words == "inconclusive":
        assert d.seeds_needed is not None and d.seeds_needed > seeds


def test_seeds_needed_would_decide_at_the_observed_difference_and_sd():
    c = blocked.Contrast(0.0, 0.004 * math.sqrt(2 / 4), 12, 4, "seed-blocked")
    d = blocked.decide(c, 0.003, 0.05)
    assert d.verdict == "inconclusive"
    n = d.seeds_needed
    bigger = blocked.Contrast(0.0, 0.004 * math.sqrt(2 / n), 10 * n, n, "seed-blocked")
    assert blocked.decide(bigger, 0.003, 0.05).verdict == "equivalent"


def test_success_rates_compared_exactly():
    assert blocked.success_p(0, 5, 5, 5) < 0.05 / 8  # Boschloo decides 0/5 vs 5/5 over 8 tests
    assert blocked.success_p(5, 6, 6, 6) > 0.5
    assert blocked.success_p(6, 6, 6, 6) == 1.0 == blocked.success_p(0, 6, 0, 6)
    # Size: under equal rates, p < alpha no more often than alpha (exact tests are conservative).
    rng = np.random.default_rng(6)
    rejections = sum(blocked.success_p(rng.binomial(6, 0.5), 6, rng.binomial(6, 0.5), 6) < 0.05
                     for _ in range(300))
    assert rejections / 300 <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 300)


def test_synthesis_combines_agreeing_cells_and_flags_disagreeing_ones():
    agree = [blocked.Contrast(0.011, 0.004, 20, 6, "x"), blocked.Contrast(0.012, 0.004, 20, 6, "x"),
             blocked.Contrast(0.010, 0.005, 20, 6, "x")]
    s = synthesis.combine(agree, 0.01, 0.05)
    w = np.array([1 / 0.004**2, 1 / 0.004**2, 1 / 0.005**2])
    assert s.combined.estimate == pytest.approx((w * [0.011, 0.012, 0.010]).sum() / w.sum())
    assert s.combined.se == pytest.approx(1 / math.sqrt(w.sum()))
    assert not s.heterogeneous and s.verdict == "higher accuracy"
    # Each cell alone cannot exclude 0 at this level, together they do.
    assert all(blocked.decide(c, 0.01, 0.05).low < 0.012 for c in agree)
    clash = [blocked.Contrast(0.03, 0.004, 20, 6, "x"), blocked.Contrast(-0.03, 0.004, 20, 6, "x")]
    h = synthesis.combine(clash, 0.01, 0.05)
    assert h.heterogeneous and h.verdict == "depends on the cell" and h.i2 > 0.9
    assert h.random.se > h.combined.se
    assert synthesis.combine(agree[:1], 0.01, 0.05) is None


def test_synthesis_interval_covers_a_common_effect():
    rng = np.random.default_rng(7)
    hits, runs = 0, 1000
    for _ in range(runs):
        cs = []
        for _depth in range(3):
            values = _cell(rng, {"ref": 0.0, "x": 0.01, "y": 0.0}, 5, 0.004)
            cs.append(blocked.contrast(values["x"], values["ref"], blocked.pooled(values), ("x", "ref")))
        s = synthesis.combine(cs, 0.01, 0.05)
        hits += s.decision.low <= 0.01 <= s.decision.high
    assert hits / runs > 0.93  # the smallest df among the cells: at or above the nominal 95%


def test_holm_rejects_step_down_and_keeps_the_family_wise_level():
    # 1/6 vs 6/6 (p 0.0063) after four 0/6 vs 6/6: Bonferroni over 8 misses it, Holm does not.
    p = {f"never{i}": blocked.success_p(0, 6, 6, 6) for i in range(4)}
    p |= {"once": blocked.success_p(1, 6, 6, 6), "same": 1.0, "five": blocked.success_p(5, 6, 6, 6),
          "half": blocked.success_p(3, 6, 6, 6)}
    assert p["once"] > 0.05 / 8
    assert blocked.holm(p, 0.05) == {"never0", "never1", "never2", "never3", "once"}
    # Under the global null the family-wise error stays at most alpha.
    rng = np.random.default_rng(8)
    errors = sum(bool(blocked.holm(dict(enumerate(rng.uniform(size=8))), 0.05)) for _ in range(4000))
    assert errors / 4000 <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 4000)
