"""The initializer registry: names used in ``params.yaml`` -> factories of Keras initializers.

Every entry maps a Keras snake_case name to a factory ``build(seed=..., **args)`` that returns a
*fresh* ``keras.initializers.Initializer``. A fresh instance per layer matters: Keras initializers
seeded with an int draw the same values every call, so one instance shared by two layers of the
same shape would give them identical weights.

Keras' built-ins are used wherever Keras has the scheme; what it lacks (sparse, a square-only
identity) lives in :mod:`initbench.init.custom`. Conventions (fan_in/fan_out as Keras
computes them: for a Dense kernel of shape (in, out), fan_in = in and fan_out = out; for a conv
kernel (kh, kw, c_in, c_out), fan_in = kh*kw*c_in and fan_out = kh*kw*c_out). Keras' ``*_normal``
variance-scaling schemes draw from a normal truncated at 2 sigma with sigma = sqrt(Var)/0.8796...,
so that the variance *after* truncation is the formula's.

``gain: auto`` (orthogonal, identity) is resolved when the layer is built, from its activation:
``make(name, seed, args, activation="relu")`` (see :mod:`initbench.init.gains`); for ``identity``
it is 1 whatever the activation, since W = I carries each unit to itself unchanged. Entries with
``data_dependent=True`` (``lsuv``) build their base initializer; the data-dependent step is
:func:`initbench.init.lsuv.lsuv_init`, run on the built model.

References:
    Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
    networks", AISTATS. He et al. (2015), "Delving Deep into Rectifiers", ICCV, arXiv:1502.01852.
    LeCun et al. (1998), "Efficient BackProp". Saxe et al. (2013), arXiv:1312.6120. Martens (2010),
    ICML. Le et al. (2015), arXiv:1504.00941. Mishkin & Matas (2016), arXiv:1511.06422.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from initbench.init import gains

if TYPE_CHECKING:
    import keras


def _k() -> ModuleType:
    """``keras.initializers``, imported when an initializer is built: validating params.yaml and
    listing the registry stay free of TensorFlow (it costs seconds to import)."""
    import keras

    return keras.initializers


def _custom() -> ModuleType:
    from initbench.init import custom

    return custom


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
    # True: ``build`` gives the starting point only; the scheme needs data (initbench.init.lsuv).
    data_dependent: bool = False
    # Allowed values of string arguments.
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The layer's bias initializer, from its kernel's fan_in and a seed; None: the cell's rule
    # (zeros, or N(0, sigma_b^2) in a grid with sigma_b).
    bias: Callable[[int, int], keras.initializers.Initializer] | None = None


_REGISTRY: dict[str, InitializerInfo] = {}
GAIN_ARGS = ("gain",)  # a positive number or "auto" (resolved from the layer's activation)
IDENTITY_AUTO_GAIN = 1.0  # `identity` with gain: auto, for every activation with a known gain
_TYPE_WORDS = {float: "a float", int: "an int", str: "a string", bool: "a bool"}


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
        close = difflib.get_close_matches(str(name), names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InitializerError(
            f"unknown initializer {name!r}{hint}; valid names: {', '.join(names())}"
        ) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _coerce(name: str, key: str, value: Any, default: Any, choices: tuple[str, ...] | None) -> Any:
    def fail(what: str) -> InitializerError:
        return InitializerError(f"initializer {name!r} argument {key!r} must be {what}, got {value!r}")

    if key in GAIN_ARGS:
        if value == "auto":
            return value
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            raise fail("a positive number or 'auto'")
        return float(value)
    if isinstance(default, float) and _is_number(value):
        if not math.isfinite(value):
            raise fail("a finite number")
        return float(value)
    if type(value) is not type(default):
        raise fail(_TYPE_WORDS.get(type(default), type(default).__name__))
    if choices is not None and value not in choices:
        raise fail(f"one of {', '.join(choices)}")
    return value


def resolve_args(name: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults merged with ``args``; rejects arguments the initializer does not take.

    Types follow the defaults (a float argument accepts an int; numbers must be finite); ``gain``
    takes a positive number or the string ``"auto"``; string arguments must be one of the entry's
    ``choices``. Then the entry's ``check`` runs on the merged arguments.
    """
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
        merged[key] = _coerce(name, key, value, info.defaults[key], info.choices.get(key))
    if info.check is not None and (problem := info.check(merged)):
        raise InitializerError(f"initializer {name!r}: {problem}")
    return merged


