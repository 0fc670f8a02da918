"""Seconds per model-epoch of the stacked trainer vs the number of models in a stack.

One epoch of 54,000 random 28x28 images (batch 32, the 784-128-10 ReLU MLP of the default cell)
per stack size, after one untimed epoch (tracing and XLA compilation); no validation, no
diagnostics: the trainer's step alone. This is what ``MAX_STACK`` in
``src/initbench/train/cell.py`` was chosen from.

    python bench/stack_size.py                 # Adam; stack sizes 1 5 8 10 20 40
    python bench/stack_size.py --optimizer sgd --sizes 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="adam", choices=("adam", "sgd"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 8, 10, 20, 40])
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    from initbench.config import TrainConfig
    from initbench.train.stacked import StackedMLP

    cfg = TrainConfig(args.optimizer, 0.001, 0.0, 32, 2, 42, weight_decay=0.0, lr_schedule="constant",
                      warmup_epochs=0)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((54000, 28, 28), dtype=np.float32))
    y = tf.constant(rng.integers(0, 10, 54000).astype(np.int32))
    order = np.random.default_rng(1).permutation(54000)
    for k in args.sizes:
        models = [keras.Sequential([
            keras.Input((28, 28)), keras.layers.Flatten(),
            keras.layers.Dense(128, "relu", kernel_initializer=keras.initializers.GlorotUniform(i)),
            keras.layers.Dense(10, "softmax")]) for i in range(k)]
        stack = StackedMLP(models, "relu", cfg)
        stack.train_epoch(x, y, order)  # traces and compiles
        start = time.perf_counter()
        stack.train_epoch(x, y, order)
        seconds = time.perf_counter() - start
        print(f"stack of {k:3d}: epoch {seconds:6.2f} s, {seconds / k:.3f} s per model-epoch, "
              f"step {seconds / len(range(0, 54000, 32)) * 1e3:.2f} ms", flush=True)


if __name__ == "__main__":
    main()
