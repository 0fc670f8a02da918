"""params.yaml validation: the defaults load; every bad value fails naming field, value, allowed."""

from __future__ import annotations

import pytest
import yaml

from initbench import config
from initbench.config import ConfigError, ConvModelConfig, ModelConfig, TrainConfig, from_dict, load

from .conftest import ROOT, rejects_study_section


def test_project_params_are_valid():
    params = load(ROOT / "params.yaml")
    assert params.data.dataset == "mnist" and params.model.hidden == (128,)
    assert params.train.epochs == 10 and params.train.batch_size == 32
    assert params.train.optimizer == "adam"
    assert {"random_normal", "gaussian", "glorot_uniform", "glorot_normal", "he_normal",
            "he_uniform"} <= set(params.initializers)
    assert params.initializers["random_normal"].args == {"mean": 0.0, "stddev": 0.05}
    assert params.initializers["gaussian"].args == {"mean": 0.0, "stddev": 0.1}
    with pytest.raises(Exception):  # noqa: B017 - frozen dataclass
        params.train.epochs = 3


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("train.epochs", 0, r"train.epochs: got 0; allowed: an integer in \[1, 10000\]"),
        ("train.epochs", -3, r"train.epochs: got -3"),
        ("train.epochs", 2.5, r"train.epochs: got 2.5; allowed: an integer"),
        ("train.batch_size", 0, r"train.batch_size: got 0; allowed: an integer in \[1, 65536\]"),
        ("train.batch_size", "32", r"train.batch_size: got '32'; allowed: an integer"),
        ("train.learning_rate", 0, r"train.learning_rate: got 0.0; allowed: a finite number in \(0, 10\]"),
        ("train.optimizer", "adagrad", r"train.optimizer: got 'adagrad'; allowed: adam, sgd"),
        ("train.weight_decay", -0.1, r"train.weight_decay: got -0.1; allowed: a number in \[0, 1\)"),
        ("train.lr_schedule", "cosin",
         r"train.lr_schedule: got 'cosin' \(did you mean 'cosine'\?\); allowed: constant, cosine, step"),
        ("train.warmup_epochs", 10, r"train.warmup_epochs: got 10; allowed: an integer in "
                                    r"\[0, train.epochs\) = \[0, 10\)"),
        ("train.warmup_epochs", 1, r"train.warmup_epochs: got 1; allowed: 0 unless "
                                   r"train.lr_schedule is cosine \(got 'constant'\)"),
        ("study.depth.lr_schedule", "linear", r"study.depth.lr_schedule: got 'linear'"),
        ("study.phase.weight_decay", 1, r"study.phase.weight_decay: got 1.0; allowed: a number in"),
        ("data.val_fraction", 0, r"data.val_fraction: got 0.0; allowed: a number strictly between"),
        ("data.val_fraction", 1.5, r"data.val_fraction: got 1.5"),
        ("data.dataset", "cifar10", r"data.dataset: got 'cifar10'; allowed: fashion-mnist, mnist"),
        ("data.standardize", "yes", r"data.standardize: got 'yes'; allowed: true or false"),
        ("data.train_limit", 5, r"data.train_limit: got 5; allowed: null"),
        ("model.activation", "relux",
         r"model.activation: got 'relux' \(did you mean 'relu'\?\); allowed: relu, tanh"),
        ("model.hidden", [128, 0], r"model.hidden: got \[128, 0\]; allowed: a list of 1 to 100 layer widths"),
        ("model.hidden", 128, r"model.hidden: got 128; allowed: a list"),
        ("study.equivalence_margin", 0, r"equivalence_margin: got 0.0; allowed: a number in \(0, 0.5\]"),
        ("study.equivalence_margin", 3, r"equivalence_margin: got 3.0; allowed: a number in \(0, 0.5\]"),
        ("study.deep_equivalence_margin", 0, r"deep_equivalence_margin: got 0.0; allowed: a number in "
         r"\(0, 0.5\]"),
        ("study.trained_within", 0, r"trained_within: got 0.0; allowed: a number in \(0, 1\]"),
        ("study.trained_within", 1.5, r"trained_within: got 1.5; allowed: a number in \(0, 1\]"),
        ("data.colour", True, r"data.colour: unknown key; known keys: dataset, val_fraction"),
        ("optimiser", "adam", r"optimiser: unknown key; known keys: experiment, data"),
    ],
)
def test_invalid_values_name_field_value_and_allowed(raw_params, path, value, message):
    config.apply_overrides(raw_params, [f"{path}={yaml.safe_dump(value).strip()}"])
    if isinstance(value, str) and path == "train.batch_size":
        raw_params["train"]["batch_size"] = value  # yaml would read '32' as an int
    with pytest.raises(ConfigError, match=message):
        from_dict(raw_params)