def effective_args(
    name: str, args: Mapping[str, Any] | None = None, activation: str | None = None
) -> dict[str, Any]:
    """:func:`resolve_args`, with ``gain: auto`` replaced by the gain of ``activation``.

    ``activation`` is the Keras activation name of the layer the kernel belongs to ("linear" for
    a layer whose nonlinearity should not be compensated, e.g. the softmax output). A ``gain:
    auto`` without an activation, or for an activation with no known gain, is an error.
    """
    merged = resolve_args(name, args)
    for key in GAIN_ARGS:
        if merged.get(key) != "auto":
            continue
        if activation is None:
            raise InitializerError(
                f"initializer {name!r} argument {key!r} is 'auto', which needs the layer's "
                "activation (make(..., activation=...))"
            )
        try:
            gain = gains.gain_for_activation(activation)
            # W = I maps each unit to itself: no unit is mixed with zeroed ones, so the ReLU
            # "half the units are zero" correction (He et al.) does not apply; the identity
            # preserves non-negative (post-ReLU) signals exactly with gain 1 (Le et al. 2015).
            merged[key] = IDENTITY_AUTO_GAIN if name == "identity" else gain
        except ValueError as err:
            raise InitializerError(f"initializer {name!r} argument {key!r} 'auto': {err}") from None
    return merged


def make(
    name: str, seed: int, args: Mapping[str, Any] | None = None, *, activation: str | None = None
) -> keras.initializers.Initializer:
    """A fresh initializer instance for one layer whose activation is ``activation``."""
    return get_info(name).build(seed=int(seed), **effective_args(name, args, activation))


def make_bias(name: str, fan_in: int, seed: int, sigma_b: float = 0.0) -> keras.initializers.Initializer:
    """A layer's bias initializer: the entry's own (``pytorch_default``), else N(0, sigma_b^2)
    (Keras' RandomNormal), else zeros."""
    own = get_info(name).bias
    if own is not None:
        return own(int(fan_in), int(seed))
    if sigma_b > 0:
        return _k().RandomNormal(0.0, float(sigma_b), seed=int(seed))
    return _k().Zeros()


def _checks(*checks: Callable[[Mapping[str, Any]], str | None]) -> Callable[[Mapping[str, Any]], str | None]:
    def check(args: Mapping[str, Any]) -> str | None:
        return next((p for c in checks if (p := c(args))), None)

    return check


def _positive(*keys: str) -> Callable[[Mapping[str, Any]], str | None]:
    def check(args: Mapping[str, Any]) -> str | None:
        for key in keys:
            if not args[key] > 0:
                return f"argument {key!r} must be > 0, got {args[key]!r}"
        return None

    return check


def _minval_below_maxval(args: Mapping[str, Any]) -> str | None:
    if not args["minval"] < args["maxval"]:
        return (f"argument 'minval' must be < argument 'maxval', got minval={args['minval']!r}, "
                f"maxval={args['maxval']!r}")
    return None


def _sparsity_in_range(args: Mapping[str, Any]) -> str | None:
    if not 0.0 <= args["sparsity"] < 1.0:
        return f"argument 'sparsity' must be in [0, 1), got {args['sparsity']!r}"
    return None


def _slope_non_negative(args: Mapping[str, Any]) -> str | None:
    if args["negative_slope"] < 0:
        return f"argument 'negative_slope' must be >= 0, got {args['negative_slope']!r}"
    return None


def _lsuv_check(args: Mapping[str, Any]) -> str | None:
    if not args["tol"] > 0:
        return f"argument 'tol' must be > 0, got {args['tol']!r}"
    for key in ("max_iter", "batch_size"):
        if args[key] < 1:
            return f"argument {key!r} must be an int >= 1, got {args[key]!r}"
    # A constant base (zeros, constant) has no variance to rescale: LSUV would divide by 0.
    allowed = [n for n in names() if not _REGISTRY[n].data_dependent and n not in ("zeros", "constant")]
    if args["base"] not in allowed:
        return (f"argument 'base' must be a registered random initializer that needs no data, one of "
                f"{', '.join(allowed)}; got {args['base']!r}")
    return None


def _he(distribution: str, keras_class: str) -> Callable[..., keras.initializers.Initializer]:
    def build(seed: int, negative_slope: float) -> keras.initializers.Initializer:
        if negative_slope == 0.0:
            return getattr(_k(), keras_class)(seed=seed)
        return _k().VarianceScaling(
            2.0 / (1.0 + negative_slope**2), "fan_in", distribution, seed=seed)

    return build


