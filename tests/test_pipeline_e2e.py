"""End to end: the real pipeline (``dvc repro``) with the ``quick`` profile in a copy of the project.

Real MNIST files (``$INITBENCH_DATA_DIR`` or ``../shared/data/mnist``), real DVC, a real MLflow
SQLite store (MLflow's default, in the copy's root). The quick profile (profiles/quick.yaml) is the
documented small configuration: 3,000 training images, 2 epochs, three initializers, and a study
of two depths x two activations. Tests run in file order and share one copy.
"""

from __future__ import annotations

import csv
import hashlib
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
LABELS = ("he_normal", "gaussian", "glorot_uniform")
EPOCHS = 2
CELLS = ("2-relu", "2-tanh", "5-relu", "5-tanh")


def edit_params(root: Path, edit) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    edit(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def copy_project(dest: Path, env: dict, params_edit=None) -> Path:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    run(["initbench", "profile", "quick"], dest, env)
    if params_edit is not None:
        edit_params(dest, params_edit)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run([*git, *cmd], cwd=dest, check=True)
    return dest


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
    dest = copy_project(tmp_path_factory.mktemp("project"), env)
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
    expected = {"download", "normalize", "compare", "study_baseline", "report"} | {
        f"{s}@{label}" for s in ("train", "evaluate") for label in LABELS} | {
        f"study_depth@{cell}" for cell in CELLS}
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
    study = runs(client, "study")
    assert len(study) == 3 * 2 + 4 * 5 * 2  # baseline: 3 inits x 2 seeds; 4 cells x 5 x 2
    assert {r.data.tags["mlflow.parentRunId"] for r in study} == {parent.info.run_id}
    deep = next(r for r in study if r.data.tags["initbench.cell"] == "depth-5-tanh")
    assert "diagnostics.json" in {a.path for a in client.list_artifacts(deep.info.run_id)}
    steps = [m.step for m in client.get_metric_history(deep.info.run_id, "diag.act_std.L4")]
    assert steps == [0, 1]  # at initialization and after the one epoch
    assert set(children) == set(LABELS)
    assert parent.info.status == "FINISHED"
    data_sha = hashlib.sha256((root / "data/processed/mnist.npz").read_bytes())
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


def test_study_cells_and_report(project):
    import keras

    root = project[0]
    base = json.loads((root / "data/study/baseline/results.json").read_text())
    assert sorted((m["label"], m["seed_index"]) for m in base["members"]) == sorted(
        (label, i) for label in LABELS for i in range(2))
    assert all(len(m["history"]) == EPOCHS for m in base["members"])
    saved = sorted(p.name for p in (root / "data/study/baseline/models").glob("*.keras"))
    assert saved == sorted(f"{label}-s{i}.keras" for label in LABELS for i in range(2))
    reloaded = keras.models.load_model(root / "data/study/baseline/models/he_normal-s1.keras")
    assert reloaded.count_params() == 101_770
    for cell in CELLS:
        depth = int(cell.split("-")[0])
        results = json.loads((root / f"data/study/depth/{cell}/results.json").read_text())
        assert len(results["members"]) == 5 * 2
        for m in results["members"]:
            diag = m["diagnostics"]
            assert len(diag["act_std"]) == 1 + 1  # at init + 1 epoch
            assert len(diag["grad_norm"][0]) == depth + 1  # hidden layers + output
    report = (root / "reports/report.md").read_text()
    for cell in CELLS:
        depth, act = cell.split("-")
        assert f"### {depth} hidden layers, {act}" in report
    assert "### The study's starting claims" in report
    assert "Deep tanh with N(0,1) saturates" in report
    for name in ("accuracy_vs_depth", "activation_std_at_init", "gradient_norm_at_init",
                 "baseline_curves"):
        assert (root / f"reports/figures/{name}.png").read_bytes()[:4] == b"\x89PNG"
    for stat in ("act_std", "grad_norm", "dead_fraction"):
        with (root / f"reports/diagnostics/{stat}/depth-5-tanh.csv").open() as f:
            rows = list(csv.DictReader(f))
        layers = 6 if stat != "dead_fraction" else 5  # softmax has no dead/saturated fraction
        assert len(rows) == 5 * layers * 2  # initializers x layers x (init + 1 epoch)
        assert {r["seeds"] for r in rows} == {"2"}
    summary = json.loads((root / "reports/summary.json").read_text())
    assert set(summary) == {"baseline"} | {f"depth-{c}" for c in CELLS}
    assert set(summary["depth-5-tanh"]["initializers"]) == {
        "gaussian_1", "gaussian_001", "glorot_uniform", "he_normal", "lsuv"}


def test_second_repro_runs_nothing(project, env):
    second = run(["dvc", "repro"], project[0], env)
    assert ran_stages(second) == set()
    assert "Data and pipelines are up to date" in second.stdout


def test_metrics_and_plots_commands(project, env):
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project[0], env).stdout)
    assert shown  # per-file metrics of the workspace
    out = run(["dvc", "plots", "show", "--json"], project[0], env).stdout
    assert "data/train/he_normal/history.csv" in out and "data/compare/compare.png" in out
    # The diagnostics render through the project's own Vega-Lite template.
    html = project[0] / "plots_html"
    run(["dvc", "plots", "show", "reports/diagnostics/act_std", "-o", str(html)], project[0], env)
    page = (html / "index.html").read_text()
    assert "reports/diagnostics/act_std/depth-5-tanh.csv" in page
    assert '"color": {"field": "initializer"' in page and '"type": "log"' in page


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
    edit_params(root, lambda p: p["initializers"]["gaussian"].update(stddev=0.2))
    changed = run(["dvc", "repro"], root, env)
    # he_normal was retrained by the previous test, so its evaluate stage reruns too. The
    # baseline study trains every initializer in one stack, so it (and the report) rerun.
    assert ran_stages(changed) - {"evaluate@he_normal"} == {
        "train@gaussian", "evaluate@gaussian", "compare", "study_baseline", "report"}
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
        params["train"]["epochs"] = 0

    root = copy_project(tmp_path, env, bad)
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
