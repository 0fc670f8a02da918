"""Train K same-architecture MLPs at once, each exactly as it would train alone.

Models that differ only in their initial weights (initializer, seed) are stacked along a model
axis: layer l holds a kernel of shape (K, fan_in, fan_out) (the first one (fan_in, K, fan_out),
see ``FIRST_SIDE_BY_SIDE``), and one matrix product per layer runs all K models. The loss is the
*sum* of the K models' losses, so the gradient with respect to model k's slice is exactly model
k's own gradient; the optimizers (Adam, SGD with momentum: :mod:`initbench.train.optimizer`) are
elementwise, with Keras' own update formulas, so each model follows the same trajectory it would
follow alone on the same batches, up to float rounding. Every model sees the same batch order,
which is also the cleaner experiment: only the initialization differs.

The whole epoch -- gather the batch, forward, backward, update -- is one XLA-compiled
``tf.function`` over data resident as tensors, so the per-step Python and dispatch overhead that
dominates ``keras.Model.fit`` for small models is gone. (Speed figures: bench/README.md.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import keras
import numpy as np
import tensorflow as tf

from initbench.config import TrainConfig
from initbench.init.lsuv import dense_layers
from initbench.train.optimizer import StackedOptimizer
from initbench.train.schedule import Schedule, steps_per_epoch

EPS_LOSS = 1e-7  # keras.backend.epsilon(): the clip Keras applies to probabilities


def epoch_order(n: int, data_seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of the n training examples in ``epoch`` (1-based) for ``data_seed``."""
    return np.random.default_rng([data_seed, epoch]).permutation(n)


