"""Signal-propagation diagnostics of stacked MLPs and CNNs on a fixed batch, per model and layer.

For every Dense or conv layer (a conv layer's unit is a channel, seen at every position): mean
and standard deviation of the pre-activations z = x W + b and of the activations a = f(z); the
fraction of dead ReLU units (no positive output on any example of the batch) or of saturated
tanh/sigmoid activations (|a| > 0.99, resp. a < 0.01 or a > 0.99); the norm of the gradient of
the loss with respect to the layer's kernel; and the kernel's standard deviation. These are the
quantities Glorot & Bengio (2010) and He et al. (2015) reason about:
variance preserved (or not) from layer to layer, forward and backward. For the softmax output,
``dead_fraction`` is the fraction of examples whose true-class probability the loss clips (below
1e-7 or above 1 - 1e-7): a clipped example passes exactly no gradient, which is why a saturated
one-hot softmax (N(0,1) ReLU at depth) shows a gradient norm of exactly 0.

The network runs in float32, as it trains; the statistics are computed in float64 from those
float32 values, so that sums of squares neither overflow (activations ~1e20 square past float32's
3.4e38) nor underflow (gradients ~1e-25 square below its 1e-45): a reported inf or 0 is the
network's, never the statistic's.
"""

from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from initbench.results import STATS
from initbench.train.stacked import EPS_LOSS, StackedMLP


def _dead(a: tf.Tensor, activation: str) -> tf.Tensor:
    """(K,) fraction of dead/saturated units for activations a of shape (K, B, U)."""
    if activation in ("relu",):
        return tf.reduce_mean(tf.cast(tf.reduce_all(a <= 0.0, axis=1), tf.float32), axis=1)
    if activation == "tanh":
        return tf.reduce_mean(tf.cast(tf.abs(a) > 0.99, tf.float32), axis=(1, 2))
    if activation == "sigmoid":
        return tf.reduce_mean(tf.cast((a < 0.01) | (a > 0.99), tf.float32), axis=(1, 2))
    return tf.fill((tf.shape(a)[0],), float("nan"))


