"""The trainability phase diagram: test accuracy over weight scale sigma_w x depth, against theory.

Schoenholz et al. (2017, "Deep Information Propagation", ICLR, arXiv:1611.01232, fig. 5) show
that a plain deep network trains only while its depth L is within a few multiples of the depth
scale xi over which signals propagate (they found the edge at about L = 6 xi); xi diverges at the
edge of chaos and falls on both sides (:func:`initbench.report.theory.depth_scale`). Each
``phase-<depth>-<activation>`` cell of ``study.phase`` holds every sigma_w of the grid (weights
N(0, sigma_w^2 / fan), biases N(0, sigma_b^2)), so one row of the diagram trains as one cell.

That 6 is a claim about one side only: tanh's chaotic phase, where xi is the correlation length
xi_c. With zero biases tanh's ordered phase has q* = 0 and ReLU has no chaotic phase at all;
there xi is the depth over which the signal's scale drifts by e, and the edge is a scale
threshold. With biases N(0, sigma_b^2) (``study.phase.sigma_b``) tanh has q* > 0 on both sides,
xi is xi_c on both and the edge of chaos moves (sigma_w^2 = 1.76 at sigma_b^2 = 0.05). Depth here
counts hidden layers; Schoenholz et al.'s L counts weight layers, one more (a 1 / L difference).
So the constant c of "depth L trains iff L < c xi" is fitted per activation and
side of criticality, with an interval (:mod:`initbench.report.phase_fit`), and each side is named
for what it tests; counting the grid points the 6 xi line classifies right cannot tell 6 from 8.
"""

from __future__ import annotations

import math
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
    ("relu", "vanishing"): _SCALE.format(why="ReLU has no chaotic correlation phase (c* = 1; "
                                         "with zero biases its correlation map does not even "
                                         "depend on sigma_w)", xi="1 / |ln(sigma_w^2 / 2)|"),
    ("linear", "vanishing"): _SCALE.format(why="a linear net has no correlation phases",
                                           xi="1 / |ln sigma_w^2|"),
}
TESTS[("relu", "exploding")] = TESTS[("relu", "vanishing")]
TESTS[("linear", "exploding")] = TESTS[("linear", "vanishing")]

Cells = dict[str, dict[str, Any]]


def grid(cells: Cells, phase: PhaseConfig) -> dict[tuple[str, int, float], dict[str, Any]]:
    """(activation, depth, sigma_w) -> mean accuracy over the seeds (:func:`accuracy_key`), seeds that trained
    (``tables.successful``), seeds, and whether it is trainable (more than half of them trained)."""
    out = {}
    for act in phase.activations:
        for depth in phase.depths:
            cell = cells[cell_name(depth, act, "phase")]
            groups, ok, key = by_label(cell["members"]), successful(cell), accuracy_key(cells, phase)
            for s in phase.sigma_w:
                members, k = groups[sigma_label(s)], len(ok.get(sigma_label(s), {}))
                out[(act, depth, s)] = {
                    "accuracy": float(np.mean([m[key] for m in members])),
                    "trained": k, "seeds": len(members), "trainable": k > len(members) / 2}
    return out


def xi(activation: str, sigma_w: float, sigma_b: float = 0.0) -> float:
    """The depth scale of ``sigma_w`` with biases N(0, sigma_b^2) (:func:`theory.depth_scale`)."""
    return theory.depth_scale(activation, sigma_w, sigma_b2=sigma_b * sigma_b)


def critical(activation: str, sigma_b: float = 0.0) -> float:
    """The critical sigma_w (xi infinite): 1 for tanh and sqrt 2 for ReLU without biases."""
    if not sigma_b:
        return CRITICAL[activation]
    return theory.critical_sigma_w(activation, sigma_b2=sigma_b * sigma_b)


def side(activation: str, sigma_w: float, sigma_b: float = 0.0) -> str | None:
    """The side of criticality sigma_w is on; None at criticality (xi infinite) or without theory."""
    if activation not in CRITICAL or math.isinf(xi(activation, sigma_w, sigma_b)):
        return None
    return SIDES[activation][int(sigma_w > critical(activation, sigma_b))]


def tests(activation: str, name: str, sigma_b: float) -> str:
    """What a side's fitted c tests; with biases tanh's ordered phase has q* > 0, and xi is the
    correlation length xi_c = -1 / ln chi_1 there: Schoenholz et al.'s 6 xi_c on both sides."""
    if sigma_b and activation == "tanh":
        return ("Schoenholz et al.'s 6 xi_c: with biases N(0, sigma_b^2) q* > 0 on both sides, and "
                "xi is the correlation length xi_c = -1 / ln chi_c, the scale their edge is stated in")
    return TESTS[(activation, name)]


def accuracy_key(cells: Cells, phase: PhaseConfig) -> str:
    """The grid's measure: the training accuracy on every training image after the last update
    where the cells have it (a step budget: Schoenholz et al.'s measure), else test accuracy."""
    first = cells[cell_name(phase.depths[0], phase.activations[0], "phase")]["members"]
    return "train_accuracy" if first and "train_accuracy" in first[0] else "test_accuracy"