def test_missing_key(raw_params):
    del raw_params["train"]["seed"]
    with pytest.raises(ConfigError, match=r"train.seed: missing"):
        from_dict(raw_params)


def test_initializer_entries(raw_params):
    raw_params["initializers"] = {
        "he_normal": None,
        "wide": {"name": "gaussian", "stddev": 1.0},
        "keras_default": "random_normal",
    }
    params = from_dict(raw_params)
    assert params.initializers["he_normal"].name == "he_normal"
    assert params.initializers["wide"].name == "gaussian"
    assert params.initializers["wide"].args == {"mean": 0.0, "stddev": 1.0}
    assert params.initializers["keras_default"].args["stddev"] == 0.05


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("he_norml", r"initializers.x: unknown initializer 'he_norml' \(did you mean "
                     r"'he_normal'\?\); valid names: .*he_normal"),
        ({"name": "gaussian", "stddev": -1}, r"argument 'stddev' must be > 0, got -1.0"),
        ({"name": "gaussian", "sigma": 1}, r"unknown argument\(s\) sigma; allowed: mean, stddev"),
        ({"name": "glorot_normal", "scale": 2}, r"unknown argument\(s\) scale; allowed: none"),
        ({"name": "gaussian", "stddev": "big"}, r"argument 'stddev' must be a float, got 'big'"),
        ([1, 2], r"initializers.x: got \[1, 2\]; allowed: null, a registry name"),
    ],
)
def test_bad_initializer_entries(raw_params, entry, message):
    raw_params["initializers"] = {"x": entry}
    with pytest.raises(ConfigError, match=message):
        from_dict(raw_params)


def test_empty_or_odd_initializer_lists(raw_params):
    raw_params["initializers"] = {}
    with pytest.raises(ConfigError, match=r"initializers: got \{\}"):
        from_dict(raw_params)
    raw_params["initializers"] = {"he normal!": None}
    with pytest.raises(ConfigError, match="a label of 1-64 letters, digits"):
        from_dict(raw_params)


def test_overrides_parse_yaml_and_skip_empty(raw_params, tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw_params))
    params = load(path, ["train.epochs=3", "train.optimizer=sgd", "train.seed=", "model.hidden=[64, 32]"])
    assert params.train.epochs == 3 and params.train.optimizer == "sgd"
    assert params.train.seed == raw_params["train"]["seed"]
    assert params.model.hidden == (64, 32)
    with pytest.raises(ConfigError, match=r"expected key\.path=value"):
        load(path, ["train.epochs"])


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(tmp_path / "bad.yaml")


def test_save_models_is_no_longer_a_key(raw_params):
    assert "save_models" not in raw_params["study"]
    raw_params["study"]["save_models"] = True
    with pytest.raises(ConfigError, match=r"study.save_models: unknown key; known keys: seeds"):
        from_dict(raw_params)


@pytest.mark.parametrize("path", ["study.seeds", "study.depth.seeds"])
def test_one_seed_is_allowed_zero_is_not(raw_params, path):
    config.apply_overrides(raw_params, [f"{path}=1"])
    params = from_dict(raw_params)
    cells = params.cells()
    if path == "study.seeds":
        assert params.study.seeds == 1 and cells["baseline"].seeds == 1
    else:
        assert params.study.depth.seeds == 1
        assert all(c.seeds == 1 for name, c in cells.items() if name.startswith("depth-"))
    config.apply_overrides(raw_params, [f"{path}=0"])
    with pytest.raises(ConfigError, match=rf"params: {path}: got 0; allowed: an integer >= 1"):
        from_dict(raw_params)


