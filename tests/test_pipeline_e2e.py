"""End to end: the real pipeline (``dvc repro``) with the ``quick`` profile in a copy of the project.

Real MNIST files (``$INITBENCH_DATA_DIR`` or ``../shared/data/mnist``), real DVC, a real MLflow
SQLite store (MLflow's default, in the copy's root). The quick profile (profiles/quick.yaml) is the
documented small configuration: 3,000 training images, 2 epochs, three initializers x 2 seeds,
and depth cells of two depths x two activations. Tests run in file order and share one copy.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .conftest import copy_project, edit_params, ran_stages, run

pytestmark = pytest.mark.e2e
LABELS = ("he_normal", "gaussian", "glorot_uniform")
EPOCHS = 2
SEEDS = 2
CELLS = ("2-relu", "2-tanh", "5-relu", "5-tanh")
PHASE = ("3-relu", "3-tanh")  # 3 sigma_w x 2 seeds each
SWEPT = len(LABELS) * 1 * SEEDS  # the learning-rate sweep: one other rate
FASHION = len(LABELS) * SEEDS  # the pipeline's cell on Fashion-MNIST (study.datasets)
STRATEGIES = ("adam", "weight_decay", "cosine")  # each retrains depth-5-relu's 5 x 2 models
CONV = ("2-relu",)  # one CNN cell: 3 initializers x 2 seeds
MODELS = (len(LABELS) * SEEDS + SWEPT + FASHION + len(CELLS) * 5 * 2 + len(STRATEGIES) * 5 * 2
          + len(CONV) * 3 * 2 + len(PHASE) * 3 * 2)  # every model, once


def members(root, cell: str = "baseline") -> list[dict]:
    """results.json's members, each with its MLflow run id and model file from runs.json."""
    results = json.loads((root / f"data/train/{cell}/results.json").read_text())
    records = json.loads((root / f"data/runs/{cell}/runs.json").read_text())["runs"]
    ids = {(r["label"], r["seed_index"]): r for r in records}
    return [{**m, **ids[m["label"], m["seed_index"]]} for m in results["members"]]


def runs(client: MlflowClient, role: str):
    """Every run of ``role`` in the pipeline's experiment and the depth study's."""
    exps = [client.get_experiment_by_name(n).experiment_id
            for n in ("initbench", "initbench-lr_sweep", "initbench-dataset", "initbench-strategy",
                      "initbench-conv", "initbench-depth", "initbench-phase")]
    return client.search_runs(exps, f"tags.`initbench.role` = '{role}'", max_results=5000)


def test_every_stage_ran_and_wrote_its_outputs(project):
    root, first = project
    expected = ({"download", "normalize", "train", "train_lr_sweep", "train_dataset@fashion-mnist",
                 "report"} | {f"train_strategy@{s}" for s in STRATEGIES}
                | {f"train_conv@{c}" for c in CONV}
                | {f"train_depth@{c}" for c in CELLS}
                | {f"train_phase@{c}" for c in PHASE})
    assert ran_stages(first) == expected
    log = first.stdout + first.stderr
    # Each cell says what it will do and how far it is; TensorFlow's start-up noise is gone.
    assert "baseline: 3 initializers (he_normal, gaussian, glorot_uniform) x 2 seeds = 6 models" in log
    assert re.search(r"epoch 2/2: val accuracy .* models done \d+/6, about \d+ min \d\d s left", log)
    assert "absl::InitializeLog" not in log and "oneDNN custom operations" not in log
    assert "every run: `mlflow ui --backend-store-uri sqlite:///" in log
    for dataset in ("mnist", "fashion-mnist"):
        for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
            assert (root / "data/raw" / dataset / name).is_file()
        stats = json.loads((root / f"data/processed/{dataset}.stats.json").read_text())
        assert stats["n"] == {"train": 2700, "val": 300, "test": 1000}
    assert "dataset-fashion-mnist: 3 initializers (he_normal, gaussian, glorot_uniform) x 2 seeds" in log
    cell, runs_dir = root / "data/train/baseline", root / "data/runs/baseline"
    for label in LABELS:
        curve = (cell / f"curves/{label}.csv").read_text().splitlines()
        assert curve[0] == "epoch,loss,accuracy,val_loss,val_accuracy"
        assert len(curve) == EPOCHS + 1
        for seed in range(SEEDS):
            assert (runs_dir / f"models/{label}/s{seed}.keras").stat().st_size > 100_000
        summary = json.loads((cell / f"metrics/{label}.json").read_text())
        assert summary["seeds"] == SEEDS
        assert 0.8 < summary["test_accuracy"] <= 1.0  # 2 epochs on 2,700 images
    records = json.loads((runs_dir / "runs.json").read_text())
    assert records["tracking_error"] is None and records["timing"]["model_epochs"] == 6 * EPOCHS
    for m in members(root):
        assert re.fullmatch(r"[0-9a-f]{32}", m["run_id"])
        cm = m["confusion"]
        assert sum(map(sum, cm)) == 1000 and len(m["per_class_accuracy"]) == 10
        assert m["test_accuracy"] == pytest.approx(sum(cm[i][i] for i in range(10)) / 1000)


