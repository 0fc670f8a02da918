"""Keras 3's Adam and SGD (with momentum) for stacked weights, one learning rate per model.

Every weight tensor of a stack (:mod:`initbench.train.stacked`) carries the K models on one axis
(its model axis). The updates are elementwise and written with Keras' own formulas
(``keras/src/optimizers/adam.py``, ``sgd.py``), each model's slice at its own rate, so a model in
a stack follows the trajectory it would follow alone. The learning-rate schedule and the decoupled
weight decay are applied as Keras applies them (:mod:`initbench.train.schedule`).

Adam: Kingma & Ba (2015), arXiv:1412.6980, in Keras' form (epsilon outside the square root).
Decoupled weight decay: Loshchilov & Hutter (2019), arXiv:1711.05101.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from initbench.config import TrainConfig
from initbench.train.schedule import Schedule

ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7  # Keras' defaults


class StackedOptimizer:
    """The optimizer state of one stack: per-model rates, slots, the step counter."""

    def __init__(self, params: Sequence[tf.Variable], model_axes: Sequence[int], cfg: TrainConfig,
                 schedule: Schedule, learning_rates: Sequence[float] | None = None) -> None:
        """``model_axes``: the axis of each weight that runs over the models. ``learning_rates``:
        one per model (a learning-rate sweep in one stack); default: every model at
        ``cfg.learning_rate``."""
        self.k = int(params[0].shape[model_axes[0]])
        self.model_axes = list(model_axes)
        self.cfg, self.schedule = cfg, schedule
        self.lr = tf.Variable(self._rates(learning_rates), name="learning_rates")
        # Adam keeps m and v, momentum SGD its velocity, plain SGD nothing.
        n_slots = 2 if cfg.optimizer == "adam" else 1 if cfg.momentum > 0 else 0
        self.slots = [[tf.Variable(tf.zeros_like(p)) for p in params] for _ in range(n_slots)]
        self.iterations = tf.Variable(0, dtype=tf.int64)

    def _rates(self, learning_rates: Sequence[float] | None) -> np.ndarray:
        rates = np.full(self.k, self.cfg.learning_rate) if learning_rates is None else learning_rates
        if len(rates) != self.k:
            raise ValueError(f"{len(rates)} learning rates for {self.k} models")
        return np.asarray(rates, np.float32)

    def reset(self, learning_rates: Sequence[float] | None = None) -> None:
        """Fresh state (zero slots, step 0) for a new stack of the same shapes."""
        self.lr.assign(self._rates(learning_rates))
        for slot in (s for slots in self.slots for s in slots):
            slot.assign(tf.zeros_like(slot))
        self.iterations.assign(0)

    def apply(self, params: Sequence[tf.Variable], grads: Sequence[tf.Tensor]) -> None:
        """One update of every weight from its gradient (inside the compiled step)."""
        step = tf.cast(self.iterations + 1, tf.float32)
        # The schedule at the step before the update, as Keras evaluates it (constant: no factor,
        # so the plain optimizer's program is unchanged).
        factor = None if self.schedule.kind == "constant" else self.schedule.factor(self.iterations)

        rates = []  # each model's own rate, shaped to broadcast over its slice of each weight
        for p, axis in zip(params, self.model_axes, strict=True):
            shape = [1] * len(p.shape)
            shape[axis] = self.k
            rates.append(tf.reshape(self.lr if factor is None else self.lr * factor, shape))

        if self.cfg.weight_decay:  # decoupled, before the update, on every weight (Keras' order)
            for p, lr in zip(params, rates, strict=True):
                p.assign(p - p * self.cfg.weight_decay * lr)

        if self.cfg.optimizer == "adam":
            b1, b2 = ADAM_BETA_1, ADAM_BETA_2
            for p, g, lr, m, v in zip(params, grads, rates, *self.slots, strict=True):
                alpha = lr * tf.sqrt(1.0 - tf.pow(b2, step)) / (1.0 - tf.pow(b1, step))
                m.assign_add((g - m) * (1.0 - b1))
                v.assign_add((tf.square(g) - v) * (1.0 - b2))
                p.assign_sub((m * alpha) / (tf.sqrt(v) + ADAM_EPSILON))
        elif self.slots:
            for p, g, lr, m in zip(params, grads, rates, self.slots[0], strict=True):
                m.assign(self.cfg.momentum * m - g * lr)
                p.assign_add(m)
        else:
            for p, g, lr in zip(params, grads, rates, strict=True):
                p.assign_sub(g * lr)
        self.iterations.assign_add(1)
