"""Optimization strategies: the variants' params, their cells and stages, and the report's
reading of them (built so that a variant must be found to help, or not)."""

from __future__ import annotations

import pytest
import yaml

from initbench import config
from initbench.config import from_dict
from initbench.paths import cell_from_stage, stage_of_cell
from initbench.report import strategies
from initbench.report.tables import cell_table

from .conftest import ROOT, rejects_study_section


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


def member(label: str, seed: int, acc: float) -> dict:
    failed = acc < 0.2
    return {"label": label, "seed_index": seed, "test_accuracy": acc, "final_train_loss": 0.1,
            "diverged": failed, "history": [{"epoch": 1, "loss": 0.1, "accuracy": acc}],
            "confusion": [[10 if i == j else 0 for j in range(10)] for i in range(10)]}


def cell(groups: dict[str, list[float]]) -> dict:
    return {"activation": "relu",
            "members": [member(k, i, a) for k, v in groups.items() for i, a in enumerate(v)]}


REF = [0.90, 0.91, 0.92]
PLAIN = {"he_normal": REF, "glorot_uniform": [v - 0.05 for v in REF], "lecun_normal": [0.9, 0.1, 0.1]}


def _section(variant: dict[str, list[float]]) -> str:
    s = config.StrategiesConfig(10, "relu", {"wd": None})
    cells = {"depth-10-relu": cell(PLAIN), "strategy-wd": cell(variant)}
    summary = {k: cell_table(v, 0.95, 0.003)[1] for k, v in cells.items()}
    return "\n".join(strategies.markdown(cells, summary, s, {"plain": "sgd", "wd": "weight_decay 0.1"},
                                         0.95))


def test_a_variant_that_evens_the_initializers_out_is_said_to_help():
    text = _section({"he_normal": REF, "glorot_uniform": list(REF), "lecun_normal": list(REF)})
    assert ("- **plain** (sgd): failed in some seed: lecun_normal; detectably below he_normal: "
            "glorot_uniform;") in text
    assert ("- wd vs plain: the initializer matters **less** than in the plain setting (hurt 2 -> 0, "
            "of which failing in some seed 1 -> 0).") in text
    assert "| lecun_normal | 1/3 | 90.00 | 3/3 | 91.00 [88.52, 93.48] |" in text


def test_a_variant_that_changes_nothing_is_not_said_to_help():
    text = _section(PLAIN)
    assert "- wd vs plain: no change in how much the initializer matters" in text
    worse = {"he_normal": REF, "glorot_uniform": [0.1] * 3, "lecun_normal": [0.9, 0.1, 0.1]}
    assert "the initializer matters **more** than in the plain setting (hurt 2 -> 2, of which " \
           "failing in some seed 1 -> 2)" in _section(worse)
    # Fewer hurt, but one more failing: not called an improvement.
    mixed = {"he_normal": REF, "glorot_uniform": list(REF), "lecun_normal": [0.9, 0.1, 0.1]}
    both = dict(PLAIN, lecun_normal=[0.9, 0.91, 0.92], glorot_uniform=[0.9, 0.1, 0.1])
    assert "matters **less**" in _section(mixed)
    assert strategies.compare({"failed": ["a"], "worse": ["b", "c"]},
                              {"failed": ["a", "b"], "worse": []}) == (
        "mixed: fewer initializers hurt, but more of them fail (hurt 3 -> 2, of which failing in "
        "some seed 1 -> 2)")
    assert "matters" in _section(both)
