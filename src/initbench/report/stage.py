"""The ``report`` stage: ``reports/report.md``, its figures, ``summary.json`` and the diagnostics
CSVs, from every cell's ``results.json``; logged to the pipeline's parent MLflow run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from initbench import publish, tracking
from initbench.config import Params
from initbench.config.strategies import TRAINING_KEYS
from initbench.paths import REPORT_FILES, atomic_output, cell_name, check_output, dataset_cell
from initbench.report import (
    checks,
    conv,
    datasets,
    diag_plots,
    figures,
    isometry,
    lr_sweep,
    phase,
    strategies,
    tracked,
)
from initbench.report.stats import bounded_interval
from initbench.report.tables import (
    by_label,
    cell_table,
    comparison,
    comparison_columns,
    detectable_pp,
    init_profile,
    load_cells,
)


def _findings(summary: dict[str, Any]) -> list[str]:
    lines = []
    for cell, s in summary.items():
        inits = {k: v for k, v in s["initializers"].items() if k != s["reference"]}

        def named(words: str, inits: dict[str, Any] = inits) -> list[str]:
            return [k for k, v in inits.items() if v["vs_reference"] == words]

        unsure = [f"{k} (detectable: {detectable_pp(inits[k]['detectable_difference'])})"
                  for k in named("inconclusive")]
        failed = [f"{k} ({v['trained']}/{v['seeds']} trained)"
                  for k, v in s["initializers"].items() if v["trained"] < v["seeds"]]
        lines.append(
            f"- **{cell}** (reference {s['reference']}, margin +-{100 * s['margin']:.1f} pp): "
            f"equivalent: {', '.join(named('equivalent')) or 'none'}; higher: "
            f"{', '.join(named('higher accuracy')) or 'none'}; lower: "
            f"{', '.join(named('lower accuracy')) or 'none'}; inconclusive: "
            f"{', '.join(unsure) or 'none'}; failed to train in some seed: "
            f"{', '.join(failed) or 'none'}.")
    return lines


def write_report(params: Params, cells_dir: Path, out_dir: Path, root: Path) -> dict[str, Any]:
    """Run the stage: write ``out_dir`` (report.md, figures/, summary.json, diagnostics/) atomically."""
    check_output(out_dir, REPORT_FILES)
    tracking.use_project_store()
    every = load_cells(params, cells_dir)
    # The phase diagram's cells are read as one grid, and the learning-rate sweep against the
    # pipeline's cell, not as cells of initializers to compare; a dataset's cell is empty when
    # that dataset is the pipeline's.
    cells = {k: v for k, v in every.items()
             if not k.startswith("phase-") and k != "lr_sweep" and v["members"]}
    conf, dc = params.study.confidence, params.study.depth
    with atomic_output(out_dir, REPORT_FILES) as tmp:
        fig_dir = tmp / "figures"
        fig_dir.mkdir(parents=True)
        summary, tables = {}, {}
        for name, cell in cells.items():
            tables[name], summary[name] = cell_table(cell, conf, params.study.equivalence_margin)
        figures.comparison(cells["baseline"]["members"], fig_dir / "comparison.png")
        figures.learning_curves(cells["baseline"]["members"], fig_dir / "baseline_curves.png")
        names = _datasets(params)
        if len(names) > 1:
            figures.dataset_differences(summary, names, fig_dir / "datasets.png")
        if dc.depths:
            labels = list(dc.initializers)
            acc = {(d, a, lab): bounded_interval(by_label(cells[cell_name(d, a)], "test_accuracy")[lab], conf)
                   for d in dc.depths for a in dc.activations for lab in labels}
            figures.accuracy_vs_depth(acc, dc.depths, dc.activations, labels,
                                      fig_dir / "accuracy_vs_depth.png")
            deepest = max(dc.depths)
            deep = {f"depth {deepest}, {a}": cells[cell_name(deepest, a)] for a in dc.activations}
            figures.per_layer({k: init_profile(c, "act_std") for k, c in deep.items()},
                              "activation std", "Activation std per layer at initialization "
                              "(seed 0; dashed: mean-field prediction)",
                              fig_dir / "activation_std_at_init.png",
                              {k: checks.predicted_profile(c) for k, c in deep.items()})
            figures.per_layer({k: init_profile(c, "grad_norm") for k, c in deep.items()},
                              "||dL/dW||", "Kernel gradient norm per layer at initialization",
                              fig_dir / "gradient_norm_at_init.png")
            if deepest > 1:
                isometry.figure(deep, fig_dir / "jacobian_spectrum.png")
        cc = params.study.conv
        if cc.depths:
            labels = list(cc.initializers)
            acc = {(d, a, lab): bounded_interval(
                       by_label(cells[cell_name(d, a, "conv")], "test_accuracy")[lab], conf)
                   for d in cc.depths for a in cc.activations for lab in labels}
            figures.accuracy_vs_depth(acc, cc.depths, cc.activations, labels,
                                      fig_dir / "accuracy_vs_conv_depth.png", "conv layers")
        if params.study.phase.depths:
            phase.figure(every, params.study.phase, fig_dir / "phase_diagram.png")
        diag_plots.write(cells, tmp / "diagnostics")
        tracked.write(cells["baseline"], tmp)
        (tmp / "report.md").write_text(_markdown(params, every, tables, summary))
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
        f"How to read it ({params.study.confidence:.0%} everywhere): a run *trained* unless its loss "
        "exploded (non-finite), or it ended at chance predicting one class (*collapsed*) or "
        "several (*stuck*); success rates carry Clopper-Pearson intervals, and accuracies are "
        "those of the runs that trained (Student t over seeds; * marks an interval clipped to the "
        "possible range, [0, 100] for an accuracy and [-100, +100] for a difference, where the t "
        "interval leaves it). "
        + ("Seed i orders the batches for every initializer of a cell and seeds its initial "
           "weights, so differences are *paired* by seed and their intervals cover initial weights "
           "and data order together. " if params.study.vary_data_order else
           "Every seed sees the same batch order: differences are paired by seed and their "
           "intervals cover the initial weights only (not the data order). ")
        + "Differences to a cell's reference are Bonferroni-adjusted for the number of "
        "initializers compared and get one of four verdicts: *higher* or *lower* (the interval "
        "excludes 0), *equivalent* (it lies within the margin of "
        f"+-{100 * params.study.equivalence_margin:.1f} pp: two one-sided tests), or *inconclusive* "
        "(neither: absence of evidence is not equivalence), with the smallest difference the "
        "design detects at 80% power beside it. With one seed nothing is tested.",
        "", "## What the data show", "", *_findings(summary), "",
    ]
    if dc.depths:
        lines += ["### Checks against the literature", "",
                  *checks.literature_checks(cells, max(dc.depths), params.study.confidence,
                                            params.study.equivalence_margin), ""]
    lines += [
        f"## 1. The pipeline's model: MLP 784-{'-'.join(map(str, params.model.hidden))}-10 "
        f"({params.model.activation}), {params.train.optimizer} lr {params.train.learning_rate}, "
        f"batch {params.train.batch_size}, {params.train.epochs} epochs, {seeds}, "
        f"{base['config']['n_train']} training images", "",
        "### Comparison", "", *comparison(base), "", "![comparison](figures/comparison.png)", "",
        "### Statistics over seeds", "", *tables["baseline"], "",
        "![baseline curves](figures/baseline_curves.png)", "",
        "### The study's starting claims", "", *checks.claims(params, base, params.study.confidence), "",
    ]
    names = _datasets(params)
    if len(names) > 1:
        lines += [f"### The same model on {len(names)} datasets", "",
                  *datasets.markdown(cells, summary, names, params.study.confidence,
                                     "figures/datasets.png"), ""]
        for cell, dataset in list(names.items())[1:]:
            lines += [f"#### Statistics over seeds on {dataset} ({cells[cell]['config']['n_train']} "
                      f"training images, {len({m['seed_index'] for m in cells[cell]['members']})} "
                      "seeds)", "", *tables[cell], ""]
    if cells["lr_sweep"]["members"]:
        lines += ["### Each initializer at its best learning rate", "",
                  *lr_sweep.markdown(base, cells["lr_sweep"], params.train.learning_rate,
                                     params.study.lr_sweep, params.study.confidence), ""]
    if dc.depths:
        lines += _depth_sections(params, cells, tables)
    number = 4 if dc.depths else 2
    cc = params.study.conv
    if cc.depths:
        lines += [f"## {number}. Convolutional networks: does He beat Xavier in deeper CNNs? "
                  f"({cc.width} filters per 3x3 conv, {cc.optimizer} lr {cc.learning_rate}, "
                  f"{cc.epochs} epochs, {cc.seeds} seeds)", "",
                  *conv.markdown(summary, cc, "figures/accuracy_vs_conv_depth.png"), ""]
        for d in cc.depths:
            for a in cc.activations:
                lines += [f"### {d} conv layers, {a}", "", *tables[cell_name(d, a, "conv")], ""]
        number += 1
    st = params.study.strategies
    if st.variants:
        plain = {k: getattr(dc, k) for k in TRAINING_KEYS}
        lines += [f"## {number}. Optimization strategies: does a better optimizer make the "
                  f"initializer matter less? ({st.depth} hidden layers, {st.activation})", "",
                  *strategies.markdown(cells, summary, st, strategies.describe(st, plain),
                                       params.study.confidence), ""]
        number += 1
    if params.study.phase.depths:
        lines += [f"## {number}. Where each weight scale trains: the phase diagram", "",
                  *phase.markdown(cells, params.study.phase, "figures/phase_diagram.png"), ""]
    return "\n".join(lines) + "\n"


def _datasets(params: Params) -> dict[str, str]:
    """cell -> dataset, the pipeline's cell first, for every dataset of the study."""
    return {dataset_cell(d) if i else "baseline": d for i, d in enumerate(params.datasets)}


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
        f"## 3. Signal propagation at initialization (depth {deepest})", "",
        "Mean-field theory (Poole et al. 2016; Schoenholz et al. 2017; `report/theory.py`) "
        "predicts each layer's pre-activation second moment from the first layer's and each "
        "layer's sigma_w^2 = fan_in x Var(W); chi_1 = sigma_w^2 E[phi'(z)^2] is the per-layer "
        "gradient factor (< 1: gradients vanish with depth, > 1: they explode). Predicted vs "
        "measured over the seeds, at initialization:", "",
    ]
    for a in dc.activations:
        lines += [f"### {deepest} hidden layers, {a}", "",
                  *checks.theory_table(cells[cell_name(deepest, a)], params.study.confidence), ""]
    lines += [
        "Every statistic of every cell, per layer, at initialization and after each epoch (means "
        "over seeds): `reports/diagnostics/<statistic>/<cell>.csv`, declared as DVC plots -- "
        "`dvc plots show reports/diagnostics`, or `dvc plots diff` between experiments. Seed 0:", "",
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
                         f"| {np.nanmean(dead[label]):.2f} | {_grad(grad[label][0])} "
                         f"| {_grad(grad[label][-1])} |")
    lines += ["", "0 (clipped): exactly zero, because the softmax output is one-hot and the loss "
              "clips every example's probability, which passes no gradient; tiny values are "
              "measured (float64 statistics: nothing under- or overflows)."]
    if deepest > 1:
        lines += ["", f"### Dynamical isometry at initialization (depth {deepest})", "",
                  "Singular values of J = dh_L / dh_1, the Jacobian of the last hidden layer's "
                  "activations with respect to the first's, pooled over 8 training examples "
                  "(Pennington et al. 2017). Mean-field theory predicts their mean square (the "
                  "product of the layers' chi_1, from each model's measured first layer); the "
                  "spread is set by the weights' distribution.", "",
                  "![Jacobian spectrum](figures/jacobian_spectrum.png)", ""]
        for a in dc.activations:
            lines += [f"**{deepest} hidden layers, {a}**", "",
                      *isometry.table(cells[cell_name(deepest, a)], params.study.confidence), ""]
    return lines


def _grad(value: float) -> str:
    return "0 (clipped)" if value == 0 else f"{value:.3g}"
