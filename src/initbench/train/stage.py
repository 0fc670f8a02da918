"""The ``train`` stage: train, test and record one cell (see :meth:`initbench.config.Params.cells`).

Writes two directories, each in one atomic step. ``data/train/<cell>/``: ``results.json`` (every
model: curves, test loss/accuracy/per-class accuracy/confusion matrix, per-layer diagnostics),
``metrics/<label>.json`` and ``curves/<label>.csv`` per initializer (DVC metrics and plots) -- a
pure function of params, data and code, so a forced rerun leaves the report up to date.
``data/runs/<cell>/``: ``runs.json`` (each model's MLflow run id, wall times) and, for the
pipeline's cell on each dataset, ``models/<label>/s<i>.keras`` per seed (ordinary Keras models,
compiled with the cell's optimizer). Every model has its own MLflow run
(:mod:`initbench.modelruns`, deliberately not a dependency of this stage); if the store fails
mid-training, training goes on and both directories are written: the failure is one warning line
and ``runs.json`` records it. What these files hold, and a cell with no model (written without
TensorFlow or an MLflow run): :mod:`initbench.train.records`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import mlflow

from initbench import modelruns, tracking
from initbench.config import CellConfig, Params
from initbench.paths import MODELS_DIR, sha256_file, stage_of_cell
from initbench.train.cell import Member, plan, train_cell
from initbench.train.model import compile_model, initializer_params
from initbench.train.records import cell_data, cell_outputs, cell_params, cell_results, write_records
from initbench.train.schedule import steps_per_epoch


def model_path(member: Member) -> str:
    """Where a baseline model is saved, relative to the cell's runs directory."""
    return f"{MODELS_DIR}/{member.label}/s{member.seed_index}.keras"


def save_model(cell: CellConfig, runs_dir: Path, n_train: int) -> Callable[[Member, keras.Model], str]:
    """The baseline cell's saver: ``runs_dir/models/<label>/s<i>.keras``, compiled as fit would."""
    def save(m: Member, model: keras.Model) -> str:
        # Saved with its optimizer config (rate, schedule, weight decay), like fit would.
        compile_model(model, cell.train, steps_per_epoch(n_train, cell.train.batch_size),
                      m.learning_rate)
        model.optimizer.build(model.trainable_variables)  # its slots exist: the file reloads clean
        path = runs_dir / model_path(m)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        return model_path(m)
    return save


def tracker(params: Params, cell: CellConfig, data: dict[str, Any], data_npz: Path, root: Path,
            parent: str, exp: str, save: Callable[[Member, keras.Model], str] | None,
            tags: dict[str, str] | None = None) -> modelruns.ModelRuns:
    """The MLflow runs of a cell's models -- the one setup the train stage and ``initbench log``
    share: the params every model logs, provenance tags, the dataset input, the input example."""
    data_sha = sha256_file(data_npz)
    dataset = modelruns.dataset_input(data["x_train"], data["y_train"], data_npz,
                                      f"{cell.dataset}-train", data_sha)
    return modelruns.ModelRuns(
        cell.name, cell_params(params, cell, len(data["y_train"])),
        {**tracking.provenance_tags(root, stage_of_cell(cell.name), data_sha), **(tags or {})},
        parent, exp, data["x_val"][:5], dataset,
        member_params=lambda m: {**initializer_params(m.spec, cell.model, m.init_seed),
                                 "seed_index": m.seed_index, "init_seed": m.init_seed,
                                 "data_seed": m.data_seed, "train.learning_rate": m.learning_rate},
        save=save)


def run_cell(params: Params, cell_name: str, data_npz: Path, out_dir: Path, runs_dir: Path,
             root: Path) -> dict[str, Any]:
    """Run the stage for one cell; return what was written to results.json and runs.json."""
    cell = params.cell(cell_name)
    with cell_outputs(out_dir, runs_dir) as (tmp, runs_tmp):
        # Before any training: a store that is down fails in seconds (the outputs are checked).
        tracking.use_project_store()
        data = cell_data(params, cell, data_npz)
        members = plan(cell, params.train.seed, params.study.vary_data_order)
        print(f"{cell.name}: {len(cell.initializers)} initializers ({', '.join(cell.initializers)}) x "
              f"{cell.seeds} seeds = {len(members)} models, {cell.train.epochs} epochs each, on "
              f"{len(data['y_train'])} images; writes {out_dir} and {runs_dir}; MLflow: "
              f"{mlflow.get_tracking_uri()}, experiment {params.experiment!r}")
        with tracking.parent_run(params.experiment, root) as (parent, exp):
            save = save_model(cell, runs_tmp, len(data["y_train"])) if cell.save_models else None
            with tracker(params, cell, data, data_npz, root, parent, exp, save) as runs:
                members_out, timing = train_cell(cell, members, data, params.study.diagnostics_batch,
                                                 runs)
            results = cell_results(params, cell, len(data["y_train"]), members_out)
            record = {"cell": cell.name, "parent_run_id": parent, "tracking_error": runs.error,
                      "timing": timing, "runs": runs.records}
            write_records(tmp, runs_tmp, results, record)
    return {**results, **record}
