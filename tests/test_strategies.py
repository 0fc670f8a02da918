"""Optimization strategies: the variants' params, their cells and stages, and the report's
reading of them: the initializer x setting interaction on cells built to narrow, widen, keep or
leave undecided every initializer's gap to the reference, and initializers that fail in one
setting only."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from initbench import config
from initbench.config import from_dict
from initbench.paths import cell_from_stage, stage_of_cell
from initbench.report import strategies
from initbench.report.interaction import row

from .conftest import ROOT, rejects_study_section
from .test_interaction import cell_of, gapped


def test_each_variant_retrains_the_depth_cell_with_its_settings(full_raw_params):
    full_raw_params["study"]["strategies"] = {"depth": 5, "activation": "tanh", "variants": {
        "wd": {"weight_decay": 0.1}, "cos": {"lr_schedule": "cosine", "warmup_epochs": 1},
        "adam": {"optimizer": "adam", "learning_rate": 0.001}}}
    params = from_dict(full_raw_params)
    cells, dc = params.cells(), params.study.depth
    plain = cells["depth-5-tanh"]
    for name in ("wd", "cos", "adam"):
        cell = cells[f"strategy-{name}"]
        assert (cell.model, cell.initializers, cell.seeds, cell.train_limit) == (
            plain.model, plain.initializers, plain.seeds, plain.train_limit)
        assert cell.train.seed == plain.train.seed and not cell.save_models
    assert cells["strategy-wd"].train.weight_decay == 0.1 and plain.train.weight_decay == 0.0
    assert cells["strategy-cos"].train.lr_schedule == "cosine"
    adam = cells["strategy-adam"].train
    assert (adam.optimizer, adam.learning_rate, adam.momentum) == ("adam", 0.001, dc.momentum)
    assert stage_of_cell("strategy-wd") == "train_strategy@wd"
    assert cell_from_stage("train_strategy@cos") == "strategy-cos"
    full_raw_params["study"]["strategies"]["variants"] = {}
    assert not [c for c in from_dict(full_raw_params).cells() if c.startswith("strategy-")]


@pytest.mark.parametrize(("strategies", "says"), [
    ({"depth": 7, "activation": "relu", "variants": {"a": {"momentum": 0.0}}},
     "study.strategies.depth: got 7; allowed: one of study.depth.depths [2, 5, 10, 20] "
     "(or study.strategies.variants: {})"),
    ({"depth": 10, "activation": "elu", "variants": {"a": {"momentum": 0.0}}},
     "study.strategies.activation: got 'elu'; allowed: one of study.depth.activations"),
    ({"depth": 10, "activation": "relu", "variants": {"a": {"momentun": 0.0}}},
     "study.strategies.variants.a.momentun: unknown key (did you mean study.strategies.variants.a."
     "momentum?)"),
    ({"depth": 10, "activation": "relu", "variants": {"a": {"momentum": 1.5}}},
     "study.strategies.variants.a.momentum: got 1.5; allowed: a number in [0, 1)"),
    ({"depth": 10, "activation": "relu", "variants": {"a": {"warmup_epochs": 2}}},
     "study.strategies.variants.a.warmup_epochs: got 2; allowed: 0 unless "
     "study.strategies.variants.a.lr_schedule is cosine"),
    ({"depth": 10, "activation": "relu", "variants": {"a": {"momentum": 0.9}}},
     "study.strategies.variants.a: got {}; allowed: at least one training setting that differs"),
    ({"depth": 10, "activation": "relu", "variants": {"a b": {}}},
     "study.strategies.variants: got 'a b'; allowed: a name of 1-64 letters"),
    ({"depth": 10, "activation": "relu", "variants": [1]},
     "study.strategies.variants: got [1]; allowed: a mapping name -> "),
    ({"depth": 10, "variants": {}}, "study.strategies.activation: missing (required key)"),
])
def test_bad_strategies_name_the_field(full_raw_params, strategies, says):
    rejects_study_section(full_raw_params, "strategies", strategies, says)


def test_the_stage_depends_on_its_own_variant_only():
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train_strategy"]
    assert stage["foreach"] == "${study.strategies.variants}"
    assert "study.strategies.variants.${key}" in stage["do"]["params"]
    assert "study.strategies" not in stage["do"]["params"]
    assert stage["do"]["outs"] == ["data/train/strategy-${key}", "data/runs/strategy-${key}"]
    params = config.load(ROOT / "params.yaml")
    assert params.study.strategies.depth in params.study.depth.depths


S = config.StrategiesConfig(20, "relu", {"adam": None})
DESCRIBE = {"plain": "optimizer sgd, learning_rate 0.01, momentum 0.9",
            "adam": "optimizer adam, learning_rate 0.001, momentum 0.0"}
GAPS = {"glorot_uniform": -0.010, "lecun_normal": -0.006, "orthogonal": -0.004}


def cells(plain: dict, adam: dict, **more: dict) -> dict:
    return {"depth-20-relu": cell_of(plain), "strategy-adam": cell_of(adam),
            **{f"strategy-{k}": cell_of(v) for k, v in more.items()}}


def pair(variant_gaps: dict[str, float], seeds: int, noise: float, seed: int = 0) -> dict:
    """The plain cell with GAPS and a variant with ``variant_gaps``, sharing each seed's effect
    (same initial weights and batch order), each run with its own noise."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 0.01, seeds)
    return cells(gapped(GAPS, seeds, noise, rng, seed_effect=shared),
                 gapped(variant_gaps, seeds, noise, rng, seed_effect=shared))


