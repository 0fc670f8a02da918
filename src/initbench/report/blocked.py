"""The seed-blocked analysis of a cell: initializer x seed, residual variance pooled.

Within a cell, seed s orders the batches for every initializer and seeds their initial weights, so
the seeds are *blocks* of a randomized complete block design (Fisher 1935; Montgomery, *Design and
Analysis of Experiments*, ch. 4). The additive model

    accuracy[i, s] = mu + alpha_i + beta_s + e[i, s],   e ~ N(0, sigma^2)

is fitted to the initializers that trained in every seed (a balanced two-way table), and sigma^2 is
estimated from its residuals with (k - 1)(n - 1) degrees of freedom instead of n - 1 per pair. The
model assumes one variance: an initializer whose seed-to-seed spread Bartlett's (1937) test sets
apart (p < 0.01) is left out of the pool, noisiest first. A
contrast between two such initializers is the mean of their per-seed differences, with standard
error sigma sqrt(2 / n). An initializer that failed in some seed (its table row has holes) is not
assumed to share that variance: its contrast is the paired t of its own per-seed differences.

Verdicts (:func:`decide`) at a family-wise level over the cell's m comparisons (Bonferroni):

* the two-sided 1 - alpha/m interval excludes 0: *higher* or *lower*; or *different but
  negligible* when the equivalence interval also lies inside the margin;
* two one-sided tests at alpha/m each (Schuirmann 1987; the 1 - 2 alpha/m interval inside
  (-margin, +margin)): *equivalent*;
* otherwise *inconclusive*, with the number of seeds that would decide it at the observed
  difference and sd (a planning figure from point estimates, not a guarantee).

Success rates are compared with Boschloo's (1970) exact unconditional test, uniformly more powerful
than Fisher's, with Holm's (1979) step-down over the cell's comparisons: 0/5 against 5/5 is decided
at a family-wise 5% over 8 comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

POWER = 0.8
HOMOGENEITY_P = 0.01


@dataclass(frozen=True)
class Contrast:
    """A difference with its standard error and degrees of freedom; ``n`` paired seeds."""

    estimate: float
    se: float
    df: float
    n: int
    method: str

    def interval(self, confidence: float) -> tuple[float, float]:
        if not (math.isfinite(self.se) and self.df > 0):
            return math.nan, math.nan
        half = float(stats.t.ppf(0.5 + confidence / 2, self.df)) * self.se
        return self.estimate - half, self.estimate + half


NO_CONTRAST = Contrast(math.nan, math.nan, 0.0, 0, "none")


@dataclass(frozen=True)
class Pooled:
    """The additive model's residual sd over the complete initializers, and its df."""

    sd: float
    df: int
    labels: tuple[str, ...]
    seeds: tuple[int, ...]


def pooled(values: Mapping[str, Mapping[int, float]]) -> Pooled:
    """Fit the additive initializer + seed model to the labels that have a finite value in every
    seed of the cell and share one residual variance; at least two such labels and two seeds are
    needed (else sd is NaN)."""
    seeds = tuple(sorted({s for v in values.values() for s in v}))
    full = tuple(k for k, v in values.items()
                 if all(s in v and math.isfinite(v[s]) for s in seeds))
    if len(full) < 2 or len(seeds) < 2:
        return Pooled(math.nan, 0, full, seeds)
    y = np.array([[values[lab][s] for s in seeds] for lab in full], dtype=np.float64)
    keep = np.ones(len(full), dtype=bool)
    # One much noisier initializer would widen every interval of the cell and get too narrow a
    # one itself: while Bartlett's test rejects equal variances of the seed-centred rows, the
    # noisiest leaves the pool (it gets its own paired t).
    while keep.sum() > 2:
        rows = y[keep] - y[keep].mean(axis=0)
        spread = rows.var(axis=1, ddof=1)
        if np.ptp(spread) == 0 or stats.bartlett(*rows).pvalue >= HOMOGENEITY_P:
            break
        keep[np.flatnonzero(keep)[int(np.argmax(spread))]] = False
    full, y = tuple(lab for lab, kept in zip(full, keep, strict=True) if kept), y[keep]
    k, n = y.shape
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    df = (k - 1) * (n - 1)
    return Pooled(float(math.sqrt((resid**2).sum() / df)), df, full, seeds)


