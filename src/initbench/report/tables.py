"""The report's tables and checks: statistics over seeds, the comparison, the literature.

Per (cell, initializer): means with Student-t intervals, divergence rates and Welch intervals
against a reference initializer (He for ReLU, Glorot for tanh); the pipeline cell's comparison
table (one row per initializer); and text that states what the numbers show
-- including where they do not match the study's starting claims or the literature. Every number
comes from the cells' ``results.json``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from initbench.config import Params
from initbench.paths import cell_name
from initbench.report.stats import Interval, t_interval, verdict, welch_difference
from initbench.results import by_label as members_by_label
from initbench.results import initializer_summary, read_cell

REFERENCE = {"relu": "he_normal", "tanh": "glorot_uniform"}
# The study's starting claims (MNIST test accuracy) and the labels that stand for them.
CLAIMS = (("random", "random_normal", 0.92), ("Gaussian", "gaussian", 0.93),
          ("Xavier", "glorot_uniform", 0.94), ("He", "he_normal", 0.945))


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
    return f"{100 * iv.mean:.2f}{ci}"


def cell_table(cell: dict[str, Any], confidence: float) -> tuple[list[str], dict[str, Any]]:
    """Markdown rows and a summary for one cell."""
    acc, loss = by_label(cell, "test_accuracy"), by_label(cell, "final_train_loss")
    div = by_label(cell, "diverged")
    ref = REFERENCE.get(cell["activation"], next(iter(acc)))
    ref = ref if ref in acc else next(iter(acc))
    # Every initializer is compared with the reference: with m such comparisons at `confidence`
    # each, some would "differ" by chance alone. Bonferroni keeps the family-wise level.
    m = max(1, len(acc) - 1)
    diff_conf = 1 - (1 - confidence) / m
    rows = [f"| initializer | test accuracy % (mean [{confidence:.0%} CI]) | sd (pp) "
            f"| final train loss | diverged | vs {ref} (pp, [{diff_conf:.2%} CI: Bonferroni, {m} "
            "comparisons]) |", "|---|---:|---:|---:|---:|---|"]
    summary = {}
    for label, values in acc.items():
        iv, liv = t_interval(values, confidence), t_interval(loss[label], confidence)
        diff = welch_difference(values, acc[ref], diff_conf)
        words = "reference" if label == ref else (
            f"{100 * diff.mean:+.2f} [{100 * diff.low:+.2f}, {100 * diff.high:+.2f}]: {verdict(diff)}"
            if math.isfinite(diff.low) else verdict(diff))
        rows.append(f"| {label} | {pct(iv)} | {100 * iv.sd:.2f} | {liv.mean:.4f} "
                    f"| {int(sum(div[label]))}/{len(values)} | {words} |")
        summary[label] = {"mean": iv.mean, "low": iv.low, "high": iv.high, "sd": iv.sd,
                          "n": iv.n, "divergence_rate": float(np.mean(div[label])),
                          "final_train_loss": liv.mean, "vs_reference": verdict(diff),
                          "difference": diff.mean, "difference_low": diff.low,
                          "difference_high": diff.high}
    return rows, {"reference": ref, "difference_confidence": diff_conf, "initializers": summary}


def init_profile(cell: dict[str, Any], stat: str) -> dict[str, list[float]]:
    """label -> per-layer ``stat`` at initialization (epoch 0), hidden layers, first seed."""
    out = {}
    for m in cell["members"]:
        if m["seed_index"] == 0:
            out[m["label"]] = m["diagnostics"][stat][0][:-1]
    return out


def literature_checks(cells: dict[str, dict[str, Any]], deepest: int) -> list[str]:
    """Each expectation from the literature, the measured number, and whether they agree."""
    lines = []

    def profile(act: str, label: str, stat: str) -> list[float] | None:
        cell = cells.get(cell_name(deepest, act))
        return None if cell is None else init_profile(cell, stat).get(label)

    def check(text: str, value: str, ok: bool | None) -> None:
        mark = "not in this run" if ok is None else ("consistent" if ok else
                                                     "**NOT consistent -- investigate**")
        lines.append(f"- {text}: {value} -> {mark}.")

    def ratio(p: list[float] | None) -> float:
        return p[-1] / p[0] if p and p[0] > 0 and math.isfinite(p[-1]) else math.nan

    sat = profile("tanh", "gaussian_1", "dead_fraction")
    check(f"Deep tanh with N(0,1) saturates (depth {deepest})",
          "n/a" if sat is None else f"{100 * np.mean(sat):.0f}% of activations have |a| > 0.99",
          None if sat is None else bool(np.mean(sat) > 0.5))
    col = profile("tanh", "gaussian_001", "act_std")
    check("Deep tanh with N(0, 0.01^2) collapses toward zero",
          "n/a" if col is None else f"activation std {col[0]:.2e} (layer 1) -> {col[-1]:.2e} (last)",
          None if col is None else bool(col[-1] < 1e-3))
    for act, label, text, lo, hi in (
        ("tanh", "glorot_uniform", "Glorot keeps tanh activations stable across layers", 0.1, 10),
        ("relu", "he_normal", "He keeps ReLU activation scale roughly constant with depth", 0.25, 4),
        ("relu", "lsuv", "LSUV keeps ReLU activation scale constant", 0.5, 2),
    ):
        p = profile(act, label, "act_std")
        r = ratio(p)
        check(text, "n/a" if p is None else f"std last/first hidden layer = {r:.2f}",
              None if p is None else bool(lo <= r <= hi))
    small = profile("relu", "random_normal", "act_std")
    check("Deep ReLU with a small fixed stddev (0.05) vanishes",
          "n/a" if small is None else f"std last/first hidden layer = {ratio(small):.1e}",
          None if small is None else bool(ratio(small) < 0.01))
    relu = cells.get(cell_name(deepest, "relu"))
    if relu is not None:
        acc = by_label(relu, "test_accuracy")
        if "lsuv" in acc and "he_normal" in acc:
            d = welch_difference(acc["lsuv"], acc["he_normal"], 0.95)
            check(f"LSUV at least as good as He at depth {deepest} (ReLU)",
                  f"difference {100 * d.mean:+.2f} pp [{100 * d.low:+.2f}, {100 * d.high:+.2f}]",
                  bool(d.high >= 0) if math.isfinite(d.high) else None)
    return lines