class StackedMLP:
    """K MLPs (Flatten -> Dense... -> Dense softmax) trained together; see the module docstring."""

    JIT: ClassVar[bool] = True  # one XLA program per epoch: fuses the elementwise optimizer work
    # The first kernel is stored side by side, (fan_in, K, fan_out): each model's slice is its
    # Keras kernel. Its input batch is shared by all K models, so the layer is one GEMM, x W, read
    # where it lies, and its gradient x^T dz leaves one GEMM in this very layout -- the products
    # Keras itself computes for a Dense layer, so a stacked model's float rounding stays Keras'.
    # (Stored (K, fan_out, fan_in), XLA copied the whole kernel transposed on every step: about
    # 20% of an Adam step of the default cell; as W x^T without the copy, the rounding drifted
    # from Keras' by up to 4e-3 in 300 Adam steps. Measured 2026-11-30.)
    FIRST_SIDE_BY_SIDE: ClassVar[bool] = True

    def __init__(self, models: Sequence[keras.Model], activation: str, cfg: TrainConfig,
                 learning_rates: Sequence[float] | None = None,
                 steps_per_epoch: int | None = None) -> None:
        """``learning_rates``: one per model (a learning-rate sweep in one stack); default: every
        model at ``cfg.learning_rate``. ``steps_per_epoch``: batches per epoch, which a learning-rate
        schedule other than constant needs (:mod:`initbench.train.schedule`)."""
        self.k = len(models)
        self.activation = keras.activations.get(activation)
        self.cfg = cfg
        self.params = [tf.Variable(v, name=f"w{i}") for i, v in enumerate(self._stacked(models))]
        self.optimizer = StackedOptimizer(
            self.params, [self.model_axis(i) for i in range(len(self.params))], cfg,
            Schedule.of(cfg, steps_per_epoch), learning_rates)
        # No autograph: the one loop is an explicit tf.while_loop, and converting the step's code
        # took 0.8 s per trace (0.15 s without; the same graph, bit-identical weights).
        self._epoch = tf.function(self._run_steps, jit_compile=self.JIT, reduce_retracing=True,
                                  autograph=False)
        self._eval = tf.function(self._evaluate_batch, jit_compile=self.JIT, reduce_retracing=True,
                                 autograph=False)

    def model_axis(self, index: int) -> int:
        """The axis of weight ``index`` (kernels even, biases odd) that runs over the models."""
        return 1 if self.FIRST_SIDE_BY_SIDE and index == 0 else 0

    def per_model(self, index: int, t: tf.Tensor) -> tf.Tensor:
        """Weight ``index``, or its gradient, with the models on the leading axis."""
        axis = self.model_axis(index)
        return t if axis == 0 else tf.experimental.numpy.moveaxis(t, axis, 0)

    def _stacked(self, models: Sequence[keras.Model]) -> list[np.ndarray]:
        per_model = [[w for layer in dense_layers(m) for w in (layer.kernel.numpy(), layer.bias.numpy())]
                     for m in models]
        shapes = {tuple(w.shape for w in weights) for weights in per_model}
        if len(shapes) != 1:
            raise ValueError(f"stacked models must share one architecture; got shapes {shapes}")
        return [np.stack([w[i] for w in per_model], axis=self.model_axis(i)).astype(np.float32)
                for i in range(len(per_model[0]))]

    def reset(self, models: Sequence[keras.Model], learning_rates: Sequence[float] | None = None) -> None:
        """Start over with the weights of ``models`` (same K and architecture), fresh optimizer
        state; the compiled functions are reused, so a new chunk of models costs no compile."""
        values = self._stacked(models)
        if [v.shape for v in values] != [tuple(p.shape) for p in self.params]:
            raise ValueError("reset needs models of the same architecture and count")
        for p, v in zip(self.params, values, strict=True):
            p.assign(v)
        self.optimizer.reset(learning_rates)

    # -- model ---------------------------------------------------------------------------------
    def forward(self, x: tf.Tensor, collect: bool = False):
        """Softmax outputs (K, B, classes) for a shared batch x (B, 28, 28)."""
        h = tf.reshape(x, (tf.shape(x)[0], -1))
        n_layers = len(self.params) // 2
        pre, post = [], []
        for i in range(n_layers):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            if i == 0 and self.FIRST_SIDE_BY_SIDE:  # (B, fan_in) x (fan_in, K * fan_out)
                fan_in, _, fan_out = w.shape
                z = tf.matmul(h, tf.reshape(w, (fan_in, self.k * fan_out)))
                z = tf.transpose(tf.reshape(z, (-1, self.k, fan_out)), (1, 0, 2))
            else:
                z = tf.einsum("kbi,kio->kbo", h, w)
            z = z + b[:, None, :]
            h = keras.activations.softmax(z) if i == n_layers - 1 else self.activation(z)
            if collect:
                pre.append(z)
                post.append(h)
        return (h, pre, post) if collect else h

    def losses(self, probs: tf.Tensor, y: tf.Tensor, weight: tf.Tensor | None = None) -> tf.Tensor:
        """Per-model mean cross-entropy (K,), computed as Keras does from probabilities.

        ``weight`` (B,) of 1s and 0s marks the examples of a padded batch: the mean runs over the
        1s only, and a 0 example contributes exactly 0 to the loss and to every gradient.
        """
        probs = probs / tf.reduce_sum(probs, axis=-1, keepdims=True)
        probs = tf.clip_by_value(probs, EPS_LOSS, 1.0 - EPS_LOSS)
        nll = -tf.math.log(tf.gather(probs, y, axis=2, batch_dims=2))  # (K, B)
        if weight is None:
            return tf.reduce_mean(nll, axis=1)
        return tf.reduce_sum(nll * weight, axis=1) / tf.reduce_sum(weight)

    def _broadcast_y(self, y: tf.Tensor) -> tf.Tensor:
        return tf.tile(y[None, :], (self.k, 1))

    def _step(self, xb: tf.Tensor, yb: tf.Tensor, wb: tf.Tensor):
        with tf.GradientTape() as tape:
            probs = self.forward(xb)
            losses = self.losses(probs, self._broadcast_y(yb), wb)
            total = tf.reduce_sum(losses)
        self.optimizer.apply(self.params, tape.gradient(total, self.params))
        hit = tf.cast(tf.argmax(probs, axis=-1, output_type=tf.int32) == tf.cast(yb, tf.int32)[None, :],
                      tf.float32)
        return losses, tf.reduce_sum(hit * wb, axis=1)

    def _run_steps(self, x: tf.Tensor, y: tf.Tensor, idx: tf.Tensor, weight: tf.Tensor):
        """One optimizer step on batch x[idx[s]] for every row s of idx (n_steps, batch); weight
        (n_steps, batch) is 1 for real examples and 0 for the padding of a short last batch."""
        def step(s: tf.Tensor, loss_sum: tf.Tensor, correct: tf.Tensor):
            losses, hits = self._step(tf.gather(x, idx[s]), tf.gather(y, idx[s]), weight[s])
            return s + 1, loss_sum + losses * tf.reduce_sum(weight[s]), correct + hits

        zeros = tf.zeros((self.k,), tf.float32)
        _, loss_sum, correct = tf.while_loop(lambda s, *_: s < tf.shape(idx)[0], step,
                                             (tf.constant(0), zeros, zeros))
        return loss_sum, correct

    def _evaluate_batch(self, x: tf.Tensor, y: tf.Tensor):
        probs = self.forward(x)
        losses = self.losses(probs, self._broadcast_y(y))
        pred = tf.argmax(probs, axis=-1, output_type=tf.int32)
        hits = tf.reduce_sum(tf.cast(pred == tf.cast(y, tf.int32)[None, :], tf.float32), axis=1)
        return losses * tf.cast(tf.shape(x)[0], tf.float32), hits, pred

    # -- public API ----------------------------------------------------------------------------
    def train_epoch(self, x: tf.Tensor, y: tf.Tensor, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One pass over x[order] in batches of cfg.batch_size (the last one may be smaller).

        Returns the per-model mean training loss and accuracy over the epoch's batches.
        """
        # The short last batch is padded to a full one with zero-weight examples, so an epoch of
        # any length is one call of one compiled program: a separate (1, remainder) call would
        # cost a second XLA compilation (~1.5 s here), more than an epoch of a small stack.
        bs, n = self.cfg.batch_size, len(order)
        steps = steps_per_epoch(n, bs)
        idx = np.zeros(steps * bs, np.int32)
        idx[:n] = order
        weight = np.zeros(steps * bs, np.float32)
        weight[:n] = 1.0
        loss_sum, correct = self._epoch(x, y, tf.constant(idx.reshape(steps, bs)),
                                        tf.constant(weight.reshape(steps, bs)))
        return loss_sum.numpy() / n, correct.numpy() / n

    def evaluate(self, x: tf.Tensor, y: tf.Tensor, batch: int = 2000
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-model mean loss (K,) and accuracy (K,) on (x, y), and the predicted classes (K, n)."""
        n = int(x.shape[0])
        loss_sum, correct, preds = np.zeros(self.k), np.zeros(self.k), []
        for start in range(0, n, batch):
            ls, c, p = self._eval(x[start:start + batch], y[start:start + batch])
            loss_sum += ls.numpy()
            correct += c.numpy()
            preds.append(p.numpy())
        return loss_sum / n, correct / n, np.concatenate(preds, axis=1)

    def write_back(self, models: Sequence[keras.Model]) -> None:
        """Copy each model's trained weights into its own Keras model (for saving)."""
        values = [p.numpy() for p in self.params]
        for k, model in enumerate(models):
            for i, layer in enumerate(dense_layers(model)):
                layer.kernel.assign(np.take(values[2 * i], k, axis=self.model_axis(2 * i)))
                layer.bias.assign(values[2 * i + 1][k])

    def fit(
        self, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, epochs: int,
        data_seed: int, on_epoch: Callable[[int, list[dict[str, float]]], None] | None = None,
    ) -> list[list[dict[str, float]]]:
        """Train every model for ``epochs`` epochs; return each model's per-epoch rows.

        A row holds epoch (1-based), loss and accuracy (means over the epoch's batches, as Keras
        reports them), val_loss, val_accuracy and epoch_seconds (of the whole stack). With a step
        budget (``cfg.steps``) training stops after exactly that many updates: the epoch holding
        the last one is cut short there, and no later epoch runs.
        ``on_epoch(epoch, rows)`` is called after each epoch with the K new rows.
        """
        xt, yt = tf.constant(x), tf.constant(y)
        xv, yv = tf.constant(x_val), tf.constant(y_val)
        histories: list[list[dict[str, float]]] = [[] for _ in range(self.k)]
        budget = self.cfg.steps  # a step budget: the last epoch stops at exactly that update
        for epoch in range(1, epochs + 1):
            order = epoch_order(len(y), data_seed, epoch)
            if budget is not None:
                left = budget - (epoch - 1) * steps_per_epoch(len(y), self.cfg.batch_size)
                if left <= 0:
                    break
                order = order[:left * self.cfg.batch_size]
            start = time.perf_counter()
            loss, acc = self.train_epoch(xt, yt, order)
            val_loss, val_acc, _ = self.evaluate(xv, yv)
            seconds = time.perf_counter() - start
            rows = [{"epoch": epoch, "loss": float(loss[k]), "accuracy": float(acc[k]),
                     "val_loss": float(val_loss[k]), "val_accuracy": float(val_acc[k]),
                     "epoch_seconds": seconds} for k in range(self.k)]
            for history, row in zip(histories, rows, strict=True):
                history.append(row)
            if on_epoch is not None:
                on_epoch(epoch, rows)
        return histories
