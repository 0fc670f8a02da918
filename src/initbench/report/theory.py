"""Mean-field signal propagation: what theory predicts for the per-layer statistics at init.

For a plain MLP whose layer l has weights of variance sigma_w^2 / fan_in and zero biases, the
pre-activations of a wide layer are Gaussian with second moment q_l, and (Poole et al. 2016;
Schoenholz et al. 2017)

    q_{l+1} = sigma_w^2 E_{z ~ N(0, q_l)}[phi(z)^2],
    chi_1   = sigma_w^2 E_{z ~ N(0, q*)}[phi'(z)^2]   (the per-layer gradient factor).

Given the measured q_1 of the first hidden layer and each layer's sigma_w^2 (fan_in x the
measured kernel variance: :func:`from_diagnostics`; or the variance the initializer promises:
:func:`nominal`), :func:`propagate` predicts every later layer's activation std and,
for tanh, the fraction of saturated units (|tanh z| > 0.99). For ReLU the map is exact in closed
form (E[relu(z)^2] = q/2: He's factor 2); for tanh the expectation is a fine quadrature.
Finite width adds fluctuations around these predictions (of order sqrt(depth / width) in log q),
which is why measurements are compared over seeds with an interval (:func:`agreement`): the
per-seed log(measured / predicted), its t interval, and a 10% tolerance for the approximation.

References: Poole et al. (2016), "Exponential expressivity in deep neural networks through
transient chaos", NeurIPS, arXiv:1606.05340. Schoenholz et al. (2017), "Deep Information
Propagation", ICLR, arXiv:1611.01232. Glorot & Bengio (2010), AISTATS. He et al. (2015), ICCV.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from initbench.init import registry
from initbench.report.stats import Interval, t_interval

INPUTS = 784  # the first layer's fan_in: 28 x 28 pixels (MNIST, Fashion-MNIST)
TRUNCATED = 0.7737413  # Var of N(0, 1) truncated at +-2 sigma (Keras TruncatedNormal: not rescaled)
TOLERANCE = 0.10  # relative: how far a prediction may miss beyond the measurement's interval
SATURATION = 0.99  # |tanh(z)| above this counts as saturated (initbench.train.diagnostics)
# E[f(x)], x ~ N(0, 1), as a fine trapezoid rule: tanh's transition has width 1/sqrt(q) in x, which
# Gauss-Hermite nodes (spaced ~0.2 near 0) miss once q is in the hundreds (N(0,1) tanh: q ~ 250).
_X = np.linspace(-12.0, 12.0, 240_001)
_W = np.exp(-_X**2 / 2) / math.sqrt(2 * math.pi) * (_X[1] - _X[0])


def gauss(f, q: float) -> float:
    """E[f(z)] for z ~ N(0, q)."""
    return float(np.sum(_W * f(math.sqrt(q) * _X)))


def moments(activation: str, q: float) -> tuple[float, float]:
    """(E[phi(z)], E[phi(z)^2]) for z ~ N(0, q)."""
    if activation == "relu":
        return math.sqrt(q / (2 * math.pi)), q / 2
    if activation == "tanh":
        return 0.0, gauss(lambda z: np.tanh(z) ** 2, q)
    if activation == "linear":
        return 0.0, q
    raise ValueError(f"no mean-field map for activation {activation!r}; known: relu, tanh, linear")


@dataclass(frozen=True)
class Prediction:
    """Per hidden layer: pre-activation second moment, activation std, saturated fraction
    (tanh; NaN otherwise); and the sigma_w^2 of layers 2..L it was propagated with."""

    q: list[float]
    act_std: list[float]
    saturated: list[float]
    sigma_w2: list[float]

    def jacobian_mean_sq(self, activation: str) -> float:
        """Mean square singular value of dh_L / dh_1: prod_{l=2..L} chi_1(q_l, sigma_w,l^2)."""
        return math.prod(chi_1(activation, q, s2) for q, s2 in zip(self.q[1:], self.sigma_w2, strict=True))


def propagate(activation: str, q1: float, sigma_w2: Sequence[float]) -> Prediction:
    """Predictions for hidden layers 1..L from layer 1's q_1 and sigma_w^2 of layers 2..L."""
    q = [q1]
    for s2 in sigma_w2:
        q.append(s2 * moments(activation, q[-1])[1])
    std, sat = [], []
    for ql in q:
        mean, second = moments(activation, ql)
        std.append(math.sqrt(max(second - mean**2, 0.0)))
        sat.append(2 * _normal_sf(math.atanh(SATURATION) / math.sqrt(ql)) if activation == "tanh"
                   and ql > 0 else math.nan)
    return Prediction(q, std, sat, list(sigma_w2))


