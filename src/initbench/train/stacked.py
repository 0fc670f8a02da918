"""Train K same-architecture MLPs at once, each exactly as it would train alone.

Models that differ only in their initial weights (initializer, seed) are stacked along a leading
axis: layer l holds a kernel of shape (K, fan_in, fan_out) (the first one transposed, see
``_stacked``), and one ``einsum`` per layer runs all K models. The loss is the *sum* of the K
models' losses, so the gradient with respect to model k's slice is exactly model k's own gradient;
the optimizers (Adam, SGD with momentum) are elementwise and written here with Keras' own update
formulas, so each model follows the same trajectory it would follow alone on the same batches,
up to float rounding. Every model sees the same batch order, which is also the cleaner
experiment: only the initialization differs.

The whole epoch -- gather the batch, forward, backward, update -- is one XLA-compiled
``tf.function`` over data resident as tensors, so the per-step Python and dispatch overhead that
dominates ``keras.Model.fit`` for small models is gone. (Speed figures: bench/README.md.)

Keras Adam: Kingma & Ba (2015), arXiv:1412.6980, in Keras' form (epsilon outside the sqrt).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import keras
import numpy as np
import tensorflow as tf

from initbench.config import TrainConfig
from initbench.train.schedule import Schedule

EPS_LOSS = 1e-7  # keras.backend.epsilon(): the clip Keras applies to probabilities


def epoch_order(n: int, data_seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of the n training examples in ``epoch`` (1-based) for ``data_seed``."""
    return np.random.default_rng([data_seed, epoch]).permutation(n)