def _lsuv_build(seed: int, base: str, tol: float, max_iter: int, batch_size: int):
    return make(base, seed)



# --- The catalog ------------------------------------------------------------------------------
_GLOROT_REF = "Glorot & Bengio (2010), AISTATS"
_HE_REF = "He et al. (2015), ICCV, arXiv:1502.01852"
_LECUN_REF = "LeCun et al. (1998), Efficient BackProp; Klambauer et al. (2017), arXiv:1706.02515"
_TRUNC = "truncated normal (2 sigma, sigma = sqrt(Var)/0.8796), variance as the formula"
_HE_VAR = "2 / ((1 + a^2) fan_in), a = negative_slope"
_SCALING = {"mode": ("fan_in", "fan_out", "fan_avg"),
            "distribution": ("truncated_normal", "untruncated_normal", "uniform")}

for _info in (
    InitializerInfo(
        "zeros", lambda seed: _k().Zeros(), {}, "constant 0", "0",
        "none: control (every gradient but the output bias's is exactly 0: the net learns only "
        "the class prior and predicts the majority class)",
        "control (Keras Zeros)"),
    InitializerInfo(
        "constant", lambda seed, value: _k().Constant(value), {"value": 0.01}, "constant value",
        "0 (every weight equal: symmetric, units never differentiate)", "none: control",
        "control (Keras Constant)"),
    InitializerInfo(
        "random_uniform", lambda seed, minval, maxval: _k().RandomUniform(minval, maxval, seed=seed),
        {"minval": -0.05, "maxval": 0.05}, "uniform [minval, maxval]", "(maxval - minval)^2 / 12",
        "any (scale ignores the layer size)", "Keras default RandomUniform", _minval_below_maxval),
    InitializerInfo(
        "random_normal", lambda seed, mean, stddev: _k().RandomNormal(mean, stddev, seed=seed),
        {"mean": 0.0, "stddev": 0.05}, "normal N(mean, stddev^2)", "stddev^2",
        "any (scale ignores the layer size)", "Keras default RandomNormal", _positive("stddev")),
    InitializerInfo(
        "gaussian", lambda seed, mean, stddev: _k().RandomNormal(mean, stddev, seed=seed),
        {"mean": 0.0, "stddev": 0.1}, "normal N(mean, stddev^2)", "stddev^2 (0.01 by default)",
        "any (scale ignores the layer size)", "the study's fixed-sigma Gaussian baseline",
        _positive("stddev")),
    InitializerInfo(
        "truncated_normal", lambda seed, mean, stddev: _k().TruncatedNormal(mean, stddev, seed=seed),
        {"mean": 0.0, "stddev": 0.05},
        "N(mean, stddev^2) re-drawn outside mean +- 2 stddev (not rescaled)",
        "0.7737 stddev^2 (= (0.8796 stddev)^2)", "any (scale ignores the layer size)",
        "Keras TruncatedNormal", _positive("stddev")),
    InitializerInfo(
        "glorot_uniform", lambda seed: _k().GlorotUniform(seed=seed), {},
        "uniform [-l, l], l = sqrt(6 / (fan_in + fan_out))", "2 / (fan_in + fan_out)",
        "tanh, sigmoid, linear", _GLOROT_REF),
    InitializerInfo(
        "glorot_normal", lambda seed: _k().GlorotNormal(seed=seed), {}, _TRUNC,
        "2 / (fan_in + fan_out)", "tanh, sigmoid, linear", _GLOROT_REF),
    InitializerInfo(
        "he_normal", _he("truncated_normal", "HeNormal"), {"negative_slope": 0.0}, _TRUNC,
        _HE_VAR, "relu (leaky_relu with its slope; Keras' leaky_relu uses 0.2)", _HE_REF,
        _slope_non_negative),
    InitializerInfo(
        "he_uniform", _he("uniform", "HeUniform"), {"negative_slope": 0.0},
        "uniform [-l, l], l = sqrt(6 / ((1 + a^2) fan_in))", _HE_VAR,
        "relu (leaky_relu with its slope; Keras' leaky_relu uses 0.2)", _HE_REF,
        _slope_non_negative),
    InitializerInfo(
        "lecun_normal", lambda seed: _k().LecunNormal(seed=seed), {}, _TRUNC, "1 / fan_in",
        "selu (also linear, tanh)", _LECUN_REF),
    InitializerInfo(
        "lecun_uniform", lambda seed: _k().LecunUniform(seed=seed), {},
        "uniform [-l, l], l = sqrt(3 / fan_in)", "1 / fan_in", "selu (also linear, tanh)",
        _LECUN_REF),
    InitializerInfo(
        # PyTorch's kaiming_uniform_(a=sqrt(5)): bound sqrt(2 / (1 + 5)) sqrt(3 / fan_in).
        "standard_uniform",
        lambda seed: _k().VarianceScaling(1 / 3, "fan_in", "uniform", seed=seed), {},
        "uniform [-l, l], l = 1 / sqrt(fan_in) (Keras VarianceScaling(1/3, fan_in, uniform))",
        "1 / (3 fan_in)",
        "none in particular: Glorot & Bengio's 'standard' baseline, and the kernel of PyTorch's "
        "nn.Linear / nn.Conv2d default with a zero bias (pytorch_default draws the bias too)",
        "Glorot & Bengio (2010), AISTATS, eq. 1; PyTorch nn.Linear.reset_parameters"),
    InitializerInfo(
        "pytorch_default",
        lambda seed: _k().VarianceScaling(1 / 3, "fan_in", "uniform", seed=seed), {},
        "kernel and bias uniform [-l, l], l = 1 / sqrt(fan_in): PyTorch's nn.Linear / nn.Conv2d "
        "reset_parameters (kernel kaiming_uniform_(a=sqrt(5)), bias U(-l, l)); a model ported "
        "from PyTorch starts here",
        "kernel 1 / (3 fan_in); bias 1 / (3 fan_in)",
        "none in particular (PyTorch's default for every activation)",
        "PyTorch torch.nn.Linear.reset_parameters; He et al. (2015), ICCV (kaiming_uniform_)",
        bias=lambda fan_in, seed: _k().RandomUniform(-fan_in**-0.5, fan_in**-0.5, seed=seed)),
    InitializerInfo(
        "variance_scaling",
        lambda seed, scale, mode, distribution: _k().VarianceScaling(scale, mode, distribution, seed=seed),
        {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"},
        "distribution: truncated_normal (2 sigma, rescaled), untruncated_normal, or uniform "
        "[-l, l], l = sqrt(3 scale / n)",
        "scale / n; n = fan_in, fan_out or (fan_in + fan_out) / 2 by mode", "any (choose scale)",
        "Keras VarianceScaling (generalizes Glorot, He, LeCun)", _positive("scale"),
        choices=_SCALING),
    InitializerInfo(
        "orthogonal", lambda seed, gain: _k().Orthogonal(gain, seed=seed), {"gain": 1.0},
        "gain * Q, Q from the QR decomposition of a Gaussian matrix (sign-fixed); a kernel is "
        "flattened to (prod(shape[:-1]), shape[-1])",
        "gain^2 / max(rows, cols); W^T W = gain^2 I (tall) or W W^T = gain^2 I (wide)",
        "any; gain: auto picks calculate_gain(activation)",
        "Saxe et al. (2013), arXiv:1312.6120"),
    InitializerInfo(
        "identity", lambda seed, gain: _custom().SquareIdentity(gain), {"gain": 1.0},
        "gain * I; square 2D kernels only (fan_in == fan_out)",
        "mean gain / n, Var gain^2 (n - 1) / n^2 (n = fan_in)",
        "relu (IRNN), linear; gain: auto is 1 (the map preserves each unit)",
        "Le, Jaitly & Hinton (2015), arXiv:1504.00941"),
    InitializerInfo(
        "sparse", lambda seed, sparsity, stddev: _custom().SparseNormal(sparsity, stddev, seed=seed),
        {"sparsity": 0.9, "stddev": 0.01},
        "per output unit exactly k = max(1, round((1 - sparsity) fan_in)) non-zero incoming "
        "weights ~ N(0, stddev^2), the rest 0",
        "(k / fan_in) stddev^2", "tanh, sigmoid (Martens: k = 15, stddev 1)",
        "Martens (2010), ICML", _checks(_sparsity_in_range, _positive("stddev"))),
    InitializerInfo(
        "lsuv", _lsuv_build,
        {"base": "orthogonal", "tol": 0.1, "max_iter": 10, "batch_size": 256},
        "the base initializer's, then each Dense kernel divided by sqrt(Var(x W + b)) on a data "
        "batch until |Var - 1| < tol (initbench.init.lsuv.lsuv_init)",
        "pre-activation Var = 1 +- tol on the batch", "any",
        "Mishkin & Matas (2016), All you need is a good init, arXiv:1511.06422", _lsuv_check,
        data_dependent=True),
):
    register(_info)
