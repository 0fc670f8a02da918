"""The ``study.strategies`` section: optimization strategies against initialization.

The article the study starts from holds that weight decay, momentum and learning-rate adjustment
stabilize and improve training beyond the initializer itself. Each *variant* retrains one cell of
the depth study (its depth, activation, width, initializers, seeds and data) with some of its
training settings replaced -- momentum, decoupled weight decay (Loshchilov & Hutter 2019,
arXiv:1711.05101), a cosine or step learning-rate schedule with warm-up (Goyal et al. 2017,
arXiv:1706.02677) -- so the report can set the gaps between initializers side by side: does a
better optimizer setting make the initializer matter less?
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from initbench.config.checks import ACTIVATIONS, LABEL, MAX_LAYERS, _choose, _fail, _section, _unknown
from initbench.config.sections import TrainingSettings

if TYPE_CHECKING:  # study.py holds StudyConfig, which holds a StrategiesConfig
    from initbench.config.study import DepthConfig

# What a variant may replace: every training setting of study.depth.
TRAINING_KEYS = tuple(f.name for f in dataclasses.fields(TrainingSettings))


@dataclass(frozen=True)
class VariantSettings(TrainingSettings):
    """One variant's training settings (study.depth's, with the variant's replacements), checked
    under its own name, ``study.strategies.variants.<name>``."""

    where: str = dataclasses.field(kw_only=True)

    @property
    def prefix(self) -> str:  # type: ignore[override]
        return self.where

    def training(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in TRAINING_KEYS}


@dataclass(frozen=True)
class StrategiesConfig:
    """The depth-study cell the variants retrain, and the variants by name ({}: none)."""

    depth: int
    activation: str
    variants: Mapping[str, VariantSettings]

    def __post_init__(self) -> None:
        if not 0 < self.depth <= MAX_LAYERS:
            _fail("study.strategies.depth", self.depth, f"an integer in [1, {MAX_LAYERS}]")
        _choose("study.strategies.activation", self.activation, ACTIVATIONS)

    def check_against(self, grid: DepthConfig) -> None:
        """The variants compare with the depth study's own cell, which must exist; a variant
        that replaces nothing would train that cell again."""
        if not self.variants:
            return
        if self.depth not in grid.depths:
            _fail("study.strategies.depth", self.depth, f"one of study.depth.depths "
                  f"{list(grid.depths)} (or study.strategies.variants: {{}})")
        if self.activation not in grid.activations:
            _fail("study.strategies.activation", self.activation, f"one of study.depth.activations "
                  f"{list(grid.activations)} (or study.strategies.variants: {{}})")
        plain = {k: getattr(grid, k) for k in TRAINING_KEYS}
        for name, settings in self.variants.items():
            if settings.training() == plain:
                _fail(f"study.strategies.variants.{name}", {}, "at least one training setting "
                      "that differs from study.depth's (the depth study's cell is the plain one)")


def parse_strategies(raw: Any, grid: DepthConfig) -> StrategiesConfig:
    """``study.strategies`` -> :class:`StrategiesConfig`, each variant study.depth's training
    settings with its replacements, every error naming ``study.strategies...``."""
    field = "study.strategies"
    if not isinstance(raw, Mapping):
        _fail(field, raw, "a mapping with depth, activation and variants")
    variants = raw.get("variants")
    if not isinstance(variants, Mapping):
        _fail(f"{field}.variants", variants, "a mapping name -> {<training setting>: value} "
              "({}: none)")
    parsed = {}
    for name, replaced in variants.items():
        where = f"{field}.variants.{name}"
        if not isinstance(name, str) or not LABEL.fullmatch(name):
            _fail(f"{field}.variants", name, "a name of 1-64 letters, digits, '_' and '-', "
                  "starting with a letter or digit")
        replaced = {} if replaced is None else replaced
        if not isinstance(replaced, Mapping):
            _fail(where, replaced, f"a mapping of training settings: {', '.join(TRAINING_KEYS)}")
        for key in replaced:
            if key not in TRAINING_KEYS:
                _unknown(f"{where}.", key, TRAINING_KEYS)
        merged = {**{k: getattr(grid, k) for k in TRAINING_KEYS}, **replaced, "where": where}
        parsed[name] = _section(VariantSettings, merged, where)
    out = _section(StrategiesConfig, raw, field, variants=types.MappingProxyType(parsed))
    out.check_against(grid)
    return out
