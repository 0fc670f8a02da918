"""What the train stage records for a cell, without TensorFlow or MLflow.

The params every model of a cell logs (one schema for every cell), the arrays it trains on, and
its two output directories (``data/train/<cell>/``, ``data/runs/<cell>/``; formats in
:mod:`initbench.results`), each written in one atomic step. A cell with no model -- the
learning-rate sweep when ``study.lr_sweep`` lists no other rate, a ``study.datasets`` cell of
``data.dataset`` -- is written here alone: the same two directories with no member and no MLflow
run, in a second instead of a TensorFlow start-up (:mod:`initbench.train.stage` trains the rest).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from initbench.config import CellConfig, Params
from initbench.data import processed
from initbench.paths import CELL_FILES, RUN_FILES, RUNS_FILE, atomic_output
from initbench.results import write_cell


def cell_params(params: Params, cell: CellConfig, n_train: int) -> dict[str, Any]:
    """The MLflow params every model of a cell shares (the same keys in every cell)."""
    out: dict[str, Any] = {"cell": cell.name, "n_train": n_train}
    out.update({f"data.{k}": v for k, v in dataclasses.asdict(params.data).items()})
    out["data.dataset"] = cell.dataset  # a study.datasets cell reads another dataset
    out.update(cell.model.params())
    out["model.sigma_b"] = cell.sigma_b  # biases N(0, sigma_b^2) unless the initializer draws them
    # train.seed is the cell's base seed, not a model's: each model logs init_seed and data_seed.
    out.update({f"train.{k}": v for k, v in dataclasses.asdict(cell.train).items() if k != "seed"})
    out["study.vary_data_order"] = params.study.vary_data_order
    return out


def cell_data(params: Params, cell: CellConfig, data_npz: Path) -> dict[str, Any]:
    """The processed arrays a cell trains on (its stratified training subset, if any)."""
    data = processed.load(data_npz)
    data["x_train"], data["y_train"] = processed.stratified_subset(
        data["x_train"], data["y_train"], cell.train_limit, params.data.split_seed)
    return data


def empty_timing() -> dict[str, Any]:
    """The wall-time record of a cell before (or without) any training."""
    return {"train_seconds": 0.0, "diagnostics_seconds": 0.0, "test_seconds": 0.0,
            "model_epochs": 0, "n_params": 0, "stacks": []}


def cell_results(params: Params, cell: CellConfig, n_train: int,
                 members: list[dict[str, Any]]) -> dict[str, Any]:
    """The content of the cell's results.json."""
    depth = (cell.model.n_layers - 1 if cell.name.startswith(("depth-", "phase-", "conv-"))
             else None)
    return {"cell": cell.name, "activation": cell.model.activation, "depth": depth,
            "config": cell_params(params, cell, n_train), "members": members}


@contextmanager
def cell_outputs(out_dir: Path, runs_dir: Path) -> Iterator[tuple[Path, Path]]:
    """Fresh (results, runs) directories that replace ``out_dir`` and ``runs_dir`` when the block
    succeeds; both are checked (:func:`atomic_output`) before any work, and nothing half-written
    is ever left."""
    with atomic_output(out_dir, CELL_FILES) as tmp, atomic_output(runs_dir, RUN_FILES) as runs_tmp:
        tmp.mkdir()
        runs_tmp.mkdir()
        yield tmp, runs_tmp


def write_records(tmp: Path, runs_tmp: Path, results: dict[str, Any], record: dict[str, Any]) -> None:
    """results.json with its metrics and curves, and runs.json (run ids, wall times)."""
    write_cell(tmp, results)
    (runs_tmp / RUNS_FILE).write_text(json.dumps(record, indent=1) + "\n")


def run_empty_cell(params: Params, cell_name: str, data_npz: Path, out_dir: Path,
                   runs_dir: Path) -> dict[str, Any]:
    """The train stage for a cell with no model (see the module docstring)."""
    cell = params.cell(cell_name)
    if cell.initializers:
        raise ValueError(f"cell {cell_name!r} has models to train: use initbench.train.stage")
    with cell_outputs(out_dir, runs_dir) as (tmp, runs_tmp):
        results = cell_results(params, cell, len(cell_data(params, cell, data_npz)["y_train"]), [])
        record = {"cell": cell.name, "parent_run_id": None, "tracking_error": None,
                  "timing": empty_timing(), "runs": []}
        write_records(tmp, runs_tmp, results, record)
    print(f"{cell.name}: no model to train (no initializer in this cell); no MLflow run")
    return {**results, **record}
