"""Submit one Kubernetes Job per cell, all under one MLflow run (a sweep over many hosts).

    MLFLOW_TRACKING_URI=http://<server>:5000 KUBE_MLFLOW_TRACKING_URI=http://<in-cluster>:5000 \\
        python deploy/kubernetes/submit_cells.py [--cells train,train_depth@5-relu] [-P epochs=3]

Each Job is ``mlflow run deploy/kubernetes --backend kubernetes -e cell -P stage=<stage>`` through
MLflow's Python API, inside one parent run: MLflow makes every project run a child of it, and each
cell's model runs are children of its project run. Default cells: every cell of params.yaml. The
script waits for the Jobs; the parent ends FINISHED when every Job succeeded, FAILED otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"


def submit(stages: list[str], parameters: dict[str, str], wait: bool = True,
           name: str | None = None) -> tuple[str, list]:
    """Submit the Jobs; return (parent run id, submitted runs). With ``wait=False`` the parent is
    left active in this process (the caller ends it)."""
    import mlflow
    import mlflow.projects

    from initbench import config
    from initbench.tracking import ROLE_TAG, SWEEP_ROLE

    mlflow.set_experiment(config.load(ROOT / "params.yaml").experiment)
    parent = mlflow.start_run(run_name=name or "k8s " + time.strftime("%Y-%m-%d %H:%M:%S"),
                              tags={ROLE_TAG: SWEEP_ROLE})
    status = "FAILED"
    try:
        submitted = [mlflow.projects.run(
            str(K8S), entry_point="cell", parameters={**parameters, "stage": stage},
            backend="kubernetes", backend_config=str(K8S / "kubernetes_config.json"),
            synchronous=False) for stage in stages]
        if not wait:
            status = "RUNNING"
            return parent.info.run_id, submitted
        status = "FINISHED" if all([run.wait() for run in submitted]) else "FAILED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if status != "RUNNING":
            mlflow.end_run(status)
    return parent.info.run_id, submitted


def main(argv: list[str] | None = None) -> None:
    from initbench import config
    from initbench.paths import stage_of_cell

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", help="comma-separated DVC stages (default: every cell's)")
    p.add_argument("-P", dest="params", action="append", default=[], metavar="NAME=VALUE",
                   help="an entry-point parameter (epochs, seeds), as for mlflow run")
    args = p.parse_args(argv)
    params = dict(item.partition("=")[::2] for item in args.params)
    if bad := sorted(set(params) - {"epochs", "seeds"}):
        sys.exit(f"submit_cells: unknown parameter(s) {', '.join(bad)}; allowed: epochs, seeds")
    cells = config.load(ROOT / "params.yaml").cells()
    stages = args.cells.split(",") if args.cells else [stage_of_cell(c) for c in cells]
    known = {stage_of_cell(c) for c in cells}
    if bad := [s for s in stages if s not in known]:
        sys.exit(f"submit_cells: unknown stage(s) {', '.join(bad)}; allowed: {', '.join(sorted(known))}")
    parent, runs = submit(stages, params)
    print(f"parent run {parent}: {len(runs)} Job(s) submitted")


if __name__ == "__main__":
    main()
