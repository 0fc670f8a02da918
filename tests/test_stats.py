"""Confidence intervals: known values, coverage on generated data, and the verdict words."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initbench.report.stats import t_interval, verdict, welch_difference


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


def test_welch_difference_and_verdicts():
    rng = np.random.default_rng(1)
    same = welch_difference(rng.normal(0.97, 0.001, 5), rng.normal(0.97, 0.001, 5), 0.95)
    apart = welch_difference(rng.normal(0.98, 0.001, 5), rng.normal(0.95, 0.001, 5), 0.95)
    assert verdict(same) == "no detectable difference"
    assert verdict(apart) == "higher accuracy" and apart.low > 0
    assert verdict(welch_difference([0.5, 0.5], [0.9, 0.9], 0.95)) == "lower accuracy"
    assert verdict(welch_difference([1.0], [2.0, 3.0], 0.95)) == "not enough finite values"


def test_welch_coverage_with_unequal_variances():
    rng = np.random.default_rng(2)
    hits = sum(welch_difference(rng.normal(1, 1, 5), rng.normal(0, 3, 8), 0.95).contains(1.0)
               for _ in range(4000))
    assert 0.93 < hits / 4000 < 0.97