def contrast(a: Mapping[int, float], b: Mapping[int, float], fit: Pooled,
             labels: tuple[str, str]) -> Contrast:
    """mean(a[s] - b[s]) over the seeds where both are finite; pooled se when both labels are in
    the fit, else the paired t of these differences."""
    d = np.array([a[s] - b[s] for s in sorted(set(a) & set(b))
                  if math.isfinite(a[s]) and math.isfinite(b[s])], dtype=np.float64)
    if len(d) == 0:
        return NO_CONTRAST
    if all(lab in fit.labels for lab in labels) and math.isfinite(fit.sd):
        return Contrast(float(d.mean()), fit.sd * math.sqrt(2 / len(d)), fit.df, len(d),
                        "seed-blocked")
    if len(d) < 2:
        return Contrast(float(d.mean()), math.nan, 0.0, 1, "paired t")
    return Contrast(float(d.mean()), float(d.std(ddof=1)) / math.sqrt(len(d)), len(d) - 1,
                    len(d), "paired t")


@dataclass(frozen=True)
class Decision:
    verdict: str
    low: float          # the two-sided 1 - alpha interval
    high: float
    eq_low: float       # the 1 - 2 alpha interval of the two one-sided tests
    eq_high: float
    detectable: float   # the smallest true difference detected with probability POWER
    seeds_needed: int | None  # inconclusive: paired seeds that would decide it (point estimates)


def _seeds_to_decide(c: Contrast, margin: float, alpha: float) -> int | None:
    """Seeds at which the observed difference and sd would decide (an equivalence if |d| is
    inside the margin, a difference if not); None when no sd is known."""
    sd_unit = c.se * math.sqrt(c.n / 2)  # the residual sd behind one seed's difference
    if not (math.isfinite(sd_unit) and sd_unit > 0):
        return None
    gap, t = ((margin - abs(c.estimate), stats.norm.ppf(1 - alpha)) if abs(c.estimate) < margin
              else (abs(c.estimate), stats.norm.ppf(1 - alpha / 2)))
    if gap <= 0:
        return None
    # z, not t: the planning figure at large n; a floor of one more seed than observed.
    return max(c.n + 1, math.ceil(2 * (t * sd_unit / gap) ** 2))


def detectable(se: float, df: float, alpha: float, power: float = POWER) -> float:
    """The smallest true difference that a two-sided t test at level ``alpha`` with this standard
    error and df detects with probability ``power`` (noncentral t)."""
    if not (math.isfinite(se) and df > 0):
        return math.nan
    if se == 0:
        return 0.0
    crit = float(stats.t.ppf(1 - alpha / 2, df))

    def shortfall(delta: float) -> float:
        nc = delta / se
        lower = float(np.nan_to_num(stats.nct.cdf(-crit, df, nc)))
        return float(stats.nct.sf(crit, df, nc)) + lower - power

    high = (crit + 4) * se
    while shortfall(high) < 0:
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high))


def decide(c: Contrast, margin: float, alpha: float, what: str = "accuracy") -> Decision:
    """The verdict on one contrast at level ``alpha`` (already divided by the comparisons)."""
    low, high = c.interval(1 - alpha)
    eq_low, eq_high = c.interval(1 - 2 * alpha)
    power = detectable(c.se, c.df, alpha)
    if not math.isfinite(low):
        return Decision("not testable", low, high, eq_low, eq_high, power, None)
    equivalent = -margin < eq_low and eq_high < margin
    if low > 0 or high < 0:
        words = ("different but negligible" if equivalent
                 else f"{'higher' if low > 0 else 'lower'} {what}")
        return Decision(words, low, high, eq_low, eq_high, power, None)
    if equivalent:
        return Decision("equivalent", low, high, eq_low, eq_high, power, None)
    return Decision("inconclusive", low, high, eq_low, eq_high, power,
                    _seeds_to_decide(c, margin, alpha))


def success_p(k: int, n: int, k_ref: int, n_ref: int) -> float:
    """Two-sided p of Boschloo's exact test that two success rates are equal (1 when both are
    0 or both are 1: nothing to test)."""
    if n == 0 or n_ref == 0 or (k == n and k_ref == n_ref) or (k == 0 and k_ref == 0):
        return 1.0
    return float(stats.boschloo_exact([[k, k_ref], [n - k, n_ref - k_ref]]).pvalue)


def holm(pvalues: Mapping[str, float], alpha: float) -> set[str]:
    """The keys whose hypotheses Holm's (1979) step-down procedure rejects at family-wise level
    ``alpha``: uniformly more powerful than Bonferroni, with the same guarantee."""
    rejected: set[str] = set()
    for i, (key, p) in enumerate(sorted(pvalues.items(), key=lambda kv: kv[1])):
        if p > alpha / (len(pvalues) - i):
            break
        rejected.add(key)
    return rejected
