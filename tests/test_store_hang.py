"""A real stage against a tracking server that answers the start-up check and then hangs
mid-training, and ``initbench log`` with a model file gone or damaged: each ends within seconds in
one line, the previous outputs stay, and no run is left RUNNING once the store answers again.

The hung server is a real ``mlflow server`` behind a TCP proxy on 127.0.0.1, frozen: it then
accepts and reads requests but never forwards or answers them (tests/storeproxy.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from . import storeproxy
from .conftest import copy_project, run
from .storeproxy import statuses

server, proxy = storeproxy.server, storeproxy.proxy  # the fixtures

pytestmark = pytest.mark.e2e




# --- a real stage against a store that hangs mid-training --------------------------------------
@pytest.fixture(scope="module")
def root(tmp_path_factory, env) -> Path:
    """A small copy of the project, its pipeline cell trained (one epoch) into its own store."""
    def small(params: dict) -> None:
        study = params["study"]
        for section in ("depth", "phase", "conv"):
            study[section]["depths"] = []
        study["lr_sweep"]["learning_rates"], study["datasets"]["names"] = [], []
        study["strategies"]["variants"] = {}
        params["train"]["epochs"] = 1

    dest = copy_project(tmp_path_factory.mktemp("store-faults"), env, small)
    run(["dvc", "repro", "train"], dest, env)
    return dest


def test_sigint_ends_a_stage_whose_store_hangs_within_seconds(root, env, server, proxy):
    """The issue's proof: the server answers the check, then hangs mid-training; SIGINT ends the
    stage in under 10 s in one line naming the store; the previous outputs stay; once the server
    answers again the next start marks the runs left RUNNING KILLED, and every run reads back."""
    results = (root / "data/train/baseline/results.json").read_bytes()
    earlier = statuses(server[0])  # (other tests' runs in this server)
    proc = subprocess.Popen(["initbench", "train", "--set", "train.epochs=40"], cwd=root,
                            env={**env, "MLFLOW_TRACKING_URI": proxy.url, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "epoch 1/" in line:
                break
        proxy.frozen.set()  # the next epoch's metrics never get an answer
        assert proxy.held.wait(120) and proc.poll() is None, "the stage never called the store"
        time.sleep(1)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - start
    finally:
        proc.kill()
    assert took < 10 and proc.returncode == 130, (took, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("initbench train: interrupted;"), err
    assert f"the MLflow store {proxy.url} did not answer" in lines[0]
    assert (root / "data/train/baseline/results.json").read_bytes() == results
    left = [r for r, s in statuses(server[0]).items() if s == "RUNNING" and r not in earlier]
    assert len(left) == 3 + 3 + 1  # the open models, their initializers' runs, the parent

    proxy.frozen.clear()  # the server answers again: the next start ends what was left
    done = run(["initbench", "log"], root, {**env, "MLFLOW_TRACKING_URI": proxy.url})
    assert f"marked {len(left)} run(s) KILLED" in done.stdout
    after = {r: s for r, s in statuses(server[0]).items() if r not in earlier}
    assert "RUNNING" not in after.values() and {after[r] for r in left} == {"KILLED"}
    client = MlflowClient(server[0])
    for run_id in after:  # every run reads back, and the store file is sound
        assert client.get_run(run_id).info.run_id == run_id
    with sqlite3.connect(server[1]) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


# --- `initbench log` with a model file gone or damaged ---------------------------------------
def first_model(root: Path) -> Path:
    runs = json.loads((root / "data/runs/baseline/runs.json").read_text())["runs"]
    return root / "data/runs/baseline" / runs[0]["model_file"]


def log_into_new_store(root: Path, env: dict, tmp_path: Path, undo) -> tuple:
    """``initbench log`` into a new SQLite store (tmp_path/log.db), then ``undo()`` the damage:
    (the process, the store's URI)."""
    uri = f"sqlite:///{tmp_path / 'log.db'}"
    try:
        return run(["initbench", "log"], root, {**env, "MLFLOW_TRACKING_URI": uri}, check=False), uri
    finally:
        undo()


def test_log_with_a_missing_model_file_fails_before_any_run(root, env, tmp_path):
    model = first_model(root)
    aside = tmp_path / "aside.keras"
    shutil.move(model, aside)
    proc, uri = log_into_new_store(root, env, tmp_path, undo=lambda: shutil.move(aside, model))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"initbench log: error: {model}: missing (model ")
    assert not (tmp_path / "log.db").exists() or statuses(uri) == {}


def test_log_with_a_damaged_model_file_leaves_no_run_running(root, env, tmp_path):
    model = first_model(root)
    good = model.read_bytes()
    model.write_bytes(os.urandom(len(good)))
    proc, uri = log_into_new_store(root, env, tmp_path, undo=lambda: model.write_bytes(good))
    assert proc.returncode != 0
    ended = statuses(uri)
    assert ended and "RUNNING" not in ended.values() and "FAILED" in ended.values(), ended
