"""The study report's figures (matplotlib, written as PNG); the depth figures are in
``figures_depth``.

Differences are drawn as differences: the comparison plots each initializer's paired difference
from the reference with its interval on a linear pp axis that holds 0 and the equivalence band,
the picture of the verdicts of two one-sided tests (Schuirmann 1987), not accuracies on an axis
cut to make their gaps visible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def save(fig: Any, path: Path) -> None:
    """Write ``fig`` to ``path`` (PNG) and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def per_layer(curves: Mapping[str, Mapping[str, Sequence[float]]], ylabel: str, title: str,
              path: Path, predicted: Mapping[str, Mapping[str, Sequence[float]]] | None = None
              ) -> None:
    """One panel per cell: a per-layer statistic at initialization, log scale, per initializer.
    Exact zeros (no gradient at all) cannot sit on a log axis: they are drawn as down-pointing
    markers on the panel's floor and named in the legend, never silently dropped."""
    fig, axes = plt.subplots(1, len(curves), figsize=(6.5 * len(curves), 4.8), squeeze=False)
    for ax, (cell, per_label) in zip(axes[0], curves.items(), strict=True):
        positive = [x for vals in per_label.values() for x in vals if math.isfinite(x) and x > 0]
        floor = min(positive) / 10 if positive else 1e-12
        for label, values in per_label.items():
            v = np.array(values, dtype=np.float64)
            layers = np.arange(1, len(v) + 1)
            zero = v == 0
            line, = ax.plot(layers, np.where(np.isfinite(v) & (v > 0), v, np.nan), marker="o", ms=3,
                            label=label + (" (0 at layers marked v)" if zero.any() else ""))
            if zero.any():
                ax.plot(layers[zero], np.full(zero.sum(), floor), "v", color=line.get_color(), ms=6)
            if predicted and label in predicted.get(cell, {}):
                ax.plot(layers, predicted[cell][label], ls="--", lw=1, color=line.get_color())
        if predicted:
            ax.plot([], [], "k--", lw=1, label="mean-field prediction")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set(xlabel="layer", ylabel=ylabel, title=cell)
        ax.grid(alpha=0.3, which="both")
    for ax in axes[0]:  # each panel names its own exact zeros
        ax.legend(fontsize=7)
    fig.suptitle(title)
    save(fig, path)


