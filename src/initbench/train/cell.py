"""Train one cell: every initializer x every seed, in stacks, evaluated on the test split.

A *cell* (:class:`initbench.config.CellConfig`) is one architecture and optimizer; its models
differ only in their initializer and seed. They are cut into stacks (models sharing a data order,
at most ``MAX_STACK`` and a parameter budget that keeps weights and optimizer state in cache) and
each stack is trained by :class:`initbench.train.stacked.StackedMLP`, one compiled program per
stack size. Per-layer signal statistics (:mod:`initbench.train.diagnostics`) are taken on a fixed
training batch at initialization (epoch 0) and after every epoch; after training, every model is
evaluated on the test split (loss, accuracy, per-class accuracy, confusion matrix).

MLflow and files are the caller's business, through a :class:`Tracker` (the train stage logs
each model to its own run while it trains; the benchmark passes none).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import keras
import numpy as np
import tensorflow as tf

from initbench.config import CellConfig, ConvModelConfig, InitializerSpec, ModelConfig
from initbench.train.diagnostics import jacobian_spectrum, signal_stats
from initbench.train.model import build_model, data_dependent_init
from initbench.train.probes import init_probes, member_probes
from initbench.train.records import empty_timing
from initbench.train.schedule import epochs_run, steps_per_epoch
from initbench.train.stacked import StackedMLP
from initbench.train.stacked_conv import StackedCNN, build_cnn

# Models per stack: enough for large GEMMs, few enough that weights and optimizer state stay in
# cache; one huge stack measured slower (bench/README.md). 12 = one seed of the default cell's
# 11 initializers in one stack rather than two of 5 and 6 (per model-epoch: 5 -> 0.49-0.51 s,
# 8 -> 0.55, 10 -> 0.44-0.50, 20 -> 0.53, 40 -> 0.60; Adam, batch 32, 784-128-10, 2026-11-30).
STACK_PARAM_BUDGET = 6_000_000
MAX_STACK = 12
CHANCE_ACCURACY = 0.2  # final training accuracy below this (10 classes): "stayed at chance"
N_CLASSES = 10


@dataclass(frozen=True)
class Member:
    """One model of a cell."""

    label: str
    spec: InitializerSpec
    seed_index: int
    init_seed: int
    data_seed: int
    learning_rate: float


class Tracker(Protocol):
    """What the caller does around each stack (e.g. one MLflow run per model)."""

    def start(self, stack: Sequence[Member]) -> None: ...
    def epoch(self, stack: Sequence[Member], epoch: int, rows: Sequence[dict[str, float]]) -> None: ...
    def finish(self, stack: Sequence[Member], results: list[dict[str, Any]],
               models: list[keras.Model]) -> None: ...
    def fail(self, stack: Sequence[Member]) -> None: ...


def plan(cell: CellConfig, base_seed: int, vary_data: bool) -> list[Member]:
    """Every (initializer, seed) of the cell: init seed ``base_seed + i``; the data order is
    ``base_seed`` for all, or the init seed when ``vary_data``; the label's learning rate."""
    return [Member(label, spec, i, base_seed + i, base_seed + i if vary_data else base_seed,
                   cell.learning_rates.get(label, cell.train.learning_rate))
            for label, spec in cell.initializers.items() for i in range(cell.seeds)]


def build(model: ModelConfig | ConvModelConfig, spec: InitializerSpec, seed: int,
          sigma_b: float = 0.0) -> keras.Model:
    """A cell's Keras model: the MLP or the CNN of ``model``."""
    if isinstance(model, ConvModelConfig):
        return build_cnn(model.channels, model.conv_layers, model.activation, spec, seed,
                         sigma_b=sigma_b)
    return build_model(model, spec, seed, sigma_b=sigma_b)


