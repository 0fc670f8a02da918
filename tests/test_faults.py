"""Fault injection on the real pipeline in a small copy of the project: SIGTERM and SIGKILL
mid-training, a killed ``dvc``, shell metacharacters in params, an output at the project root,
and an experiment in a throwaway DVC workspace. Nothing may be lost, half-written or left RUNNING.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import yaml
from mlflow.tracking import MlflowClient

from .conftest import copy_project, edit_params, one_cell, run
from .storeproxy import sqlite_server

pytestmark = pytest.mark.e2e


def small(params: dict) -> None:
    """The quick profile, trimmed: one cell, enough epochs to be caught mid-training."""
    one_cell(params, epochs=8)


@pytest.fixture(scope="module")
def root(tmp_path_factory, env) -> Path:
    dest = copy_project(tmp_path_factory.mktemp("faults"), env, small)
    run(["dvc", "repro", "normalize"], dest, env)
    return dest


def statuses(root: Path) -> list[str]:
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("initbench")
    return [] if exp is None else [r.info.status for r in client.search_runs([exp.experiment_id])]


def start_and_wait_for_training(cmd: list[str], root: Path, env: dict) -> subprocess.Popen:
    """Start ``cmd`` and return once a model has finished its first epoch."""
    proc = subprocess.Popen(cmd, cwd=root, env={**env, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        if "epoch 1/" in line or time.monotonic() > deadline:
            break
    assert proc.poll() is None, "the stage ended before it was interrupted"
    return proc


def leftovers(root: Path) -> list[str]:
    """Temporaries of killed writers: beside an output or in the scratch dir (initbench.scratch)."""
    return sorted(p.name for d in (root / "data", root / ".dvc/tmp/initbench") for p in d.rglob(".*")
                  if ".part" in p.name)


def test_sigterm_mid_training_ends_cleanly(root, env):
    proc = start_and_wait_for_training(["initbench", "train"], root, env)
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 143
    assert "initbench train: terminated (SIGTERM)" in rest and "Traceback" not in rest
    assert not (root / "data/train/baseline").exists() and leftovers(root) == []
    assert "RUNNING" not in statuses(root) and "KILLED" in statuses(root)


def test_sigkill_leftovers_are_cleaned_and_orphans_reaped_by_the_next_run(root, env):
    proc = start_and_wait_for_training(["initbench", "train"], root, env)
    proc.kill()
    proc.wait(timeout=60)
    assert leftovers(root) and "RUNNING" in statuses(root)  # what SIGKILL leaves behind
    done = run(["initbench", "train"], root, env)
    assert "KILLED: their process died" in done.stdout
    assert leftovers(root) == [] and "RUNNING" not in statuses(root)
    results = json.loads((root / "data/train/baseline/results.json").read_text())
    assert len(results["members"]) == 3 * 2 and all(len(m["history"]) == 8 for m in results["members"])


def test_killing_dvc_stops_its_stage(root, env):
    """SIGTERM to `dvc` alone: the stage must not go on as an orphan writing outputs."""
    dvc = start_and_wait_for_training(["dvc", "repro", "--force", "-s", "train"], root, env)
    stage = [p for p in psutil.Process(dvc.pid).children(recursive=True)
             if "train" in " ".join(p.cmdline()) and "initbench" in " ".join(p.cmdline())]
    dvc.send_signal(signal.SIGTERM)
    # The pipe closes when its last writer, the stage, has exited: what it printed comes with it.
    rest = dvc.communicate(timeout=120)[0]
    _, alive = psutil.wait_procs(stage, timeout=60)
    assert stage and not alive
    assert "initbench train: terminated (SIGTERM)" in rest and "Traceback" not in rest, rest[-3000:]
    # (dvc removed the stage's old output before running it; the orphan must not write a new one)
    assert not (root / "data/train/baseline").exists() and not (root / "data/runs/baseline").exists()
    assert leftovers(root) == [] and "RUNNING" not in statuses(root), rest[-3000:]


def test_a_store_that_dies_mid_training_costs_the_record_not_the_results(root, env, tmp_path):
    """The tracking server goes down after the first epoch: training goes on, both output
    directories are written, the failure is one warning line and runs.json records it."""
    with sqlite_server(tmp_path, env) as (url, _):
        uri = {"MLFLOW_TRACKING_URI": url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
        proc = start_and_wait_for_training(["initbench", "train"], root, {**env, **uri})
    # (the server is gone now, a few seconds into the second epoch)
    rest = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, rest[-3000:]
    assert rest.count("warning: MLflow logging stopped") == 1 and "Traceback" not in rest
    results = json.loads((root / "data/train/baseline/results.json").read_text())
    assert len(results["members"]) == 3 * 2 and all(len(m["history"]) == 8 for m in results["members"])
    runs = json.loads((root / "data/runs/baseline/runs.json").read_text())
    assert "MlflowException" in runs["tracking_error"]
    # Two stacks (one per data order): the first's runs were created before the outage, the
    # second's could not be; every model is on disk either way.
    assert [bool(r["run_id"]) for r in runs["runs"]] == [True] * 3 + [False] * 3
    for record in runs["runs"]:
        assert (root / "data/runs/baseline" / record["model_file"]).is_file()


def test_an_output_at_the_project_root_is_refused(root, env):
    files = sorted(p.name for p in root.iterdir())
    proc = run(["initbench", "report", "--out", "."], root, env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "refusing to replace it" in proc.stderr
    assert sorted(p.name for p in root.iterdir()) == files


def test_shell_metacharacters_in_params_never_run(tmp_path, env):
    def bad(params: dict) -> None:
        params["study"]["depth"].update(depths=[2], activations=["relu$(touch pwned)"])

    dest = copy_project(tmp_path, env, bad)
    proc = run(["dvc", "repro"], dest, env, check=False)
    assert proc.returncode != 0 and "study.depth.activations" in proc.stdout + proc.stderr
    assert not list(dest.rglob("pwned")) and not (dest / "data").exists()


@pytest.mark.parametrize("uri", [None, "sqlite:///mlflow.db"])
def test_a_temp_experiment_logs_to_the_projects_store(root, env, uri):
    """`dvc exp run --temp` runs in a throwaway copy; its runs and artifacts must land here, also
    with a relative SQLite URI (MLflow's notation for ./mlflow.db: the project root's file, not
    one in the copy, deleted with it)."""
    if yaml.safe_load((root / "params.yaml").read_text())["train"]["epochs"] != 1:
        edit_params(root, lambda p: p["train"].update(epochs=1))
        subprocess.run(["git", "commit", "-qam", "one epoch"], cwd=root, check=True)
    before = len(statuses(root))
    name, lr = ("one-seed", "0.001") if uri is None else ("relative-uri", "0.004")
    run(["dvc", "exp", "run", "--temp", "-n", name, "-S", "study.seeds=1", "-S",
         f"train.learning_rate={lr}"], root, {**env, **({"MLFLOW_TRACKING_URI": uri} if uri else {})})
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("initbench")
    # The DVC experiment's name names the execution's pipeline run.
    assert client.search_runs([exp.experiment_id], f"attributes.run_name = '{name}'")
    runs = client.search_runs([exp.experiment_id], "tags.`initbench.role` = 'model'",
                              order_by=["attributes.start_time DESC"], max_results=3)
    assert len(statuses(root)) >= before + 3
    assert {(r.data.params["train.epochs"], r.data.params["train.learning_rate"]) for r in runs} == {
        ("1", lr)}
    artifacts = Path(exp.artifact_location.removeprefix("file://"))
    assert artifacts == root / "mlruns" and list(artifacts.rglob("diagnostics.json"))
    for r in runs:
        assert Path(r.info.artifact_uri.removeprefix("file://")).is_relative_to(artifacts)
    assert sorted(root.rglob("mlflow.db")) == [root / "mlflow.db"]


def test_a_sweep_with_a_relative_store_uri_logs_to_the_projects_store(root, env):
    """`initbench sweep` (temp experiments of DVC's queue) with MLFLOW_TRACKING_URI=sqlite:///mlflow.db:
    every experiment succeeds, into the project root's store."""
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("initbench")
    before = {r.info.run_id for r in client.search_runs([exp.experiment_id], max_results=5000)}
    proc = run(["initbench", "sweep", "--set", "train.learning_rate=0.005,0.006", "--set",
                "study.seeds=1", "--jobs", "2", "--name", "relative"], root,
               {**env, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    new = [r for r in client.search_runs([exp.experiment_id], max_results=5000)
           if r.info.run_id not in before]
    (sweep,) = [r for r in new if r.info.run_name == "relative"]
    models = [r for r in new if r.data.tags.get("initbench.role") == "model"]
    assert sorted(r.data.params["train.learning_rate"] for r in models) == ["0.005"] * 3 + ["0.006"] * 3
    assert {r.info.status for r in new} == {"FINISHED"} and sweep.info.status == "FINISHED"
    assert sorted(root.rglob("mlflow.db")) == [root / "mlflow.db"]


def test_queued_experiments_run_in_parallel_into_the_projects_store(root, env):
    """`dvc exp run --queue` twice, `dvc queue start --jobs 2`: both complete, every run in the
    project's one store (the workers run in throwaway copies, against one new-ish store)."""
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("initbench")
    before = {r.info.run_id for r in client.search_runs([exp.experiment_id], max_results=5000)}
    earlier = run(["dvc", "queue", "status"], root, env).stdout.count("Success")  # other tests'
    for lr in ("0.002", "0.003"):
        run(["dvc", "exp", "run", "--queue", "-S", "study.seeds=1", "-S", f"train.learning_rate={lr}"],
            root, env)
    run(["dvc", "queue", "start", "--jobs", "2"], root, env)
    deadline = time.monotonic() + 900
    while True:
        status = run(["dvc", "queue", "status"], root, env).stdout
        if "Queued" not in status and "Running" not in status:
            break
        assert time.monotonic() < deadline, status
        time.sleep(5)
    assert status.count("Success") == earlier + 2, status
    new = [r for r in client.search_runs([exp.experiment_id], max_results=5000)
           if r.info.run_id not in before]
    models = [r for r in new if r.data.tags.get("initbench.role") == "model"]
    assert sorted(r.data.params["train.learning_rate"] for r in models) == ["0.002"] * 3 + ["0.003"] * 3
    assert {r.info.status for r in new} == {"FINISHED"}
