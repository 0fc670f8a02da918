"""``initbench log``: replay the workspace's DVC outputs into the current MLflow store.

MLflow is a tracker, not a DVC dependency: pointing ``MLFLOW_TRACKING_URI`` at a new server, or
restoring outputs from DVC's cache, runs no stage and so logs nothing. This command logs what the
outputs hold -- every cell's models (``data/train/<cell>/results.json``: curves, test metrics,
diagnostics), the pipeline cell's ``.keras`` files (``data/runs/<cell>/``) and the report
(``reports/``) -- through the same :class:`initbench.modelruns.ModelRuns` the train stage uses, so
the runs look exactly like the stage's (tagged ``initbench.replayed``). Nothing is retrained.
Every input is checked before the first run is made: a missing model file is one line, and no
run is created; a run that does get made ends FINISHED, or FAILED/KILLED with the command.
"""

from __future__ import annotations

import json

from initbench import publish, tracking
from initbench.config import Params
from initbench.paths import RUNS_FILE, Paths
from initbench.report.tables import comparison_columns
from initbench.results import read_cell


def _cell_inputs(params: Params, paths: Paths, name: str) -> tuple[dict, dict | None]:
    """The cell's results and, if it saves models, the ``.keras`` file of each model by (label,
    seed index) -- every one checked to exist, so a missing file fails before any run is made."""
    from initbench.train.cell import plan

    cell = params.cell(name)
    results = read_cell(paths.cell_dir(name))
    have = {(r["label"], r["seed_index"]) for r in results["members"]}
    for m in plan(cell, params.train.seed, params.study.vary_data_order):
        if (m.label, m.seed_index) not in have:
            raise ValueError(f"{paths.cell_dir(name) / 'results.json'} holds no model {m.label} "
                             f"seed {m.seed_index}: it was written with other params; rerun its "
                             "stage (`dvc repro`) before logging it")
    runs_file = paths.runs_dir(name) / RUNS_FILE
    files = ({(r["label"], r["seed_index"]): r.get("model_file")
              for r in json.loads(runs_file.read_text())["runs"]} if runs_file.is_file() else {})
    if not any(files.values()):
        return results, None
    for (label, seed), file in sorted(files.items()):
        if not file or not (paths.runs_dir(name) / file).is_file():
            where = paths.runs_dir(name) / file if file else f"no model file in {runs_file}"
            raise FileNotFoundError(f"{where}: missing (model {label} seed {seed} of cell "
                                    f"{name}); nothing logged: restore it (`dvc checkout`, `dvc "
                                    "pull`) or rerun the cell's stage")
    return results, files


def replay(params: Params, paths: Paths, cells: list[str] | None = None) -> dict[str, int]:
    """Log the given cells (default: every cell of params.yaml that has outputs); return the
    number of model runs logged per cell. Every input is checked first: a missing model file
    fails in one line before any run is made."""
    import keras

    from initbench.train.cell import plan
    from initbench.train.records import cell_data
    from initbench.train.stage import tracker

    names = cells or [c for c in params.cells() if (paths.cell_dir(c) / "results.json").is_file()]
    if not names:
        raise FileNotFoundError(f"no trained cell in {paths.cells}: run `dvc repro` (or `dvc "
                                "pull`/`dvc checkout`) first")
    inputs = {name: _cell_inputs(params, paths, name) for name in names}
    tracking.use_project_store()
    logged = {}
    with tracking.parent_run(params.experiment, paths.root) as (parent, exp):
        for name, (results, files) in inputs.items():
            cell = params.cell(name)
            npz = paths.processed(cell.dataset)
            by_key = {(r["label"], r["seed_index"]): r for r in results["members"]}
            # The models exist: "saving" one names its file, and the tracker logs it.
            save = (lambda m, _model, files=files: files[m.label, m.seed_index]) if files else None
            with tracker(params, cell, cell_data(params, cell, npz), npz, paths.root, parent, exp,
                         save, tags={"initbench.replayed": "true"}) as runs:
                for m in plan(cell, params.train.seed, params.study.vary_data_order):
                    r = by_key[m.label, m.seed_index]
                    runs.start([m])
                    for row in r["history"]:
                        runs.epoch([m], row["epoch"], [row])
                    model = (keras.models.load_model(paths.runs_dir(name) / files[m.label, m.seed_index])
                             if files else None)
                    runs.finish([m], [r], [model])
            if runs.error:
                raise tracking.TrackingError(f"logging {name} failed: {runs.error}")
            logged[name] = len(runs.records)
        if (paths.reports / "report.md").is_file() and "baseline" in names:
            publish.log_report(params.experiment, paths.root, paths.reports,
                                comparison_columns(inputs["baseline"][0]))
    return logged
