"""MLflow plumbing shared by the stages: experiment, the parent run's lifecycle, batch logging.

One *parent* run per pipeline execution holds the report; one *child* run per model (initializer
x seed of a cell) holds its parameters, curves, test metrics, diagnostics and model. DVC stages are separate
processes, so the parent is found rather than passed: ``$INITBENCH_PARENT_RUN_ID`` when set
(``initbench pipeline`` sets it, e.g. to the run ``mlflow run`` created), else the run tagged with
this execution's key -- the pid and start time of the ``dvc`` process that runs the stage (one
``dvc repro`` = one key) -- else a new one. Every stage marks the parent FINISHED when it is done
with it, so the parent ends with the execution's last stage and is never left RUNNING.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import psutil
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from initbench import process
from initbench.paths import find_root

PARENT_ENV = "INITBENCH_PARENT_RUN_ID"
ROLE_TAG = "initbench.role"
SWEEP_ROLE = "sweep"  # a parent run shared by the experiments of `initbench sweep`
STAGE_TAG = "initbench.dvc_stage"
DATA_TAG = "initbench.data_sha256"
COMMIT_TAG = "initbench.git_commit"
EXECUTION_TAG = "initbench.execution"
OWNER_TAG = "initbench.process"  # host:pid:start of the process writing the run
_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch request


class TrackingError(RuntimeError):
    """The MLflow store cannot be used (e.g. a tracking server that does not answer)."""


# What a store that is down, full or broken raises (requests' errors are OSErrors).
STORE_ERRORS = (MlflowException, OSError)


def git_commit(root: Path) -> str:
    """HEAD's commit (``-dirty`` if tracked files changed), or ``unknown`` outside git."""
    try:
        run = lambda *a: subprocess.run(  # noqa: E731
            ["git", *a], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        commit = run("rev-parse", "HEAD")
        # dvc.lock changes on every repro; anything else uncommitted marks the commit dirty.
        dirty = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":!dvc.lock")
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance_tags(root: Path, stage: str, data_sha: str) -> dict[str, str]:
    """Where a run comes from: the commit (also as MLflow's own ``mlflow.source.git.commit``,
    which the UI shows), the DVC stage and the processed data's SHA-256."""
    commit = git_commit(root)
    return {COMMIT_TAG: commit, "mlflow.source.git.commit": commit.removesuffix("-dirty"),
            STAGE_TAG: stage, DATA_TAG: data_sha}


def store_root() -> Path:
    """Where the project's one default store lives: ``$DVC_ROOT`` -- the project's own workspace
    even for ``dvc exp run --temp`` and queued experiments, whose stages run in a throwaway
    copy -- else the project root (whatever the working directory)."""
    return Path(os.environ.get("DVC_ROOT") or find_root()).resolve()


@contextmanager
def _creation_lock(uri: str) -> Iterator[None]:
    """Serialise the first use of a SQLite store across processes: MLflow creates and migrates
    the schema on first use, and two processes doing it at once (``dvc queue start --jobs 2``)
    can leave the store broken for good."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri.removeprefix("sqlite:///").split("?")[0])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def use_project_store() -> str:
    """Point MLflow at ``$MLFLOW_TRACKING_URI``, else at the project's ``mlflow.db``; make sure
    the store answers, in seconds: a server that is down fails here, before any training."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        mlflow.set_tracking_uri(f"sqlite:///{store_root() / 'mlflow.db'}")
    uri = mlflow.get_tracking_uri()
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {k: os.environ.get(k) for k in quick}
    os.environ.update(quick)
    try:
        with _creation_lock(uri):
            MlflowClient().search_experiments(max_results=1)
    except Exception as err:  # any failure to reach the store is the same one-line error
        raise TrackingError(f"the MLflow tracking store {uri} does not answer "
                            f"({type(err).__name__}); start it, or unset MLFLOW_TRACKING_URI to "
                            "use the project's own store") from None
    finally:
        for k, v in saved.items():  # restore: later requests keep MLflow's own retries
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return uri


# MLflow 3's UI opens an experiment of this kind on its runs table (not on a GenAI overview).
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"


def experiment_id(name: str) -> str:
    """The id of the experiment ``name``, created if needed (a model-training experiment)."""
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        if KIND_TAG not in exp.tags:
            MlflowClient().set_experiment_tag(exp.experiment_id, KIND_TAG, KIND)
        return exp.experiment_id
    # In the project's own store, artifacts live beside it, never in a stage's working copy.
    local = mlflow.get_tracking_uri().startswith("sqlite:")
    return mlflow.create_experiment(
        name, artifact_location=(store_root() / "mlruns").as_uri() if local else None,
        tags={KIND_TAG: KIND})


