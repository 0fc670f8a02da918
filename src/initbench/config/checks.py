"""What every section of ``params.yaml`` is checked against: the error type, its one-line
messages (field, value given, what is allowed) and the bounds shared by several sections."""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "leaky_relu", "swish", "softsign",
               "linear")
OPTIMIZERS = ("adam", "sgd")  # what initbench.train.stacked implements (Keras update rules)
SCHEDULES = ("constant", "cosine", "step")  # learning-rate schedules (initbench.train.schedule)


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


def _string_keys(node: Any, prefix: str = "") -> None:
    """Every mapping key is a name: a YAML key ``1``, ``true`` or ``null`` would otherwise reach
    code that sorts or formats keys as strings."""
    items = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(
        node, list) else ()
    for key, value in items:
        where = f"{prefix}[{key}]" if isinstance(node, list) else f"{prefix}{'.' if prefix else ''}{key}"
        if isinstance(node, Mapping) and not isinstance(key, str):
            _fail(prefix or "<top level>", key, "keys that are names (quote a key that YAML reads "
                  "as a number, true/false or null)")
        _string_keys(value, where)


# Bounds that keep a typo from reaching the trainer: far above any sensible value, far below
# what would exhaust memory or integer ranges (seed + i must stay a valid 31-bit seed).
MAX_WIDTH, MAX_LAYERS, MAX_BATCH, MAX_EPOCHS, MAX_SEED = 65_536, 100, 65_536, 10_000, 2**31 - 10_001
MAX_STEPS = 10_000_000
N_CLASSES = 10


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