def chi_1(activation: str, q: float, sigma_w2: float) -> float:
    """sigma_w^2 E[phi'(z)^2], z ~ N(0, q): < 1 ordered (gradients vanish), > 1 chaotic."""
    if activation == "relu":
        return sigma_w2 / 2
    if activation == "tanh":
        return sigma_w2 * gauss(lambda z: 1 / np.cosh(z) ** 4, q)
    return sigma_w2


def fixed_point(activation: str, sigma_w2: float) -> float:
    """q* > 0, the stable fixed point of the variance map q = sigma_w^2 E[phi(z)^2] with zero biases
    for an odd, saturating phi (tanh) in its chaotic phase (sigma_w^2 > 1); 0 otherwise. Solved as
    a root (plain iteration converges ever more slowly towards the edge of chaos)."""
    if activation != "tanh" or sigma_w2 <= 1:
        return 0.0

    def excess(q: float) -> float:  # > 0 below q*, < 0 above it: E[tanh^2] / q falls with q
        return sigma_w2 * moments(activation, q)[1] / q - 1

    lo = 1e-9
    if excess(lo) <= 0:
        return 0.0
    return float(optimize.brentq(excess, lo, sigma_w2, xtol=1e-12, rtol=1e-10))


@functools.lru_cache(maxsize=4096)
def depth_scale(activation: str, sigma_w: float) -> float:
    """xi, the depth over which signals propagate at weight scale sigma_w and zero biases.

    tanh (Schoenholz et al. 2017, eq. 9): ordered phase (sigma_w <= 1: q* = 0, every input
    converges to one point) xi = -1 / ln(chi_1), chi_1 = sigma_w^2; chaotic phase (sigma_w > 1:
    q* > 0, the correlation's fixed point is c* = 0 for an odd phi) xi = -1 / ln(chi_c),
    chi_c = sigma_w^2 (E[phi'(sqrt(q*) z)])^2. ReLU (and linear): with zero biases the correlation
    map does not depend on sigma_w; what does is the gradient's per-layer factor chi_1 =
    sigma_w^2 / 2 (sigma_w^2 for linear), so xi = 1 / |ln chi_1| (He's sigma_w^2 = 2: infinite).
    """
    s2 = sigma_w * sigma_w
    if activation in ("relu", "linear"):
        chi = s2 / 2 if activation == "relu" else s2
    elif activation == "tanh":
        q = fixed_point("tanh", s2) if s2 > 1 else 0.0
        chi = s2 * gauss(lambda z: 1 / np.cosh(z) ** 2, q) ** 2 if q > 0 else s2
    else:
        raise ValueError(f"no depth scale for activation {activation!r}; known: relu, tanh, linear")
    return math.inf if chi == 1 else 1 / abs(math.log(chi))


def _normal_sf(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2))


def from_diagnostics(activation: str, widths: Sequence[int], diagnostics: dict) -> Prediction:
    """The prediction for one model from its own diagnostics at initialization (epoch 0): q_1 from
    layer 1's pre-activations, sigma_w^2 = fan_in x kernel variance for layers 2..L."""
    pre_mean, pre_std = diagnostics["pre_mean"][0][0], diagnostics["pre_std"][0][0]
    kernel_std = diagnostics["kernel_std"][0]
    sigma_w2 = [widths[i - 1] * kernel_std[i] ** 2 for i in range(1, len(widths))]
    return propagate(activation, pre_std**2 + pre_mean**2, sigma_w2)


# fan_in x Var(W) per registry initializer (its variance formulas), from its arguments a and the
# kernel's fan_in i and fan_out o; orthogonal: rows or columns orthonormal, Var = g^2 / max(i, o).
_FAMILIES = {"glorot": lambda a, i, o: 2 * i / (i + o), "lecun": lambda a, i, o: 1.0,
             "he": lambda a, i, o: 2 / (1 + a["negative_slope"] ** 2)}
