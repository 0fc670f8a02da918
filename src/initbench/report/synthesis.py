"""One contrast across cells: e.g. He - Glorot over the depths of one activation.

Each cell estimates the contrast independently (its own seeds, its own residual variance), so the
cells' estimates combine as in a meta-analysis (Cochran 1954; DerSimonian & Laird 1986):

* fixed effect: the inverse-variance weighted mean, se = 1 / sqrt(sum w);
* heterogeneity: Cochran's Q = sum w (d - d_FE)^2 on k - 1 df, and I^2 = (Q - df) / Q;
* when Q rejects homogeneity (p < 0.1, the conventional level for this low-powered test) the
  contrast *depends on the cell*; the DerSimonian-Laird random-effects interval is then reported,
  and no single number summarizes it.

The combined contrast gets the same verdicts as a cell's (:func:`initbench.report.blocked.decide`),
with the cells' smallest df (a conservative choice for the t quantile).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from initbench.report.blocked import Contrast, Decision, decide

HETEROGENEITY_P = 0.1


@dataclass(frozen=True)
class Synthesis:
    combined: Contrast          # fixed effect
    q: float
    q_p: float
    i2: float
    random: Contrast            # DerSimonian-Laird
    decision: Decision
    heterogeneous: bool

    @property
    def verdict(self) -> str:
        return "depends on the cell" if self.heterogeneous else self.decision.verdict


def combine(contrasts: Sequence[Contrast], margin: float, alpha: float) -> Synthesis | None:
    """The synthesis of two or more cells' contrasts with finite standard errors (None if fewer)."""
    usable = [c for c in contrasts if math.isfinite(c.se) and c.se > 0 and c.df > 0]
    if len(usable) < 2:
        return None
    d = np.array([c.estimate for c in usable])
    w = 1 / np.array([c.se for c in usable]) ** 2
    fixed = float((w * d).sum() / w.sum())
    df = min(c.df for c in usable)
    n = sum(c.n for c in usable)
    fe = Contrast(fixed, float(1 / math.sqrt(w.sum())), df, n, "fixed effect")
    q = float((w * (d - fixed) ** 2).sum())
    k = len(usable)
    q_p = float(stats.chi2.sf(q, k - 1))
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    wr = 1 / (1 / w + tau2)
    re = Contrast(float((wr * d).sum() / wr.sum()), float(1 / math.sqrt(wr.sum())), df, n,
                  "random effects")
    heterogeneous = q_p < HETEROGENEITY_P
    return Synthesis(fe, q, q_p, i2, re, decide(re if heterogeneous else fe, margin, alpha),
                     heterogeneous)
