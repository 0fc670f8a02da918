"""Each initializer at its best learning rate as well as at the shared one.

One learning rate for every initializer confounds the initial scale with the step size: an
initializer whose scale wants a smaller or larger step looks worse at the shared rate than it is.
The ``lr_sweep`` cell trains every initializer of the pipeline's cell at the other rates of
``study.lr_sweep`` for its first ``seeds`` seeds, from the same initial weights and data order as
the pipeline's models of those seeds, so results pair by seed across rates. The best rate is
chosen per initializer by mean final *validation* accuracy (never by test accuracy); the report
gives test accuracy at the shared and at the best rate over the same seeds, and their paired
difference. The rate grid is coarse (a factor ~3 apart): "best" means best of these rates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initbench.config import LrSweepConfig, sweep_label
from initbench.report.stats import bounded_interval, paired_difference
from initbench.report.tables import pct
from initbench.results import by_label

Runs = dict[float, dict[int, dict[str, Any]]]  # learning rate -> seed index -> member


def runs_by_rate(baseline: dict[str, Any], sweep_cell: dict[str, Any], shared: float,
                 sweep: LrSweepConfig) -> dict[str, Runs]:
    """label -> rate -> seed -> its model's results, over the sweep's seeds (shared rate: the
    pipeline cell's own models of those seeds)."""
    base, swept = by_label(baseline["members"]), by_label(sweep_cell["members"])
    seeds = {m["seed_index"] for m in sweep_cell["members"]}
    out: dict[str, Runs] = {}
    for label, members in base.items():
        rates: Runs = {shared: {m["seed_index"]: m for m in members if m["seed_index"] in seeds}}
        for lr in sweep.others(shared):
            rates[lr] = {m["seed_index"]: m for m in swept[sweep_label(label, lr)]}
        out[label] = dict(sorted(rates.items()))
    return out


def _val(runs: dict[int, dict[str, Any]]) -> float:
    values = [m["history"][-1]["val_accuracy"] for m in runs.values()]
    values = [v for v in values if math.isfinite(v)]
    return float(np.mean(values)) if values else -math.inf


def best_rate(rates: Runs) -> float:
    """The rate with the highest mean final validation accuracy (ties: the smaller rate)."""
    return max(rates, key=lambda lr: (_val(rates[lr]), -lr))


def markdown(baseline: dict[str, Any], sweep_cell: dict[str, Any], shared: float,
             sweep: LrSweepConfig, confidence: float) -> list[str]:
    table = runs_by_rate(baseline, sweep_cell, shared, sweep)
    rates = list(next(iter(table.values())))
    last = max(next(iter(table.values()))[shared])
    lines = [
        f"Every initializer at learning rates {', '.join(f'{r:g}' for r in rates)} (shared: "
        f"{shared:g}), seeds 0-{last}, paired by seed (same initial weights and data "
        "order at every rate). Best rate: highest mean final validation accuracy; test accuracy "
        f"in % with {confidence:.0%} t intervals over the seeds.", "",
        "| initializer | " + " | ".join(f"val % at {r:g}" for r in rates)
        + " | best rate | test % at shared | test % at best | best - shared (pp) |",
        "|---|" + "---:|" * (len(rates) + 4),
    ]
    shared_acc, best_acc = {}, {}
    for label, by_rate in table.items():
        best = best_rate(by_rate)
        test = {lr: {s: m["test_accuracy"] for s, m in runs.items()} for lr, runs in by_rate.items()}
        shared_acc[label] = float(np.mean(list(test[shared].values())))
        best_acc[label] = float(np.mean(list(test[best].values())))
        diff = paired_difference(test[best], test[shared], confidence)
        at_shared = bounded_interval(list(test[shared].values()), confidence)
        at_best = bounded_interval(list(test[best].values()), confidence)
        gain = "0 (the shared rate)" if best == shared else pct(diff)
        lines.append(f"| {label} | " + " | ".join(f"{100 * _val(by_rate[r]):.2f}" for r in rates)
                     + f" | {best:g} | {pct(at_shared)} | {pct(at_best)} | {gain} |")
    order_shared = sorted(shared_acc, key=lambda k: -shared_acc[k])
    order_best = sorted(best_acc, key=lambda k: -best_acc[k])
    lines += ["", f"Ranking by mean test accuracy at the shared rate: {', '.join(order_shared)}; "
              f"each at its best rate: {', '.join(order_best)}. "
              + ("The leader is the same." if order_shared[0] == order_best[0] else
                 f"The leader changes ({order_shared[0]} -> {order_best[0]}).")
              + " Rankings are means over few seeds: read them with the intervals above."]
    return lines
