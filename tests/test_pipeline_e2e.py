"""End to end: the real pipeline (``dvc repro``) on a small configuration in a copy of the project.

Real MNIST files (``$INITBENCH_DATA_DIR`` or ``../shared/data/mnist``), real DVC, a real MLflow
SQLite store (MLflow's default, in the copy's root). Tests run in file order and share one copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from .conftest import ROOT

pytestmark = pytest.mark.e2e
LABELS = ("he_normal", "gaussian")
EPOCHS = 2


def copy_project(dest: Path, params_edit) -> Path:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params_edit(params)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run([*git, *cmd], cwd=dest, check=True)
    return dest


def small(params: dict) -> None:
    params["data"].update(train_limit=3000, test_limit=1000)
    params["train"]["epochs"] = EPOCHS
    params["initializers"] = {"he_normal": None, "gaussian": {"mean": 0.0, "stddev": 0.1}}


@pytest.fixture(scope="module")
def env(mnist):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "INITBENCH_PARENT_RUN_ID")}
    env["INITBENCH_DATA_DIR"] = str(mnist)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def run(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def ran_stages(proc: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout + proc.stderr))


@pytest.fixture(scope="module")
def project(tmp_path_factory, env):
    dest = copy_project(tmp_path_factory.mktemp("project"), small)
    first = run(["dvc", "repro"], dest, env)
    return dest, first


@pytest.fixture(scope="module")
def client(project) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{project[0] / 'mlflow.db'}")


def runs(client: MlflowClient, role: str):
    exp = client.get_experiment_by_name("initbench")
    return client.search_runs([exp.experiment_id], f"tags.`initbench.role` = '{role}'")


def test_every_stage_ran_and_wrote_its_outputs(project):
    root, first = project
    expected = {"download", "normalize", "compare"} | {
        f"{s}@{label}" for s in ("train", "evaluate") for label in LABELS}
    assert ran_stages(first) == expected
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert (root / "data/raw/mnist" / name).is_file()
    stats = json.loads((root / "data/processed/mnist.stats.json").read_text())
    assert stats["n"] == {"train": 2700, "val": 300, "test": 1000}
    for label in LABELS:
        history = (root / f"data/train/{label}/history.csv").read_text().splitlines()
        assert history[0].startswith("epoch,loss,accuracy,val_loss,val_accuracy")
        assert len(history) == EPOCHS + 1
        assert (root / f"data/train/{label}/model.keras").stat().st_size > 100_000
        tested = json.loads((root / f"data/eval/{label}/metrics.json").read_text())
        assert 0.8 < tested["test_accuracy"] <= 1.0  # 2 epochs on 2,700 images
        assert (root / f"data/eval/{label}/confusion.png").read_bytes()[:4] == b"\x89PNG"
    table = (root / "data/compare/compare.md").read_text()
    assert all(f"| {label} |" in table for label in LABELS)
    assert (root / "data/compare/compare.png").read_bytes()[:4] == b"\x89PNG"


def test_mlflow_holds_parent_and_child_runs(project, client):
    root, _ = project
    (parent,) = runs(client, "pipeline")
    children = {r.info.run_name: r for r in runs(client, "initializer")}
    assert set(children) == set(LABELS)
    assert parent.info.status == "FINISHED"
    data_sha = __import__("hashlib").sha256((root / "data/processed/mnist.npz").read_bytes())
    for label, child in children.items():
        run_id = child.info.run_id
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["initbench.dvc_stage"] == f"train@{label}"
        assert child.data.tags["initbench.data_sha256"] == data_sha.hexdigest()
        assert re.fullmatch(r"[0-9a-f]{40}", child.data.tags["initbench.git_commit"])
        assert child.data.params["initializer.name"] == label
        assert child.data.params["train.batch_size"] == "32"
        assert child.data.params["model.hidden"] == "[128]"
        history = client.get_metric_history(run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(1, EPOCHS + 1))
        assert 0.8 < child.data.metrics["test_accuracy"] <= 1.0
        assert {"curves", "evaluation"} <= {a.path for a in client.list_artifacts(run_id)}
        assert [i.dataset.name for i in child.inputs.dataset_inputs] == ["mnist-train"]
        assert json.loads((root / f"data/train/{label}/metrics.json").read_text())["run_id"] == run_id
        assert parent.data.tags[f"initbench.child.{label}"] == run_id
    assert children["gaussian"].data.params["initializer.stddev"] == "0.1"
    assert children["gaussian"].data.params["initializer.keras.stddev"] == "0.1"
    assert {f"test_accuracy.{label}" for label in LABELS} <= set(parent.data.metrics)
    assert "comparison" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_logged_model_has_a_signature_and_loads(project, client):
    import mlflow

    child = next(r for r in runs(client, "initializer") if r.info.run_name == "he_normal")
    mlflow.set_tracking_uri(client.tracking_uri)
    try:
        (model,) = mlflow.search_logged_models(
            experiment_ids=[child.info.experiment_id],
            filter_string=f"source_run_id = '{child.info.run_id}'", output_format="list")
        info = mlflow.models.get_model_info(f"models:/{model.model_id}")
        assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 28, 28]
        loaded = mlflow.tensorflow.load_model(f"models:/{model.model_id}")
        assert loaded.count_params() == 101_770
    finally:
        mlflow.set_tracking_uri(None)


def test_second_repro_runs_nothing(project, env):
    second = run(["dvc", "repro"], project[0], env)
    assert ran_stages(second) == set()
    assert "Data and pipelines are up to date" in second.stdout


def test_metrics_and_plots_commands(project, env):
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project[0], env).stdout)
    assert shown  # per-file metrics of the workspace
    out = run(["dvc", "plots", "show", "--json"], project[0], env).stdout
    assert "data/train/he_normal/history.csv" in out and "data/compare/compare.png" in out


def test_same_seed_gives_identical_results(project, env):
    root = project[0]
    before = (root / "data/train/he_normal/history.csv").read_text().splitlines()
    run(["dvc", "repro", "--force", "-s", "train@he_normal"], root, env)
    after = (root / "data/train/he_normal/history.csv").read_text().splitlines()
    strip = lambda rows: [r.rsplit(",", 1)[0] for r in rows]  # noqa: E731 - drop epoch_seconds
    assert strip(after) == strip(before)


def test_changing_one_initializer_reruns_only_its_stages(project, env, client):
    root = project[0]
    original = json.loads((root / "data/train/gaussian/metrics.json").read_text())["run_id"]
    path = root / "params.yaml"
    text = path.read_text()
    path.write_text(text.replace("stddev: 0.1", "stddev: 0.2"))
    changed = run(["dvc", "repro"], root, env)
    # he_normal was retrained by the previous test, so its evaluate stage reruns too.
    assert ran_stages(changed) - {"evaluate@he_normal"} == {"train@gaussian", "evaluate@gaussian",
                                                           "compare"}
    # Back to the original value: DVC restores the outputs from its run cache without training,
    # and they still point at the MLflow run that produced them.
    path.write_text(text)
    restored = run(["dvc", "repro"], root, env)
    assert "train@gaussian" not in ran_stages(restored)
    assert json.loads((root / "data/train/gaussian/metrics.json").read_text())["run_id"] == original
    compared = json.loads((root / "data/compare/compare.json").read_text())
    assert compared["gaussian"]["run_id"] == original
    assert client.get_run(original).info.run_name == "gaussian"


def test_invalid_params_fail_before_any_work(tmp_path, env):
    def bad(params):
        small(params)
        params["train"]["epochs"] = 0

    root = copy_project(tmp_path, bad)
    proc = run(["dvc", "repro"], root, env, check=False)
    assert proc.returncode != 0
    assert "train.epochs: got 0; allowed: an integer > 0" in proc.stderr + proc.stdout
    assert not (root / "data").exists()


def test_mlproject_entry_points(project, env, client):
    """`mlflow run . -e train/evaluate` with the parameter names of params.yaml (runs last)."""
    root = project[0]
    common = ["mlflow", "run", ".", "--env-manager", "local", "--experiment-name", "initbench"]
    run([*common, "-e", "train", "-P", "initializer=gaussian", "-P", "epochs=1"], root, env)
    trained = json.loads((root / "data/train/gaussian/metrics.json").read_text())
    mlrun = client.get_run(trained["run_id"])
    assert mlrun.info.run_name == "gaussian" and mlrun.data.params["train.epochs"] == "1"
    assert mlrun.data.tags["mlflow.project.entryPoint"] == "train"
    assert "mlflow.parentRunId" not in mlrun.data.tags
    run([*common, "-e", "evaluate", "-P", "initializer=gaussian"], root, env)
    assert "test_accuracy" in client.get_run(trained["run_id"]).data.metrics
