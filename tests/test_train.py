"""Pieces of the train stage that run without MLflow: params logged, LSUV step, curve helpers."""

from __future__ import annotations

import numpy as np
import pytest

from initbench import config
from initbench.config import DataConfig
from initbench.data import normalize
from initbench.results import epochs_to_reach
from initbench.train.model import (
    build_model,
    data_batch_seed,
    data_dependent_init,
    initializer_params,
    layer_seed,
)


@pytest.fixture(scope="module")
def x_train(mnist):
    cfg = DataConfig("mnist", 0.1, False, 0, 2000, 500)
    return normalize.build_arrays(mnist, cfg)[0]["x_train"]


def params_with(raw_params, **inits):
    raw_params["initializers"] = inits
    raw_params["model"]["hidden"] = [256, 256, 256]
    return config.from_dict(raw_params)


def test_lsuv_step_runs_after_construction(raw_params, x_train):
    params = params_with(raw_params, lsuv={"name": "lsuv", "tol": 0.05})
    spec, seed = params.initializers["lsuv"], params.train.seed
    model = build_model(params.model, spec, seed)
    report = data_dependent_init(model, spec, x_train, seed)
    assert list(report) == ["dense_0", "dense_1", "dense_2", "output"]
    assert all(abs(r["final_variance"] - 1) < 0.05 and r["converged"] for r in report.values())
    assert any(abs(r["initial_variance"] - 1) > 0.2 for r in report.values())  # it did rescale
    # Same spec and seed -> same batch -> same weights.
    again = build_model(params.model, spec, seed)
    data_dependent_init(again, spec, x_train, seed)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Another seed draws another LSUV batch (and other base weights): another model.
    other = build_model(params.model, spec, seed + 1)
    data_dependent_init(other, spec, x_train, seed + 1)
    assert not np.array_equal(other.get_weights()[0], model.get_weights()[0])


def test_other_initializers_have_no_data_step(raw_params, x_train):
    params = params_with(raw_params, he_normal=None)
    spec, seed = params.initializers["he_normal"], params.train.seed
    model = build_model(params.model, spec, seed)
    before = [w.copy() for w in model.get_weights()]
    assert data_dependent_init(model, spec, x_train, seed) is None
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_initializer_params_hold_every_effective_argument(raw_params):
    params = params_with(raw_params, lsuv={"name": "lsuv", "base": "he_normal"},
                         ortho={"name": "orthogonal", "gain": "auto"})
    seed = params.train.seed
    logged = initializer_params(params.initializers["lsuv"], params.model, seed)
    assert logged["initializer.label"] == "lsuv"
    assert logged["initializer.name"] == "lsuv" and logged["initializer.base"] == "he_normal"
    assert logged["initializer.batch_size"] == 256 and logged["initializer.tol"] == 0.1
    assert logged["initializer.batch_seed"] == data_batch_seed(seed)
    assert logged["initializer.layer_seeds"] == [layer_seed(seed, i) for i in range(4)]
    assert len(set(logged["initializer.layer_seeds"])) == 4
    assert logged["initializer.keras.class"] == "HeNormal"
    assert data_batch_seed(seed) not in logged["initializer.layer_seeds"]
    assert data_batch_seed(seed) != data_batch_seed(seed + 1)
    ortho = initializer_params(params.initializers["ortho"], params.model, seed)
    assert ortho["initializer.label"] == "ortho" and ortho["initializer.name"] == "orthogonal"
    assert ortho["initializer.gain"] == "auto"
    assert ortho["initializer.keras.gain"] == pytest.approx(np.sqrt(2))  # relu
    assert "initializer.batch_seed" not in ortho  # no data step, no batch
    assert "initializer.keras.seed" not in ortho  # the per-layer seeds say it
    # A model's params depend on its seed (one MLflow run per seed).
    other = initializer_params(params.initializers["ortho"], params.model, seed + 1)
    assert other["initializer.layer_seeds"] != ortho["initializer.layer_seeds"]


def test_gain_auto_with_an_activation_without_gain_fails_early(raw_params):
    raw_params["model"]["activation"] = "gelu"
    raw_params["initializers"] = {"o": {"name": "orthogonal", "gain": "auto"}}
    with pytest.raises(config.ConfigError, match=r"initializers.o: .*'gain' 'auto'"):
        config.from_dict(raw_params)


def test_epochs_to_reach():
    assert epochs_to_reach([0.9, 0.96, 0.97, 0.99], 0.97) == 3
    assert epochs_to_reach([0.9, 0.96], 0.97) is None
    assert epochs_to_reach([0.98]) == 1  # default target: 97%
