"""The phase diagram's figure: the measured trainability grid over sigma_w x depth, with
Schoenholz et al.'s 6 xi edge and the edge fitted to the grid, c xi, with its interval
(:mod:`initbench.report.phase`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from initbench.config import PhaseConfig
from initbench.report.phase import (
    CRITICAL,
    EDGE,
    SIDES,
    Cells,
    accuracy_key,
    biases_text,
    fits,
    grid,
    side,
    xi,
)


def figure(cells: Cells, phase: PhaseConfig, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g, fitted = grid(cells, phase), fits(cells, phase)
    fig, axes = plt.subplots(1, len(phase.activations), figsize=(7 * len(phase.activations), 5),
                             squeeze=False)
    fine = np.linspace(min(phase.sigma_w), max(phase.sigma_w), 120)
    top = max(phase.depths) * 1.5
    for ax, act in zip(axes[0], phase.activations, strict=True):
        pts = [(s, d, g[(act, d, s)]) for d in phase.depths for s in phase.sigma_w]
        sc = ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=[p[2]["accuracy"] for p in pts],
                        cmap="viridis", vmin=0, vmax=1, marker="s", s=420,
                        edgecolors=["none" if p[2]["trainable"] else "red" for p in pts])
        for s, d, v in pts:
            ax.annotate(f"{100 * v['accuracy']:.0f}", (s, d), ha="center", va="center", fontsize=7,
                        color="white" if v["accuracy"] < 0.6 else "black")
        if act in CRITICAL:
            ax.plot(fine, [EDGE * xi(act, s, phase.sigma_b) for s in fine], "k--", lw=1.2,
                    label="depth = 6 xi (Schoenholz et al.)")
            for name, f in fitted[act].items():  # the fitted edge c xi and its interval, per side
                xs = np.array([s for s in fine if side(act, s, phase.sigma_b) == name])
                if not len(xs) or not math.isfinite(f.c):
                    continue
                scale = np.array([xi(act, s, phase.sigma_b) for s in xs])
                ax.fill_between(xs, np.minimum(f.low * scale, top), np.minimum(f.high * scale, top),
                                color="tab:orange", alpha=0.2, lw=0)
                ax.plot(xs, f.c * scale, color="tab:orange", lw=1.5,
                        label="fitted c xi (interval shaded)" if name == SIDES[act][0] else None)
        ax.set_yscale("log", base=2)
        ax.set_yticks(list(phase.depths), [str(d) for d in phase.depths])
        ax.set_ylim(min(phase.depths) / 1.5, top)
        ax.set(xlabel=f"sigma_w (weights N(0, sigma_w^2 / {phase.mode}), biases {biases_text(phase)})",
               ylabel="hidden layers", title=act)
        ax.legend(fontsize=8, loc="upper right")
        fig.colorbar(sc, ax=ax, label="training accuracy (every training image)"
                     if accuracy_key(cells, phase) == "train_accuracy" else "test accuracy")
    fig.suptitle("Trainability (red edge: fewer than half of the seeds trained)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
