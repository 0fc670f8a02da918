"""What the report stage publishes to MLflow, on the execution's pipeline run: the report
(``report/``), the comparison as an MLflow table (``comparison.json``), a description linking both
(``mlflow.note.content``) and, when ``registered_model`` is set in params.yaml, the best model of
the pipeline's cell as a new version of that registered model with the alias ``best``.

Not a DVC dependency (MLflow is a tracker): changing this never reruns a stage.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from initbench import process
from initbench.tracking import ROLE_TAG, SWEEP_ROLE, TrackingError, git_commit, parent_run


def register_best(exp_id: str, label: str, seeds: int, name: str) -> str:
    """Register the logged model of ``label``'s best seed in its latest training of the pipeline
    cell as a new version of ``name``, with the alias ``best``; return the version."""
    client = MlflowClient()
    latest = client.search_runs(
        [exp_id], f"tags.`{ROLE_TAG}` = 'model' and tags.`initbench.cell` = 'baseline' and "
        f"tags.`initbench.label` = '{label}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=seeds)
    if not latest:
        raise TrackingError(f"registered_model: no finished run of {label!r} in the store to "
                            "register; run `initbench log` to fill a new store first")
    run = max(latest, key=lambda r: r.data.metrics.get("test_accuracy", -1.0))
    models = mlflow.search_logged_models(experiment_ids=[exp_id], output_format="list",
                                         filter_string=f"source_run_id = '{run.info.run_id}'")
    if not models:
        raise TrackingError(f"registered_model: run {run.info.run_id} has no logged model")
    version = mlflow.register_model(f"models:/{models[0].model_id}", name, tags={
        "initbench.label": label, "initbench.seed_index": run.data.tags["initbench.seed_index"],
        "test_accuracy": str(run.data.metrics["test_accuracy"])}).version
    client.set_registered_model_alias(name, "best", version)
    return str(version)


def _describe(client: MlflowClient, parent: str, exp_id: str, root: Path, table: dict[str, list],
              experiment: str) -> None:
    """The pipeline run's description (``mlflow.note.content``), linking its report and table."""
    client.set_tag(parent, "initbench.report", "report/report.md")
    link = f"#/experiments/{exp_id}/runs/{parent}/artifacts"
    best = ", ".join(f"{label} {100 * acc:.2f}%" for label, acc in
                     zip(table["label"][:3], table["test_accuracy"][:3], strict=False))
    client.set_tag(parent, "mlflow.note.content", (
        f"initbench pipeline execution at commit `{git_commit(root)}`.\n\n"
        f"- [Report]({link}): `report/report.md` with its figures (also `reports/report.md` "
        "in the repository at that commit)\n"
        f"- [Comparison table]({link}): `comparison.json`, one row per initializer; best "
        f"mean test accuracy: {best}\n"
        f"- Initializer runs: `baseline/<label>` in this experiment (seeds as child runs); "
        f"depth study: experiment `{experiment}-depth`; phase diagram: `{experiment}-phase`; "
        f"learning-rate sweep: `{experiment}-lr_sweep`; other datasets: `{experiment}-dataset`"))


def log_report(experiment: str, root: Path, report_dir: Path, table: dict[str, list],
               registered_model: str | None = None, seeds: int = 1) -> None:
    """Attach the report to the execution's pipeline run: ``report/`` (report.md, figures, ...),
    the comparison as an MLflow table (``comparison.json``), and a description that links both;
    with ``registered_model``, register the best initializer's best model (alias ``best``)."""
    with parent_run(experiment, root) as (parent, exp_id), process.shielded():
        client = MlflowClient()
        # The experiments of a sweep share its run: each keeps its own report, under its name.
        sweep = client.get_run(parent).data.tags.get(ROLE_TAG) == SWEEP_ROLE
        prefix = f"{os.environ.get('DVC_EXP_NAME') or 'experiment'}/" if sweep else ""
        client.log_artifacts(parent, str(report_dir), prefix + "report")
        client.log_table(parent, table, prefix + "comparison.json")
        if not sweep:
            _describe(client, parent, exp_id, root, table, experiment)
        if registered_model:
            version = register_best(exp_id, table["label"][0], seeds, registered_model)
            client.set_tag(parent, "initbench.registered_model", f"{registered_model}/{version}")
            print(f"registered {table['label'][0]} as {registered_model} version {version} "
                  "(alias best)")
