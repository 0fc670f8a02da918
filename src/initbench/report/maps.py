"""Beyond the length map: the correlation map, the Jacobian's second moment, the per-layer
Jacobians and the log-norm fluctuations of each model at initialization, against theory.

* **Correlation map** (Poole et al. 2016, arXiv:1606.05340; Schoenholz et al. 2017,
  arXiv:1611.01232): for pairs of training images, the correlation c_L of the last hidden layer's
  pre-activations, against the c-map iterated from the pair's measured layer 1 with each layer's
  measured sigma_w^2 and the cell's sigma_b^2 (:func:`initbench.report.cmap.propagate_pairs`).
  Compared as 1 - c_L, the distance from perfect correlation (positive; it shrinks to 0 in the
  ordered phase), by the signed log ratio over seeds.
* **The Jacobian's second moment** (Pennington, Schoenholz & Ganguli 2017, arXiv:1711.04735):
  Var(lambda) / E[lambda]^2 of the squared singular values lambda of J = dh_L / dh_1, against
  the sum over layers of v_W + mu_2 / mu_1^2 - 1 (:func:`initbench.report.theory.jacobian_spread`).
* **Per-layer Jacobians** (Glorot & Bengio 2010, AISTATS, sec. 4.2.2): the mean singular value of
  each layer's Jacobian W_l diag(phi'(z_l)), which they report at about 0.5 for the standard
  U(+-1/sqrt(fan_in)) and 0.8 for the normalized (Glorot) initialization in deep tanh nets; and
  the back-propagated gradients' std, last hidden layer over first.
* **Log-norm fluctuations** (Hanin & Rolnick 2018, arXiv:1803.01719): across weight draws, the
  variance of ln ||h_L||^2 (the last hidden layer's activations) for a fixed input, against
  5 sum_j 1/n_j over the hidden layers for He-initialized ReLU nets.

Every comparison is a signed log ratio log(measured / predicted) with its interval over seeds
(:func:`initbench.report.theory.agreement`); the tolerance of *agrees* is stated apart.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from initbench.report import cmap, meanfield, theory
from initbench.report.checks import effect_text, sigma_b2, span, tolerance_note
from initbench.report.stats import Interval, t_interval
from initbench.results import by_label

ORTHOGONAL_NAMES = ("orthogonal",)  # weights whose v_W is 0 (LSUV: of its base)
RESOLVED = 1e-5  # the smallest predicted 1 - c compared: float32 resolves c to about 1e-7


def _widths(cell: dict[str, Any]) -> list[int]:
    return [int(w) for w in cell["config"]["model.hidden"]]


def _pred(cell: dict[str, Any], m: dict[str, Any]) -> theory.Prediction:
    return theory.from_diagnostics(cell["activation"], _widths(cell), m["diagnostics"],
                                   sigma_b2=sigma_b2(cell))


def decorrelation(cell: dict[str, Any], m: dict[str, Any]) -> tuple[float, float]:
    """(predicted, measured) 1 - c_L of the last hidden layer, means over the model's pairs."""
    p = m["init_probes"]
    q, c = np.asarray(p["pair_q"], dtype=np.float64), np.asarray(p["pair_c"], dtype=np.float64)
    last = len(_widths(cell)) - 1
    pred = 1 - cmap.propagate_pairs(cell["activation"], q[0, 0::2], q[0, 1::2], c[0],
                                    _pred(cell, m).sigma_w2, sigma_b2=sigma_b2(cell))
    # float32 resolves c to about 1e-7, so a pair predicted within RESOLVED of 1 says nothing
    # about the map (its measured 1 - c is round-off)
    keep = pred > RESOLVED
    if not keep.any():
        return math.nan, math.nan
    return float(np.mean(pred[keep])), float(np.mean(1 - c[last][keep]))


def cmap_pooled(cell: dict[str, Any], confidence: float) -> theory.Agreement | None:
    """The correlation map over every model of a cell (e.g. a phase cell: one per sigma_w), the
    models as the units of the interval."""
    ms = [m for m in cell["members"] if m.get("init_probes")]
    if not ms or cell["activation"] not in meanfield.ACTIVATIONS:
        return None
    return theory.agreement(*zip(*[decorrelation(cell, m) for m in ms], strict=True), confidence)


def orthogonal(m: dict[str, Any]) -> bool:
    return m["initializer"] in ORTHOGONAL_NAMES or (
        m["initializer"] == "lsuv" and (m.get("args") or {}).get("base") in ORTHOGONAL_NAMES)


def spread(cell: dict[str, Any], m: dict[str, Any]) -> tuple[float, float]:
    """(predicted, measured) Var(lambda) / E[lambda]^2 of J's squared singular values."""
    pred = _pred(cell, m)
    rule = theory.jacobian_spread(cell["activation"], pred.q[1:], pred.sigma_w2, orthogonal(m))
    m2, m4 = float(m["jacobian_mean_sq"]), float(m["jacobian_mean_4th"])
    if not (m2 > 0 and math.isfinite(m2 * m2) and m2 * m2 > 0 and math.isfinite(m4)):
        return rule, math.nan  # J is 0 (or under- or overflows): no spread to compare
    return rule, m4 / (m2 * m2) - 1


