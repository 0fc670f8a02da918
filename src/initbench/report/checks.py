"""The report's checks: measurement against theory (mean-field predictions, :mod:`theory`), the
literature's statements about deep plain networks, and the study's starting claims.

Every check states what theory or the source predicts, what was measured (over seeds, with an
interval) and whether they agree; a prediction agrees when it lies inside the measurement's
interval widened by a 10% floor (finite width and the mean-field approximation). The starting
claims (Ali 2023's MNIST numbers) are tested only on the configuration they describe, as levels
and as gaps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from initbench.config import Params
from initbench.paths import cell_name
from initbench.report import theory
from initbench.report.stats import bounded_interval, paired_difference, verdict
from initbench.report.tables import outcome, pct, successful
from initbench.results import by_label

FLOOR = 0.10  # relative tolerance added to every interval a prediction is compared with
# The study's starting claims: MNIST test accuracy of the article's model per initializer...
CLAIMS = (("random", "random_normal", 0.92), ("Gaussian", "gaussian", 0.93),
          ("Xavier", "glorot_uniform", 0.94), ("He", "he_normal", 0.945))
# ... on the article's configuration: MNIST, 784-128-10 ReLU, Adam 0.001, batch 32, 10 epochs.
ARTICLE = {"data.dataset": "mnist", "data.train_limit": None, "model.hidden": [128],
           "model.activation": "relu", "train.optimizer": "adam", "train.learning_rate": 0.001,
           "train.batch_size": 32, "train.epochs": 10}


def agreement(predicted: Sequence[float], measured: Sequence[float], confidence: float,
              log: bool = True) -> tuple[float, float, float, float, bool | None]:
    """(prediction, measured mean, low, high, agrees) over seeds; geometric when ``log``."""
    f = np.log if log else (lambda v: np.asarray(v, dtype=np.float64))
    pairs = [(p, m) for p, m in zip(predicted, measured, strict=True)
             if math.isfinite(p) and math.isfinite(m) and (not log or (p > 0 and m > 0))]
    if not pairs:
        return math.nan, math.nan, math.nan, math.nan, None
    p, x = (np.asarray(f([v[i] for v in pairs]), dtype=np.float64) for i in (0, 1))
    half = (float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1)) * x.std(ddof=1) / math.sqrt(len(x))
            if len(x) > 1 else 0.0)
    tol = math.log1p(FLOOR) if log else FLOOR * max(abs(float(x.mean())), 0.05)
    lo, hi = float(x.mean()) - half - tol, float(x.mean()) + half + tol
    back = np.exp if log else float
    ok = bool(lo <= p.mean() <= hi)
    return float(back(p.mean())), float(back(x.mean())), float(back(lo)), float(back(hi)), ok


def _at_init(cell: dict[str, Any], label: str) -> list[tuple[theory.Prediction, dict]]:
    """Per seed of ``label``: (the mean-field prediction, its diagnostics at initialization)."""
    widths = [int(w) for w in cell["config"]["model.hidden"]]
    return [(theory.from_diagnostics(cell["activation"], widths, m["diagnostics"]),
             {k: v[0] for k, v in m["diagnostics"].items()})
            for m in by_label(cell["members"]).get(label, [])]


def predicted_profile(cell: dict[str, Any]) -> dict[str, list[float]]:
    """label -> the predicted activation std per hidden layer for seed 0 (from its layer 1)."""
    out = {}
    for label in by_label(cell["members"]):
        seeds = _at_init(cell, label)
        if seeds:
            out[label] = seeds[0][0].act_std
    return out


def _ratio(values: Sequence[float]) -> float:
    return values[-1] / values[0] if values[0] > 0 else math.nan


def theory_table(cell: dict[str, Any], confidence: float) -> list[str]:
    """Predicted vs measured per initializer at initialization: the activation std ratio last /
    first hidden layer (and, for tanh, the saturated fraction)."""
    tanh = cell["activation"] == "tanh"
    rows = ["| initializer | sigma_w^2 | chi_1 | act std last/first: predicted | measured "
            f"(geometric mean [{confidence:.0%} CI]) | agrees |" + (" saturated: predicted | "
                                                                     "measured |" if tanh else ""),
            "|---|---:|---:|---:|---:|---|" + ("---:|---:|" if tanh else "")]
    widths = [int(w) for w in cell["config"]["model.hidden"]]
    for label in by_label(cell["members"]):
        seeds = _at_init(cell, label)
        pred, meas = zip(*seeds, strict=True)
        s2 = float(np.mean([widths[0] * d["kernel_std"][1] ** 2 for d in meas])) if len(widths) > 1 \
            else math.nan
        chi = theory.chi_1(cell["activation"], pred[0].q[-1], s2)
        p, m, lo, hi, ok = agreement([_ratio(x.act_std) for x in pred],
                                     [_ratio(d["act_std"][:-1]) for d in meas], confidence)
        row = (f"| {label} | {s2:.3g} | {chi:.3g} | {p:.3g} | {m:.3g} [{lo:.3g}, {hi:.3g}] "
               f"| {_mark(ok)} |")
        if tanh:
            ps = np.mean([np.mean(x.saturated) for x in pred])
            ms = np.mean([np.mean(d["dead_fraction"][:-1]) for d in meas])
            row += f" {100 * ps:.1f}% | {100 * ms:.1f}% |"
        rows.append(row)
    return rows


def _mark(ok: bool | None) -> str:
    return "not in this run" if ok is None else ("yes" if ok else "**no -- investigate**")


def literature_checks(cells: dict[str, dict[str, Any]], deepest: int, confidence: float,
                      margin: float) -> list[str]:
    """The literature's statements about deep plain networks, each against theory and data."""
    lines = []

    def check(act: str, label: str, text: str, what: str) -> None:
        cell = cells.get(cell_name(deepest, act))
        seeds = [] if cell is None else _at_init(cell, label)
        if not seeds:
            lines.append(f"- {text}: not in this run.")
            return
        pred, meas = zip(*seeds, strict=True)
        if what == "saturated":
            args = ([float(np.mean(x.saturated)) for x in pred],
                    [float(np.mean(d["dead_fraction"][:-1])) for d in meas], confidence, False)
            show = lambda v: f"{100 * v:.1f}%"  # noqa: E731
        else:
            last = what == "last"
            args = ([x.act_std[-1] if last else _ratio(x.act_std) for x in pred],
                    [d["act_std"][-2] if last else _ratio(d["act_std"][:-1]) for d in meas],
                    confidence)
            show = lambda v: f"{v:.3g}"  # noqa: E731
        p, m, lo, hi, ok = agreement(*args)
        lines.append(f"- {text}: predicted {show(p)}, measured {show(m)} [{show(lo)}, {show(hi)}] "
                     f"-> {'consistent' if ok else '**NOT consistent -- investigate**'}.")

    check("tanh", "gaussian_1", f"N(0,1) saturates deep tanh (share of |a| > 0.99, depth {deepest})",
          "saturated")
    check("tanh", "gaussian_001", "N(0, 0.01^2) collapses deep tanh (activation std, last hidden "
          "layer)", "last")
    check("tanh", "glorot_uniform", "Glorot: tanh activations decay slowly (std last/first)", "ratio")
    check("relu", "glorot_uniform", "Glorot with ReLU halves E[a^2] per layer (std last/first)",
          "ratio")
    check("relu", "he_normal", "He keeps the ReLU activation scale (std last/first)", "ratio")
    check("relu", "random_normal", "A fixed small stddev (0.05) vanishes in deep ReLU (std "
          "last/first)", "ratio")
    check("relu", "gaussian_1", "N(0,1) explodes deep ReLU (activation std, last hidden layer)",
          "last")
    relu = cells.get(cell_name(deepest, "relu"))
    if relu is not None and "gaussian_1" in by_label(relu["members"]):
        clipped = [m["diagnostics"]["dead_fraction"][0][-1] for m in relu["members"]
                   if m["label"] == "gaussian_1"]
        grads = [m["diagnostics"]["grad_norm"][0] for m in relu["members"] if m["label"] == "gaussian_1"]
        lines.append(f"- Why N(0,1) ReLU cannot train at depth {deepest}: its softmax is one-hot, "
                     f"the loss clips the true-class probability of {100 * np.mean(clipped):.0f}% of "
                     f"examples, so {sum(float(g) == 0.0 for gs in grads for g in gs)} of "
                     f"{sum(len(gs) for gs in grads)} kernel gradients are exactly 0 (no "
                     "gradient passes a clip; not an underflow: the statistics are float64).")
        acc = successful(relu)
        if "lsuv" in acc and "he_normal" in acc:
            d = paired_difference(acc["lsuv"], acc["he_normal"], confidence)
            words = verdict(d, margin)
            lines.append(
                f"- LSUV at least as good as He at depth {deepest} (ReLU; equivalence margin "
                f"+-{100 * margin:.1f} pp): {100 * d.mean:+.2f} pp [{100 * d.low:+.2f}, "
                f"{100 * d.high:+.2f}] over {d.n} paired seeds -> {words}"
                + (" (the interval is wider than the margin: more seeds needed)"
                   if words == "inconclusive" else "") + ".")
    return lines


