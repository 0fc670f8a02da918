"""Model construction: the study's MLP with one initializer applied to every kernel.

Default architecture (from ``params.yaml``): Flatten -> Dense(128, relu) -> Dense(10, softmax).
Every kernel gets the configured initializer; every bias zeros, or N(0, sigma_b^2) in a grid cell
with ``sigma_b``, or the initializer's own bias (``pytorch_default``). Each layer gets its own
initializer instances with their own seeds, derived from the model seed and the layer's index
(``numpy.random.SeedSequence``), so layers never share draws and reruns are identical.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from initbench.config import ConvModelConfig, InitializerSpec, ModelConfig, TrainConfig
from initbench.init import lsuv
from initbench.init import registry as initializers
from initbench.train.schedule import Schedule

INPUT_SHAPE = (28, 28)


def layer_seed(model_seed: int, layer_index: int) -> int:
    """A distinct, reproducible 31-bit seed for layer ``layer_index`` of a model."""
    return int(np.random.SeedSequence([model_seed, layer_index]).generate_state(1)[0] & 0x7FFFFFFF)


def bias_seed(model_seed: int, layer_index: int) -> int:
    """The seed of layer ``layer_index``'s bias draw (distinct from every kernel's)."""
    return layer_seed(model_seed, 2_000_000 + layer_index)


def data_batch_seed(model_seed: int) -> int:
    """Seed of the data batch a data-dependent initializer (LSUV) uses for a model."""
    return layer_seed(model_seed, 1_000_000)


def data_dependent_init(model: keras.Model, spec: InitializerSpec, x_train: np.ndarray, seed: int):
    """Run ``spec``'s data-dependent step (LSUV) on a built model; its report, or None."""
    if not initializers.get_info(spec.name).data_dependent:
        return None
    batch = lsuv.sample_batch(x_train, spec.args["batch_size"], data_batch_seed(seed))
    return lsuv.lsuv_init(model, batch, spec.args["tol"], spec.args["max_iter"])


def initializer_params(spec: InitializerSpec, cfg: ModelConfig | ConvModelConfig,
                       seed: int) -> dict[str, Any]:
    """What MLflow records about a model's initialization: the spec's label, name and arguments,
    the Keras initializer of the first layer (class and config), every layer's seed, and the
    seed of the LSUV batch where there is one."""
    seeds = [layer_seed(seed, i) for i in range(cfg.n_layers)]
    first = initializers.make(spec.name, seeds[0], spec.args, activation=cfg.activation)
    out = spec.flat()
    out.update({f"initializer.keras.{k}": v for k, v in first.get_config().items() if k != "seed"})
    out["initializer.keras.class"] = type(first).__name__
    out["initializer.layer_seeds"] = seeds
    if initializers.get_info(spec.name).data_dependent:
        out["initializer.batch_seed"] = data_batch_seed(seed)
    return out


def build_model(cfg: ModelConfig, spec: InitializerSpec, seed: int, n_classes: int = 10,
                sigma_b: float = 0.0) -> keras.Model:
    """Build (uncompiled) the MLP of ``cfg`` with ``spec`` on every kernel; biases as the module
    docstring says."""
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    widths = [*cfg.hidden, n_classes]
    fans = [math.prod(INPUT_SHAPE), *cfg.hidden]
    for i, width in enumerate(widths):
        last = i == len(widths) - 1
        x = keras.layers.Dense(
            width,
            activation="softmax" if last else cfg.activation,
            kernel_initializer=initializers.make(spec.name, layer_seed(seed, i), spec.args,
                                                 activation="linear" if last else cfg.activation),
            bias_initializer=initializers.make_bias(spec.name, fans[i], bias_seed(seed, i), sigma_b),
            name="output" if last else f"dense_{i}",
        )(x)
    return keras.Model(inputs, x, name=f"mlp_{spec.label}")


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int | None = None,
                   learning_rate: float | None = None) -> keras.optimizers.Optimizer:
    """The Keras optimizer of ``cfg`` -- its update rule, schedule and decoupled weight decay are
    what initbench.train.stacked reproduces; ``learning_rate``: a model's own, if not cfg's."""
    lr = Schedule.of(cfg, steps_per_epoch).keras(learning_rate or cfg.learning_rate)
    decay = cfg.weight_decay or None  # Keras: None = no weight decay
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum, weight_decay=decay)
    return keras.optimizers.Adam(lr, weight_decay=decay)


def compile_model(model: keras.Model, cfg: TrainConfig, steps_per_epoch: int | None = None,
                  learning_rate: float | None = None) -> keras.Model:
    model.compile(
        optimizer=make_optimizer(cfg, steps_per_epoch, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
