"""The study report: the per-cell table (differences adjusted for multiplicity), the
diagnostics written as DVC plot data, and the cell files (results, metrics, curves) it reads."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from initbench import results
from initbench.report import diag_plots
from initbench.report.tables import cell_table, comparison, judged
from initbench.results import STATS

REF = [0.975, 0.976, 0.977, 0.978, 0.979]
CHANCE = [[100 if j == 1 else 0 for j in range(10)]] + [[0] * 10] * 9  # predicts class 1 only


def member(label: str, seed: int, acc: float, loss: float = 0.1, confusion=None) -> dict:
    failed = acc < 0.2 or not np.isfinite(loss)
    history = [{"epoch": 1, "loss": loss, "accuracy": 0.1 if failed else acc}]
    spread = [[10 if i == j else 0 for j in range(10)] for i in range(10)]  # every class predicted
    return {"label": label, "seed_index": seed, "test_accuracy": acc, "final_train_loss": loss,
            "diverged": failed, "history": history, "confusion": confusion or spread}


def cell(groups: dict[str, list[float]]) -> dict:
    members = [member(label, i, a) for label, values in groups.items() for i, a in enumerate(values)]
    return {"activation": "relu", "members": members}


def test_differences_are_paired_by_seed():
    """A constant -0.25 pp shift per seed is a sure difference when paired, though the seeds'
    spread (0.16 pp) would hide it from an unpaired comparison."""
    rows, summary = cell_table(cell({"he_normal": REF, "a": [v - 0.0025 for v in REF]}), 0.95, 0.001)
    a = summary["initializers"]["a"]
    assert a["vs_reference"] == "lower accuracy" and a["pairs"] == 5
    assert a["difference"] == pytest.approx(-0.0025)
    assert a["difference_high"] - a["difference_low"] == pytest.approx(0, abs=1e-9)
    assert summary["difference_confidence"] == pytest.approx(0.95)
    assert "differences at 95.00% (Bonferroni, 1 comparisons)" in rows[0]
    assert "equivalence at 90.00% (two one-sided tests)" in rows[0]


def test_three_way_verdicts_and_multiplicity():
    noise = [0.0005, -0.0004, 0.0003, -0.0006, 0.0002]
    groups = {"he_normal": REF,
              "close": [v + e for v, e in zip(REF, noise, strict=True)],  # within +-0.3 pp
              "wild": [v + 0.004 * e for v, e in zip(REF, [3, -3, 2, -2, 1], strict=True)],
              "far": [v - 0.02 + e for v, e in zip(REF, noise[::-1], strict=True)]}
    rng = np.random.default_rng(0)
    groups |= {f"same{i}": list(REF + rng.normal(0, 0.0004, 5)) for i in range(6)}
    rows, summary = cell_table(cell(groups), 0.95, 0.003)
    inits = summary["initializers"]
    assert summary["difference_confidence"] == pytest.approx(1 - 0.05 / 9)
    assert inits["close"]["vs_reference"] == "equivalent"
    # Not different, but the interval is wider than the margin: not evidence of equivalence.
    assert inits["wild"]["vs_reference"] == "inconclusive"
    assert inits["wild"]["difference_low"] < -0.003 and inits["wild"]["detectable_difference"] > 0.003
    assert inits["far"]["vs_reference"] == "lower accuracy"
    assert "differences at 99.44% (Bonferroni, 9 comparisons)" in rows[0] and len(rows) == 4 + len(groups)
    # The residual sd is pooled (seeds as blocks) over the complete initializers that share one
    # variance: the wild one leaves the pool and gets its own paired t.
    assert inits["close"]["method"] == "seed-blocked" and inits["wild"]["method"] == "paired t"
    assert "wild" not in summary["pooled_over"] and "close" in summary["pooled_over"]


def test_failed_runs_are_counted_apart_not_averaged_in():
    groups = {"he_normal": REF}
    c = cell(groups)
    c["members"] += [member("zeros", i, 0.1135, 2.3, CHANCE) for i in range(4)]
    c["members"] += [member("wobbly", 0, 0.97), member("wobbly", 1, 0.96),
                     member("wobbly", 2, float("nan"), float("nan")), member("wobbly", 3, 0.11, 2.3)]
    rows, summary = cell_table(c, 0.95, 0.003)
    zeros, wobbly = summary["initializers"]["zeros"], summary["initializers"]["wobbly"]
    assert (zeros["trained"], zeros["collapsed"], zeros["exploded"]) == (0, 4, 0)
    assert (wobbly["trained"], wobbly["exploded"], wobbly["stuck"]) == (2, 1, 1)
    assert wobbly["mean"] == pytest.approx(0.965)  # of the runs that trained
    assert (wobbly["trained_low"], wobbly["trained_high"]) == pytest.approx((0.0676, 0.9324), abs=1e-4)
    # 0/4 against 5/5 is decided by the exact test of the success rates, not left "untestable".
    assert zeros["vs_reference"] == "lower success rate" and zeros["success_p"] < 0.025
    assert wobbly["pairs"] == 2 and wobbly["method"] == "paired t" and wobbly["success_p"] > 0.025
    assert "| zeros | 0/4 [0, 60]% | 0 / 4 / 0 / 0 | n/a |" in "\n".join(rows)


def test_runs_far_below_the_cells_best_count_as_partial_failures():
    """The strict criterion: 24-44% runs have learned something, but are not trained networks; they
    leave the accuracy comparison and count as failures (*partial*) against the success rate."""
    c = cell({"he_normal": REF, "gaussian_1": [0.24, 0.44, 0.97, 0.30, 0.35]})
    _, summary = cell_table(judged(c, 0.10), 0.95, 0.003)
    g = summary["initializers"]["gaussian_1"]
    assert (g["trained"], g["partial"], g["stuck"]) == (1, 4, 0)
    assert g["vs_reference"] == "inconclusive" or g["vs_reference"].endswith("success rate")
    assert summary["trained_floor"] == pytest.approx(0.977 - 0.10)
    # Under the old criterion (final training accuracy >= 20%) all five counted as trained.
    _, old = cell_table(c, 0.95, 0.003)
    assert old["initializers"]["gaussian_1"]["trained"] == 5


def test_diagnostics_are_written_as_dvc_plot_data(tmp_path):
    nan = float("nan")

    def member(label: str, scale: float) -> dict:
        # 2 epochs (0 = at init, 1) x 2 layers; an all-NaN layer is left out.
        return {"label": label, "diagnostics": {
            stat: [[scale * (1 + e) * (1 + layer) if not (stat == "dead_fraction" and layer == 1)
                    else nan for layer in range(2)] for e in range(2)] for stat in STATS}}

    cell = {"members": [member("he_normal", 1.0), member("he_normal", 3.0), member("zeros", 0.0)]}
    rows = diag_plots.rows(cell, "act_std")
    he = {(r["layer"], r["epoch"]): r["act_std"] for r in rows if r["initializer"] == "he_normal"}
    assert he == {(1, 0): 2.0, (2, 0): 4.0, (1, 1): 4.0, (2, 1): 8.0}  # means over the 2 seeds
    assert all(r["seeds"] == 2 for r in rows if r["initializer"] == "he_normal")
    dead = diag_plots.rows(cell, "dead_fraction")
    assert {r["layer"] for r in dead} == {1}  # the all-NaN output layer is left out
    paths = diag_plots.write({"baseline": cell, "depth-2-relu": cell}, tmp_path)
    assert len(paths) == 2 * len(STATS)
    with (tmp_path / "grad_norm" / "depth-2-relu.csv").open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["initializer", "layer", "epoch", "grad_norm", "seeds"]
    assert len(table) == 8  # 2 initializers x 2 layers x 2 epochs
    assert float(next(r for r in table if r["initializer"] == "zeros")["grad_norm"]) == 0.0



def trained(label: str, seed: int, test_accuracy: float, val: list[float]) -> dict:
    history = [{"epoch": e + 1, "loss": 1.0 / (e + 1), "accuracy": v, "val_loss": 1.0, "val_accuracy": v}
               for e, v in enumerate(val)]
    return {"label": label, "initializer": "he_normal", "seed_index": seed, "history": history,
            "test_accuracy": test_accuracy, "test_loss": 0.1, "diverged": False,
            "final_train_loss": history[-1]["loss"]}


def test_a_cell_is_written_as_results_metrics_and_curves(tmp_path):
    members = [trained("he", 0, 0.97, [0.95, 0.97, 0.98]), trained("he", 1, 0.99, [0.96, 0.96, 0.98]),
               trained("late", 0, 0.90, [0.90, 0.91, 0.96])]
    summary = results.initializer_summary(members[:2])
    assert summary["seeds"] == 2 and summary["test_accuracy"] == pytest.approx(0.98)
    assert summary["test_accuracy_sd"] == pytest.approx(np.std([0.97, 0.99], ddof=1))
    assert summary["epochs_to_val_97"] == 2.5  # epochs 2 and 3
    assert summary["best_val_accuracy"] == pytest.approx(0.98)
    late = results.initializer_summary(members[2:])
    assert late["epochs_to_val_97"] is None and late["test_accuracy_sd"] is None  # one seed
    with pytest.raises(FileNotFoundError, match=r"results.json is missing: train cell 'baseline'"):
        results.read_cell(tmp_path / "baseline")
    cell = {"cell": "baseline", "activation": "relu", "members": members}
    results.write_cell(tmp_path / "baseline", cell)
    assert results.read_cell(tmp_path / "baseline") == cell
    assert json.loads((tmp_path / "baseline" / "metrics" / "he.json").read_text()) == summary
    with (tmp_path / "baseline" / "curves" / "he.csv").open() as f:
        curve = list(csv.DictReader(f))
    assert list(curve[0]) == ["epoch", *results.CURVE_KEYS]
    assert [float(r["val_accuracy"]) for r in curve] == pytest.approx([0.955, 0.965, 0.98])
    table = comparison(cell)
    assert table[2].startswith("| he (he_normal) | 0.9800 |")  # best first
    assert table[2].endswith("| 2.5 | 0/2 |") and len(table) == 4
