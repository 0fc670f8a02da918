"""MLflow plumbing shared by the stages: the store and its check, experiment, runs' lifecycle.

One *parent* run per pipeline execution holds the report; one *child* run per model (initializer
x seed of a cell) holds its parameters, curves, test metrics, diagnostics and model. DVC stages are separate
processes, so the parent is found rather than passed: ``$INITBENCH_PARENT_RUN_ID`` when set
(``initbench pipeline`` sets it, e.g. to the run ``mlflow run`` created), else the run tagged with
this execution's key -- the pid and start time of the ``dvc`` process that runs the stage (one
``dvc repro`` = one key) -- else a new one. Every stage marks the parent FINISHED when it is done
with it, so the parent ends with the execution's last stage and is never left RUNNING. Every run
ends through :func:`end_run`; one whose writer died, or that a hung store would not end, is marked
KILLED at the next start (:func:`reap_orphans`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import psutil
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from initbench import process, storecheck
from initbench.locations import artifact_root, scratch_reason, store_uri
from initbench.locations import store_root as store_root  # re-exported: the one store's root

PARENT_ENV = "INITBENCH_PARENT_RUN_ID"
ROLE_TAG = "initbench.role"
SWEEP_ROLE = "sweep"  # a parent run shared by the experiments of `initbench sweep`
STAGE_TAG = "initbench.dvc_stage"
DATA_TAG = "initbench.data_sha256"
COMMIT_TAG = "initbench.git_commit"
EXECUTION_TAG = "initbench.execution"
OWNER_TAG = "initbench.process"  # host:pid:start of the process writing the run


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


def use_project_store() -> str:
    """Point MLflow at ``$MLFLOW_TRACKING_URI``, else at the project's ``mlflow.db``; make sure
    the store answers, in seconds: a store that is down, damaged or of another MLflow version
    fails here, before any training, in one line that says why. Every later request has a
    budget of seconds (:mod:`initbench.storecheck`)."""
    mlflow.set_tracking_uri(store_uri())  # a relative sqlite:/// path: the project root's file
    uri = mlflow.get_tracking_uri()
    try:
        with storecheck.budget(storecheck.CHECK), storecheck.creation_lock(uri):
            storecheck.create_sqlite(uri, artifact_root(uri))
            MlflowClient().search_experiments(max_results=1)
    except Exception as err:  # any failure to use the store is one line with its reason
        raise TrackingError(storecheck.problem(uri, err)) from None
    remote = storecheck.is_remote(uri)
    if remote:
        storecheck.bound_requests()
    process.set_grace(storecheck.GRACE_S if remote else None)
    return uri


# MLflow 3's UI opens an experiment of this kind on its runs table (not on a GenAI overview).
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"


def experiment_id(name: str) -> str:
    """The id of the experiment ``name``, created if needed (a model-training experiment), its
    artifacts beside a SQLite store (:func:`initbench.locations.artifact_root`). An existing one
    whose artifacts sit in a scratch directory (``.quick/mlruns``, made by an older ``make
    quick``) is said so in one line, with the fix: MLflow cannot move an experiment's artifacts."""
    artifacts = artifact_root(mlflow.get_tracking_uri())
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        return mlflow.create_experiment(name, artifact_location=artifacts and artifacts.as_uri(),
                                        tags={KIND_TAG: KIND})
    if KIND_TAG not in exp.tags:
        MlflowClient().set_experiment_tag(exp.experiment_id, KIND_TAG, KIND)
    if artifacts and (why := scratch_reason(exp.artifact_location, artifacts.parent)):
        print(f"warning: MLflow experiment {name!r} keeps its artifacts in {exp.artifact_location}"
              f", {why}: they are lost with it, and MLflow cannot move them; for a fresh one in "
              f"{artifacts}: mlflow experiments rename -x {exp.experiment_id} --new-name "
              f"'{name}-old'", file=sys.stderr)
    return exp.experiment_id


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


_left: list[str] = []  # runs the store did not take an end for while the stage was stopping


def end_run(run_id: str, status: str) -> None:
    """End a run FINISHED, KILLED or FAILED (end time = now): the one way a run is ended here.

    While the stage is being stopped (Ctrl-C, SIGTERM) the store gets one short try, and none
    once a call to it has hung or failed: a run it does not take stays RUNNING, tagged with this
    process (dead by then), and the next start marks it KILLED (:func:`reap_orphans`); the stage's
    last line says so. Otherwise a store error is raised, as from any other call."""
    if not process.stopping():
        with process.shielded():
            MlflowClient().set_terminated(run_id, status)
        return
    if not (_left or process.cut_short()):
        try:
            with storecheck.budget(storecheck.STOPPING), process.shielded():
                MlflowClient().set_terminated(run_id, status)
            return
        except STORE_ERRORS:
            pass
    _left.append(run_id)
    process.stop_note(f"the MLflow store {mlflow.get_tracking_uri()} did not answer: "
                      f"{len(_left)} open run(s) left RUNNING, marked KILLED by the next start")


@process.shielded()
def reap_orphans(exp_id: str) -> list[str]:
    """Mark KILLED every RUNNING run of this host whose writing process is gone, in the
    experiment and its study's (``<name>-depth``, ``<name>-phase`` ...); return them."""
    client, reaped = MlflowClient(), []
    name = client.get_experiment(exp_id).name
    ids = [exp_id] + ([e.experiment_id for e in client.search_experiments(
        filter_string=f"name LIKE '{name}-%'") if e.name.startswith(f"{name}-")]
        if re.fullmatch(r"[\w .-]+", name) else [])  # (a name MLflow's filter can quote)
    for run in client.search_runs(ids, "attributes.status = 'RUNNING'", max_results=5000):
        if process.is_alive(run.data.tags.get(OWNER_TAG, "")) is False:
            end_run(run.info.run_id, "KILLED")
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
        _reap(info.experiment_id)
        return run_id, info.experiment_id
    exp_id = experiment_id(experiment)
    _reap(exp_id)
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


def _reap(exp_id: str) -> None:
    if reaped := reap_orphans(exp_id):
        print(f"marked {len(reaped)} run(s) KILLED: their process died without ending them")


def finish_parent(run_id: str, status: str = "FINISHED") -> None:
    """End the parent (end time = now), unless it belongs to ``mlflow run``."""
    if not os.environ.get(PARENT_ENV):
        end_run(run_id, status)


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
            # The stage's outcome (its work written, or its own error) outweighs the record: a
            # store that went down costs the record only; the next start marks the run KILLED.
            print(f"warning: could not end the parent run {parent} "
                  f"({' '.join(str(err).split())[:200]})", file=sys.stderr)
