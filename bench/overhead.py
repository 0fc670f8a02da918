"""Overhead case: what a stage pays besides training, measured apart.

  * the train stage's imports (initbench.cli + initbench.train.stage: TensorFlow, Keras, MLflow),
    each in a fresh process (median of 3);
  * `initbench validate` and `initbench --help` as whole processes from the repo root (median
    of 3): validation no longer imports TensorFlow, so it must stay well under 1 s;
  * MLflow store and run creation (SQLite store);
  * `dvc --version` and a no-op `dvc repro` (measured only when `dvc status` says the pipeline is
    up to date: a stale stage would otherwise retrain).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VALIDATE_TARGET_S = 1.0


def _exe(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def _env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def process_seconds(cmd: list[str], n: int = 3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return statistics.median(times)


def cli_overhead() -> dict:
    validate = process_seconds([_exe("initbench"), "validate"])
    return {"initbench_validate_s": validate, "initbench_validate_target_s": VALIDATE_TARGET_S,
            "initbench_validate_ok": validate < VALIDATE_TARGET_S,
            "initbench_help_s": process_seconds([_exe("initbench"), "--help"])}


def mlflow_overhead() -> dict:
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp}/m.db")
        t = time.perf_counter()
        exp = client.create_experiment("bench")
        first = time.perf_counter() - t
        times = []
        for i in range(5):
            t = time.perf_counter()
            run = client.create_run(exp, run_name=f"r{i}")
            client.log_batch(run.info.run_id, params=[])
            client.set_terminated(run.info.run_id)
            times.append(time.perf_counter() - t)
    return {"store_creation_s": first, "run_creation_s": statistics.median(times)}


def dvc_overhead() -> dict:
    dvc = _exe("dvc")
    out = {"dvc_version_s": process_seconds([dvc, "--version"], 1)}
    if subprocess.run([dvc, "status", "--quiet"], cwd=ROOT, env=_env(), capture_output=True,
                      check=False).returncode:
        print("dvc status: the pipeline is not up to date; no-op `dvc repro` not measured", flush=True)
        return out | {"dvc_noop_repro_s": None}
    t = time.perf_counter()
    proc = subprocess.run([dvc, "repro"], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          check=False)
    return out | {"dvc_noop_repro_s": time.perf_counter() - t,
                  "dvc_noop_repro_ran_nothing": "Running stage" not in proc.stdout}


def overhead(job: Callable[[dict], dict]) -> dict:
    imports = [job({"mode": "import"})["seconds"] for _ in range(3)]
    return {"stage_imports_s": statistics.median(imports), **cli_overhead(), **mlflow_overhead(),
            **dvc_overhead()}
