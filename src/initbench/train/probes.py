"""What mean-field theory predicts at initialization, measured on a stack's models (epoch 0).

Per model, on the cell's fixed diagnostics batch:

* ``pair_q`` (layers, 2 P) and ``pair_c`` (layers, P): for the P pairs of examples (0, 1), (2, 3),
  ..., each example's pre-activation second moment q = mean_i z_i^2 and the pair's correlation
  c = mean_i z_a,i z_b,i / sqrt(q_a q_b), at every Dense layer -- the length and correlation maps
  of Poole et al. (2016, "Exponential expressivity in deep neural networks through transient
  chaos", NeurIPS, arXiv:1606.05340), whose fixed point and depth scale xi_c the trainability
  phase diagram rests on (Schoenholz et al. 2017, arXiv:1611.01232).
* ``log_sq_norm_pre`` / ``log_sq_norm`` (N,): per example, ln(||z_L||^2 / n) and ln(||h_L||^2 / n)
  of the last hidden layer (pre-activations, activations), whose variance over independent weight
  draws Hanin & Rolnick (2018, "How to start training", NeurIPS, arXiv:1803.01719) predict for
  ReLU nets from the widths alone.
* ``backprop_std`` (layers,): the standard deviation of dloss/dz_l over the batch and units, the
  back-propagated gradients of Glorot & Bengio (2010, AISTATS, fig. 7).

Statistics in float64 from the float32 network, as in :mod:`initbench.train.diagnostics`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from initbench.train.stacked import StackedMLP

PAIRS = 16  # pairs of examples for the correlation map
NORM_INPUTS = 64  # examples whose last hidden layer's squared norm is kept


def _f64(t: tf.Tensor) -> np.ndarray:
    return t.numpy().astype(np.float64)


def init_probes(stack: StackedMLP, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray] | None:
    """name -> array with the models on axis 0 (see the module docstring); None for a CNN (its
    pre-activations are maps, not the vectors these quantities are defined for)."""
    if stack.params[0].shape.rank != 3:
        return None
    xt, yt = tf.constant(x), tf.constant(y)
    with tf.GradientTape() as tape:
        probs, pre, post = stack.forward(xt, collect=True)
        total = tf.reduce_sum(stack.losses(probs, stack._broadcast_y(yt)))
    if pre[0].shape.rank != 3:
        return None
    grads = tape.gradient(total, pre)
    p = min(PAIRS, int(x.shape[0]) // 2)
    pair_q, pair_c = [], []
    for z in pre:
        z = _f64(z[:, :2 * p])  # (K, 2P, n)
        q = np.mean(z**2, axis=2)
        cross = np.mean(z[:, 0::2] * z[:, 1::2], axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            pair_c.append(cross / np.sqrt(q[:, 0::2] * q[:, 1::2]))
        pair_q.append(q)
    n = min(NORM_INPUTS, int(x.shape[0]))

    def log_ms(t: tf.Tensor) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(np.mean(_f64(t[:, :n]) ** 2, axis=2))

    hidden = len(pre) - 2  # the last hidden layer (the output's input)
    return {"pair_q": np.stack(pair_q, axis=1), "pair_c": np.stack(pair_c, axis=1),
            "log_sq_norm_pre": log_ms(pre[hidden]), "log_sq_norm": log_ms(post[hidden]),
            # dloss_k / dz is model k's own: the summed loss separates over the models
            "backprop_std": np.stack([np.std(_f64(g), axis=(1, 2)) for g in grads], axis=1)}


def member_probes(probes: dict[str, np.ndarray] | None, k: int) -> dict[str, list] | None:
    """Model ``k``'s probes as lists (for results.json)."""
    return None if probes is None else {name: v[k].tolist() for name, v in probes.items()}