def _clipped(probs: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """(K,) fraction of examples whose true-class probability the loss clips (no gradient)."""
    p = tf.gather(probs / tf.reduce_sum(probs, axis=-1, keepdims=True), y, axis=2, batch_dims=2)
    return tf.reduce_mean(tf.cast((p < EPS_LOSS) | (p > 1.0 - EPS_LOSS), tf.float32), axis=1)


def _f64(t: tf.Tensor) -> tf.Tensor:
    return tf.cast(t, tf.float64)


def _units(t: tf.Tensor) -> tf.Tensor:
    """A conv layer's maps (K, B, H, W, C) or kernel (K, h, w, C_in, C_out) as (K, rows, C): a
    unit is a channel, seen at every example and position; Dense tensors are already so."""
    return t if t.shape.rank == 3 else tf.reshape(t, (t.shape[0], -1, t.shape[-1]))


def _stats(stack: StackedMLP, xt: tf.Tensor, yt: tf.Tensor, activation: str) -> dict[str, tf.Tensor]:
    """stat name -> (K, n_layers) float64 tensor (see the module docstring)."""
    kernels = stack.params[0::2]
    labels = stack._broadcast_y(yt)
    with tf.GradientTape() as tape:
        probs, pre, post = stack.forward(xt, collect=True)
        total = tf.reduce_sum(stack.losses(probs, labels))
    grads = tape.gradient(total, kernels)
    out: dict[str, list[tf.Tensor]] = {name: [] for name in STATS}
    last = len(kernels) - 1
    for i, (z, a, w, g) in enumerate(zip(pre, post, kernels, grads, strict=True)):
        w, g = stack.per_model(2 * i, w), stack.per_model(2 * i, g)
        z, a, w, g = _f64(_units(z)), _units(a), _f64(_units(w)), _f64(_units(g))
        out["pre_mean"].append(tf.reduce_mean(z, axis=(1, 2)))
        out["pre_std"].append(tf.math.reduce_std(z, axis=(1, 2)))
        out["act_mean"].append(tf.reduce_mean(_f64(a), axis=(1, 2)))
        out["act_std"].append(tf.math.reduce_std(_f64(a), axis=(1, 2)))
        out["dead_fraction"].append(_f64(_clipped(a, labels) if i == last else _dead(a, activation)))
        out["grad_norm"].append(tf.norm(g, axis=(1, 2)))
        out["kernel_std"].append(tf.math.reduce_std(w, axis=(1, 2)))
    return {k: tf.stack(vals, axis=1) for k, vals in out.items()}


# One graph per stack and activation, traced on its first call and reused by every later stack of
# its size (as the trainer's own programs are): eagerly, the ops' dispatch cost more than their
# arithmetic (default cell: 59 -> 31 ms a call; same float64 values, bit for bit). The graph holds
# its stack weakly, so the entry goes with the stack.
_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def signal_stats(stack: StackedMLP, x: np.ndarray, y: np.ndarray, activation: str) -> dict[str, np.ndarray]:
    """stat name -> array (K, n_layers), in float64 (see the module docstring)."""
    graphs = _GRAPHS.setdefault(stack, {})
    if activation not in graphs:
        ref = weakref.ref(stack)
        graphs[activation] = tf.function(lambda xt, yt: _stats(ref(), xt, yt, activation),
                                         autograph=False)
    return {k: v.numpy() for k, v in graphs[activation](tf.constant(x), tf.constant(y)).items()}


JACOBIAN_INPUTS = 8  # examples of the fixed batch whose Jacobians are pooled
PERCENTILES = np.linspace(0, 100, 101)


LAYER_INPUTS = 1  # examples whose per-layer Jacobians' singular values are averaged


def jacobian_spectrum(stack: StackedMLP, x: np.ndarray) -> dict[str, np.ndarray] | None:
    """The singular values s of J = dh_L / dh_1, the Jacobian of the last hidden layer's
    activations with respect to the first's, pooled over the first ``JACOBIAN_INPUTS`` examples
    of x, per model: ``percentiles`` (K, 101) 0..100, ``mean_sq`` (K,) E[s^2] and ``mean_4th``
    (K,) E[s^4] (so Var(s^2) / E[s^2]^2 = mean_4th / mean_sq^2 - 1); and ``layer_sv_mean``
    (K, L - 1): per layer l = 2..L the mean singular value of its own Jacobian dh_l / dh_{l-1} =
    W_l diag(phi'(z_l)), over the first ``LAYER_INPUTS`` examples (Glorot & Bengio 2010, sec.
    4.2.2). None unless there are >= 2 hidden layers of one width.

    Dynamical isometry (Pennington et al. 2017, "Resurrecting the sigmoid in deep learning through
    dynamical isometry", NeurIPS, arXiv:1711.04735): a deep network trains fast when all singular
    values of J stay near 1. Its mean square is what mean-field theory predicts (the product of
    the layers' chi_1), its second moment the sum of the layers' spreads (free probability);
    orthogonal weights keep the spread narrow where Gaussian ones at the same variance spread it
    with depth. J = prod_l W_l diag(phi'(z_l)) for l = 2..L, in float64.
    """
    kernels = [w.numpy().astype(np.float64) for w in stack.params[0::2][1:-1]]  # (K, n, n) each
    if (not kernels or kernels[0].ndim != 3 or len({w.shape[1:] for w in kernels}) != 1
            or kernels[0].shape[1] != kernels[0].shape[2]):
        return None  # also for a CNN: its Jacobian is not these kernels' product
    _, pre, _ = stack.forward(tf.constant(x[:JACOBIAN_INPUTS]), collect=True)
    slopes = []
    for z in pre[1:-1]:  # phi'(z_l), elementwise, by autodiff: any activation
        with tf.GradientTape() as tape:
            tape.watch(z)
            a = stack.activation(z)
        slopes.append(tape.gradient(a, z).numpy().astype(np.float64))  # (K, B, n)
    out: dict[str, list] = {"percentiles": [], "mean_sq": [], "mean_4th": [], "layer_sv_mean": []}
    for k in range(stack.k):
        values, layers = [], np.zeros(len(kernels))
        for b in range(slopes[0].shape[1]):
            j = np.eye(kernels[0].shape[1])
            for i, (w, d) in enumerate(zip(kernels, slopes, strict=True)):
                step = w[k] * d[k, b][None, :]
                j = j @ step
                if b < LAYER_INPUTS:
                    layers[i] += np.mean(np.linalg.svd(step, compute_uv=False)) / LAYER_INPUTS
            values.append(np.linalg.svd(j, compute_uv=False))
        pooled = np.concatenate(values)
        out["percentiles"].append(np.percentile(pooled, PERCENTILES))
        out["mean_sq"].append(np.mean(pooled**2))
        out["mean_4th"].append(np.mean(pooled**4))
        out["layer_sv_mean"].append(layers)
    return {name: np.asarray(v) for name, v in out.items()}