def test_empty_depths_mean_no_depth_study(raw_params):
    raw_params["study"]["depth"]["depths"] = []
    raw_params["study"]["phase"]["depths"] = []
    raw_params["study"]["lr_sweep"]["learning_rates"] = []
    raw_params["study"]["datasets"]["names"] = []
    raw_params["study"]["strategies"]["variants"] = {}
    raw_params["study"]["conv"]["depths"] = []
    params = from_dict(raw_params)
    assert params.study.depth.depths == () == params.study.phase.depths == params.study.conv.depths
    assert list(params.cells()) == ["baseline", "lr_sweep"]  # the sweep's stage: no model
    raw_params["study"]["depth"]["depths"] = [2, 2]
    with pytest.raises(ConfigError, match=r"study.depth.depths: got \[2, 2\]; allowed: a list of distinct"):
        from_dict(raw_params)
    raw_params["study"]["depth"]["depths"] = [0]
    with pytest.raises(ConfigError, match=r"study.depth.depths: got \[0\]"):
        from_dict(raw_params)


def test_cells(full_raw_params):
    full_raw_params["study"]["depth"]["depths"] = [3, 1]
    full_raw_params["study"]["depth"]["activations"] = ["tanh", "relu"]
    full_raw_params["study"]["phase"].update(depths=[4], activations=["relu"])
    full_raw_params["study"]["strategies"].update(depth=3, variants={"wd": {"weight_decay": 0.1}})
    full_raw_params["study"]["conv"].update(depths=[4], activations=["relu"])
    params = from_dict(full_raw_params)
    cells = params.cells()
    assert list(cells) == ["baseline", "lr_sweep", "dataset-fashion-mnist", "strategy-wd",
                           "conv-4-relu", "depth-3-tanh", "depth-3-relu", "depth-1-tanh", "depth-1-relu",
                           "phase-4-relu"]
    base = cells["baseline"]
    assert (base.name, base.model, base.train) == ("baseline", params.model, params.train)
    assert base.initializers == params.initializers and base.seeds == params.study.seeds
    assert base.train_limit is None and base.save_models and base.dataset == "mnist"
    dc = params.study.depth
    deep = params.cell("depth-3-tanh")
    assert deep == cells["depth-3-tanh"] and deep.name == "depth-3-tanh"
    assert deep.model == ModelConfig((dc.width,) * 3, "tanh")
    assert deep.train == TrainConfig(dc.optimizer, dc.learning_rate, dc.momentum, dc.batch_size,
                                     dc.epochs, params.train.seed, weight_decay=dc.weight_decay,
                                     lr_schedule=dc.lr_schedule, warmup_epochs=dc.warmup_epochs)
    assert deep.initializers == dc.initializers and deep.seeds == dc.seeds
    assert deep.train_limit == dc.train_limit and not deep.save_models
    conv, cc = cells["conv-4-relu"], params.study.conv
    assert conv.model == ConvModelConfig(cc.width, 4, "relu") and conv.save_models
    assert conv.initializers == cc.initializers and conv.train_limit == cc.train_limit
    assert params.cell("baseline") == base


def test_project_cells_baseline_first_then_every_depth_and_activation():
    params = load(ROOT / "params.yaml")
    dc, pc, cc = params.study.depth, params.study.phase, params.study.conv
    assert list(params.cells()) == ["baseline", "lr_sweep"] + [
        f"dataset-{n}" for n in params.study.datasets.names] + [
        f"strategy-{n}" for n in params.study.strategies.variants] + [
        f"conv-{d}-{a}" for d in cc.depths for a in cc.activations] + [
        f"depth-{d}-{a}" for d in dc.depths for a in dc.activations] + [
        f"phase-{d}-{a}" for d in pc.depths for a in pc.activations]


