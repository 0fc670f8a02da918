"""Test accuracy against depth (plain and conv cells), drawn apart from whether the runs trained.

A run that failed (at chance, collapsed or exploded) is not a sample of the accuracy its
initializer reaches: averaged in, it turns a success rate into a fake accuracy gap of tens of pp.
The tables count failures apart and describe the runs that trained (``tables.successful``); so
does this figure. Top row: the mean test accuracy of the runs that trained and its t interval, on
an axis zoomed to those intervals, so that the ~1 pp effects the report discusses (e.g. He
et al. 2015 vs Glorot & Bengio 2010 under tanh) are visible; bottom row: the share of seeds that
trained, where the naive initializers part from the sensible ones as depth grows (Schoenholz et
al. 2017).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from initbench.report.figures import plt, save
from initbench.report.stats import Interval, bounded_interval
from initbench.report.tables import by_label, successful

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
MIN_REACH = 2.0  # pp an interval may extend the axis beyond the means, at the least


class DepthPoint(NamedTuple):
    """One (depth, activation, initializer): accuracy over the runs that trained, and how many did."""
    interval: Interval
    trained: int
    seeds: int


def trained_points(cells: Mapping[tuple[int, str], dict[str, Any]], labels: Sequence[str],
                   confidence: float) -> dict[tuple[int, str, str], DepthPoint]:
    """(depth, activation, label) -> its point, from the cells keyed by (depth, activation)."""
    out = {}
    for (depth, act), cell in cells.items():
        ok, every = successful(cell), by_label(cell, "test_accuracy")
        for label in labels:
            values = list(ok.get(label, {}).values())
            out[(depth, act, label)] = DepthPoint(bounded_interval(values, confidence),
                                                  len(values), len(every[label]))
    return out


def accuracy_limits(points: Iterable[DepthPoint]) -> tuple[float, float]:
    """One panel's accuracy axis in %: every mean and every interval, except that an interval may
    stretch the axis at most max(MIN_REACH, range of the means) beyond the means; a wide interval
    of two trained runs (t at 1 df) would otherwise flatten every difference to nothing again."""
    ivs = [p.interval for p in points if math.isfinite(p.interval.mean)]
    if not ivs:
        return 0.0, 100.0
    means = [100 * iv.mean for iv in ivs]
    a, b = min(means), max(means)
    reach = max(MIN_REACH, b - a)
    lows = [100 * iv.low for iv in ivs if math.isfinite(iv.low)]
    highs = [100 * iv.high for iv in ivs if math.isfinite(iv.high)]
    lo, hi = max(min([a, *lows]), a - reach), min(max([b, *highs]), b + reach)
    pad = 0.06 * (hi - lo) or 0.5
    return max(0.0, lo - pad), min(100.0, hi + pad)


def draw_accuracy_vs_depth(points: Mapping[tuple[int, str, str], tuple[Interval, int, int]],
                           depths: Sequence[int], activations: Sequence[str],
                           labels: Sequence[str], xlabel: str = "hidden layers",
                           confidence: float | None = None) -> Any:
    """The figure: per activation, accuracy of the runs that trained (top), share trained (bottom)."""
    pts = {k: DepthPoint(*v) for k, v in points.items()}
    fig, axes = plt.subplots(2, len(activations), figsize=(6.5 * len(activations), 7),
                             squeeze=False, sharex=True, height_ratios=(3, 1.4))
    colors = plt.get_cmap("tab10").colors
    for col, act in enumerate(activations):
        top, bottom = axes[0][col], axes[1][col]
        ylim = accuracy_limits(pts[(d, act, lab)] for d in depths for lab in labels)
        for j, label in enumerate(labels):
            row = [pts[(d, act, label)] for d in depths]
            xs = np.arange(len(depths)) + (j - (len(labels) - 1) / 2) * 0.06
            mean = np.array([100 * p.interval.mean for p in row])
            low = np.array([100 * p.interval.low for p in row])
            high = np.array([100 * p.interval.high for p in row])
            style = {"marker": MARKERS[j % len(MARKERS)], "color": colors[j % len(colors)], "ms": 5}
            bars = np.isfinite(low) & np.isfinite(high)
            top.errorbar(xs, mean, yerr=[np.where(bars, mean - low, 0), np.where(bars, high - mean, 0)],
                         capsize=3, label=label, **style)
            # An interval cut at the panel's edge is marked there, not silently shortened.
            for edge, cut in ((ylim[0], bars & (low < ylim[0])), (ylim[1], bars & (high > ylim[1]))):
                top.plot(xs[cut], np.full(cut.sum(), edge), ls="none", mfc="none",
                         **style | {"marker": "v" if edge == ylim[0] else "^", "ms": 8})
            for x, y, p in zip(xs, mean, row, strict=True):
                if 0 < p.trained < p.seeds:  # a mean of fewer runs than the others
                    top.annotate(f"{p.trained}/{p.seeds}", (x, y), xytext=(4, 4),
                                 textcoords="offset points", fontsize=7, color=style["color"])
            bottom.plot(xs, [p.trained / p.seeds if p.seeds else math.nan for p in row], **style)
        top.set(ylabel="test accuracy % (runs that trained)", title=act, ylim=ylim)
        bottom.set(xlabel=xlabel, ylabel="share of seeds\nthat trained", ylim=(-0.08, 1.08))
        bottom.set_xticks(range(len(depths)), [str(d) for d in depths])
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # covers no point
    level = f"{confidence:.0%} " if confidence is not None else ""
    fig.suptitle(textwrap.fill(
        f"Top: test accuracy of the runs that trained, mean and {level}t interval (open v or ^ at "
        "the edge: the interval goes on beyond it; k/n: k of n seeds trained). Bottom: the share "
        "of seeds that trained.", width=int(13 * 6.5 * len(activations))), fontsize=10)
    return fig


def accuracy_vs_depth(points: Mapping[tuple[int, str, str], tuple[Interval, int, int]],
                      depths: Sequence[int], activations: Sequence[str], labels: Sequence[str],
                      path: Path, xlabel: str = "hidden layers",
                      confidence: float | None = None) -> None:
    """Write the figure of ``draw_accuracy_vs_depth``; ``points`` as ``trained_points`` makes them."""
    save(draw_accuracy_vs_depth(points, depths, activations, labels, xlabel, confidence), path)
