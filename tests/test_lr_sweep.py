"""The learning-rate sweep: its params, its cell, and each initializer at its best rate."""

from __future__ import annotations

import pytest

from initbench import config
from initbench.paths import cell_from_stage, stage_of_cell
from initbench.report import lr_sweep
from initbench.train.cell import plan


def test_the_sweep_cell_trains_every_initializer_at_the_other_rates(raw_params):
    raw_params["study"]["seeds"] = 4
    raw_params["study"]["lr_sweep"] = {"learning_rates": [0.0003, 0.003], "seeds": 2}
    params = config.from_dict(raw_params)
    cell = params.cells()["lr_sweep"]
    assert list(params.cells())[:2] == ["baseline", "lr_sweep"]
    labels = [config.sweep_label(k, lr) for k in params.initializers for lr in (0.0003, 0.003)]
    assert list(cell.initializers) == labels and cell.seeds == 2 and not cell.save_models
    assert cell.initializers["he_normal-lr0.003"] == params.initializers["he_normal"]
    members = plan(cell, params.train.seed, params.study.vary_data_order)
    he = [m for m in members if m.spec.label == "he_normal"]
    # Seed i starts where the pipeline's seed i starts (same init and data seed), at its own rate.
    base = {(m.seed_index, m.init_seed, m.data_seed) for m in plan(params.cells()["baseline"], 42, True)}
    assert {(m.seed_index, m.init_seed, m.data_seed) for m in he} <= base
    assert sorted((m.label, m.learning_rate) for m in he) == [
        ("he_normal-lr0.0003", 0.0003), ("he_normal-lr0.0003", 0.0003),
        ("he_normal-lr0.003", 0.003), ("he_normal-lr0.003", 0.003)]
    assert {m.learning_rate for m in plan(params.cells()["baseline"], 42, True)} == {0.001}
    assert stage_of_cell("lr_sweep") == "train_lr_sweep" and cell_from_stage("train_lr_sweep") == "lr_sweep"
    raw_params["study"]["seeds"] = 1  # the article's design: the sweep follows, one seed
    assert config.from_dict(raw_params).cells()["lr_sweep"].seeds == 1
    # A listed rate that is the shared one is the pipeline's cell's: not trained again.
    raw_params["study"]["lr_sweep"]["learning_rates"] = [0.001, 0.003]
    assert set(config.from_dict(raw_params).cells()["lr_sweep"].learning_rates.values()) == {0.003}
    for nothing_else in ([0.001], []):  # no other rate: the stage's cell has no model
        raw_params["study"]["lr_sweep"]["learning_rates"] = nothing_else
        assert not config.from_dict(raw_params).cells()["lr_sweep"].initializers


@pytest.mark.parametrize(("sweep", "says"), [
    ({"learning_rates": [0.01, 0.01], "seeds": 1}, "distinct numbers in (0, 10]"),
    ({"learning_rates": [-0.1], "seeds": 1}, "study.lr_sweep.learning_rates: got [-0.1]"),
    ({"learning_rates": [0.01], "seeds": 0}, "study.lr_sweep.seeds: got 0; allowed: an integer >= 1"),
    ({"learning_rates": [0.01], "seeds": 1, "epochs": 3}, "study.lr_sweep.epochs: unknown key"),
])
def test_bad_sweeps_name_the_field(raw_params, sweep, says):
    raw_params["study"]["lr_sweep"] = sweep
    with pytest.raises(config.ConfigError) as err:
        config.from_dict(raw_params)
    assert says in str(err.value)


def _m(label: str, seed: int, val: float, test: float) -> dict:
    return {"label": label, "seed_index": seed, "test_accuracy": test,
            "history": [{"val_accuracy": val}]}


def test_best_rate_is_chosen_on_validation_and_compared_paired_by_seed():
    sweep = config.LrSweepConfig((0.0003, 0.003), 3)
    base = {"members": [_m("a", s, 0.95, 0.950 + s / 1000) for s in range(4)]
            + [_m("b", s, 0.97, 0.970) for s in range(4)]}
    cell = {"members": [
        # a: best on validation at 0.003, +1 pp on test in every seed (paired: a sure gain)
        *[_m("a-lr0.003", s, 0.96, 0.960 + s / 1000) for s in range(3)],
        # a at 0.0003 has the best *test* accuracy but a worse validation: not chosen
        *[_m("a-lr0.0003", s, 0.90, 0.990) for s in range(3)],
        *[_m("b-lr0.003", s, 0.96, 0.965) for s in range(3)],
        *[_m("b-lr0.0003", s, 0.96, 0.965) for s in range(3)]]}
    rates = lr_sweep.runs_by_rate(base, cell, 0.001, sweep)
    assert list(rates["a"]) == [0.0003, 0.001, 0.003] and set(rates["a"][0.001]) == {0, 1, 2}
    assert lr_sweep.best_rate(rates["a"]) == 0.003 and lr_sweep.best_rate(rates["b"]) == 0.001
    text = "\n".join(lr_sweep.markdown(base, cell, 0.001, sweep, 0.95))
    assert "| a | 90.00 | 95.00 | 96.00 | 0.003 | 95.10 [" in text
    assert "| 1.00 [1.00, 1.00] |" in text  # +1 pp in every seed
    assert "| b | 96.00 | 97.00 | 96.00 | 0.001 | 97.00" in text and "0 (the shared rate)" in text
    assert "at the shared rate: b, a; each at its best rate: b, a. The leader is the same." in text
