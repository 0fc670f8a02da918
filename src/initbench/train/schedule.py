"""Learning-rate schedules and decoupled weight decay, exactly as Keras' own optimizers apply them.

A cell's ``lr_schedule`` scales every model's learning rate by a factor f(t) of the optimizer step
t (0-based, the optimizer's ``iterations`` before the update, as Keras evaluates a schedule):

* ``constant``: f = 1.
* ``cosine`` (Loshchilov & Hutter 2017, SGDR, arXiv:1608.03983, one cycle, to 0): after an optional
  linear warm-up from 0 over the first ``warmup_epochs`` (Goyal et al. 2017, arXiv:1706.02677),
  f = (1 + cos(pi * s / S)) / 2 over the remaining S steps -- Keras' ``CosineDecay`` (with
  ``warmup_target`` when there is a warm-up).
* ``step``: f = 1, then 0.1 after half of the steps, then 0.01 after three quarters (the schedule
  of He et al. 2016's ResNets, in fractions of the run) -- Keras' ``PiecewiseConstantDecay``, whose
  boundaries are inclusive (the step *after* a boundary gets the next value).

``weight_decay`` is decoupled (Loshchilov & Hutter 2019, arXiv:1711.05101), as Keras applies it
for every optimizer: before each update, w <- w - w * weight_decay * lr_t, on every weight
(kernels and biases: Keras' default), with the scheduled rate lr_t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import tensorflow as tf

from initbench.config import TrainingSettings
from initbench.config.checks import SCHEDULES

STEP_FRACTIONS = (0.5, 0.75)  # where the step schedule divides the rate by 10
STEP_FACTOR = 0.1


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps per epoch: batches of ``batch_size``, the last one possibly short."""
    return -(-n_train // batch_size)


def epochs_run(cfg: TrainingSettings, steps_per_epoch: int) -> int:
    """The epochs a model trains: ``cfg.epochs``, or as many as its step budget needs (the last
    one cut short); a budget that ``cfg.epochs`` cannot hold is an error."""
    if cfg.steps is None:
        return cfg.epochs
    if cfg.steps > cfg.epochs * steps_per_epoch:  # the config checks this; a direct call may not
        raise ValueError(f"a step budget of {cfg.steps} updates does not fit {cfg.epochs} epochs x "
                         f"{steps_per_epoch} batches = {cfg.epochs * steps_per_epoch}")
    return -(-cfg.steps // steps_per_epoch)


@dataclass(frozen=True)
class Schedule:
    """A cell's schedule in optimizer steps (from epochs and the steps per epoch)."""

    kind: str
    total_steps: int
    warmup_steps: int = 0

    @classmethod
    def of(cls, cfg: TrainingSettings, steps_per_epoch: int | None) -> Schedule:
        """``cfg``'s schedule; ``steps_per_epoch`` (batches per epoch) is needed unless constant."""
        if cfg.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule {cfg.lr_schedule!r}; allowed: {', '.join(SCHEDULES)}")
        if steps_per_epoch is None:
            if cfg.lr_schedule != "constant":
                raise ValueError(f"a {cfg.lr_schedule} schedule needs the steps per epoch")
            steps_per_epoch = 1
        return cls(cfg.lr_schedule, cfg.total_steps(steps_per_epoch),
                   cfg.warmup_epochs * steps_per_epoch)

    @property
    def boundaries(self) -> list[int]:
        """The step schedule's boundaries (inclusive: the rate changes on the step after)."""
        return [int(self.total_steps * f) for f in STEP_FRACTIONS]

    def factor(self, step: tf.Tensor) -> tf.Tensor:
        """f(step) as float32, in the graph (``step``: the 0-based optimizer step)."""
        t = tf.cast(step, tf.float32)
        if self.kind == "constant":
            return tf.constant(1.0)
        if self.kind == "step":
            drops = sum(tf.cast(t > float(b), tf.float32) for b in self.boundaries)
            return tf.pow(tf.constant(STEP_FACTOR), drops)
        decay = float(self.total_steps - self.warmup_steps)
        t = tf.minimum(t, decay + self.warmup_steps)
        cosine = 0.5 * (1.0 + tf.cos(math.pi * ((t - self.warmup_steps) / decay)))
        if not self.warmup_steps:
            return cosine
        return tf.where(t < self.warmup_steps, t / float(self.warmup_steps), cosine)

    def keras(self, learning_rate: float) -> float | keras.optimizers.schedules.LearningRateSchedule:
        """The same schedule as Keras' own object, for a Keras optimizer at ``learning_rate``."""
        schedules = keras.optimizers.schedules
        if self.kind == "constant":
            return learning_rate
        if self.kind == "step":
            values = [learning_rate * STEP_FACTOR ** i for i in range(len(STEP_FRACTIONS) + 1)]
            return schedules.PiecewiseConstantDecay(self.boundaries, values)
        decay = self.total_steps - self.warmup_steps
        if not self.warmup_steps:
            return schedules.CosineDecay(learning_rate, decay)
        return schedules.CosineDecay(0.0, decay, warmup_target=learning_rate,
                                     warmup_steps=self.warmup_steps)
