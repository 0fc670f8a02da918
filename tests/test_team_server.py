"""The shared tracking server (``deploy/tracking-server``): PostgreSQL + ``mlflow server`` with
served artifacts, on loopback. The small pipeline runs against it once; runs, metrics, a logged
model and the report's figures read back through its API, and again after a restart. Bad settings
are refused in one line before anything starts; a given state directory keeps its mode."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from .conftest import ROOT, copy_project, free_port, run

pytestmark = pytest.mark.e2e
SCRIPT = str(ROOT / "deploy" / "tracking-server")
PASSWORD = "not-in-any-log 'quoted' $HOME"  # shell metacharacters: never interpreted
LABELS = ("he_normal", "gaussian", "glorot_uniform")


def _settings(state: Path) -> dict[str, str]:
    return {"INITBENCH_SERVER_DIR": str(state), "INITBENCH_DB_PASSWORD": PASSWORD,
            "INITBENCH_SERVER_PORT": str(free_port()), "INITBENCH_PG_PORT": str(free_port())}


def _running(path: Path) -> bool:
    """Whether any process (postgres -D, mlflow --artifacts-destination) names ``path``."""
    return str(path) in subprocess.run(["ps", "-eo", "args", "ww"], capture_output=True, text=True).stdout


def _one_line(proc: subprocess.CompletedProcess, starts: str) -> str:
    line = proc.stderr.strip()
    assert proc.returncode == 2 and line.startswith(f"tracking-server: {starts}") and "\n" not in line
    return line


@pytest.fixture(scope="module")
def server(env):
    """A server in a fresh state directory, started by the deploy script; stopped at the end."""
    assert list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")), "apt-get install postgresql"
    # As root, PostgreSQL runs as `postgres`, which must reach the state directory.
    top = Path(tempfile.mkdtemp(prefix="initbench-server-"))
    top.chmod(0o755)
    (top / "state").mkdir()  # a given directory (1777): it keeps its mode
    (top / "state").chmod(0o1777)
    senv = {**env, **_settings(top / "state")}
    try:
        out = run([SCRIPT, "start"], ROOT, senv).stdout
        url = f"http://127.0.0.1:{senv['INITBENCH_SERVER_PORT']}"
        assert url in out
        yield url, senv
    finally:
        subprocess.run([SCRIPT, "stop"], env=senv, capture_output=True, check=False)
        shutil.rmtree(top, ignore_errors=True)
    ps = subprocess.run(["ps", "-eo", "args", "ww"], capture_output=True, text=True).stdout
    assert str(top) not in ps, "a server process outlived `tracking-server stop`"


@pytest.mark.parametrize("change, message", [
    ({"INITBENCH_DB_PASSWORD": ""}, "INITBENCH_DB_PASSWORD is not set"),
    ({"INITBENCH_SERVER_PORT": "80; rm -rf /"}, "INITBENCH_SERVER_PORT is '80; rm -rf /'; expected"),
    ({"INITBENCH_DB_NAME": "Robert'); DROP"}, "INITBENCH_DB_NAME is 'Robert'); DROP'; expected a"),
    ({"INITBENCH_SERVER_DIR": "relative/dir"}, "INITBENCH_SERVER_DIR is 'relative/dir'; expected an"),
    ({"INITBENCH_SERVER_DIR": "/no/such/$(id)"}, "INITBENCH_SERVER_DIR is '/no/such/$(id)'; expected an"),
    ({"INITBENCH_SERVER_HOST": "0.0.0.0 --workers 9"}, "INITBENCH_SERVER_HOST is '0.0.0.0 --workers 9';"),
    ({"INITBENCH_DB_USER": "pg_team"}, "INITBENCH_DB_USER is 'pg_team'; PostgreSQL reserves"),
    *[({"INITBENCH_DB_PASSWORD": pw}, "INITBENCH_DB_PASSWORD holds a newline, tab, other control or "
       "non-ASCII character (not shown); allowed: printable ASCII, space to ~")
      for pw in ("first line\nsecond line", "tab\there", "pässwörd")],
])
def test_bad_settings_fail_in_one_line_before_any_work(env, tmp_path, change, message):
    senv = {**env, **_settings(tmp_path / "state"), **change}
    proc = run([SCRIPT, "start"], ROOT, senv, check=False)
    _one_line(proc, message)
    assert not (tmp_path / "state").exists() and not _running(tmp_path)
    assert not change.get("INITBENCH_DB_PASSWORD") or change["INITBENCH_DB_PASSWORD"] not in proc.stderr


def test_a_given_state_directory_keeps_its_mode(server):
    state = Path(server[1]["INITBENCH_SERVER_DIR"])
    assert stat.S_IMODE(state.stat().st_mode) == 0o1777
    assert stat.S_IMODE((state / "postgres").stat().st_mode) == 0o700


def test_the_pipeline_logs_to_the_server_and_a_restart_loses_nothing(server, env, tmp_path):
    url, senv = server
    root = copy_project(tmp_path, env, lambda p: (
        p["study"]["depth"].update(depths=[]), p["study"]["datasets"].update(names=[]),
        p["study"]["strategies"].update(variants={}), p["study"]["conv"].update(depths=[])))
    run(["dvc", "repro"], root, {**env, "MLFLOW_TRACKING_URI": url})

    def snapshot() -> dict:
        client = MlflowClient(tracking_uri=url)
        exp = client.get_experiment_by_name("initbench")
        models = client.search_runs([exp.experiment_id], "tags.`initbench.role` = 'model'")
        (parent,) = client.search_runs([exp.experiment_id], "tags.`initbench.role` = 'pipeline'")
        figures = sorted(a.path for a in client.list_artifacts(parent.info.run_id, "report/figures")
                         if a.path.endswith(".png"))
        png = Path(client.download_artifacts(parent.info.run_id, figures[0], str(tmp_path / "dl")))
        curve = client.get_metric_history(models[0].info.run_id, "val_accuracy")
        return {"models": sorted((r.info.run_id, r.info.status, r.data.metrics["test_accuracy"])
                                 for r in models),
                "parent": parent.info.status, "figures": figures,
                "png": png.read_bytes()[:8], "curve": [(m.step, m.value) for m in curve]}

    before = snapshot()
    results = json.loads((root / "data/train/baseline/results.json").read_text())["members"]
    assert len(before["models"]) == len(results) == len(LABELS) * 2
    assert {s for _, s, _ in before["models"]} == {"FINISHED"} and before["parent"] == "FINISHED"
    assert sorted(a for _, _, a in before["models"]) == pytest.approx(
        sorted(m["test_accuracy"] for m in results))
    assert before["figures"] and before["png"] == b"\x89PNG\r\n\x1a\n"
    assert [s for s, _ in before["curve"]] == [1, 2]
    # Artifacts went through the server into its own destination, not the project.
    state = Path(senv["INITBENCH_SERVER_DIR"])
    assert any((state / "artifacts").rglob("*.png")) and not (root / "mlruns").exists()

    run([SCRIPT, "stop"], ROOT, senv)
    assert run([SCRIPT, "status"], ROOT, senv, check=False).returncode == 3
    run([SCRIPT, "start"], ROOT, senv)
    assert snapshot() == before

    # A logged model loads back through the server.
    import mlflow

    mlflow.set_tracking_uri(url)
    try:
        model_run = before["models"][0][0]
        (logged,) = mlflow.search_logged_models(filter_string=f"source_run_id = '{model_run}'",
                                                output_format="list",
                                                experiment_ids=[MlflowClient(url).get_run(
                                                    model_run).info.experiment_id])
        x = np.load(root / "data/processed/mnist.npz")["x_test"][:50]
        probs = mlflow.pyfunc.load_model(f"models:/{logged.model_id}").predict(x)
    finally:
        mlflow.set_tracking_uri(None)
    assert np.asarray(probs).shape == (50, 10)

    # The password is in no log and on no command line.
    logs = [p for p in state.rglob("*") if p.is_file() and p.suffix in (".log", ".conf", ".pid")]
    assert logs and not [p for p in logs if PASSWORD in p.read_text(errors="replace")]
    ps = subprocess.run(["ps", "-eo", "args", "ww"], capture_output=True, text=True, check=True).stdout
    assert f"--port {senv['INITBENCH_SERVER_PORT']}" in ps and PASSWORD not in ps

    # A parallel sweep (dvc queue, 2 at a time) against the server: every run under one parent.
    proc = run(["initbench", "sweep", "--name", "team sweep", "--jobs", "2", "--set",
                "train.learning_rate=0.001,0.003", "--set", "study.seeds=1"], root,
               {**env, "MLFLOW_TRACKING_URI": url})
    assert "2/2 experiment(s) succeeded" in proc.stdout
    client = MlflowClient(tracking_uri=url)
    exp = client.get_experiment_by_name("initbench")
    (sweep,) = client.search_runs([exp.experiment_id], "tags.`initbench.role` = 'sweep'")
    assert sweep.info.run_name == "team sweep" and sweep.info.status == "FINISHED"
    runs = client.search_runs([exp.experiment_id],
                              f"tags.`initbench.pipeline_run` = '{sweep.info.run_id}'")
    models = [r for r in runs if r.data.tags["initbench.role"] == "model"]
    assert sorted(r.data.params["train.learning_rate"] for r in models) == ["0.001"] * 3 + ["0.003"] * 3
    assert {r.info.status for r in runs} == {"FINISHED"}
    reports = [a.path for a in client.list_artifacts(sweep.info.run_id)]
    assert len(reports) == 2 and all(
        "report" in {p.path.split("/")[-1] for p in client.list_artifacts(sweep.info.run_id, d)}
        for d in reports)
