"""Dynamical isometry at initialization: the singular values of the hidden layers' Jacobian.

Pennington, Schoenholz & Ganguli (2017), "Resurrecting the sigmoid in deep learning through
dynamical isometry: theory and practice", NeurIPS, arXiv:1711.04735. J = dh_L / dh_1 = prod_l
W_l D_l (l = 2..L, D_l = diag phi'(z_l)); the train stage stores its singular values'
percentiles at initialization, pooled over a few inputs. Mean-field theory predicts their mean
square: the product of chi_1(q_l) = sigma_w^2 E[phi'(z_l)^2], q_l propagated from the measured
first layer (:mod:`initbench.report.theory`). The spectrum's shape depends on both the weights'
distribution (orthogonal vs Gaussian) and the activation's derivatives: ReLU sets about half of
each D_l to exactly 0, so J has exactly-zero singular values whatever the weights, which float64
round-off turns into tiny non-zero ones (spreads p95/p5 of 1e48 and more if they are kept in).
They are counted apart, below width x float64 eps x the largest (NumPy's matrix-rank tolerance:
nothing smaller is resolved), and the spread p95/p5 is that of the rest. The paper's claim,
checked on deep tanh: orthogonal weights keep the spread narrow, Gaussian ones of the same
variance widen it with depth.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from initbench.report import theory
from initbench.report.checks import effect_text, sigma_b2, span, tolerance_note
from initbench.results import by_label

# Pennington et al.'s comparison: orthogonal with gain 1 vs a Gaussian of the same variance.
ORTHOGONAL, GAUSSIAN = "orthogonal_g1", "lecun_normal"
XMIN = 1e-8  # the figure's left edge: far below isometry, where the vanishing spectra pile up
EPS = float(np.finfo(np.float64).eps)  # J and its SVD are float64 (train.diagnostics)
# Stored percentiles above the zero threshold needed for a spread: the zero share is known to 1%,
# which moves the non-zero values' own 5th percentile by 1% / (their share): at most 5 points.
MIN_NONZERO = 20


def intro() -> str:
    """The paragraph that opens the report's dynamical-isometry subsection."""
    return ("Singular values of J = dh_L / dh_1, the Jacobian of the last hidden layer's activations "
            "with respect to the first's, pooled over a few training examples (Pennington, "
            "Schoenholz & Ganguli 2017). J = prod_l W_l D_l, with D_l the diagonal of the "
            "activation's derivatives phi'(z_l), so the spectrum's shape depends on both the "
            "weights' distribution (orthogonal W_l have every singular value at the gain, Gaussian "
            "ones spread them) and the nonlinearity's derivatives: tanh's D_l shrink where units "
            "saturate, and ReLU sets about half of every D_l to exactly 0, so J has exactly-zero "
            "singular values whatever the weights (no ReLU network is isometric). Mean-field theory "
            "predicts only the mean square singular value: the product of the layers' chi_1 = "
            "sigma_w^2 E[phi'(z)^2], from each model's measured first layer and weights. The "
            "tables give the share of singular values that are zero to float64 precision (below "
            "width x eps x the largest) and the spread p95/p5 of the others.")


def predicted_mean_sq(cell: dict[str, Any], member: dict[str, Any]) -> float:
    """prod_{l=2..L} sigma_w,l^2 E[phi'(z_l)^2], from the model's own diagnostics at init."""
    widths = [int(w) for w in cell["config"]["model.hidden"]]
    pred = theory.from_diagnostics(cell["activation"], widths, member["diagnostics"],
                                   sigma_b2=sigma_b2(cell))
    return pred.jacobian_mean_sq(cell["activation"])


def zero_share(member: dict[str, Any], width: int) -> tuple[float, float]:
    """(low, high): bounds on the share of J's singular values that are zero to float64 precision
    (<= width x eps x the largest), to the 1% the stored percentiles 0..100 resolve."""
    p = np.asarray(member["jacobian_sv_percentiles"], dtype=np.float64)
    k = int(np.count_nonzero(p <= width * EPS * p[-1]))  # percentiles 0..k-1 are zeros
    steps = len(p) - 1
    return (0.0, 0.0) if k == 0 else (1.0, 1.0) if k == len(p) else ((k - 1) / steps, k / steps)


