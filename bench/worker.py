"""One measured job of the benchmark, in its own process (so its peak RSS is its own).

Usage: python bench/worker.py JSON_SPEC; prints one JSON line with the figures (``epochs``: one
[models, first epoch of a fresh graph?, seconds] row per timed epoch). Modes: ``naive`` (one
keras.Model.fit per model), ``stacked`` (initbench's StackedMLP), ``matmul`` (numpy float32 GEMM
rate), ``import`` (start-up cost of the stage CLI's imports).
"""

from __future__ import annotations

import itertools
import json
import resource
import sys
import time
from pathlib import Path

START = time.perf_counter()


def macs(hidden: list[int]) -> int:
    dims = [784, *hidden, 10]
    return sum(a * b for a, b in itertools.pairwise(dims))


def load(spec: dict):
    from initbench import config, normalize

    params = config.load(Path(spec["params"]))
    data = normalize.load(Path(spec["data"]))
    return params, data


def members(spec: dict, params):
    from initbench.config import InitializerSpec
    from initbench.initializers import resolve_args

    out = []
    for label, seed in spec["models"]:
        s = params.initializers[label] if label in params.initializers else InitializerSpec(
            label, label, resolve_args(label, {}))
        out.append((label, s, seed))
    return out


def run_naive(spec: dict) -> dict:
    from initbench.config import ModelConfig, TrainConfig
    from initbench.model import build_model, compile_model, data_dependent_init

    params, data = load(spec)
    mc = ModelConfig(tuple(spec["hidden"]), spec["activation"])
    tc = TrainConfig(spec["optimizer"], spec["lr"], spec["momentum"], spec["batch_size"], spec["epochs"], 0)
    x, y = data["x_train"][: spec["n_train"]], data["y_train"][: spec["n_train"]]
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epochs.append((1, epoch == 0, time.perf_counter() - self.start))

    fit_seconds, accs, epochs = 0.0, [], []
    for label, s, seed in members(spec, params):
        model = build_model(mc, s, seed)
        data_dependent_init(model, s, x, seed)
        compile_model(model, tc)
        t = time.perf_counter()
        model.fit(x, y, batch_size=tc.batch_size, epochs=tc.epochs, shuffle=True, verbose=0,
                  callbacks=[EpochTimer()])
        fit_seconds += time.perf_counter() - t
        accs.append([label, seed, float(model.evaluate(data["x_test"], data["y_test"], verbose=0)[1])])
    return {"seconds": fit_seconds, "test_accuracy": accs, "epochs": epochs}


def run_stacked(spec: dict) -> dict:
    import tensorflow as tf

    from initbench.config import ModelConfig, TrainConfig
    from initbench.model import build_model, data_dependent_init
    from initbench.stacked import StackedMLP, epoch_order
    from initbench.study import split_even, stack_size

    params, data = load(spec)
    mc = ModelConfig(tuple(spec["hidden"]), spec["activation"])
    tc = TrainConfig(spec["optimizer"], spec["lr"], spec["momentum"], spec["batch_size"], spec["epochs"], 0)
    x, y = data["x_train"][: spec["n_train"]], data["y_train"][: spec["n_train"]]
    xt, yt = tf.constant(x), tf.constant(y)
    size = spec.get("stack") or stack_size(macs(spec["hidden"]))
    seconds, accs, stacks, epochs = 0.0, [], {}, []
    for chunk in split_even(members(spec, params), size):
        models = [build_model(mc, s, seed) for _, s, seed in chunk]
        for m, (_, s, seed) in zip(models, chunk, strict=True):
            data_dependent_init(m, s, x, seed)
        t = time.perf_counter()
        cold = len(chunk) not in stacks  # this stack size's first epoch compiles the XLA program
        if cold:
            stack = stacks[len(chunk)] = StackedMLP(models, mc.activation, tc)
        else:
            stack = stacks[len(chunk)]
            stack.reset(models)
        for epoch in range(1, tc.epochs + 1):
            stack.train_epoch(xt, yt, epoch_order(len(y), 0, epoch))
            epochs.append((len(chunk), cold and epoch == 1, time.perf_counter() - t))
            seconds += epochs[-1][2]
            t = time.perf_counter()
        _, acc = stack.evaluate(tf.constant(data["x_test"]), tf.constant(data["y_test"]))
        accs += [[label, seed, float(a)] for (label, _, seed), a in zip(chunk, acc, strict=True)]
    return {"seconds": seconds, "test_accuracy": accs, "stack": size, "epochs": epochs}


def run_matmul(spec: dict) -> dict:
    import numpy as np

    n = spec.get("n", 2048)
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    reps, t = 5, time.perf_counter()
    for _ in range(reps):
        a @ a
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "gflops": reps * 2 * n**3 / seconds / 1e9}


def run_import(spec: dict) -> dict:
    t = time.perf_counter()
    import initbench.cli  # noqa: F401
    from initbench import train  # noqa: F401 - what a train stage imports (TF, Keras, MLflow)

    return {"seconds": time.perf_counter() - t}


if __name__ == "__main__":
    job = json.loads(sys.argv[1])
    result = {"naive": run_naive, "stacked": run_stacked, "matmul": run_matmul,
              "import": run_import}[job["mode"]](job)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["process_seconds"] = time.perf_counter() - START
    print("RESULT " + json.dumps(result), flush=True)
