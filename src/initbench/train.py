"""The ``train`` stage: train one model for one initializer and record it in DVC and MLflow.

Training uses the project's compiled trainer (:class:`initbench.stacked.StackedMLP`, here with a
stack of one), which follows Keras' own loss and optimizer update rules exactly; the data order
of each epoch is a permutation seeded by ``train.seed`` and the epoch number.

Outputs (in the stage's output directory): the model (``model.keras``), the per-epoch curves
(``history.csv``, for ``dvc plots``) and a metrics JSON carrying the MLflow run id, so the run
stays findable when DVC later restores these files from its cache.
"""

from __future__ import annotations

import csv
import json
import time
import warnings
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
import tensorflow as tf

from initbench import initializers, normalize, tracking
from initbench.config import Params
from initbench.model import build_model, compile_model, data_batch_seed, layer_seed
from initbench.model import data_dependent_init as model_data_init
from initbench.paths import HISTORY_FILE, MODEL_FILE, TRAIN_METRICS_FILE, atomic_dir
from initbench.stacked import StackedMLP

TARGET_VAL_ACCURACY = 0.97
CURVE_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def epochs_to_reach(values: list[float], target: float) -> int | None:
    """First (1-based) epoch whose value is >= target, or None."""
    return next((i + 1 for i, v in enumerate(values) if v >= target), None)


def run_params(params: Params, label: str) -> dict[str, Any]:
    """Every effective parameter of one run, flattened (what MLflow records)."""
    spec = params.initializer(label)
    out = params.flat()
    out.update(spec.flat())
    n_layers = len(params.model.hidden) + 1
    seeds = [layer_seed(params.train.seed, i) for i in range(n_layers)]
    first = initializers.make(spec.name, seeds[0], spec.args, activation=params.model.activation)
    out.update({f"initializer.keras.{k}": v for k, v in first.get_config().items() if k != "seed"})
    out["initializer.keras.class"] = type(first).__name__
    out["initializer.layer_seeds"] = seeds
    if initializers.get_info(spec.name).data_dependent:
        out["initializer.batch_seed"] = lsuv_batch_seed(params)
    return out


def lsuv_batch_seed(params: Params) -> int:
    """Seed of the LSUV mini-batch of the train stage's model."""
    return data_batch_seed(params.train.seed)


def data_dependent_init(model: keras.Model, params: Params, label: str, x_train: np.ndarray):
    """The train stage's data-dependent init step (LSUV), if its initializer has one."""
    return model_data_init(model, params.initializer(label), x_train, params.train.seed)


def _write_history(path: Path, rows: list[dict[str, float]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def train(params: Params, label: str, data_npz: Path, out_dir: Path, root: Path) -> dict[str, Any]:
    """Train the model of initializer ``label``; write ``out_dir`` atomically; return metrics."""
    spec = params.initializer(label)
    data = normalize.load(data_npz)
    model = build_model(params.model, spec, params.train.seed)
    lsuv_report = data_dependent_init(model, params, label, data["x_train"])

    data_sha = tracking.file_sha256(data_npz)
    tags = {tracking.STAGE_TAG: f"train@{label}", tracking.DATA_TAG: data_sha}
    with tracking.start_child_run(label, params.experiment, root, tags) as run:
        run_id = run.info.run_id
        mlflow.log_params(run_params(params, label))
        with warnings.catch_warnings():  # a local path "could be" several source types
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_numpy(
                data["x_train"], targets=data["y_train"], source=str(data_npz),
                name=f"{params.data.dataset}-train", digest=data_sha[:16],
            )
        mlflow.log_input(dataset, context="training")
        if lsuv_report is not None:
            mlflow.log_dict(lsuv_report, "init/lsuv.json")
            mlflow.log_metrics({f"lsuv.{layer}.{k}": float(v) for layer, r in lsuv_report.items()
                                for k, v in r.items() if k in ("initial_variance", "final_variance",
                                                               "iterations")})
        def log_epoch(epoch: int, rows: list[dict[str, float]]) -> None:
            row = rows[0]
            tracking.log_metrics_batch(run_id, epoch, {k: v for k, v in row.items() if k != "epoch"})
            print(f"epoch {epoch}/{params.train.epochs}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in row.items() if k != "epoch"), flush=True)

        start = time.perf_counter()
        trainer = StackedMLP([model], params.model.activation, params.train)
        (rows,) = trainer.fit(data["x_train"], data["y_train"], data["x_val"], data["y_val"],
                              params.train.epochs, params.train.seed, log_epoch)
        trainer.write_back([model])
        seconds = time.perf_counter() - start
        val_acc = [r["val_accuracy"] for r in rows]
        metrics = {
            "run_id": run_id,
            "final_loss": rows[-1]["loss"],
            "final_accuracy": rows[-1]["accuracy"],
            "final_val_loss": rows[-1]["val_loss"],
            "final_val_accuracy": val_acc[-1],
            "best_val_accuracy": max(val_acc),
            "epochs_to_val_97": epochs_to_reach(val_acc, TARGET_VAL_ACCURACY),
            "train_seconds": seconds,
        }
        mlflow.log_metrics({k: v for k, v in metrics.items() if isinstance(v, float)})

        with atomic_dir(out_dir) as tmp:
            model.save(tmp / MODEL_FILE)
            compile_model(model, params.train)  # saved with its optimizer config, like fit would
            _write_history(tmp / HISTORY_FILE, rows)
            (tmp / TRAIN_METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
            mlflow.log_artifact(str(tmp / HISTORY_FILE), "curves")
            sample = data["x_val"][:5]
            mlflow.tensorflow.log_model(
                model, name="model",
                signature=mlflow.models.infer_signature(sample, model.predict(sample, verbose=0)),
                pip_requirements=[f"tensorflow-cpu=={tf.__version__}", f"keras=={keras.__version__}"],
            )
    return metrics


def read_history(path: Path) -> dict[str, np.ndarray]:
    """The curves written by :func:`train`, column -> array."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}