def learning_curves(members: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Baseline validation accuracy per epoch: mean line and min-max band over seeds."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for label in dict.fromkeys(m["label"] for m in members):
        runs = np.array([[r["val_accuracy"] for r in m["history"]]
                         for m in members if m["label"] == label])
        epochs = np.arange(1, runs.shape[1] + 1)
        line, = ax.plot(epochs, runs.mean(axis=0), marker="o", ms=3, label=label)
        ax.fill_between(epochs, runs.min(axis=0), runs.max(axis=0), alpha=0.2,
                        color=line.get_color())
    ax.set(xlabel="epoch", ylabel="validation accuracy",
           title="Baseline: validation accuracy (mean, band = min..max over seeds)")
    finite = [m["history"][-1]["val_accuracy"] for m in members]
    good = [v for v in finite if v > 0.5]
    if good:
        ax.set_ylim(min(good) - 0.02, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)


class DiffRow(NamedTuple):
    """One initializer in the comparison figure: its paired difference from the reference and
    that difference's interval (accuracy fractions), the verdict, and a note for a row with no
    interval (e.g. "no interval (1/5 trained)")."""
    label: str
    difference: float
    low: float
    high: float
    verdict: str
    note: str = ""


@dataclass(frozen=True)
class ComparisonLayout:
    """What the comparison figure draws, in pp: row i at y = i (top to bottom)."""
    labels: list[str]
    x: np.ndarray
    low: np.ndarray
    high: np.ndarray
    drawn: np.ndarray  # rows with a finite difference and interval
    texts: list[str]  # beside each row: the numbers (where drawn) and the verdict
    notes: list[str]  # in place of a missing interval
    margin: float
    xlim: tuple[float, float]


def comparison_layout(rows: Sequence[tuple[Any, ...]], margin: float) -> ComparisonLayout:
    """The comparison's data in pp on a linear axis that holds 0, the margin band and every
    interval, so a bar's length is the difference itself (no truncated axis)."""
    rs = [DiffRow(*r) for r in rows]
    x, low, high = (np.array([100 * getattr(r, k) for r in rs], dtype=np.float64)
                    for k in ("difference", "low", "high"))
    drawn = np.isfinite(x) & np.isfinite(low) & np.isfinite(high)
    texts = [f"{x[i]:+.2f} [{low[i]:+.2f}, {high[i]:+.2f}] pp: {r.verdict}" if drawn[i]
             else r.verdict for i, r in enumerate(rs)]
    notes = ["" if drawn[i] else r.note or "no interval" for i, r in enumerate(rs)]
    m = 100 * margin
    lo = min(-m, 0.0, *low[drawn])
    hi = max(m, 0.0, *high[drawn])
    pad = 0.08 * (hi - lo)
    return ComparisonLayout([r.label for r in rs], x, low, high, drawn, texts, notes, m,
                            (lo - pad, hi + pad))


def draw_comparison(layout: ComparisonLayout, reference: str, title: str) -> Any:
    """The figure of ``layout``: one line per initializer (point and interval), 0, the margin."""
    n = len(layout.labels)
    fig, ax = plt.subplots(figsize=(11, 0.45 * n + 2.2))
    ys, ok = np.arange(n), layout.drawn
    ax.axvspan(-layout.margin, layout.margin, color="grey", alpha=0.15,
               label=f"equivalence margin +-{layout.margin:g} pp")
    ax.axvline(0, color="black", lw=0.8)
    ax.errorbar(layout.x[ok], ys[ok], xerr=[layout.x[ok] - layout.low[ok],
                                            layout.high[ok] - layout.x[ok]],
                fmt="o", ms=5, capsize=3, color="tab:blue", label="difference and its interval")
    for y, text in zip(ys, layout.texts, strict=True):
        # Beside the axes, so long verdicts never cover an interval or change the axis.
        ax.text(1.02, y, text, transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    for y in ys[~ok]:
        ax.text(0.5, y, layout.notes[y], transform=ax.get_yaxis_transform(), ha="center",
                va="center", fontsize=8, color="grey", style="italic")
    ax.set_yticks(ys, layout.labels)
    ax.set_ylim(n - 0.5, -0.5)  # the first row on top
    ax.set_xlim(*layout.xlim)
    ax.set(xlabel=f"test accuracy minus {reference} (pp), paired by seed", title=title)
    ax.grid(alpha=0.3, axis="x")
    # Below the axis label, where it can cover no row.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.6 / (0.45 * n + 0.8)),
              ncol=2, frameon=False)
    return fig


def comparison(rows: Sequence[tuple[Any, ...]], reference: str, margin: float, path: Path,
               title: str) -> ComparisonLayout:
    """The pipeline cell at a glance: each initializer's paired difference from ``reference``
    with its interval, against 0 and the equivalence band +-``margin`` (rows: ``DiffRow``s or
    plain tuples of its fields, in accuracy fractions; drawn in pp)."""
    layout = comparison_layout(rows, margin)
    save(draw_comparison(layout, reference, title), path)
    return layout


def summary_rows(cell: Mapping[str, Any]) -> list[DiffRow]:
    """A cell summary (``tables.cell_table``) as comparison rows, the reference left out: the
    largest difference first, rows with no interval last, each saying how many runs trained."""
    rows = [DiffRow(label, s["difference"], s["difference_low"], s["difference_high"],
                    s["vs_reference"], f"no interval ({s['trained']}/{s['seeds']} trained)")
            for label, s in cell["initializers"].items() if label != cell["reference"]]
    return sorted(rows, key=lambda r: -r.difference if math.isfinite(r.low) else math.inf)


def dataset_differences(summary: Mapping[str, dict[str, Any]], names: Mapping[str, str],
                        path: Path) -> None:
    """Paired difference from the reference with its interval, per initializer, one colour per
    dataset (the runs that trained; none drawn where no interval exists)."""
    first = summary[next(iter(names))]
    labels = [k for k in first["initializers"] if k != first["reference"]]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(labels) + 1.6))
    for j, (cell, dataset) in enumerate(names.items()):
        ys = np.arange(len(labels)) + (j - (len(names) - 1) / 2) * 0.25
        s = summary[cell]["initializers"]
        mean = np.array([100 * s[k]["difference"] for k in labels])
        low = np.array([100 * s[k]["difference_low"] for k in labels])
        high = np.array([100 * s[k]["difference_high"] for k in labels])
        ok = np.isfinite(low) & np.isfinite(high)
        ax.errorbar(mean[ok], ys[ok], xerr=[mean[ok] - low[ok], high[ok] - mean[ok]], fmt="o",
                    ms=4, capsize=3, label=dataset)
    margin = 100 * first["margin"]
    ax.axvspan(-margin, margin, color="grey", alpha=0.15, label=f"equivalence margin +-{margin:g} pp")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set(xlabel=f"test accuracy minus {first['reference']} (pp), paired by seed",
           title="The same comparison on every dataset")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8)
    save(fig, path)
