"""Statistics over seeds: Student-t confidence intervals and Welch intervals for differences.

A difference whose interval contains zero is reported as "no detectable difference", never as a
ranking. Welch (1947), Biometrika 34: the two-sample t interval without assuming equal variances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    mean: float
    sd: float
    low: float
    high: float
    n: int

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def t_interval(values: Sequence[float], confidence: float) -> Interval:
    """Mean, sample sd and the Student-t interval of the mean of the finite values."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, math.nan, 1)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, sd, mean - half, mean + half, n)


def welch_difference(a: Sequence[float], b: Sequence[float], confidence: float) -> Interval:
    """Interval for mean(a) - mean(b) (Welch-Satterthwaite degrees of freedom)."""
    x, y = (np.asarray([v for v in s if math.isfinite(v)], dtype=np.float64) for s in (a, b))
    if len(x) < 2 or len(y) < 2:
        return Interval(math.nan, math.nan, math.nan, math.nan, min(len(x), len(y)))
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    diff = float(x.mean() - y.mean())
    se = math.sqrt(vx + vy)
    if se == 0:
        return Interval(diff, 0.0, diff, diff, min(len(x), len(y)))
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return Interval(diff, se, diff - half, diff + half, min(len(x), len(y)))


def verdict(diff: Interval, what: str = "accuracy") -> str:
    """Plain words for a difference interval."""
    if not math.isfinite(diff.mean) or not math.isfinite(diff.low):
        return "not enough finite values"
    if diff.contains(0.0):
        return "no detectable difference"
    return f"higher {what}" if diff.mean > 0 else f"lower {what}"
