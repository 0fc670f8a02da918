"""Statistics over seeds: intervals for means, paired differences, success rates, power.

* Means over seeds: Student t. An accuracy lies in [0, 1] and a difference of accuracies in
  [-1, 1]; a t interval that leaves that range (a spread of tens of pp over three seeds) is
  clipped to it, which keeps its coverage (the true value is always inside the range).
* Differences between two initializers of a cell: *paired* by seed (within a seed both see the
  same batch order, and their initial weights come from the same seed), a t interval of the
  per-seed differences; Welch (1947) for unpaired samples.
* Verdicts are three-way (Schuirmann 1987, two one-sided tests): *higher*/*lower* when the interval
  excludes 0, *equivalent* when it lies inside (-margin, +margin), else *inconclusive*: absence of
  evidence is not evidence of equivalence.
* Success rates: Clopper & Pearson (1934) exact binomial intervals.
* Power: the smallest true paired difference the design detects with probability 0.8
  (noncentral t), reported beside every verdict that is not a difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

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


def welch_difference(a: Sequence[float], b: Sequence[float], confidence: float) -> Interval:
    """Interval for mean(a) - mean(b) (Welch-Satterthwaite degrees of freedom); sd is the
    standard error of the difference."""
    x, y = _finite(a), _finite(b)
    if len(x) < 2 or len(y) < 2:
        return Interval(math.nan, math.nan, math.nan, math.nan, min(len(x), len(y)))
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    diff = float(x.mean() - y.mean())
    se = math.sqrt(vx + vy)
    if se == 0:
        return Interval(diff, 0.0, diff, diff, min(len(x), len(y)), "welch")
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return Interval(diff, se, diff - half, diff + half, min(len(x), len(y)), "welch")


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Exact binomial interval for a success rate k/n."""
    alpha = 1 - confidence
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def detectable_difference(sd: float, n: int, confidence: float, power: float = POWER) -> float:
    """The smallest true mean paired difference that a two-sided paired t test at level
    1 - ``confidence`` detects with probability ``power``, for n pairs with this sd."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    if sd == 0:
        return 0.0
    df, crit = n - 1, float(stats.t.ppf(0.5 + confidence / 2, n - 1))

    def shortfall(delta: float) -> float:
        nc = delta * math.sqrt(n) / sd
        # The lower tail is negligible for nc > 0 (scipy returns NaN for it at large nc).
        lower = float(np.nan_to_num(stats.nct.cdf(-crit, df, nc)))
        return float(stats.nct.sf(crit, df, nc)) + lower - power

    high = (crit + 4) * sd / math.sqrt(n)
    while shortfall(high) < 0:  # few degrees of freedom: a heavy-tailed statistic, widen
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high))


def verdict(diff: Interval, margin: float, what: str = "accuracy") -> str:
    """Three-way words for a difference interval (see the module docstring)."""
    if not math.isfinite(diff.mean) or not math.isfinite(diff.low):
        return "not enough finite values"
    if diff.low > 0:
        return f"higher {what}"
    if diff.high < 0:
        return f"lower {what}"
    if -margin < diff.low and diff.high < margin:
        return "equivalent"
    return "inconclusive"
