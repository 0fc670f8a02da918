"""Parallel sweeps on one host, under one MLflow parent run.

DVC does the work: ``dvc exp run --queue -S key=a,b`` queues one experiment per combination
(its grid syntax) and ``dvc queue start --jobs N`` runs N at a time, each in its own workspace.
This module adds what a team needs around it: every combination is validated before anything is
queued, one *sweep* run is created in the tracking store, and the workers inherit
``INITBENCH_PARENT_RUN_ID``, so every run of every experiment lands under that one parent
(:func:`initbench.tracking.get_or_create_parent`); the sweep run ends FINISHED when every
experiment succeeded, FAILED otherwise, KILLED if interrupted (the queue is then stopped).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from initbench import config

SWEEP_FORM = ("key=value, key=v1,v2,..., key=range(start,stop[,step]) or key=choice(v1,v2,...) "
              "(DVC's -S sweep syntax, Hydra's override grammar; a list [a,b] is one value)")
MAX_EXPERIMENTS = 1000  # per sweep: each is a DVC experiment and a validation of params.yaml


def grid(overrides: Sequence[str]) -> list[list[str]]:
    """``["a=1,2", "b=x"]`` -> ``[["a=1", "b=x"], ["a=2", "b=x"]]``: DVC's own expansion of its -S
    sweep syntax (Hydra's: ``a=1,2``, ``a=range(1,3)``; a list value ``[128,64]`` is one value).
    A value it cannot parse fails naming that ``--set``, keeping the parser's reason; a grid of
    more than ``MAX_EXPERIMENTS`` fails before it is expanded."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import get_hydra_sweeps
    from hydra.errors import HydraException

    total = 1
    for item in overrides:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise config.ConfigError(f"--set {item!r}: expected key=value[,value...]")
        try:  # one at a time, so the error names the argument
            total *= _count(item)
            if total <= MAX_EXPERIMENTS:
                get_hydra_sweeps({"params.yaml": [item]})  # DVC's own checks (no glob)
        except (HydraException, InvalidArgumentError, ValueError) as err:
            lines = [ln for ln in str(err).splitlines() if ln.strip() and not ln.startswith(
                ("See https://hydra.cc", "Error parsing override"))]
            reason = " ".join(" ".join(lines).split()) or type(err).__name__
            raise config.ConfigError(f"--set {item!r}: got {values!r}, which the sweep syntax "
                                     f"does not accept ({reason}); allowed: {SWEEP_FORM}") from None
        if total > MAX_EXPERIMENTS:
            raise config.ConfigError(f"--set {item!r}: the grid so far has more than "
                                     f"{MAX_EXPERIMENTS} combinations; allowed: at most "
                                     f"{MAX_EXPERIMENTS} experiments in one sweep")
    return [combo["params.yaml"] for combo in get_hydra_sweeps({"params.yaml": list(overrides)})]


def _count(item: str) -> int:
    """Values of one ``--set`` (a range is counted lazily, never expanded past the limit)."""
    from dvc.utils.hydra import to_hydra_overrides
    from hydra.core.override_parser.types import ValueType

    (override,) = to_hydra_overrides([item])
    if not override.is_discrete_sweep() or override.value_type == ValueType.GLOB_CHOICE_SWEEP:
        return 1  # a value, or a sweep DVC refuses (its own message follows)
    return sum(1 for _ in itertools.islice(override.sweep_string_iterator(), MAX_EXPERIMENTS + 1))


def validate(params_path: Path, combos: list[list[str]]) -> None:
    """Load params.yaml with every combination: the first bad value fails before any work."""
    for combo in combos:
        config.load(params_path, combo)


def _dvc(args: list[str], root: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(["dvc", *args], cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def run_sweep(root: Path, params_path: Path, overrides: Sequence[str], jobs: int, name: str,
              log: Callable[[str], None] = print, poll: float = 5.0) -> str:
    """Queue and run the grid; return the sweep run's final status."""
    from mlflow.tracking import MlflowClient

    from initbench import tracking

    combos = grid(overrides)
    validate(params_path, combos)
    experiment = config.load(params_path).experiment
    uri = tracking.use_project_store()
    client = MlflowClient()
    exp_id = tracking.experiment_id(experiment)
    parent = client.create_run(exp_id, run_name=name, tags={
        tracking.ROLE_TAG: tracking.SWEEP_ROLE, "initbench.sweep": " ".join(overrides),
        "mlflow.source.git.commit": tracking.git_commit(root).removesuffix("-dirty")}).info.run_id
    # The queue's workers inherit this environment: their stages log under the sweep run.
    env = {**os.environ, tracking.PARENT_ENV: parent, "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_RUN_ID", None)
    status, names = "FAILED", []
    try:
        queued = _dvc(["exp", "run", "--queue", *(a for o in overrides for a in ("-S", o))], root, env)
        names = [line.split("'")[1] for line in queued.splitlines() if line.startswith("Queued experiment")]
        log(f"sweep {name!r} (MLflow run {parent}): {len(combos)} experiment(s) queued, {jobs} at a time")
        _dvc(["queue", "start", "--jobs", str(jobs)], root, env)
        while True:
            # Task, Name, Created (one or more words), Status
            rows = [line.split() for line in _dvc(["queue", "status"], root, env).splitlines()]
            mine = {r[1]: r[-1] for r in rows if len(r) > 3 and r[1] in names}
            if mine and all(s not in ("Queued", "Running") for s in mine.values()):
                break
            time.sleep(poll)
        ok = sum(s == "Success" for s in mine.values())
        log(f"sweep {name!r}: {ok}/{len(names)} experiment(s) succeeded: " +
            ", ".join(f"{n} {s}" for n, s in mine.items()))
        status = "FINISHED" if ok == len(names) else "FAILED"
    except KeyboardInterrupt:
        status = "KILLED"
        if names:
            subprocess.run(["dvc", "queue", "kill", *names], cwd=root, env=env,
                           capture_output=True, check=False)
        raise
    finally:
        tracking.end_run(parent, status)
    return status
