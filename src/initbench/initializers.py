"""The initializer registry: names used in ``params.yaml`` -> factories of Keras initializers.

Every entry maps a Keras snake_case name to a factory ``build(seed=..., **args)`` that returns a
*fresh* ``keras.initializers.Initializer``. A fresh instance per layer matters: Keras initializers
seeded with an int draw the same values every call, so one instance shared by two layers of the
same shape would give them identical weights.

Keras' built-ins are used wherever Keras has the scheme. Conventions (fan_in/fan_out as Keras
computes them: for a Dense kernel of shape (in, out), fan_in = in and fan_out = out; for a conv
kernel (kh, kw, c_in, c_out), fan_in = kh*kw*c_in and fan_out = kh*kw*c_out).

References:
    Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
    networks", AISTATS. He et al. (2015), "Delving Deep into Rectifiers", ICCV.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import keras


class InitializerError(ValueError):
    """An unknown initializer name or an invalid argument for one."""


@dataclass(frozen=True)
class InitializerInfo:
    """One registry entry: how to build the initializer and what it is, for docs and errors."""

    name: str
    build: Callable[..., keras.initializers.Initializer]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    distribution: str = ""
    variance: str = ""
    activation: str = ""
    reference: str = ""
    # Checks the merged arguments; returns an error message or None.
    check: Callable[[Mapping[str, Any]], str | None] | None = None


_REGISTRY: dict[str, InitializerInfo] = {}


def register(info: InitializerInfo) -> InitializerInfo:
    """Add an entry; a name can be registered once."""
    if info.name in _REGISTRY:
        raise InitializerError(f"initializer {info.name!r} is already registered")
    _REGISTRY[info.name] = info
    return info


def names() -> list[str]:
    """All registered names, sorted."""
    return sorted(_REGISTRY)


def get_info(name: str) -> InitializerInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InitializerError(
            f"unknown initializer {name!r}; valid names: {', '.join(names())}"
        ) from None


def resolve_args(name: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults merged with ``args``; rejects arguments the initializer does not take."""
    info = get_info(name)
    args = dict(args or {})
    unknown = sorted(set(args) - set(info.defaults))
    if unknown:
        allowed = ", ".join(sorted(info.defaults)) or "none"
        raise InitializerError(
            f"initializer {name!r} got unknown argument(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    merged = {**info.defaults, **args}
    for key, value in merged.items():
        default = info.defaults[key]
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            merged[key] = float(value)
        elif type(merged[key]) is not type(default):
            raise InitializerError(
                f"initializer {name!r} argument {key!r} must be a {type(default).__name__}, "
                f"got {value!r}"
            )
    if info.check is not None and (problem := info.check(merged)):
        raise InitializerError(f"initializer {name!r}: {problem}")
    return merged


def make(name: str, seed: int, args: Mapping[str, Any] | None = None) -> keras.initializers.Initializer:
    """A fresh initializer instance for one layer."""
    return get_info(name).build(seed=int(seed), **resolve_args(name, args))


def _positive(*keys: str) -> Callable[[Mapping[str, Any]], str | None]:
    def check(args: Mapping[str, Any]) -> str | None:
        for key in keys:
            if not args[key] > 0:
                return f"argument {key!r} must be > 0, got {args[key]!r}"
        return None

    return check


_GLOROT_REF = "Glorot & Bengio (2010), AISTATS"
_HE_REF = "He et al. (2015), ICCV, arXiv:1502.01852"

register(InitializerInfo(
    "random_normal",
    lambda seed, mean, stddev: keras.initializers.RandomNormal(mean, stddev, seed=seed),
    {"mean": 0.0, "stddev": 0.05},
    "normal N(mean, stddev^2)", "stddev^2 (Keras default stddev 0.05)", "any", "Keras default",
    _positive("stddev"),
))
register(InitializerInfo(
    "gaussian",
    lambda seed, mean, stddev: keras.initializers.RandomNormal(mean, stddev, seed=seed),
    {"mean": 0.0, "stddev": 0.1},
    "normal N(mean, stddev^2)", "stddev^2 (default 0.01)", "any",
    "the study's fixed-sigma Gaussian baseline", _positive("stddev"),
))
register(InitializerInfo(
    "glorot_uniform", lambda seed: keras.initializers.GlorotUniform(seed=seed), {},
    "uniform [-l, l], l = sqrt(6 / (fan_in + fan_out))", "2 / (fan_in + fan_out)",
    "tanh, sigmoid, linear", _GLOROT_REF,
))
register(InitializerInfo(
    "glorot_normal", lambda seed: keras.initializers.GlorotNormal(seed=seed), {},
    "truncated normal (2 sigma), rescaled", "2 / (fan_in + fan_out)",
    "tanh, sigmoid, linear", _GLOROT_REF,
))
register(InitializerInfo(
    "he_normal", lambda seed: keras.initializers.HeNormal(seed=seed), {},
    "truncated normal (2 sigma), rescaled", "2 / fan_in", "relu", _HE_REF,
))
register(InitializerInfo(
    "he_uniform", lambda seed: keras.initializers.HeUniform(seed=seed), {},
    "uniform [-l, l], l = sqrt(6 / fan_in)", "2 / fan_in", "relu", _HE_REF,
))
