"""The ``report`` stage: ``reports/report.md``, its figures, ``summary.json`` and the diagnostics
CSVs, from every cell's ``results.json``; logged to the pipeline's parent MLflow run.

``reports/`` is git-tracked and a persistent DVC output (dvc.yaml): DVC leaves it in place while
the stage runs, and the stage replaces it in one atomic step, so a failed or interrupted report
leaves the previous one. Publishing to MLflow comes after the report is in place: a store that
fails then costs one warning line, not the report (``initbench log`` publishes it later).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from initbench import publish, tracking
from initbench.config import Params
from initbench.paths import REPORT_FILES, atomic_output, cell_name, check_output
from initbench.report import (
    answer,
    checks,
    conv,
    diag_plots,
    figures,
    figures_depth,
    isometry,
    markdown,
    phase,
    phase_figure,
    reproductions,
    strategies,
    tracked,
)
from initbench.report.tables import (
    cell_table,
    comparison_columns,
    init_profile,
    load_cells,
)


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
            tables[name], summary[name] = cell_table(cell, conf, params.study.margin(name))
        base = summary["baseline"]
        figures.comparison(figures.summary_rows(base), base["reference"], base["margin"],
                           fig_dir / "comparison.png",
                           f"Pipeline cell: paired difference from {base['reference']} "
                           f"({base['difference_confidence']:.2%} interval, Bonferroni)")
        figures.learning_curves(cells["baseline"]["members"], fig_dir / "baseline_curves.png")
        names = markdown.datasets_of(params)
        if len(names) > 1:
            figures.dataset_differences(summary, names, fig_dir / "datasets.png")
        if dc.depths:
            labels = list(dc.initializers)
            acc = figures_depth.trained_points(
                {(d, a): cells[cell_name(d, a)] for d in dc.depths for a in dc.activations}, labels, conf)
            figures_depth.accuracy_vs_depth(acc, dc.depths, dc.activations, labels,
                                            fig_dir / "accuracy_vs_depth.png", confidence=conf)
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
            acc = figures_depth.trained_points(
                {(d, a): cells[cell_name(d, a, "conv")] for d in cc.depths for a in cc.activations},
                labels, conf)
            figures_depth.accuracy_vs_depth(acc, cc.depths, cc.activations, labels,
                                            fig_dir / "accuracy_vs_conv_depth.png", "conv layers",
                                            confidence=conf)
        if params.study.phase.depths:
            phase_figure.figure(every, params.study.phase, fig_dir / "phase_diagram.png")
        diag_plots.write(cells, tmp / "diagnostics")
        tracked.write(cells["baseline"], tmp)
        syn = answer.syntheses(params, summary)
        sections = sections_of(params, every)
        text = answer.answer(params, summary, syn, {k: v["answer"] for k, v in sections.items()})
        reproduced = sections["Reproductions"]["verdicts"]
        (tmp / "report.md").write_text(markdown.markdown(params, every, tables, summary, text, syn,
                                                         reproduced))
        record = {**summary, "synthesis": syn, **{v["key"]: v["verdicts"] for v in sections.values()}}
        (tmp / "summary.json").write_text(json.dumps(record, indent=1) + "\n")
    try:
        publish.log_report(params.experiment, root, out_dir, comparison_columns(cells["baseline"]),
                           params.registered_model, params.study.seeds)
    except (tracking.TrackingError, *tracking.STORE_ERRORS) as err:
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        print(f"warning: wrote {out_dir}, but publishing it to MLflow failed ({type(err).__name__}: "
              f"{reason}); `initbench log --cell baseline` publishes it once the store answers")
    return summary


def sections_of(params: Params, cells: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The sections whose verdicts enter summary.json and the Answer: title -> {"key": its key in
    summary.json, "answer": a generated sentence, "verdicts": their summary}."""
    st, conf = params.study, params.study.confidence
    out: dict[str, dict[str, Any]] = {}
    if st.strategies.variants:
        res = strategies.summary(cells, st.strategies, conf, st.deep_equivalence_margin)
        out["Optimization strategies"] = {"key": "strategies", "answer": strategies.answer(res),
                                          "verdicts": res}
    phase_res = None
    if st.phase.depths:
        res = phase_res = phase.summary(cells, st.phase, conf)
        out["The phase diagram"] = {"key": "phase", "answer": phase.answer(res), "verdicts": res}
    if st.conv.depths:
        res = conv.summary(cells, st.conv, conf, st.deep_equivalence_margin)
        out["CNNs across depth"] = {"key": "conv", "answer": conv.answer(res), "verdicts": res}
    res = reproductions.rows(params, cells, phase_res, conf)
    out["Reproductions"] = {"key": "reproductions", "answer": reproductions.answer(res),
                            "verdicts": res}
    return out
