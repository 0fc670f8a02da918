"""The report's tables and checks: statistics over seeds, the comparison, the literature.

Per (cell, initializer): how many seeds trained (and how the others failed), the accuracy of the
runs that trained, and the paired difference from a reference initializer (He for ReLU, Glorot for
tanh) with a three-way verdict and the smallest difference the design detects; and the pipeline
cell's comparison table (one row per initializer). Every number comes from the cells'
``results.json``; the checks against theory and the literature are in ``checks``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from initbench.config import Params
from initbench.report import blocked
from initbench.report.stats import Interval, bounded_interval, clopper_pearson, t_interval
from initbench.results import by_label as members_by_label
from initbench.results import initializer_summary, read_cell

REFERENCE = {"relu": "he_normal", "tanh": "glorot_uniform"}


def load_cells(params: Params, cells_dir: Path) -> dict[str, dict[str, Any]]:
    """Every cell of the current params (``baseline`` first), read from ``cells_dir/<cell>``, each
    member's outcome judged by the strict criterion (:func:`judged`; the phase cells keep the
    chance-level one: their question is whether a weight scale trains at all)."""
    cells = {name: read_cell(cells_dir / name) for name in params.cells()}
    return {name: cell if name.startswith("phase-") else judged(cell, params.study.trained_within)
            for name, cell in cells.items()}


def by_label(cell: dict[str, Any], key: str) -> dict[str, list[float]]:
    """label -> the values of ``key`` over the label's seeds."""
    return {label: [float(m[key]) for m in members]
            for label, members in members_by_label(cell["members"]).items()}


