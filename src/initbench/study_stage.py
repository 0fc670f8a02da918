"""The ``study`` DVC stages: run one cell (``baseline`` or a depth cell), write it, track it.

Writes ``<out>/results.json`` (every model's curves, test metrics, divergence flag, per-layer
diagnostics and MLflow run id) and, for the baseline with ``study.save_models``, one ``.keras``
file per model under ``<out>/models/``. Every model gets its own MLflow run, a child of the
pipeline's parent run, tagged with its cell, initializer and seed: per-epoch metrics (epoch as
step), test metrics and the diagnostics as ``diag.<stat>.L<layer>`` (epoch 0 = at initialization),
plus the same diagnostics as a JSON artifact (``diagnostics.json``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from initbench import normalize, tracking
from initbench.config import InitializerSpec, Params
from initbench.paths import atomic_dir
from initbench.study import plan, subset, train_cell

RESULTS_FILE = "results.json"
_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch request


def cell_name(depth: int | None = None, activation: str | None = None) -> str:
    return "baseline" if depth is None else f"depth-{depth}-{activation}"


def cell_setup(params: Params, depth: int | None, activation: str | None):
    """(model config, train config, initializers, seeds, train_limit, save models) of a cell."""
    if depth is None:
        return (params.model, params.train, params.initializers, params.study.seeds, None,
                params.study.save_models)
    dc = params.study.depth
    if depth not in dc.depths or activation not in dc.activations:
        raise ValueError(f"depth cell {depth}-{activation} is not in study.depth "
                         f"(depths {list(dc.depths)}, activations {list(dc.activations)})")
    return (dc.model(depth, activation), dc.train(params.train.seed), dc.initializers, dc.seeds,
            dc.train_limit, False)


def _log_member(client: MlflowClient, exp_id: str, parent: str, cell: str, r: dict[str, Any],
                base: dict[str, Any], tags: dict[str, str], model_file: Path | None) -> str:
    run = client.create_run(exp_id, run_name=f"{cell}/{r['label']}/s{r['seed_index']}", tags={
        **tags, "mlflow.parentRunId": parent, tracking.ROLE_TAG: "study",
        "initbench.cell": cell, "initbench.label": r["label"], "initbench.seed": str(r["init_seed"])})
    run_id = run.info.run_id
    values = {**base, **InitializerSpec(r["label"], r["initializer"], r["args"]).flat(),
              "init_seed": r["init_seed"], "data_seed": r["data_seed"]}
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in values.items()])
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, row["epoch"]) for row in r["history"]
               for k, v in row.items() if k != "epoch"]
    metrics += [Metric(k, float(r[k]), now, 0) for k in ("test_loss", "test_accuracy")]
    metrics.append(Metric("diverged", float(r["diverged"]), now, 0))
    for stat, per_epoch in r["diagnostics"].items():
        metrics += [Metric(f"diag.{stat}.L{layer}", float(v), now, epoch)
                    for epoch, layers in enumerate(per_epoch) for layer, v in enumerate(layers)]
    for i in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[i:i + _BATCH])
    client.log_dict(run_id, {"layers": "L0 = first hidden layer ... last = output layer",
                             "epochs": "index 0 = at initialization, i = after epoch i",
                             **r["diagnostics"]}, "diagnostics.json")
    if model_file is not None:
        client.log_artifact(run_id, str(model_file), "model")
    client.set_terminated(run_id, "FINISHED")
    return run_id


def run_cell(params: Params, data_npz: Path, out_dir: Path, root: Path,
             depth: int | None = None, activation: str | None = None) -> dict[str, Any]:
    """Run the stage for one cell; return what was written to results.json."""
    cell = cell_name(depth, activation)
    model_cfg, train_cfg, specs, seeds, limit, save = cell_setup(params, depth, activation)
    data = normalize.load(data_npz)
    data["x_train"], data["y_train"] = subset(data["x_train"], data["y_train"], limit,
                                              params.data.split_seed)
    members = plan(specs, seeds, params.train.seed, params.study.vary_data_order)
    results, models, timing = train_cell(members, model_cfg, train_cfg, data,
                                         params.study.diagnostics_batch)
    with atomic_dir(out_dir) as tmp:
        start = time.perf_counter()
        parent, exp_id = tracking.get_or_create_parent(params.experiment, root)
        client = MlflowClient()
        stage = "study_baseline" if depth is None else f"study_depth@{depth}-{activation}"
        tags = {tracking.COMMIT_TAG: tracking.git_commit(root), tracking.STAGE_TAG: stage,
                tracking.DATA_TAG: tracking.file_sha256(data_npz)}
        base = {"cell": cell, "model.hidden": list(model_cfg.hidden),
                "model.activation": model_cfg.activation, **{f"train.{k}": v for k, v in
                                                             train_cfg.__dict__.items()},
                "n_train": len(data["y_train"])}
        for r, model in zip(results, models, strict=True):
            model_file = None
            if save:
                model_file = tmp / "models" / f"{r['label']}-s{r['seed_index']}.keras"
                model_file.parent.mkdir(exist_ok=True)
                model.save(model_file)
            r["run_id"] = _log_member(client, exp_id, parent, cell, r, base, tags, model_file)
        tracking.finish_parent(parent)
        timing["tracking_seconds"] = time.perf_counter() - start
        out = {"cell": cell, "depth": depth, "activation": model_cfg.activation,
               "config": base, "timing": timing, "members": results}
        (tmp / RESULTS_FILE).write_text(json.dumps(out) + "\n")
    return out
