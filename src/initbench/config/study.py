"""The ``study`` section of ``params.yaml``: seeds and statistics, further datasets, the
learning-rate sweep, the depth study and the trainability phase diagram (Schoenholz et al. 2017,
arXiv:1611.01232)."""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass

from initbench.config.checks import ACTIVATIONS, MAX_LAYERS, MAX_WIDTH, _choose, _fail
from initbench.config.sections import InitializerSpec, TrainConfig, TrainingSettings
from initbench.config.strategies import StrategiesConfig
from initbench.data.datasets import DATASETS
from initbench.init import registry as initializers


@dataclass(frozen=True)
class GridConfig(TrainingSettings):
    """What the depth study and the phase diagram share: plain deep MLPs (no normalization, no
    skip connections), one cell per (depth, activation), trained with their own optimizer."""

    depths: tuple[int, ...]
    width: int
    activations: tuple[str, ...]
    seeds: int
    train_limit: int | None
    sigma_b: float  # every bias N(0, sigma_b^2) at init (0: zeros; Schoenholz et al. 2017: sqrt 0.05)
    prefix: typing.ClassVar[str] = "study.depth"

    def __post_init__(self) -> None:
        super().__post_init__()
        p = self.prefix
        if any(not 0 < d <= MAX_LAYERS for d in self.depths) or len(set(self.depths)) != len(self.depths):
            _fail(f"{p}.depths", list(self.depths),
                  f"a list of distinct integers in [1, {MAX_LAYERS}] ([]: none)")
        if not 0 < self.width <= MAX_WIDTH:
            _fail(f"{p}.width", self.width, f"an integer in [1, {MAX_WIDTH}]")
        for act in self.activations:
            _choose(f"{p}.activations", act, ACTIVATIONS)
        if len(set(self.activations)) != len(self.activations):
            _fail(f"{p}.activations", list(self.activations), "distinct activations")
        if not self.activations:
            _fail(f"{p}.activations", [], "a non-empty list")
        if self.seeds < 1:
            _fail(f"{p}.seeds", self.seeds, "an integer >= 1 (2 or more for an interval)")
        if self.train_limit is not None and self.train_limit < 100:
            _fail(f"{p}.train_limit", self.train_limit, "null or an integer >= 100")
        if not (math.isfinite(self.sigma_b) and 0 <= self.sigma_b <= 10):
            _fail(f"{p}.sigma_b", self.sigma_b, "a number in [0, 10] (bias std; 0: zero biases)")

    def training(self, seed: int) -> TrainConfig:
        return TrainConfig(self.optimizer, self.learning_rate, self.momentum, self.batch_size,
                           self.epochs, seed, weight_decay=self.weight_decay,
                           lr_schedule=self.lr_schedule, warmup_epochs=self.warmup_epochs,
                           steps=self.steps)


@dataclass(frozen=True)
class DepthConfig(GridConfig):
    """The depth study: every initializer of ``study.depth.initializers`` at every depth."""

    initializers: Mapping[str, InitializerSpec]

    def __post_init__(self) -> None:
        super().__post_init__()
        own = [label for label, s in self.initializers.items()
               if initializers.get_info(s.name).bias is not None]
        if self.sigma_b and own:  # two rules for one bias: say which, rather than pick one
            _fail(f"{self.prefix}.sigma_b", self.sigma_b, f"0 while {', '.join(own)} draw their own "
                  "biases (a separate cell, or sigma_b 0)")


@dataclass(frozen=True)
class ConvConfig(DepthConfig):
    """Convolutional cells: every initializer of ``study.conv.initializers`` at every number of
    conv layers (``depths``) with ``width`` filters per layer (see ``ConvModelConfig``)."""

    prefix: typing.ClassVar[str] = "study.conv"

    def __post_init__(self) -> None:
        super().__post_init__()
        if 1 in self.depths:  # its second pooled stage would hold no convolution: no such CNN
            _fail("study.conv.depths", list(self.depths),
                  f"a list of distinct integers in [2, {MAX_LAYERS}] (conv layers in two pooled "
                  "stages: at least one each) ([]: none)")


@dataclass(frozen=True)
class PhaseConfig(GridConfig):
    """The trainability phase diagram (Schoenholz et al. 2017): weights N(0, sigma_w^2 / fan),
    fan = fan_in or fan_out (``mode``), biases N(0, sigma_b^2), for every sigma_w of the grid at
    every depth."""

    sigma_w: tuple[float, ...]
    mode: str
    prefix: typing.ClassVar[str] = "study.phase"

    def __post_init__(self) -> None:
        super().__post_init__()
        if (not self.sigma_w or len(set(self.sigma_w)) != len(self.sigma_w)
                or any(not (math.isfinite(s) and 0 < s <= 10) for s in self.sigma_w)):
            _fail("study.phase.sigma_w", list(self.sigma_w),
                  "a non-empty list of distinct numbers in (0, 10]")
        _choose("study.phase.mode", self.mode, ("fan_in", "fan_out"))

    @property
    def initializers(self) -> Mapping[str, InitializerSpec]:
        """label ``sw_<sigma_w>`` (``.`` written ``p``: ``sw_1p41``) -> its variance_scaling."""
        return types.MappingProxyType({
            sigma_label(s): InitializerSpec(sigma_label(s), "variance_scaling", types.MappingProxyType(
                {"scale": s * s, "mode": self.mode, "distribution": "untruncated_normal"}))
            for s in self.sigma_w})


