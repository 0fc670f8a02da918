"""A tracking store that hangs, is damaged or is not what MLflow expects: the start-up check says
why in one line, a call after it fails in seconds, and an interrupt is never held by a store call
for long. (A real stage against a store that hangs: tests/test_store_hang.py.)
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from mlflow.tracking import MlflowClient

from initbench import process, storecheck, tracking

from . import storeproxy
from .conftest import ROOT

server, proxy = storeproxy.server, storeproxy.proxy  # the fixtures




# --- the budget of a call after the start-up check --------------------------------------------
CALL_AFTER_CHECK = """
import sys, time
from mlflow.tracking import MlflowClient
from initbench import tracking
tracking.use_project_store()
print("checked", flush=True)
sys.stdin.readline()
start = time.monotonic()
try:
    MlflowClient().search_runs(["0"])
except Exception as err:
    print(f"{time.monotonic() - start:.1f}", type(err).__name__, flush=True)
"""


def test_after_the_check_a_hung_store_call_fails_in_seconds(proxy, env):
    """MLflow's own budget (120 s x 8 tries) becomes seconds after the check; a budget the user
    set is kept."""
    envs = [{**env, "MLFLOW_TRACKING_URI": proxy.url},
            {**env, "MLFLOW_TRACKING_URI": proxy.url, "MLFLOW_HTTP_REQUEST_TIMEOUT": "1",
             "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}]
    procs = [subprocess.Popen([sys.executable, "-c", CALL_AFTER_CHECK], env=e, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE) for e in envs]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["checked", "checked"]
        proxy.frozen.set()
        for p in procs:
            p.stdin.write("\n")
            p.stdin.flush()
        (default, user) = [p.communicate(timeout=90)[0].split() for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert default[1] == user[1] == "MlflowException"
    assert float(default[0]) < 60 and float(user[0]) < 5, (default, user)


# --- what the start-up check says ------------------------------------------------------------
def check_says(uri: str, monkeypatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(tracking.TrackingError) as err:
        tracking.use_project_store()
    message = str(err.value)
    assert "\n" not in message and uri in message
    return message


def test_a_corrupt_sqlite_file_is_said_so_and_left_alone(tmp_path, monkeypatch):
    db = tmp_path / "mlflow.db"
    db.write_bytes(os.urandom(50_000))
    before = db.read_bytes()
    message = check_says(f"sqlite:///{db}", monkeypatch)
    assert "is not a readable SQLite database (file is not a database" in message
    assert "start it" not in message and db.read_bytes() == before
    # and through the command: one line, exit 2, nothing written
    proc = subprocess.run([sys.executable, "-m", "initbench.cli", "report", "--out",
                           str(tmp_path / "out"), "--cells", str(tmp_path / "cells")], cwd=ROOT,
                          env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"},
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("initbench report: error: the MLflow tracking store sqlite:///")
    assert "file is not a database" in proc.stderr and not (tmp_path / "out").exists()


def test_an_old_schema_keeps_mlflows_upgrade_advice(tmp_path, monkeypatch):
    db = tmp_path / "old.db"
    # A store of this MLflow (made in another process: this one would keep it open) ...
    subprocess.run([sys.executable, "-c", "import sys; from mlflow import MlflowClient; "
                    "MlflowClient(sys.argv[1]).search_experiments()", f"sqlite:///{db}"],
                   check=True, capture_output=True)
    with sqlite3.connect(db) as conn:  # ... set back to an older schema revision
        conn.execute("UPDATE alembic_version SET version_num = '0c779009ac13'")
    message = check_says(f"sqlite:///{db}", monkeypatch)
    assert "Detected out-of-date database schema (found version 0c779009ac13" in message
    assert f"run 'mlflow db upgrade sqlite:///{db}'" in message and "start it" not in message
    with sqlite3.connect(db) as conn:  # never upgraded behind the user's back
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("0c779009ac13",)]


def test_a_file_store_says_what_mlflow_does_with_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    message = check_says((tmp_path / "mlruns").as_uri(), monkeypatch)
    assert "is a file store, which MLflow 3." in message and "refuses" in message
    assert "mlflow migrate-filestore" in message and "MLFLOW_ALLOW_FILE_STORE=true" in message
    assert "start it" not in message


def test_a_server_that_is_down_is_told_to_start(monkeypatch):
    message = check_says("http://127.0.0.1:9", monkeypatch)  # a closed port
    assert "does not answer ([Errno 111] Connection refused); start it" in message


# --- an interrupt held by a store call --------------------------------------------------------
@pytest.fixture
def handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    note = process.stop_note()
    process.end_with_pipeline()
    yield
    process.set_grace(None)
    process.stop_note(note)
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("how", ["grace", "second interrupt"])
def test_a_call_that_does_not_return_holds_an_interrupt_seconds_at_most(how, handlers):
    """A remote store's call holds Ctrl-C for its grace at most; a second interrupt (any store)
    breaks out at once. Either way the stage then knows its store call was cut short."""
    process.set_grace(0.5 if how == "grace" else None)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), process.shielded():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # held
        if how == "second interrupt":
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # a call that hangs
    assert time.monotonic() - start < 5
    assert process.stopping() and process.cut_short()


def test_stopping_ends_runs_killed_where_the_store_answers_and_waits_on_it_once(
        proxy, handlers, monkeypatch):
    """Once the stage is stopping, the store gets one short try per run, and none after one
    failed: the runs it does not take are left (for the next start) and the last line says so."""
    for key in storecheck.BOUNDED:  # unset here, and as before once the test is done
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
    monkeypatch.setattr(tracking, "_left", [])
    tracking.use_project_store()
    client = MlflowClient()
    runs = [client.create_run(client.create_experiment(f"stop-{time.time_ns()}")).info.run_id]
    runs += [client.create_run(client.get_run(runs[0]).info.experiment_id).info.run_id
             for _ in range(3)]
    with pytest.raises(KeyboardInterrupt):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        finally:  # what the stage's cleanup does
            tracking.end_run(runs[0], "KILLED")
            proxy.frozen.set()
            start = time.monotonic()
            for run_id in runs[1:]:
                tracking.end_run(run_id, "KILLED")
            took = time.monotonic() - start
    assert took < 5 and process.stop_note() == (
        f"the MLflow store {proxy.url} did not answer: 3 open run(s) left RUNNING, marked "
        "KILLED by the next start")
    proxy.frozen.clear()
    assert [client.get_run(r).info.status for r in runs] == ["KILLED"] + ["RUNNING"] * 3


def test_a_logged_model_loads_and_logging_it_leaves_its_run_to_its_owner(mlflow_store):
    """The model is logged into the named run, not through MLflow's active run (whose end would
    call the store, and replace an interrupt when that call fails): the run stays RUNNING until
    the tracker ends it, and the model loads as pyfunc and as Keras."""
    import keras
    import mlflow
    import numpy as np

    from initbench.mlflowlog import log_keras_model

    inputs = keras.Input((28, 28))  # a functional model, as the stage's are
    model = keras.Model(inputs, keras.layers.Dense(10, kernel_initializer="he_normal")(
        keras.layers.Flatten()(inputs)))
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment("model")).info.run_id
    client.log_param(run_id, "lr", 0.1)
    x = np.random.default_rng(0).random((5, 28, 28), np.float32)
    signature = log_keras_model(run_id, model, "he_normal-s0", x)
    assert mlflow.active_run() is None and client.get_run(run_id).info.status == "RUNNING"
    (logged,) = mlflow.search_logged_models(filter_string=f"source_run_id = '{run_id}'",
                                            experiment_ids=[client.get_run(run_id).info.experiment_id],
                                            output_format="list")
    info = mlflow.models.get_model_info(f"models:/{logged.model_id}")
    assert logged.name == "he_normal-s0" and info.signature == signature
    assert logged.params == {"lr": "0.1"} and logged.status == "READY"
    assert [o.model_id for o in client.get_run(run_id).outputs.model_outputs] == [logged.model_id]
    assert info.saved_input_example_info is not None
    expected = model.predict(x, verbose=0)
    for flavor in (mlflow.pyfunc, mlflow.keras):
        got = np.asarray(flavor.load_model(f"models:/{logged.model_id}").predict(x))
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_a_new_sqlite_store_keeps_even_default_artifacts_beside_it(tmp_path, monkeypatch):
    """A store first created from another directory (DVC's throwaway copy) still gets its
    Default experiment's artifacts in mlruns/ beside its file, never ./mlruns of that copy."""
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracking.use_project_store()
    default = MlflowClient(uri).get_experiment("0").artifact_location
    assert default == (tmp_path / "store" / "mlruns" / "0").as_uri()
    assert not (elsewhere / "mlruns").exists()
