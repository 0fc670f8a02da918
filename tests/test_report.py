"""The study report's per-cell table: differences to the reference, adjusted for multiplicity."""

from __future__ import annotations

import pytest

from initbench.report import cell_table

REF = [0.975, 0.976, 0.977, 0.978, 0.979]


def cell(groups: dict[str, list[float]]) -> dict:
    members = [{"label": label, "test_accuracy": a, "final_train_loss": 0.1, "diverged": a < 0.2}
               for label, values in groups.items() for a in values]
    return {"activation": "relu", "members": members}


def test_a_lone_comparison_uses_the_plain_interval():
    rows, summary = cell_table(cell({"he_normal": REF, "a": [v - 0.0025 for v in REF]}), 0.95)
    # Welch: diff -0.25 pp, se 0.1 pp, 8 df: the 95% interval [-0.48, -0.02] excludes 0.
    assert summary["initializers"]["a"]["vs_reference"] == "lower accuracy"
    assert summary["difference_confidence"] == pytest.approx(0.95)
    assert "95.00% CI: Bonferroni, 1 comparisons" in rows[0]


def test_many_comparisons_widen_the_intervals():
    groups = {"he_normal": REF, "a": [v - 0.0025 for v in REF], "far": [v - 0.02 for v in REF]}
    groups |= {f"same{i}": list(REF) for i in range(7)}
    rows, summary = cell_table(cell(groups), 0.95)
    inits = summary["initializers"]
    assert summary["difference_confidence"] == pytest.approx(1 - 0.05 / 9)
    # The same -0.25 pp is inside the noise once nine initializers are compared with He ...
    assert inits["a"]["vs_reference"] == "no detectable difference"
    assert inits["a"]["difference_low"] < 0 < inits["a"]["difference_high"]
    # ... while a 2 pp gap stays a difference, and identical values are no difference.
    assert inits["far"]["vs_reference"] == "lower accuracy"
    assert inits["same0"]["vs_reference"] == "no detectable difference"
    assert inits["a"]["difference"] == pytest.approx(-0.0025)
    assert "99.44% CI: Bonferroni, 9 comparisons" in rows[0]
    assert len(rows) == 2 + len(groups)
