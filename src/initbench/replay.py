"""``initbench log``: replay the workspace's DVC outputs into the current MLflow store.

MLflow is a tracker, not a DVC dependency: pointing ``MLFLOW_TRACKING_URI`` at a new server, or
restoring outputs from DVC's cache, runs no stage and so logs nothing. This command logs what the
outputs hold -- every cell's models (``data/train/<cell>/results.json``: curves, test metrics,
diagnostics), the pipeline cell's ``.keras`` files (``data/runs/<cell>/``) and the report
(``reports/``) -- through the same :class:`initbench.modelruns.ModelRuns` the train stage uses, so
the runs look exactly like the stage's (tagged ``initbench.replayed``). Nothing is retrained.
"""

from __future__ import annotations

import json

from initbench import publish, tracking
from initbench.config import Params
from initbench.paths import RUNS_FILE, Paths
from initbench.report.tables import comparison_columns
from initbench.results import read_cell


def replay(params: Params, paths: Paths, cells: list[str] | None = None) -> dict[str, int]:
    """Log the given cells (default: every cell of params.yaml that has outputs); return the
    number of model runs logged per cell."""
    import keras

    from initbench.train.cell import plan
    from initbench.train.records import cell_data
    from initbench.train.stage import tracker

    names = cells or [c for c in params.cells() if (paths.cell_dir(c) / "results.json").is_file()]
    if not names:
        raise FileNotFoundError(f"no trained cell in {paths.cells}: run `dvc repro` (or `dvc "
                                "pull`/`dvc checkout`) first")
    tracking.use_project_store()
    logged = {}
    with tracking.parent_run(params.experiment, paths.root) as (parent, exp):
        for name in names:
            cell = params.cell(name)
            npz = paths.processed(cell.dataset)
            results = read_cell(paths.cell_dir(name))
            runs_file = paths.runs_dir(name) / RUNS_FILE
            files = ({(r["label"], r["seed_index"]): r.get("model_file")
                      for r in json.loads(runs_file.read_text())["runs"]}
                     if runs_file.is_file() else {})
            by_key = {(r["label"], r["seed_index"]): r for r in results["members"]}
            has_models = any(files.values())
            # The models exist: "saving" one names its file, and the tracker logs it.
            save = (lambda m, _model, files=files: files[m.label, m.seed_index]) if has_models else None
            with tracker(params, cell, cell_data(params, cell, npz), npz, paths.root, parent, exp,
                         save, tags={"initbench.replayed": "true"}) as runs:
                for m in plan(cell, params.train.seed, params.study.vary_data_order):
                    r = by_key[m.label, m.seed_index]
                    runs.start([m])
                    for row in r["history"]:
                        runs.epoch([m], row["epoch"], [row])
                    model = (keras.models.load_model(paths.runs_dir(name) / files[m.label, m.seed_index])
                             if has_models else None)
                    runs.finish([m], [r], [model])
            if runs.error:
                raise tracking.TrackingError(f"logging {name} failed: {runs.error}")
            logged[name] = len(runs.records)
        if (paths.reports / "report.md").is_file() and "baseline" in names:
            publish.log_report(params.experiment, paths.root, paths.reports,
                                comparison_columns(read_cell(paths.cell_dir("baseline"))))
    return logged