def dense_weights(model: keras.Model) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) of every Dense layer of ``model``, in order."""
    return [(layer.kernel.numpy(), layer.bias.numpy())
            for layer in model.layers if isinstance(layer, keras.layers.Dense)]


class StackedMLP:
    """K MLPs (Flatten -> Dense... -> Dense softmax) trained together; see the module docstring."""

    JIT: ClassVar[bool] = True  # one XLA program per epoch: fuses the elementwise optimizer work

    def __init__(self, models: Sequence[keras.Model], activation: str, cfg: TrainConfig,
                 learning_rates: Sequence[float] | None = None,
                 steps_per_epoch: int | None = None) -> None:
        """``learning_rates``: one per model (a learning-rate sweep in one stack); default: every
        model at ``cfg.learning_rate``. ``steps_per_epoch``: batches per epoch, which a learning-rate
        schedule other than constant needs (:mod:`initbench.train.schedule`)."""
        self.k = len(models)
        self.activation = keras.activations.get(activation)
        self.cfg = cfg
        self.schedule = Schedule.of(cfg, steps_per_epoch)
        self.params = [tf.Variable(v, name=f"w{i}") for i, v in enumerate(self._stacked(models))]
        self.lr = tf.Variable(self._rates(learning_rates), name="learning_rates")
        self.slots = [[tf.Variable(tf.zeros_like(p)) for p in self.params] for _ in range(2)]
        self.iterations = tf.Variable(0, dtype=tf.int64)
        self._epoch = tf.function(self._run_steps, jit_compile=self.JIT, reduce_retracing=True)
        self._eval = tf.function(self._evaluate_batch, jit_compile=self.JIT, reduce_retracing=True)

    @staticmethod
    def _stacked(models: Sequence[keras.Model]) -> list[np.ndarray]:
        per_model = [dense_weights(m) for m in models]
        shapes = {tuple(w.shape for pair in weights for w in pair) for weights in per_model}
        if len(shapes) != 1:
            raise ValueError(f"stacked models must share one architecture; got shapes {shapes}")
        out = []
        for i in range(len(per_model[0])):
            for j in range(2):
                # The first kernel is stored transposed, (K, fan_out, fan_in): its input batch is
                # shared by all K models, so the layer is one GEMM, and its gradient dz^T @ x comes
                # out of that GEMM in this very layout, so the optimizer reads it contiguously
                # (stored (fan_in, K, fan_out), the update read it transposed: 25% slower).
                value = np.stack([w[i][j].T if (i, j) == (0, 0) else w[i][j] for w in per_model])
                out.append(value.astype(np.float32))
        return out

    def _rates(self, learning_rates: Sequence[float] | None) -> np.ndarray:
        rates = np.full(self.k, self.cfg.learning_rate) if learning_rates is None else learning_rates
        if len(rates) != self.k:
            raise ValueError(f"{len(rates)} learning rates for {self.k} models")
        return np.asarray(rates, np.float32)

    def reset(self, models: Sequence[keras.Model], learning_rates: Sequence[float] | None = None) -> None:
        """Start over with the weights of ``models`` (same K and architecture), fresh optimizer
        state; the compiled functions are reused, so a new chunk of models costs no compile."""
        self.lr.assign(self._rates(learning_rates))
        values = self._stacked(models)
        if [v.shape for v in values] != [tuple(p.shape) for p in self.params]:
            raise ValueError("reset needs models of the same architecture and count")
        for p, v in zip(self.params, values, strict=True):
            p.assign(v)
        for slot in (*self.slots[0], *self.slots[1]):
            slot.assign(tf.zeros_like(slot))
        self.iterations.assign(0)

    # -- model ---------------------------------------------------------------------------------
    def forward(self, x: tf.Tensor, collect: bool = False):
        """Softmax outputs (K, B, classes) for a shared batch x (B, 28, 28)."""
        h = tf.reshape(x, (tf.shape(x)[0], -1))
        n_layers = len(self.params) // 2
        pre, post = [], []
        for i in range(n_layers):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            spec = "bi,koi->kbo" if i == 0 else "kbi,kio->kbo"
            z = tf.einsum(spec, h, w) + b[:, None, :]
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

    # -- optimizers (Keras 3's update rules, elementwise) ---------------------------------------
    def _apply(self, grads: list[tf.Tensor]) -> None:
        step = tf.cast(self.iterations + 1, tf.float32)
        # The schedule at the step before the update, as Keras evaluates it (constant: no factor,
        # so the plain optimizer's program is unchanged).
        factor = None if self.schedule.kind == "constant" else self.schedule.factor(self.iterations)

        def lr_of(p: tf.Variable) -> tf.Tensor:  # each model's own rate, broadcast over its slice
            rate = tf.reshape(self.lr, [self.k] + [1] * (len(p.shape) - 1))
            return rate if factor is None else rate * factor

        if self.cfg.weight_decay:  # decoupled, before the update, on every weight (Keras' order)
            for p in self.params:
                p.assign(p - p * self.cfg.weight_decay * lr_of(p))

        if self.cfg.optimizer == "adam":
            b1, b2, eps = 0.9, 0.999, 1e-7
            for p, g, m, v in zip(self.params, grads, *self.slots, strict=True):
                alpha = lr_of(p) * tf.sqrt(1.0 - tf.pow(b2, step)) / (1.0 - tf.pow(b1, step))
                m.assign_add((g - m) * (1.0 - b1))
                v.assign_add((tf.square(g) - v) * (1.0 - b2))
                p.assign_sub((m * alpha) / (tf.sqrt(v) + eps))
        elif self.cfg.momentum > 0:
            for p, g, m in zip(self.params, grads, self.slots[0], strict=True):
                m.assign(self.cfg.momentum * m - g * lr_of(p))
                p.assign_add(m)
        else:
            for p, g in zip(self.params, grads, strict=True):
                p.assign_sub(g * lr_of(p))
        self.iterations.assign_add(1)

    def _step(self, xb: tf.Tensor, yb: tf.Tensor, wb: tf.Tensor):
        with tf.GradientTape() as tape:
            probs = self.forward(xb)
            losses = self.losses(probs, self._broadcast_y(yb), wb)
            total = tf.reduce_sum(losses)
        self._apply(tape.gradient(total, self.params))
        hit = tf.cast(tf.argmax(probs, axis=-1, output_type=tf.int32) == tf.cast(yb, tf.int32)[None, :],
                      tf.float32)
        return losses, tf.reduce_sum(hit * wb, axis=1)

    def _run_steps(self, x: tf.Tensor, y: tf.Tensor, idx: tf.Tensor, weight: tf.Tensor):
        """One optimizer step on batch x[idx[s]] for every row s of idx (n_steps, batch); weight
        (n_steps, batch) is 1 for real examples and 0 for the padding of a short last batch."""
        loss_sum = tf.zeros((self.k,), tf.float32)
        correct = tf.zeros((self.k,), tf.float32)
        for s in tf.range(tf.shape(idx)[0]):
            batch = idx[s]
            losses, hits = self._step(tf.gather(x, batch), tf.gather(y, batch), weight[s])
            loss_sum += losses * tf.reduce_sum(weight[s])
            correct += hits
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
        steps = -(-n // bs)
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
        for k, model in enumerate(models):
            dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
            for i, layer in enumerate(dense):
                kernel = self.params[2 * i][k].numpy()
                layer.kernel.assign(kernel.T if i == 0 else kernel)
                layer.bias.assign(self.params[2 * i + 1][k].numpy())

    def fit(
        self, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, epochs: int,
        data_seed: int, on_epoch: Callable[[int, list[dict[str, float]]], None] | None = None,
    ) -> list[list[dict[str, float]]]:
        """Train every model for ``epochs`` epochs; return each model's per-epoch rows.

        A row holds epoch (1-based), loss and accuracy (means over the epoch's batches, as Keras
        reports them), val_loss, val_accuracy and epoch_seconds (of the whole stack).
        ``on_epoch(epoch, rows)`` is called after each epoch with the K new rows.
        """
        xt, yt = tf.constant(x), tf.constant(y)
        xv, yv = tf.constant(x_val), tf.constant(y_val)
        histories: list[list[dict[str, float]]] = [[] for _ in range(self.k)]
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            loss, acc = self.train_epoch(xt, yt, epoch_order(len(y), data_seed, epoch))
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
