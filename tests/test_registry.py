"""The initializer registry's API: names, argument checks, gains, ``gain: auto``, generated docs."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from initbench import cli, config
from initbench.init import docs as initializer_docs
from initbench.init import registry as initializers
from initbench.init.gains import calculate_gain, gain_for_activation
from initbench.init.registry import InitializerError

from .conftest import ROOT


def test_unknown_name_lists_valid_ones():
    with pytest.raises(InitializerError,
                       match=r"unknown initializer 'xavier'; valid names: .*glorot_uniform"):
        initializers.make("xavier", 0)
    with pytest.raises(InitializerError, match=r"unknown initializer 'he_normall'.*he_normal"):
        initializers.resolve_args("he_normall")


def test_registering_twice_is_refused():
    with pytest.raises(InitializerError, match="already registered"):
        initializers.register(initializers.get_info("he_normal"))


def test_every_entry_documents_itself():
    for name in initializers.names():
        info = initializers.get_info(name)
        assert info.distribution and info.variance and info.activation and info.reference, name
    assert [n for n in initializers.names() if initializers.get_info(n).data_dependent] == ["lsuv"]


def test_defaults_and_coercion():
    assert initializers.resolve_args("lsuv") == {
        "base": "orthogonal", "tol": 0.1, "max_iter": 10, "batch_size": 256}
    assert initializers.resolve_args("orthogonal", {"gain": 2}) == {"gain": 2.0}
    assert initializers.resolve_args("identity", {"gain": "auto"}) == {"gain": "auto"}
    assert initializers.resolve_args("random_uniform", {"minval": -1, "maxval": 1}) == {
        "minval": -1.0, "maxval": 1.0}


BAD = [
    ("gaussian", {"stddev": -1}, r"argument 'stddev' must be > 0, got -1.0"),
    ("random_normal", {"stddev": 0}, r"argument 'stddev' must be > 0, got 0.0"),
    ("truncated_normal", {"stddev": -0.1}, r"argument 'stddev' must be > 0"),
    ("gaussian", {"stddev": float("nan")}, r"argument 'stddev' must be a finite number, got nan"),
    ("gaussian", {"stddev": "big"}, r"argument 'stddev' must be a float, got 'big'"),
    ("gaussian", {"sigma": 1.0}, r"unknown argument\(s\) sigma; allowed: mean, stddev"),
    ("random_uniform", {"minval": 0.1, "maxval": 0.1},
     r"argument 'minval' must be < argument 'maxval', got minval=0.1, maxval=0.1"),
    ("random_uniform", {"minval": 1}, r"argument 'minval' must be < argument 'maxval'"),
    ("sparse", {"sparsity": 1.0}, r"argument 'sparsity' must be in \[0, 1\), got 1.0"),
    ("sparse", {"sparsity": -0.1}, r"argument 'sparsity' must be in \[0, 1\), got -0.1"),
    ("sparse", {"stddev": 0}, r"argument 'stddev' must be > 0"),
    ("variance_scaling", {"mode": "fan_sum"},
     r"argument 'mode' must be one of fan_in, fan_out, fan_avg, got 'fan_sum'"),
    ("variance_scaling", {"distribution": "normal"},
     r"argument 'distribution' must be one of truncated_normal, untruncated_normal, uniform"),
    ("variance_scaling", {"scale": 0}, r"argument 'scale' must be > 0, got 0.0"),
    ("he_normal", {"negative_slope": -0.1}, r"argument 'negative_slope' must be >= 0, got -0.1"),
    ("lsuv", {"tol": 0}, r"argument 'tol' must be > 0, got 0.0"),
    ("lsuv", {"tol": -0.5}, r"argument 'tol' must be > 0"),
    ("lsuv", {"max_iter": 0}, r"argument 'max_iter' must be an int >= 1, got 0"),
    ("lsuv", {"max_iter": 2.5}, r"argument 'max_iter' must be an int, got 2.5"),
    ("lsuv", {"batch_size": 0}, r"argument 'batch_size' must be an int >= 1, got 0"),
    ("lsuv", {"base": "xavier"},
     r"argument 'base' must be a registered random initializer that needs no data, one of .*orthogonal"),
    ("lsuv", {"base": "lsuv"}, r"argument 'base' must be a registered .*got 'lsuv'"),
    ("orthogonal", {"gain": -1}, r"argument 'gain' must be a positive number or 'auto', got -1"),
    ("orthogonal", {"gain": 0}, r"argument 'gain' must be a positive number or 'auto', got 0"),
    ("identity", {"gain": "big"}, r"argument 'gain' must be a positive number or 'auto', got 'big'"),
    ("identity", {"gain": True}, r"argument 'gain' must be a positive number or 'auto', got True"),
]


@pytest.mark.parametrize(("name", "args", "message"), BAD, ids=[f"{b[0]}-{next(iter(b[1]))}" for b in BAD])
def test_bad_arguments_name_the_argument_and_what_is_allowed(name, args, message):
    with pytest.raises(InitializerError, match=rf"initializer '{name}'.*" + message):
        initializers.make(name, 0, args, activation="relu")


def test_bad_arguments_fail_params_validation(raw_params):
    raw_params["initializers"] = {"x": {"name": "variance_scaling", "mode": "fan_sum"}}
    with pytest.raises(config.ConfigError, match=r"initializers.x: .*argument 'mode' must be one of"):
        config.from_dict(raw_params)


def test_gain_table():
    assert calculate_gain("linear") == calculate_gain("identity") == calculate_gain("sigmoid") == 1
    assert calculate_gain("tanh") == pytest.approx(5 / 3)
    assert calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert calculate_gain("selu") == pytest.approx(0.75)
    assert calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert gain_for_activation("leaky_relu") == pytest.approx(math.sqrt(2 / 1.04))  # Keras' 0.2
    with pytest.raises(ValueError, match=r"no gain is known for nonlinearity 'gelu'; known: linear"):
        calculate_gain("gelu")
    with pytest.raises(ValueError, match="takes no parameter"):
        calculate_gain("relu", 0.1)


@pytest.mark.parametrize(("activation", "gain"), [
    ("relu", math.sqrt(2)), ("tanh", 5 / 3), ("sigmoid", 1.0), ("selu", 0.75), ("linear", 1.0),
    ("leaky_relu", math.sqrt(2 / 1.04))])
def test_gain_auto_resolves_per_activation(activation, gain):
    assert initializers.effective_args("orthogonal", {"gain": "auto"}, activation) == {
        "gain": pytest.approx(gain)}
    w = keras.ops.convert_to_numpy(
        initializers.make("orthogonal", 1, {"gain": "auto"}, activation=activation)((64, 32), "float64"))
    np.testing.assert_allclose(w.T @ w, gain**2 * np.eye(32), atol=1e-8)
    # identity: W = I carries each unit to itself, nothing to compensate: gain 1 for every activation
    w = keras.ops.convert_to_numpy(
        initializers.make("identity", 1, {"gain": "auto"}, activation=activation)((8, 8)))
    np.testing.assert_array_equal(w, np.eye(8))


def test_identity_with_gain_auto_preserves_a_deep_relu_signal_exactly():
    """Why gain 1: after a ReLU the signal is non-negative, and relu(I h) = h, layer after layer;
    sqrt(2) (the orthogonal/He value) would grow it by 2^(L/2)."""
    h = np.abs(np.random.default_rng(0).normal(size=(16, 8))).astype("float32")
    out = h
    for _ in range(20):
        w = keras.ops.convert_to_numpy(
            initializers.make("identity", 0, {"gain": "auto"}, activation="relu")((8, 8)))
        out = np.maximum(out @ w, 0)
    np.testing.assert_array_equal(out, h)


def test_gain_auto_needs_a_known_activation():
    with pytest.raises(InitializerError, match=r"'gain' is 'auto', which needs the layer's activation"):
        initializers.make("orthogonal", 0, {"gain": "auto"})
    with pytest.raises(InitializerError, match=r"'gain' 'auto': no gain is known for .*'swish'"):
        initializers.make("identity", 0, {"gain": "auto"}, activation="swish")
    # a numeric gain ignores the activation
    assert initializers.make("orthogonal", 0, {"gain": 3}, activation="swish").gain == 3.0


def test_lsuv_entry_builds_its_base():
    init = initializers.make("lsuv", 4, {"base": "he_normal"})
    assert type(init) is keras.initializers.HeNormal
    assert type(initializers.make("lsuv", 4)) is keras.initializers.Orthogonal


def test_docs_are_generated_from_the_registry(capsys):
    text = initializer_docs.markdown_table()
    assert text.startswith("<!-- Generated by `initbench initializers --markdown")
    for name in initializers.names():
        assert f"| `{name}`" in text
    assert "not the constant 1/sqrt(fan_in + fan_out)" in text and "(1, 3), not (2, 2)" in text
    cli.main(["initializers", "--markdown"])
    printed = capsys.readouterr().out
    assert printed == text + "\n"
    assert (ROOT / "docs" / "initializers.md").read_text() == printed, (
        "docs/initializers.md is stale: run `initbench initializers --markdown > docs/initializers.md`")


def test_cli_listing(capsys):
    cli.main(["initializers"])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(initializers.names())
    assert any(line.startswith("lsuv") and "[needs data]" in line for line in out)
