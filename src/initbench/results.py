"""The files a cell writes and the report reads: their formats, in one leaf module.

``data/train/<cell>/results.json`` holds every model of the cell (curves, test metrics, confusion
matrix, per-layer diagnostics; no wall time or run id, so a rerun writes the same bytes);
``metrics/<label>.json`` and ``curves/<label>.csv`` summarise each initializer over its seeds for
``dvc metrics`` and ``dvc plots``. Nothing here imports TensorFlow or MLflow.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from initbench.paths import CURVES_DIR, METRICS_DIR, RESULTS_FILE

# Per-layer signal statistics (initbench.train.diagnostics computes them, the report plots them).
STATS = ("pre_mean", "pre_std", "act_mean", "act_std", "dead_fraction", "grad_norm", "kernel_std")
CURVE_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
TARGET_VAL_ACCURACY = 0.97


def epochs_to_reach(values: Sequence[float], target: float = TARGET_VAL_ACCURACY) -> int | None:
    """First (1-based) epoch whose value is >= target, or None."""
    return next((i + 1 for i, v in enumerate(values) if v >= target), None)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def initializer_summary(members: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One initializer's models (its seeds) -> the DVC metrics of ``metrics/<label>.json``."""
    reached = [epochs_to_reach([r["val_accuracy"] for r in m["history"]]) for m in members]
    acc = [m["test_accuracy"] for m in members]
    mean = _mean(acc)
    sd = (math.sqrt(sum((a - mean) ** 2 for a in acc) / (len(acc) - 1)) if len(acc) > 1 else None)
    return {
        "initializer": members[0]["initializer"],
        "seeds": len(members),
        "test_accuracy": mean,
        "test_accuracy_sd": sd,
        "test_loss": _mean([m["test_loss"] for m in members]),
        "best_val_accuracy": _mean([max(r["val_accuracy"] for r in m["history"]) for m in members]),
        "final_val_accuracy": _mean([m["history"][-1]["val_accuracy"] for m in members]),
        # Mean over the seeds when every seed reached it; null when one did not.
        "epochs_to_val_97": None if None in reached else sum(reached) / len(reached),
        "diverged": sum(bool(m["diverged"]) for m in members),
    }


def mean_curve(members: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """Per-epoch means over an initializer's seeds (the seed's own curve when there is one)."""
    rows = []
    for epoch, group in enumerate(zip(*(m["history"] for m in members), strict=True), start=1):
        rows.append({"epoch": epoch, **{k: _mean([r[k] for r in group]) for k in CURVE_KEYS}})
    return rows


def by_label(members: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in members:
        out.setdefault(m["label"], []).append(m)
    return out


def write_cell(out_dir: Path, cell: dict[str, Any]) -> None:
    """Write results.json, metrics/<label>.json and curves/<label>.csv of a cell into out_dir."""
    (out_dir / METRICS_DIR).mkdir(parents=True, exist_ok=True)
    (out_dir / CURVES_DIR).mkdir(exist_ok=True)
    for label, members in by_label(cell["members"]).items():
        summary = initializer_summary(members)
        (out_dir / METRICS_DIR / f"{label}.json").write_text(json.dumps(summary, indent=2) + "\n")
        write_curve(out_dir / CURVES_DIR / f"{label}.csv", mean_curve(members))
    (out_dir / RESULTS_FILE).write_text(json.dumps(cell) + "\n")


def write_curve(path: Path, rows: Sequence[dict[str, float]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_cell(cell_dir: Path) -> dict[str, Any]:
    """A cell's results.json, with a clear error when the cell has not been trained."""
    path = cell_dir / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: train cell {cell_dir.name!r} first "
                                f"(dvc repro)")
    return json.loads(path.read_text())