def test_every_model_trained_once_with_its_own_run(project, client):
    """One MLflow run per (cell, initializer, seed), no other training; one param schema."""
    (parent,) = runs(client, "pipeline")
    assert parent.info.status == "FINISHED"
    models = runs(client, "model")
    keys = [(r.data.tags["initbench.cell"], r.data.tags["initbench.label"],
             r.data.tags["initbench.seed_index"]) for r in models]
    assert len(keys) == len(set(keys)) == MODELS
    assert {r.info.status for r in models} == {"FINISHED"}
    # Organised for `mlflow ui`: the pipeline cell's initializers are top-level runs of the
    # experiment with their seeds as children; each depth cell is one top-level run (with its
    # models as children) in the experiment initbench-depth.
    groups = {r.info.run_id: r for r in runs(client, "initializer") + runs(client, "cell")}
    assert sorted(r.info.run_name for r in groups.values()) == sorted(
        [f"baseline/{label}" for label in LABELS] + [f"depth-{c}" for c in CELLS]
        + [f"phase-{c}" for c in PHASE] + ["lr_sweep", "dataset-fashion-mnist"]
        + [f"strategy-{s}" for s in STRATEGIES] + [f"conv-{c}" for c in CONV])
    for r in groups.values():
        assert "mlflow.parentRunId" not in r.data.tags and r.info.status == "FINISHED"
        assert r.data.tags["initbench.pipeline_run"] == parent.info.run_id
    for r in models:
        group = groups[r.data.tags["mlflow.parentRunId"]]
        assert group.info.experiment_id == r.info.experiment_id
        assert group.data.tags["initbench.cell"] == r.data.tags["initbench.cell"]
        assert r.data.tags["mlflow.source.git.commit"] in r.data.tags["initbench.git_commit"]
    he = next(r for r in groups.values() if r.info.run_name == "baseline/he_normal")
    seeds = [r for r in models if r.data.tags["mlflow.parentRunId"] == he.info.run_id]
    assert len(seeds) == SEEDS and he.data.params["seeds"] == str(SEEDS)
    assert he.data.metrics["test_accuracy"] == pytest.approx(
        sum(r.data.metrics["test_accuracy"] for r in seeds) / SEEDS)
    curve = client.get_metric_history(he.info.run_id, "val_accuracy")  # the mean curve
    assert [m.step for m in curve] == list(range(1, EPOCHS + 1))
    deep = next(r for r in groups.values() if r.info.run_name == "depth-5-tanh")
    assert "comparison.json" in {a.path for a in client.list_artifacts(deep.info.run_id)}
    def keys(run) -> set[str]:  # the model.* keys describe each kind of model (model.kind)
        return {k for k in run.data.params if not k.startswith(("initializer.", "model."))}

    shared = keys(models[0])
    for r in models:  # the same keys mean the same thing in every cell
        assert keys(r) == shared
        cnn = r.data.tags["initbench.cell"].startswith("conv-")
        assert r.data.params["model.kind"] == ("cnn" if cnn else "mlp")
        assert r.data.params["init_seed"] == str(42 + int(r.data.params["seed_index"]))
        assert r.data.params["data_seed"] == r.data.params["init_seed"]  # vary_data_order: true
        assert r.info.end_time >= r.info.start_time
    assert "train.seed" not in shared and {"cell", "init_seed", "data_seed"} <= shared
    root = project[0]
    data_sha = hashlib.sha256((root / "data/processed/mnist.npz").read_bytes()).hexdigest()
    for m in members(root):
        run = client.get_run(m["run_id"])
        assert run.data.tags["initbench.dvc_stage"] == "train"
        assert run.data.tags["initbench.data_sha256"] == data_sha
        assert re.fullmatch(r"[0-9a-f]{40}", run.data.tags["initbench.git_commit"])
        assert run.data.params["initializer.label"] == m["label"]
        assert run.data.params["train.batch_size"] == "32"
        assert run.data.params["model.hidden"] == "[128]"
        assert run.data.metrics["test_accuracy"] == pytest.approx(m["test_accuracy"])
        history = client.get_metric_history(m["run_id"], "val_accuracy")
        assert [h.step for h in history] == list(range(1, EPOCHS + 1))
        assert {"diagnostics.json", "confusion.json"} <= {
            a.path for a in client.list_artifacts(m["run_id"])}
        assert [i.dataset.name for i in run.inputs.dataset_inputs] == ["mnist-train"]
    # The same model on Fashion-MNIST: its own data, named in every run.
    fashion_sha = hashlib.sha256((root / "data/processed/fashion-mnist.npz").read_bytes()).hexdigest()
    for m in members(root, "dataset-fashion-mnist"):
        run = client.get_run(m["run_id"])
        assert run.data.tags["initbench.dvc_stage"] == "train_dataset@fashion-mnist"
        assert run.data.tags["initbench.data_sha256"] == fashion_sha
        assert run.data.params["data.dataset"] == "fashion-mnist"
        assert [i.dataset.name for i in run.inputs.dataset_inputs] == ["fashion-mnist-train"]
        assert (root / "data/runs/dataset-fashion-mnist" / m["model_file"]).is_file()
    gaussian = next(m for m in members(root) if m["label"] == "gaussian")
    params = client.get_run(gaussian["run_id"]).data.params
    assert params["initializer.stddev"] == params["initializer.keras.stddev"] == "0.1"
    deep = next(r for r in models if r.data.tags["initbench.cell"] == "depth-5-tanh")
    steps = [m.step for m in client.get_metric_history(deep.info.run_id, "diag.act_std.L4")]
    assert steps == [0, 1]  # at initialization and after the one epoch
    assert {"report", "comparison.json"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    table = json.loads(Path(client.download_artifacts(parent.info.run_id, "comparison.json")).read_text())
    assert sorted(row[0] for row in table["data"]) == sorted(LABELS)
    assert "[Report](#/experiments/" in parent.data.tags["mlflow.note.content"]


def test_logged_model_loads_where_initbench_is_not_installed(project, client):
    """The MLflow model (Keras flavor, signature, input example, named for its initializer and
    seed) loads with mlflow.pyfunc and mlflow.keras in a process where `import initbench` fails,
    and predicts what the stage's own .keras file predicts."""
    import keras
    import mlflow
    import numpy as np

    root = project[0]
    member = next(m for m in members(root) if m["label"] == "he_normal")
    run = client.get_run(member["run_id"])
    mlflow.set_tracking_uri(client.tracking_uri)
    try:
        (model,) = mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{member['run_id']}'", output_format="list")
        info = mlflow.models.get_model_info(f"models:/{model.model_id}")
    finally:
        mlflow.set_tracking_uri(None)
    assert model.name == f"he_normal-s{member['seed_index']}" and "keras" in info.flavors
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 28, 28]
    assert info.saved_input_example_info is not None
    code = f"""
import json, sys
sys.modules["initbench"] = None  # import initbench now fails
import mlflow, numpy as np
mlflow.set_tracking_uri({client.tracking_uri!r})
uri = "models:/{model.model_id}"
x = np.load({str(root / "data/processed/mnist.npz")!r})["x_test"][:200]
pyfunc = np.asarray(mlflow.pyfunc.load_model(uri).predict(x))
native = mlflow.keras.load_model(uri).predict(x, verbose=0)
print(json.dumps({{"pyfunc": pyfunc.tolist(), "keras": native.tolist()}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=root, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    x = np.load(root / "data/processed/mnist.npz")["x_test"][:200]
    saved = keras.models.load_model(root / "data/runs/baseline" / member["model_file"])
    expected = saved.predict(x, verbose=0)
    np.testing.assert_allclose(out["pyfunc"], expected, atol=1e-5)
    np.testing.assert_allclose(out["keras"], expected, atol=1e-5)


def test_saved_models_reload_and_reproduce_the_test_accuracy(project):
    import keras
    import numpy as np

    root = project[0]
    data = np.load(root / "data/processed/mnist.npz")
    for m in members(root)[:2]:
        model = keras.models.load_model(root / "data/runs/baseline" / m["model_file"])
        assert model.optimizer is not None  # saved compiled, with the cell's optimizer
        pred = model.predict(data["x_test"], verbose=0).argmax(axis=1)
        assert (pred == data["y_test"]).mean() == pytest.approx(m["test_accuracy"], abs=1e-3)


def test_report_holds_the_comparison_and_the_study(project):
    root = project[0]
    report = (root / "reports/report.md").read_text()
    assert "### Comparison" in report
    comparison = report.split("### Comparison")[1].split("###")[0]
    assert all(f"| {label} |" in comparison for label in LABELS)
    for cell in CELLS:
        depth, act = cell.split("-")
        assert f"### {depth} hidden layers, {act}" in report
    assert "### The study's starting claims" in report
    # The quick profile is not the article's configuration (3,000 images, 2 epochs).
    assert "Not tested: the claims are about the article's configuration" in report
    assert "- N(0,1) saturates deep tanh (share of |a| > 0.99, depth 5):\n  - claim (" in report
    assert "## 3. Signal propagation at initialization (depth 5)" in report
    assert "## 4. Convolutional networks: does He beat Xavier in deeper CNNs?" in report
    assert "## 5. Optimization strategies: does a better optimizer make the" in report
    assert "## 6. Where each weight scale trains: the phase diagram" in report
    sweep = report.split("### Each initializer at its best learning rate")[1].split("##")[0]
    assert all(f"| {label} | " in sweep for label in LABELS) and "Ranking by mean test accuracy" in sweep
    assert "### Dynamical isometry at initialization (depth 5)" in report
    other = report.split("### The same model on 2 datasets")[1].split("### Each initializer")[0]
    assert "| mnist: test % | mnist: verdict | mnist: epochs to target | fashion-mnist: test %" in other
    assert all(f"| {label} | " in other for label in LABELS) and "Contradicting verdicts:" in other
    assert "#### Statistics over seeds on fashion-mnist (2700 training images, 2 seeds)" in other
    assert ("| activation | side | sigma_w | grid points | runs trained | 6 inside | verdict: c "
            "[interval] |") in report
    assert all(f"| {a} | {s} | " in report for a, s in (("tanh", "ordered"), ("tanh", "chaotic"),
                                                       ("relu", "vanishing"), ("relu", "exploding")))
    assert report.index("## Answer") < report.index("## How to read it") < report.index("## 1.")
    assert "| 3 | " in report.split("**tanh**: test accuracy")[1]
    for name in ("comparison", "accuracy_vs_depth", "activation_std_at_init",
                 "gradient_norm_at_init", "baseline_curves", "phase_diagram", "jacobian_spectrum",
                 "datasets"):
        assert (root / f"reports/figures/{name}.png").read_bytes()[:4] == b"\x89PNG"
    for cell in CELLS:
        depth = int(cell.split("-")[0])
        results = json.loads((root / f"data/train/depth-{cell}/results.json").read_text())
        assert len(results["members"]) == 5 * 2
        for m in results["members"]:
            assert len(m["diagnostics"]["act_std"]) == 1 + 1  # at init + 1 epoch
            assert len(m["diagnostics"]["grad_norm"][0]) == depth + 1  # hidden layers + output
            assert len(m["init_probes"]["pair_c"]) == depth + 1  # the pairs' correlation per layer
            assert len(m["layer_jacobian_sv_mean"]) == depth - 1  # layers 2..L
    for stat in ("act_std", "grad_norm", "dead_fraction"):
        with (root / f"reports/diagnostics/{stat}/depth-5-tanh.csv").open() as f:
            rows = list(csv.DictReader(f))
        # 5 hidden layers + the output (its dead_fraction: examples the loss clips)
        assert len(rows) == 5 * 6 * 2  # initializers x layers x (init + 1 epoch)
        assert {r["seeds"] for r in rows} == {"2"}
    summary = json.loads((root / "reports/summary.json").read_text())
    assert set(summary) == ({"baseline", "dataset-fashion-mnist"} | {f"depth-{c}" for c in CELLS}
                            | {f"strategy-{s}" for s in STRATEGIES} | {f"conv-{c}" for c in CONV}
                            | {"synthesis", "strategies", "conv", "phase", "reproductions"})
    # Reproductions: every published claim has a row; the quick profile's depth-5 cells test them
    rows = {(r["source"], r["claim"]): r for r in summary["reproductions"]}
    assert {r["source"] for r in rows.values()} >= {
        "He et al. 2015", "Glorot & Bengio 2010", "Poole et al. 2016", "Pennington et al. 2017",
        "Hanin & Rolnick 2018", "Saxe et al. 2014", "Keras / PyTorch defaults"}
    cmap = [r for (src, claim), r in rows.items() if src == "Poole et al. 2016" and "tanh" in claim]
    assert cmap and all(r["verdict"] in ("reproduced", "not reproduced") for r in cmap)
    assert "## Reproductions" in report and "| Poole et al. 2016 | the c-map predicts" in report
    assert "1 - c_L: predicted" in report.split("## 3. Signal propagation")[1]
    assert "Convolutional networks: does He beat Xavier in deeper CNNs?" in report
    assert "### 2 conv layers, relu" in report
    assert '- **relu**: "He beats Xavier in deeper CNNs" **' in report
    assert (root / "reports/figures/accuracy_vs_conv_depth.png").read_bytes()[:4] == b"\x89PNG"
    conv = json.loads((root / "data/train/conv-2-relu/results.json").read_text())
    assert conv["config"]["model.kind"] == "cnn" and len(conv["members"]) == 3 * 2
    import keras

    saved = keras.models.load_model(root / "data/runs/conv-2-relu/models/he_normal/s0.keras")
    assert [type(layer).__name__ for layer in saved.layers].count("Conv2D") == 2
    assert "does a better optimizer make the initializer matter less? (5 hidden layers, relu)" in report
    assert "- **cosine** (lr_schedule cosine; plain: optimizer sgd" in report


def test_log_replays_the_outputs_into_a_new_store_without_training(project, env, tmp_path):
    """A new tracking store: `dvc repro` has nothing to do (MLflow is no dependency), and
    `initbench log` logs every cell's models, the pipeline's .keras files and the report."""
    root = project[0]
    fresh = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'new.db'}"}
    assert "up to date" in run(["dvc", "status"], root, fresh).stdout
    proc = run(["initbench", "log"], root, fresh)
    assert "baseline (6 models)" in proc.stdout and "depth-5-tanh (10 models)" in proc.stdout
    assert "Traceback" not in proc.stderr and "absl::InitializeLog" not in proc.stderr
    new = MlflowClient(tracking_uri=fresh["MLFLOW_TRACKING_URI"])
    models = runs(new, "model")
    assert len(models) == MODELS
    assert {r.data.tags["initbench.replayed"] for r in models} == {"true"}
    by_key = {(r.data.tags["initbench.label"], int(r.data.tags["initbench.seed_index"])): r
              for r in models if r.data.tags["initbench.cell"] == "baseline"}
    for m in members(root):
        assert by_key[m["label"], m["seed_index"]].data.metrics["test_accuracy"] == pytest.approx(
            m["test_accuracy"])
    exp = new.get_experiment_by_name("initbench").experiment_id
    import mlflow

    mlflow.set_tracking_uri(fresh["MLFLOW_TRACKING_URI"])
    try:
        assert len(mlflow.search_logged_models([exp], output_format="list")) == len(LABELS) * SEEDS
    finally:
        mlflow.set_tracking_uri(None)
    (parent,) = runs(new, "pipeline")
    assert "report" in {a.path for a in new.list_artifacts(parent.info.run_id)}
    assert "up to date" in run(["dvc", "status"], root, env).stdout  # nothing was touched


def test_a_fresh_clone_shows_the_committed_results(project, env, tmp_path):
    """No DVC remote, no cache: the git-tracked summaries in reports/ are what a teammate sees."""
    root = project[0]
    for cmd in (["add", "-A"], ["commit", "-qm", "results"]):
        subprocess.run(["git", *cmd], cwd=root, check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    committed = json.loads((root / "reports/metrics.json").read_text())
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], clone, env, check=False).stdout)
    files = next(iter(shown.values()))["data"]
    shown_metrics = files["reports/metrics.json"]["data"]
    assert {label: {k: v for k, v in m.items() if v is not None}  # (DVC drops nulls)
            for label, m in shown_metrics.items()} == {
        label: {k: v for k, v in m.items() if v is not None} for label, m in committed.items()}
    table = run(["dvc", "exp", "show", "--csv"], clone, env).stdout.splitlines()
    header = table[0].split(",")
    head = next(line.split(",") for line in table[1:] if ",workspace," not in line)
    for label in LABELS:
        value = head[header.index(f"{label}.test_accuracy")]
        assert float(value) == pytest.approx(committed[label]["test_accuracy"])
    plots = run(["dvc", "plots", "show", "--json", "reports/curves.csv", "reports/confusion.csv"],
                clone, env).stdout
    assert "reports/curves.csv" in plots and "reports/confusion.csv" in plots


def test_push_then_pull_in_a_fresh_clone_reruns_nothing(project, env):
    """The default remote (.dvc/config: a directory beside the project): `dvc push` here, then in
    a fresh clone beside it `dvc pull` restores every output and `dvc repro` has nothing to do."""
    root = project[0]
    run(["dvc", "push"], root, env)
    assert (root.parent / "initbench-dvc-store").is_dir()
    for cmd in (["add", "-A"], ["commit", "-qm", "pushed", "--allow-empty"]):
        subprocess.run(["git", *cmd], cwd=root, check=True)
    clone = root.parent / "teammate"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    run(["dvc", "pull"], clone, env)
    assert (clone / "data/runs/baseline/models/he_normal/s0.keras").is_file()
    again = run(["dvc", "repro"], clone, env)
    assert ran_stages(again) == set() and "up to date" in again.stdout
    assert (clone / "data/train/baseline/results.json").read_bytes() == (
        root / "data/train/baseline/results.json").read_bytes()


def test_second_repro_runs_nothing(project, env):
    second = run(["dvc", "repro"], project[0], env)
    assert ran_stages(second) == set()
    assert "Data and pipelines are up to date" in second.stdout


def test_metrics_and_plots_commands(project, env):
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project[0], env).stdout)
    files = next(iter(shown.values()))["data"]
    for label in LABELS:
        metrics = files[f"data/train/baseline/metrics/{label}.json"]["data"]
        assert 0.8 < metrics["test_accuracy"] <= 1.0
    out = run(["dvc", "plots", "show", "--json"], project[0], env).stdout
    assert all(f"data/train/baseline/curves/{label}.csv" in out for label in LABELS)
    # The diagnostics render through the project's own Vega-Lite template.
    html = project[0] / "plots_html"
    run(["dvc", "plots", "show", "reports/diagnostics/act_std", "-o", str(html)], project[0], env)
    page = (html / "index.html").read_text()
    assert "reports/diagnostics/act_std/depth-5-tanh.csv" in page
    assert '"color": {"field": "initializer"' in page and '"type": "log"' in page


def test_a_forced_rerun_writes_identical_results_and_leaves_the_report_up_to_date(project, env):
    """Same seed, same machine and thread count: the results are byte-identical (wall times and
    run ids live in data/runs), so nothing downstream of the retrained cell reruns."""
    root = project[0]
    cell = root / "data/train/baseline"

    def snapshot() -> dict[str, bytes]:
        return {p.relative_to(cell).as_posix(): p.read_bytes() for p in cell.rglob("*") if p.is_file()}

    before = snapshot()
    old_runs = json.loads((root / "data/runs/baseline/runs.json").read_text())["runs"]
    run(["dvc", "repro", "--force", "-s", "train"], root, env)
    assert snapshot() == before
    new_runs = json.loads((root / "data/runs/baseline/runs.json").read_text())["runs"]
    assert {r["run_id"] for r in new_runs}.isdisjoint(r["run_id"] for r in old_runs)
    again = run(["dvc", "repro"], root, env)
    assert ran_stages(again) == set()


def test_changing_one_initializer_reruns_only_the_pipeline_cell(project, env, client):
    root = project[0]
    original = [m["run_id"] for m in members(root) if m["label"] == "gaussian"]
    path = root / "params.yaml"
    text = path.read_text()
    edit_params(root, lambda p: p["initializers"]["gaussian"].update(stddev=0.2))
    changed = run(["dvc", "repro"], root, env)
    # The pipeline's cell, its learning-rate sweep and its Fashion-MNIST twin; the depth and phase
    # cells are not touched.
    assert ran_stages(changed) == {"train", "train_lr_sweep", "train_dataset@fashion-mnist", "report"}
    # Back to the original value: DVC restores the outputs from its run cache without training,
    # and they still point at the MLflow runs that produced them.
    path.write_text(text)
    restored = run(["dvc", "repro"], root, env)
    assert not {"train", "train_lr_sweep", "train_dataset@fashion-mnist"} & ran_stages(restored)
    assert [m["run_id"] for m in members(root) if m["label"] == "gaussian"] == original
    assert client.get_run(original[0]).data.tags["initbench.label"] == "gaussian"


def test_the_best_model_is_registered_when_asked(project, env, client):
    """registered_model is an MLflow setting, no DVC dependency: setting it reruns nothing; the
    report then registers the best initializer's best seed with the alias "best"."""
    root = project[0]
    path = root / "params.yaml"
    text = path.read_text()
    edit_params(root, lambda p: p.update(registered_model="initbench-best"))
    try:
        assert ran_stages(run(["dvc", "repro"], root, env)) == set()
        proc = run(["dvc", "repro", "--force", "-s", "report"], root, env)
    finally:
        path.write_text(text)
    metrics = json.loads((root / "reports/metrics.json").read_text())
    best = max(metrics, key=lambda label: metrics[label]["test_accuracy"])
    assert f"registered {best} as initbench-best version 1 (alias best)" in proc.stdout
    version = client.get_model_version_by_alias("initbench-best", "best")
    assert version.tags["initbench.label"] == best
    seeds = [m for m in members(root) if m["label"] == best]
    assert float(version.tags["test_accuracy"]) == pytest.approx(max(m["test_accuracy"] for m in seeds))


