"""``params.yaml`` loaded into typed, frozen, validated config objects.

This is the only place the parameters are read. Every key is required (``params.yaml`` is the
single source of truth, so no second default lives here), unknown keys are rejected, and every
error names the field, the value given and what is allowed, before any stage does work.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from initbench.data.datasets import DATASETS
from initbench.init import registry as initializers
from initbench.paths import cell_name

LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "leaky_relu", "swish", "linear")
OPTIMIZERS = ("adam", "sgd")  # what initbench.train.stacked implements (Keras update rules)


class ConfigError(ValueError):
    """Invalid parameters; the message names the field, the value and what is allowed."""


def _fail(field: str, value: Any, allowed: str) -> typing.NoReturn:
    raise ConfigError(f"params: {field}: got {value!r}; allowed: {allowed}")


def _choose(field: str, value: Any, options: Sequence[str]) -> None:
    """Fail unless ``value`` is one of ``options``, suggesting the closest for a misspelling."""
    if value in options:
        return
    close = difflib.get_close_matches(str(value), options, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"params: {field}: got {value!r}{hint}; allowed: {', '.join(options)}")


def _unknown(prefix: str, key: Any, known: Sequence[str]) -> typing.NoReturn:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
    raise ConfigError(f"params: {prefix}{key}: unknown key{hint}; known keys: {', '.join(known)}")


# Bounds that keep a typo from reaching the trainer: far above any sensible value, far below
# what would exhaust memory or integer ranges (seed + i must stay a valid 31-bit seed).
MAX_WIDTH, MAX_LAYERS, MAX_BATCH, MAX_EPOCHS, MAX_SEED = 65_536, 100, 65_536, 10_000, 2**31 - 10_001
N_CLASSES = 10


def _check_training(cfg: Any, prefix: str) -> None:
    """optimizer, learning_rate, momentum, batch_size, epochs of ``train`` or ``study.depth``."""
    _choose(f"{prefix}.optimizer", cfg.optimizer, OPTIMIZERS)
    if not (math.isfinite(cfg.learning_rate) and 0 < cfg.learning_rate <= 10):
        _fail(f"{prefix}.learning_rate", cfg.learning_rate, "a finite number in (0, 10]")
    if not 0.0 <= cfg.momentum < 1.0:
        _fail(f"{prefix}.momentum", cfg.momentum, "a number in [0, 1)")
    if not 0 < cfg.batch_size <= MAX_BATCH:
        _fail(f"{prefix}.batch_size", cfg.batch_size, f"an integer in [1, {MAX_BATCH}]")
    if not 0 < cfg.epochs <= MAX_EPOCHS:
        _fail(f"{prefix}.epochs", cfg.epochs, f"an integer in [1, {MAX_EPOCHS}]")


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    val_fraction: float
    standardize: bool
    split_seed: int
    train_limit: int | None
    test_limit: int | None

    def __post_init__(self) -> None:
        _choose("data.dataset", self.dataset, sorted(DATASETS))
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


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str
    learning_rate: float
    momentum: float
    batch_size: int
    epochs: int
    seed: int

    def __post_init__(self) -> None:
        _check_training(self, "train")
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
        name = args.pop("name", label)
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
class GridConfig:
    """What the depth study and the phase diagram share: plain deep MLPs (no normalization, no
    skip connections), one cell per (depth, activation), trained with their own optimizer."""

    depths: tuple[int, ...]
    width: int
    activations: tuple[str, ...]
    optimizer: str
    learning_rate: float
    momentum: float
    batch_size: int
    epochs: int
    seeds: int
    train_limit: int | None
    prefix: typing.ClassVar[str] = "study.depth"

    def __post_init__(self) -> None:
        p = self.prefix
        _check_training(self, p)
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

    def training(self, seed: int) -> TrainConfig:
        return TrainConfig(self.optimizer, self.learning_rate, self.momentum, self.batch_size,
                           self.epochs, seed)


@dataclass(frozen=True)
class DepthConfig(GridConfig):
    """The depth study: every initializer of ``study.depth.initializers`` at every depth."""

    initializers: Mapping[str, InitializerSpec]


@dataclass(frozen=True)
class PhaseConfig(GridConfig):
    """The trainability phase diagram (Schoenholz et al. 2017): weights N(0, sigma_w^2 / fan_in),
    zero biases, for every sigma_w of the grid at every depth."""

    sigma_w: tuple[float, ...]
    prefix: typing.ClassVar[str] = "study.phase"

    def __post_init__(self) -> None:
        super().__post_init__()
        if (not self.sigma_w or len(set(self.sigma_w)) != len(self.sigma_w)
                or any(not (math.isfinite(s) and 0 < s <= 10) for s in self.sigma_w)):
            _fail("study.phase.sigma_w", list(self.sigma_w),
                  "a non-empty list of distinct numbers in (0, 10]")

    @property
    def initializers(self) -> Mapping[str, InitializerSpec]:
        """label ``sw_<sigma_w>`` (``.`` written ``p``: ``sw_1p41``) -> its variance_scaling."""
        return types.MappingProxyType({
            sigma_label(s): InitializerSpec(sigma_label(s), "variance_scaling", types.MappingProxyType(
                {"scale": s * s, "mode": "fan_in", "distribution": "untruncated_normal"}))
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


@dataclass(frozen=True)
class StudyConfig:
    """Seeds, diagnostics and statistics of every cell; the depth cells' own settings."""

    seeds: int
    vary_data_order: bool
    confidence: float
    equivalence_margin: float
    diagnostics_batch: int
    lr_sweep: LrSweepConfig
    depth: DepthConfig
    phase: PhaseConfig

    def __post_init__(self) -> None:
        if self.seeds < 1:
            _fail("study.seeds", self.seeds,
                  "an integer >= 1 (1: one model per initializer; 2 or more for an interval)")
        if not 0.5 <= self.confidence < 1.0:
            _fail("study.confidence", self.confidence, "a number in [0.5, 1)")
        if not 0 < self.equivalence_margin <= 0.5:
            _fail("study.equivalence_margin", self.equivalence_margin,
                  "a number in (0, 0.5] (accuracy, e.g. 0.003 = 0.3 pp)")
        if self.diagnostics_batch < 16:
            _fail("study.diagnostics_batch", self.diagnostics_batch, "an integer >= 16")


