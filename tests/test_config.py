"""params.yaml validation: the defaults load; every bad value fails naming field, value, allowed."""

from __future__ import annotations

import pytest
import yaml

from initbench import config
from initbench.config import ConfigError, from_dict, load

from .conftest import ROOT


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
        ("train.epochs", 0, r"train.epochs: got 0; allowed: an integer > 0"),
        ("train.epochs", -3, r"train.epochs: got -3"),
        ("train.epochs", 2.5, r"train.epochs: got 2.5; allowed: an integer"),
        ("train.batch_size", 0, r"train.batch_size: got 0; allowed: an integer > 0"),
        ("train.batch_size", "32", r"train.batch_size: got '32'; allowed: an integer"),
        ("train.learning_rate", 0, r"train.learning_rate: got 0.0; allowed: a number > 0"),
        ("train.optimizer", "adagrad", r"train.optimizer: got 'adagrad'; allowed: adam, sgd"),
        ("data.val_fraction", 0, r"data.val_fraction: got 0.0; allowed: a number strictly between"),
        ("data.val_fraction", 1.5, r"data.val_fraction: got 1.5"),
        ("data.dataset", "cifar10", r"data.dataset: got 'cifar10'; allowed: fashion-mnist, mnist"),
        ("data.standardize", "yes", r"data.standardize: got 'yes'; allowed: true or false"),
        ("data.train_limit", 5, r"data.train_limit: got 5; allowed: null"),
        ("model.activation", "relux", r"model.activation: got 'relux'; allowed: relu, tanh"),
        ("model.hidden", [128, 0], r"model.hidden: got \[128, 0\]; allowed: a non-empty list"),
        ("model.hidden", 128, r"model.hidden: got 128; allowed: a list"),
        ("data.colour", True, r"data.colour: got True; allowed: known keys of data: dataset"),
        ("optimiser", "adam", r"optimiser: got 'adam'; allowed: known top-level keys"),
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
        ("he_norml", r"initializers.x: unknown initializer 'he_norml'; valid names: .*he_normal"),
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
    with pytest.raises(ConfigError, match="labels of letters"):
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


def test_flat_params(raw_params):
    flat = from_dict(raw_params).flat()
    assert flat["train.batch_size"] == 32 and flat["model.hidden"] == [128]
    assert flat["data.dataset"] == "mnist" and "initializers" not in flat
