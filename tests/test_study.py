"""How the study cuts its models into stacks, and per-model diagnostics read out of a stack."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from initbench import normalize
from initbench.config import DataConfig, InitializerSpec, ModelConfig, TrainConfig
from initbench.diagnostics import signal_stats
from initbench.initializers import resolve_args
from initbench.model import build_model
from initbench.stacked import StackedMLP
from initbench.study import MAX_STACK, chunks, plan, split_even, stack_size


def spec(name: str) -> InitializerSpec:
    return InitializerSpec(name, name, resolve_args(name, {}))


@pytest.mark.parametrize(("n", "size", "want"), [
    (50, 8, [8, 7, 7, 7, 7, 7, 7]),
    (10, 8, [5, 5]),
    (16, 8, [8, 8]),
    (3, 8, [3]),
    (9, 4, [3, 3, 3]),
    (1, 1, [1]),
    (0, 8, []),
])
def test_split_even_uses_fewest_stacks_of_near_equal_size(n, size, want):
    items = list(range(n))
    parts = split_even(items, size)
    assert [len(p) for p in parts] == want
    assert [i for p in parts for i in p] == items  # order kept, nothing lost or repeated


def test_chunks_never_mix_data_orders_and_respect_the_cache_budget():
    specs = {name: spec(name) for name in ("he_normal", "glorot_uniform", "zeros")}
    members = plan(specs, seeds=4, base_seed=42, vary_data=True)
    small = chunks(members, n_params=100_000)
    assert all(len({m.data_seed for m in c}) == 1 for c in small)
    assert sorted(m.init_seed for c in small for m in c) == sorted(m.init_seed for m in members)
    shared = chunks(plan(specs, seeds=4, base_seed=42, vary_data=False), n_params=100_000)
    assert [len(c) for c in shared] == [6, 6]  # 12 models, MAX_STACK 8 -> two even stacks
    assert stack_size(100_000) == MAX_STACK
    assert stack_size(1_450_000) == 4  # the 20 x 256 deep MLP
    assert stack_size(10**9) == 1


def test_diagnostics_of_each_stacked_model_are_its_own(mnist):
    """kernel_std and grad_norm of stack member k equal those of model k computed alone by Keras."""
    arrays, _ = normalize.build_arrays(mnist, DataConfig("mnist", 0.1, False, 0, 2000, 100))
    x, y = arrays["x_train"][:256], arrays["y_train"][:256]
    mc = ModelConfig((32, 16), "relu")
    models = [build_model(mc, spec(n), s) for n, s in (("he_normal", 1), ("glorot_uniform", 2))]
    stats = signal_stats(StackedMLP(models, "relu", TrainConfig("adam", 1e-3, 0.0, 32, 1, 0)),
                         x, y, "relu")
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
