"""The study report's figures (matplotlib, written as PNG)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from initbench.report.stats import Interval
from initbench.results import by_label, mean_curve


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def accuracy_vs_depth(summary: Mapping[tuple[int, str, str], Interval], depths: Sequence[int],
                      activations: Sequence[str], labels: Sequence[str], path: Path,
                      xlabel: str = "hidden layers") -> None:
    """Test accuracy vs depth, one line per initializer with CI bars, one panel per activation."""
    fig, axes = plt.subplots(1, len(activations), figsize=(6.5 * len(activations), 4.8), squeeze=False)
    for ax, act in zip(axes[0], activations, strict=True):
        for j, label in enumerate(labels):
            ivs = [summary[(d, act, label)] for d in depths]
            mean = np.array([iv.mean for iv in ivs])
            low = np.array([iv.mean - iv.low if math.isfinite(iv.low) else 0 for iv in ivs])
            high = np.array([iv.high - iv.mean if math.isfinite(iv.high) else 0 for iv in ivs])
            xs = np.arange(len(depths)) + (j - len(labels) / 2) * 0.03
            ax.errorbar(xs, mean, yerr=[low, high], marker="o", ms=4, capsize=3, label=label)
        ax.set_xticks(range(len(depths)), [str(d) for d in depths])
        ax.set(xlabel=xlabel, ylabel="test accuracy", title=f"{act}", ylim=(0, 1))
        ax.axhline(0.1, color="grey", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="lower left")
    fig.suptitle("Test accuracy vs depth (mean and confidence interval over seeds)")
    _save(fig, path)


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
    _save(fig, path)


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
    _save(fig, path)


def comparison(members: Sequence[Mapping[str, Any]], path: Path) -> None:
    """The pipeline cell at a glance: validation accuracy per epoch (mean over seeds) and test
    accuracy (mean over seeds, every seed as a dot), one colour per initializer."""
    groups = by_label(members)
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(13, 5))
    for label, group in groups.items():
        rows = mean_curve(group)
        curves.plot([r["epoch"] for r in rows], [r["val_accuracy"] for r in rows], marker="o",
                    ms=3, label=label)
    curves.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    curves.grid(alpha=0.3)
    curves.legend(fontsize=8)
    order = sorted(groups, key=lambda k: np.mean([m["test_accuracy"] for m in groups[k]]))
    means = [float(np.mean([m["test_accuracy"] for m in groups[k]])) for k in order]
    bars.barh(order, means, color="tab:blue", alpha=0.6)
    for i, label in enumerate(order):
        accs = [m["test_accuracy"] for m in groups[label]]
        bars.plot(accs, [i] * len(accs), "k.", ms=4)
        bars.text(max(means[i], *accs), i, f"  {means[i]:.4f}", va="center", fontsize=8)
    good = [m for m in means if m > 0.5] or means
    low = min(good)
    bars.set_xlim(max(0.0, low - (1 - low) * 0.5 - 0.01), 1.0)
    bars.set(xlabel="test accuracy", title="Test accuracy (bar: mean; dots: seeds)")
    _save(fig, path)


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
    _save(fig, path)
