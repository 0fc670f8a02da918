"""The ``compare`` stage: one table of every initializer, as DVC metrics, Markdown and a figure.

It reads the train and evaluate outputs -- whether they were just produced or restored from DVC's
cache -- and logs the table to the pipeline's parent MLflow run, with a tag per initializer
pointing at the child run that produced those outputs. Then it finishes the parent run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from mlflow.entities import Param
from mlflow.tracking import MlflowClient

from initbench import tracking
from initbench.config import Params
from initbench.paths import EVAL_METRICS_FILE, HISTORY_FILE, TRAIN_METRICS_FILE, atomic_dir
from initbench.train import read_history

COMPARE_JSON, COMPARE_MD, COMPARE_PNG = "compare.json", "compare.md", "compare.png"


def collect(params: Params, train_root: Path, eval_root: Path) -> dict[str, dict[str, Any]]:
    """label -> row of the comparison table."""
    rows = {}
    for label, spec in params.initializers.items():
        trained = json.loads((train_root / label / TRAIN_METRICS_FILE).read_text())
        tested = json.loads((eval_root / label / EVAL_METRICS_FILE).read_text())
        rows[label] = {
            "initializer": spec.name,
            "test_accuracy": tested["test_accuracy"],
            "test_loss": tested["test_loss"],
            "best_val_accuracy": trained["best_val_accuracy"],
            "epochs_to_val_97": trained["epochs_to_val_97"],
            "train_seconds": trained["train_seconds"],
            "run_id": tested["run_id"],
        }
    return rows


def to_markdown(rows: dict[str, dict[str, Any]], params: Params) -> str:
    hidden = "-".join(str(w) for w in params.model.hidden)
    lines = [
        f"Dataset {params.data.dataset}; MLP 784-{hidden}-10 ({params.model.activation}); "
        f"{params.train.optimizer} lr={params.train.learning_rate}, batch {params.train.batch_size},"
        f" {params.train.epochs} epochs, seed {params.train.seed}.",
        "",
        "| initializer | test accuracy | test loss | best val accuracy "
        "| first epoch val acc >= 97% | train seconds | MLflow run |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, r in sorted(rows.items(), key=lambda kv: -kv[1]["test_accuracy"]):
        reached = r["epochs_to_val_97"] if r["epochs_to_val_97"] is not None else "not reached"
        name = label if label == r["initializer"] else f"{label} ({r['initializer']})"
        lines.append(
            f"| {name} | {r['test_accuracy']:.4f} | {r['test_loss']:.4f} "
            f"| {r['best_val_accuracy']:.4f} | {reached} | {r['train_seconds']:.1f} "
            f"| `{r['run_id'][:12]}` |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: dict[str, dict[str, Any]], train_root: Path, path: Path) -> None:
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(13, 5))
    for label in rows:
        history = read_history(train_root / label / HISTORY_FILE)
        curves.plot(history["epoch"], history["val_accuracy"], marker="o", ms=3, label=label)
    curves.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    curves.grid(alpha=0.3)
    curves.legend(fontsize=8)
    labels = list(rows)
    accs = [rows[k]["test_accuracy"] for k in labels]
    bars.barh(labels, accs, color="tab:blue")
    for i, acc in enumerate(accs):
        bars.text(acc, i, f" {acc:.4f}", va="center", fontsize=8)
    low = min(accs)
    bars.set_xlim(max(0.0, low - (1 - low) * 0.5 - 0.01), 1.0)
    bars.set(xlabel="test accuracy", title="Test accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def compare(
    params: Params, train_root: Path, eval_root: Path, out_dir: Path, root: Path
) -> dict[str, dict[str, Any]]:
    """Run the stage; write ``out_dir`` atomically; log to and finish the parent run."""
    rows = collect(params, train_root, eval_root)
    with atomic_dir(out_dir) as tmp:
        metrics = {k: {m: v for m, v in r.items() if m != "initializer"} for k, r in rows.items()}
        (tmp / COMPARE_JSON).write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / COMPARE_MD).write_text(to_markdown(rows, params))
        plot(rows, train_root, tmp / COMPARE_PNG)

        parent_id, _ = tracking.get_or_create_parent(params.experiment, root)
        client = MlflowClient()
        values = {f"{m}.{k}": r[m] for k, r in rows.items()
                  for m in ("test_accuracy", "test_loss", "best_val_accuracy")}
        tracking.log_metrics_batch(parent_id, 0, values)
        for k, r in rows.items():
            client.set_tag(parent_id, f"initbench.child.{k}", r["run_id"])
        client.set_tag(parent_id, tracking.STAGE_TAG, "compare")
        client.log_batch(parent_id, params=[Param(k, str(v)) for k, v in params.flat().items()])
        client.log_artifacts(parent_id, str(tmp), "comparison")
        tracking.finish_parent(parent_id)
    return rows