@dataclass(frozen=True)
class CellConfig:
    """One cell: an architecture and optimizer x every initializer of the cell x its seeds.

    ``baseline`` is the pipeline's model (``model``, ``train``, ``initializers``, ``study.seeds``);
    ``depth-<d>-<activation>`` a plain deep MLP of the depth study (``study.depth``). Seed i of
    a cell initializes with ``train.seed + i``; it also orders the batches when
    ``study.vary_data_order`` (otherwise every model of the cell sees the same order).
    """

    name: str
    model: ModelConfig
    train: TrainConfig
    initializers: Mapping[str, InitializerSpec]
    seeds: int
    train_limit: int | None
    save_models: bool
    # label -> that label's learning rate, where it differs from train.learning_rate (the sweep)
    learning_rates: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({}))


@dataclass(frozen=True)
class Params:
    experiment: str
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    initializers: Mapping[str, InitializerSpec]
    study: StudyConfig
    registered_model: str | None = None  # MLflow model registry name for the best model; None: off

    def __post_init__(self) -> None:
        if self.train.learning_rate in self.study.lr_sweep.learning_rates:
            _fail("study.lr_sweep.learning_rates", list(self.study.lr_sweep.learning_rates),
                  f"rates other than train.learning_rate ({self.train.learning_rate}): the "
                  "pipeline's cell already trains at it")

    def cells(self) -> dict[str, CellConfig]:
        """Every cell of these params, by name: ``baseline`` first, the learning-rate sweep (if
        any), the depth cells, then the phase diagram's."""
        out = {"baseline": CellConfig("baseline", self.model, self.train, self.initializers,
                                      self.study.seeds, None, True)}
        sweep = self.study.lr_sweep
        if sweep.learning_rates:
            labels = {sweep_label(label, lr): (spec, lr) for label, spec in self.initializers.items()
                      for lr in sweep.learning_rates}
            out["lr_sweep"] = CellConfig(
                "lr_sweep", self.model, self.train,
                types.MappingProxyType({k: v[0] for k, v in labels.items()}),
                min(sweep.seeds, self.study.seeds), None,
                False, types.MappingProxyType({k: v[1] for k, v in labels.items()}))
        for kind, grid in (("depth", self.study.depth), ("phase", self.study.phase)):
            for depth in grid.depths:
                for act in grid.activations:
                    name = cell_name(depth, act, kind)
                    out[name] = CellConfig(name, ModelConfig((grid.width,) * depth, act),
                                           grid.training(self.train.seed), grid.initializers,
                                           grid.seeds, grid.train_limit, False)
        return out

    def cell(self, name: str) -> CellConfig:
        cells = self.cells()
        if name not in cells:
            _fail("cell", name, ", ".join(cells))
        return cells[name]


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _coerce(field: str, value: Any, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(field, value, inner)
    if origin is tuple:
        if not isinstance(value, Sequence) or isinstance(value, str):
            _fail(field, value, "a list")
        return tuple(_coerce(f"{field}[{i}]", v, args[0]) for i, v in enumerate(value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (hint in (int, float) and isinstance(value, bool)) or not isinstance(value, hint):
        _fail(field, value, _TYPE_WORDS[hint])
    return value


def _section(cls: type, raw: Any, prefix: str, **parsed: Any) -> Any:
    """Build dataclass ``cls`` from mapping ``raw``; ``parsed`` supplies fields parsed elsewhere."""
    if not isinstance(raw, Mapping):
        _fail(prefix, raw, "a mapping")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        _unknown(f"{prefix}.", unknown[0], names)
    missing = [n for n in names if n not in raw]
    if missing:
        raise ConfigError(f"params: {prefix}.{missing[0]}: missing (required key)")
    return cls(**{n: parsed[n] if n in parsed else _coerce(f"{prefix}.{n}", raw[n], hints[n])
                  for n in names})


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
    """Validate a parsed params mapping into :class:`Params`."""
    if not isinstance(raw, Mapping):
        _fail("<top level>", raw, "a mapping")
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
    for key in ("depth", "phase"):
        if not isinstance(study.get(key), Mapping):
            _fail(f"study.{key}", study.get(key), "a mapping")
    depth = study["depth"]
    activations = depth.get("activations")
    activations = activations if isinstance(activations, list) else []
    grids["depth"] = _section(DepthConfig, depth, "study.depth", initializers=_initializer_map(
        depth.get("initializers"), "study.depth.initializers",
        [a for a in activations if a in ACTIVATIONS] + ["linear"]))
    grids["phase"] = _section(PhaseConfig, study["phase"], "study.phase")
    grids["lr_sweep"] = _section(LrSweepConfig, study.get("lr_sweep"), "study.lr_sweep")
    return Params(
        experiment=raw["experiment"],
        registered_model=registered,
        data=_section(DataConfig, raw["data"], "data"),
        model=model,
        train=_section(TrainConfig, raw["train"], "train"),
        initializers=_initializer_map(raw["initializers"], "initializers", [model.activation]),
        study=_section(StudyConfig, study, "study", **grids),
    )


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (value parsed as YAML), like ``dvc exp run -S``.

    An empty value (``train.epochs=``) leaves the key as it is: that is how MLproject entry points
    say "use params.yaml" without defining a second default.
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key.path=value")
        if text == "":
            continue
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
        node[leaf] = parse_yaml(text, f"override {item!r}")
    return raw


def parse_yaml(text: str, what: str) -> Any:
    """YAML read the way DVC reads it (ruamel, YAML 1.2: ``yes``/``no`` are strings), so
    initbench and DVC never see two different files; a duplicate key is an error, not "last wins"."""
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as err:
        problem, mark = getattr(err, "problem", None), getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        detail = f"{problem}{where}" if problem else " ".join(str(err).split())
        raise ConfigError(f"{what} is not valid YAML: {detail}") from None


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
