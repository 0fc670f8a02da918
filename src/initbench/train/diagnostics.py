"""Signal-propagation diagnostics of stacked MLPs on a fixed batch, per model and per layer.

For every Dense layer: mean and standard deviation of the pre-activations z = x W + b and of the
activations a = f(z); the fraction of dead ReLU units (no positive output on any example of the
batch) or of saturated tanh/sigmoid activations (|a| > 0.99, resp. a < 0.01 or a > 0.99); the
norm of the gradient of the loss with respect to the layer's kernel; and the kernel's standard
deviation. These are the quantities Glorot & Bengio (2010) and He et al. (2015) reason about:
variance preserved (or not) from layer to layer, forward and backward.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from initbench.results import STATS
from initbench.train.stacked import StackedMLP


def _dead(a: tf.Tensor, activation: str) -> tf.Tensor:
    """(K,) fraction of dead/saturated units for activations a of shape (K, B, U)."""
    if activation in ("relu",):
        return tf.reduce_mean(tf.cast(tf.reduce_all(a <= 0.0, axis=1), tf.float32), axis=1)
    if activation == "tanh":
        return tf.reduce_mean(tf.cast(tf.abs(a) > 0.99, tf.float32), axis=(1, 2))
    if activation == "sigmoid":
        return tf.reduce_mean(tf.cast((a < 0.01) | (a > 0.99), tf.float32), axis=(1, 2))
    return tf.fill((tf.shape(a)[0],), float("nan"))


def signal_stats(stack: StackedMLP, x: np.ndarray, y: np.ndarray, activation: str) -> dict[str, np.ndarray]:
    """stat name -> array (K, n_layers); the output layer's dead_fraction is NaN."""
    xt, yt = tf.constant(x), tf.constant(y)
    kernels = stack.params[0::2]
    with tf.GradientTape() as tape:
        probs, pre, post = stack.forward(xt, collect=True)
        total = tf.reduce_sum(stack.losses(probs, stack._broadcast_y(yt)))
    grads = tape.gradient(total, kernels)
    out: dict[str, list[np.ndarray]] = {name: [] for name in STATS}
    last = len(kernels) - 1
    for i, (z, a, w, g) in enumerate(zip(pre, post, kernels, grads, strict=True)):
        out["pre_mean"].append(tf.reduce_mean(z, axis=(1, 2)))
        out["pre_std"].append(tf.math.reduce_std(z, axis=(1, 2)))
        out["act_mean"].append(tf.reduce_mean(a, axis=(1, 2)))
        out["act_std"].append(tf.math.reduce_std(a, axis=(1, 2)))
        out["dead_fraction"].append(_dead(a, "softmax" if i == last else activation))
        out["grad_norm"].append(tf.norm(g, axis=(1, 2)))
        out["kernel_std"].append(tf.math.reduce_std(w, axis=(1, 2)))
    return {k: np.stack([np.asarray(v, dtype=np.float64) for v in vals], axis=1)
            for k, vals in out.items()}
