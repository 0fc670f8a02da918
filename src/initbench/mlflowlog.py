"""Writing to an MLflow run in as few requests as MLflow allows: metrics and params in batches,
and a Keras model as the run's logged model (a portable copy that loads without initbench).

Every write is shielded from interrupts (:func:`initbench.process.shielded`). Not a DVC
dependency (MLflow is a tracker): changing this never retrains a cell.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from initbench import process

_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch request


def log_metrics_batch(run_id: str, step: int, values: dict[str, float]) -> None:
    """Many metrics in a single request (one epoch's, say), all at ``step``."""
    now = int(time.time() * 1000)
    log_metrics(run_id, [Metric(k, float(v), now, step) for k, v in values.items()])


@process.shielded()
def log_metrics(run_id: str, metrics: list[Metric]) -> None:
    """Any number of metrics, in as few requests as MLflow allows (1000 metrics per batch)."""
    client = MlflowClient()
    for i in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[i:i + _BATCH], synchronous=True)


@process.shielded()
def log_params(run_id: str, params: dict[str, object]) -> None:
    MlflowClient().log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


def portable_copy(model: Any) -> Any:
    """The same network and weights, with every initializer replaced by Keras' ``Zeros``: an
    initializer only matters before training, and a model that names none of initbench's custom
    initializers loads anywhere (``mlflow.keras.load_model``, ``mlflow.pyfunc.load_model``)
    without initbench installed."""
    import keras

    config = model.get_config()
    zeros = keras.initializers.serialize(keras.initializers.Zeros())
    for layer in config["layers"]:
        for key in ("kernel_initializer", "bias_initializer"):
            if key in layer["config"]:
                layer["config"][key] = zeros
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


@contextmanager
def _example_directory_created() -> Iterator[None]:
    """Work around mlflow/mlflow#16183 (open): ``mlflow.keras.log_model`` writes the input
    example before it creates the model's directory. Create it first, as the proposed fix does."""
    import keras
    from mlflow.keras import save

    original = save._save_example

    def save_example(model: Any, example: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        os.makedirs(path, exist_ok=True)
        return original(model, example, path, *args, **kwargs)

    save._save_example = save_example
    # MLflow checks the example with model.predict: no progress bar, no retracing warnings.
    tf_logger, level = logging.getLogger("tensorflow"), logging.getLogger("tensorflow").level
    tf_logger.setLevel(logging.ERROR)
    keras.utils.disable_interactive_logging()
    try:
        yield
    finally:
        save._save_example = original
        tf_logger.setLevel(level)
        keras.utils.enable_interactive_logging()


def log_keras_model(run_id: str, model: Any, name: str, sample: np.ndarray,
                    signature: Any = None) -> Any:
    """Log ``model`` (as :func:`portable_copy`) as a logged model of the run ``run_id``, in the
    run's experiment, with ``sample`` as its input example; return its signature (inferred
    unless given).

    The run is named rather than made MLflow's active run: leaving an active run calls the store
    to end it, and when that call fails during an interrupt it would replace the interrupt."""
    import keras
    import tensorflow as tf
    from mlflow.models import Model

    portable = portable_copy(model)
    if signature is None:
        signature = mlflow.models.infer_signature(sample, portable(sample).numpy())
    run = MlflowClient().get_run(run_id)
    # What mlflow.keras.log_model does in an active run: the model, with the run's params, in
    # the run's experiment.
    logged = mlflow.initialize_logged_model(name=name, source_run_id=run_id,
                                            params=run.data.params,
                                            experiment_id=run.info.experiment_id)
    with _example_directory_created():
        Model.log(artifact_path=None, name=name, flavor=mlflow.keras, model=portable,
                  run_id=run_id, model_id=logged.model_id, signature=signature,
                  input_example=sample, pip_requirements=[f"tensorflow-cpu=={tf.__version__}",
                                                          f"keras=={keras.__version__}"])
    return signature