_SIGMA_W2 = {f"{name}_{d}": f for name, f in _FAMILIES.items() for d in ("normal", "uniform")} | {
    "zeros": lambda a, i, o: 0.0, "random_normal": lambda a, i, o: a["stddev"] ** 2 * i,
    "gaussian": lambda a, i, o: a["stddev"] ** 2 * i,
    "truncated_normal": lambda a, i, o: TRUNCATED * a["stddev"] ** 2 * i,
    "random_uniform": lambda a, i, o: (a["maxval"] - a["minval"]) ** 2 / 12 * i,
    "variance_scaling": lambda a, i, o: a["scale"] * i / {"fan_in": i, "fan_out": o,
                                                          "fan_avg": (i + o) / 2}[a["mode"]],
    "orthogonal": lambda a, i, o: a["gain"] ** 2 * i / max(i, o),
    "standard_uniform": lambda a, i, o: 1 / 3,
    "sparse": lambda a, i, o: max(1, round((1 - a["sparsity"]) * i)) * a["stddev"] ** 2,
}


def nominal_sigma_w2(name: str, args: Mapping[str, Any] | None, fan_in: int, fan_out: int,
                     activation: str) -> float | None:
    """sigma_w^2 = fan_in x Var(W) that initializer ``name`` promises a Dense kernel (fan_in,
    fan_out), ``gain: auto`` resolved for ``activation``: He 2 / (1 + a^2), Glorot 2 fan_in /
    (fan_in + fan_out), LeCun 1, N(0, s^2) s^2 fan_in, orthogonal g^2 (square). None where it
    promises no zero-mean variance (lsuv: set by data; identity, constant; a non-zero mean)."""
    if name not in _SIGMA_W2:
        return None
    a = registry.effective_args(name, args, activation)
    if a.get("mean", 0.0) != 0.0 or a.get("minval", 0.0) != -a.get("maxval", 0.0):
        return None
    return float(_SIGMA_W2[name](a, fan_in, fan_out))


def nominal(activation: str, widths: Sequence[int], initializer: str, args: Mapping[str, Any] | None,
            diagnostics: dict, inputs: int = INPUTS) -> Prediction | None:
    """The prediction from the variances ``initializer`` promises (:func:`nominal_sigma_w2`), not
    the model's measured ones: q_1 = sigma_w,1^2 m_x, with m_x the inputs' mean square, a property
    of the data measured as layer 1's q_1 / (inputs x Var(W_1)) at init (its weights cancel)."""
    fans = [inputs, *widths]
    s2 = [nominal_sigma_w2(initializer, args, fans[i], fans[i + 1], activation)
          for i in range(len(widths))]
    k = diagnostics["kernel_std"][0][0]
    if any(v is None for v in s2) or not k > 0:
        return None
    q1 = diagnostics["pre_std"][0][0] ** 2 + diagnostics["pre_mean"][0][0] ** 2
    return propagate(activation, s2[0] * q1 / (inputs * k**2), s2[1:])


@dataclass(frozen=True)
class Agreement:
    """A prediction against a measurement over seeds (geometric means when ``log``): the
    measurement's plain t interval [low, high]; ``effect``: per seed log(measured / predicted)
    (``log``) or measured - predicted, with its t interval; ``agrees``: that interval widened by
    the tolerance contains 0 (one seed: the value lies within the tolerance)."""

    predicted: float
    measured: float
    low: float
    high: float
    effect: Interval
    log: bool
    agrees: bool | None


def agreement(predicted: Sequence[float], measured: Sequence[float], confidence: float,
              log: bool = True) -> Agreement:
    """Per-seed predictions against per-seed measurements, leaving out non-finite pairs (and
    non-positive ones when ``log``)."""
    p, x = np.asarray(predicted, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    keep = np.isfinite(p) & np.isfinite(x) & ((p > 0) & (x > 0) if log else True)
    p, x = (np.log(v[keep]) if log else v[keep] for v in (p, x))
    level, effect = t_interval(x, confidence), t_interval(x - p, confidence)
    if not effect.n:
        return Agreement(*[math.nan] * 4, effect, log, None)
    tol = math.log1p(TOLERANCE) if log else TOLERANCE * max(abs(level.mean), 0.05)
    ok = abs(effect.mean) <= tol if effect.n == 1 else effect.low - tol <= 0 <= effect.high + tol
    back = math.exp if log else float
    return Agreement(back(float(p.mean())), back(level.mean), back(level.low), back(level.high),
                     effect, log, bool(ok))
