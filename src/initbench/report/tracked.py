"""The pipeline cell's results as small files git tracks (``reports/`` is ``cache: false``), so a
fresh clone shows them in ``dvc metrics show``, ``dvc exp show`` and ``dvc plots show`` without a
DVC remote:

* ``metrics.json``: per initializer, the mean over seeds of the test accuracy (and its sd), test
  loss, best validation accuracy, first epoch at >= 97% validation accuracy, diverged seeds;
* ``curves.csv``: per initializer and epoch, the mean curves (one DVC plot overlays them all);
* ``confusion.csv``: one (actual, predicted) row per test image of the best initializer's first
  seed, for DVC's ``confusion`` template.

The full per-model results stay in ``data/train/<cell>/`` (DVC-cached).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from initbench.results import CURVE_KEYS, by_label, initializer_summary, mean_curve

METRIC_KEYS = ("test_accuracy", "test_accuracy_sd", "test_loss", "best_val_accuracy",
               "epochs_to_val_97", "diverged", "seeds")


def write(cell: dict[str, Any], out_dir: Path) -> str:
    """Write the three files for the pipeline cell into ``out_dir``; return the best label."""
    groups = by_label(cell["members"])
    summaries = {label: initializer_summary(ms) for label, ms in groups.items()}
    metrics = {label: {k: s[k] for k in METRIC_KEYS} for label, s in summaries.items()}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    with (out_dir / "curves.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["initializer", "epoch", *CURVE_KEYS])
        writer.writeheader()
        writer.writerows({"initializer": label, **row}
                         for label, ms in groups.items() for row in mean_curve(ms))
    best = max(summaries, key=lambda label: summaries[label]["test_accuracy"])
    first = min(groups[best], key=lambda m: m["seed_index"])
    with (out_dir / "confusion.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["actual", "predicted"])
        for actual, row in enumerate(first["confusion"]):
            for predicted, count in enumerate(row):
                writer.writerows([(actual, predicted)] * count)
    return best
