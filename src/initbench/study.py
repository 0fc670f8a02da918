"""The study stages: many models per experiment cell, trained in stacks, with diagnostics.

A *cell* is one (architecture, optimizer) configuration: ``baseline`` (the pipeline's model and
training settings) or ``depth-<d>-<activation>`` (a plain deep MLP of the depth experiment). In a
cell, every initializer is trained with ``seeds`` initialization seeds (``train.seed + i``); the
data order is the same for every model unless ``study.vary_data_order`` (then seed i also orders
the batches). Models sharing a data order are trained together by :class:`StackedMLP`, in chunks
sized to stay cache-resident. Signal statistics (:mod:`initbench.diagnostics`) are taken on a fixed
training batch at initialization (epoch 0) and after every epoch.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
from sklearn.model_selection import train_test_split

from initbench.config import InitializerSpec, ModelConfig, TrainConfig
from initbench.diagnostics import signal_stats
from initbench.model import build_model, data_dependent_init
from initbench.stacked import StackedMLP

# Models per stack: enough for large GEMMs, few enough that weights and optimizer state stay in
# cache; one huge stack measured slower (bench/README.md).
STACK_PARAM_BUDGET = 6_000_000
MAX_STACK = 8
CHANCE_ACCURACY = 0.2  # final training accuracy below this (10 classes): "stayed at chance"


@dataclass(frozen=True)
class Member:
    """One model of a cell."""

    label: str
    spec: InitializerSpec
    seed_index: int
    init_seed: int
    data_seed: int


def plan(specs: Mapping[str, InitializerSpec], seeds: int, base_seed: int, vary_data: bool) -> list[Member]:
    return [Member(label, spec, i, base_seed + i, base_seed + i if vary_data else base_seed)
            for label, spec in specs.items() for i in range(seeds)]


def subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified, seeded subset of n examples (all if n is None or too large)."""
    if n is None or n >= len(y):
        return x, y
    keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    keep = np.sort(keep)
    return x[keep], y[keep]


def chunks(members: list[Member], n_params: int) -> list[list[Member]]:
    """Members grouped by data order, each group cut into cache-sized stacks."""
    size = stack_size(n_params)
    out = []
    for seed in sorted({m.data_seed for m in members}):
        out += split_even([m for m in members if m.data_seed == seed], size)
    return out


def stack_size(n_params: int) -> int:
    """The most models of n_params weights to stack: their weights and optimizer state stay in cache."""
    return min(MAX_STACK, max(1, STACK_PARAM_BUDGET // max(1, n_params)))


def split_even(items: list, size: int) -> list[list]:
    """``items`` in the fewest runs of at most ``size``, their lengths differing by at most one.

    (50 models in stacks of 8 -> 8 + 7 x 6, not 6 x 8 + 2: a stack of 2 wastes the batching, and
    at most two stack sizes means at most two XLA compilations.)
    """
    n = -(-len(items) // size) if items else 0
    base, extra = divmod(len(items), n) if n else (0, 0)
    bounds = [0]
    for i in range(n):
        bounds.append(bounds[-1] + base + (i < extra))
    return [items[a:b] for a, b in itertools.pairwise(bounds)]


def diverged(history: list[dict[str, float]]) -> bool:
    """Loss became NaN/inf, or training accuracy stayed at chance."""
    losses = [r["loss"] for r in history]
    return (not all(math.isfinite(v) for v in losses)) or history[-1]["accuracy"] < CHANCE_ACCURACY


def train_cell(
    members: list[Member], model_cfg: ModelConfig, train_cfg: TrainConfig,
    data: Mapping[str, np.ndarray], diag_batch: int,
) -> tuple[list[dict[str, Any]], list[Any], dict[str, float]]:
    """Train every member; return (results, trained Keras models, timing figures)."""
    x, y = data["x_train"], data["y_train"]
    xd, yd = x[:diag_batch], y[:diag_batch]
    dims = [int(np.prod(x.shape[1:])), *model_cfg.hidden, 10]
    n_params = sum(a * b + b for a, b in itertools.pairwise(dims))
    results: list[dict[str, Any]] = []
    models: list[Any] = []
    timing = {"train_seconds": 0.0, "diagnostics_seconds": 0.0, "model_epochs": 0.0}
    xt, yt = tf.constant(data["x_test"]), tf.constant(data["y_test"])
    stacks: dict[int, StackedMLP] = {}  # by size: compiled once, reset for every chunk
    for chunk in chunks(members, n_params):
        keras_models = []
        for m in chunk:
            model = build_model(model_cfg, m.spec, m.init_seed)
            data_dependent_init(model, m.spec, x, m.init_seed)
            keras_models.append(model)
        if len(chunk) in stacks:
            stack = stacks[len(chunk)]
            stack.reset(keras_models)
        else:
            stack = stacks[len(chunk)] = StackedMLP(keras_models, model_cfg.activation, train_cfg)
        diags: list[dict[str, np.ndarray]] = []

        def diagnose(epoch: int, rows: Any, stack: StackedMLP = stack, diags: list = diags) -> None:
            start = time.perf_counter()
            diags.append(signal_stats(stack, xd, yd, model_cfg.activation))
            timing["diagnostics_seconds"] += time.perf_counter() - start

        diagnose(0, None)
        start, diag_before = time.perf_counter(), timing["diagnostics_seconds"]
        histories = stack.fit(x, y, data["x_val"], data["y_val"], train_cfg.epochs,
                              chunk[0].data_seed, diagnose)
        timing["train_seconds"] += (time.perf_counter() - start
                                    - (timing["diagnostics_seconds"] - diag_before))
        timing["model_epochs"] += len(chunk) * train_cfg.epochs
        test_loss, test_acc = stack.evaluate(xt, yt)
        stack.write_back(keras_models)
        for k, m in enumerate(chunk):
            results.append({
                "label": m.label, "initializer": m.spec.name, "args": dict(m.spec.args),
                "seed_index": m.seed_index, "init_seed": m.init_seed, "data_seed": m.data_seed,
                "history": histories[k], "test_loss": float(test_loss[k]),
                "test_accuracy": float(test_acc[k]), "final_train_loss": histories[k][-1]["loss"],
                "diverged": diverged(histories[k]),
                "diagnostics": {stat: [d[stat][k].tolist() for d in diags] for stat in diags[0]},
            })
        models += keras_models
    timing["n_params"] = n_params
    return results, models, timing
