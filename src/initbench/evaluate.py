"""The ``evaluate`` stage: test-set loss, accuracy, per-class accuracy and confusion matrix.

Results go to DVC metrics files and to the *same* MLflow run that trained the model (its id is
read from the train stage's metrics JSON). If that run is no longer in the tracking store (a new
store, with the training outputs restored from DVC's cache), a new child run is created, tagged
with the missing run's id, and given the curves and the model file, so nothing is lost silently.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

from initbench import normalize, tracking
from initbench.config import Params
from initbench.datasets import DATASETS
from initbench.paths import (
    CONFUSION_JSON,
    CONFUSION_PNG,
    EVAL_METRICS_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    TRAIN_METRICS_FILE,
    atomic_dir,
)


def test_metrics(model: keras.Model, x: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, Any]:
    probs = model.predict(x, batch_size=1000, verbose=0)
    loss = float(keras.losses.sparse_categorical_crossentropy(y, probs).numpy().mean())
    pred = probs.argmax(axis=1)
    cm = confusion_matrix(y, pred, labels=np.arange(n_classes))
    per_class = np.divide(np.diag(cm), cm.sum(axis=1), out=np.zeros(n_classes), where=cm.sum(1) > 0)
    return {
        "test_loss": loss,
        "test_accuracy": float((pred == y).mean()),
        "per_class_accuracy": [float(v) for v in per_class],
        "confusion_matrix": cm.tolist(),
    }


def _plot_confusion(cm: np.ndarray, classes: tuple[str, ...], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 6))
    ConfusionMatrixDisplay(cm, display_labels=list(classes)).plot(
        ax=ax, cmap="Blues", colorbar=False, values_format="d", xticks_rotation=45
    )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _open_run(params: Params, label: str, train_dir: Path, run_id: str, root: Path):
    if tracking.run_exists(run_id):
        return mlflow.start_run(run_id=run_id)
    print(f"warning: MLflow run {run_id} of {label!r} is not in the tracking store "
          f"{mlflow.get_tracking_uri()}; logging to a new run", file=sys.stderr)
    tags = {tracking.STAGE_TAG: f"evaluate@{label}", "initbench.train_run_missing": run_id}
    run = tracking.start_child_run(label, params.experiment, root, tags)
    mlflow.log_artifact(str(train_dir / HISTORY_FILE), "curves")
    mlflow.log_artifact(str(train_dir / MODEL_FILE), "model_file")
    return run


def evaluate(
    params: Params, label: str, train_dir: Path, data_npz: Path, out_dir: Path, root: Path
) -> dict[str, Any]:
    """Evaluate the model in ``train_dir`` on the test split; write ``out_dir`` atomically."""
    params.initializer(label)  # a clear error for an unknown label, before any work
    spec = DATASETS[params.data.dataset]
    data = normalize.load(data_npz)
    model = keras.models.load_model(train_dir / MODEL_FILE)
    results = test_metrics(model, data["x_test"], data["y_test"], len(spec.classes))
    train_run = json.loads((train_dir / TRAIN_METRICS_FILE).read_text())["run_id"]

    with _open_run(params, label, train_dir, train_run, root) as run:
        metrics = {
            "run_id": run.info.run_id,
            "test_loss": results["test_loss"],
            "test_accuracy": results["test_accuracy"],
            "per_class_accuracy": dict(zip(spec.classes, results["per_class_accuracy"], strict=True)),
        }
        with atomic_dir(out_dir) as tmp:
            (tmp / EVAL_METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
            confusion = {"classes": list(spec.classes), "matrix": results["confusion_matrix"]}
            (tmp / CONFUSION_JSON).write_text(json.dumps(confusion) + "\n")
            _plot_confusion(np.array(results["confusion_matrix"]), spec.classes,
                            f"{label}: test accuracy {results['test_accuracy']:.4f}",
                            tmp / CONFUSION_PNG)
            mlflow.log_metrics({"test_loss": metrics["test_loss"],
                                "test_accuracy": metrics["test_accuracy"]})
            mlflow.log_metrics({f"test_accuracy_class_{i}": v
                                for i, v in enumerate(results["per_class_accuracy"])})
            mlflow.set_tag("initbench.eval_stage", f"evaluate@{label}")
            mlflow.log_artifacts(str(tmp), "evaluation")
    return metrics
