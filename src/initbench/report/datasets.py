"""The pipeline's cell on every dataset of the study: do its conclusions hold beyond one dataset?

Each further dataset of ``study.datasets`` trains the pipeline's model, optimizer and initializers
for the first seeds of ``study.seeds`` (the ``dataset-<name>`` cells); every cell gets the same
statistics (:func:`initbench.report.tables.cell_table`). Here the verdicts against the reference
are set side by side. Two verdicts *contradict* when one dataset finds a difference and the other
finds the opposite one or equivalence; *inconclusive* contradicts nothing (it is the absence of
evidence). Time to target is dataset-relative: the first epoch at which a run's validation
accuracy reaches 99% of the best initializer's mean final validation accuracy on that dataset
(MNIST and Fashion-MNIST differ by about 10 pp, so one fixed target would say nothing on one of
them); the mean over the runs that trained, when all of them reached it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from initbench.report.stats import Interval
from initbench.report.tables import outcome, pct
from initbench.results import by_label, epochs_to_reach

TARGET_FRACTION = 0.99
DIFFERENCES = ("higher accuracy", "lower accuracy")


def contradicts(a: str, b: str) -> bool:
    """Whether two verdicts on the same comparison cannot both be right."""
    found = {a, b} & set(DIFFERENCES)
    return bool(found) and a != b and "inconclusive" not in (a, b) and (
        len(found) == 2 or "equivalent" in (a, b))


def time_to_target(cell: dict[str, Any]) -> tuple[float, dict[str, str]]:
    """(target, label -> epochs to it), over each initializer's runs that trained."""
    runs = {label: [m for m in ms if outcome(m) == "ok"] for label, ms in by_label(cell["members"]).items()}
    finals = [np.mean([m["history"][-1]["val_accuracy"] for m in ms]) for ms in runs.values() if ms]
    target = TARGET_FRACTION * max(finals) if finals else math.nan
    out = {}
    for label, ms in runs.items():
        reached = [epochs_to_reach([r["val_accuracy"] for r in m["history"]], target) for m in ms]
        if not ms:
            out[label] = "no run trained"
        elif None in reached:
            out[label] = f"{len(ms) - reached.count(None)}/{len(ms)} reached"
        else:
            out[label] = f"{np.mean(reached):.2g}"
    return target, out


def markdown(cells: Mapping[str, dict[str, Any]], summary: Mapping[str, dict[str, Any]],
             names: Mapping[str, str], confidence: float, figure: str) -> list[str]:
    """The side-by-side table and the agreement of the verdicts; ``names``: cell -> dataset."""
    targets = {cell: time_to_target(cells[cell]) for cell in names}
    ref = {summary[cell]["reference"] for cell in names}
    lines = [
        "Test accuracy % of the runs that trained (mean [" + f"{confidence:.0%}" + " CI]), the "
        f"verdict against {', '.join(sorted(ref))} (paired by seed, Bonferroni-adjusted, as in each "
        "cell's table) and the epochs to a dataset-relative target (99% of the best initializer's "
        "mean final validation accuracy: "
        + ", ".join(f"{d} {100 * targets[c][0]:.2f}%" for c, d in names.items()) + ").", "",
        "| initializer | " + " | ".join(f"{d}: test % | {d}: verdict | {d}: epochs to target"
                                         for d in names.values()) + " |",
        "|---|" + "---:|---|---:|" * len(names),
    ]
    labels = list(summary[next(iter(names))]["initializers"])
    agree, contradict = [], []
    for label in labels:
        row, verdicts = [], []
        for cell in names:
            s = summary[cell]["initializers"][label]
            words = "reference" if label == summary[cell]["reference"] else s["vs_reference"]
            verdicts.append(words)
            # The interval cell_table computed over the same runs (those that trained).
            iv = Interval(s["mean"], s["sd"], s["low"], s["high"], s["n"], s["interval"])
            row += [pct(iv), words, targets[cell][1][label]]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
        if "reference" in verdicts:
            continue
        pairs = [(a, b) for i, a in enumerate(verdicts) for b in verdicts[i + 1:]]
        if any(contradicts(a, b) for a, b in pairs):
            said = zip(names.values(), verdicts, strict=True)
            contradict.append(f"{label} ({', '.join(f'{d}: {v}' for d, v in said)})")
        elif len(set(verdicts)) == 1 and verdicts[0] in ("equivalent", *DIFFERENCES):
            agree.append(f"{label} ({verdicts[0]})")
    lines += ["", f"Same verdict on every dataset: {', '.join(agree) or 'none'}. "
              f"Contradicting verdicts: {', '.join(contradict) or 'none'}. "
              "The rest are inconclusive on some dataset (not a contradiction, but not a "
              "replication either) or have no run that trained.", "",
              f"![paired differences per dataset]({figure})"]
    return lines
