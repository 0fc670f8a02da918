"""The ``train`` stage: train, test and record one cell (``baseline`` or a depth cell).

Writes two directories, each in one atomic step. ``data/train/<cell>/``: ``results.json`` (every
model: curves, test loss/accuracy/per-class accuracy/confusion matrix, per-layer diagnostics),
``metrics/<label>.json`` and ``curves/<label>.csv`` per initializer (DVC metrics and plots) -- a
pure function of params, data and code, so a forced rerun leaves the report up to date.
``data/runs/<cell>/``: ``runs.json`` (each model's MLflow run id, wall times) and, for the baseline
cell, ``models/<label>/s<i>.keras`` per seed (ordinary Keras models, compiled with the cell's
optimizer). Every model has its own MLflow run, a child of the pipeline's parent run,
created when its stack starts and ended when it is tested: parameters (one schema for every
cell), per-epoch curves as they happen, test metrics, diagnostics as ``diag.<stat>.L<layer>``
(step = epoch, 0 = at initialization) and as ``diagnostics.json``, and the baseline's models as
MLflow models with a signature. If the store fails mid-training, training goes on and both
directories are written: the failure is one warning line and ``runs.json`` records it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
import tensorflow as tf
from mlflow.entities import DatasetInput, InputTag, Metric
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from initbench import process, tracking
from initbench.config import CellConfig, Params
from initbench.data import processed
from initbench.paths import (
    CELL_FILES,
    MODELS_DIR,
    RUN_FILES,
    RUNS_FILE,
    atomic_output,
    check_output,
    sha256_file,
)
from initbench.results import write_cell
from initbench.train.cell import Member, plan, train_cell
from initbench.train.model import compile_model, initializer_params


def model_path(member: Member) -> str:
    """Where a baseline model is saved, relative to the cell's runs directory."""
    return f"{MODELS_DIR}/{member.label}/s{member.seed_index}.keras"


def cell_params(params: Params, cell: CellConfig, n_train: int) -> dict[str, Any]:
    """The MLflow params every model of a cell shares (the same keys in every cell)."""
    out: dict[str, Any] = {"cell": cell.name, "n_train": n_train}
    out.update({f"data.{k}": v for k, v in dataclasses.asdict(params.data).items()})
    out.update({"model.hidden": list(cell.model.hidden), "model.activation": cell.model.activation})
    # train.seed is the cell's base seed, not a model's: each model logs init_seed and data_seed.
    out.update({f"train.{k}": v for k, v in dataclasses.asdict(cell.train).items() if k != "seed"})
    out["study.vary_data_order"] = params.study.vary_data_order
    return out