def sweep_label(label: str, learning_rate: float) -> str:
    """An initializer's label in the learning-rate sweep: ``he_normal-lr0.003``."""
    return f"{label}-lr{learning_rate:g}"


def sigma_label(sigma_w: float) -> str:
    return "sw_" + f"{sigma_w:g}".replace(".", "p")


@dataclass(frozen=True)
class LrSweepConfig:
    """The pipeline cell's learning-rate sweep: every initializer also trained at these rates,
    for the first ``seeds`` seeds (at most ``study.seeds``: the pipeline's cell supplies the
    shared rate, and the sweep pairs with its models seed by seed)."""

    learning_rates: tuple[float, ...]
    seeds: int

    def __post_init__(self) -> None:
        if len(set(self.learning_rates)) != len(self.learning_rates) or any(
                not (math.isfinite(r) and 0 < r <= 10) for r in self.learning_rates):
            _fail("study.lr_sweep.learning_rates", list(self.learning_rates),
                  "a list of distinct numbers in (0, 10] ([]: no sweep)")
        if self.seeds < 1:
            _fail("study.lr_sweep.seeds", self.seeds, "an integer >= 1")

    def others(self, shared: float) -> tuple[float, ...]:
        """The rates the sweep trains: all but the shared one (the pipeline's cell has it), so
        ``-S train.learning_rate=<a listed rate>`` is fine."""
        return tuple(r for r in self.learning_rates if r != shared)


@dataclass(frozen=True)
class DatasetsConfig:
    """The pipeline's cell on further datasets, for their first ``seeds`` seeds (at most
    ``study.seeds``), so a conclusion is not one dataset's."""

    names: tuple[str, ...]
    seeds: int

    def __post_init__(self) -> None:
        for name in self.names:
            _choose("study.datasets.names", name, sorted(DATASETS))
        if len(set(self.names)) != len(self.names):
            _fail("study.datasets.names", list(self.names), "distinct dataset names ([]: none)")
        if self.seeds < 1:
            _fail("study.datasets.seeds", self.seeds, "an integer >= 1")

    def others(self, primary: str) -> tuple[str, ...]:
        """The datasets trained besides ``data.dataset`` (its cell is the pipeline's), so
        ``-S data.dataset=<a listed dataset>`` is fine."""
        return tuple(n for n in self.names if n != primary)


@dataclass(frozen=True)
class StudyConfig:
    """Seeds, diagnostics and statistics of every cell; the depth cells' own settings."""

    seeds: int
    vary_data_order: bool
    confidence: float
    equivalence_margin: float
    deep_equivalence_margin: float
    trained_within: float
    diagnostics_batch: int
    datasets: DatasetsConfig
    lr_sweep: LrSweepConfig
    depth: DepthConfig
    conv: ConvConfig
    phase: PhaseConfig
    strategies: StrategiesConfig

    def margin(self, cell: str) -> float:
        """The equivalence margin of a cell: the pipeline's (its datasets, its learning rates)
        or the deep cells' (depth, strategy, conv), which resolve less."""
        pipeline = cell in ("baseline", "lr_sweep") or cell.startswith("dataset-")
        return self.equivalence_margin if pipeline else self.deep_equivalence_margin

    def __post_init__(self) -> None:
        if self.seeds < 1:
            _fail("study.seeds", self.seeds,
                  "an integer >= 1 (1: one model per initializer; 2 or more for an interval)")
        if not 0.5 <= self.confidence < 1.0:
            _fail("study.confidence", self.confidence, "a number in [0.5, 1)")
        if not 0 < self.equivalence_margin <= 0.5:
            _fail("study.equivalence_margin", self.equivalence_margin,
                  "a number in (0, 0.5] (accuracy, e.g. 0.003 = 0.3 pp)")
        if not 0 < self.deep_equivalence_margin <= 0.5:
            _fail("study.deep_equivalence_margin", self.deep_equivalence_margin,
                  "a number in (0, 0.5] (accuracy, e.g. 0.01 = 1 pp)")
        if not 0 < self.trained_within <= 1:
            _fail("study.trained_within", self.trained_within,
                  "a number in (0, 1] (accuracy below the cell's best, e.g. 0.1 = 10 pp)")
        if self.diagnostics_batch < 16:
            _fail("study.diagnostics_batch", self.diagnostics_batch, "an integer >= 16")
