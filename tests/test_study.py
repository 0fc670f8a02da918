"""How a cell cuts its models into stacks, tests them, reads per-model diagnostics out of a stack,
and trains end to end (without MLflow) through the tracker protocol."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

from initbench import config
from initbench.config import CellConfig, DataConfig, InitializerSpec, ModelConfig, TrainConfig
from initbench.data import normalize
from initbench.init.registry import resolve_args
from initbench.results import STATS
from initbench.train.cell import (
    MAX_STACK,
    Member,
    confusion,
    diverged,
    plan,
    scores,
    stack_size,
    stacks,
    train_cell,
)
from initbench.train.diagnostics import signal_stats
from initbench.train.model import build_model
from initbench.train.stacked import StackedMLP

from .conftest import PLAIN, spec

SMALL = 100_000  # parameters of a model small enough for a full stack (MAX_STACK)
DEEP = 1_450_000  # the 20 x 256 deep MLP: 4 per stack


def cell_of(names, seeds: int, hidden=(16,)) -> CellConfig:
    return CellConfig("baseline", ModelConfig(hidden, "relu"),
                      TrainConfig("adam", 1e-3, 0.0, 32, 1, 0, **PLAIN),
                      {n: spec(n) for n in names}, seeds, None, False, "mnist")


def same_order(n: int, data_seed: int = 42) -> list[Member]:
    return [Member(f"m{i}", spec("zeros"), i, 100 + i, data_seed, 0.001) for i in range(n)]


def test_stack_size_respects_the_cache_budget():
    assert stack_size(SMALL) == MAX_STACK == 12
    assert stack_size(DEEP) == 4
    assert stack_size(10**9) == 1
    assert stack_size(0) == MAX_STACK


@pytest.mark.parametrize(("n", "n_params", "want"), [
    (50, SMALL, [10, 10, 10, 10, 10]),
    (44, SMALL, [11, 11, 11, 11]),
    (25, SMALL, [9, 8, 8]),
    (10, SMALL, [10]),
    (16, SMALL, [8, 8]),
    (3, SMALL, [3]),
    (9, DEEP, [3, 3, 3]),
    (1, 10**9, [1]),
    (3, 10**9, [1, 1, 1]),
    (0, SMALL, []),
])
def test_stacks_are_the_fewest_of_near_equal_size(n, n_params, want):
    members = same_order(n)
    parts = stacks(members, n_params)
    assert [len(p) for p in parts] == want
    assert [m for p in parts for m in p] == members  # order kept, nothing lost or repeated


def test_stacks_never_mix_data_orders():
    cell = cell_of(("he_normal", "glorot_uniform", "zeros"), seeds=5)
    members = plan(cell, base_seed=42, vary_data=True)
    assert [(m.label, m.seed_index, m.init_seed, m.data_seed) for m in members[:5]] == [
        ("he_normal", 0, 42, 42), ("he_normal", 1, 43, 43), ("he_normal", 2, 44, 44),
        ("he_normal", 3, 45, 45), ("he_normal", 4, 46, 46)]
    parts = stacks(members, SMALL)
    assert all(len({m.data_seed for m in p}) == 1 for p in parts)
    assert [len(p) for p in parts] == [3] * 5  # 5 data orders x 3 initializers
    assert sorted((m.label, m.seed_index) for p in parts for m in p) == sorted(
        (m.label, m.seed_index) for m in members)
    for p in parts:  # within a data order, the plan's order
        assert p == [m for m in members if m.data_seed == p[0].data_seed]
    # One shared data order: 15 models, MAX_STACK 12 -> two near-even stacks, in the plan's order.
    shared = plan(cell, base_seed=42, vary_data=False)
    assert {m.data_seed for m in shared} == {42}
    assert [m.init_seed for m in shared if m.label == "zeros"] == [42, 43, 44, 45, 46]
    parts = stacks(shared, SMALL)
    assert [len(p) for p in parts] == [8, 7]
    assert [m for p in parts for m in p] == shared


def test_confusion_and_scores_match_sklearn():
    rng = np.random.default_rng(0)
    labels = list(range(10))
    for n, drop in ((1000, None), (257, 3)):
        y = rng.integers(0, 10, n)
        pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, 10, n))
        if drop is not None:  # a class never predicted, and one never present
            pred[pred == drop] = (drop + 1) % 10
            y[y == drop + 2] = drop + 3
        want = confusion_matrix(y, pred, labels=labels)
        np.testing.assert_array_equal(confusion(y, pred), want)
        # The stack's predictions are int32, the labels int64.
        out = scores(y, np.float32(0.25), pred.astype(np.int32))
        assert out["confusion"] == want.tolist()
        assert out["test_loss"] == 0.25 and isinstance(out["test_loss"], float)
        assert out["test_accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
        recall = recall_score(y, pred, labels=labels, average=None, zero_division=0)
        assert len(out["per_class_accuracy"]) == 10
        np.testing.assert_allclose(out["per_class_accuracy"], recall, atol=1e-12)


def test_diverged():
    row = {"loss": 0.5, "accuracy": 0.9}
    assert not diverged([row, row])
    assert diverged([{"loss": math.nan, "accuracy": 0.9}, row])  # NaN once is enough
    assert diverged([row, {"loss": math.inf, "accuracy": 0.9}])
    assert diverged([row, {"loss": 2.3, "accuracy": 0.1}])  # ended at chance


def test_diagnostics_of_each_stacked_model_are_its_own(mnist):
    """kernel_std and grad_norm of stack member k equal those of model k computed alone by Keras."""
    arrays, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 2000, 100))
    x, y = arrays["x_train"][:256], arrays["y_train"][:256]
    mc = ModelConfig((32, 16), "relu")
    models = [build_model(mc, spec(n), s) for n, s in (("he_normal", 1), ("glorot_uniform", 2))]
    stats = signal_stats(StackedMLP(models, "relu", TrainConfig("adam", 1e-3, 0.0, 32, 1, 0, **PLAIN)),
                         x, y, "relu")
    assert set(stats) == set(STATS)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    for k, model in enumerate(models):
        kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x))
        grads = tape.gradient(loss, kernels)
        np.testing.assert_allclose(stats["kernel_std"][k], [np.std(w.numpy()) for w in kernels],
                                   rtol=1e-5)
        np.testing.assert_allclose(stats["grad_norm"][k], [np.linalg.norm(g) for g in grads],
                                   rtol=1e-4)
    assert stats["kernel_std"].shape == (2, 3)
    assert not np.allclose(stats["kernel_std"][0], stats["kernel_std"][1])


@pytest.mark.parametrize("stddev, activation, depth", [(1.0, "relu", 20), (0.01, "relu", 20)])
def test_diagnostics_neither_overflow_nor_underflow(mnist, stddev, activation, depth):
    """N(0,1) ReLU at depth 20: activations ~1e20, whose float32 squares overflow; N(0, 0.01^2)
    ReLU: activations ~1e-20 and gradients whose float32 squares underflow. The statistics are
    those of float64 numpy on the same float32 tensors: finite and non-zero, never an artefact."""
    arrays, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 2000, 100))
    x, y = arrays["x_train"][:256], arrays["y_train"][:256]
    mc = ModelConfig((256,) * depth, activation)
    gauss = InitializerSpec("g", "gaussian", resolve_args("gaussian", {"stddev": stddev}))
    model = build_model(mc, gauss, 3)
    stats = signal_stats(StackedMLP([model], activation, TrainConfig("sgd", 0.01, 0.9, 32, 1, 0, **PLAIN)),
                         x, y, activation)
    h = x.reshape(len(x), -1).astype(np.float32)
    acts = []
    for layer in [lay for lay in model.layers if hasattr(lay, "kernel")][:-1]:
        h = layer(h).numpy()
        acts.append(h.astype(np.float64))
    np.testing.assert_allclose(stats["act_std"][0][:-1], [a.std() for a in acts], rtol=1e-6)
    assert np.all(np.isfinite(stats["act_std"])) and np.all(stats["grad_norm"] >= 0)
    if stddev == 1.0:
        assert acts[-1].std() > 1e19  # its float32 square would be inf
        # The softmax is one-hot: the loss clips every example, so no gradient passes at all.
        assert stats["dead_fraction"][0][-1] == 1.0 and np.all(stats["grad_norm"] == 0)
    else:
        assert 0 < acts[-1].std() < 1e-19  # its float32 square would underflow to 0
        assert np.all(stats["grad_norm"][0] > 0) and stats["grad_norm"][0][-2] < 1e-19
        assert stats["dead_fraction"][0][-1] == 0.0


# -- train_cell on a tiny real cell ------------------------------------------------------------

EPOCHS = 2


class Recorder:
    """A tracker that records every call (and can be told to fail in ``epoch``)."""

    def __init__(self, fail_in_epoch: bool = False) -> None:
        self.calls: list[tuple] = []
        self.models: dict[tuple[str, int], keras.Model] = {}
        self.fail_in_epoch = fail_in_epoch

    def start(self, stack):
        self.calls.append(("start", tuple((m.label, m.seed_index) for m in stack)))

    def epoch(self, stack, epoch, rows):
        assert len(rows) == len(stack) and all(r["epoch"] == epoch for r in rows)
        self.calls.append(("epoch", tuple((m.label, m.seed_index) for m in stack), epoch))
        if self.fail_in_epoch:
            raise KeyboardInterrupt  # a BaseException too: the runs must still be failed

    def finish(self, stack, results, models):
        assert [(r["label"], r["seed_index"]) for r in results] == [
            (m.label, m.seed_index) for m in stack]
        self.models.update({(m.label, m.seed_index): model
                            for m, model in zip(stack, models, strict=True)})
        self.calls.append(("finish", tuple((m.label, m.seed_index) for m in stack)))

    def fail(self, stack):
        self.calls.append(("fail", tuple((m.label, m.seed_index) for m in stack)))


@pytest.fixture(scope="module")
def tiny_data(mnist):
    arrays, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 1000, 500))
    return arrays


@pytest.fixture
def tiny_cell(raw_params) -> CellConfig:
    """The repo's params: 2 initializers (one data-dependent) x 2 seeds, (16,), 2 epochs of Adam."""
    raw_params["model"]["hidden"] = [16]
    raw_params["train"]["epochs"] = EPOCHS
    raw_params["train"]["learning_rate"] = 0.01  # 900 images, 2 epochs: well above chance
    raw_params["initializers"] = {"he_normal": None,
                                  "lsuv": {"base": "orthogonal", "batch_size": 128}}
    raw_params["study"]["seeds"] = 2
    return config.from_dict(raw_params).cell("baseline")


