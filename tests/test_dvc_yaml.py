"""dvc.yaml: every stage depends on the code and parameters that shape its outputs, so a change
reruns it (and only those: MLflow settings are not dependencies); the pipeline cell's metrics
and curves and the study's diagnostics are declared with templates that exist."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import pytest
import yaml

from initbench.paths import CURVES_DIR, METRICS_DIR, REPORT_FILES, Paths, cell_from_stage
from initbench.report import diag_plots
from initbench.results import CURVE_KEYS, STATS

from .conftest import ROOT

SRC = "src/initbench"
# The trainer and everything behind initialization (directories: a new module is covered), and
# the results format the stage writes.
TRAINING = {f"{SRC}/train", f"{SRC}/init", f"{SRC}/results.py"}
NEEDS = {
    "download": {f"{SRC}/data/download.py", f"{SRC}/data/datasets.py"},
    "normalize": {f"{SRC}/data/normalize.py", f"{SRC}/data/idx.py", f"{SRC}/data/processed.py"},
    "train": TRAINING,
    "train_depth": TRAINING,
    "train_phase": TRAINING,
    "train_lr_sweep": TRAINING,
    "train_dataset": TRAINING,
    "train_strategy": TRAINING,
    "train_conv": TRAINING,
    "report": {f"{SRC}/report", f"{SRC}/results.py"},
}
# The parameters each stage's outputs depend on (a listed key covers its sub-keys).
PARAM_NEEDS = {
    "download": {"data.dataset", "study.datasets.names"},
    "normalize": {"data", "study.datasets.names"},
    "train": {"data", "model", "train", "initializers", "study.seeds", "study.vary_data_order",
              "study.diagnostics_batch"},
    "train_depth": {"data", "train.seed", "study.depth", "study.vary_data_order",
                    "study.diagnostics_batch"},
    "train_phase": {"data", "train.seed", "study.phase", "study.vary_data_order",
                    "study.diagnostics_batch"},
    "train_lr_sweep": {"data", "model", "train", "initializers", "study.seeds", "study.lr_sweep",
                       "study.vary_data_order", "study.diagnostics_batch"},
    "train_dataset": {"data", "model", "train", "initializers", "study.seeds", "study.datasets",
                      "study.vary_data_order", "study.diagnostics_batch"},
    "train_strategy": {"data", "train.seed", "study.depth", "study.strategies.depth",
                       "study.strategies.activation", "study.vary_data_order",
                       "study.diagnostics_batch"},
    "train_conv": {"data", "train.seed", "study.conv", "study.vary_data_order",
                   "study.diagnostics_batch"},
    "report": {"model", "train", "initializers", "study"},
}


def dvc() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def stage(name: str) -> dict:
    definition = dvc()["stages"][name]
    return definition.get("do", definition)


def params_of(definition: dict) -> list[str]:
    out = []
    for p in definition.get("params", []):  # a key, or {file: [keys]}
        out += [k for keys in p.values() for k in keys] if isinstance(p, dict) else [p]
    return out


def covered(path: str, deps: list[str]) -> bool:
    return any(PurePosixPath(path) == PurePosixPath(d) or PurePosixPath(d) in PurePosixPath(path).parents
               for d in deps)


def test_the_stages():
    assert list(dvc()["stages"]) == ["download", "normalize", "train", "train_lr_sweep",
                                      "train_dataset", "train_strategy", "train_conv", "train_depth",
                                      "train_phase", "report"]


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_stage_depends_on_its_code(name):
    deps = stage(name)["deps"]
    missing = NEEDS[name] - set(deps)
    assert not missing, f"{name} misses {sorted(missing)}"
    for d in deps:
        if d.startswith("src/"):
            assert (ROOT / d).exists(), d


@pytest.mark.parametrize("name", ["train", "train_depth", "train_dataset", "train_strategy"])
def test_every_training_module_is_a_dependency(name):
    """The deps are the directories: a module added to initbench.train or .init is covered."""
    deps = stage(name)["deps"]
    modules = sorted(p.relative_to(ROOT).as_posix()
                     for package in ("train", "init") for p in (ROOT / SRC / package).rglob("*.py"))
    assert len(modules) >= 10
    assert [m for m in modules if not covered(m, deps)] == []


def test_report_depends_on_every_report_module():
    deps = stage("report")["deps"]
    modules = [p.relative_to(ROOT).as_posix() for p in (ROOT / SRC / "report").rglob("*.py")]
    assert [m for m in modules if not covered(m, deps)] == []


@pytest.mark.parametrize("name", sorted(PARAM_NEEDS))
def test_stage_depends_on_its_params(name):
    listed = params_of(stage(name))
    missing = [p for p in PARAM_NEEDS[name]
               if not any(p == q or p.startswith(f"{q}.") for q in listed)]
    assert not missing, f"{name} misses params {missing}"


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_mlflow_settings_are_not_dependencies(name):
    """Renaming the MLflow experiment must not rerun (or invalidate) any stage."""
    listed = params_of(stage(name))
    assert not [p for p in listed if p == "experiment" or p.startswith("experiment.")]


def test_train_stages_write_where_the_report_reads():
    """The commands take their paths from initbench.paths, which must be the stages' outs."""
    paths = Paths(ROOT)
    train = stage("train")
    assert train["outs"] == [paths.cell_dir("baseline").relative_to(ROOT).as_posix(),
                             paths.runs_dir("baseline").relative_to(ROOT).as_posix()]
    assert train["cmd"] == "initbench train --cell baseline"
    depth = stage("train_depth")
    assert set(depth["matrix"]) == {"depth", "activation"}
    assert depth["outs"] == ["data/train/depth-${item.depth}-${item.activation}",
                             "data/runs/depth-${item.depth}-${item.activation}"]
    # DVC_STAGE is train_depth@<depth>-<activation>: the CLI maps it to depth-<depth>-<activation>
    assert depth["cmd"] == 'initbench train --cell "$DVC_STAGE"'
    assert cell_from_stage("train_depth@${item.depth}-${item.activation}") == PurePosixPath(
        depth["outs"][0]).name
    grid = stage("train_phase")
    assert grid["cmd"] == depth["cmd"] and set(grid["matrix"]) == {"depth", "activation"}
    assert cell_from_stage("train_phase@${item.depth}-${item.activation}") == PurePosixPath(
        grid["outs"][0]).name == "phase-${item.depth}-${item.activation}"
    other = stage("train_dataset")
    assert dvc()["stages"]["train_dataset"]["foreach"] == "${study.datasets.names}"
    assert other["cmd"] == depth["cmd"] and cell_from_stage("train_dataset@${item}") == PurePosixPath(
        other["outs"][0]).name == "dataset-${item}"
    assert other["deps"][0] == "data/processed/${item}.npz"
    cells = paths.cells.relative_to(ROOT).as_posix()
    # The report reads the results only: run ids and wall times (data/runs) never rerun it.
    assert not [d for d in stage("report")["deps"] if d.startswith("data/runs")]
    assert cells in stage("report")["deps"] and stage("report")["outs"][0] == {
        paths.reports.relative_to(ROOT).as_posix(): {"cache": False, "persist": True}}


