"""End-to-end case: the article's experiment, as whole processes, initbench vs plain Keras.

The experiment: initializers random_normal (stddev 0.05), gaussian (stddev 0.1), glorot_uniform,
he_normal; 784-128-10 ReLU MLP, Adam lr 0.001, batch 32, train.epochs epochs, one seed, the full
training split; every model tested, logged to MLflow and saved, then compared.

  (a) initbench: ``dvc repro`` in a fresh copy of the project (params.yaml: those initializers,
      study.seeds 1, only the pipeline's cell) that already holds the processed archive -- so it
      runs the stages train, train_lr_sweep (no model: written without TensorFlow) and report;
      MLflow goes to the copy's own default store (mlflow.db).
  (b) bench/article_keras.py, the same work written as a user would (one model.fit each).

One template copy per invocation (files of the working tree, data/raw/<dataset>, params, git,
`dvc repro normalize`, untimed); each repeat copies it afresh and times (a) and (b) interleaved.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ARTICLE = {"random_normal": {"stddev": 0.05}, "gaussian": {"mean": 0.0, "stddev": 0.1},
           "glorot_uniform": None, "he_normal": None}
# The learning-rate sweep's stage always exists: with no other rate it writes an empty cell.
EXPECTED_STAGES = {"train", "train_lr_sweep", "report"}
TARGET = 4.0


def clean_env() -> dict[str, str]:
    """The environment of a user's shell: the venv first on PATH, no inherited MLflow run or root."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME",
                        "MLFLOW_EXPERIMENT_ID", "INITBENCH_PARENT_RUN_ID", "INITBENCH_ROOT")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def sh(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd} (exit {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


def article_params(epochs: int | None) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["initializers"] = dict(ARTICLE)
    raw["study"]["seeds"] = 1
    # Only the pipeline's cell: no depth, strategy, conv or phase cells, learning-rate sweep or
    # second dataset.
    raw["study"]["depth"]["depths"] = []
    raw["study"]["strategies"]["variants"] = {}
    raw["study"]["conv"]["depths"] = []
    raw["study"]["phase"]["depths"] = []
    raw["study"]["lr_sweep"]["learning_rates"] = []
    raw["study"]["datasets"]["names"] = []
    # The article's model and optimizer (today also the repo's defaults), on the full split.
    raw["model"].update(hidden=[128], activation="relu")
    raw["train"].update(optimizer="adam", learning_rate=0.001, batch_size=32)
    raw["data"].update(train_limit=None, test_limit=None)
    if epochs:
        raw["train"]["epochs"] = epochs
    return raw


def make_template(dest: Path, epochs: int | None, env: dict[str, str]) -> tuple[Path, dict]:
    params = article_params(epochs)
    dataset = params["data"]["dataset"]
    raw_dir = ROOT / "data" / "raw" / dataset
    if not raw_dir.is_dir():
        sys.exit(f"{raw_dir} is missing: run `dvc repro normalize` first")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() or src.is_symlink():  # ls-files -c also lists deleted files
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name, follow_symlinks=False)
    shutil.copytree(raw_dir, dest / "data" / "raw" / dataset)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    sh(["git", "init", "-q"], dest, env)
    sh(["git", "add", "-A"], dest, env)
    sh([*git, "commit", "-q", "-m", "bench template"], dest, env)
    # The raw files are already here: record them as the download stage's output (no network).
    sh(["dvc", "commit", "-f", "-q", "download"], dest, env)
    sh(["dvc", "repro", "normalize"], dest, env)
    sh(["git", "add", "-A"], dest, env)
    sh([*git, "commit", "-q", "--allow-empty", "-m", "processed data"], dest, env)
    return dest, params


def run_dvc(template: Path, work: Path, env: dict[str, str]) -> dict:
    copy = work / "project"
    shutil.copytree(template, copy, symlinks=True)
    t = time.perf_counter()
    proc = sh(["dvc", "repro"], copy, env)
    seconds = time.perf_counter() - t
    stages = set(re.findall(r"Running stage '([^']+)'", proc.stdout))
    if stages != EXPECTED_STAGES:
        raise RuntimeError(f"dvc repro ran stages {stages}, expected {EXPECTED_STAGES}:\n{proc.stdout}")
    if "### Comparison" not in (copy / "reports" / "report.md").read_text():
        raise RuntimeError(f"{copy}/reports/report.md has no '### Comparison' section")
    if not (copy / "mlflow.db").is_file():
        raise RuntimeError(f"MLflow did not log to the copy's own store {copy}/mlflow.db")
    metrics = copy / "data" / "train" / "baseline" / "metrics"
    acc = {label: json.loads((metrics / f"{label}.json").read_text())["test_accuracy"]
           for label in ARTICLE}
    shutil.rmtree(copy)
    train_log = re.findall(r"^baseline: \d+ models, .*$", proc.stdout, re.MULTILINE)
    return {"seconds": seconds, "stages": sorted(stages), "test_accuracy": acc, "train_stage_log": train_log}


def run_keras(template: Path, work: Path, params: dict, env: dict[str, str]) -> dict:
    out = work / "keras"
    npz = template / "data" / "processed" / f"{params['data']['dataset']}.npz"
    cmd = [sys.executable, str(ROOT / "bench" / "article_keras.py"), "--data", str(npz),
           "--out", str(out), "--epochs", str(params["train"]["epochs"]),
           "--seed", str(params["train"]["seed"])]
    t = time.perf_counter()
    sh(cmd, work, env)
    seconds = time.perf_counter() - t
    acc = {k: v["test_accuracy"] for k, v in json.loads((out / "results.json").read_text()).items()}
    shutil.rmtree(out)
    return {"seconds": seconds, "test_accuracy": acc}


def run_e2e(repeats: int, epochs: int | None) -> dict:
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="initbench-e2e-") as tmp:
        print("e2e: preparing the template copy (untimed: copy, git, dvc repro normalize)", flush=True)
        template, params = make_template(Path(tmp) / "template", epochs, env)
        dvc, keras = [], []
        for r in range(repeats):
            with tempfile.TemporaryDirectory(dir=tmp) as work:
                dvc.append(run_dvc(template, Path(work), env))
                print(f"e2e repeat {r + 1}/{repeats}: dvc repro {dvc[-1]['seconds']:.1f} s", flush=True)
                keras.append(run_keras(template, Path(work), params, env))
                print(f"e2e repeat {r + 1}/{repeats}: keras script {keras[-1]['seconds']:.1f} s",
                      flush=True)
    med_dvc = statistics.median(r["seconds"] for r in dvc)
    med_keras = statistics.median(r["seconds"] for r in keras)
    return {
        "work": {"initializers": ARTICLE, "hidden": [128], "optimizer": "adam", "learning_rate": 0.001,
                 "batch_size": 32, "epochs": params["train"]["epochs"], "seeds": 1},
        "dvc_repro_seconds": [r["seconds"] for r in dvc],
        "keras_script_seconds": [r["seconds"] for r in keras],
        "dvc_repro_median_s": med_dvc, "keras_script_median_s": med_keras,
        "end_to_end_speedup": med_keras / med_dvc, "target": TARGET,
        "stages_ran": dvc[0]["stages"], "train_stage_log": [r["train_stage_log"] for r in dvc],
        "test_accuracy": {"initbench": dvc[0]["test_accuracy"], "keras": keras[0]["test_accuracy"]},
    }