def test_train_cell_trains_and_tests_every_model(tiny_cell, tiny_data):
    cell, data = tiny_cell, tiny_data
    # Varying the data order: two data orders -> two stacks of 2 (the second reuses the first's
    # compiled trainer).
    members = plan(cell, base_seed=7, vary_data=True)
    tracker, lines = Recorder(), []
    results, timing = train_cell(cell, members, data, 64, tracker, log=lines.append)

    assert sorted((r["label"], r["seed_index"]) for r in results) == [
        ("he_normal", 0), ("he_normal", 1), ("lsuv", 0), ("lsuv", 1)]
    first, second = (("he_normal", 0), ("lsuv", 0)), (("he_normal", 1), ("lsuv", 1))
    assert tracker.calls == [
        ("start", first), *(("epoch", first, e) for e in range(1, EPOCHS + 1)), ("finish", first),
        ("start", second), *(("epoch", second, e) for e in range(1, EPOCHS + 1)),
        ("finish", second)]
    assert len(lines) == 2 * EPOCHS
    assert timing["model_epochs"] == 4 * EPOCHS
    assert timing["n_params"] == 784 * 16 + 16 + 16 * 10 + 10
    assert min(timing[k] for k in ("train_seconds", "diagnostics_seconds", "test_seconds")) > 0
    # Wall times are kept per stack, out of the results (which must not vary between reruns).
    assert [s["size"] for s in timing["stacks"]] == [2, 2]
    assert all(len(s["epoch_seconds"]) == EPOCHS and min(s["epoch_seconds"]) > 0
               for s in timing["stacks"])
    assert not [r for r in results for row in r["history"] if "epoch_seconds" in row]

    y_test = data["y_test"]
    for r in results:
        m = next(m for m in members if (m.label, m.seed_index) == (r["label"], r["seed_index"]))
        assert (r["init_seed"], r["data_seed"]) == (m.init_seed, m.data_seed)
        assert r["initializer"] == m.spec.name and r["args"] == dict(m.spec.args)
        cm = np.array(r["confusion"])
        assert cm.shape == (10, 10) and cm.sum() == len(y_test)
        assert r["test_accuracy"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-12)
        assert len(r["per_class_accuracy"]) == 10
        np.testing.assert_allclose(r["per_class_accuracy"], np.diag(cm) / cm.sum(axis=1))
        np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(y_test, minlength=10))
        assert math.isfinite(r["test_loss"]) and r["test_accuracy"] > 0.6
        assert [h["epoch"] for h in r["history"]] == list(range(1, EPOCHS + 1))
        assert r["final_train_loss"] == r["history"][-1]["loss"] and r["diverged"] is False
        # Diagnostics: every statistic at initialization and after each epoch, per layer.
        assert set(r["diagnostics"]) == set(STATS)
        assert all(len(v) == EPOCHS + 1 and all(len(e) == 2 for e in v)
                   for v in r["diagnostics"].values())
        # The model handed to the tracker holds the trained weights: alone, it predicts the
        # confusion matrix's test results.
        model = tracker.models[r["label"], r["seed_index"]]
        pred = np.argmax(model.predict(data["x_test"], verbose=0), axis=-1)
        alone = confusion_matrix(y_test, pred, labels=list(range(10)))
        assert np.abs(alone - cm).sum() <= 2  # float rounding may flip a near-tie
    # Different seeds (init and data order) train different models.
    loss = {(r["label"], r["seed_index"]): r["final_train_loss"] for r in results}
    assert loss["he_normal", 0] != loss["he_normal", 1]


def test_train_cell_without_a_tracker(tiny_cell, tiny_data):
    members = plan(tiny_cell, base_seed=7, vary_data=False)[:1]
    results, _ = train_cell(tiny_cell, members, tiny_data, 64, log=lambda _: None)
    assert [(r["label"], r["seed_index"]) for r in results] == [("he_normal", 0)]


def test_an_empty_cell_trains_nothing(tiny_cell, tiny_data):
    """A cell without members (the default's learning-rate sweep) is a no-op, not an error."""
    results, timing = train_cell(tiny_cell, [], tiny_data, 64, Recorder(), log=lambda _: None)
    assert results == [] and timing["model_epochs"] == 0 and timing["stacks"] == []


def test_a_failing_tracker_fails_the_stack_and_reraises(tiny_cell, tiny_data):
    members = plan(tiny_cell, base_seed=7, vary_data=False)
    tracker = Recorder(fail_in_epoch=True)
    with pytest.raises(KeyboardInterrupt):
        train_cell(tiny_cell, members, tiny_data, 64, tracker, log=lambda _: None)
    stack = tuple((m.label, m.seed_index) for m in members)  # one stack of 4
    assert tracker.calls == [("start", stack), ("epoch", stack, 1), ("fail", stack)]
