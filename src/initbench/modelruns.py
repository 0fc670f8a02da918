"""One MLflow run per trained model, organised so the comparison is what ``mlflow ui`` shows first.

* The pipeline's cell (``baseline``), in the experiment of ``params.yaml``: one top-level run per
  initializer, ``baseline/<label>``, holding the mean over seeds (``test_accuracy``,
  ``test_accuracy_sd``, ``test_loss``, ``best_val_accuracy``, ``epochs_to_val_97``, ``diverged``) and
  the mean curves (``val_accuracy`` ... per epoch, so the chart view overlays the initializers);
  its seeds are its child runs, ``baseline/<label>/s<i>``.
* A depth cell, in the experiment ``<experiment>-depth``: one top-level run per cell,
  ``depth-<d>-<activation>``, with a ``comparison`` table and the models as child runs; a phase
  diagram cell likewise in ``<experiment>-phase``, the learning-rate sweep in
  ``<experiment>-lr_sweep``, the pipeline's cell on another dataset in ``<experiment>-dataset``.

Every group run carries ``initbench.pipeline_run``, the execution's pipeline run (report,
comparison table). A model's run is created when its stack starts, its curves are logged as they
happen, and it ends when it is tested; the group runs end with the stage.

This is the train stage's tracker (``initbench.train.cell.Tracker``). It lives outside
``src/initbench/train`` on purpose: MLflow is a tracker, not a DVC dependency, so changing how runs
are logged never retrains a cell. What the stage decides (a model's params, where its ``.keras``
file goes) is passed in. Every store write is shielded from interrupts
(:func:`initbench.process.shielded`); the first store failure ends the logging, not the training:
it is printed once and kept in :attr:`ModelRuns.error`. Every run ends through
:func:`initbench.tracking.end_run`, whatever stops the cell: a failure or an interrupt ends the
open runs FAILED or KILLED.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import DatasetInput, InputTag, Metric
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from initbench import mlflowlog, process, tracking
from initbench.report.tables import comparison_columns
from initbench.results import epochs_to_reach, initializer_summary, mean_curve


def dataset_input(x: np.ndarray, y: np.ndarray, source: Path, name: str, sha: str) -> DatasetInput:
    """The training split as an MLflow dataset input (context ``training``) of every model run."""
    with warnings.catch_warnings():  # a local path "could be" several source types
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_numpy(x, targets=y, source=str(source), name=name, digest=sha[:16])
    return DatasetInput(dataset._to_mlflow_entity(), [InputTag(MLFLOW_DATASET_CONTEXT, "training")])


class ModelRuns:
    """The cell trainer's Tracker (members are ``train.cell.Member``); a context manager whose exit
    ends the group runs: FINISHED with their summaries, or KILLED/FAILED with the stage."""

    def __init__(self, cell: str, base: dict[str, Any], tags: dict[str, str], parent: str,
                 exp_id: str, sample: np.ndarray, dataset: DatasetInput,
                 member_params: Callable[[Any], dict[str, Any]],
                 save: Callable[[Any, Any], str] | None, log: Callable[[str], None] = print) -> None:
        self.cell, self.base, self.tags, self.parent, self.exp_id = cell, base, tags, parent, exp_id
        self.sample, self.dataset, self.member_params, self.save = sample, dataset, member_params, save
        self.client, self.log = MlflowClient(), log
        self.signature: Any = None  # the same for every model of the cell: inferred once
        self.open: dict[tuple[str, int], str] = {}  # (label, seed index) -> run id, while training
        self.groups: dict[str, tuple[str, str]] = {}  # key (label, or cell) -> (run id, exp id)
        self.done: dict[str, list[dict[str, Any]]] = {}  # group key -> finished models' results
        self.records: list[dict[str, Any]] = []  # per model: label, seed_index, run_id, model_file
        self.error: str | None = None

    def __enter__(self) -> ModelRuns:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        status = ("FINISHED" if kind is None else
                  "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED")
        # Models still open -- a caller that stopped without fail(), as `initbench log` does --
        # end with the cell (FAILED if it ended without them).
        ends = [(None, run_id, status if kind else "FAILED") for run_id in self.open.values()]
        ends += [(key, run_id, status) for key, (run_id, _) in self.groups.items()]
        self.open.clear()
        for key, run_id, end in ends:
            if self.error:
                return
            with self._store():
                if end == "FINISHED":
                    self._summarise(run_id, self.done.get(key, []))
                tracking.end_run(run_id, end)

    @contextmanager
    def _store(self) -> Iterator[None]:
        with process.shielded():
            try:
                yield
            except tracking.STORE_ERRORS as err:
                self.error = " ".join(f"{type(err).__name__}: {err}".split())[:300]
                self.log(f"{self.cell}: warning: MLflow logging stopped ({self.error}); training "
                         "goes on and its results are written; once the store is back, "
                         "`dvc repro --force -s <this stage>` logs them (same numbers)")

    def _key(self, m: Any) -> str:
        return m.label if self.cell == "baseline" else self.cell

    def _group(self, m: Any) -> tuple[str, str]:
        """(run id, experiment id) of ``m``'s initializer (pipeline cell) or of its depth cell,
        created on first use."""
        key = self._key(m)
        if key not in self.groups:
            exp_id = self.exp_id
            if self.cell != "baseline":  # grid cells keep out of the pipeline's comparison
                kind = self.cell.partition("-")[0]  # dataset, depth, phase or lr_sweep
                exp_id = tracking.experiment_id(f"{self.client.get_experiment(self.exp_id).name}-{kind}")
            run = self.client.create_run(exp_id, run_name=f"{self.cell}/{m.label}" if
                                         self.cell == "baseline" else self.cell, tags={
                **self.tags, **tracking.owner_tag(), "initbench.pipeline_run": self.parent,
                tracking.ROLE_TAG: "initializer" if self.cell == "baseline" else "cell",
                "initbench.cell": self.cell, **({"initbench.label": m.label}
                                                if self.cell == "baseline" else {})})
            self.groups[key] = run.info.run_id, exp_id
            # The initializer as params.yaml names it (the Keras details are on each seed's run).
            shared = {k: v for k, v in self.member_params(m).items() if self.cell == "baseline"
                      and k.startswith("initializer.") and not k.startswith("initializer.keras.")
                      and "seed" not in k}
            mlflowlog.log_params(run.info.run_id, {**self.base, **shared})
            self.client.log_inputs(run.info.run_id, datasets=[self.dataset])
        return self.groups[key]

    def _summarise(self, run_id: str, results: list[dict[str, Any]]) -> None:
        if not results:
            return
        now = int(time.time() * 1000)
        if self.cell != "baseline":  # the same table as the report's comparison
            self.client.log_table(run_id, comparison_columns({"members": results}),
                                  "comparison.json")
            return
        summary = initializer_summary(results)
        mlflowlog.log_params(run_id, {"seeds": summary.pop("seeds")})
        metrics = [Metric(k, float(v), now, 0) for k, v in summary.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)]
        metrics += [Metric(k, float(v), now, row["epoch"]) for row in mean_curve(results)
                    for k, v in row.items() if k != "epoch"]
        mlflowlog.log_metrics(run_id, metrics)

    def start(self, stack: Sequence[Any]) -> None:
        for m in stack:
            if self.error:
                return
            with self._store():
                group, exp_id = self._group(m)
                name = f"{self.cell}/{m.label}/s{m.seed_index}"
                run_id = self.client.create_run(
                    exp_id, run_name=name, tags={
                        **self.tags, **tracking.owner_tag(), "mlflow.parentRunId": group,
                        "initbench.pipeline_run": self.parent, tracking.ROLE_TAG: "model",
                        "initbench.cell": self.cell, "initbench.label": m.label,
                        "initbench.seed_index": str(m.seed_index)}).info.run_id
                self.open[m.label, m.seed_index] = run_id
                mlflowlog.log_params(run_id, {**self.base, **self.member_params(m)})
                self.client.log_inputs(run_id, datasets=[self.dataset])

    def epoch(self, stack: Sequence[Any], epoch: int, rows: Sequence[dict[str, float]]) -> None:
        for m, row in zip(stack, rows, strict=True):
            if (m.label, m.seed_index) in self.open and not self.error:
                with self._store():
                    mlflowlog.log_metrics_batch(self.open[m.label, m.seed_index], epoch,
                                                {k: v for k, v in row.items() if k != "epoch"})

    def finish(self, stack: Sequence[Any], results: list[dict[str, Any]], models: list[Any]) -> None:
        for m, r, model in zip(stack, results, models, strict=True):
            run_id = self.open.get((m.label, m.seed_index))
            record = {"label": m.label, "seed_index": m.seed_index, "run_id": run_id}
            if self.save is not None:  # on disk first: a store failure never loses a model
                record["model_file"] = self.save(m, model)
            self.records.append(record)
            self.done.setdefault(self._key(m), []).append(r)
            if run_id is not None and not self.error:
                with self._store():
                    self._log(run_id, r, model if self.save is not None else None, m)
                    tracking.end_run(self.open.pop((m.label, m.seed_index)), "FINISHED")

    def _log(self, run_id: str, r: dict[str, Any], model: Any, m: Any) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(r[k]), now, 0) for k in ("test_loss", "test_accuracy",
                                                             "final_train_loss", "diverged")]
        reached = epochs_to_reach([row["val_accuracy"] for row in r["history"]])
        if reached is not None:  # (not reached: no value, as in metrics/<label>.json)
            metrics.append(Metric("epochs_to_val_97", float(reached), now, 0))
        metrics += [Metric(f"test_accuracy_class_{c}", v, now, 0)
                    for c, v in enumerate(r["per_class_accuracy"])]
        metrics += [Metric(f"diag.{stat}.L{layer}", float(v), now, epoch)
                    for stat, per_epoch in r["diagnostics"].items()
                    for epoch, layers in enumerate(per_epoch) for layer, v in enumerate(layers)]
        mlflowlog.log_metrics(run_id, metrics)
        self.client.log_dict(run_id, {"layers": "L0 = first hidden layer ... last = output layer",
                                      "epochs": "index 0 = at initialization, i = after epoch i",
                                      **r["diagnostics"]}, "diagnostics.json")
        self.client.log_dict(run_id, {"classes": list(range(len(r["confusion"]))),
                                      "matrix": r["confusion"]}, "confusion.json")
        if model is not None:
            self.signature = mlflowlog.log_keras_model(run_id, model, f"{m.label}-s{m.seed_index}",
                                                       self.sample, self.signature)

    def fail(self, stack: Sequence[Any]) -> None:
        # Ctrl-C and SIGTERM (which the CLI turns into KeyboardInterrupt) end a run as KILLED.
        status = "KILLED" if isinstance(sys.exc_info()[1], KeyboardInterrupt) else "FAILED"
        for m in stack:
            run_id = self.open.pop((m.label, m.seed_index), None)
            if run_id is not None and not self.error:
                with self._store():
                    tracking.end_run(run_id, status)
