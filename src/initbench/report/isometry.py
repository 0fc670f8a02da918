"""Dynamical isometry at initialization: the singular values of the hidden layers' Jacobian.

Pennington, Schoenholz & Ganguli (2017), "Resurrecting the sigmoid in deep learning through
dynamical isometry: theory and practice", NeurIPS, arXiv:1711.04735. For J = dh_L / dh_1 (the
train stage stores its singular values' percentiles at initialization, pooled over a few inputs),
mean-field theory predicts the mean square singular value: the product over layers 2..L of
chi_1(q_l) = sigma_w^2 E[phi'(z_l)^2], q_l propagated from the measured first layer
(:mod:`initbench.report.theory`). It says nothing about the spread, which the weights'
distribution sets: orthogonal weights keep it narrow, Gaussian ones of the same variance widen it
with depth -- the paper's claim, checked here on deep tanh.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from initbench.report import theory
from initbench.report.checks import agreement
from initbench.results import by_label

# Pennington et al.'s comparison: orthogonal with gain 1 vs a Gaussian of the same variance.
ORTHOGONAL, GAUSSIAN = "orthogonal_g1", "lecun_normal"
XMIN = 1e-8  # the figure's left edge: far below isometry, where the vanishing spectra pile up


def predicted_mean_sq(cell: dict[str, Any], member: dict[str, Any]) -> float:
    """prod_{l=2..L} sigma_w,l^2 E[phi'(z_l)^2], from the model's own diagnostics at init."""
    widths = [int(w) for w in cell["config"]["model.hidden"]]
    pred = theory.from_diagnostics(cell["activation"], widths, member["diagnostics"])
    return pred.jacobian_mean_sq(cell["activation"])


def spread(member: dict[str, Any]) -> float:
    """95th / 5th percentile of the singular values."""
    p = member["jacobian_sv_percentiles"]
    return p[95] / p[5] if p[5] > 0 else math.inf


def table(cell: dict[str, Any], confidence: float) -> list[str]:
    depth = len(cell["config"]["model.hidden"])
    lines = [f"| initializer | mean square singular value of J: predicted | measured "
             f"[{confidence:.0%} CI] | agrees | spread p95/p5 (per seed) | largest |",
             "|---|---:|---:|---|---:|---:|"]
    for label, members in by_label(cell["members"]).items():
        if members[0].get("jacobian_sv_percentiles") is None:
            continue
        p, m, lo, hi, ok = agreement([predicted_mean_sq(cell, x) for x in members],
                                     [x["jacobian_mean_sq"] for x in members], confidence)
        mark = "n/a" if ok is None else ("yes" if ok else "**no**")
        spreads = ", ".join(f"{spread(x):.3g}" for x in members)
        lines.append(f"| {label} | {p:.3g} | {m:.3g} [{lo:.3g}, {hi:.3g}] | {mark} | {spreads} "
                     f"| {max(x['jacobian_sv_percentiles'][100] for x in members):.3g} |")
    labels = by_label(cell["members"])
    if cell["activation"] == "relu":
        lines += ["", "ReLU: no weight distribution gives isometry (Pennington et al. 2017): at "
                  "every layer about half the units are off, so J is nearly rank-deficient and "
                  "its smallest singular values are ~0 (hence the spreads above); the mean square "
                  "is still what theory predicts."]
    elif ORTHOGONAL in labels and GAUSSIAN in labels:
        o = [spread(x) for x in labels[ORTHOGONAL]]
        g = [spread(x) for x in labels[GAUSSIAN]]
        holds = max(o) < min(g)
        lines += ["", f"{'✓' if holds else '✗'} Orthogonal weights (gain 1) keep J's spectrum "
                  f"narrower than Gaussian weights of the same variance ({GAUSSIAN}) at depth "
                  f"{depth} (Pennington et al. 2017): spread p95/p5 {min(o):.3g}-{max(o):.3g} vs "
                  f"{min(g):.3g}-{max(g):.3g} over the seeds -- "
                  + ("holds (every orthogonal seed narrower than every Gaussian one)." if holds
                     else "does not hold here (the ranges overlap or reverse).")]
    return lines


def figure(cells: dict[str, dict[str, Any]], path: Path) -> None:
    """Cumulative distribution of J's singular values at init, seed 0 of each initializer."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cells), figsize=(6 * len(cells), 4.4), squeeze=False)
    q = np.linspace(0, 1, 101)
    for ax, (title, cell) in zip(axes[0], cells.items(), strict=True):
        for label, members in by_label(cell["members"]).items():
            p = np.asarray(members[0].get("jacobian_sv_percentiles") or [], dtype=np.float64)
            keep = np.isfinite(p) & (p > 0)  # exact zeros (dead ReLU paths) have no log position
            if keep.any():
                ax.plot(p[keep], q[:len(p)][keep], label=label,
                        lw=2 if label in (ORTHOGONAL, GAUSSIAN) else 1)
        ax.set_xscale("log")
        ax.set_xlim(XMIN, None)
        ax.set(xlabel="singular value of J = dh_L / dh_1", ylabel="cumulative fraction", title=title)
        ax.axvline(1.0, color="grey", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Jacobian spectrum at initialization (seed 0; isometry: every value at 1; "
                 f"values below {XMIN:g} off the left edge)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
