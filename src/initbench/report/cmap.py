"""The correlation map for many pairs of inputs at once: what the report compares with the
measured per-layer correlations of every model (:mod:`initbench.report.maps`).

The same maps as :func:`initbench.report.meanfield.propagate_pair` (Poole et al. 2016,
arXiv:1606.05340; Schoenholz et al. 2017, arXiv:1611.01232), vectorized over the pairs and on a
coarser trapezoid grid: h = 0.075 on [-9, 9]. For an analytic phi the rule's error falls like
exp(-2 pi d / h), d the distance of phi's nearest pole from the real axis in x; tanh at q = 250
(N(0, 1) weights) has d = pi / (2 sqrt q) = 0.1, so about 2e-4, and far less at the q ~ 1 of a
sensible initialization; softsign's kink leaves O(h^2). The second moments are taken on the same
grid as the cross moment, so c = 1 maps to exactly 1. ReLU uses the arc-cosine kernel (Cho & Saul
2009, "Kernel Methods for Deep Learning", NeurIPS), linear its closed form.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

_Y = np.linspace(-9.0, 9.0, 241)
_V = np.exp(-_Y**2 / 2) / np.sum(np.exp(-_Y**2 / 2))
_PHI = {"tanh": np.tanh, "sigmoid": special.expit, "softsign": lambda z: z / (1 + np.abs(z))}


def _step(activation: str, qa: np.ndarray, qb: np.ndarray, c: np.ndarray, s2: float, b2: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ra, rb = np.sqrt(qa), np.sqrt(qb)
    if activation == "relu":
        theta = np.arccos(c)
        ab = ra * rb / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * c)
        ea, eb = qa / 2, qb / 2
    elif activation == "linear":
        ab, ea, eb = c * ra * rb, qa, qb
    else:
        phi = _PHI[activation]
        s = np.sqrt(np.maximum(1 - c * c, 0.0))
        fa = phi(ra[:, None] * _Y[None, :])  # (P, n): phi(u_a) at x
        # E_y[phi(u_b) | x], u_b = sqrt(qb) (c x + s y): (P, n)
        inner = phi(rb[:, None, None] * (c[:, None, None] * _Y[None, :, None]
                                         + s[:, None, None] * _Y[None, None, :])) @ _V
        ab = (fa * inner) @ _V
        ea, eb = fa**2 @ _V, phi(rb[:, None] * _Y[None, :]) ** 2 @ _V
    qa2, qb2 = s2 * ea + b2, s2 * eb + b2
    return qa2, qb2, np.clip((s2 * ab + b2) / np.sqrt(qa2 * qb2), -1.0, 1.0)


def propagate_pairs(activation: str, qa1: Sequence[float], qb1: Sequence[float],
                    c1: Sequence[float], sigma_w2s: Sequence[float], sigma_b2: float = 0.0
                    ) -> np.ndarray:
    """c_L, the last layer's correlation, for each pair from its layer-1 (qa, qb, c) and
    sigma_w^2 of layers 2..L; NaN for a pair whose layer 1 is not finite and positive."""
    qa, qb = np.asarray(qa1, dtype=np.float64), np.asarray(qb1, dtype=np.float64)
    c = np.asarray(c1, dtype=np.float64)
    ok = np.isfinite(qa) & np.isfinite(qb) & np.isfinite(c) & (qa > 0) & (qb > 0)
    out = np.full(qa.shape, np.nan)
    if not ok.any():
        return out
    qa, qb, c = qa[ok], qb[ok], np.clip(c[ok], -1.0, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        for s2 in sigma_w2s:
            qa, qb, c = _step(activation, qa, qb, c, float(s2), float(sigma_b2))
    out[ok] = c
    return out
