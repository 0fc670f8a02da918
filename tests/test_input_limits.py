"""Inputs that pass every per-value bound and would then hang or crash: refused up front, in one line.

An alias bomb in params.yaml (or an override, or a profile) is refused before it is expanded; a
cell that cannot fit in the machine's memory is refused naming the cell and its settings; a
non-string where a name belongs, or a key that is not a name, is a ConfigError; YAML is read the
way DVC reads params.yaml.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvc.utils.serialize import parse_yaml as dvc_parse_yaml

from initbench import config
from initbench.config import memory

from .conftest import ROOT, project_params

PROFILES = sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml"))
# Nine levels of ten aliases each: 10^9 strings from a few hundred bytes.
BOMB = "[" + ", ".join(
    [f"&l0 [{', '.join(['lol'] * 10)}]"]
    + [f"&l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 9)]) + "]"
# Runs argv, returns its exit status, stderr and peak RSS (KiB); the address-space cap only keeps
# a runaway child (the code before the fix) from taking the machine down with it.
MEASURE = """
import json, resource, subprocess, sys
cap = 4 << 30
try:
    p = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=60,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)))
    rc, err = p.returncode, p.stderr
except subprocess.TimeoutExpired:
    rc, err = "timeout", ""
print(json.dumps({"rc": rc, "stderr": err,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the project's params.yaml, profiles/ and dvc.yaml: a root the CLI finds."""
    project_params(tmp_path)
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    return tmp_path


def initbench(project: Path, *args: str) -> dict:
    """``initbench <args>`` run in ``project``, measured (see MEASURE)."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "initbench.cli",
                           *args], cwd=project, capture_output=True, text=True, timeout=120,
                          check=True)
    return json.loads(proc.stdout)


def one_line(result: dict, command: str = "validate") -> str:
    assert result["rc"] == 2, result
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"initbench {command}: error: params"), lines
    return lines[0]


def test_an_alias_bomb_is_refused_in_one_line_before_it_grows(project):
    params = project / "params.yaml"
    text = params.read_text().replace("experiment: initbench", f"experiment: {BOMB}", 1)
    assert text != params.read_text()
    params.write_text(text)
    result = initbench(project, "validate")
    assert result["rc"] == 2, result
    (line,) = result["stderr"].strip().splitlines()
    assert line.startswith(f"initbench validate: error: params file {params}: line 3: YAML anchor "
                           "&l0 refused: initbench reads no anchors or aliases (DVC would accept")
    assert result["maxrss_kib"] < 300 * 1024  # validate alone is ~25 MB; the expansion is GBs


@pytest.mark.parametrize("text, says", [
    ("a: &x 1\nb: *x\n", "line 1: YAML anchor &x refused"),
    ("a: 1\nb: [2, *x]\n", "line 2: YAML alias *x refused"),
    ("base: &b {epochs: 1}\ntrain: {<<: *b}\n", "line 1: YAML anchor &b refused"),
    ("a: " + "[" * 40 + "]" * 40, "line 1: lists and mappings nested more than 32 deep"),
    ("a: " + "[" * 100_000 + "]" * 100_000, "line 1: lists and mappings nested"),  # a RecursionError before
])
def test_anchors_aliases_and_deep_nesting_are_refused_in_any_yaml(text, says):
    for what in ("params file p.yaml", "profile 'x' (profiles/x.yaml)"):
        with pytest.raises(config.ConfigError) as err:
            config.parse_yaml(text, what)
        assert str(err.value).startswith(f"{what}: {says}") and "\n" not in str(err.value)


def test_an_alias_in_an_override_is_refused():
    with pytest.raises(config.ConfigError, match=r"^override 'model.hidden=&w \[64\]': line 1: "
                                                 r"YAML anchor &w refused"):
        config.load(ROOT / "params.yaml", ["model.hidden=&w [64]"])


# --- memory --------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, says", [
    (["study.seeds=1000000000"], "cell baseline: model.hidden [128] x 11 initializers x 1000000000 "
                                 "seeds needs at least ~41,963 GiB: "),
    (["model.hidden=[" + ", ".join(["65536"] * 100) + "]"],
     "cell baseline: model.hidden [65536, 65536, ... 100 widths] x 11 initializers x 8 seeds "
     "needs at least ~"),
    (["study.depth.width=65536", "study.depth.depths=[100]", "study.strategies.variants={}"],
     "cell depth-100-relu: 100 hidden layers of 65536 x 9 initializers x 6 seeds needs at least ~"),
    (["study.conv.width=65536", "study.conv.depths=[100]"],
     "cell conv-100-relu: 100 conv layers of 65536 channels x 5 initializers x 3 seeds needs"),
])
def test_a_cell_that_cannot_fit_in_memory_is_refused_by_every_stage(project, overrides, says):
    """Sizes no machine holds (terabytes), each value within its own bound."""
    for command in ("validate", "train"):
        line = one_line(initbench(project, command, *(a for o in overrides for a in ("--set", o))),
                        command)
        assert says in line and line.endswith(f"this machine has {memory.gib(memory.machine_bytes())}")
        assert "for the weights, gradients and" in line and "for the activations of" in line
    assert not (project / "data").exists()  # refused before any work


def test_the_issues_oversized_model_is_refused_where_it_cannot_fit(project):
    """``model.hidden: [65536, 65536]``: 4.3e9 weights a model, ~82 GiB with Adam's state."""
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("hidden: [128]", "hidden: [65536, 65536]", 1))
    weights = memory.n_params(config.ModelConfig((65536, 65536), "relu")) * (3 + 2) * 4
    if weights < memory.machine_bytes():
        pytest.skip("this machine has the memory for it")
    line = one_line(initbench(project, "validate"))
    assert ("cell baseline: model.hidden [65536, 65536] x 11 initializers x 8 seeds needs at least "
            "~81.6 GiB: 81 GiB for the weights, gradients and adam state of 1 model(s) at a time, "
            "0.25 GiB for the activations of study.diagnostics_batch 512") in line


@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_the_project_and_every_profile_fit_here(profile, tmp_path):
    params = project_params(tmp_path, profile)
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    proc = subprocess.run([sys.executable, "-m", "initbench.cli", "validate"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith(f"{params}: valid"), proc.stderr
    loaded = config.load(params)
    worst = max(sum(memory.estimate(c, loaded).values()) for c in loaded.cells().values()
                if c.initializers)
    assert worst < 4 * memory.GIB  # a few GiB at most: the estimate refuses none of them


def test_the_estimate_counts_what_keras_and_the_trainer_count():
    from initbench.train import cell as train_cell
    from initbench.train.model import build_model
    from initbench.train.stacked_conv import build_cnn

    from .conftest import spec

    assert (memory.STACK_PARAM_BUDGET, memory.MAX_STACK) == (train_cell.STACK_PARAM_BUDGET,
                                                              train_cell.MAX_STACK)
    for n in (1, 1000, 101_770, 600_001, 6_000_000, 10**10):
        assert memory.stack_size(n) == train_cell.stack_size(n)
    for hidden in ((128,), (256,) * 3, (7, 300)):
        model = config.ModelConfig(hidden, "relu")
        assert memory.n_params(model) == build_model(model, spec("he_normal"), 0).count_params()
    for depth in (2, 3, 8):
        model = config.ConvModelConfig(4, depth, "relu")
        assert memory.n_params(model) == build_cnn(4, depth, "relu", spec("he_normal"), 0).count_params()


def test_a_cnn_of_one_conv_layer_is_refused(raw_params):
    """Two pooled stages need a conv layer each (one layer built a model with two 'pool_1's)."""
    raw_params["study"]["conv"]["depths"] = [1, 4]
    with pytest.raises(config.ConfigError, match=r"^params: study.conv.depths: got \[1, 4\]; "
                                                 r"allowed: a list of distinct integers in \[2, 100\]"):
        config.from_dict(raw_params)


# --- a name that is not a string, a key that is not a name ----------------------------------------
def test_an_initializer_name_that_is_a_list_is_one_line(raw_params):
    raw_params["initializers"]["x"] = {"name": ["he_normal"]}
    with pytest.raises(config.ConfigError, match=r"^params: initializers\.x\.name: got "
                                                 r"\['he_normal'\]; allowed: a string$"):
        config.from_dict(raw_params)


def _paths(node, path=()):
    yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from _paths(value, (*path, key))


@pytest.mark.parametrize("profile", [None, "full"])
def test_any_value_of_the_wrong_kind_anywhere_is_one_config_error(profile, tmp_path):
    """Every key of params.yaml (and of the full profile) given a list, a mapping, a mapping with
    a key that is not a name, or null: a ConfigError of one line, never another exception."""
    raw0 = config.parse_yaml(project_params(tmp_path, profile).read_text(), "params")
    for path in list(_paths(raw0))[1:]:
        for value in (["x"], {"a": 1}, {1: 2, "b": 3}, None):
            raw = copy.deepcopy(raw0)
            node = raw
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            try:
                config.from_dict(raw)
            except config.ConfigError as err:
                assert "\n" not in str(err), (path, value)


def test_a_key_that_is_not_a_name_is_refused(raw_params):
    raw_params["data"].update({1: "x", "b": "y"})  # sorting these keys was a TypeError
    with pytest.raises(config.ConfigError, match=r"^params: data: got 1; allowed: keys that are "
                                                 r"names \(quote a key"):
        config.from_dict(raw_params)


# --- one YAML dialect: DVC's ---------------------------------------------------------------------
SCALARS = ("learning_rate: 1e-3\nb: 1.0e-3\nc: 1E3\nd: .5\ne: 0x10\nf: 0o17\ng: 1_000\nh: yes\n"
           "i: ~\nj: .inf\nk: 007\nl: +1\nm: on\nn: 2001-12-14\no: 1:30\n")


def test_yaml_is_read_exactly_as_dvc_reads_params():
    assert config.parse_yaml(SCALARS, "p") == dvc_parse_yaml(SCALARS, "p")
    assert config.parse_yaml("learning_rate: 1e-3", "p") == {"learning_rate": 0.001}
    assert yaml.safe_load("learning_rate: 1e-3") == {"learning_rate": "1e-3"}  # PyYAML's dialect
    for path in (ROOT / "params.yaml", *sorted((ROOT / "profiles").glob("*.yaml"))):
        assert config.parse_yaml(path.read_text(), str(path)) == dvc_parse_yaml(path.read_text(), path)


def test_a_learning_rate_written_1e_3_is_valid(tmp_path):
    params = project_params(tmp_path)
    params.write_text(params.read_text().replace("learning_rate: 0.001", "learning_rate: 1e-3", 1))
    assert config.load(params).train.learning_rate == 0.001
    assert config.load(ROOT / "params.yaml", ["train.learning_rate=3e-4"]).train.learning_rate == 3e-4


def test_a_profile_is_read_the_same_way(tmp_path):
    """profiles/*.yaml go through the same reader: an alias refused naming the file and line,
    ``1e-3`` a number."""
    from initbench.profiles import apply_profile

    params = project_params(tmp_path)
    before = params.read_text()
    (tmp_path / "profiles" / "alias.yaml").write_text("train: &t {epochs: 2}\n")
    with pytest.raises(config.ConfigError, match=rf"^profile 'alias' \({tmp_path}/profiles/alias"
                                                 r"\.yaml\): line 1: YAML anchor &t refused"):
        apply_profile(params, "alias")
    assert params.read_text() == before
    (tmp_path / "profiles" / "small_lr.yaml").write_text("train:\n  learning_rate: 1e-3\n")
    apply_profile(params, "small_lr")
    assert config.load(params).train.learning_rate == 0.001
