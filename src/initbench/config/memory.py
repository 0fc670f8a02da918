"""A lower bound on each cell's memory, checked against the machine's before any stage works.

Every value of a cell can pass its own bound and the cell still not fit: ``model.hidden:
[65536, 65536]`` is 4.3e9 weights a model, ``study.seeds: 1000000000`` 10^10 models to plan and
record. The train stage holds at once, for one stack of K models (:func:`stack_size`):

    weights     parameters x K x (3 + optimizer slots) x 4 bytes
                (the K Keras models, their stacked copy, the gradients; Adam keeps 2 slots, SGD
                with momentum 1, plain SGD 0 -- :mod:`initbench.train.optimizer`)
  + activations units of every layer x max(batch, diagnostics batch) x K x 4 bytes
                (kept for the backward pass and for the per-layer statistics)
  + data        images x 784 pixels x 4 bytes x 2 (the arrays and their resident tensors)
  + records     models of the cell x RECORD_BYTES (each model's plan entry and its results)

Each term leaves out what it does not know for sure (framework overhead, XLA's buffers), so a
cell refused here cannot fit; one that passes may still be tight.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING

from initbench.config.checks import ConfigError
from initbench.config.sections import CellConfig, ConvModelConfig, ModelConfig

if TYPE_CHECKING:
    from initbench.config import Params

# train.cell.stack_size's constants (train/ imports TensorFlow; tests check that they agree).
STACK_PARAM_BUDGET, MAX_STACK = 6_000_000, 12  # as initbench.train.cell
PIXELS, CLASSES, FLOAT = 28 * 28, 10, 4
TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000  # both datasets (initbench.data.datasets)
RECORD_BYTES = 4096  # measured: ~7.6 KB a model for one epoch of a one-layer cell
GIB = 2**30


def n_params(model: ModelConfig | ConvModelConfig) -> int:
    """Weights and biases of one model (as Keras counts them)."""
    if isinstance(model, ConvModelConfig):  # 3x3 "same" convolutions, pooled 28 -> 14 -> 7
        c = model.channels
        convs = 9 * c + c + (model.conv_layers - 1) * (9 * c * c + c)
        return convs + 7 * 7 * c * CLASSES + CLASSES
    widths = (PIXELS, *model.hidden, CLASSES)
    return sum(a * b + b for a, b in itertools.pairwise(widths))


def units(model: ModelConfig | ConvModelConfig) -> int:
    """Outputs of every layer for one image (the activations a forward pass keeps)."""
    if isinstance(model, ConvModelConfig):  # train.stacked_conv.stage_sizes; and the poolings
        first = (model.conv_layers + 1) // 2
        per_channel = first * 28 * 28 + (model.conv_layers - first) * 14 * 14 + 14 * 14 + 7 * 7
        return model.channels * per_channel + CLASSES
    return sum(model.hidden) + CLASSES


def stack_size(n: int) -> int:
    """The most models of ``n`` weights trained together (train.cell.stack_size)."""
    return min(MAX_STACK, max(1, STACK_PARAM_BUDGET // max(1, n)))


def estimate(cell: CellConfig, params: Params) -> dict[str, int]:
    """Bytes the cell's train stage needs at least, by term (see the module docstring)."""
    models = len(cell.initializers) * cell.seeds
    p = n_params(cell.model)
    k = min(stack_size(p), models)
    t = cell.train
    slots = 2 if t.optimizer == "adam" else 1 if t.momentum > 0 else 0
    batch = max(t.batch_size, params.study.diagnostics_batch)
    images = ((params.data.train_limit or TRAIN_IMAGES) + (params.data.test_limit or TEST_IMAGES))
    return {"weights": p * k * (3 + slots) * FLOAT, "activations": units(cell.model) * batch * k * FLOAT,
            "data": images * PIXELS * FLOAT * 2, "records": models * RECORD_BYTES}


def machine_bytes() -> int:
    """The memory this process may use: the machine's, or its cgroup's limit where lower."""
    import psutil

    total = psutil.virtual_memory().total
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def _settings(cell: CellConfig) -> str:
    m = cell.model
    if isinstance(m, ConvModelConfig):
        arch = f"{m.conv_layers} conv layers of {m.channels} channels"
    elif cell.name in ("baseline", "lr_sweep") or cell.name.startswith("dataset-"):
        h = list(m.hidden)
        arch = f"model.hidden {h if len(h) <= 6 else f'[{h[0]}, {h[1]}, ... {len(h)} widths]'}"
    else:
        arch = f"{len(m.hidden)} hidden layers of {m.hidden[0]}"
    return f"{arch} x {len(cell.initializers)} initializers x {cell.seeds} seeds"


def check(params: Params) -> None:
    """Fail on the first cell whose estimate exceeds the machine's memory, in one line."""
    available = None
    for cell in params.cells().values():
        if not cell.initializers:
            continue
        need = estimate(cell, params)
        available = machine_bytes() if available is None else available
        if sum(need.values()) <= available:
            continue
        k = min(stack_size(n_params(cell.model)), len(cell.initializers) * cell.seeds)
        t, diag = cell.train, params.study.diagnostics_batch
        batch = f"batch {t.batch_size}" if t.batch_size >= diag else f"study.diagnostics_batch {diag}"
        raise ConfigError(
            f"params: cell {cell.name}: {_settings(cell)} needs at least "
            f"~{gib(sum(need.values()))}: {gib(need['weights'])} for the weights, gradients and "
            f"{t.optimizer} state of {k} model(s) at a time, {gib(need['activations'])} for the "
            f"activations of {batch}, {gib(need['data'])} for the data, "
            f"{gib(need['records'])} for the per-model records; this machine has {gib(available)}")


def gib(n: int) -> str:
    x = n / GIB
    return "<0.01 GiB" if x < 0.01 else f"{x:.3g} GiB" if x < 1000 else f"{math.ceil(x):,} GiB"
