"""The article's experiment as a plain Keras script (the benchmark's end-to-end reference).

Four initializers on the same 784-128-10 ReLU MLP, Adam (lr 0.001), batch 32, sparse categorical
cross-entropy: for each, build, fit with validation, test, per-class accuracy and confusion matrix,
save the model, log everything to MLflow; then a Markdown comparison table. Written the way a user
would, one ``model.fit`` per initializer; it depends on nothing of initbench but the processed
archive (np.load: x_train, y_train, x_val, y_val, x_test, y_test).

Usage: python bench/article_keras.py --data data/processed/mnist.npz --out DIR [--epochs 10]
Writes DIR/mlflow.db (+ DIR/mlartifacts), DIR/models/<label>.keras, DIR/comparison.md and
DIR/results.json (test accuracy per initializer).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import mlflow
import numpy as np
import tensorflow as tf
from sklearn.metrics import confusion_matrix

INITIALIZERS = {  # label -> (a fresh Keras initializer for a seed, its parameters)
    "random_normal": (lambda s: keras.initializers.RandomNormal(0.0, 0.05, seed=s), {"stddev": 0.05}),
    "gaussian": (lambda s: keras.initializers.RandomNormal(0.0, 0.1, seed=s), {"mean": 0.0, "stddev": 0.1}),
    "glorot_uniform": (lambda s: keras.initializers.GlorotUniform(seed=s), {}),
    "he_normal": (lambda s: keras.initializers.HeNormal(seed=s), {}),
}


def build(make, seed: int) -> keras.Model:
    return keras.Sequential([
        keras.Input((28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu", kernel_initializer=make(seed)),
        keras.layers.Dense(10, activation="softmax", kernel_initializer=make(seed + 1)),
    ])


class MlflowEpochs(keras.callbacks.Callback):
    """Per-epoch curves to the active MLflow run."""

    def on_epoch_end(self, epoch, logs=None):
        mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch + 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    out = Path(args.out)
    (out / "models").mkdir(parents=True, exist_ok=True)

    d = np.load(args.data)
    x_train, y_train, x_val, y_val = d["x_train"], d["y_train"], d["x_val"], d["y_val"]
    x_test, y_test = d["x_test"], d["y_test"]

    mlflow.set_tracking_uri(f"sqlite:///{out.resolve()}/mlflow.db")
    exp = mlflow.create_experiment("article", artifact_location=(out.resolve() / "mlartifacts").as_uri())
    results = {}
    for label, (make, init_args) in INITIALIZERS.items():
        keras.utils.set_random_seed(args.seed)
        model = build(make, args.seed)
        model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        with mlflow.start_run(experiment_id=exp, run_name=label):
            mlflow.log_params({"initializer": label, **{f"init.{k}": v for k, v in init_args.items()},
                               "hidden": 128, "activation": "relu", "optimizer": "adam",
                               "learning_rate": 0.001, "batch_size": 32, "epochs": args.epochs,
                               "seed": args.seed})
            history = model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, shuffle=True,
                                validation_data=(x_val, y_val), callbacks=[MlflowEpochs()], verbose=0)
            test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
            pred = np.argmax(model.predict(x_test, batch_size=1000, verbose=0), axis=1)
            cm = confusion_matrix(y_test, pred, labels=list(range(10)))
            per_class = (np.diag(cm) / np.maximum(cm.sum(axis=1), 1)).tolist()
            mlflow.log_metrics({"test_loss": test_loss, "test_accuracy": test_acc,
                                **{f"test_accuracy_class_{c}": v for c, v in enumerate(per_class)}})
            mlflow.log_dict({"matrix": cm.tolist()}, "confusion.json")
            model.save(out / "models" / f"{label}.keras")
            signature = mlflow.models.infer_signature(x_val[:5], model.predict(x_val[:5], verbose=0))
            # Requirements given, as initbench gives them: otherwise MLflow infers them by loading
            # the model in a subprocess, seconds per model that would only inflate this side.
            mlflow.tensorflow.log_model(
                model, name=label, signature=signature,
                pip_requirements=[f"tensorflow-cpu=={tf.__version__}", f"keras=={keras.__version__}"])
        results[label] = {"test_accuracy": float(test_acc), "test_loss": float(test_loss),
                          "best_val_accuracy": float(max(history.history["val_accuracy"]))}
        print(f"{label}: test accuracy {test_acc:.4f}", flush=True)

    rows = ["| initializer | test accuracy % | test loss | best val accuracy % |", "|---|---:|---:|---:|"]
    for label, r in sorted(results.items(), key=lambda kv: -kv[1]["test_accuracy"]):
        rows.append(f"| {label} | {100 * r['test_accuracy']:.2f} | {r['test_loss']:.4f} | "
                    f"{100 * r['best_val_accuracy']:.2f} |")
    (out / "comparison.md").write_text("## Comparison\n\n" + "\n".join(rows) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
