"""``params.yaml`` loaded into typed, frozen, validated config objects.

This is the only place the parameters are read. Every key is required (``params.yaml`` is the
single source of truth, so no second default lives here), unknown keys are rejected, and every
error names the field, the value given and what is allowed, before any stage does work.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initbench.config import memory
from initbench.config.cells import cells_of, check_steps
from initbench.config.checks import (
    ACTIVATIONS,
    LABEL,
    MAX_SEED,
    OPTIMIZERS,
    ConfigError,
    _fail,
    _section,
    _string_keys,
    _unknown,
)
from initbench.config.sections import (
    CellConfig,
    ConvModelConfig,
    DataConfig,
    InitializerSpec,
    ModelConfig,
    TrainConfig,
    TrainingSettings,
)
from initbench.config.strategies import StrategiesConfig, VariantSettings, parse_strategies
from initbench.config.study import (
    ConvConfig,
    DatasetsConfig,
    DepthConfig,
    GridConfig,
    LrSweepConfig,
    PhaseConfig,
    StudyConfig,
    sigma_label,
    sweep_label,
)
from initbench.config.yamlio import apply_overrides, parse_yaml
from initbench.init import registry as initializers

__all__ = [
    "ACTIVATIONS",
    "MAX_SEED",
    "OPTIMIZERS",
    "CellConfig",
    "ConfigError",
    "ConvConfig",
    "ConvModelConfig",
    "DataConfig",
    "DatasetsConfig",
    "DepthConfig",
    "GridConfig",
    "InitializerSpec",
    "LrSweepConfig",
    "ModelConfig",
    "Params",
    "PhaseConfig",
    "StrategiesConfig",
    "StudyConfig",
    "TrainConfig",
    "TrainingSettings",
    "VariantSettings",
    "apply_overrides",
    "from_dict",
    "load",
    "parse_yaml",
    "sigma_label",
    "sweep_label",
]


@dataclass(frozen=True)
class Params:
    experiment: str
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    initializers: Mapping[str, InitializerSpec]
    study: StudyConfig
    registered_model: str | None = None  # MLflow model registry name for the best model; None: off

    @property
    def datasets(self) -> tuple[str, ...]:
        """Every dataset the stages read: ``data.dataset`` first, then the others of
        ``study.datasets``."""
        return (self.data.dataset, *self.study.datasets.others(self.data.dataset))

    def cells(self) -> dict[str, CellConfig]:
        """Every cell of these params, by name (:func:`initbench.config.cells.cells_of`)."""
        return cells_of(self)

    def cell(self, name: str) -> CellConfig:
        cells = self.cells()
        if name not in cells:
            _fail("cell", name, ", ".join(cells))
        return cells[name]


def _initializer_map(raw: Any, field: str, activations: Sequence[str]) -> Mapping[str, InitializerSpec]:
    """label -> spec, checked against every activation the models will use (``gain: auto``)."""
    if not isinstance(raw, Mapping) or not raw:
        _fail(field, raw, "a non-empty mapping label -> name or {name: ..., <args>}")
    specs: dict[str, InitializerSpec] = {}
    folded: dict[str, str] = {}
    for label, entry in raw.items():
        # A label names a file, a DVC plot and an MLflow run: portable, and safe in any of them.
        if not isinstance(label, str) or not LABEL.fullmatch(label):
            _fail(field, label, "a label of 1-64 letters, digits, '_' and '-', starting with a "
                                "letter or digit")
        if label.casefold() in folded:  # he_normal and He_Normal would share a file on macOS
            _fail(field, label, f"a label that differs from {folded[label.casefold()]!r} by more "
                                "than letter case")
        folded[label.casefold()] = label
        spec = InitializerSpec.parse(label, entry, field)
        for activation in activations:
            try:  # e.g. `gain: auto` needs an activation with a known gain
                initializers.effective_args(spec.name, spec.args, activation)
            except initializers.InitializerError as err:
                raise ConfigError(f"params: {field}.{label}: {err}") from None
        specs[label] = spec
    return types.MappingProxyType(specs)


def from_dict(raw: Any) -> Params:
    """Validate a parsed params mapping into :class:`Params`, each cell's memory included
    (:mod:`initbench.config.memory`)."""
    if not isinstance(raw, Mapping):
        _fail("<top level>", raw, "a mapping")
    _string_keys(raw)
    top = ("experiment", "data", "model", "train", "initializers", "study")
    unknown = sorted(set(raw) - {*top, "registered_model"})
    if unknown:
        _unknown("", unknown[0], (*top, "registered_model"))
    for key in top:
        if key not in raw:
            raise ConfigError(f"params: {key}: missing (required key)")
    if not isinstance(raw["experiment"], str) or not raw["experiment"].strip():
        _fail("experiment", raw["experiment"], "a non-empty MLflow experiment name")
    registered = raw.get("registered_model")
    if registered is not None and not (isinstance(registered, str)
                                       and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", registered)):
        _fail("registered_model", registered, "null (off) or a model registry name: letters, "
              "digits, '.', '_', '-', at most 128 characters")
    model = _section(ModelConfig, raw["model"], "model")
    study = raw["study"] if isinstance(raw["study"], Mapping) else _fail("study", raw["study"], "a mapping")
    grids = {}
    for key in ("depth", "conv", "phase"):
        if not isinstance(study.get(key), Mapping):
            _fail(f"study.{key}", study.get(key), "a mapping")
    for key, cls in (("depth", DepthConfig), ("conv", ConvConfig)):
        grid = study[key]
        activations = grid.get("activations")
        activations = activations if isinstance(activations, list) else []
        grids[key] = _section(cls, grid, f"study.{key}", initializers=_initializer_map(
            grid.get("initializers"), f"study.{key}.initializers",
            [a for a in activations if a in ACTIVATIONS] + ["linear"]))
    grids["phase"] = _section(PhaseConfig, study["phase"], "study.phase")
    grids["lr_sweep"] = _section(LrSweepConfig, study.get("lr_sweep"), "study.lr_sweep")
    grids["datasets"] = _section(DatasetsConfig, study.get("datasets"), "study.datasets")
    grids["strategies"] = parse_strategies(study.get("strategies"), grids["depth"])
    params = Params(
        experiment=raw["experiment"],
        registered_model=registered,
        data=_section(DataConfig, raw["data"], "data"),
        model=model,
        train=_section(TrainConfig, raw["train"], "train"),
        initializers=_initializer_map(raw["initializers"], "initializers", [model.activation]),
        study=_section(StudyConfig, study, "study", **grids),
    )
    check_steps(params)
    memory.check(params)  # every value within its bounds; now does each cell fit?
    return params


def load(path: Path, overrides: Sequence[str] = ()) -> Params:
    """Read and validate ``params.yaml`` (with optional overrides)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"params file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"params file {path} cannot be read: {err}") from None
    raw = parse_yaml(text, f"params file {path}")
    if isinstance(raw, dict):
        raw = apply_overrides(raw, overrides)
    return from_dict(raw)