def claims(params: Params, baseline: dict[str, Any], confidence: float) -> list[str]:
    """The starting claims, as levels and as gaps over random_normal, on their own configuration."""
    here = baseline["config"]
    differs = [f"{k} {here.get(k)!r} (claims: {v!r})" for k, v in ARTICLE.items() if here.get(k) != v]
    if differs:
        return [f"Not tested: the claims are about the article's configuration, and this run "
                f"differs in {', '.join(differs)}."]
    acc = successful(baseline)
    rows = ["| starting claim | initializer here | claimed % | measured % (mean [CI]) | verdict |",
            "|---|---|---:|---:|---|"]
    for name, label, claimed in CLAIMS:
        if label not in acc:
            rows.append(f"| {name} | {label} | {100 * claimed:.1f} | not in this run | - |")
            continue
        iv = bounded_interval(list(acc[label].values()), confidence)
        half = max(0.005, (iv.high - iv.low) / 2 if math.isfinite(iv.low) else 0.005)
        gap = iv.mean - claimed
        words = ("reproduced" if abs(gap) <= half else
                 f"not reproduced: {100 * abs(gap):.1f} pp {'higher' if gap > 0 else 'lower'}")
        rows.append(f"| {name} | {label} | {100 * claimed:.1f} | {pct(iv)} | {words} |")
    base_name, base, base_claim = CLAIMS[0]
    gaps = [c for c in CLAIMS[1:] if c[1] in acc and base in acc]
    gap_conf = 1 - (1 - confidence) / max(1, len(gaps))
    rows += ["", f"| claimed gap over {base_name} ({base}) | claimed (pp) | measured (pp, paired, "
             f"[{gap_conf:.2%} CI]) | verdict |", "|---|---:|---:|---|"]
    for name, label, claimed in gaps:
        d = paired_difference(acc[label], acc[base], gap_conf)
        want = claimed - base_claim
        words = ("not enough seeds" if not math.isfinite(d.low) else "reproduced" if d.contains(want)
                 else f"not reproduced: {100 * d.mean:+.2f} pp")
        rows.append(f"| {name} - {base_name} | {100 * want:+.1f} | {100 * d.mean:+.2f} "
                    f"[{100 * d.low:+.2f}, {100 * d.high:+.2f}] | {words} |")
    failed = sum(outcome(m) != "ok" for m in baseline["members"] if m["label"] in dict(
        (c[1], 1) for c in CLAIMS))
    if failed:
        rows.append(f"\n{failed} run(s) of these initializers failed to train and are left out.")
    return rows