def test_unknown_cell(full_raw_params):
    with pytest.raises(ConfigError,
                       match=r"params: cell: got 'nope'; allowed: baseline, lr_sweep, "
                             r"dataset-fashion-mnist, strategy-adam, strategy-no_momentum, "
                             r"strategy-weight_decay, "
                             r"strategy-cosine, conv-2-relu, conv-2-tanh, conv-8-relu, "
                             r"conv-8-tanh, depth-2-relu"):
        from_dict(full_raw_params).cell("nope")


def test_further_datasets_train_the_pipeline_cell(raw_params):
    """study.datasets: the pipeline's cell on each other dataset, its first seeds; a listed
    dataset that is data.dataset is the pipeline's own cell (its stage trains nothing)."""
    raw_params["study"]["seeds"] = 4
    raw_params["study"]["datasets"] = {"names": ["fashion-mnist", "mnist"], "seeds": 9}
    params = from_dict(raw_params)
    assert params.datasets == ("mnist", "fashion-mnist")
    cells = params.cells()
    other, same = cells["dataset-fashion-mnist"], cells["dataset-mnist"]
    base = cells["baseline"]
    assert (other.dataset, other.seeds, other.save_models) == ("fashion-mnist", 4, True)
    assert (other.model, other.train, other.initializers) == (base.model, base.train, base.initializers)
    assert not same.initializers and same.dataset == "mnist"
    assert all(c.dataset == "mnist" for n, c in cells.items() if not n.startswith("dataset-"))
    raw_params["data"]["dataset"] = "fashion-mnist"  # -S data.dataset=fashion-mnist is fine
    swapped = from_dict(raw_params)
    assert swapped.datasets == ("fashion-mnist", "mnist")
    assert not swapped.cells()["dataset-fashion-mnist"].initializers
    assert swapped.cells()["dataset-mnist"].dataset == "mnist"


@pytest.mark.parametrize(("datasets", "says"), [
    ({"names": ["cifar10"], "seeds": 1},
     "study.datasets.names: got 'cifar10'; allowed: fashion-mnist, mnist"),
    ({"names": ["fashion_mnist"], "seeds": 1}, "(did you mean 'fashion-mnist'?)"),
    ({"names": ["mnist", "mnist"], "seeds": 1},
     "study.datasets.names: got ['mnist', 'mnist']; allowed: distinct dataset names"),
    ({"names": [], "seeds": 0}, "study.datasets.seeds: got 0; allowed: an integer >= 1"),
    ({"names": "mnist", "seeds": 1}, "study.datasets.names: got 'mnist'; allowed: a list"),
    ({"names": []}, "study.datasets.seeds: missing (required key)"),
])
def test_bad_datasets_name_the_field(raw_params, datasets, says):
    rejects_study_section(raw_params, "datasets", datasets, says)


def test_optimization_strategies_reach_every_cell(full_raw_params):
    """train's weight decay and schedule are the pipeline cells'; the grids have their own."""
    config.apply_overrides(full_raw_params, ["train.weight_decay=0.01", "train.lr_schedule=cosine",
                                        "train.warmup_epochs=2", "study.depth.lr_schedule=step"])
    cells = from_dict(full_raw_params).cells()
    for name in ("baseline", "lr_sweep", "dataset-fashion-mnist"):
        t = cells[name].train
        assert (t.weight_decay, t.lr_schedule, t.warmup_epochs) == (0.01, "cosine", 2)
    deep = cells["depth-2-relu"].train
    assert (deep.weight_decay, deep.lr_schedule, deep.warmup_epochs) == (0.0, "step", 0)
    assert cells["phase-4-relu"].train.lr_schedule == "constant"


def test_each_cell_has_the_margin_of_its_kind():
    study = load(ROOT / "params.yaml").study
    assert study.margin("baseline") == study.margin("dataset-fashion-mnist") == 0.003
    assert study.margin("lr_sweep") == study.equivalence_margin
    for cell in ("depth-20-relu", "strategy-adam", "conv-2-tanh"):
        assert study.margin(cell) == study.deep_equivalence_margin == 0.01
