"""The report's checks: measurement against theory (mean-field predictions, :mod:`theory`), the
literature's statements about deep plain networks, and the study's starting claims.

Every check states the prediction, the measurement over seeds with its plain t interval, and the
signed log ratio log(measured / predicted) with its interval; they agree when that interval,
widened by a 10% tolerance (finite width, the mean-field approximation; never printed as part of
an interval), contains 0. A literature statement is predicted from the variance the initializer
promises (He's sigma_w^2 = 2, ...: the claim) and, apart, from the measured weights (mean-field
theory). The starting claims (Ali 2023's MNIST numbers) are tested only on the configuration they
describe, as levels and as gaps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from initbench.config import Params
from initbench.paths import cell_name
from initbench.report import blocked, theory
from initbench.report.stats import bounded_interval, paired_difference
from initbench.report.tables import outcome, pct, successful
from initbench.report.theory import TOLERANCE, Agreement, agreement
from initbench.results import by_label

# The study's starting claims: MNIST test accuracy of the article's model per initializer...
CLAIMS = (("random", "random_normal", 0.92), ("Gaussian", "gaussian", 0.93),
          ("Xavier", "glorot_uniform", 0.94), ("He", "he_normal", 0.945))
# ... on the article's configuration: MNIST, 784-128-10 ReLU, Adam 0.001, batch 32, 10 epochs.
ARTICLE = {"data.dataset": "mnist", "data.train_limit": None, "model.hidden": [128],
           "model.activation": "relu", "train.optimizer": "adam", "train.learning_rate": 0.001,
           "train.batch_size": 32, "train.epochs": 10}


def span(mean: float, low: float, high: float, show: Callable[[float], str]) -> str:
    """'mean [low, high]', or the mean alone where there is no interval (one seed)."""
    return show(mean) + (f" [{show(low)}, {show(high)}]" if math.isfinite(low) else "")


def effect_text(a: Agreement) -> str:
    """The signed log ratio (log) or the difference in pp, with its interval."""
    show = "{:+.2f}".format if a.log else lambda v: f"{100 * v:+.1f}"
    return span(a.effect.mean, a.effect.low, a.effect.high, show) + ("" if a.log else " pp")


def describe(a: Agreement, confidence: float, show: Callable[[float], str]) -> str:
    """'measured 0.549 [0.447, 0.675] (95% CI); log(measured/predicted) ...; agrees ...'."""
    if a.agrees is None:
        return "not measured in this run"
    ci = f"{confidence:.0%} CI" if a.effect.n > 1 else "one seed: no interval"
    return (f"measured {span(a.measured, a.low, a.high, show)} ({ci}); "
            f"{'log(measured/predicted)' if a.log else 'measured - predicted'} {effect_text(a)}; "
            + (f"agrees within the {TOLERANCE:.0%} tolerance" if a.agrees
               else f"**disagrees beyond the {TOLERANCE:.0%} tolerance -- investigate**"))


def tolerance_note(confidence: float) -> str:
    """The sentence under a table of agreements: what *agrees* means."""
    return (f"Intervals are plain {confidence:.0%} t intervals over the seeds. *Agrees*: the "
            f"interval of log(measured / predicted), widened by +-log(1 + {TOLERANCE:g}) (finite "
            "width and the mean-field approximation), contains 0.")


def sigma_b2(cell: dict[str, Any]) -> float:
    """The variance the cell drew its biases with (0: zero biases, also for results before it)."""
    return float(cell["config"].get("model.sigma_b", 0.0)) ** 2


def _at_init(cell: dict[str, Any], label: str) -> list[tuple[Any, ...]]:
    """Per seed of ``label``: (the mean-field prediction from its measured weights, the one from
    its initializer's nominal variances (None: it promises none), its diagnostics at init)."""
    act, widths = cell["activation"], [int(w) for w in cell["config"]["model.hidden"]]
    b2 = sigma_b2(cell)
    return [(theory.from_diagnostics(act, widths, m["diagnostics"], sigma_b2=b2),
             theory.nominal(act, widths, m["initializer"], m.get("args"), m["diagnostics"],
                            sigma_b2=b2),
             {k: v[0] for k, v in m["diagnostics"].items()})
            for m in by_label(cell["members"]).get(label, [])]


def predicted_profile(cell: dict[str, Any]) -> dict[str, list[float]]:
    """label -> the predicted activation std per hidden layer for seed 0 (from its layer 1)."""
    return {label: seeds[0][0].act_std for label in by_label(cell["members"])
            if (seeds := _at_init(cell, label))}


def _ratio(values: Sequence[float]) -> float:
    return values[-1] / values[0] if values[0] > 0 else math.nan


def _s2(preds: Sequence[theory.Prediction | None]) -> float:
    """sigma_w^2 of layers 2..L, averaged over layers and seeds (NaN: none)."""
    s2 = [v for x in preds if x is not None for v in x.sigma_w2]
    return float(np.mean(s2)) if s2 else math.nan


def theory_table(cell: dict[str, Any], confidence: float) -> list[str]:
    """Mean-field predictions (from the measured weights) vs measurements at init per initializer:
    activation std last / first hidden layer (tanh: and the saturated fraction)."""
    tanh = cell["activation"] == "tanh"
    rows = ["| initializer | sigma_w^2: nominal | measured | chi_1 | act std last/first: predicted "
            f"| measured (geometric mean [{confidence:.0%} CI]) | log(measured/predicted) "
            f"[{confidence:.0%} CI] | agrees |" + (" saturated: predicted | measured |" if tanh else ""),
            "|---|---:|---:|---:|---:|---:|---:|---|" + ("---:|---:|" if tanh else "")]
    for label in by_label(cell["members"]):
        pred, nominal, meas = zip(*_at_init(cell, label), strict=True)
        s2 = _s2(pred)
        chi = theory.chi_1(cell["activation"], pred[0].q[-1], s2)
        a = agreement([_ratio(x.act_std) for x in pred], [_ratio(d["act_std"][:-1]) for d in meas],
                      confidence)
        row = (f"| {label} | {_s2(nominal):.3g} | {s2:.3g} | {chi:.3g} | {a.predicted:.3g} "
               f"| {span(a.measured, a.low, a.high, '{:.3g}'.format)} | {effect_text(a)} "
               f"| {_mark(a.agrees)} |")
        if tanh:
            ps = np.mean([np.mean(x.saturated) for x in pred])
            ms = np.mean([np.mean(d["dead_fraction"][:-1]) for d in meas])
            row += f" {100 * ps:.1f}% | {100 * ms:.1f}% |"
        rows.append(row)
    return [*rows, "", "sigma_w^2: nominal, what the initializer promises (nan: none, e.g. lsuv's "
            "is set by data); measured, fan_in x Var(W) of the model's kernels, which the "
            "predictions use. " + tolerance_note(confidence)]


def _mark(ok: bool | None) -> str:
    return "not in this run" if ok is None else ("yes" if ok else "**no -- investigate**")


# What a literature check compares: (prediction, measurement from the diagnostics at init, log).
_WHAT: dict[str, tuple[Callable[[theory.Prediction], float], Callable[[dict], float], bool]] = {
    "saturated": (lambda x: np.mean(x.saturated), lambda d: np.mean(d["dead_fraction"][:-1]), False),
    "last": (lambda x: x.act_std[-1], lambda d: d["act_std"][-2], True),
    "ratio": (lambda x: _ratio(x.act_std), lambda d: _ratio(d["act_std"][:-1]), True)}


# The literature's statements: (activation, label, statement, what it compares).
_LITERATURE = (
    ("tanh", "gaussian_1", "N(0,1) saturates deep tanh (share of |a| > 0.99, depth {depth})", "saturated"),
    ("tanh", "gaussian_001", "N(0, 0.01^2) collapses deep tanh (activation std, last hidden layer)", "last"),
    ("tanh", "glorot_uniform", "Glorot: tanh activations decay slowly (std last/first)", "ratio"),
    ("relu", "glorot_uniform", "Glorot with ReLU halves E[a^2] per layer (std last/first)", "ratio"),
    ("relu", "he_normal", "He keeps the ReLU activation scale (std last/first)", "ratio"),
    ("relu", "standard_uniform", "U(+-1/sqrt(fan_in)) (sigma_w^2 = 1/3) vanishes in deep ReLU "
     "(std last/first)", "ratio"),
    ("relu", "gaussian_1", "N(0,1) explodes deep ReLU (activation std, last hidden layer)", "last"))


def literature_agreement(cell: dict[str, Any], label: str, what: str, confidence: float
                         ) -> Agreement | None:
    """A literature statement's claim -- the prediction from ``label``'s nominal variance --
    against the cell's measurements at init (``what``: saturated, last or ratio); None where the
    cell lacks the label or the initializer promises no variance."""
    seeds = _at_init(cell, label)
    if not seeds:
        return None
    _, claim, meas = zip(*seeds, strict=True)
    if None in claim:
        return None
    of, measure, log = _WHAT[what]
    return agreement([of(x) for x in claim], [measure(d) for d in meas], confidence, log)


def _row(name: str, preds: Sequence[theory.Prediction], measured: list[float], what: str,
         confidence: float) -> str:
    """One prediction of a literature check against the measurements."""
    of, _, log = _WHAT[what]
    show = "{:.3g}".format if log else (lambda v: f"{100 * v:.1f}%")
    a = agreement([of(x) for x in preds], measured, confidence, log)
    return (f"  - {name}, sigma_w^2 = {_s2(preds):.3g}: predicted {show(a.predicted)}; "
            f"{describe(a, confidence, show)}.")


def literature_checks(cells: dict[str, dict[str, Any]], deepest: int, confidence: float,
                      margin: float) -> list[str]:
    """The literature's statements about deep plain networks, each predicted from the
    initializer's nominal variance (the claim) and, apart, from the measured weights."""
    lines = []
    for act, label, text, what in _LITERATURE:
        cell = cells.get(cell_name(deepest, act))
        seeds = [] if cell is None else _at_init(cell, label)
        if not seeds:
            lines.append(f"- {text.format(depth=deepest)}: not in this run.")
            continue
        field, claim, meas = zip(*seeds, strict=True)
        measured = [_WHAT[what][1](d) for d in meas]
        initializer = by_label(cell["members"])[label][0]["initializer"]
        lines += [f"- {text.format(depth=deepest)}:",
                  _row(f"claim ({initializer}'s nominal variance)", claim, measured, what, confidence)
                  if None not in claim else f"  - claim: {initializer} promises no variance.",
                  _row("mean-field (measured weights)", field, measured, what, confidence)]
    relu = cells.get(cell_name(deepest, "relu"))
    if relu is not None and (n01 := by_label(relu["members"]).get("gaussian_1")):
        clipped = [m["diagnostics"]["dead_fraction"][0][-1] for m in n01]
        grads = [m["diagnostics"]["grad_norm"][0] for m in n01]
        lines.append(f"- Why N(0,1) ReLU cannot train at depth {deepest}: its softmax is one-hot, "
                     f"the loss clips the true-class probability of {100 * np.mean(clipped):.0f}% of "
                     f"examples, so {sum(float(g) == 0.0 for gs in grads for g in gs)} of "
                     f"{sum(len(gs) for gs in grads)} kernel gradients are exactly 0 (no "
                     "gradient passes a clip; not an underflow: the statistics are float64).")
        acc = successful(relu)
        if "lsuv" in acc and "he_normal" in acc:
            # Non-inferiority (one of the two one-sided tests): LSUV - He > -margin.
            c = blocked.contrast(acc["lsuv"], acc["he_normal"], blocked.pooled(acc),
                                 ("lsuv", "he_normal"))
            d = blocked.decide(c, margin, 1 - confidence)
            words = ("holds (non-inferior)" if d.eq_low > -margin else
                     "contradicted (worse by more than the margin)" if d.high < -margin else
                     "inconclusive" + (f" (about {d.seeds_needed} seeds would decide it)"
                                       if d.seeds_needed else ""))
            lines.append(
                f"- LSUV at least as good as He at depth {deepest} (ReLU; non-inferiority margin "
                f"{100 * margin:.1f} pp): {100 * c.estimate:+.2f} pp, {confidence:.0%} one-sided lower "
                f"bound {100 * d.eq_low:+.2f} over {c.n} paired seeds ({c.method}) -> "
                f"{words}.")
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
    failed = sum(outcome(m) != "ok" for m in baseline["members"] if m["label"] in {c[1] for c in CLAIMS})
    if failed:
        rows.append(f"\n{failed} run(s) of these initializers failed to train and are left out.")
    return rows
