"""``initbench sweep``'s grid and its validation, before anything is queued or logged."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from initbench import config
from initbench.cli import main
from initbench.sweep import MAX_EXPERIMENTS, SWEEP_FORM, grid

from .conftest import ROOT


def test_grid_is_every_combination_in_dvc_order():
    assert grid(["a=1,2", "b=x"]) == [["a=1", "b=x"], ["a=2", "b=x"]]
    assert grid(["a=1,2", "b=x,y"]) == [["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"], ["a=2", "b=y"]]
    # A list value is one value, not a sweep (as DVC queues it).
    assert grid(["model.hidden=[128,64]", "b=x,y"]) == [["model.hidden=[128,64]", "b=x"],
                                                       ["model.hidden=[128,64]", "b=y"]]
    for bad in ("a", "=1", "a="):
        with pytest.raises(config.ConfigError, match="expected key=value"):
            grid([bad])


@pytest.mark.parametrize("argv, message", [
    (["--set", "train.learning_rate=0.001,-1"], "train.learning_rate"),
    (["--set", "train.epochs=1,x"], "train.epochs: got 'x'"),
    (["--set", "nope=1"], "nope"),
    ([], "nothing to sweep"),
    (["--jobs", "0", "--set", "train.epochs=1"], "--jobs is 0"),
])
def test_a_bad_sweep_fails_in_one_line_before_any_work(argv, message, capsys, mlflow_store, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("initbench sweep: error:") and message in err and "\n" not in err
    assert not (tmp_path / "mlflow.db").exists()  # no run was created


@pytest.mark.parametrize("value, reason", [
    ("range(1", "no viable alternative at input 'range(1'"),
    ("1,,2", "extraneous input ',' expecting {"),
    ("'a", "LexerNoViableAltException"),
    ("choice()", "ValueError while evaluating 'choice()': empty choice is not legal"),
    ("range(0,1,0)", "range() arg 3 must not be zero"),
    ("glob(*)", "Glob override 'train.epochs=glob(*)' is not supported."),
    ("interval(0,1)", "BasicSweeper does not support sweep type : INTERVAL_SWEEP"),
])
def test_a_value_the_sweep_grammar_cannot_parse_is_one_line(value, reason, tmp_path):
    """Through the CLI, as a user meets it: one line naming the --set, the value, the parser's
    reason and the allowed form (Hydra's parser raised a 26-line traceback)."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = subprocess.run([sys.executable, "-m", "initbench.cli", "sweep", "--set",
                           "train.batch_size=32,64", "--set", f"train.epochs={value}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"initbench sweep: error: --set {'train.epochs=' + value!r}: got "
                           f"{value!r}, which the sweep syntax does not accept (")
    assert reason in line and line.endswith(f"); allowed: {SWEEP_FORM}")
    assert not (tmp_path / "mlflow.db").exists()


def test_a_grid_too_large_fails_before_it_is_expanded():
    assert len(grid(["a=range(0,10)", "b=range(0,100)"])) == MAX_EXPERIMENTS
    for overrides in (["a=range(0,1000000000)"], ["a=range(0,40)", "b=range(0,40)"]):
        with pytest.raises(config.ConfigError, match=rf"--set '{overrides[-1][:2]}.*more than "
                                                     rf"{MAX_EXPERIMENTS} combinations"):
            grid(overrides)