def execution_key() -> str:
    """Identifies one pipeline execution: the nearest ``dvc`` ancestor process (pid, start)."""
    proc = process.dvc_process()
    if proc is not None:
        return f"dvc-{proc.pid}-{int(proc.create_time() * 1000)}"
    me = psutil.Process()
    return f"process-{me.pid}-{int(me.create_time() * 1000)}"


def owner_tag() -> dict[str, str]:
    """Tags a run with the process that writes it, so a run whose writer died (SIGKILL, the OOM
    killer) can be told from one that is still going: see :func:`reap_orphans`."""
    return {OWNER_TAG: process.owner()}


@process.shielded()
def reap_orphans(exp_id: str) -> list[str]:
    """Mark KILLED every RUNNING run of this host whose writing process is gone; return them."""
    client, reaped = MlflowClient(), []
    for run in client.search_runs([exp_id], "attributes.status = 'RUNNING'", max_results=5000):
        if process.is_alive(run.data.tags.get(OWNER_TAG, "")) is False:
            client.set_terminated(run.info.run_id, "KILLED")
            reaped.append(run.info.run_id)
    return reaped


@process.shielded()
def get_or_create_parent(experiment: str, root: Path) -> tuple[str, str]:
    """Return (parent run id, its experiment id); see the module docstring."""
    client = MlflowClient()
    if run_id := os.environ.get(PARENT_ENV):  # set by `initbench pipeline` under `mlflow run`
        info = client.get_run(run_id).info
        if info.status != "RUNNING":  # a leftover from an earlier shell: never log into it
            raise TrackingError(f"{PARENT_ENV}={run_id} names a run that is {info.status}, not "
                                f"the running `mlflow run`: a stale value; unset it")
        return run_id, info.experiment_id
    exp_id = experiment_id(experiment)
    if reaped := reap_orphans(exp_id):
        print(f"marked {len(reaped)} run(s) KILLED: their process died without ending them")
    key = execution_key()
    found = client.search_runs(
        [exp_id], f"tags.`{ROLE_TAG}` = 'pipeline' and tags.`{EXECUTION_TAG}` = '{key}'",
        max_results=1)
    if found:  # a later stage of the execution: the parent runs again until that stage ends
        client.update_run(found[0].info.run_id, status="RUNNING")
        return found[0].info.run_id, exp_id
    run = client.create_run(
        exp_id,
        # `dvc exp run` names its experiment: the parent carries that name.
        run_name=os.environ.get("DVC_EXP_NAME") or "pipeline " + time.strftime("%Y-%m-%d %H:%M:%S"),
        tags={ROLE_TAG: "pipeline", COMMIT_TAG: git_commit(root), EXECUTION_TAG: key,
              "mlflow.source.git.commit": git_commit(root).removesuffix("-dirty"), **owner_tag()},
    )
    return run.info.run_id, exp_id


@process.shielded()
def finish_parent(run_id: str, status: str = "FINISHED") -> None:
    """End the parent (end time = now), unless it belongs to ``mlflow run``."""
    if not os.environ.get(PARENT_ENV):
        MlflowClient().set_terminated(run_id, status)


@contextmanager
def parent_run(experiment: str, root: Path) -> Iterator[tuple[str, str]]:
    """The pipeline execution's parent run, (run id, experiment id), for the length of a stage.

    Every stage that logs finds (or creates) the parent this way and marks it FINISHED when it is
    done with it, so the parent ends with the execution's last stage and is never left RUNNING; a
    stage that is interrupted or fails ends it KILLED or FAILED (DVC runs no later stage then).
    """
    parent, exp_id = get_or_create_parent(experiment, root)
    if not os.environ.get(PARENT_ENV):  # `mlflow run` owns its own run
        with process.shielded():
            MlflowClient().set_tag(parent, OWNER_TAG, owner_tag()[OWNER_TAG])
    status = "FAILED"
    try:
        yield parent, exp_id
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        try:
            finish_parent(parent, status)
        except STORE_ERRORS as err:
            if status != "FINISHED":
                raise
            # The stage's work is done and written: a store that went down costs the record only.
            print(f"warning: could not end the parent run {parent} ({type(err).__name__})")


def log_metrics_batch(run_id: str, step: int, values: dict[str, float]) -> None:
    """Many metrics in a single request (one epoch's, say), all at ``step``."""
    now = int(time.time() * 1000)
    log_metrics(run_id, [Metric(k, float(v), now, step) for k, v in values.items()])


@process.shielded()
def log_metrics(run_id: str, metrics: list[Metric]) -> None:
    """Any number of metrics, in as few requests as MLflow allows (1000 metrics per batch)."""
    client = MlflowClient()
    for i in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[i:i + _BATCH], synchronous=True)


@process.shielded()
def log_params(run_id: str, params: dict[str, object]) -> None:
    MlflowClient().log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
