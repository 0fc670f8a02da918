"""Bad input and faults that must end in one clear line, with nothing destroyed or half-written.

Unit level: output paths a stage refuses, params that are rejected up front (with the field and,
for a misspelling, a suggestion), YAML read the way DVC reads it, orphaned MLflow runs reaped.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from initbench import config, process, tracking
from initbench.paths import OutputError, atomic_output, cell_from_stage, check_output

from .conftest import ROOT


# --- outputs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [".", "..", str(ROOT), "/"])
def test_the_project_and_its_ancestors_are_never_an_output(target, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(OutputError, match="project, the working directory or one of"):
        check_output(ROOT / target if target in (".", "..") else Path(target), ["report.md"])
    assert (ROOT / ".git").exists() and (ROOT / "params.yaml").is_file()


def test_a_directory_the_stage_never_wrote_is_refused_before_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    (data / "raw" / "keep.gz").write_text("precious")
    ran = []
    with (pytest.raises(OutputError, match="holds raw, which this stage never writes"),
          atomic_output(data, ["results.json", "metrics"])):
        ran.append(True)
    assert not ran and (data / "raw" / "keep.gz").read_text() == "precious"
    with pytest.raises(OutputError, match="existing directory; refusing to replace it with a file"):
        check_output(data)


def test_a_symlinked_output_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OutputError, match="symlink"):
        check_output(tmp_path / "link", ["report.md"])


def test_a_previous_output_is_replaced_and_sigkill_leftovers_are_cleaned(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "reports"
    out.mkdir()
    (out / "report.md").write_text("old")
    leftover = tmp_path / ".reports.abc123.part"  # what a SIGKILLed writer leaves
    (leftover / "figures").mkdir(parents=True)
    with atomic_output(out, ["report.md", "figures"]) as tmp:
        assert not leftover.exists()
        tmp.mkdir()
        (tmp / "report.md").write_text("new")
    assert (out / "report.md").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["reports"]
    with atomic_output(tmp_path / "params.yaml") as tmp:
        tmp.write_text("a: 1\n")
    umask = os.umask(0)
    os.umask(umask)
    # Modes as any other write makes them (mkdtemp's 0700 never reaches the output).
    assert (out.stat().st_mode & 0o777, (tmp_path / "params.yaml").stat().st_mode & 0o777) == (
        0o777 & ~umask, 0o666 & ~umask)


def test_cell_from_stage():
    assert cell_from_stage("train") == "baseline"
    assert cell_from_stage("train_depth@20-tanh") == "depth-20-tanh"
    assert cell_from_stage("depth-2-relu") == "depth-2-relu"


# --- params --------------------------------------------------------------------------------------
BAD = {
    "label starting with '-'": (lambda r: r["initializers"].update({"-rf": None}), "initializers: got '-rf'"),
    "label too long": (lambda r: r["initializers"].update({"a" * 65: "he_normal"}), "1-64 letters"),
    "case-only collision": (lambda r: r["initializers"].update({"He_Normal": None}),
                            "differs from 'he_normal' by more than letter case"),
    "shell in a label": (lambda r: r["initializers"].update({"$(touch pwned)": None}), "initializers"),
    "negative seed": (lambda r: r["train"].update(seed=-1), "train.seed: got -1"),
    "infinite learning rate": (lambda r: r["train"].update(learning_rate=float("inf")),
                               "train.learning_rate: got inf"),
    "depth learning rate": (lambda r: r["study"]["depth"].update(learning_rate=-1.0),
                            "study.depth.learning_rate"),
    "huge batch": (lambda r: r["train"].update(batch_size=10**9), "train.batch_size"),
    "huge width": (lambda r: r["model"].update(hidden=[10**7]), "model.hidden"),
    "split too small": (lambda r: r["data"].update(train_limit=100, val_fraction=0.05),
                        "data.val_fraction: got 0.05"),
    "lsuv on zeros": (lambda r: r["initializers"].update({"l": {"name": "lsuv", "base": "zeros"}}),
                      "argument 'base' must be a registered random initializer"),
    "misspelled initializer": (lambda r: r["initializers"].update({"x": "he_norml"}),
                               "did you mean 'he_normal'?"),
    "misspelled activation": (lambda r: r["model"].update(activation="rleu"), "did you mean 'relu'?"),
    "misspelled key": (lambda r: r["train"].update(optimzer="adam"), "did you mean train.optimizer?"),
    "shell in an activation": (lambda r: r["study"]["depth"].update(activations=["relu$(touch x)"]),
                               "study.depth.activations"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_values_that_would_fail_later_are_rejected_up_front(case, default_raw_params):
    edit, message = BAD[case]
    raw = copy.deepcopy(default_raw_params)
    edit(raw)
    with pytest.raises(config.ConfigError) as err:
        config.from_dict(raw)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("value", ["a/b", "", " x", 3, "x" * 129])
def test_a_bad_registered_model_name_is_rejected(value, default_raw_params):
    raw = {**copy.deepcopy(default_raw_params), "registered_model": value}
    with pytest.raises(config.ConfigError, match=r"registered_model: got .*; allowed: null"):
        config.from_dict(raw)
    assert config.from_dict({**raw, "registered_model": "initbench-best"}).registered_model == (
        "initbench-best")


def test_params_are_read_as_dvc_reads_them(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    dup = tmp_path / "dup.yaml"
    dup.write_text(text.replace("  epochs: 10\n", "  epochs: 10\n  epochs: 3\n", 1))
    with pytest.raises(config.ConfigError, match='duplicate key "epochs"'):
        config.load(dup)
    yes = tmp_path / "yes.yaml"  # YAML 1.2 (DVC): `yes` is a string, not a boolean
    yes.write_text(text.replace("standardize: false", "standardize: yes"))
    with pytest.raises(config.ConfigError, match=r"data\.standardize: got 'yes'; allowed: true or false"):
        config.load(yes)
    with pytest.raises(config.ConfigError, match=r"override 'train\.epochs=\[1' is not valid YAML"):
        config.load(ROOT / "params.yaml", ["train.epochs=[1"])


# --- MLflow --------------------------------------------------------------------------------------
def test_runs_of_dead_processes_are_marked_killed(mlflow_store):
    dead = subprocess.run([sys.executable, "-c", "from initbench import process; "
                           "print(process.owner())"], capture_output=True, text=True, check=True)
    client = MlflowClient()
    exp = client.create_experiment("reap")
    orphan = client.create_run(exp, tags={tracking.OWNER_TAG: dead.stdout.strip()}).info.run_id
    alive = client.create_run(exp, tags=tracking.owner_tag()).info.run_id
    foreign = client.create_run(exp, tags={tracking.OWNER_TAG: "other-host:1:1"}).info.run_id
    assert process.is_alive(dead.stdout.strip()) is False
    assert tracking.reap_orphans(exp) == [orphan]
    status = {r: client.get_run(r).info.status for r in (orphan, alive, foreign)}
    assert status == {orphan: "KILLED", alive: "RUNNING", foreign: "RUNNING"}


def test_a_new_store_used_by_several_processes_at_once_is_created_once(tmp_path):
    """MLflow creates and migrates a SQLite schema on first use; racing processes used to break
    it for good ("duplicate column name", "_alembic_tmp_* already exists")."""
    code = ("from initbench import tracking; import mlflow; tracking.use_project_store(); "
            "mlflow.MlflowClient().create_experiment(f'e{__import__(\"os\").getpid()}')")
    for trial in range(2):
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / f'{trial}.db'}"}
        procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
        errors = [p.communicate(timeout=300)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, errors
        client = MlflowClient(env["MLFLOW_TRACKING_URI"])
        assert len(client.search_experiments()) == 1 + 4  # Default + one per process


def test_an_interrupt_never_lands_inside_a_store_write():
    """SIGTERM during a shielded block is raised when the block ends; once the stage is stopping,
    a further SIGTERM (the watchdog's) is ignored. (A second interrupt *during* a held block, and
    a remote store's grace: tests/test_store_faults.py.)"""
    import signal

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    try:
        process.end_with_pipeline()
        finished = []
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"), process.shielded():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler has run by now: it deferred the interrupt
            finished.append("write")
        assert finished == ["write"]
        os.kill(os.getpid(), signal.SIGTERM)  # stopping: a further SIGTERM is ignored
        time.sleep(0.2)
        with pytest.raises(KeyboardInterrupt):  # outside a shielded block: at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            finished.append("never")
        assert finished == ["write"]
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_stale_run_id_in_the_environment_is_never_logged_into(mlflow_store, monkeypatch):
    client = MlflowClient()
    stale = client.create_run(client.create_experiment("old")).info.run_id
    client.set_terminated(stale, "FINISHED")
    monkeypatch.setenv("MLFLOW_RUN_ID", stale)  # left over in the shell: ignored by the stages
    parent, _ = tracking.get_or_create_parent("fresh", ROOT)
    assert parent != stale and client.get_run(parent).data.tags[tracking.ROLE_TAG] == "pipeline"
    monkeypatch.setenv(tracking.PARENT_ENV, stale)  # what `initbench pipeline` passes on
    with pytest.raises(tracking.TrackingError, match=f"{stale} names a run that is FINISHED"):
        tracking.get_or_create_parent("fresh", ROOT)


def test_a_tracking_server_that_is_down_fails_in_seconds(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # closed port
    start = time.perf_counter()
    with pytest.raises(tracking.TrackingError, match="does not answer"):
        tracking.use_project_store()
    assert time.perf_counter() - start < 30
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # restored


def test_the_default_store_is_the_projects_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))  # as DVC sets it, also in --temp/queue copies
    copy = tmp_path / ".dvc" / "tmp" / "exps" / "tmp1"  # where DVC runs such a copy's stages
    (copy / "src").mkdir(parents=True)
    for name in ("params.yaml", "dvc.yaml"):
        (copy / name).write_bytes((ROOT / name).read_bytes())
    monkeypatch.chdir(copy / "src")
    import mlflow

    try:
        assert tracking.use_project_store() == f"sqlite:///{tmp_path / 'mlflow.db'}"
        exp = mlflow.get_experiment(tracking.experiment_id("where"))
        assert exp.artifact_location == (tmp_path / "mlruns").as_uri()
    finally:
        mlflow.set_tracking_uri(None)


