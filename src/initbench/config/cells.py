"""The cells of a :class:`~initbench.config.Params`: the pipeline's cell and every study cell.

A cell is one architecture and optimizer x its initializers x its seeds, trained in one stage
(``initbench train --cell <name>``); its name is its DVC stage's key and its output directory's.
"""

from __future__ import annotations

import math
import types
from typing import TYPE_CHECKING

from initbench.config.checks import _fail
from initbench.config.sections import (
    CellConfig,
    ConvModelConfig,
    ModelConfig,
    TrainConfig,
    TrainingSettings,
)
from initbench.config.study import sweep_label
from initbench.paths import cell_name, dataset_cell

if TYPE_CHECKING:
    from initbench.config import Params


def cells_of(params: Params) -> dict[str, CellConfig]:
    """Every cell of these params, by name: ``baseline`` first, the learning-rate sweep (no
    model when ``study.lr_sweep`` lists no other rate), the pipeline's cell on each further
    dataset, the optimization strategies' cells, the depth cells, the phase diagram's."""
    out = {"baseline": CellConfig("baseline", params.model, params.train, params.initializers,
                                  params.study.seeds, None, True, params.data.dataset)}
    # The sweep's cell always exists (its DVC stage does), empty when there is no other rate.
    rates = params.study.lr_sweep.others(params.train.learning_rate)
    labels = {sweep_label(label, lr): (spec, lr) for label, spec in params.initializers.items()
              for lr in rates}
    out["lr_sweep"] = CellConfig(
        "lr_sweep", params.model, params.train,
        types.MappingProxyType({k: v[0] for k, v in labels.items()}),
        min(params.study.lr_sweep.seeds, params.study.seeds), None,
        False, params.data.dataset, types.MappingProxyType({k: v[1] for k, v in labels.items()}))
    # A listed dataset's cell exists (its DVC stage does), empty when it is data.dataset.
    others = params.study.datasets.others(params.data.dataset)
    for name in params.study.datasets.names:
        out[dataset_cell(name)] = CellConfig(
            dataset_cell(name), params.model, params.train,
            params.initializers if name in others else types.MappingProxyType({}),
            min(params.study.datasets.seeds, params.study.seeds), None, True, name)
    s, dc = params.study.strategies, params.study.depth
    for name, settings in s.variants.items():
        cell = f"strategy-{name}"
        out[cell] = CellConfig(cell, ModelConfig((dc.width,) * s.depth, s.activation),
                               TrainConfig(**settings.training(), seed=params.train.seed),
                               dc.initializers, dc.seeds, dc.train_limit, False, params.data.dataset,
                               sigma_b=dc.sigma_b)
    for kind, grid in (("conv", params.study.conv), ("depth", params.study.depth),
                       ("phase", params.study.phase)):
        for depth in grid.depths:
            for act in grid.activations:
                name = cell_name(depth, act, kind)
                model = (ConvModelConfig(grid.width, depth, act) if kind == "conv"
                         else ModelConfig((grid.width,) * depth, act))
                # A conv cell saves every model (.keras, small): the CNNs are the study's
                # only models of their kind; the MLP grids' models are the baseline's kind.
                out[name] = CellConfig(name, model,
                                       grid.training(params.train.seed), grid.initializers,
                                       grid.seeds, grid.train_limit, kind == "conv",
                                       params.data.dataset, sigma_b=grid.sigma_b)
    return out


TRAINING_IMAGES = 60_000  # both datasets' training sets (MNIST, Fashion-MNIST)


def check_steps(params: Params) -> None:
    """Every step budget fits its epochs: ``steps`` <= ``epochs`` x batches per epoch of the
    training split the cell trains on, or fail naming the setting (before any data is read)."""
    n = params.data.train_limit or TRAINING_IMAGES
    split = n - math.ceil(n * params.data.val_fraction)  # scikit-learn rounds the validation up
    st = params.study
    grids: list[tuple[str, TrainingSettings, int | None, bool]] = [
        ("train", params.train, None, True),
        *((f"study.{k}", g, g.train_limit, bool(g.depths))
          for k, g in (("depth", st.depth), ("conv", st.conv), ("phase", st.phase))),
        *((v.where, v, st.depth.train_limit, True) for v in st.strategies.variants.values())]
    for field, s, limit, used in grids:
        if not used or s.steps is None:
            continue
        batches = -(-min(split, limit or split) // s.batch_size)
        if s.steps > s.epochs * batches:
            _fail(f"{field}.steps", s.steps, f"at most {field}.epochs x batches per epoch = "
                  f"{s.epochs} x {batches} = {s.epochs * batches} (raise {field}.epochs)")
