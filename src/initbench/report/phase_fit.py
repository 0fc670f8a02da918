"""The trainable-depth constant c of "a net of depth L trains iff L < c xi", with an interval.

Schoenholz et al. (2017, "Deep Information Propagation", ICLR, arXiv:1611.01232, fig. 5) found
the edge of trainability at about L = 6 xi. A grid of (depth, sigma_w) points with a few seeds
each says which runs trained; this module fits c to them by maximum likelihood under a logistic
model in r = L / xi,

    P(a run at r trains) = 1 / (1 + exp(-beta (ln c - ln r))),   beta >= 0,

whose slope beta (how sharp the edge is) is a nuisance parameter. A grid of a few seeds per point
is often separable (every run below some r trains, none above it), where plain maximum
likelihood sends beta to infinity and its profile interval undercovers (86-94% at a 95%
level on the study's grids, by simulation). So the likelihood is Firth's (1993, Biometrika 80:27)
penalized one, ln L + 1/2 ln det I (Jeffreys' prior), and the interval for c is its profile
interval (Heinze & Schemper 2002, Stat. Med. 21:2409): c is kept while twice the drop of the
penalized likelihood, maximized over beta, stays below the chi-square(1) quantile. Its coverage
over simulated grids is checked in tests/test_phase.py (93-100% over the study's grids and edge
sharpnesses). It needs no random numbers, so it is the same on every run. A grid that never
crosses the edge leaves the interval open on that side, and runs that do not follow r give a
wide interval rather than a false precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Slopes profiled over: 0 (no edge) and log-spaced up to a near step (the penalty keeps the best
# one finite even on a separable grid).
_BETA = np.concatenate([[0.0], np.logspace(-1.5, 4, 56)])
_STEP = 0.02  # resolution of ln c: the interval's ends are found to within 2%
_PAD = 2.0  # ln c is searched from ln r_min - 2 to ln r_max + 2 (a factor 7 beyond the data)


@dataclass(frozen=True)
class Fit:
    """c (NaN when the interval is open: no edge inside the data), its interval [low, high] (0 or
    inf when open on that side), and what informed it: grid points, runs and runs that trained."""

    c: float
    low: float
    high: float
    confidence: float
    points: int
    runs: int
    trained: int

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def profile(ratios: Sequence[float], trained: Sequence[int], runs: Sequence[int]
            ) -> tuple[np.ndarray, np.ndarray]:
    """(ln c grid, Firth-penalized profile log likelihood over beta at each ln c) for grid points
    at r = L / xi with ``trained`` of ``runs`` runs that trained."""
    r = np.log(np.asarray(ratios, dtype=np.float64))
    k = np.asarray(trained, dtype=np.float64)
    n = np.asarray(runs, dtype=np.float64)
    log_c = np.arange(r.min() - _PAD, r.max() + _PAD + _STEP, _STEP)
    # logit[c, beta, point]; -ln sigmoid(x) = softplus(x) - x, with softplus(x) = logaddexp(0, x)
    # finite at a near step.
    logit = _BETA[None, :, None] * (log_c[:, None, None] - r[None, None, :])
    soft = np.logaddexp(0, logit)
    ll = -(k * (soft - logit) + (n - k) * soft).sum(axis=2)
    # Fisher information of the logistic regression on ln r (intercept beta ln c, slope beta):
    # sum w (1, ln r)(1, ln r)^T with w = n p (1 - p); its determinant is Firth's penalty.
    w = n * np.exp(logit - 2 * soft)
    # Written as sum w x weighted variance of ln r: no cancellation, and exactly 0 (a penalty of
    # -inf) only where every w underflows, at a step; beta = 0 always stays finite. One distinct
    # r identifies no slope: there the penalty is left out.
    sw = w.sum(axis=2)
    mean = (w * r).sum(axis=2) / np.where(sw > 0, sw, 1.0)
    det = sw * (w * (r - mean[..., None]) ** 2).sum(axis=2)
    if len(np.unique(r)) > 1:
        with np.errstate(divide="ignore"):
            ll = ll + 0.5 * np.log(det)
    return log_c, ll.max(axis=1)


def fit(ratios: Sequence[float], trained: Sequence[int], runs: Sequence[int],
        confidence: float = 0.95) -> Fit:
    """c and its profile-likelihood interval from grid points at r = L / xi (finite, > 0)."""
    if len(ratios) == 0:
        return Fit(math.nan, 0.0, math.inf, confidence, 0, 0, 0)
    log_c, ll = profile(ratios, trained, runs)
    cut = float(stats.chi2.ppf(confidence, 1)) / 2
    kept = np.flatnonzero(ll >= ll.max() - cut)
    best = np.flatnonzero(ll >= ll.max() - 1e-9)  # a flat top (an open side): its middle
    lo, hi = kept[0], kept[-1]
    # An interval open on a side gives no point estimate: the penalty alone would then place it.
    edge = lo == 0 or hi == len(log_c) - 1 or best[0] == 0 or best[-1] == len(log_c) - 1
    return Fit(c=math.nan if edge else float(np.exp((log_c[best[0]] + log_c[best[-1]]) / 2)),
               low=0.0 if lo == 0 else float(np.exp(log_c[lo])),
               high=math.inf if hi == len(log_c) - 1 else float(np.exp(log_c[hi])),
               confidence=confidence, points=len(ratios), runs=int(np.sum(runs)),
               trained=int(np.sum(trained)))
