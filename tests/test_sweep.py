"""``initbench sweep``'s grid and its validation, before anything is queued or logged."""

from __future__ import annotations

import pytest

from initbench import config
from initbench.cli import main
from initbench.sweep import grid


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
