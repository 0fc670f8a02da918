"""Mean-field maps of a plain MLP at initialization: length, correlation, fixed points, depth scales.

Layer l has weights of variance sigma_w^2 / fan_in and biases N(0, sigma_b^2). A wide layer's
pre-activations are Gaussian; for one input their second moment q follows the length map and for
two inputs their correlation c the correlation map (Poole et al. 2016; Schoenholz et al. 2017):

    q'    = sigma_w^2 E_{z ~ N(0, q)}[phi(z)^2] + sigma_b^2,
    q_ab' = sigma_w^2 E[phi(u_a) phi(u_b)] + sigma_b^2,  (u_a, u_b) ~ N(0, [[qa, c r], [c r, qb]]),
    c'    = q_ab' / sqrt(qa' qb'),  r = sqrt(qa qb),

E[phi^2], not Var[phi]: the weights are zero-mean, so a non-zero E[phi] (sigmoid) still enters q.
At a fixed point q* of the length map, c = 1 is a fixed point of the correlation map with slope
chi_1 = sigma_w^2 E[phi'(z)^2]: stable (ordered phase) if chi_1 < 1, else the stable c* < 1
(chaotic phase). Signals decorrelate towards c* over xi_c = -1 / ln chi_c, chi_c = sigma_w^2
E[phi'(u_a) phi'(u_b)] at (q*, c*) (Schoenholz et al. 2017, eqs. 5-9; fig. 1 for tanh). ReLU's
E[relu(u_a) relu(u_b)] is the arc-cosine kernel (Cho & Saul 2009); the others are quadratures.

References: Poole et al. (2016), "Exponential expressivity in deep neural networks through
transient chaos", NeurIPS, arXiv:1606.05340. Schoenholz et al. (2017), "Deep Information
Propagation", ICLR, arXiv:1611.01232. Cho & Saul (2009), "Kernel Methods for Deep Learning", NeurIPS.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize, special

ACTIVATIONS = ("relu", "tanh", "linear", "sigmoid", "softsign")
# E[f(x)], x ~ N(0, 1), as a fine trapezoid rule: tanh's transition has width 1/sqrt(q) in x, which
# Gauss-Hermite nodes (spaced ~0.2 near 0) miss once q is in the hundreds (N(0,1) tanh: q ~ 250).
_X = np.linspace(-12.0, 12.0, 240_001)
_W = np.exp(-_X**2 / 2) / math.sqrt(2 * math.pi) * (_X[1] - _X[0])
# The same rule on a 2-D product grid for pairs, coarser (h = 0.015): for an analytic phi its error
# falls like exp(-2 pi d / h), d the distance of phi's poles from the real axis in x (tanh at
# q = 250: d = 0.1, error ~1e-18); softsign's kinks leave O(h^2) ~ 1e-4 relative at worst.
_Y = np.linspace(-9.0, 9.0, 1201)
_V = np.exp(-_Y**2 / 2) / np.sum(np.exp(-_Y**2 / 2))

_PHI: dict[str, Callable] = {"tanh": np.tanh, "sigmoid": special.expit,
                             "softsign": lambda z: z / (1 + np.abs(z))}
_DPHI: dict[str, Callable] = {"tanh": lambda z: 1 / np.cosh(z) ** 2,
                              "sigmoid": lambda z: special.expit(z) * special.expit(-z),
                              "softsign": lambda z: 1 / (1 + np.abs(z)) ** 2}


def gauss(f, q: float) -> float:
    """E[f(z)] for z ~ N(0, q)."""
    return float(np.sum(_W * f(math.sqrt(q) * _X)))


def _known(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"no mean-field map for activation {activation!r}; known: {', '.join(ACTIVATIONS)}")


def moments(activation: str, q: float) -> tuple[float, float]:
    """(E[phi(z)], E[phi(z)^2]) for z ~ N(0, q)."""
    _known(activation)
    if activation == "relu":
        return math.sqrt(q / (2 * math.pi)), q / 2
    if activation == "linear":
        return 0.0, q
    # sigmoid(z) + sigmoid(-z) = 1: its mean is 1/2 at every q; tanh and softsign are odd.
    return 0.5 if activation == "sigmoid" else 0.0, gauss(lambda z: _PHI[activation](z) ** 2, q)


def slope_moment(activation: str, q: float, k: int = 1) -> float:
    """mu_k = E[phi'(z)^(2k)], z ~ N(0, q) (ReLU: 1/2 for every k; linear: 1)."""
    _known(activation)
    if activation in ("relu", "linear"):
        return 0.5 if activation == "relu" else 1.0
    if activation == "tanh" and k == 1:
        return gauss(lambda z: 1 / np.cosh(z) ** 4, q)  # as it always was: bit for bit
    return gauss(lambda z: _DPHI[activation](z) ** (2 * k), q)


def chi_1(activation: str, q: float, sigma_w2: float) -> float:
    """sigma_w^2 E[phi'(z)^2], z ~ N(0, q): < 1 ordered (gradients vanish), > 1 chaotic.
    An activation without a map counts as linear (sigma_w^2), as it always has."""
    return sigma_w2 * (slope_moment(activation, q) if activation in ACTIVATIONS else 1.0)


@functools.lru_cache(maxsize=4096)
def fixed_point(activation: str, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    """q*, the stable fixed point of the length map; math.inf where q grows without bound.

    Zero biases: tanh and softsign have q* > 0 only when chaotic (sigma_w^2 > 1), else 0; ReLU and
    linear maps are q -> chi_1 q, whose only finite fixed point is 0 (returned); sigmoid (E[phi] =
    1/2) always has q* > 0. With sigma_b^2 > 0: ReLU q* = sigma_b^2 / (1 - sigma_w^2 / 2) (linear
    1 - sigma_w^2), inf from sigma_w^2 = 2 (1) on; the bounded ones have one q* > 0. Solved as a
    root (plain iteration converges ever more slowly towards the edge of chaos)."""
    _known(activation)
    if activation in ("relu", "linear"):
        chi = chi_1(activation, 1.0, sigma_w2)
        return 0.0 if sigma_b2 == 0 else (sigma_b2 / (1 - chi) if chi < 1 else math.inf)
    if sigma_b2 == 0 and activation != "sigmoid":
        if sigma_w2 <= 1:
            return 0.0

        def excess(q: float) -> float:  # > 0 below q*, < 0 above it: E[phi^2] / q falls with q
            return sigma_w2 * moments(activation, q)[1] / q - 1

        lo = 1e-9
        if excess(lo) <= 0:
            return 0.0
        return float(optimize.brentq(excess, lo, sigma_w2, xtol=1e-12, rtol=1e-10))
    # phi^2 <= 1, so the map sends [0, sigma_w^2 + sigma_b^2] into itself; it is > q at 0.
    return float(optimize.brentq(lambda q: sigma_w2 * moments(activation, q)[1] + sigma_b2 - q,
                                 0.0, sigma_w2 + sigma_b2, xtol=1e-13, rtol=1e-11))


def _pair(f: Callable, g: Callable, qa: float, qb: float, c: float) -> float:
    """E[f(u_a) g(u_b)], u_a = sqrt(qa) x, u_b = sqrt(qb) (c x + sqrt(1 - c^2) y), x, y ~ N(0, 1):
    this parametrisation stays well conditioned as c -> 1, where a Cholesky of the covariance would not."""
    s = math.sqrt(max(1 - c * c, 0.0))
    inner = g(math.sqrt(qb) * (c * _Y[:, None] + s * _Y[None, :])) @ _V
    return float(_V @ (f(math.sqrt(qa) * _Y) * inner))


def pair_map(activation: str, qa: float, qb: float, c: float, sigma_w2: float,
             sigma_b2: float = 0.0) -> tuple[float, float, float]:
    """One layer of the length and correlation maps for a pair of inputs: (qa', qb', c')."""
    _known(activation)
    c = min(max(c, -1.0), 1.0)
    qa2, qb2 = (sigma_w2 * moments(activation, q)[1] + sigma_b2 for q in (qa, qb))
    if activation == "relu":  # arc-cosine kernel of degree 1 (Cho & Saul 2009)
        theta = math.acos(c)
        ab = math.sqrt(qa * qb) / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * c)
    elif activation == "linear":
        ab = c * math.sqrt(qa * qb)
    else:
        ab = _pair(_PHI[activation], _PHI[activation], qa, qb, c)
    return qa2, qb2, (sigma_w2 * ab + sigma_b2) / math.sqrt(qa2 * qb2)


def propagate_pair(activation: str, qa1: float, qb1: float, c1: float, sigma_w2s: Sequence[float],
                   sigma_b2: float = 0.0) -> list[float]:
    """Correlations c_1..c_L of hidden layers 1..L from layer 1's measured (qa_1, qb_1, c_1) and
    sigma_w^2 of layers 2..L (as :func:`initbench.report.theory.propagate` takes them)."""
    qa, qb, cs = qa1, qb1, [c1]
    for s2 in sigma_w2s:
        qa, qb, c = pair_map(activation, qa, qb, cs[-1], s2, sigma_b2)
        cs.append(c)
    return cs


@functools.lru_cache(maxsize=4096)
def correlation_fixed_point(activation: str, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    """c*, the stable fixed point of the correlation map at q = q*: 1 in the ordered phase
    (chi_1(q*) <= 1; also where q* is 0 or infinite, and for ReLU and linear, whose c = 1 is never
    unstable), < 1 in the chaotic phase (0 for odd phi with zero biases)."""
    _known(activation)
    q = fixed_point(activation, sigma_w2, sigma_b2)
    if activation in ("relu", "linear") or not 0 < q < math.inf or chi_1(activation, q, sigma_w2) <= 1:
        return 1.0
    if sigma_b2 == 0 and activation != "sigmoid":
        return 0.0  # E[phi(u_a) phi(u_b)] = E[phi]^2 = 0 at c = 0

    def gain(c: float) -> float:  # c' - c: >= 0 at c = 0 (q_ab' >= sigma_b^2 + E[phi]^2), < 0 near 1
        return pair_map(activation, q, q, c, sigma_w2, sigma_b2)[2] - c

    for gap in (1e-3, 1e-5, 1e-7):  # the chaotic c* approaches 1 at the edge of chaos
        if gain(1 - gap) < 0:
            return float(optimize.brentq(gain, 0.0, 1 - gap, xtol=1e-12))
    return 1.0


def chi_c(activation: str, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    """sigma_w^2 E[phi'(u_a) phi'(u_b)] at (q*, c*): the correlation map's slope at c*
    (chi_1(q*) where c* = 1; sigma_w^2 phi'(0)^2 where q* = 0)."""
    q = fixed_point(activation, sigma_w2, sigma_b2)
    c = correlation_fixed_point(activation, sigma_w2, sigma_b2)
    if activation in ("relu", "linear") or q == math.inf:
        return chi_1(activation, 1.0, sigma_w2)
    if q == 0:  # exactly: the edge (sigma_w = 1 for tanh) must give chi = 1, xi = inf
        return sigma_w2 * float(_DPHI[activation](np.zeros(1))[0]) ** 2
    if c == 1:
        return chi_1(activation, q, sigma_w2)
    if c == 0:  # u_a, u_b independent: the product of two 1-D means (bit for bit as before)
        return sigma_w2 * gauss(_DPHI[activation], q) ** 2
    return sigma_w2 * _pair(_DPHI[activation], _DPHI[activation], q, q, c)


@functools.lru_cache(maxsize=4096)
def depth_scale(activation: str, sigma_w: float, sigma_b2: float = 0.0) -> float:
    """xi, the depth over which signals propagate at weight scale sigma_w.

    tanh, sigmoid, softsign with q* > 0 (sigma_b^2 > 0, either phase; sigmoid always; tanh and
    softsign chaotic): xi_c = -1 / ln chi_c (Schoenholz et al. 2017, eq. 9). With zero biases in
    the ordered phase q* = 0 and xi = -1 / ln chi_1, chi_1 = sigma_w^2. ReLU and linear: with zero
    biases the correlation map does not depend on sigma_w; what does is the gradient's per-layer
    factor chi_1 = sigma_w^2 / 2 (sigma_w^2 for linear), so xi = 1 / |ln chi_1| (He's sigma_w^2 = 2:
    infinite). With biases that is still xi: below the edge c* = 1 and chi_c = chi_1; above it q*
    is infinite and the biases fade, leaving the scale's drift.
    """
    _known(activation)
    s2 = sigma_w * sigma_w
    chi = chi_1(activation, 1.0, s2) if activation in ("relu", "linear") else chi_c(activation, s2, sigma_b2)
    return math.inf if chi == 1 else 1 / abs(math.log(chi))


@functools.lru_cache(maxsize=256)
def critical_sigma_w(activation: str, sigma_b2: float = 0.0) -> float:
    """The sigma_w where chi_1(q*) = 1, the edge of chaos: 1 / |phi'(0)| for odd phi with zero
    biases (q* -> 0 there), 1 / sqrt(chi_1 / sigma_w^2) for ReLU and linear; else a root."""
    _known(activation)
    if activation in ("relu", "linear"):
        return 1 / math.sqrt(chi_1(activation, 1.0, 1.0))
    if sigma_b2 == 0 and activation != "sigmoid":
        return 1 / abs(float(_DPHI[activation](np.zeros(1))[0]))

    def excess(s2: float) -> float:
        return chi_1(activation, fixed_point(activation, s2, sigma_b2), s2) - 1

    hi = 1.0
    while excess(hi) <= 0:  # chi_1(q*) grows with sigma_w^2 (sigmoid: phi' <= 1/4, edge near 4)
        hi *= 2
        if hi > 1e6:
            return math.inf
    return math.sqrt(optimize.brentq(excess, hi / 2 if hi > 1 else 1e-6, hi, xtol=1e-12, rtol=1e-11))