# --- one line per expected failure ----------------------------------------------------------
@pytest.mark.parametrize("damage", ["deflate", "truncated"])
def test_a_corrupt_archive_is_one_line(damage, tmp_path):
    import numpy as np

    npz = tmp_path / "mnist.npz"
    np.savez_compressed(npz, x_train=np.random.default_rng(0).random((200, 28, 28), np.float32))
    data = bytearray(npz.read_bytes())
    if damage == "deflate":
        data[5000:5060] = bytes(60)  # inside the compressed array data
    else:
        data = data[: len(data) // 2]
    npz.write_bytes(bytes(data))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "initbench.cli", "train", "--data", str(npz),
                           "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")],
                          cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("initbench train: ")]
    assert "Traceback" not in proc.stderr and len(lines) == 1 and ": error: " in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("fault", ["disk full", "name too long"])
def test_a_full_disk_or_an_impossible_name_is_one_line(fault, tmp_path, mnist):
    """The disk filling up mid-write (RLIMIT_FSIZE: the write fails as on a full disk, with
    EFBIG instead of ENOSPC, through the same OSError path) or an output name the file system
    refuses: one line, exit 2, and no partial file left."""
    import resource

    name = "p" if fault == "disk full" else "x" * 300
    limit = (1 << 20) if fault == "disk full" else resource.RLIM_INFINITY
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "mnist").symlink_to(mnist)
    proc = subprocess.run(
        [sys.executable, "-m", "initbench.cli", "normalize", "--raw", str(tmp_path / "raw"),
         "--out", str(tmp_path / name), "--set", "study.datasets.names=[]"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("initbench normalize: ")]
    assert "Traceback" not in proc.stderr and len(errors) == 1
    assert ("File too large" if fault == "disk full" else "File name too long") in errors[0]
    assert list(tmp_path.iterdir()) == [tmp_path / "raw"]


def test_a_bad_override_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "initbench.cli", "validate", "--set",
                           "train.epochs=[1"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("initbench validate: error: override 'train.epochs=[1' is not "
                                   "valid YAML: expected ',' or ']', but got '<stream end>' "
                                   "(line 1, column 3)")
