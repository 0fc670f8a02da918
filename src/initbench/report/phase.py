"""The trainability phase diagram: test accuracy over weight scale sigma_w x depth, against theory.

Schoenholz et al. (2017, "Deep Information Propagation", ICLR, arXiv:1611.01232, fig. 5) show
that a plain deep network trains only while its depth L is within a few multiples of the depth
scale xi over which signals propagate (they found the edge at about L = 6 xi); xi diverges at the
edge of chaos and falls on both sides (:func:`initbench.report.theory.depth_scale`). Each
``phase-<depth>-<activation>`` cell of ``study.phase`` holds every sigma_w of the grid (weights
N(0, sigma_w^2 / fan_in), zero biases), so one row of the diagram trains as one cell.

That 6 is a claim about one side only: tanh's chaotic phase, where xi is the correlation length
xi_c. With zero biases tanh's ordered phase has q* = 0 and bias-free ReLU has no correlation
phases at all; there xi is the depth over which the signal's scale drifts by e, and the edge is a
scale threshold. So the constant c of "depth L trains iff L < c xi" is fitted per activation and
side of criticality, with an interval (:mod:`initbench.report.phase_fit`), and each side is named
for what it tests; counting the grid points the 6 xi line classifies right cannot tell 6 from 8.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from initbench.config import PhaseConfig, sigma_label
from initbench.paths import cell_name
from initbench.report import phase_fit, theory
from initbench.report.tables import successful
from initbench.results import by_label

EDGE = 6.0  # Schoenholz et al.: trainable while depth <= 6 xi
CONFIDENCE = 0.95
# sigma_w at criticality with zero biases (xi infinite), and the names of the sides below/above.
CRITICAL = {"tanh": 1.0, "relu": math.sqrt(2), "linear": 1.0}
SIDES = {"tanh": ("ordered", "chaotic"), "relu": ("vanishing", "exploding"),
         "linear": ("vanishing", "exploding")}
_SCALE = ("a scale threshold, not Schoenholz et al.'s edge: {why}, so xi = {xi} is the depth over "
          "which the forward signal's and the gradient's variance change by a factor e, and c is "
          "the log of the largest end-to-end factor that still trains")
TESTS = {
    ("tanh", "chaotic"): "Schoenholz et al.'s 6 xi: in the chaotic phase (q* > 0) xi is the "
                         "correlation length xi_c = -1 / ln chi_c, the scale their edge is stated in",
    ("tanh", "ordered"): _SCALE.format(why="with zero biases the ordered phase has q* = 0 (the "
                                       "signal shrinks to 0, chi_1 = sigma_w^2)",
                                       xi="1 / |ln sigma_w^2|"),
    ("relu", "vanishing"): _SCALE.format(why="bias-free ReLU has no ordered or chaotic correlation "
                                         "phase", xi="1 / |ln(sigma_w^2 / 2)|"),
    ("linear", "vanishing"): _SCALE.format(why="a linear net has no correlation phases",
                                           xi="1 / |ln sigma_w^2|"),
}
TESTS[("relu", "exploding")] = TESTS[("relu", "vanishing")]
TESTS[("linear", "exploding")] = TESTS[("linear", "vanishing")]

Cells = dict[str, dict[str, Any]]


def grid(cells: Cells, phase: PhaseConfig) -> dict[tuple[str, int, float], dict[str, Any]]:
    """(activation, depth, sigma_w) -> mean test accuracy over the seeds, seeds that trained
    (``tables.successful``), seeds, and whether it is trainable (more than half of them trained)."""
    out = {}
    for act in phase.activations:
        for depth in phase.depths:
            cell = cells[cell_name(depth, act, "phase")]
            groups, ok = by_label(cell["members"]), successful(cell)
            for s in phase.sigma_w:
                members, k = groups[sigma_label(s)], len(ok.get(sigma_label(s), {}))
                out[(act, depth, s)] = {
                    "accuracy": float(np.mean([m["test_accuracy"] for m in members])),
                    "trained": k, "seeds": len(members), "trainable": k > len(members) / 2}
    return out


def side(activation: str, sigma_w: float) -> str | None:
    """The side of criticality sigma_w is on; None at criticality (xi infinite) or without theory."""
    if activation not in CRITICAL or math.isinf(theory.depth_scale(activation, sigma_w)):
        return None
    return SIDES[activation][int(sigma_w > CRITICAL[activation])]


def fits(cells: Cells, phase: PhaseConfig, confidence: float = CONFIDENCE
         ) -> dict[str, dict[str, phase_fit.Fit]]:
    """activation -> side -> the fitted c of "depth L trains iff L < c xi(sigma_w)"."""
    g = grid(cells, phase)
    out: dict[str, dict[str, phase_fit.Fit]] = {}
    for act in (a for a in phase.activations if a in CRITICAL):
        for name in SIDES[act]:
            keys = [(a, d, s) for (a, d, s) in g if a == act and side(a, s) == name]
            out.setdefault(act, {})[name] = phase_fit.fit(
                [d / theory.depth_scale(a, s) for a, d, s in keys], [g[k]["trained"] for k in keys],
                [g[k]["seeds"] for k in keys], confidence)
    return out


def _num(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.3g}"


def _estimate(f: phase_fit.Fit) -> str:
    if math.isfinite(f.c):
        return f"c = {_num(f.c)} [{_num(f.low)}, {_num(f.high)}]"
    if f.low == 0 and math.isinf(f.high):
        return "c undetermined (interval [0, inf])"
    return f"c > {_num(f.low)}" if math.isinf(f.high) else f"c < {_num(f.high)}"


def verdict(f: phase_fit.Fit, act: str, name: str, phase: PhaseConfig) -> str:
    """Whether the fit excludes c = 6, is consistent with it (its interval excluding half and
    double), or is inconclusive, saying which runs would decide it."""
    sig = [s for s in phase.sigma_w if side(act, s) == name]
    if f.points == 0:
        return f"untested: no grid point on the {name} side"
    if not f.contains(EDGE):
        return f"excludes 6 xi: {_estimate(f)}"
    if f.low > EDGE / 2 and f.high < 2 * EDGE:
        return f"consistent with 6 xi: {_estimate(f)}, which excludes 3 xi and 12 xi"
    also = " and ".join(f"{c:g} xi" for c in (EDGE / 2, 2 * EDGE) if f.contains(c))
    xi = {s: theory.depth_scale(act, s) for s in sig}
    if f.trained == f.runs:  # the edge lies beyond the deepest point: go deeper where xi is least
        s = min(xi, key=xi.get)
        need = (f"no run failed, so deeper nets (depth >= {math.ceil(2 * EDGE * xi[s])} "
                f"at sigma_w {s:g})")
    elif f.trained == 0:  # every run failed: go shallower where xi is largest
        s = max(xi, key=xi.get)
        need = (f"every run failed, so shallower nets (depth <= {math.floor(EDGE / 2 * xi[s])} "
                f"at sigma_w {s:g})")
    else:  # more runs where depth / xi lies inside the interval
        mid = math.sqrt(min(phase.depths) * max(phase.depths)) / EDGE
        s = min(xi, key=lambda t: abs(math.log(xi[t] / mid)))
        lo, hi = max(f.low, EDGE / 2) * xi[s], min(f.high, 2 * EDGE) * xi[s]
        need = (f"more seeds and depths where depth / xi lies in the interval (depths "
                f"{max(1, math.floor(lo))}-{math.ceil(hi)} at sigma_w {s:g})")
    return (f"inconclusive: {_estimate(f)}, an interval that holds 6 xi but also {also}; {need} "
            "would decide it")


def summary(cells: Cells, phase: PhaseConfig, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """activation -> side -> the fitted c, its interval (None: open on that side or undetermined),
    what informed it, whether 6 is inside, the verdict and what the side tests."""
    def finite(x: float) -> float | None:
        return x if math.isfinite(x) else None

    return {act: {name: {
        "sigma_w": [s for s in phase.sigma_w if side(act, s) == name], "c": finite(f.c),
        "low": f.low, "high": finite(f.high), "confidence": f.confidence, "points": f.points,
        "runs": f.runs, "trained": f.trained, "contains_6": f.contains(EDGE), "estimate": _estimate(f),
        "verdict": verdict(f, act, name, phase), "tests": TESTS[(act, name)]}
        for name, f in by_side.items()} for act, by_side in fits(cells, phase, confidence).items()}


def answer(res: dict[str, Any]) -> str:
    """One sentence for the report's Answer: each side's fitted trainable depth, in units of xi."""
    parts = [f"{act} {name} side: {r['verdict']}" for act, sides in res.items()
             for name, r in sides.items()]
    return ("the deepest trainable net, as c x the theory's depth scale xi (Schoenholz et al. "
            "2017 predict c = 6 on tanh's chaotic side): " + "; ".join(parts) + ".")


def markdown(cells: Cells, phase: PhaseConfig, figure: str, confidence: float = CONFIDENCE
             ) -> list[str]:
    g = grid(cells, phase)
    lines = [
        f"Plain MLPs of width {phase.width}, weights N(0, sigma_w^2 / fan_in) in every layer, zero "
        f"biases; {phase.optimizer} lr {phase.learning_rate} momentum {phase.momentum}, batch "
        f"{phase.batch_size}, {phase.epochs} epochs, {phase.seeds} seeds. Colour and number: mean "
        "test accuracy; a point is *trainable* when more than half of its seeds trained. Dashed: "
        "depth = 6 xi, the trainability edge of Schoenholz et al. (2017); solid and shaded: the "
        "fitted c xi and its interval, per side of criticality (tanh: sigma_w = 1; ReLU: sqrt 2).",
        "", f"![phase diagram]({figure})", "",
        f"**The trainable depth, fitted.** Per activation and side, c in \"depth L trains iff L < "
        f"c xi(sigma_w)\": Firth-penalized maximum likelihood of a logistic model in ln(L / xi) "
        f"over every run, with its {confidence:.0%} profile-likelihood interval (open where no run "
        "crossed the edge). Runs: trained / all, over the grid points of that side (the critical "
        "sigma_w, where xi is infinite, informs neither).", "",
        "| activation | side | sigma_w | grid points | runs trained | 6 inside | verdict: c [interval] |",
        "|---|---|---|---:|---:|---|---|"]
    summ = summary(cells, phase, confidence)
    tests: dict[str, list[str]] = {}  # what a side tests -> the sides that test it
    for act, by_side in summ.items():
        for name, r in by_side.items():
            sig = ", ".join(f"{s:g}" for s in r["sigma_w"]) or "-"
            lines.append(f"| {act} | {name} | {sig} | {r['points']} | {r['trained']}/{r['runs']} | "
                         f"{'yes' if r['contains_6'] else 'no'} | {r['verdict']} |")
            tests.setdefault(r["tests"], []).append(f"{act} {name}")
    lines += ["", "What each side tests: " + "; ".join(
        f"{' and '.join(sides)}: {text}" for text, sides in tests.items()) + "."]
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

    g, fitted = grid(cells, phase), fits(cells, phase)
    fig, axes = plt.subplots(1, len(phase.activations), figsize=(6 * len(phase.activations), 4.6),
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
            ax.plot(fine, [EDGE * theory.depth_scale(act, s) for s in fine], "k--", lw=1.2,
                    label="depth = 6 xi (Schoenholz et al.)")
            for name, f in fitted[act].items():  # the fitted edge c xi and its interval, per side
                xs = np.array([s for s in fine if side(act, s) == name])
                if not len(xs) or not math.isfinite(f.c):
                    continue
                xi = np.array([theory.depth_scale(act, s) for s in xs])
                ax.fill_between(xs, np.minimum(f.low * xi, top), np.minimum(f.high * xi, top),
                                color="tab:orange", alpha=0.2, lw=0)
                ax.plot(xs, f.c * xi, color="tab:orange", lw=1.5,
                        label="fitted c xi (interval shaded)" if name == SIDES[act][0] else None)
        ax.set_yscale("log", base=2)
        ax.set_yticks(list(phase.depths), [str(d) for d in phase.depths])
        ax.set_ylim(min(phase.depths) / 1.5, top)
        ax.set(xlabel="sigma_w (weights N(0, sigma_w^2 / fan_in))", ylabel="hidden layers", title=act)
        ax.legend(fontsize=8, loc="upper right")
        fig.colorbar(sc, ax=ax, label="test accuracy")
    fig.suptitle("Trainability phase diagram (red edge: fewer than half of the seeds trained)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
