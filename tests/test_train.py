"""Pieces of the train stage that run without MLflow: params logged, LSUV step, curve helpers."""

from __future__ import annotations

import numpy as np
import pytest

from initbench import config, normalize
from initbench.config import DataConfig
from initbench.model import build_model
from initbench.train import data_dependent_init, epochs_to_reach, lsuv_batch_seed, run_params


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
    model = build_model(params.model, params.initializers["lsuv"], params.train.seed)
    report = data_dependent_init(model, params, "lsuv", x_train)
    assert list(report) == ["dense_0", "dense_1", "dense_2", "output"]
    assert all(abs(r["final_variance"] - 1) < 0.05 and r["converged"] for r in report.values())
    assert any(abs(r["initial_variance"] - 1) > 0.2 for r in report.values())  # it did rescale
    # Same params -> same batch -> same weights.
    again = build_model(params.model, params.initializers["lsuv"], params.train.seed)
    data_dependent_init(again, params, "lsuv", x_train)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_other_initializers_have_no_data_step(raw_params, x_train):
    params = params_with(raw_params, he_normal=None)
    model = build_model(params.model, params.initializers["he_normal"], params.train.seed)
    before = [w.copy() for w in model.get_weights()]
    assert data_dependent_init(model, params, "he_normal", x_train) is None
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_run_params_hold_every_effective_argument(raw_params):
    params = params_with(raw_params, lsuv={"name": "lsuv", "base": "he_normal"},
                         ortho={"name": "orthogonal", "gain": "auto"})
    logged = run_params(params, "lsuv")
    assert logged["initializer.name"] == "lsuv" and logged["initializer.base"] == "he_normal"
    assert logged["initializer.batch_size"] == 256 and logged["initializer.tol"] == 0.1
    assert logged["initializer.batch_seed"] == lsuv_batch_seed(params)
    assert len(set(logged["initializer.layer_seeds"])) == 4
    ortho = run_params(params, "ortho")
    assert ortho["initializer.gain"] == "auto"
    assert ortho["initializer.keras.gain"] == pytest.approx(np.sqrt(2))  # relu


def test_gain_auto_with_an_activation_without_gain_fails_early(raw_params):
    raw_params["model"]["activation"] = "gelu"
    raw_params["initializers"] = {"o": {"name": "orthogonal", "gain": "auto"}}
    with pytest.raises(config.ConfigError, match=r"initializers.o: .*'gain' 'auto'"):
        config.from_dict(raw_params)


def test_epochs_to_reach():
    assert epochs_to_reach([0.9, 0.96, 0.97, 0.99], 0.97) == 3
    assert epochs_to_reach([0.9, 0.96], 0.97) is None
