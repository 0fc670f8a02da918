"""dvc.yaml: every stage depends on the code that shapes its outputs, so a code change reruns it;
the study's diagnostics are declared as plots with templates that exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from initbench import diag_plots
from initbench.diagnostics import STATS

from .conftest import ROOT

# Modules whose change changes trained weights: the trainer and everything behind initialization.
TRAINING = {"stacked", "model", "initializers", "custom_initializers", "gains", "lsuv"}
NEEDS = {
    "download": {"download", "datasets"},
    "normalize": {"normalize", "idx"},
    "train": {"train"} | TRAINING,
    "evaluate": {"evaluate"},
    "compare": {"compare"},
    "study_baseline": {"study", "study_stage", "diagnostics"} | TRAINING,
    "study_depth": {"study", "study_stage", "diagnostics"} | TRAINING,
    "report": {"report", "report_stage", "figures", "stats", "diag_plots"},
}


@pytest.mark.parametrize("stage", sorted(NEEDS))
def test_stage_depends_on_its_code(stage):
    definition = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    deps = definition.get("do", definition)["deps"]
    modules = {Path(d).stem for d in deps if d.startswith("src/initbench/")}
    assert NEEDS[stage] <= modules, f"{stage} misses {sorted(NEEDS[stage] - modules)}"
    for d in deps:
        if d.startswith("src/"):
            assert (ROOT / d).is_file(), d


def test_dvc_yaml_declares_every_diagnostic_as_plots_with_an_existing_template():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    declared = {k: v for item in dvc["plots"] if isinstance(item, dict) for k, v in item.items()}
    for stat in STATS:
        props = declared[f"reports/diagnostics/{stat}"]
        assert props["x"] == "layer" and props["y"] == stat
        template = ROOT / ".dvc" / "plots" / f"{props['template']}.json"
        spec = json.loads(template.read_text())
        assert spec["data"]["values"] == "<DVC_METRIC_DATA>"
        assert spec["spec"]["encoding"]["color"]["field"] == "initializer"
        log = spec["spec"]["encoding"]["y"]["scale"].get("type") == "log"
        assert log == (stat in diag_plots.LOG_SCALE)
