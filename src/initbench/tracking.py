"""MLflow plumbing shared by the stages: experiment, parent run, child runs, provenance tags.

One *parent* run per pipeline execution holds the comparison and the report; one *child* run
per initializer (and per study model) holds its training and evaluation. DVC stages are separate
processes, so the parent is found rather than passed: ``$INITBENCH_PARENT_RUN_ID`` when set
(``initbench pipeline`` sets it, e.g. to the run ``mlflow run`` created), else the run tagged with
this execution's key -- the pid and start time of the ``dvc`` process that runs the stage (one
``dvc repro`` = one key) -- else a new one. Every stage marks the parent FINISHED when it is done
with it, so the parent ends with the execution's last stage and is never left RUNNING.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import mlflow
import psutil
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

PARENT_ENV = "INITBENCH_PARENT_RUN_ID"
ROLE_TAG = "initbench.role"
STAGE_TAG = "initbench.dvc_stage"
DATA_TAG = "initbench.data_sha256"
COMMIT_TAG = "initbench.git_commit"
EXECUTION_TAG = "initbench.execution"


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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def experiment_id(name: str) -> str:
    exp = mlflow.get_experiment_by_name(name)
    return exp.experiment_id if exp is not None else mlflow.create_experiment(name)


def execution_key() -> str:
    """Identifies one pipeline execution: the nearest ``dvc`` ancestor process (pid, start)."""
    me = psutil.Process()
    for proc in (me, *me.parents()):
        try:
            if any(Path(arg).name == "dvc" for arg in proc.cmdline()[:2]):
                return f"dvc-{proc.pid}-{int(proc.create_time() * 1000)}"
        except psutil.Error:
            continue
    return f"process-{me.pid}-{int(me.create_time() * 1000)}"


def get_or_create_parent(experiment: str, root: Path) -> tuple[str, str]:
    """Return (parent run id, its experiment id); see the module docstring."""
    client = MlflowClient()
    if run_id := os.environ.get(PARENT_ENV):
        return run_id, client.get_run(run_id).info.experiment_id
    exp_id = experiment_id(experiment)
    key = execution_key()
    found = client.search_runs(
        [exp_id], f"tags.`{ROLE_TAG}` = 'pipeline' and tags.`{EXECUTION_TAG}` = '{key}'",
        max_results=1)
    if found:
        return found[0].info.run_id, exp_id
    run = client.create_run(
        exp_id,
        run_name="pipeline " + time.strftime("%Y-%m-%d %H:%M:%S"),
        tags={ROLE_TAG: "pipeline", COMMIT_TAG: git_commit(root), EXECUTION_TAG: key},
    )
    return run.info.run_id, exp_id


def finish_parent(run_id: str) -> None:
    """Mark the parent FINISHED (end time = now), unless it belongs to ``mlflow run``."""
    if not os.environ.get(PARENT_ENV):
        MlflowClient().set_terminated(run_id, "FINISHED")


def start_child_run(label: str, experiment: str, root: Path, tags: dict[str, str]):
    """Start the run of one initializer (context manager).

    Under ``mlflow run -e train`` (``$MLFLOW_RUN_ID`` set, no pipeline parent) the run MLflow
    created is used; otherwise a new child of the pipeline's parent run.
    """
    tags = {ROLE_TAG: "initializer", COMMIT_TAG: git_commit(root), **tags}
    if os.environ.get("MLFLOW_RUN_ID") and not os.environ.get(PARENT_ENV):
        run = mlflow.start_run(run_id=os.environ["MLFLOW_RUN_ID"], tags=tags)
        mlflow.set_tag("mlflow.runName", label)
        return run
    parent_id, exp_id = get_or_create_parent(experiment, root)
    run = mlflow.start_run(
        experiment_id=exp_id, run_name=label, tags={**tags, "mlflow.parentRunId": parent_id}
    )
    finish_parent(parent_id)  # created RUNNING if new; it ends with the execution's last stage
    return run


def log_metrics_batch(run_id: str, step: int, values: dict[str, float]) -> None:
    """Many metrics in a single request (one epoch's, say), all at ``step``."""
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, step) for k, v in values.items()]
    MlflowClient().log_batch(run_id, metrics=metrics, synchronous=True)


def run_exists(run_id: str) -> bool:
    try:
        MlflowClient().get_run(run_id)
        return True
    except mlflow.exceptions.MlflowException:
        return False