def log_norm_variance(members: list[dict[str, Any]], confidence: float, key: str = "log_sq_norm"
                      ) -> Interval:
    """Var over seeds of ln ||h_L||^2 per input, averaged over the inputs, with the chi-square
    interval of n_seeds - 1 degrees of freedom (conservative: the inputs share their weights)."""
    x = np.asarray([m["init_probes"][key] for m in members], dtype=np.float64)  # (seeds, inputs)
    x = x[:, np.all(np.isfinite(x), axis=0)]
    n = x.shape[0]
    if n < 2 or not x.shape[1]:
        return Interval(math.nan, math.nan, math.nan, math.nan, n)
    v = float(np.mean(np.var(x, axis=0, ddof=1)))
    tail = (1 - confidence) / 2
    lo, hi = (v * (n - 1) / stats.chi2.ppf(q, n - 1) for q in (1 - tail, tail))
    return Interval(v, math.sqrt(v), lo, hi, n, "chi-square")


def _agreement_of_interval(predicted: float, iv: Interval) -> theory.Agreement:
    """An :class:`~theory.Agreement` for a measurement with its own interval (not per seed)."""
    effect = Interval(math.log(iv.mean / predicted), math.nan, math.log(iv.low / predicted),
                      math.log(iv.high / predicted), iv.n, iv.method)
    tol = math.log1p(theory.TOLERANCE)
    return theory.Agreement(predicted, iv.mean, iv.low, iv.high, effect, True,
                            effect.low - tol <= 0 <= effect.high + tol)


def hanin_rolnick(members: list[dict[str, Any]], widths: list[int], confidence: float
                  ) -> theory.Agreement | None:
    iv = log_norm_variance(members, confidence)
    if not (iv.n >= 2 and iv.mean > 0):
        return None
    return _agreement_of_interval(theory.log_length_variance(widths), iv)


def _mark(a: theory.Agreement | None) -> str:
    return "n/a" if a is None or a.agrees is None else ("yes" if a.agrees else "**no**")


def _cells(a: theory.Agreement | None) -> str:
    if a is None or a.agrees is None:
        return "- | - | - | n/a"
    return (f"{a.predicted:.3g} | {span(a.measured, a.low, a.high, '{:.3g}'.format)} | "
            f"{effect_text(a)} | {_mark(a)}")


def agreements(cell: dict[str, Any], confidence: float) -> dict[str, dict[str, Any]]:
    """label -> the correlation-map and second-moment agreements, the mean per-layer Jacobian
    singular value over seeds (t interval) and the back-propagated gradients' std ratio."""
    out: dict[str, dict[str, Any]] = {}
    if cell["activation"] not in meanfield.ACTIVATIONS:
        return out
    for label, members in by_label(cell["members"]).items():
        ok = [m for m in members if m.get("init_probes")]
        if not ok:
            continue
        dec = [decorrelation(cell, m) for m in ok]
        row: dict[str, Any] = {"initializer": ok[0]["initializer"],
                               "cmap": theory.agreement(*zip(*dec, strict=True), confidence)}
        if ok[0].get("jacobian_mean_4th") is not None:
            row["spread"] = theory.agreement(*zip(*[spread(cell, m) for m in ok], strict=True),
                                             confidence)
            row["layer_sv"] = t_interval([np.mean(m["layer_jacobian_sv_mean"]) for m in ok],
                                         confidence)
        std = [np.asarray(m["init_probes"]["backprop_std"][:-1], dtype=np.float64) for m in ok]
        row["backprop"] = t_interval([s[-1] / s[0] if s[0] > 0 else math.nan for s in std],
                                     confidence)
        out[label] = row
    return out


def table(cell: dict[str, Any], confidence: float) -> list[str]:
    """The cell's maps against theory, one row per initializer."""
    if cell["activation"] not in meanfield.ACTIVATIONS:
        return [f"No mean-field map for {cell['activation']} (known: "
                f"{', '.join(meanfield.ACTIVATIONS)})."]
    lines = [f"| initializer | 1 - c_L: predicted | measured [{confidence:.0%} CI] | log ratio | "
             "agrees | Var(lambda)/E[lambda]^2: predicted | measured | log ratio | agrees | "
             "mean singular value of a layer's Jacobian | back-prop gradient std last/first |",
             "|---|---:|---:|---:|---|---:|---:|---:|---|---:|---:|"]
    for label, r in agreements(cell, confidence).items():
        sv, bp = r.get("layer_sv"), r["backprop"]
        lines.append(f"| {label} | {_cells(r['cmap'])} | {_cells(r.get('spread'))} | "
                     + ("-" if sv is None else span(sv.mean, sv.low, sv.high, "{:.3g}".format))
                     + f" | {span(bp.mean, bp.low, bp.high, '{:.3g}'.format)} |")
    if cell["activation"] == "relu":
        hr = {label: hanin_rolnick(ms, _widths(cell), confidence)
              for label, ms in by_label(cell["members"]).items()
              if ms[0]["initializer"] == "he_normal" and ms[0].get("init_probes")
              and not sigma_b2(cell)}
        for label, a in hr.items():
            lines += ["", f"Hanin & Rolnick (2018), {label}: Var over seeds of ln ||h_L||^2 "
                      f"(per input, averaged over inputs; chi-square interval) predicted "
                      f"5 sum 1/n_j = {_cells(a).replace(' | ', '; ')}."]
    return [*lines, "", tolerance_note(confidence)]
