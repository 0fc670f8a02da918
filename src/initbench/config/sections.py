"""The plain sections of ``params.yaml`` (data, model, train, one initializer) and a cell: the
frozen, validated objects every stage reads."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from initbench.config.checks import (
    ACTIVATIONS,
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_LAYERS,
    MAX_SEED,
    MAX_STEPS,
    MAX_WIDTH,
    N_CLASSES,
    OPTIMIZERS,
    SCHEDULES,
    ConfigError,
    _choose,
    _coerce,
    _fail,
)
from initbench.data.datasets import DATASETS
from initbench.init import registry as initializers


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    val_fraction: float
    standardize: bool
    split_seed: int
    train_limit: int | None
    test_limit: int | None
    shift: float = 0.0  # pixels x / 255 - shift (required in params.yaml, like every key)

    def __post_init__(self) -> None:
        _choose("data.dataset", self.dataset, sorted(DATASETS))
        if not (math.isfinite(self.shift) and -1.0 <= self.shift <= 1.0):
            _fail("data.shift", self.shift, "a number in [-1, 1] (pixels become x / 255 - shift)")
        if self.shift and self.standardize:
            _fail("data.shift", self.shift, "0 when data.standardize is true (standardizing "
                  "removes any shift)")
        if not 0.0 < self.val_fraction < 1.0:
            _fail("data.val_fraction", self.val_fraction, "a number strictly between 0 and 1")
        if not 0 <= self.split_seed < 2**32:
            _fail("data.split_seed", self.split_seed, "an integer in [0, 2^32)")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 100:
                _fail(f"data.{name}", value, "null (all images) or an integer >= 100")
        n = self.train_limit or 60_000  # both datasets have 60,000 training images
        if min(n * self.val_fraction, n * (1 - self.val_fraction)) < N_CLASSES:
            _fail("data.val_fraction", self.val_fraction,
                  f"a fraction that leaves >= {N_CLASSES} images (one per class) in both the "
                  f"training and the validation split of {n} images (data.train_limit)")


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...]
    activation: str

    def __post_init__(self) -> None:
        if not 0 < len(self.hidden) <= MAX_LAYERS or any(not 0 < w <= MAX_WIDTH for w in self.hidden):
            _fail("model.hidden", list(self.hidden),
                  f"a list of 1 to {MAX_LAYERS} layer widths, each in [1, {MAX_WIDTH}]")
        _choose("model.activation", self.activation, ACTIVATIONS)

    @property
    def n_layers(self) -> int:
        """Layers with a kernel: the hidden Dense layers and the output."""
        return len(self.hidden) + 1

    def params(self) -> dict[str, Any]:
        """What MLflow records about the architecture (``model.*``; the same keys in every cell)."""
        return {"model.kind": "mlp", "model.hidden": list(self.hidden),
                "model.activation": self.activation}


@dataclass(frozen=True)
class ConvModelConfig:
    """A CNN of :mod:`initbench.train.stacked_conv`: ``conv_layers`` 3x3 convolutions of
    ``channels`` filters in two pooled stages, then the softmax Dense layer."""

    channels: int
    conv_layers: int
    activation: str

    @property
    def n_layers(self) -> int:
        return self.conv_layers + 1

    def params(self) -> dict[str, Any]:
        return {"model.kind": "cnn", "model.channels": self.channels,
                "model.conv_layers": self.conv_layers, "model.activation": self.activation}


@dataclass(frozen=True)
class TrainingSettings:
    """How a cell's models train: what ``train`` and the study's grids (``study.depth``,
    ``study.phase``) each set, checked under their own ``prefix``. The optimization strategies
    (decoupled weight decay, the learning-rate schedule and its warm-up) are keyword-only: a
    positional call reads as the plain optimizer it always was, and still has to name them."""

    optimizer: str
    learning_rate: float
    momentum: float
    batch_size: int
    epochs: int
    weight_decay: float = dataclasses.field(kw_only=True)
    lr_schedule: str = dataclasses.field(kw_only=True)
    warmup_epochs: int = dataclasses.field(kw_only=True)
    # A step budget: stop after exactly this many updates (None: every batch of every epoch).
    steps: int | None = dataclasses.field(default=None, kw_only=True)
    prefix: typing.ClassVar[str] = "train"

    def __post_init__(self) -> None:
        p = self.prefix
        _choose(f"{p}.optimizer", self.optimizer, OPTIMIZERS)
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 10):
            _fail(f"{p}.learning_rate", self.learning_rate, "a finite number in (0, 10]")
        if not 0.0 <= self.momentum < 1.0:
            _fail(f"{p}.momentum", self.momentum, "a number in [0, 1)")
        if not 0 < self.batch_size <= MAX_BATCH:
            _fail(f"{p}.batch_size", self.batch_size, f"an integer in [1, {MAX_BATCH}]")
        if not 0 < self.epochs <= MAX_EPOCHS:
            _fail(f"{p}.epochs", self.epochs, f"an integer in [1, {MAX_EPOCHS}]")
        if not 0.0 <= self.weight_decay < 1.0:
            _fail(f"{p}.weight_decay", self.weight_decay, "a number in [0, 1) (0: none)")
        _choose(f"{p}.lr_schedule", self.lr_schedule, SCHEDULES)
        if not 0 <= self.warmup_epochs < self.epochs:
            _fail(f"{p}.warmup_epochs", self.warmup_epochs,
                  f"an integer in [0, {p}.epochs) = [0, {self.epochs})")
        if self.warmup_epochs and self.lr_schedule != "cosine":
            _fail(f"{p}.warmup_epochs", self.warmup_epochs,
                  f"0 unless {p}.lr_schedule is cosine (got {self.lr_schedule!r})")
        if self.steps is not None and not 0 < self.steps <= MAX_STEPS:
            _fail(f"{p}.steps", self.steps, f"null (every batch of {p}.epochs epochs) or an "
                  f"integer in [1, {MAX_STEPS}] (updates; {p}.epochs must allow them)")
        if self.steps is not None and self.warmup_epochs:
            _fail(f"{p}.warmup_epochs", self.warmup_epochs, f"0 when {p}.steps is set")

    def total_steps(self, steps_per_epoch: int) -> int:
        """The updates a model makes: ``steps``, or every batch of every epoch."""
        return self.steps if self.steps is not None else self.epochs * steps_per_epoch


@dataclass(frozen=True)
class TrainConfig(TrainingSettings):
    seed: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.seed <= MAX_SEED:
            _fail("train.seed", self.seed, f"an integer in [0, {MAX_SEED}]")


@dataclass(frozen=True)
class InitializerSpec:
    """One entry of ``initializers``: the label (run and stage name), registry name and args."""

    label: str
    name: str
    args: Mapping[str, Any]

    @classmethod
    def parse(cls, label: str, raw: Any, prefix: str = "initializers") -> InitializerSpec:
        field = f"{prefix}.{label}"
        if raw is None:
            raw = {}
        elif isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, Mapping):
            _fail(field, raw, "null, a registry name, or a mapping {name: ..., <args>}")
        args = dict(raw)
        name = _coerce(f"{field}.name", args.pop("name", label), str)
        try:
            resolved = initializers.resolve_args(name, args)
        except initializers.InitializerError as err:
            raise ConfigError(f"params: {field}: {err}") from None
        return cls(label, name, types.MappingProxyType(resolved))

    def flat(self) -> dict[str, Any]:
        """The MLflow params that name this initializer: label, registry name, every argument."""
        return {"initializer.label": self.label, "initializer.name": self.name,
                **{f"initializer.{k}": v for k, v in self.args.items()}}


@dataclass(frozen=True)
class CellConfig:
    """One cell: an architecture and optimizer x every initializer of the cell x its seeds.

    ``baseline`` is the pipeline's model (``model``, ``train``, ``initializers``, ``study.seeds``)
    on ``data.dataset``; ``dataset-<name>`` the same on another dataset (``study.datasets``);
    ``depth-<d>-<activation>`` a plain deep MLP of the depth study (``study.depth``). Seed i of
    a cell initializes with ``train.seed + i``; it also orders the batches when
    ``study.vary_data_order`` (otherwise every model of the cell sees the same order).
    """

    name: str
    model: ModelConfig | ConvModelConfig
    train: TrainConfig
    initializers: Mapping[str, InitializerSpec]
    seeds: int
    train_limit: int | None
    save_models: bool
    dataset: str  # the processed dataset the cell trains and tests on
    # label -> that label's learning rate, where it differs from train.learning_rate (the sweep)
    learning_rates: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({}))
    sigma_b: float = 0.0  # biases N(0, sigma_b^2) (0: zeros), unless the initializer draws its own