class MlflowTracker:
    """One MLflow run per model, alive while its stack trains (see the module docstring).

    Every store write is shielded from interrupts (``process.shielded``). The first store failure
    ends the logging, not the training: it is printed once and kept in :attr:`error`.
    """

    def __init__(self, cell: CellConfig, base: dict[str, Any], tags: dict[str, str],
                 parent: str, exp_id: str, runs_dir: Path, sample: np.ndarray,
                 dataset: DatasetInput, log: Any = print) -> None:
        self.cell, self.base, self.tags, self.runs_dir = cell, base, tags, runs_dir
        self.parent, self.exp_id, self.sample, self.dataset = parent, exp_id, sample, dataset
        self.client, self.log = MlflowClient(), log
        self.signature: Any = None  # the same for every model of the cell: inferred once
        self.open: dict[tuple[str, int], str] = {}  # (label, seed index) -> run id, while training
        self.records: list[dict[str, Any]] = []  # per model: label, seed_index, run_id, model_file
        self.error: str | None = None

    @contextmanager
    def _store(self) -> Iterator[None]:
        with process.shielded():
            try:
                yield
            except tracking.STORE_ERRORS as err:
                self.error = " ".join(f"{type(err).__name__}: {err}".split())[:300]
                self.log(f"{self.cell.name}: warning: MLflow logging stopped ({self.error}); "
                         "training goes on and its results are written; once the store is back, "
                         "`dvc repro --force -s <this stage>` logs them (same numbers)")

    def start(self, stack: Sequence[Member]) -> None:
        for m in stack:
            if self.error:
                return
            with self._store():
                name = f"{self.cell.name}/{m.label}/s{m.seed_index}"
                run_id = self.client.create_run(self.exp_id, run_name=name, tags={
                    **self.tags, **tracking.owner_tag(), "mlflow.parentRunId": self.parent,
                    tracking.ROLE_TAG: "model", "initbench.cell": self.cell.name,
                    "initbench.label": m.label, "initbench.seed_index": str(m.seed_index),
                }).info.run_id
                self.open[m.label, m.seed_index] = run_id
                tracking.log_params(run_id, {
                    **self.base, **initializer_params(m.spec, self.cell.model, m.init_seed),
                    "seed_index": m.seed_index, "init_seed": m.init_seed, "data_seed": m.data_seed})
                self.client.log_inputs(run_id, datasets=[self.dataset])

    def epoch(self, stack: Sequence[Member], epoch: int, rows: Sequence[dict[str, float]]) -> None:
        for m, row in zip(stack, rows, strict=True):
            if (m.label, m.seed_index) in self.open and not self.error:
                with self._store():
                    tracking.log_metrics_batch(self.open[m.label, m.seed_index], epoch,
                                               {k: v for k, v in row.items() if k != "epoch"})

    def finish(self, stack: Sequence[Member], results: list[dict[str, Any]],
               models: list[keras.Model]) -> None:
        for m, r, model in zip(stack, results, models, strict=True):
            run_id = self.open.get((m.label, m.seed_index))
            record = {"label": m.label, "seed_index": m.seed_index, "run_id": run_id}
            if self.cell.save_models:  # on disk first: a store failure never loses a model
                record["model_file"] = self._save(m, model)
            self.records.append(record)
            if run_id is not None and not self.error:
                with self._store():
                    self._log(run_id, r, model, record.get("model_file"), m)
                    self.client.set_terminated(self.open.pop((m.label, m.seed_index)), "FINISHED")

    def _save(self, m: Member, model: keras.Model) -> str:
        compile_model(model, self.cell.train)  # saved with its optimizer config, like fit would
        model.optimizer.build(model.trainable_variables)  # its slots exist: the file reloads clean
        path = self.runs_dir / model_path(m)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        return model_path(m)

    def _log(self, run_id: str, r: dict[str, Any], model: keras.Model, model_file: str | None,
             m: Member) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(r[k]), now, 0) for k in ("test_loss", "test_accuracy",
                                                             "final_train_loss", "diverged")]
        metrics += [Metric(f"test_accuracy_class_{c}", v, now, 0)
                    for c, v in enumerate(r["per_class_accuracy"])]
        metrics += [Metric(f"diag.{stat}.L{layer}", float(v), now, epoch)
                    for stat, per_epoch in r["diagnostics"].items()
                    for epoch, layers in enumerate(per_epoch) for layer, v in enumerate(layers)]
        tracking.log_metrics(run_id, metrics)
        self.client.log_dict(run_id, {"layers": "L0 = first hidden layer ... last = output layer",
                                      "epochs": "index 0 = at initialization, i = after epoch i",
                                      **r["diagnostics"]}, "diagnostics.json")
        self.client.log_dict(run_id, {"classes": list(range(len(r["confusion"]))),
                                      "matrix": r["confusion"]}, "confusion.json")
        if model_file is None:
            return
        if self.signature is None:
            self.signature = mlflow.models.infer_signature(self.sample, model(self.sample).numpy())
        with mlflow.start_run(run_id=run_id):
            mlflow.tensorflow.log_model(
                model, name=f"{m.label}-s{m.seed_index}", signature=self.signature,
                pip_requirements=[f"tensorflow-cpu=={tf.__version__}", f"keras=={keras.__version__}"])

    def fail(self, stack: Sequence[Member]) -> None:
        # Ctrl-C and SIGTERM (which the CLI turns into KeyboardInterrupt) end a run as KILLED.
        status = "KILLED" if isinstance(sys.exc_info()[1], KeyboardInterrupt) else "FAILED"
        for m in stack:
            run_id = self.open.pop((m.label, m.seed_index), None)
            if run_id is not None and not self.error:
                with self._store():
                    self.client.set_terminated(run_id, status)


def run_cell(params: Params, cell_name: str, data_npz: Path, out_dir: Path, runs_dir: Path,
             root: Path) -> dict[str, Any]:
    """Run the stage for one cell; return what was written to results.json and runs.json."""
    cell = params.cell(cell_name)
    # Before any work: a wrong output path fails in a second, and so does a store that is down.
    check_output(out_dir, CELL_FILES)
    check_output(runs_dir, RUN_FILES)
    tracking.use_project_store()
    data = processed.load(data_npz)
    data["x_train"], data["y_train"] = processed.stratified_subset(
        data["x_train"], data["y_train"], cell.train_limit, params.data.split_seed)
    members = plan(cell, params.train.seed, params.study.vary_data_order)
    base = cell_params(params, cell, len(data["y_train"]))
    data_sha = sha256_file(data_npz)
    stage = "train" if cell.name == "baseline" else f"train_depth@{cell.name.removeprefix('depth-')}"
    tags = {tracking.COMMIT_TAG: tracking.git_commit(root), tracking.STAGE_TAG: stage,
            tracking.DATA_TAG: data_sha}
    with warnings.catch_warnings():  # a local path "could be" several source types
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_numpy(
            data["x_train"], targets=data["y_train"], source=str(data_npz),
            name=f"{params.data.dataset}-train", digest=data_sha[:16])
    dataset_input = DatasetInput(dataset._to_mlflow_entity(),
                                 [InputTag(MLFLOW_DATASET_CONTEXT, "training")])
    with (atomic_output(out_dir, CELL_FILES) as tmp, atomic_output(runs_dir, RUN_FILES) as runs_tmp,
          tracking.parent_run(params.experiment, root) as (parent, exp)):
        runs_tmp.mkdir()
        tracker = MlflowTracker(cell, base, tags, parent, exp, runs_tmp, data["x_val"][:5],
                                dataset_input)
        results, timing = train_cell(cell, members, data, params.study.diagnostics_batch, tracker)
        out = {"cell": cell.name, "activation": cell.model.activation,
               "depth": len(cell.model.hidden) if cell.name != "baseline" else None,
               "config": base, "members": results}
        tmp.mkdir()
        write_cell(tmp, out)
        runs = {"cell": cell.name, "parent_run_id": parent, "tracking_error": tracker.error,
                "timing": timing, "runs": tracker.records}
        (runs_tmp / RUNS_FILE).write_text(json.dumps(runs, indent=1) + "\n")
    return {**out, **runs}
