"""Mean-field signal propagation: what theory predicts for the per-layer statistics at init.

For a plain MLP whose layer l has weights of variance sigma_w^2 / fan_in and biases of variance
sigma_b^2 (zero here unless given), the pre-activations of a wide layer are Gaussian with second
moment q_l, and (Poole et al. 2016; Schoenholz et al. 2017; the maps: :mod:`.meanfield`)

    q_{l+1} = sigma_w^2 E_{z ~ N(0, q_l)}[phi(z)^2] + sigma_b^2,
    chi_1   = sigma_w^2 E_{z ~ N(0, q*)}[phi'(z)^2]   (the per-layer gradient factor).

Given the measured q_1 of the first hidden layer and each layer's sigma_w^2 (fan_in x the
measured kernel variance: :func:`from_diagnostics`; or the variance the initializer promises:
:func:`nominal`), :func:`propagate` predicts every later layer's activation std and, for tanh,
the fraction of saturated units (|tanh z| > 0.99); :func:`jacobian_mean_sq` and
:func:`jacobian_spread` the input-output Jacobian's spectrum (Pennington et al. 2017), and
:func:`log_length_variance` ReLU's finite-width fluctuation of ||h_L|| (Hanin & Rolnick 2018).
Finite width adds fluctuations around these predictions (of order sqrt(depth / width) in log q),
which is why measurements are compared over seeds with an interval (:func:`agreement`): the
per-seed log(measured / predicted), its t interval, and a 10% tolerance for the approximation.

References: Poole et al. (2016), NeurIPS, arXiv:1606.05340. Schoenholz et al. (2017), "Deep
Information Propagation", ICLR, arXiv:1611.01232. Pennington, Schoenholz & Ganguli (2017),
"Resurrecting the sigmoid in deep learning through dynamical isometry", NeurIPS, arXiv:1711.04735.
Hanin & Rolnick (2018), NeurIPS, arXiv:1803.01719. Glorot & Bengio (2010). He et al. (2015).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special
from scipy.stats import binom

from initbench.init import registry
from initbench.report.meanfield import (
    chi_1,
    chi_c,
    correlation_fixed_point,
    critical_sigma_w,
    depth_scale,
    fixed_point,
    gauss,
    moments,
    pair_map,
    propagate_pair,
    slope_moment,
)
from initbench.report.stats import Interval, t_interval

__all__ = ["INPUTS", "SATURATION", "TOLERANCE", "TRUNCATED", "Agreement", "Prediction", "agreement",
           "chi_1", "chi_c", "correlation_fixed_point", "critical_sigma_w", "depth_scale", "fixed_point",
           "from_diagnostics", "gauss", "jacobian_mean_sq", "jacobian_spread", "log_length_variance",
           "moments", "nominal", "nominal_sigma_w2", "pair_map", "propagate", "propagate_pair",
           "slope_moment"]

INPUTS = 784  # the first layer's fan_in: 28 x 28 pixels (MNIST, Fashion-MNIST)
TRUNCATED = 0.7737413  # Var of N(0, 1) truncated at +-2 sigma (Keras TruncatedNormal: not rescaled)
TOLERANCE = 0.10  # relative: how far a prediction may miss beyond the measurement's interval
SATURATION = 0.99  # |tanh(z)| above this counts as saturated (initbench.train.diagnostics)


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
        return jacobian_mean_sq(activation, self.q[1:], self.sigma_w2)


def propagate(activation: str, q1: float, sigma_w2: Sequence[float], sigma_b2: float = 0.0) -> Prediction:
    """Predictions for hidden layers 1..L from layer 1's q_1 and sigma_w^2 of layers 2..L (and the
    biases' variance sigma_b^2 of layers 2..L: q_{l+1} = sigma_w^2 E[phi^2] + sigma_b^2)."""
    q = [q1]
    for s2 in sigma_w2:
        q.append(s2 * moments(activation, q[-1])[1] + sigma_b2)
    std, sat = [], []
    for ql in q:
        mean, second = moments(activation, ql)
        std.append(math.sqrt(max(second - mean**2, 0.0)))
        sat.append(2 * _normal_sf(math.atanh(SATURATION) / math.sqrt(ql)) if activation == "tanh"
                   and ql > 0 else math.nan)
    return Prediction(q, std, sat, list(sigma_w2))


def _normal_sf(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2))


def jacobian_mean_sq(activation: str, qs: Sequence[float], sigma_w2s: Sequence[float]) -> float:
    """E[lambda] = tr(J J^T) / n for J = dh_L / dh_1 = prod_{l=2..L} D_l W_l: prod_l chi_1(q_l,
    sigma_w,l^2) over layers l = 2..L (``qs`` = q_2..q_L, as ``Prediction.q[1:]``)."""
    return math.prod(chi_1(activation, q, s2) for q, s2 in zip(qs, sigma_w2s, strict=True))