def spread(member: dict[str, Any], width: int) -> float:
    """95th / 5th percentile of the non-zero singular values, read off the stored percentiles
    with the zero share's midpoint (NaN: fewer than ``MIN_NONZERO`` percentiles are non-zero)."""
    p = np.asarray(member["jacobian_sv_percentiles"], dtype=np.float64)
    low, high = zero_share(member, width)
    if np.count_nonzero(p > width * EPS * p[-1]) < MIN_NONZERO:
        return math.nan
    q, z = np.linspace(0, 1, len(p)), (low + high) / 2  # the non-zero values fill quantiles z..1
    p5, p95 = np.interp([z + 0.05 * (1 - z), z + 0.95 * (1 - z)], q, p)
    return float(p95 / p5)


def _share(bounds: tuple[float, float]) -> str:
    low, high = (round(100 * b) for b in bounds)
    return f"{low}%" if low == high else f"{low}-{high}%"


def table(cell: dict[str, Any], confidence: float) -> list[str]:
    """Per initializer: J's mean square singular value against mean-field theory, the share of
    zero singular values and the spread of the others; for tanh, the orthogonal-vs-Gaussian claim."""
    depth, width = len(cell["config"]["model.hidden"]), int(cell["config"]["model.hidden"][-1])
    lines = [f"| initializer | mean square singular value of J: predicted | measured [{confidence:.0%}"
             f" CI] | log(measured/predicted) [{confidence:.0%} CI] | agrees | zero singular values "
             "(per seed) | spread p95/p5 of the non-zero ones (per seed) | largest |",
             "|---|---:|---:|---:|---|---:|---:|---:|"]
    for label, members in by_label(cell["members"]).items():
        if members[0].get("jacobian_sv_percentiles") is None:
            continue
        a = theory.agreement([predicted_mean_sq(cell, x) for x in members],
                             [x["jacobian_mean_sq"] for x in members], confidence)
        mark = "n/a" if a.agrees is None else ("yes" if a.agrees else "**no**")
        zeros = ", ".join(_share(zero_share(x, width)) for x in members)
        spreads = ", ".join(f"{spread(x, width):.3g}" for x in members)
        lines.append(f"| {label} | {a.predicted:.3g} | {span(a.measured, a.low, a.high, '{:.3g}'.format)}"
                     f" | {effect_text(a)} | {mark} | {zeros} | {spreads} "
                     f"| {max(x['jacobian_sv_percentiles'][100] for x in members):.3g} |")
    lines += ["", tolerance_note(confidence)]
    if cell["activation"] == "relu":
        lines += ["", "ReLU: no weight distribution gives isometry (Pennington et al. 2017): for "
                  "each input about half the units of every layer are off, so J is rank-deficient: "
                  "the zero singular values above are exact zeros, seen through round-off; the mean "
                  "square is still what theory predicts."]
    elif (held := orthogonal_narrower(cell)) is not None:
        lines += ["", f"{'✓' if held[0] else '✗'} Orthogonal weights (gain 1) keep J's spectrum "
                  f"narrower than Gaussian weights of the same variance ({GAUSSIAN}) at depth "
                  f"{depth} (Pennington et al. 2017): {held[1]} -- "
                  + ("holds (every orthogonal seed narrower than every Gaussian one, with no more "
                     "zero singular values)." if held[0]
                     else "does not hold here (the ranges overlap or reverse, or a spread is not "
                     "resolved).")]
    return lines


def orthogonal_narrower(cell: dict[str, Any]) -> tuple[bool, str] | None:
    """Pennington et al.'s claim on a tanh cell: (whether every orthogonal seed's spread p95/p5 is
    below every Gaussian seed's, with no more zero singular values; the ranges as text); None
    without both initializers or for ReLU (no isometry at all)."""
    labels, width = by_label(cell["members"]), int(cell["config"]["model.hidden"][-1])
    if cell["activation"] == "relu" or ORTHOGONAL not in labels or GAUSSIAN not in labels:
        return None
    if labels[ORTHOGONAL][0].get("jacobian_sv_percentiles") is None:
        return None
    o = [spread(x, width) for x in labels[ORTHOGONAL]]
    g = [spread(x, width) for x in labels[GAUSSIAN]]
    oz = max(zero_share(x, width)[0] for x in labels[ORTHOGONAL])
    gz = min(zero_share(x, width)[0] for x in labels[GAUSSIAN])
    holds = all(map(math.isfinite, o + g)) and max(o) < min(g) and oz <= gz
    return holds, (f"spread p95/p5 of the non-zero singular values {min(o):.3g}-{max(o):.3g} vs "
                   f"{min(g):.3g}-{max(g):.3g} over the seeds")


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
