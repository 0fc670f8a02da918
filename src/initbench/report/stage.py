"""The ``report`` stage: ``reports/report.md``, its figures, ``summary.json`` and the diagnostics
CSVs, from every cell's ``results.json``; logged to the pipeline's parent MLflow run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from initbench import publish, tracking
from initbench.config import Params
from initbench.paths import REPORT_FILES, atomic_output, cell_name, check_output
from initbench.report import diag_plots, figures, tracked
from initbench.report.stats import t_interval
from initbench.report.tables import (
    CLAIMS,
    by_label,
    cell_table,
    comparison,
    comparison_columns,
    init_profile,
    literature_checks,
    load_cells,
    pct,
)


def _claims(baseline: dict[str, Any], confidence: float) -> list[str]:
    acc = by_label(baseline, "test_accuracy")
    rows = ["| starting claim | initializer here | claimed | measured % (mean [CI]) | verdict |",
            "|---|---|---:|---:|---|"]
    for name, label, claimed in CLAIMS:
        if label not in acc:
            rows.append(f"| {name} | {label} | {100 * claimed:.1f} | not in this run | - |")
            continue
        iv = t_interval(acc[label], confidence)
        half = max(0.005, (iv.high - iv.low) / 2 if math.isfinite(iv.low) else 0.005)
        gap = iv.mean - claimed
        words = ("reproduced" if abs(gap) <= half else
                 f"not reproduced: {100 * abs(gap):.1f} pp {'higher' if gap > 0 else 'lower'}")
        rows.append(f"| {name} | {label} | {100 * claimed:.1f} | {pct(iv)} | {words} |")
    return rows


def _findings(summary: dict[str, Any]) -> list[str]:
    lines = []
    for cell, s in summary.items():
        inits = s["initializers"]
        sane = {k: v for k, v in inits.items() if v["divergence_rate"] == 0 and math.isfinite(v["mean"])}
        n_same = sum(v["vs_reference"] == "no detectable difference"
                     for k, v in inits.items() if k != s["reference"])
        better = [k for k, v in inits.items() if v["vs_reference"] == "higher accuracy"]
        worse = [k for k, v in inits.items() if v["vs_reference"] == "lower accuracy"]
        failed = [k for k, v in inits.items() if v["divergence_rate"] > 0]
        spread = (max(v["mean"] for v in sane.values()) - min(v["mean"] for v in sane.values())
                  if sane else math.nan)
        lines.append(
            f"- **{cell}** (reference {s['reference']}): {n_same} of {len(inits) - 1} initializers "
            f"show no detectable difference from it; higher: {', '.join(better) or 'none'}; lower: "
            f"{', '.join(worse) or 'none'}; diverged or stuck at chance in some seed: "
            f"{', '.join(failed) or 'none'}; spread of means among those that never did: "
            f"{100 * spread:.2f} pp.")
    return lines


def write_report(params: Params, cells_dir: Path, out_dir: Path, root: Path) -> dict[str, Any]:
    """Run the stage: write ``out_dir`` (report.md, figures/, summary.json, diagnostics/) atomically."""
    check_output(out_dir, REPORT_FILES)
    tracking.use_project_store()
    cells = load_cells(params, cells_dir)
    conf, dc = params.study.confidence, params.study.depth
    with atomic_output(out_dir, REPORT_FILES) as tmp:
        fig_dir = tmp / "figures"
        fig_dir.mkdir(parents=True)
        summary, tables = {}, {}
        for name, cell in cells.items():
            tables[name], summary[name] = cell_table(cell, conf)
        figures.comparison(cells["baseline"]["members"], fig_dir / "comparison.png")
        figures.learning_curves(cells["baseline"]["members"], fig_dir / "baseline_curves.png")
        if dc.depths:
            labels = list(dc.initializers)
            acc = {(d, a, lab): t_interval(by_label(cells[cell_name(d, a)], "test_accuracy")[lab], conf)
                   for d in dc.depths for a in dc.activations for lab in labels}
            figures.accuracy_vs_depth(acc, dc.depths, dc.activations, labels,
                                      fig_dir / "accuracy_vs_depth.png")
            deepest = max(dc.depths)
            deep = {f"depth {deepest}, {a}": cells[cell_name(deepest, a)] for a in dc.activations}
            figures.per_layer({k: init_profile(c, "act_std") for k, c in deep.items()},
                              "activation std", "Activation std per layer at initialization",
                              fig_dir / "activation_std_at_init.png")
            figures.per_layer({k: init_profile(c, "grad_norm") for k, c in deep.items()},
                              "||dL/dW||", "Kernel gradient norm per layer at initialization",
                              fig_dir / "gradient_norm_at_init.png")
        diag_plots.write(cells, tmp / "diagnostics")
        tracked.write(cells["baseline"], tmp)
        (tmp / "report.md").write_text(_markdown(params, cells, tables, summary))
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        publish.log_report(params.experiment, root, tmp, comparison_columns(cells["baseline"]),
                           params.registered_model, params.study.seeds)
    return summary


def _markdown(params: Params, cells: dict[str, Any], tables: dict[str, list[str]],
              summary: dict[str, Any]) -> str:
    dc, base = params.study.depth, cells["baseline"]
    seeds = "1 seed" if params.study.seeds == 1 else f"{params.study.seeds} seeds"
    lines = [
        "# initbench study report", "",
        "Generated by the `report` stage of `dvc repro` from `data/train/<cell>/results.json`; "
        "do not edit. Every number below comes from those runs.", "",
        f"Confidence intervals: Student t, {params.study.confidence:.0%}, over seeds. Differences "
        "to a cell's reference initializer are Welch intervals, Bonferroni-adjusted for the number "
        f"of initializers compared (family-wise {params.study.confidence:.0%}); a difference whose "
        "interval contains 0 is reported as *no detectable difference*, not as a ranking. With one "
        "seed there is no interval: differences are then not tested at all.",
        "", "## What the data show", "", *_findings(summary), "",
    ]
    if dc.depths:
        lines += ["### Checks against the literature", "",
                  *literature_checks(cells, max(dc.depths)), ""]
    lines += [
        f"## 1. The pipeline's model: MLP 784-{'-'.join(map(str, params.model.hidden))}-10 "
        f"({params.model.activation}), {params.train.optimizer} lr {params.train.learning_rate}, "
        f"batch {params.train.batch_size}, {params.train.epochs} epochs, {seeds}, "
        f"{base['config']['n_train']} training images", "",
        "### Comparison", "", *comparison(base), "", "![comparison](figures/comparison.png)", "",
        "### Statistics over seeds", "", *tables["baseline"], "",
        "![baseline curves](figures/baseline_curves.png)", "",
        "### The study's starting claims", "", *_claims(base, params.study.confidence), "",
    ]
    if dc.depths:
        lines += _depth_sections(params, cells, tables)
    return "\n".join(lines) + "\n"


def _depth_sections(params: Params, cells: dict[str, Any], tables: dict[str, list[str]]) -> list[str]:
    dc = params.study.depth
    deepest = max(dc.depths)
    n_train = cells[cell_name(deepest, dc.activations[0])]["config"]["n_train"]
    lines = [
        f"## 2. Depth: plain MLPs of width {dc.width}, {dc.optimizer} lr {dc.learning_rate} "
        f"momentum {dc.momentum}, batch {dc.batch_size}, {dc.epochs} epochs, {dc.seeds} seeds, "
        f"{n_train} training images", "",
        "![accuracy vs depth](figures/accuracy_vs_depth.png)", "",
    ]
    for d in dc.depths:
        for a in dc.activations:
            lines += [f"### {d} hidden layers, {a}", "", *tables[cell_name(d, a)], ""]
    lines += [
        f"## 3. Signal propagation at initialization (depth {deepest}, seed 0)", "",
        "Every statistic of every cell, per layer, at initialization and after each epoch (means "
        "over seeds): `reports/diagnostics/<statistic>/<cell>.csv`, declared as DVC plots -- "
        "`dvc plots show reports/diagnostics`, or `dvc plots diff` between experiments.", "",
        "![activation std](figures/activation_std_at_init.png)", "",
        "![gradient norm](figures/gradient_norm_at_init.png)", "",
        "| cell | initializer | act std layer 1 | act std last hidden | dead/saturated (mean) "
        "| grad norm layer 1 | grad norm last hidden |", "|---|---|---:|---:|---:|---:|---:|",
    ]
    for a in dc.activations:
        cell = cells[cell_name(deepest, a)]
        std, grad = init_profile(cell, "act_std"), init_profile(cell, "grad_norm")
        dead = init_profile(cell, "dead_fraction")
        for label in std:
            lines.append(f"| {deepest}-{a} | {label} | {std[label][0]:.3g} | {std[label][-1]:.3g} "
                         f"| {np.nanmean(dead[label]):.2f} | {grad[label][0]:.3g} "
                         f"| {grad[label][-1]:.3g} |")
    return lines