def fits(cells: Cells, phase: PhaseConfig, confidence: float = CONFIDENCE
         ) -> dict[str, dict[str, phase_fit.Fit]]:
    """activation -> side -> the fitted c of "depth L trains iff L < c xi(sigma_w)"."""
    g = grid(cells, phase)
    out: dict[str, dict[str, phase_fit.Fit]] = {}
    for act in (a for a in phase.activations if a in CRITICAL):
        for name in SIDES[act]:
            keys = [(a, d, s) for (a, d, s) in g if a == act and side(a, s, phase.sigma_b) == name]
            out.setdefault(act, {})[name] = phase_fit.fit(
                [d / xi(a, s, phase.sigma_b) for a, d, s in keys], [g[k]["trained"] for k in keys],
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
    sig = [s for s in phase.sigma_w if side(act, s, phase.sigma_b) == name]
    if f.points == 0:
        return f"untested: no grid point on the {name} side"
    if not f.contains(EDGE):
        return f"excludes 6 xi: {_estimate(f)}"
    if f.low > EDGE / 2 and f.high < 2 * EDGE:
        return f"consistent with 6 xi: {_estimate(f)}, which excludes 3 xi and 12 xi"
    also = " and ".join(f"{c:g} xi" for c in (EDGE / 2, 2 * EDGE) if f.contains(c))
    scale = {s: xi(act, s, phase.sigma_b) for s in sig}
    if f.trained == f.runs:  # the edge lies beyond the deepest point: go deeper where xi is least
        s = min(scale, key=scale.get)
        need = (f"no run failed, so deeper nets (depth >= {math.ceil(2 * EDGE * scale[s])} "
                f"at sigma_w {s:g})")
    elif f.trained == 0:  # every run failed: go shallower where xi is largest
        s = max(scale, key=scale.get)
        need = (f"every run failed, so shallower nets (depth <= {math.floor(EDGE / 2 * scale[s])} "
                f"at sigma_w {s:g})")
    else:  # more runs where depth / xi lies inside the interval
        mid = math.sqrt(min(phase.depths) * max(phase.depths)) / EDGE
        s = min(scale, key=lambda t: abs(math.log(scale[t] / mid)))
        lo, hi = max(f.low, EDGE / 2) * scale[s], min(f.high, 2 * EDGE) * scale[s]
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
        "sigma_w": [s for s in phase.sigma_w if side(act, s, phase.sigma_b) == name], "c": finite(f.c),
        "low": f.low, "high": finite(f.high), "confidence": f.confidence, "points": f.points,
        "runs": f.runs, "trained": f.trained, "contains_6": f.contains(EDGE), "estimate": _estimate(f),
        "verdict": verdict(f, act, name, phase), "tests": tests(act, name, phase.sigma_b)}
        for name, f in by_side.items()} for act, by_side in fits(cells, phase, confidence).items()}


def answer(res: dict[str, Any]) -> str:
    """One sentence for the report's Answer: each side's fitted trainable depth, in units of xi."""
    parts = [f"{act} {name} side: {r['verdict']}" for act, sides in res.items()
             for name, r in sides.items()]
    theirs = [f"{act}'s {name}" for act, sides in res.items() for name, r in sides.items()
              if r["tests"].startswith("Schoenholz")]
    where = " and ".join(theirs) + " side" + ("s" if len(theirs) > 1 else "") if theirs else (
        "a side where xi is the correlation length (none here)")
    return ("the deepest trainable net, as c x the theory's depth scale xi (Schoenholz et al. "
            f"2017 predict c = 6 on {where}): " + "; ".join(parts) + ".")


def measure_name(cells: Cells, phase: PhaseConfig) -> str:
    return ("training accuracy after the last update, on the training and validation splits "
            "(every training image)" if accuracy_key(cells, phase) == "train_accuracy"
            else "test accuracy")


def biases_text(phase: PhaseConfig) -> str:
    return f"N(0, {phase.sigma_b ** 2:.3g})" if phase.sigma_b else "zero"


def markdown(cells: Cells, phase: PhaseConfig, figure: str, confidence: float = CONFIDENCE
             ) -> list[str]:
    g, measure = grid(cells, phase), measure_name(cells, phase)
    edges = "; ".join(f"{a}: sigma_w = {critical(a, phase.sigma_b):.3g}" for a in phase.activations
                      if a in CRITICAL)
    budget = (f"exactly {phase.steps} updates" if phase.steps is not None
              else f"{phase.epochs} epochs")
    lines = [
        f"Plain MLPs of width {phase.width} (depth: hidden layers; Dense layers = depth + 1), "
        f"weights N(0, sigma_w^2 / {phase.mode}) in every layer, biases {biases_text(phase)}; "
        f"{phase.optimizer} lr {phase.learning_rate} momentum {phase.momentum}, batch "
        f"{phase.batch_size}, {budget}, {phase.seeds} seed{'s' if phase.seeds > 1 else ''}. "
        f"Colour and number: mean {measure}; a point is *trainable* when more than half of its "
        "seeds trained (above chance). Dashed: depth = 6 xi, the trainability edge of "
        "Schoenholz et al. (2017); solid and shaded: the fitted c xi and its interval, per side "
        f"of criticality ({edges}).",
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
        lines += ["", f"**{act}**: {measure} % (seeds trained / seeds)", "",
                  "| depth | " + " | ".join(f"{s:g}" for s in phase.sigma_w) + " |",
                  "|---:|" + "---:|" * len(phase.sigma_w)]
        for d in phase.depths:
            lines.append(f"| {d} | " + " | ".join(
                f"{100 * g[(act, d, s)]['accuracy']:.1f} ({g[(act, d, s)]['trained']}/"
                f"{g[(act, d, s)]['seeds']})" for s in phase.sigma_w) + " |")
    return lines