def test_make_quick_leaves_params_alone_and_logs_into_the_projects_store(tmp_path, env):
    root = copy_project(tmp_path, env)
    venv = Path(sys.executable).parent.parent  # the suite's own environment: nothing to install
    # -o: the copy's files are newer than the environment's set-up stamp; without it make would
    # reinstall the project into the suite's environment, pointing it at this temporary copy.
    proc = run(["make", "quick", f"VENV={venv}", "-o", f"{venv}/.installed"], root, env)
    # A DVC experiment of the copy (DVC's own throwaway workspace): no scratch worktree.
    assert "profile 'quick': DVC experiment 'quick'" in proc.stdout and not (root / ".quick").exists()
    ref = re.search(r"git show (\S+):reports/report\.md", proc.stdout).group(1)
    assert "# initbench study report" in subprocess.run(
        ["git", "show", f"{ref}:reports/report.md"], cwd=root, capture_output=True, text=True,
        check=True).stdout
    assert subprocess.run(["git", "diff", "--quiet"], cwd=root).returncode == 0  # untouched
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    assert len(runs(client, "model")) == MODELS


def test_invalid_params_fail_before_any_work(tmp_path, env):
    def bad(params):
        params["train"]["epochs"] = 0

    root = copy_project(tmp_path, env, bad)
    proc = run(["dvc", "repro"], root, env, check=False)
    assert proc.returncode != 0
    assert "train.epochs: got 0; allowed: an integer in [1, 10000]" in proc.stderr + proc.stdout
    assert not (root / "data").exists()


def test_mlproject_train_entry_point_runs_the_cell_through_dvc(project, env, client):
    """`mlflow run . -e train -P epochs=1`: the cell is retrained by DVC (runs last)."""
    root = project[0]
    common = ["mlflow", "run", ".", "--env-manager", "local", "--experiment-name", "initbench"]
    proc = run([*common, "-e", "train", "-P", "epochs=1"], root, env)
    assert "Running stage 'train'" in proc.stdout + proc.stderr
    trained_members = members(root)
    assert {len(m["history"]) for m in trained_members} == {1}
    trained = client.get_run(trained_members[0]["run_id"])
    assert trained.data.params["train.epochs"] == "1"
    mlflow_run = client.get_run(trained.data.tags["initbench.pipeline_run"])
    assert mlflow_run.data.tags["mlflow.project.entryPoint"] == "train"
