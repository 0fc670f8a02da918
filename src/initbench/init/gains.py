"""Recommended gains per nonlinearity, like ``torch.nn.init.calculate_gain``.

The gain g multiplies an initializer whose output has unit "signal gain" (orthogonal, identity) so
that the forward signal keeps its scale through the nonlinearity: for ReLU half the units are
zeroed, halving E[x^2], hence g^2 = 2 (He et al. 2015); for leaky ReLU with negative slope a,
g^2 = 2 / (1 + a^2); for tanh PyTorch uses 5/3. For SELU it uses 3/4, which by PyTorch's own
documentation *gives up* the self-normalising regime of Klambauer et al. (2017) for more stable
gradients in rectangular layers: self-normalisation needs Var(W) = 1/fan_in, i.e. gain 1
("linear"), which is what a SELU network that should self-normalise must use.

The gain compensates a nonlinearity for weights that *mix* units (orthogonal, Gaussian). The
``identity`` initializer maps each unit to itself, so ``gain: auto`` resolves to 1 for it
(:mod:`initbench.init.registry`).

References:
    He et al. (2015), "Delving Deep into Rectifiers", ICCV, arXiv:1502.01852.
    Saxe et al. (2013), "Exact solutions to the nonlinear dynamics of learning in deep linear
    neural networks", arXiv:1312.6120.
    Klambauer et al. (2017), "Self-Normalizing Neural Networks", NeurIPS, arXiv:1706.02515.
    Le, Jaitly & Hinton (2015), "A Simple Way to Initialize Recurrent Networks of Rectified
    Linear Units", arXiv:1504.00941.
    PyTorch, ``torch.nn.init.calculate_gain``.
"""

from __future__ import annotations

import math

# Keras' ``leaky_relu`` activation (the string "leaky_relu" in a layer) uses negative_slope=0.2,
# PyTorch's LeakyReLU and calculate_gain default to 0.01. ``calculate_gain`` keeps PyTorch's
# default; ``gain_for_activation`` uses the slope the Keras layer really applies.
TORCH_LEAKY_SLOPE = 0.01
KERAS_LEAKY_SLOPE = 0.2

_FIXED = {
    "linear": 1.0,
    "identity": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4.0,
}
NONLINEARITIES = (*_FIXED, "leaky_relu")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity``; ``param`` is leaky ReLU's negative slope.

    ======================  ===========================
    nonlinearity            gain
    ======================  ===========================
    linear / identity       1
    sigmoid                 1
    tanh                    5/3
    relu                    sqrt(2)
    leaky_relu              sqrt(2 / (1 + a^2)), a = param (default 0.01)
    selu                    3/4
    ======================  ===========================
    """
    if nonlinearity == "leaky_relu":
        slope = TORCH_LEAKY_SLOPE if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, int | float) or not math.isfinite(slope):
            raise ValueError(f"negative_slope {slope!r} is not a valid number")
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity not in _FIXED:
        raise ValueError(
            f"no gain is known for nonlinearity {nonlinearity!r}; known: {', '.join(NONLINEARITIES)}"
            " (give the gain as a number instead)"
        )
    if param is not None:
        raise ValueError(f"nonlinearity {nonlinearity!r} takes no parameter, got {param!r}")
    return _FIXED[nonlinearity]


def gain_for_activation(activation: str) -> float:
    """The gain for a Keras activation name as written in a layer (``gain: auto``).

    Same table as :func:`calculate_gain`, except that ``leaky_relu`` means Keras' activation, whose
    negative slope is 0.2 (not PyTorch's 0.01).
    """
    if activation == "leaky_relu":
        return calculate_gain("leaky_relu", KERAS_LEAKY_SLOPE)
    return calculate_gain(activation)
