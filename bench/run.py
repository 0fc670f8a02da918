"""Benchmark: initbench's stacked trainer vs the naive reference (one keras.Model.fit per model).

Runs, in one invocation, interleaved and repeated, each job in its own process:
  * the baseline work (784-128-10 ReLU MLP, Adam, batch 32, the first N (initializer, seed) pairs
    of params.yaml, E epochs on the full training split; default: every initializer, one seed,
    train.epochs -- one seed's share of the baseline study) with the naive reference and with
    initbench's trainer -> model-epochs/s of each, their ratio (median of repeats), the same over
    the epochs after the first (no tracing/compilation), samples/s, achieved GFLOP/s, test
    accuracies of both and their paired differences (95% t-interval);
  * the deep work (20 x 256 ReLU MLP, SGD momentum, batch 128) with initbench's trainer ->
    achieved GFLOP/s vs the float32 matmul rate numpy reaches on this machine in the same run;
  * overheads: Python + TensorFlow + MLflow import of a stage, MLflow run creation, a no-op
    `dvc repro`.
Prints a summary and writes JSON (default bench/results.json). FLOPs are counted from the
architecture: 2 per multiply-add forward, backward = 2x forward, so 6 x MACs per sample.
Usage: python bench/run.py [--repeats 2] [--models N] [--epochs E] [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from worker import macs  # noqa: E402 - bench/ is the script's own directory


def job(spec: dict) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "worker.py"), json.dumps(spec)],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"bench job {spec['mode']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def mlflow_overhead() -> dict:
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp}/m.db")
        t = time.perf_counter()
        exp = client.create_experiment("bench")
        first = time.perf_counter() - t
        times = []
        for i in range(5):
            t = time.perf_counter()
            run = client.create_run(exp, run_name=f"r{i}")
            client.log_batch(run.info.run_id, params=[])
            client.set_terminated(run.info.run_id)
            times.append(time.perf_counter() - t)
    return {"store_creation_s": first, "run_creation_s": statistics.median(times)}


def dvc_overhead() -> dict:
    # A `dvc repro` with stale stages would retrain the whole study: measure only a true no-op.
    if subprocess.run(["dvc", "status", "--quiet"], cwd=ROOT, check=False).returncode:
        print("dvc status: the pipeline is not up to date; no-op `dvc repro` not measured", flush=True)
        return {"dvc_noop_repro_s": None}
    out = {}
    for name, cmd in (("dvc_version_s", ["dvc", "--version"]), ("dvc_noop_repro_s", ["dvc", "repro"])):
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        out[name] = time.perf_counter() - t
        if name == "dvc_noop_repro_s":
            out["dvc_noop_repro_ran_nothing"] = "Running stage" not in proc.stdout
    return out


def parity(naive: list, stacked: list) -> dict:
    """Paired test-accuracy differences (stacked - naive, pp) over the models that trained."""
    from initbench.stats import t_interval, verdict
    from initbench.study import CHANCE_ACCURACY

    diffs = [100 * (s[2] - n[2]) for n, s in zip(naive, stacked, strict=True)
             if n[:2] == s[:2] and min(n[2], s[2]) > CHANCE_ACCURACY]
    iv = t_interval(diffs, 0.95)
    return {"models": iv.n, "mean_pp": iv.mean, "ci95_pp": [iv.low, iv.high],
            "verdict": verdict(iv, "accuracy (stacked vs naive)")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--models", type=int, help="default: one per initializer of params.yaml")
    ap.add_argument("--epochs", type=int, help="default: train.epochs of params.yaml")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = ap.parse_args()

    from initbench import config

    params = config.load(ROOT / "params.yaml")
    data = ROOT / "data" / "processed" / f"{params.data.dataset}.npz"
    if not data.is_file():
        sys.exit(f"{data} is missing: run `dvc repro normalize` first")
    labels = list(params.initializers)
    # Default work: one seed's share of the baseline study -- every initializer, train.epochs
    # epochs (the study repeats it for study.seeds seeds; the per-model cost does not change).
    args.models = args.models or len(labels)
    args.epochs = args.epochs or params.train.epochs
    pairs = [(label, params.train.seed + s) for s in range(params.study.seeds) for label in labels]
    base = {"params": str(ROOT / "params.yaml"), "data": str(data),
            "models": pairs[: args.models], "hidden": list(params.model.hidden),
            "activation": "relu", "optimizer": "adam", "lr": 0.001, "momentum": 0.0,
            "batch_size": 32, "epochs": args.epochs, "n_train": 54000}
    deep = {**base, "models": [("he_normal", 42 + s) for s in range(8)], "hidden": [256] * 20,
            "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "batch_size": 128, "epochs": 1,
            "n_train": 20000}
    naive, stacked, deep_runs, matmul = [], [], [], []
    for r in range(args.repeats):
        print(f"repeat {r + 1}/{args.repeats}", flush=True)
        matmul.append(job({"mode": "matmul"}))
        naive.append(job({**base, "mode": "naive"}))
        stacked.append(job({**base, "mode": "stacked"}))
        deep_runs.append(job({**deep, "mode": "stacked"}))
    imports = [job({"mode": "import"})["seconds"] for _ in range(3)]

    me = len(base["models"]) * args.epochs
    n_train = min(base["n_train"], 54000)
    flops_base = 6 * macs(base["hidden"]) * n_train * me
    flops_deep = 6 * macs(deep["hidden"]) * deep["n_train"] * len(deep["models"])
    med = lambda runs: statistics.median(r["seconds"] for r in runs)  # noqa: E731

    def warm(runs: list[dict]) -> float:
        """Model-epochs/s over the epochs that compiled/traced nothing (median of repeats)."""
        return statistics.median(sum(k for k, first, _ in r["epochs"] if not first)
                                 / sum(t for _, first, t in r["epochs"] if not first) for r in runs)

    rate = statistics.median(m["gflops"] for m in matmul)
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "work": {"baseline": {k: base[k] for k in ("hidden", "batch_size", "epochs", "n_train")}
                 | {"models": len(base["models"])},
                 "deep": {k: deep[k] for k in ("hidden", "batch_size", "epochs", "n_train")}
                 | {"models": len(deep["models"])}},
        "naive": {"model_epochs_per_s": me / med(naive), "samples_per_s": n_train * me / med(naive),
                  "gflops": flops_base / med(naive) / 1e9,
                  "warm_model_epochs_per_s": warm(naive) if args.epochs > 1 else None,
                  "peak_rss_mb": max(r["peak_rss_mb"] for r in naive),
                  "seconds": [r["seconds"] for r in naive]},
        "stacked": {"model_epochs_per_s": me / med(stacked),
                    "samples_per_s": n_train * me / med(stacked),
                    "gflops": flops_base / med(stacked) / 1e9, "stack": stacked[0]["stack"],
                    "warm_model_epochs_per_s": warm(stacked) if args.epochs > 1 else None,
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in stacked),
                    "seconds": [r["seconds"] for r in stacked]},
        "deep_stacked": {"gflops": flops_deep / med(deep_runs) / 1e9, "stack": deep_runs[0]["stack"],
                         "seconds": [r["seconds"] for r in deep_runs],
                         "peak_rss_mb": max(r["peak_rss_mb"] for r in deep_runs)},
        "matmul_gflops": rate,
        "overhead": {"stage_imports_s": statistics.median(imports), **mlflow_overhead(),
                     **dvc_overhead()},
        "test_accuracy": {"naive": naive[0]["test_accuracy"], "stacked": stacked[0]["test_accuracy"]},
    }
    result["accuracy_parity"] = parity(naive[0]["test_accuracy"], stacked[0]["test_accuracy"])
    result["speedup"] = result["stacked"]["model_epochs_per_s"] / result["naive"]["model_epochs_per_s"]
    if args.epochs > 1:
        result["warm_speedup"] = (result["stacked"]["warm_model_epochs_per_s"]
                                  / result["naive"]["warm_model_epochs_per_s"])
    result["deep_fraction_of_matmul"] = result["deep_stacked"]["gflops"] / rate
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "test_accuracy"}, indent=1))
    warm_note = f" ({result['warm_speedup']:.1f}x after compilation)" if args.epochs > 1 else ""
    acc = result["accuracy_parity"]
    print(f"test accuracy, stacked - naive over {acc['models']} models: {acc['mean_pp']:+.2f} pp, "
          f"95% CI [{acc['ci95_pp'][0]:+.2f}, {acc['ci95_pp'][1]:+.2f}]: {acc['verdict']}")
    print(f"speed-up (model-epochs/s, median of {args.repeats}): {result['speedup']:.1f}x{warm_note}; "
          f"deep MLP at {100 * result['deep_fraction_of_matmul']:.0f}% of the matmul rate")


if __name__ == "__main__":
    main()