def test_a_variant_that_halves_every_gap_narrows_each_and_makes_the_initializer_matter_less():
    # The old section counted "hurt" initializers (failing, or detectably below He): here all
    # three are detectably below He in both settings, so it read "no change".
    data = pair({k: g / 2 for k, g in GAPS.items()}, seeds=5, noise=0.0005)
    res = strategies.summary(data, S, 0.95, 0.003)
    assert res["reference"] == "he_normal" and res["comparisons"] == 3
    assert res["level"] == pytest.approx(1 - 0.05 / 3)
    for k, g in GAPS.items():
        e = res["variants"]["adam"]["initializers"][k]
        assert e["verdict"] == "the gap narrows" and e["low"] > 0
        assert e["low"] < -g / 2 < e["high"]  # covers the true change, +half the gap
    o = res["variants"]["adam"]["overall"]
    assert o["verdict"] == "the initializer matters less" and o["high"] < 0
    assert o["initializers"] == list(GAPS) and o["success_changed"] == {}
    text = "\n".join(strategies.markdown(data, S, DESCRIBE, 0.95, 0.003))
    glorot = res["variants"]["adam"]["initializers"]["glorot_uniform"]
    assert f"| adam | glorot_uniform | {row(glorot)} |" in text
    assert "| adam | glorot_uniform | -1.05 | -0.49 | +0.56 [+0.41, +0.72] | the gap narrows |" in text
    assert ("- **adam** (optimizer adam, learning_rate 0.001, momentum 0.0; plain: optimizer sgd, "
            "learning_rate 0.01, momentum 0.9): mean |gap| 0.68 -> 0.30 pp over 3 initializer(s) "
            "and 5 seeds, change -0.38 [-0.49, -0.27] pp: **the initializer matters less**. "
            "Success counts unchanged.") in text


def test_a_variant_that_doubles_every_gap_makes_the_initializer_matter_more():
    res = strategies.summary(pair({k: 2 * g for k, g in GAPS.items()}, 5, 0.0005), S, 0.95, 0.003)
    assert {e["verdict"] for e in res["variants"]["adam"]["initializers"].values()} == {
        "the gap widens"}
    assert res["variants"]["adam"]["overall"]["verdict"] == "the initializer matters more"


def test_no_interaction_is_unchanged_with_many_quiet_seeds_and_inconclusive_with_few_noisy_ones():
    many = strategies.summary(pair(GAPS, seeds=20, noise=0.0005), S, 0.95, 0.003)["variants"]["adam"]
    assert {e["verdict"] for e in many["initializers"].values()} == {"unchanged within the margin"}
    assert many["overall"]["verdict"] == "unchanged within the margin"
    # The old section read "no change" here too: the same initializers detectably below He.
    few = strategies.summary(pair(GAPS, seeds=3, noise=0.01), S, 0.95, 0.003)["variants"]["adam"]
    for e in [*few["initializers"].values(), few["overall"]]:
        assert e["verdict"].startswith("inconclusive: about "), e["verdict"]
        assert "seeds (now 3) at the observed mean and sd" in e["verdict"]


def test_an_initializer_that_fails_in_one_setting_only_gets_its_success_counts():
    base = [0.95, 0.96, 0.95]
    plain = {"he_normal": base, "glorot_uniform": [v - 0.01 for v in base],
             "random_normal": [None, None, 0.94], "zeros": [None] * 3}
    adam = dict(plain, random_normal=[0.94, 0.95, 0.94])
    res = strategies.summary(cells(plain, adam), S, 0.95, 0.003)["variants"]["adam"]
    e = res["initializers"]
    assert e["random_normal"]["verdict"].startswith(
        "inconclusive: trained 1/3 (plain) vs 3/3 (adam), not a significant change of the success rate")
    assert e["zeros"]["status"] == "trains under neither setting: 0/3 (plain), 0/3 (adam)"
    assert e["glorot_uniform"]["verdict"] == "unchanged within the margin"
    assert res["overall"]["initializers"] == ["glorot_uniform"]
    assert res["overall"]["success_changed"] == {"random_normal": {"plain": "1/3", "adam": "3/3"}}
    text = "\n".join(strategies.markdown(cells(plain, adam), S, DESCRIBE, 0.95, 0.003))
    assert "| adam | zeros | 0/3 trained | 0/3 trained | - | trains under neither setting" in text
    assert "| adam | random_normal | 1/3 trained | 3/3 trained | - | inconclusive: trained 1/3" in text
    assert "Trained (plain -> variant): random_normal 1/3 -> 3/3." in text
    assert "| random_normal | 1/3 | 94.00 | 3/3 | 94.33 [" in text


def test_every_variant_and_initializer_is_one_family():
    s = config.StrategiesConfig(20, "relu", {"adam": None, "no_momentum": None})
    rng = np.random.default_rng(1)
    data = cells(gapped(GAPS, 4, 0.001, rng), gapped(GAPS, 4, 0.001, rng),
                 no_momentum=gapped(GAPS, 4, 0.001, rng))
    res = strategies.summary(data, s, 0.95, 0.003)
    assert res["comparisons"] == 6 and res["level"] == pytest.approx(1 - 0.05 / 6)
    assert res["overall_level"] == pytest.approx(1 - 0.05 / 2)
    assert list(res["variants"]) == ["adam", "no_momentum"]


def test_the_answer_names_each_group_of_initializers():
    data = pair({"glorot_uniform": -0.005, "lecun_normal": -0.012, "orthogonal": -0.004}, 5, 0.0005)
    text = strategies.answer(strategies.summary(data, S, 0.95, 0.003))
    assert text.startswith("with adam, mean |gap| 0.")
    assert text.endswith("Per initializer vs he_normal: the gap narrows: glorot_uniform; the gap "
                         "widens: lecun_normal; unchanged within the margin: orthogonal.")
