"""The study's signal-propagation diagnostics as DVC plots: one CSV per (statistic, cell).

``reports/diagnostics/<stat>/<cell>.csv`` holds, for every initializer, layer and epoch (0 = at
initialization), the statistic's mean over seeds. ``dvc.yaml`` declares each ``<stat>`` folder
as plots with the templates in ``.dvc/plots/`` (x: layer, y: the statistic, one line per
initializer, one panel per epoch), so ``dvc plots show`` -- or ``dvc plots diff`` between two
experiments -- draws how each initializer's signal grows, shrinks or dies through the layers
(Glorot & Bengio 2010; He et al. 2015). The per-model values are in the MLflow runs.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from initbench.results import STATS

# Statistics that span orders of magnitude (they collapse or explode with depth): log-scale plots.
LOG_SCALE = ("pre_std", "act_std", "grad_norm", "kernel_std")


def rows(cell: dict[str, Any], stat: str) -> list[dict[str, Any]]:
    """(initializer, layer, epoch, mean over seeds) rows of one statistic of one study cell.

    Layers are numbered from 1 (first hidden layer) to the output layer; a value that is NaN or
    infinite in every seed (e.g. dead_fraction of the softmax layer) is left out.
    """
    groups: dict[tuple[str, int, int], list[float]] = {}
    for member in cell["members"]:
        for epoch, layers in enumerate(member["diagnostics"][stat]):
            for layer, value in enumerate(layers, start=1):
                groups.setdefault((member["label"], layer, epoch), []).append(float(value))
    out = []
    for (label, layer, epoch), values in groups.items():
        finite = [v for v in values if math.isfinite(v)]
        if finite:
            out.append({"initializer": label, "layer": layer, "epoch": epoch,
                        stat: sum(finite) / len(finite), "seeds": len(finite)})
    return out


def write(cells: dict[str, dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write ``out_dir/<stat>/<cell>.csv`` for every statistic and cell; return the paths."""
    written = []
    for stat in STATS:
        folder = out_dir / stat
        folder.mkdir(parents=True, exist_ok=True)
        for name, cell in cells.items():
            path = folder / f"{name}.csv"
            with path.open("w", newline="") as f:
                writer = csv.DictWriter(f, ["initializer", "layer", "epoch", stat, "seeds"])
                writer.writeheader()
                writer.writerows(rows(cell, stat))
            written.append(path)
    return written
