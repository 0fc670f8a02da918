"""One measured job of the benchmark, in its own process (so its peak RSS is its own).

Usage: python bench/worker.py JSON_SPEC; prints one JSON line with the figures (``epochs``: one
[models, first epoch of a new stack size?, seconds] row per timed epoch). Modes: ``naive`` (one
keras.Model.fit per model), ``stacked`` (initbench.train.cell.train_cell: exactly what the train
stage runs, minus MLflow and files), ``matmul`` (numpy float32 GEMM rate), ``import`` (start-up
cost of the train stage's imports).

A trainer spec names a cell: params (params.yaml), data (processed .npz), initializers (labels of
params.yaml, or registry names), seeds, models (the first N of the cell, seed-major), hidden,
activation, optimizer, lr, momentum, batch_size, epochs, train_limit (stratified subset, as the
stage takes it; null = all) and diag_batch.

With ``"lockstep": true`` a trainer job runs one epoch at a time: before its timed work and after
every epoch it prints ``GATE <fraction of its model-epochs done>`` and waits for a line on stdin
(run.py's ``lockstep`` lets the naive and the stacked job take turns, so both see the same hours
of a drifting machine); the seconds it waited are not the job's.
"""

from __future__ import annotations

import dataclasses
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


def cell_and_members(spec: dict):
    """(CellConfig, its first spec["models"] members in seed-major order, processed data)."""
    from initbench import config
    from initbench.config import CellConfig, ConvModelConfig, InitializerSpec, ModelConfig
    from initbench.data import processed
    from initbench.train.cell import plan

    params = config.load(Path(spec["params"]))
    inits = {label: params.initializers.get(label) or InitializerSpec.parse(label, None)
             for label in spec["initializers"]}
    model = (ConvModelConfig(*spec["conv"], spec["activation"]) if "conv" in spec
             else ModelConfig(tuple(spec["hidden"]), spec["activation"]))
    cell = CellConfig(
        "baseline", model,
        dataclasses.replace(params.train, optimizer=spec["optimizer"], learning_rate=spec["lr"],
                            momentum=spec["momentum"], batch_size=spec["batch_size"],
                            epochs=spec["epochs"]),
        inits, spec["seeds"], spec["train_limit"], False, params.data.dataset)
    order = list(inits)
    members = sorted(plan(cell, params.train.seed, False),
                     key=lambda m: (m.seed_index, order.index(m.label)))[: spec["models"]]
    data = processed.load(Path(spec["data"]))
    data["x_train"], data["y_train"] = processed.stratified_subset(
        data["x_train"], data["y_train"], cell.train_limit, params.data.split_seed)
    return cell, members, data


class Gate:
    """The lockstep turn-taking above (a no-op unless the spec asks for it)."""

    def __init__(self, spec: dict) -> None:
        self.on, self.waited = bool(spec.get("lockstep")), 0.0

    def start(self) -> None:
        """The first turn, before the timed work (its wait is not counted)."""
        self(0.0)
        self.waited = 0.0

    def __call__(self, done: float) -> None:
        if self.on:
            tic = time.perf_counter()
            print(f"GATE {done}", flush=True)
            sys.stdin.readline()
            self.waited += time.perf_counter() - tic


def sizes(data: dict) -> dict:
    return {"n_train": len(data["y_train"]), "n_val": len(data["y_val"])}


def run_naive(spec: dict) -> dict:
    """One keras.Model.fit per model (with the per-epoch validation pass the stage also makes)."""
    import keras

    from initbench.train.cell import build
    from initbench.train.model import compile_model, data_dependent_init

    cell, members, data = cell_and_members(spec)
    x, y = data["x_train"], data["y_train"]

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # after the validation pass
            epochs.append((1, epoch == 0, time.perf_counter() - self.start))

    class Turn(keras.callbacks.Callback):  # after EpochTimer: the wait is not the epoch's
        def on_epoch_end(self, epoch, logs=None):
            gate(len(epochs) / (len(members) * cell.train.epochs))

    fit_seconds, accs, epochs, gate = 0.0, [], [], Gate(spec)
    gate.start()
    tic = time.perf_counter()
    for m in members:
        model = build(cell.model, m.spec, m.init_seed)
        data_dependent_init(model, m.spec, x, m.init_seed)
        compile_model(model, cell.train)
        t, waited = time.perf_counter(), gate.waited
        model.fit(x, y, batch_size=cell.train.batch_size, epochs=cell.train.epochs, shuffle=True,
                  verbose=0, validation_data=(data["x_val"], data["y_val"]), callbacks=[EpochTimer(), Turn()])
        fit_seconds += time.perf_counter() - t - gate.waited + waited
        acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)[1]
        accs.append([m.label, m.init_seed, float(acc)])
    return {"seconds": time.perf_counter() - tic - gate.waited, "fit_seconds": fit_seconds,
            "test_accuracy": accs, "epochs": epochs, **sizes(data)}


def run_stacked(spec: dict) -> dict:
    """initbench.train.cell.train_cell on the spec's cell, as the train stage calls it."""
    from initbench.train.cell import train_cell

    cell, members, data = cell_and_members(spec)
    gate, total = Gate(spec), len(members) * cell.train.epochs

    class Turn:  # train_cell's Tracker: only its after-epoch call is used
        done = 0  # model-epochs of the stacks finished before this one

        def start(self, stack): ...

        def epoch(self, stack, epoch, rows):
            gate((self.done + len(stack) * epoch) / total)

        def finish(self, stack, results, models):
            self.done += len(stack) * cell.train.epochs

        def fail(self, stack): ...

    gate.start()
    tic = time.perf_counter()
    results, timing = train_cell(cell, members, data, spec["diag_batch"],
                                 tracker=Turn() if gate.on else None, log=lambda *_: None)
    seconds = time.perf_counter() - tic - gate.waited
    timing["train_seconds"] -= gate.waited  # every wait fell inside a stack's fit
    stack_sizes, epochs, seen = [], [], set()
    for stack in timing["stacks"]:  # in training order; the first epoch of a size compiles it
        stack_sizes.append(stack["size"])
        epochs += [(stack["size"], stack["size"] not in seen and e == 0, sec)
                   for e, sec in enumerate(stack["epoch_seconds"])]
        seen.add(stack["size"])
    accs = [[r["label"], r["init_seed"], r["test_accuracy"]] for r in results]
    return {"seconds": seconds, "test_accuracy": accs, "stack": max(stack_sizes), "stacks": stack_sizes,
            "epochs": epochs, "timing": timing, **sizes(data)}


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
    import initbench.cli  # the entry point of every stage
    import initbench.train.stage  # noqa: F401 - what `initbench train` imports (TF, Keras, MLflow)

    return {"seconds": time.perf_counter() - t}


if __name__ == "__main__":
    job = json.loads(sys.argv[1])
    result = {"naive": run_naive, "stacked": run_stacked, "matmul": run_matmul,
              "import": run_import}[job["mode"]](job)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["process_seconds"] = time.perf_counter() - START
    print("RESULT " + json.dumps(result), flush=True)
