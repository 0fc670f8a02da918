"""Layer-sequential unit-variance (LSUV) initialization: the data-dependent step.

Mishkin & Matas (2016), "All you need is a good init", ICLR, arXiv:1511.06422, Algorithm 1:
start from an orthonormal (or any) initialization, then, for each layer L in order, with the
layers before it already rescaled, feed a data batch and divide L's kernel by sqrt(Var(B_L)),
where B_L is L's output *before* the nonlinearity, until |Var(B_L) - 1| < tol or max_iter
rescalings were done. Var is taken over the whole output (all examples and all units), as in
the paper.

Choices made here:

* Every top-level ``keras.layers.Dense`` and ``Conv2D`` layer of the model is treated (a conv
  layer's variance over every example, position and channel), *including the output
  (softmax) layer*, as the paper does for every conv and inner-product layer including the
  classifier: the initial logits then have unit variance, so the softmax starts neither
  saturated nor uniform. Layers of other types (Flatten, Dropout, ...) are passed through.
* B_L = x @ W + b is computed in float64 from the layer's input (obtained by running the model up
  to that layer on the batch), so the rescaling is exact and needs no recompiled graph. With a
  zero bias (the study's models) one rescaling reaches variance 1 up to rounding; a non-zero bias
  makes the loop iterate.
* A layer whose pre-activation variance on the batch is 0 (a zero kernel, or a dead previous
  layer) cannot be rescaled: that is an error. A layer that does not reach the tolerance within
  max_iter is reported (``converged: False``) and warned about, not an error.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import keras
import numpy as np


class LSUVError(ValueError):
    """Invalid LSUV arguments, or a layer that cannot be rescaled."""


def sample_batch(x: np.ndarray, batch_size: int, seed: int) -> np.ndarray:
    """``batch_size`` rows of ``x`` drawn without replacement (all of ``x`` if it is smaller)."""
    rng = np.random.default_rng(seed)
    if batch_size >= len(x):
        return np.asarray(x)
    return np.asarray(x)[np.sort(rng.choice(len(x), size=batch_size, replace=False))]


def dense_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's top-level Dense and Conv2D layers, in order."""
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.Dense | keras.layers.Conv2D)]


def pre_activation(model: keras.Model, layer: keras.layers.Layer, x: np.ndarray) -> np.ndarray:
    """``layer``'s output before its activation on ``x``, in float64, as a (rows, units) matrix
    (a conv layer's rows: every example and position)."""
    out = _pre(layer, _layer_input(model, layer, x), _kernel(layer), _bias(layer))
    return out.reshape(-1, out.shape[-1])


def _pre(layer: keras.layers.Layer, h: np.ndarray, w: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """x W + b for a Dense layer, the convolution plus bias for a Conv2D layer, in float64."""
    if isinstance(layer, keras.layers.Conv2D):
        import tensorflow as tf  # float64 convolution; only a CNN gets here

        z = tf.nn.conv2d(h, w, strides=layer.strides, padding=layer.padding.upper())
        return z.numpy() + b
    return h @ w + b


def lsuv_init(model: keras.Model, x_batch: np.ndarray, tol: float = 0.1, max_iter: int = 10) -> dict:
    """Rescale every Dense kernel of ``model`` in place so its pre-activation variance is ~1.

    Args:
        model: a built model (e.g. ``initbench.model.build_model``), kernels already initialized.
        x_batch: a batch of model inputs (e.g. 256 training images, preprocessed as for training).
        tol: stop when |Var(x @ W + b) - 1| < tol; > 0.
        max_iter: at most this many rescalings per layer; >= 1.

    Returns:
        ``{layer_name: {"iterations": int, "initial_variance": float, "final_variance": float,
        "scale": float, "converged": bool}}`` in layer order; ``scale`` is the total factor the
        kernel was multiplied by.
    """
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not tol > 0:
        raise LSUVError(f"argument 'tol' must be a number > 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise LSUVError(f"argument 'max_iter' must be an int >= 1, got {max_iter!r}")
    x = np.asarray(x_batch, dtype=keras.backend.floatx())
    if len(x) < 2:
        raise LSUVError(f"x_batch needs at least 2 examples to estimate a variance, got {len(x)}")
    layers = dense_layers(model)
    if not layers:
        raise LSUVError(f"model {model.name!r} has no Dense or Conv2D layer to rescale")
    report: dict[str, dict[str, Any]] = {}
    for layer in layers:
        h, w, b = _layer_input(model, layer, x), _kernel(layer), _bias(layer)
        var = initial = float(_pre(layer, h, w, b).var())
        scale, iterations = 1.0, 0
        while abs(var - 1.0) >= tol and iterations < max_iter:
            if not (math.isfinite(var) and var > 0):
                raise LSUVError(
                    f"layer {layer.name!r}: pre-activation variance on the batch is {var!r}; "
                    "LSUV cannot rescale a zero kernel or a layer fed only zeros")
            factor = 1.0 / math.sqrt(var)
            w, scale, iterations = w * factor, scale * factor, iterations + 1
            var = float(_pre(layer, h, w, b).var())
        layer.kernel.assign(w.astype(layer.kernel.dtype))
        converged = abs(var - 1.0) < tol
        if not converged:
            warnings.warn(f"LSUV: layer {layer.name!r} variance {var:.4g} after {iterations} "
                          f"iterations (tol {tol})", RuntimeWarning, stacklevel=2)
        report[layer.name] = {"iterations": iterations, "initial_variance": initial,
                              "final_variance": var, "scale": scale, "converged": converged}
    return report


def _layer_input(model: keras.Model, layer: keras.layers.Layer, x: np.ndarray) -> np.ndarray:
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    feed = keras.Model(inputs, layer.input)
    h = np.array(keras.ops.convert_to_numpy(feed(x, training=False)), dtype=np.float64)
    return h if isinstance(layer, keras.layers.Conv2D) else h.reshape(-1, h.shape[-1])


def _kernel(layer: keras.layers.Layer) -> np.ndarray:
    return np.array(layer.kernel.numpy(), dtype=np.float64)


def _bias(layer: keras.layers.Layer) -> np.ndarray | float:
    return 0.0 if layer.bias is None else np.array(layer.bias.numpy(), dtype=np.float64)
