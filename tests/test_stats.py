"""Confidence intervals: known values and coverage on generated data; the power of a test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from initbench.report import blocked
from initbench.report.stats import (
    Interval,
    bounded_interval,
    clipped,
    clopper_pearson,
    paired_difference,
    t_interval,
)


def test_t_interval_known_values():
    iv = t_interval([1.0, 2.0, 3.0, 4.0, 5.0], 0.95)
    # mean 3, sd sqrt(2.5); t(0.975, 4) = 2.7764451
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)
    assert iv.mean == 3.0 and iv.sd == pytest.approx(math.sqrt(2.5))
    assert (iv.low, iv.high) == pytest.approx((3 - half, 3 + half), abs=1e-6)
    assert t_interval([1.0, math.nan, 3.0], 0.95).n == 2  # non-finite values are left out


def test_t_interval_covers_the_true_mean_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    hits = sum(t_interval(rng.normal(10, 2, 5), 0.95).contains(10) for _ in range(4000))
    assert 0.935 < hits / 4000 < 0.965  # binomial sd of the rate ~0.0034


def test_paired_difference_uses_only_common_finite_seeds():
    iv = paired_difference({0: 0.9, 1: 0.8, 2: 0.7, 3: math.nan}, {0: 0.8, 1: 0.75, 2: 0.5, 4: 0.1}, 0.95)
    assert iv.n == 3 and iv.mean == pytest.approx((0.1 + 0.05 + 0.2) / 3)
    ci = stats.ttest_1samp([0.1, 0.05, 0.2], 0).confidence_interval(0.95)
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high))


def test_bounded_interval_never_leaves_0_1():
    values = [0.9837, 0.1135, 0.9561]  # a failed seed among good ones: t says [-54.4, 191.3] %
    t = t_interval(values, 0.95)
    assert t.low < 0 and t.high > 1
    iv = bounded_interval(values, 0.95)
    assert iv.method == "t, clipped" and (iv.low, iv.high) == (0.0, 1.0) and iv.mean == t.mean
    one_side = bounded_interval([0.9, 0.95, 0.99], 0.95)
    assert one_side.high == 1.0 and one_side.low == t_interval([0.9, 0.95, 0.99], 0.95).low
    assert bounded_interval([0.97, 0.975, 0.98], 0.95).method == "t"
    wide = Interval(-0.22, 0.1, -1.888, 1.444, 3, "paired t")
    assert (clipped(wide, -1, 1).low, clipped(wide, -1, 1).high) == (-1, 1)
    # Clipping to the range the true value lies in never loses coverage: whenever the t interval
    # covers the true mean, so does the clipped one (and clipping happens in most of these draws).
    rng = np.random.default_rng(5)
    draws = [rng.normal(0.95, 0.08, 3) for _ in range(2000)]
    t_hits = [t_interval(d, 0.95).contains(0.95) for d in draws]
    b_hits = [bounded_interval(d, 0.95).contains(0.95) for d in draws]
    assert t_hits == b_hits and 0.93 < np.mean(b_hits) < 0.97
    assert np.mean([bounded_interval(d, 0.95).method == "t, clipped" for d in draws]) > 0.5


def test_clopper_pearson_known_values():
    # Exact binomial intervals (e.g. R's binom.test): 0/3, 3/3, 2/4, 7/10.
    assert clopper_pearson(0, 3, 0.95) == pytest.approx((0.0, 0.7076), abs=1e-4)
    assert clopper_pearson(3, 3, 0.95) == pytest.approx((0.2924, 1.0), abs=1e-4)
    assert clopper_pearson(2, 4, 0.95) == pytest.approx((0.0676, 0.9324), abs=1e-4)
    assert clopper_pearson(7, 10, 0.95) == pytest.approx((0.3475, 0.9333), abs=1e-4)


def test_detectable_difference_has_the_stated_power():
    """Simulated paired t tests at the returned difference reject 80% of the time."""
    sd, n, alpha = 0.0015, 8, 0.05 / 9
    delta = blocked.detectable(sd / math.sqrt(n), n - 1, alpha)
    assert delta == pytest.approx(0.0026, abs=2e-4)  # about 0.26 pp: 8 seeds detect 0.3 pp
    rng = np.random.default_rng(3)
    crit = stats.t.ppf(1 - alpha / 2, n - 1)
    d = rng.normal(delta, sd, (20000, n))
    tstat = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    assert np.mean(np.abs(tstat) > crit) == pytest.approx(0.8, abs=0.01)
    # More df at the same standard error: a smaller detectable difference.
    assert blocked.detectable(sd / math.sqrt(3), 2, alpha) > blocked.detectable(sd / math.sqrt(3), 40, alpha)
    assert math.isnan(blocked.detectable(sd, 0, alpha)) and blocked.detectable(0.0, 5, alpha) == 0
