"""Optimization strategies against initialization: does a better optimizer setting make the
initializer matter less?

The depth study's cell at ``study.strategies``' depth and activation is the *plain* setting; each
variant retrains it (same initializers, seeds, initial weights and data order) with some training
settings replaced (see :mod:`initbench.config.strategies`). Per setting the section gives every
initializer's success rate and accuracy, and how much the initializer matters: how many
initializers fail in some seed, how many are detectably below the reference (the cell's paired,
Bonferroni-adjusted verdicts), and the range of the mean accuracies of the initializers that
trained in every seed. "Matters less" is claimed for a variant only where it has fewer failures
and fewer detectably worse initializers than the plain setting, never from the range alone (a
range over a few seeds' means is mostly noise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from initbench.config import StrategiesConfig
from initbench.paths import cell_name
from initbench.report.stats import bounded_interval
from initbench.report.tables import outcome, pct
from initbench.results import by_label


def settings(s: StrategiesConfig) -> dict[str, str]:
    """name -> cell, the plain setting (the depth study's cell) first."""
    return {"plain": cell_name(s.depth, s.activation),
            **{name: f"strategy-{name}" for name in s.variants}}


def matters(cell: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """How much the initializer matters in one cell: failures, detectably worse, range (pp)."""
    inits = summary["initializers"]
    failed = [k for k, v in inits.items() if v["trained"] < v["seeds"]]
    worse = [k for k, v in inits.items() if v["vs_reference"] == "lower accuracy"]
    means = [v["mean"] for k, v in inits.items() if k not in failed]
    spread = 100 * (max(means) - min(means)) if len(means) > 1 else float("nan")
    return {"failed": failed, "worse": worse, "range_pp": spread}


def markdown(cells: Mapping[str, dict[str, Any]], summary: Mapping[str, dict[str, Any]],
             s: StrategiesConfig, describe: Mapping[str, str], confidence: float) -> list[str]:
    """``describe``: setting name -> what it changes (e.g. ``momentum 0.0``)."""
    named = settings(s)
    lines = [
        "| initializer | " + " | ".join(f"{n}: trained | {n}: test %" for n in named) + " |",
        "|---|" + "---:|---:|" * len(named),
    ]
    groups = {n: by_label(cells[c]["members"]) for n, c in named.items()}
    for label in groups["plain"]:
        row = []
        for n in named:
            members = groups[n][label]
            ok = [m["test_accuracy"] for m in members if outcome(m) == "ok"]
            row += [f"{len(ok)}/{len(members)}", pct(bounded_interval(ok, confidence))]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    how = {n: matters(cells[c], summary[c]) for n, c in named.items()}
    ref = summary[named["plain"]]["reference"]
    lines += ["", f"How much the initializer matters (reference {ref}; {confidence:.0%} "
              "Bonferroni-adjusted paired verdicts as in each cell's table):", ""]
    for n in named:
        h = how[n]
        lines.append(f"- **{n}** ({describe[n]}): failed in some seed: "
                     f"{', '.join(h['failed']) or 'none'}; detectably below {ref}: "
                     f"{', '.join(h['worse']) or 'none'}; range of the mean accuracies of the "
                     f"rest: {h['range_pp']:.2f} pp.")
    for n in list(named)[1:]:
        lines.append(f"- {n} vs plain: {compare(how['plain'], how[n])}.")
    return lines


def compare(plain: dict[str, Any], variant: dict[str, Any]) -> str:
    """Whether the initializer matters less or more under a variant: an initializer is *hurt*
    when it fails in some seed or is detectably below the reference; fewer hurt (and no more
    failures) is less, more hurt (or as many, with more of them failing) is more."""
    def hurt(h: dict[str, Any]) -> int:
        return len(set(h["failed"]) | set(h["worse"]))

    counts = (f"hurt {hurt(plain)} -> {hurt(variant)}, of which failing in some seed "
              f"{len(plain['failed'])} -> {len(variant['failed'])}")
    fails = len(variant["failed"]) - len(plain["failed"])
    if hurt(variant) < hurt(plain) and fails <= 0:
        return f"the initializer matters **less** than in the plain setting ({counts})"
    if hurt(variant) > hurt(plain) or (hurt(variant) == hurt(plain) and fails > 0):
        return f"the initializer matters **more** than in the plain setting ({counts})"
    if hurt(variant) == hurt(plain) and fails == 0:
        return f"no change in how much the initializer matters ({counts})"
    return f"mixed: fewer initializers hurt, but more of them fail ({counts})"


def describe(s: StrategiesConfig, plain: Mapping[str, Any]) -> dict[str, str]:
    """What each setting changes relative to the plain one (``plain``: study.depth's settings)."""
    out = {"plain": ", ".join(f"{k} {v}" for k, v in plain.items()
                              if k in ("optimizer", "learning_rate", "momentum"))}
    for name, v in s.variants.items():
        changed = {k: x for k, x in v.training().items() if x != plain[k]}
        out[name] = ", ".join(f"{k} {x}" for k, x in changed.items())
    return out
