"""dvc.yaml: every stage depends on the code that shapes its outputs, so a code change reruns it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
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
