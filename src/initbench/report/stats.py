"""Statistics over seeds: intervals for means, paired differences, success rates.

* Means over seeds: Student t. An accuracy lies in [0, 1] and a difference of accuracies in
  [-1, 1]; a t interval that leaves that range (a spread of tens of pp over three seeds) is
  clipped to it, which keeps its coverage (the true value is always inside the range).
* Differences of two series over the same seeds: *paired* by seed, a t interval of the per-seed
  differences. A cell's comparisons with its reference use the seed-blocked model of
  :mod:`initbench.report.blocked`, which also gives the verdicts and the power.
* Success rates: Clopper & Pearson (1934) exact binomial intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

POWER = 0.8


@dataclass(frozen=True)
class Interval:
    mean: float
    sd: float
    low: float
    high: float
    n: int
    method: str = "t"

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _finite(values: Sequence[float]) -> np.ndarray:
    return np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)


def t_interval(values: Sequence[float], confidence: float) -> Interval:
    """Mean, sample sd and the Student-t interval of the mean of the finite values."""
    x = _finite(values)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, math.nan, 1)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, sd, mean - half, mean + half, n)


def clipped(iv: Interval, lo: float, hi: float) -> Interval:
    """``iv`` intersected with [lo, hi], the values the quantity can take. The true value always
    lies in that range, so the intersection covers it exactly as often as ``iv`` does."""
    if not (math.isfinite(iv.low) and (iv.low < lo or iv.high > hi)):
        return iv
    return Interval(iv.mean, iv.sd, max(iv.low, lo), min(iv.high, hi), iv.n, iv.method + ", clipped")


def bounded_interval(values: Sequence[float], confidence: float, lo: float = 0.0,
                     hi: float = 1.0) -> Interval:
    """The t interval of the mean of values that lie in [lo, hi] (e.g. accuracies), clipped to it."""
    return clipped(t_interval(values, confidence), lo, hi)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], confidence: float) -> Interval:
    """t interval of mean(a[s] - b[s]) over the seeds s where both are finite."""
    diffs = [a[s] - b[s] for s in sorted(set(a) & set(b))
             if math.isfinite(a[s]) and math.isfinite(b[s])]
    iv = t_interval(diffs, confidence)
    return Interval(iv.mean, iv.sd, iv.low, iv.high, iv.n, "paired t")


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Exact binomial interval for a success rate k/n."""
    alpha = 1 - confidence
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high