def jacobian_spread(activation: str, qs: Sequence[float], sigma_w2s: Sequence[float],
                    orthogonal: bool) -> float:
    """Var(lambda) / E[lambda]^2 of the squared singular values lambda of J = dh_L / dh_1 =
    D_L W_L ... D_2 W_2 (square, wide layers; D_l = diag phi'(z_l)): sum_{l=2..L} [v_W + mu_2(q_l) /
    mu_1(q_l)^2 - 1], mu_k = E[phi'(z)^(2k)], z ~ N(0, q_l); v_W = 1 Gaussian (Marchenko-Pastur at
    ratio 1), 0 orthogonal (Pennington et al. 2017: the factors are asymptotically free, and a free
    product's normalized variances add). ``qs`` = q_2..q_L, the layers whose phi' enters J (tested:
    with q drifting over depth, q_1..q_{L-1} misses). sigma_w^2 drops out; a zero one gives NaN.
    """
    total = 0.0
    for q, s2 in zip(qs, sigma_w2s, strict=True):
        if s2 == 0:
            return math.nan
        total += (0.0 if orthogonal else 1.0) + slope_moment(activation, q, 2) / slope_moment(
            activation, q, 1) ** 2 - 1
    return total


def log_length_variance(widths: Sequence[int], pre_activations: bool = False, exact: bool = False) -> float:
    """Var[log ||h_L||^2] over weight draws for one fixed input, ReLU with He weights (sigma_w^2 = 2,
    zero biases), h_L the last hidden layer's activations, ``widths`` n_1..n_L of all hidden layers
    (the first counts: W_1 is drawn too): 5 sum_j 1 / n_j (Hanin & Rolnick 2018, thm. 5).

    Given h_{j-1}, z_j = W_j h_{j-1} ~ N(0, 2 ||h_{j-1}||^2 / n_{j-1} I) whatever the past (Gaussian W
    is rotation invariant): log ||h_L||^2 is a sum of L independent log ratios, layer j's the log of
    (2 / n_{j-1}) chi^2_K, K ~ Bin(n_j, 1/2) the units ReLU keeps, with variance E[psi'(K/2)] +
    Var[psi(K/2)] = 5 / n_j (1 + ~4 / n_j) (``exact``: this sum; 6% above 5 / n at n = 64).
    ``pre_activations``: of ||z_L||^2, whose last factor is chi^2_{n_L}: 2 / n_L (exact psi'(n_L / 2)).
    """
    n = [int(w) for w in widths]
    head, last = (n[:-1], n[-1]) if pre_activations else (n, None)
    if not exact:
        return 5 * sum(1 / w for w in head) + (2 / last if last else 0.0)
    total = 0.0
    for w in head:
        k = np.arange(1, w + 1)  # K = 0 (probability 2^-n): h_j = 0, log -inf; left out
        p = binom.pmf(k, w, 0.5) / (1 - 0.5**w)
        psi = special.digamma(k / 2)
        total += float(p @ special.polygamma(1, k / 2) + p @ psi**2 - (p @ psi) ** 2)
    return total + (float(special.polygamma(1, last / 2)) if last else 0.0)


def from_diagnostics(activation: str, widths: Sequence[int], diagnostics: dict,
                     sigma_b2: float = 0.0) -> Prediction:
    """The prediction for one model from its own diagnostics at initialization (epoch 0): q_1 from
    layer 1's pre-activations, sigma_w^2 = fan_in x kernel variance for layers 2..L, and the
    biases' variance sigma_b^2 the cell drew them with."""
    pre_mean, pre_std = diagnostics["pre_mean"][0][0], diagnostics["pre_std"][0][0]
    kernel_std = diagnostics["kernel_std"][0]
    sigma_w2 = [widths[i - 1] * kernel_std[i] ** 2 for i in range(1, len(widths))]
    return propagate(activation, pre_std**2 + pre_mean**2, sigma_w2, sigma_b2=sigma_b2)


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
    "standard_uniform": lambda a, i, o: 1 / 3, "pytorch_default": lambda a, i, o: 1 / 3,
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
            diagnostics: dict, inputs: int = INPUTS, sigma_b2: float = 0.0) -> Prediction | None:
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
    # q_1 = sigma_w,1^2 m_x + sigma_b^2: m_x from the weights' part of the measured q_1 alone
    m_x = max(q1 - sigma_b2, 0.0) / (inputs * k**2)
    return propagate(activation, s2[0] * m_x + sigma_b2, s2[1:], sigma_b2=sigma_b2)


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
