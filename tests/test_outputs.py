"""Outputs are never lost or shared: one writer per output (a real second process refuses), dead
writers' leftovers cleaned and never inside a DVC output, a damaged archive refused in one line
before any training. On the real pipeline: tests/test_outputs_pipeline.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from initbench import scratch
from initbench.data import processed
from initbench.paths import REPORT_FILES, atomic_output

from .conftest import project_params, run

HOLD = """
import sys
from pathlib import Path
from initbench.paths import atomic_output
with atomic_output(Path(sys.argv[1]), ["a.txt", "b.txt"]) as tmp:
    tmp.mkdir()
    (tmp / "a.txt").write_text("a")
    print(tmp, flush=True)
    sys.stdin.readline()  # hold the output until the test says go on
    (tmp / "b.txt").write_text("b")
"""


def dvc_project(where: Path) -> Path:
    """A bare project: params.yaml, dvc.yaml and a .dvc directory (what DVC's own checks see)."""
    project_params(where)
    shutil.copy(Path(__file__).resolve().parents[1] / "dvc.yaml", where / "dvc.yaml")
    (where / ".dvc").mkdir()
    return where


def holder(target: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    """A process writing ``target`` (its temporary holds a.txt), waiting for a line on stdin."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(target)], env=env, text=True,
                            cwd=target.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    tmp = Path(proc.stdout.readline().strip())
    assert (tmp / "a.txt").is_file(), "the holder did not start writing"
    return proc, tmp


def parts(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".*") if ".part" in p.name)


def writing(root: Path, name: str) -> list[Path]:
    """The temporaries of the output ``name`` being written: beside it or in the scratch dir."""
    return [p for d in (root, root / "data", root / scratch.SCRATCH, root / scratch.SCRATCH / "data")
            for p in d.glob(f".{name}.*.part")]


def test_a_second_writer_refuses_and_the_first_completes(tmp_path, env):
    root = dvc_project(tmp_path / "project")
    target = root / "data" / "processed"
    target.parent.mkdir()
    first, tmp = holder(target, env)
    try:
        second = run(["initbench", "normalize"], root, env, check=False)  # the same output
        assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
        assert f"output {target} is being written by another process (pid {first.pid}" in (
            second.stderr)
        assert (tmp / "a.txt").read_text() == "a" and not target.exists()
        # Outside the DVC output's directory: DVC restoring data/ never sees it.
        assert tmp.parent == root / ".dvc/tmp/initbench/data" and not parts(root / "data")
        first.communicate("go\n", timeout=60)
    finally:
        first.kill()
    assert first.returncode == 0
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "b.txt"]
    assert parts(root) == [] and not list(root.rglob(".*.lock"))


def test_a_dead_writers_leftovers_are_removed_by_the_next_writer(tmp_path, env):
    root = dvc_project(tmp_path / "project")
    (root / "data" / "train").mkdir(parents=True)
    killed, tmp = holder(root / "data" / "processed", env)
    killed.kill()  # SIGKILL: no finally runs; its temporary and lock file stay
    killed.wait(timeout=60)
    assert tmp.is_dir()
    live, live_tmp = holder(root / "data" / "train" / "baseline", env)
    try:
        # Another output's writer: the dead one's leftovers go, the live one's stay.
        with atomic_output(root / "reports", REPORT_FILES) as out:
            assert not tmp.exists() and (live_tmp / "a.txt").is_file()
            out.mkdir()
            (out / "report.md").write_text("r")
        live.communicate("go\n", timeout=60)
    finally:
        live.kill()
    assert live.returncode == 0 and (root / "data/train/baseline/b.txt").is_file()
    assert parts(root) == [] and (root / "reports/report.md").read_text() == "r"


def test_temporaries_stay_beside_a_target_outside_any_project(tmp_path):
    assert scratch.scratch_dir(tmp_path / "out") == tmp_path.resolve()


# --- the processed archive -----------------------------------------------------------------------
def arrays(n: int = 40) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for split in ("train", "val", "test"):
        out[f"x_{split}"] = rng.random((n, 28, 28), dtype=np.float32)
        out[f"y_{split}"] = np.arange(n, dtype=np.int64) % 10
    return out


def nan_pixel(a):
    a["x_val"][3, 4, 5] = np.nan


DAMAGE = {
    "NaN pixel": (nan_pixel, "x_val holds 1 NaN or infinite pixel value(s)"),
    "inf pixel": (lambda a: a["x_train"].__setitem__((0, 0, 0), np.inf), "x_train holds 1 NaN"),
    "missing array": (lambda a: a.pop("y_test"), "no y_test array (it holds x_test, x_train"),
    "float64 images": (lambda a: a.update(x_test=a["x_test"].astype(np.float64)),
                       "x_test is float64 of shape (40, 28, 28); expected float32"),
    "wrong shape": (lambda a: a.update(x_val=a["x_val"][:, :27, :27]),
                    "x_val is float32 of shape (40, 27, 27); expected float32 images of shape "
                    "(n, height, width) like x_train's (n, 28, 28)"),
    "labels short": (lambda a: a.update(y_train=a["y_train"][:-1]),
                     "y_train is int64 of shape (39,); expected int64 of shape (40,)"),
    "negative label": (lambda a: a["y_test"].__setitem__(0, -1), "y_test holds negative labels"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_archive_is_refused_in_one_line(case, tmp_path):
    edit, says = DAMAGE[case]
    data = arrays()
    edit(data)
    path = tmp_path / "mnist.npz"
    processed.save(path, data)
    with pytest.raises(processed.ArchiveError) as err:
        processed.load(path)
    assert str(err.value).startswith(f"processed archive {path}: ") and says in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("damage", ["truncated", "pickled"])
def test_an_unreadable_archive_is_refused_in_one_line(damage, tmp_path):
    path = tmp_path / "mnist.npz"
    processed.save(path, arrays())
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    else:
        np.savez(path, **{**arrays(), "x_test": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(processed.ArchiveError, match=f"processed archive {path} cannot be read") as err:
        processed.load(path)
    assert "\n" not in str(err.value)


def test_the_train_stage_refuses_nan_pixels_before_any_training(tmp_path, env):
    root = dvc_project(tmp_path / "project")
    data = arrays()
    nan_pixel(data)
    bad = root / "bad.npz"
    processed.save(bad, data)
    proc = run(["initbench", "train", "--cell", "baseline", "--data", str(bad)], root, env,
               check=False)
    # (MLflow's own INFO lines, creating the new store, come before it)
    (error,) = [line for line in proc.stderr.splitlines() if "initbench train" in line]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert error.startswith(f"initbench train: error: processed archive {bad}: x_val holds 1 NaN")
    assert "epoch" not in proc.stdout and parts(root) == []
    assert not (root / "data/train/baseline").exists() and not (root / "data/runs/baseline").exists()