def stack_size(n_params: int) -> int:
    """The most models of n_params weights to stack: their weights and optimizer state stay in cache."""
    return min(MAX_STACK, max(1, STACK_PARAM_BUDGET // max(1, n_params)))


def stacks(members: Sequence[Member], n_params: int) -> list[list[Member]]:
    """Members grouped by data order, each group cut into the fewest stacks of at most
    :func:`stack_size` models, of near-equal sizes (44 -> 9 x 4 + 8, not 10 x 4 + 4: at most two
    sizes, so at most two XLA compilations, and no tiny stack wasting the batching)."""
    out = []
    for seed in sorted({m.data_seed for m in members}):
        group = [m for m in members if m.data_seed == seed]
        n = -(-len(group) // stack_size(n_params))
        out += [[group[i] for i in part] for part in np.array_split(np.arange(len(group)), n)]
    return out


def diverged(history: Sequence[dict[str, float]], final_accuracy: float | None = None) -> bool:
    """Loss became NaN/inf, or training accuracy stayed at chance: the last epoch's mean, or
    ``final_accuracy`` (measured after the last update) where there is one."""
    last = history[-1]["accuracy"] if final_accuracy is None else final_accuracy
    return bool(not all(math.isfinite(r["loss"]) for r in history) or last < CHANCE_ACCURACY)


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Confusion matrix: row = true class, column = predicted class."""
    return np.bincount(y * n_classes + pred, minlength=n_classes**2).reshape(n_classes, n_classes)


def scores(y: np.ndarray, loss: float, pred: np.ndarray) -> dict[str, Any]:
    cm = confusion(y.astype(np.int64), pred.astype(np.int64))
    per_class = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
    return {"test_loss": float(loss), "test_accuracy": float(np.trace(cm) / cm.sum()),
            "per_class_accuracy": per_class.tolist(), "confusion": cm.tolist()}


def train_cell(cell: CellConfig, members: Sequence[Member], data: Mapping[str, np.ndarray],
               diag_batch: int, tracker: Tracker | None = None,
               log: Any = print) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train and test every member; return (one result per member, timing figures: totals, and
    per stack in training order its size and the seconds of each of its epochs)."""
    x, y = data["x_train"], data["y_train"]
    xd, yd = x[:diag_batch], y[:diag_batch]
    epochs = epochs_run(cell.train, steps_per_epoch(len(y), cell.train.batch_size))
    # With a step budget the epochs' running means cover a partial pass over moving weights, so
    # the training accuracy is measured once more, after the last update, on every training
    # image (the training and the validation split: Schoenholz et al. 2017's measure).
    x_all = None if cell.train.steps is None else tf.constant(np.concatenate([x, data["x_val"]]))
    y_all = None if cell.train.steps is None else tf.constant(np.concatenate([y, data["y_val"]]))
    results: list[dict[str, Any]] = []
    timing = empty_timing()
    # The size of one model decides the stacks (an empty cell, e.g. no sweep: none); that model
    # is then the first of its stack.
    first = build(cell.model, members[0].spec, members[0].init_seed, cell.sigma_b) if members else None
    timing["n_params"] = first.count_params() if first is not None else 0
    xt, yt = tf.constant(data["x_test"]), tf.constant(data["y_test"])
    compiled: dict[int, StackedMLP] = {}  # by stack size: compiled once, reset for every stack
    plan_ = stacks(members, timing["n_params"])
    began = time.perf_counter()
    for number, stack in enumerate(plan_, start=1):
        models = [first if m is members[0] else build(cell.model, m.spec, m.init_seed, cell.sigma_b)
                  for m in stack]
        for model, m in zip(models, stack, strict=True):
            data_dependent_init(model, m.spec, x, m.init_seed)
        trainer = compiled.get(len(stack))
        rates = [m.learning_rate for m in stack]
        if trainer is None:
            kind = StackedCNN if isinstance(cell.model, ConvModelConfig) else StackedMLP
            trainer = compiled[len(stack)] = kind(models, cell.model.activation, cell.train, rates,
                                                  steps_per_epoch(len(y), cell.train.batch_size))
        else:
            trainer.reset(models, rates)
        diags: list[dict[str, np.ndarray]] = []
        finished = len(results)  # models done before this stack
        tic = time.perf_counter()

        def on_epoch(epoch: int, rows: Sequence[dict[str, float]], stack=stack, trainer=trainer,
                     diags=diags, number=number, finished=finished) -> None:
            start = time.perf_counter()
            diags.append(signal_stats(trainer, xd, yd, cell.model.activation))
            timing["diagnostics_seconds"] += time.perf_counter() - start
            if epoch and tracker is not None:
                tracker.epoch(stack, epoch, rows)
            if epoch:
                val = [r["val_accuracy"] for r in rows]
                done = finished + len(stack) * epoch / epochs  # in models' worth
                eta = (time.perf_counter() - began) * (len(members) / done - 1)
                log(f"{cell.name}: stack {number}/{len(plan_)} ({len(stack)} models), epoch "
                    f"{epoch}/{epochs}: val accuracy {min(val):.4f}..{max(val):.4f} "
                    f"({rows[0]['epoch_seconds']:.1f} s); models done {finished}/"
                    f"{len(members)}, about {int(eta // 60)} min {int(eta % 60):02d} s left")

        try:
            if tracker is not None:
                tracker.start(stack)
            on_epoch(0, [])
            start = time.perf_counter()
            spectrum = jacobian_spectrum(trainer, xd)  # at initialization
            probes = init_probes(trainer, xd, yd)
            timing["diagnostics_seconds"] += time.perf_counter() - start
            histories = trainer.fit(x, y, data["x_val"], data["y_val"], epochs,
                                    stack[0].data_seed, on_epoch)
            timing["train_seconds"] += time.perf_counter() - tic
            timing["model_epochs"] += len(stack) * epochs
            tic = time.perf_counter()
            loss, _, pred = trainer.evaluate(xt, yt)
            final = None if x_all is None else trainer.evaluate(x_all, y_all)[1]
            timing["test_seconds"] += time.perf_counter() - tic
            trainer.write_back(models)
            # Wall times vary from run to run: they go to the timing, never into the results.
            timing["stacks"].append({"size": len(stack), "epoch_seconds": [
                row.pop("epoch_seconds") for row in histories[0]]})
            for history in histories[1:]:
                for row in history:
                    del row["epoch_seconds"]
            done = [{"label": m.label, "initializer": m.spec.name, "args": dict(m.spec.args),
                     "seed_index": m.seed_index, "init_seed": m.init_seed, "data_seed": m.data_seed,
                     "learning_rate": m.learning_rate,
                     "history": histories[k], **scores(data["y_test"], loss[k], pred[k]),
                     "final_train_loss": histories[k][-1]["loss"],
                     "diverged": diverged(histories[k], None if final is None else final[k]),
                     **({} if final is None else {"train_accuracy": float(final[k])}),
                     "diagnostics": {s: [d[s][k].tolist() for d in diags] for s in diags[0]},
                     "jacobian_sv_percentiles": None if spectrum is None
                     else spectrum["percentiles"][k].tolist(),
                     "jacobian_mean_sq": None if spectrum is None else float(spectrum["mean_sq"][k]),
                     "jacobian_mean_4th": None if spectrum is None else float(spectrum["mean_4th"][k]),
                     "layer_jacobian_sv_mean": None if spectrum is None
                     else spectrum["layer_sv_mean"][k].tolist(),
                     "init_probes": member_probes(probes, k)}
                    for k, m in enumerate(stack)]
            if tracker is not None:
                tracker.finish(stack, done, models)
        except BaseException:
            if tracker is not None:
                tracker.fail(stack)
            raise
        results += done
    timing["train_seconds"] -= timing["diagnostics_seconds"]
    return results, timing
