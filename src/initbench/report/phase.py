"""The trainability phase diagram: test accuracy over weight scale sigma_w x depth, against theory.

Schoenholz et al. (2017, "Deep Information Propagation", ICLR, arXiv:1611.01232, fig. 5) show
that a plain deep network trains only while its depth L is within a few multiples of the depth
scale xi over which signals propagate (they found the edge at about L = 6 xi); xi diverges at the
edge of chaos and falls on both sides (:func:`initbench.report.theory.depth_scale`). Each
``phase-<depth>-<activation>`` cell of ``study.phase`` holds every sigma_w of the grid (weights
N(0, sigma_w^2 / fan_in), zero biases), so one row of the diagram trains as one cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from initbench.config import PhaseConfig, sigma_label
from initbench.paths import cell_name
from initbench.report import theory
from initbench.report.tables import outcome
from initbench.results import by_label

EDGE = 6.0  # Schoenholz et al.: trainable while depth <= 6 xi


Cells = dict[str, dict[str, Any]]


def grid(cells: Cells, phase: PhaseConfig) -> dict[tuple[str, int, float], dict[str, Any]]:
    """(activation, depth, sigma_w) -> mean test accuracy over the seeds, seeds that trained (ok),
    seeds, and whether it is measured trainable (more than half of the seeds trained)."""
    out = {}
    for act in phase.activations:
        for depth in phase.depths:
            groups = by_label(cells[cell_name(depth, act, "phase")]["members"])
            for s in phase.sigma_w:
                members = groups[sigma_label(s)]
                ok = sum(outcome(m) == "ok" for m in members)
                out[(act, depth, s)] = {
                    "accuracy": float(np.mean([m["test_accuracy"] for m in members])),
                    "trained": ok, "seeds": len(members), "trainable": ok > len(members) / 2,
                    "predicted": depth <= EDGE * theory.depth_scale(act, s)}
    return out


def markdown(cells: Cells, phase: PhaseConfig, figure: str) -> list[str]:
    g = grid(cells, phase)
    agree = [k for k, v in g.items() if v["trainable"] == v["predicted"]]
    lines = [
        f"Plain MLPs of width {phase.width}, weights N(0, sigma_w^2 / fan_in) in every layer, zero "
        f"biases; {phase.optimizer} lr {phase.learning_rate} momentum {phase.momentum}, batch "
        f"{phase.batch_size}, {phase.epochs} epochs, {phase.seeds} seeds. Colour and number: mean "
        "test accuracy; a point is *trainable* when more than half of its seeds trained (neither "
        "exploded, collapsed nor stuck at chance). Dashed: depth = 6 xi, the trainability edge of "
        "Schoenholz et al. (2017); tanh xi from the correlation map (edge of chaos at sigma_w = 1 "
        "with zero biases), ReLU xi = 1 / |ln(sigma_w^2 / 2)| from the gradient factor (He's "
        "sigma_w = sqrt(2): infinite).", "", f"![phase diagram]({figure})", "",
        f"Theory and measurement agree on trainability at **{len(agree)} of {len(g)}** points "
        "(predicted trainable: depth <= 6 xi).",
    ]
    wrong = [f"{a} depth {d} sigma_w {s:g} ({'trains' if g[(a, d, s)]['trainable'] else 'fails'}, "
             f"6 xi = {EDGE * theory.depth_scale(a, s):.3g})" for (a, d, s) in g if (a, d, s) not in agree]
    if wrong:
        lines += ["Where they disagree: " + "; ".join(wrong) + "."]
    for act in phase.activations:
        lines += ["", f"**{act}**: test accuracy % (seeds trained / seeds)", "",
                  "| depth | " + " | ".join(f"{s:g}" for s in phase.sigma_w) + " |",
                  "|---:|" + "---:|" * len(phase.sigma_w)]
        for d in phase.depths:
            lines.append(f"| {d} | " + " | ".join(
                f"{100 * g[(act, d, s)]['accuracy']:.1f} ({g[(act, d, s)]['trained']}/"
                f"{g[(act, d, s)]['seeds']})" for s in phase.sigma_w) + " |")
    return lines


def figure(cells: Cells, phase: PhaseConfig, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = grid(cells, phase)
    fig, axes = plt.subplots(1, len(phase.activations), figsize=(6 * len(phase.activations), 4.6),
                             squeeze=False)
    fine = np.linspace(min(phase.sigma_w), max(phase.sigma_w), 120)
    for ax, act in zip(axes[0], phase.activations, strict=True):
        pts = [(s, d, g[(act, d, s)]) for d in phase.depths for s in phase.sigma_w]
        sc = ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=[p[2]["accuracy"] for p in pts],
                        cmap="viridis", vmin=0, vmax=1, marker="s", s=420,
                        edgecolors=["none" if p[2]["trainable"] else "red" for p in pts])
        for s, d, v in pts:
            ax.annotate(f"{100 * v['accuracy']:.0f}", (s, d), ha="center", va="center", fontsize=7,
                        color="white" if v["accuracy"] < 0.6 else "black")
        edge = [EDGE * theory.depth_scale(act, s) for s in fine]
        ax.plot(fine, edge, "k--", lw=1.2, label="depth = 6 xi (theory)")
        ax.set_yscale("log", base=2)
        ax.set_yticks(list(phase.depths), [str(d) for d in phase.depths])
        ax.set_ylim(min(phase.depths) / 1.5, max(phase.depths) * 1.5)
        ax.set(xlabel="sigma_w (weights N(0, sigma_w^2 / fan_in))", ylabel="hidden layers", title=act)
        ax.legend(fontsize=8, loc="upper right")
        fig.colorbar(sc, ax=ax, label="test accuracy")
    fig.suptitle("Trainability phase diagram (red edge: fewer than half of the seeds trained)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
