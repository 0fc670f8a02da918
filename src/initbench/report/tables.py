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
from initbench.report.stats import (
    Interval,
    bounded_interval,
    clipped,
    clopper_pearson,
    detectable_difference,
    paired_difference,
    t_interval,
    verdict,
)
from initbench.results import by_label as members_by_label
from initbench.results import initializer_summary, read_cell

REFERENCE = {"relu": "he_normal", "tanh": "glorot_uniform"}


def load_cells(params: Params, cells_dir: Path) -> dict[str, dict[str, Any]]:
    """Every cell of the current params (``baseline`` first), read from ``cells_dir/<cell>``."""
    return {name: read_cell(cells_dir / name) for name in params.cells()}


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
             "| first epoch val acc >= 97% | diverged |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for label, r in rows.items():
        name = label if label == r["initializer"] else f"{label} ({r['initializer']})"
        sd = "-" if r["test_accuracy_sd"] is None else f"{100 * r['test_accuracy_sd']:.2f}"
        reached = "not reached" if r["epochs_to_val_97"] is None else f"{r['epochs_to_val_97']:g}"
        lines.append(f"| {name} | {r['test_accuracy']:.4f} | {sd} | {r['test_loss']:.4f} "
                     f"| {r['best_val_accuracy']:.4f} | {reached} | {r['diverged']}/{r['seeds']} |")
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


def outcome(member: dict[str, Any]) -> str:
    """ok, or how the model failed: *exploded* (a non-finite loss), *collapsed* (at chance,
    predicting one class: no learning signal reached the hidden layers, e.g. zeros) or *stuck*
    (at chance, but not on one class)."""
    if not member["diverged"]:
        return "ok"
    if not all(math.isfinite(r["loss"]) for r in member["history"]):
        return "exploded"
    predicted = np.asarray(member["confusion"]).sum(axis=0)
    return "collapsed" if np.count_nonzero(predicted) == 1 else "stuck"


FAILURES = ("exploded", "collapsed", "stuck")


def successful(cell: dict[str, Any], key: str = "test_accuracy") -> dict[str, dict[int, float]]:
    """label -> {seed_index: value} over the seeds that trained (outcome ok)."""
    out: dict[str, dict[int, float]] = {}
    for label, members in members_by_label(cell["members"]).items():
        out[label] = {m["seed_index"]: float(m[key]) for m in members if outcome(m) == "ok"}
    return out


def cell_table(cell: dict[str, Any], confidence: float, margin: float
               ) -> tuple[list[str], dict[str, Any]]:
    """Markdown rows and a summary for one cell: per initializer its success rate, the accuracy of
    its successful runs and the paired difference from the reference (see report.stats)."""
    groups = members_by_label(cell["members"])
    acc, loss = successful(cell), successful(cell, "final_train_loss")
    ref = REFERENCE.get(cell["activation"], next(iter(groups)))
    ref = ref if ref in groups else next(iter(groups))
    # Every initializer is compared with the reference: with m such comparisons at `confidence`
    # each, some would "differ" by chance alone. Bonferroni keeps the family-wise level.
    m = max(1, len(groups) - 1)
    diff_conf = 1 - (1 - confidence) / m
    rows = [f"| initializer | trained (of seeds) [{confidence:.0%} CI] | failed: exploded / "
            f"collapsed / stuck | test accuracy % of trained runs (mean [{confidence:.0%} CI]) "
            f"| sd (pp) | final train loss | vs {ref}: paired difference (pp) [{diff_conf:.2%} CI: "
            f"Bonferroni, {m} comparisons], smallest detectable (80% power) |",
            "|---|---:|---:|---:|---:|---:|---|"]
    summary = {}
    for label, members in groups.items():
        kinds = [outcome(x) for x in members]
        k, n = kinds.count("ok"), len(kinds)
        rate_low, rate_high = clopper_pearson(k, n, confidence)
        iv = bounded_interval(list(acc[label].values()), confidence)
        liv = t_interval(list(loss[label].values()), confidence)
        diff = clipped(paired_difference(acc[label], acc[ref], diff_conf), -1.0, 1.0)
        detectable = detectable_difference(diff.sd, diff.n, diff_conf)
        words = verdict(diff, margin)
        if label == ref:
            text = "reference"
        elif math.isfinite(diff.low):
            star = "*" if diff.method.endswith("clipped") else ""
            text = (f"{100 * diff.mean:+.2f} [{100 * diff.low:+.2f}, {100 * diff.high:+.2f}]{star}: "
                    f"{words}" + (f" (detectable: {detectable_pp(detectable)})"
                                  if words in ("equivalent", "inconclusive") else ""))
        else:
            text = words
        fails = " / ".join(str(kinds.count(f)) for f in FAILURES)
        sd = f"{100 * iv.sd:.2f}" if math.isfinite(iv.sd) else "-"
        lost = f"{liv.mean:.4f}" if math.isfinite(liv.mean) else "-"
        rows.append(f"| {label} | {k}/{n} [{100 * rate_low:.0f}, {100 * rate_high:.0f}]% | {fails} "
                    f"| {pct(iv)} | {sd} | {lost} | {text} |")
        summary[label] = {"mean": iv.mean, "low": iv.low, "high": iv.high, "sd": iv.sd,
                          "n": iv.n, "interval": iv.method, "trained": k, "seeds": n,
                          "trained_low": rate_low, "trained_high": rate_high,
                          **{f: kinds.count(f) for f in FAILURES},
                          "final_train_loss": liv.mean, "vs_reference": words,
                          "difference": diff.mean, "difference_low": diff.low,
                          "difference_high": diff.high, "pairs": diff.n,
                          "detectable_difference": detectable}
    return rows, {"reference": ref, "difference_confidence": diff_conf, "margin": margin,
                  "initializers": summary}


def init_profile(cell: dict[str, Any], stat: str) -> dict[str, list[float]]:
    """label -> per-layer ``stat`` at initialization (epoch 0), hidden layers, first seed."""
    out = {}
    for m in cell["members"]:
        if m["seed_index"] == 0:
            out[m["label"]] = m["diagnostics"][stat][0][:-1]
    return out