def test_the_data_stages_write_every_dataset_where_the_cells_read():
    paths = Paths(ROOT)
    assert stage("download")["outs"] == [paths.raw.relative_to(ROOT).as_posix()]
    assert stage("normalize")["outs"] == [paths.processed_dir.relative_to(ROOT).as_posix()]
    assert paths.raw.relative_to(ROOT).as_posix() in stage("normalize")["deps"]
    assert stage("train")["deps"][0] == paths.processed("${data.dataset}").relative_to(ROOT).as_posix()
    assert "data/processed/${data.dataset}.stats.json" in dvc()["metrics"]


def test_no_command_carries_a_params_value():
    """DVC substitutes ${...} into commands that a shell runs: none may contain one."""
    for name, definition in dvc()["stages"].items():
        cmd = definition.get("do", definition)["cmd"]
        assert "${" not in cmd, (name, cmd)


def test_the_pipeline_cell_is_declared_as_metrics_and_plots():
    baseline = Paths(ROOT).cell_dir("baseline").relative_to(ROOT).as_posix()
    assert f"{baseline}/{METRICS_DIR}" in dvc()["metrics"]
    declared = {k: v for item in dvc()["plots"] if isinstance(item, dict) for k, v in item.items()}
    curves = declared[f"{baseline}/{CURVES_DIR}"]
    assert curves["x"] == "epoch" and curves["y"] in CURVE_KEYS
    # The git-tracked copies a fresh clone shows (reports/ is not cached), written by the report.
    reports = Paths(ROOT).reports.relative_to(ROOT).as_posix()
    assert f"{reports}/metrics.json" in dvc()["metrics"]
    assert {"metrics.json", "curves.csv", "confusion.csv"} <= set(REPORT_FILES)
    overlay = declared[f"{reports}/curves.csv"]
    assert overlay["template"] == "curves_by_initializer" and overlay["y"] in CURVE_KEYS
    assert (ROOT / ".dvc/plots/curves_by_initializer.json").is_file()
    assert declared[f"{reports}/confusion.csv"]["template"] == "confusion"


def test_dvc_yaml_declares_every_diagnostic_as_plots_with_an_existing_template():
    declared = {k: v for item in dvc()["plots"] if isinstance(item, dict) for k, v in item.items()}
    for stat in STATS:
        props = declared[f"reports/diagnostics/{stat}"]
        assert props["x"] == "layer" and props["y"] == stat
        template = ROOT / ".dvc" / "plots" / f"{props['template']}.json"
        spec = json.loads(template.read_text())
        assert spec["data"]["values"] == "<DVC_METRIC_DATA>"
        assert spec["spec"]["encoding"]["color"]["field"] == "initializer"
        log = spec["spec"]["encoding"]["y"]["scale"].get("type") == "log"
        assert log == (stat in diag_plots.LOG_SCALE)


def test_report_outputs_are_not_cached():
    outs = stage("report")["outs"]
    # persist: DVC leaves the git-tracked report in place while the stage runs (tests/test_outputs.py)
    assert outs == [{"reports": {"cache": False, "persist": True}}]