def _summaries(cell: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """label -> its initializer summary, best mean test accuracy first."""
    rows = {label: initializer_summary(members)
            for label, members in members_by_label(cell["members"]).items()}
    return dict(sorted(rows.items(), key=lambda kv: -kv[1]["test_accuracy"]))


def comparison_columns(cell: dict[str, Any]) -> dict[str, list[Any]]:
    """The comparison as columns (an MLflow table): one row per initializer, best first."""
    rows = _summaries(cell)
    keys = next(iter(rows.values())).keys()
    return {"label": list(rows), **{k: [r[k] for r in rows.values()] for k in keys}}


def comparison(cell: dict[str, Any]) -> list[str]:
    """The pipeline cell's comparison: one row per initializer, best test accuracy first."""
    rows = _summaries(cell)
    seeds = max(r["seeds"] for r in rows.values())
    mean = " (mean over seeds)" if seeds > 1 else ""
    lines = [f"| initializer | test accuracy{mean} | sd (pp) | test loss | best val accuracy "
             "| first epoch val acc >= 97% | failed (of seeds) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    groups = members_by_label(cell["members"])
    for label, r in rows.items():
        failed = sum(outcome(m) != "ok" for m in groups[label])
        name = label if label == r["initializer"] else f"{label} ({r['initializer']})"
        sd = "-" if r["test_accuracy_sd"] is None else f"{100 * r['test_accuracy_sd']:.2f}"
        reached = "not reached" if r["epochs_to_val_97"] is None else f"{r['epochs_to_val_97']:g}"
        lines.append(f"| {name} | {r['test_accuracy']:.4f} | {sd} | {r['test_loss']:.4f} "
                     f"| {r['best_val_accuracy']:.4f} | {reached} | {failed}/{r['seeds']} |")
    return lines


def pct(iv: Interval) -> str:
    if not math.isfinite(iv.mean):
        return "n/a"
    ci = f" [{100 * iv.low:.2f}, {100 * iv.high:.2f}]" if math.isfinite(iv.low) else ""
    star = "*" if iv.method.endswith("clipped") else ""
    return f"{100 * iv.mean:.2f}{ci}{star}"


def detectable_pp(value: float) -> str:
    """A detectable difference in pp; beyond 100 pp no accuracy difference is detectable."""
    if not math.isfinite(value):
        return "n/a"
    return f"{100 * value:.2f} pp" if value <= 1 else "none (over 100 pp)"


def _chance_outcome(member: dict[str, Any]) -> str:
    if not all(math.isfinite(r["loss"]) for r in member["history"]):
        return "exploded"
    if not member["diverged"]:
        return "ok"
    predicted = np.asarray(member["confusion"]).sum(axis=0)
    return "collapsed" if np.count_nonzero(predicted) == 1 else "stuck"


def outcome(member: dict[str, Any]) -> str:
    """ok, or how the model failed: *exploded* (a non-finite loss), *collapsed* (at chance,
    predicting one class: no learning signal reached the hidden layers, e.g. zeros), *stuck* (at
    chance, several classes) or *partial* (it learned, but ended more than the cell's
    ``trained_within`` below the cell's best; set by :func:`judged`)."""
    return member.get("outcome") or _chance_outcome(member)


FAILURES = ("exploded", "collapsed", "stuck", "partial")


def judged(cell: dict[str, Any], within: float) -> dict[str, Any]:
    """``cell`` with each member's strict outcome: a run that did not fail at chance trained when
    its test accuracy is at least the best initializer's median minus ``within``."""
    groups = members_by_label(cell["members"])
    best = max((float(np.median([m["test_accuracy"] for m in ms])) for ms in groups.values()),
               default=math.nan)
    floor = best - within

    def judge(m: dict[str, Any]) -> str:
        first = _chance_outcome(m)
        return "partial" if first == "ok" and not m["test_accuracy"] >= floor else first

    return {**cell, "trained_floor": floor,
            "members": [{**m, "outcome": judge(m)} for m in cell["members"]]}


def successful(cell: dict[str, Any], key: str = "test_accuracy") -> dict[str, dict[int, float]]:
    """label -> {seed_index: value} over the seeds that trained (outcome ok)."""
    out: dict[str, dict[int, float]] = {}
    for label, members in members_by_label(cell["members"]).items():
        out[label] = {m["seed_index"]: float(m[key]) for m in members if outcome(m) == "ok"}
    return out


def reference(cell: dict[str, Any]) -> str:
    """He for ReLU, Glorot for tanh (else the first label), when the cell has it."""
    labels = list(members_by_label(cell["members"]))
    ref = REFERENCE.get(cell["activation"], labels[0])
    return ref if ref in labels else labels[0]


def _decide_text(d: blocked.Decision, c: blocked.Contrast, words: str) -> str:
    if not math.isfinite(c.estimate):
        return words
    if not math.isfinite(d.low):
        return f"{100 * c.estimate:+.2f} (one pair): {words}"
    text = f"{100 * c.estimate:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]: {words}"
    if words == "inconclusive":
        text += (f" (about {d.seeds_needed} seeds would decide it)" if d.seeds_needed
                 else " (the margin is below what this cell resolves)")
    return text


def cell_table(cell: dict[str, Any], confidence: float, margin: float
               ) -> tuple[list[str], dict[str, Any]]:
    """Markdown rows and a summary for one cell: per initializer its success rate and the
    accuracy of its successful runs, and against the reference first the success rates (exact
    test, Holm over the cell), then, where they do not differ, the seed-blocked accuracy difference
    (report.blocked, Bonferroni)."""
    groups = members_by_label(cell["members"])
    acc, loss = successful(cell), successful(cell, "final_train_loss")
    ref = reference(cell)
    fit = blocked.pooled(acc)
    # Every initializer is compared with the reference: with m such comparisons at `confidence`
    # each, some would "differ" by chance alone. Bonferroni keeps the family-wise level.
    m = max(1, len(groups) - 1)
    alpha = (1 - confidence) / m
    pooled = (f"residual sd {100 * fit.sd:.2f} pp on {fit.df} df, pooled over the "
              f"{len(fit.labels)} initializers that trained in every seed"
              if math.isfinite(fit.sd) else "no pooled sd (fewer than 2 complete initializers)")
    rows = [f"Reference {ref}; margin +-{100 * margin:.1f} pp; {pooled}; differences at "
            f"{1 - alpha:.2%} (Bonferroni, {m} comparisons), equivalence at {1 - 2 * alpha:.2%} "
            f"(two one-sided tests); success rates by Boschloo's exact test, Holm over the {m} "
            f"comparisons at {confidence:.0%} family-wise.", "",
            f"| initializer | trained (of seeds) [{confidence:.0%} CI] | failed: exploded / "
            f"collapsed / stuck / partial | test accuracy % of trained runs (mean "
            f"[{confidence:.0%} CI]) | sd (pp) | final train loss | success vs {ref} (exact p) "
            f"| vs {ref}: difference (pp) [{1 - alpha:.2%} CI], verdict |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    summary = {}
    ref_k = sum(outcome(x) == "ok" for x in groups[ref])
    rates = {label: (sum(outcome(x) == "ok" for x in ms), len(ms)) for label, ms in groups.items()}
    p_rate = {label: blocked.success_p(k, n, ref_k, len(groups[ref]))
              for label, (k, n) in rates.items() if label != ref}
    rate_differs = blocked.holm(p_rate, 1 - confidence)
    for label, members in groups.items():
        kinds = [outcome(x) for x in members]
        k, n = kinds.count("ok"), len(kinds)
        rate_low, rate_high = clopper_pearson(k, n, confidence)
        iv = bounded_interval(list(acc[label].values()), confidence)
        liv = t_interval(list(loss[label].values()), confidence)
        p = p_rate.get(label, 1.0)
        c = blocked.contrast(acc[label], acc[ref], fit, (label, ref))
        d = blocked.decide(c, margin, alpha)
        words = (("lower" if k / n < ref_k / len(groups[ref]) else "higher") + " success rate"
                 if label in rate_differs else d.verdict)
        if label == ref:
            text, ptext = "reference", "-"
        else:
            ptext = f"{p:.2g}" if p < 1 else "1"
            text = (f"trains in {k}/{n} vs {ref_k}/{len(groups[ref])}: {words}"
                    if words.endswith("success rate") else _decide_text(d, c, words))
        fails = " / ".join(str(kinds.count(f)) for f in FAILURES)
        sd = f"{100 * iv.sd:.2f}" if math.isfinite(iv.sd) else "-"
        lost = f"{liv.mean:.4f}" if math.isfinite(liv.mean) else "-"
        rows.append(f"| {label} | {k}/{n} [{100 * rate_low:.0f}, {100 * rate_high:.0f}]% | {fails} "
                    f"| {pct(iv)} | {sd} | {lost} | {ptext} | {text} |")
        summary[label] = {"mean": iv.mean, "low": iv.low, "high": iv.high, "sd": iv.sd,
                          "n": iv.n, "interval": iv.method, "trained": k, "seeds": n,
                          "trained_low": rate_low, "trained_high": rate_high,
                          **{f: kinds.count(f) for f in FAILURES},
                          "final_train_loss": liv.mean, "success_p": p,
                          "difference": c.estimate, "se": c.se, "df": c.df,
                          "difference_low": d.low,
                          "difference_high": d.high, "equivalence_low": d.eq_low,
                          "equivalence_high": d.eq_high, "pairs": c.n, "method": c.method,
                          "detectable_difference": d.detectable, "seeds_needed": d.seeds_needed,
                          **({} if label == ref else {"vs_reference": words})}
    return rows, {"reference": ref, "difference_confidence": 1 - alpha, "margin": margin,
                  "comparisons": m, "pooled_sd": fit.sd, "pooled_df": fit.df,
                  "pooled_over": list(fit.labels),
                  "trained_floor": cell.get("trained_floor"), "initializers": summary}


def init_profile(cell: dict[str, Any], stat: str) -> dict[str, list[float]]:
    """label -> per-layer ``stat`` at initialization (epoch 0), hidden layers, first seed."""
    out = {}
    for m in cell["members"]:
        if m["seed_index"] == 0:
            out[m["label"]] = m["diagnostics"][stat][0][:-1]
    return out
