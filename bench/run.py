"""Benchmark: initbench end to end and its trainer vs plain Keras (one keras.Model.fit per model).

Cases (``--cases``, default all), each job in its own process, interleaved and repeated:
  * e2e: the article's experiment (4 initializers, 784-128-10 ReLU, Adam, batch 32, one seed) as
    whole processes: `dvc repro` of a fresh project copy vs bench/article_keras.py (bench/e2e.py)
    -> seconds of each, end_to_end_speedup = median(keras) / median(dvc repro); target 4x;
  * trainer: the baseline work (784-128-10 ReLU MLP, Adam, batch 32, the first N (initializer,
    seed) pairs of params.yaml, E epochs on the full training split; default: every initializer,
    one seed, train.epochs) with the naive reference and with initbench.train.cell.train_cell
    (what the train stage runs, minus MLflow and files) -> model-epochs/s of each, their ratio,
    the same over the epochs after the first (no tracing/compilation), samples/s, GFLOP/s, test
    accuracies of both and their paired differences (95% t-interval);
  * deep: the deep work (20 x 256 ReLU MLP, SGD momentum, batch 128) through train_cell ->
    achieved GFLOP/s vs the float32 matmul rate numpy reaches on this machine in the same run;
  * conv: the conv cells' work (a CNN of study.conv's width, 4 conv layers, its optimizer, one
    model per initializer of study.conv, 2 epochs on 10,000 images) as one keras.Model.fit per
    model vs train_cell's stacked CNNs -> model-epochs/s of each and their ratio; target 5x;
  * overhead: imports of the train stage, `initbench validate` and `initbench --help` process
    times, MLflow run creation, a no-op `dvc repro`.
Prints a summary and writes JSON (default bench/results.json). FLOPs are counted from the
architecture: 2 per multiply-add forward, backward = 2x forward, so 6 x MACs per training sample,
plus 2 x MACs per sample of the per-epoch validation pass (diagnostics and test not counted).
Usage: python bench/run.py [--cases e2e,trainer,deep,conv,overhead] [--repeats 2] [--models N]
       [--epochs E] [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import contextlib
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

from overhead import overhead  # noqa: E402 - bench/ is the script's own directory
from worker import macs  # noqa: E402

PARITY_MARGIN_PP = 0.3  # equivalence margin of the parity verdict (params.yaml's, in pp)
CASES = ("e2e", "trainer", "deep", "conv", "overhead")


def job(spec: dict) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "worker.py"), json.dumps(spec)],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"bench job {spec['mode']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def lockstep(specs: list[dict]) -> list[dict]:
    """Run the jobs side by side, one epoch at a time (worker.py's Gate): each turn goes to the job
    that has done the smallest fraction of its model-epochs, so the naive job's ten minutes and the
    stacked job's one are spread over the same stretch of the machine's time."""
    with contextlib.ExitStack() as files:
        errs = [files.enter_context(tempfile.TemporaryFile()) for _ in specs]
        procs = [subprocess.Popen([sys.executable, str(ROOT / "bench" / "worker.py"),
                                   json.dumps({**spec, "lockstep": True})],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                  text=True, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
                 for spec, err in zip(specs, errs, strict=True)]
        done: list[float] = [0.0] * len(procs)
        results: list[dict | None] = [None] * len(procs)

        def advance(i: int) -> None:  # read job i's output up to its next turn or its result
            for line in procs[i].stdout:
                if line.startswith("GATE "):
                    done[i] = float(line[5:])
                    return
                if line.startswith("RESULT "):
                    results[i] = json.loads(line[7:])
                    return
            procs[i].wait()
            errs[i].seek(0)
            raise RuntimeError(f"bench job {specs[i]['mode']} failed:\n"
                               f"{errs[i].read().decode()[-3000:]}")

        try:
            for i in range(len(procs)):  # both started, data loaded: nothing timed has run yet
                advance(i)
            while None in results:
                i = min((j for j, r in enumerate(results) if r is None), key=lambda j: done[j])
                procs[i].stdin.write("go\n")
                procs[i].stdin.flush()
                advance(i)
        except BaseException:
            for proc in procs:
                proc.kill()
            raise
        for proc in procs:
            proc.wait()
    return results


def parity(naive: list, stacked: list) -> dict:
    """Paired test-accuracy differences (stacked - naive, pp) over the models that trained."""
    from initbench.report.stats import t_interval, verdict
    from initbench.train.cell import CHANCE_ACCURACY

    diffs = [100 * (s[2] - n[2]) for n, s in zip(naive, stacked, strict=True)
             if n[:2] == s[:2] and min(n[2], s[2]) > CHANCE_ACCURACY]
    iv = t_interval(diffs, 0.95)
    return {"models": iv.n, "mean_pp": iv.mean, "ci95_pp": [iv.low, iv.high],
            "verdict": verdict(iv, PARITY_MARGIN_PP, "accuracy (stacked vs naive)")}


def epoch_flops(hidden: list[int], run: dict) -> int:
    """One model-epoch: 6 x MACs per training sample, 2 x MACs per validation sample."""
    return macs(hidden) * (6 * run["n_train"] + 2 * run["n_val"])


def med(runs: list[dict]) -> float:
    return statistics.median(r["seconds"] for r in runs)


def warm(runs: list[dict]) -> float:
    """Model-epochs/s over the epochs that compiled/traced nothing (median of repeats)."""
    return statistics.median(sum(k for k, first, _ in r["epochs"] if not first)
                             / sum(t for _, first, t in r["epochs"] if not first) for r in runs)


def trainer_case(base: dict, repeats: int, name: str = "trainer") -> dict:
    naive, stacked = [], []
    for r in range(repeats):
        print(f"{name} repeat {r + 1}/{repeats}", flush=True)
        n, s = lockstep([{**base, "mode": "naive"}, {**base, "mode": "stacked"}])
        naive.append(n)
        stacked.append(s)
    me, n_train = base["models"] * base["epochs"], stacked[0]["n_train"]
    flops = None if "conv" in base else epoch_flops(base["hidden"], stacked[0]) * me

    def figures(runs: list[dict]) -> dict:
        return {"model_epochs_per_s": me / med(runs), "samples_per_s": n_train * me / med(runs),
                "gflops": None if flops is None else flops / med(runs) / 1e9,
                "warm_model_epochs_per_s": warm(runs) if base["epochs"] > 1 else None,
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "seconds": [r["seconds"] for r in runs]}

    out = {"work": {k: base[k] for k in ("hidden", "conv", "batch_size", "epochs", "models")
                    if k in base}
           | {"n_train": n_train},
           "naive": figures(naive),
           "stacked": figures(stacked) | {"stack": stacked[0]["stack"], "stacks": stacked[0]["stacks"],
                                          "timing": stacked[0]["timing"]},
           "test_accuracy": {"naive": naive[0]["test_accuracy"], "stacked": stacked[0]["test_accuracy"]}}
    out["speedup"] = out["stacked"]["model_epochs_per_s"] / out["naive"]["model_epochs_per_s"]
    if base["epochs"] > 1:
        out["warm_speedup"] = (out["stacked"]["warm_model_epochs_per_s"]
                               / out["naive"]["warm_model_epochs_per_s"])
    return out


def deep_case(deep: dict, repeats: int) -> dict:
    runs, matmul = [], []
    for r in range(repeats):
        print(f"deep repeat {r + 1}/{repeats}", flush=True)
        matmul.append(job({"mode": "matmul"}))
        runs.append(job({**deep, "mode": "stacked"}))
    flops = epoch_flops(deep["hidden"], runs[0]) * deep["models"] * deep["epochs"]
    # Rate over the epochs themselves (training + validation pass), not the test or diagnostics.
    epoch_s = statistics.median(sum(t for *_, t in r["epochs"]) for r in runs)
    rate = statistics.median(m["gflops"] for m in matmul)
    gflops = flops / epoch_s / 1e9
    return {"work": {k: deep[k] for k in ("hidden", "batch_size", "epochs", "models")}
            | {"n_train": runs[0]["n_train"]},
            "gflops": gflops, "stack": runs[0]["stack"], "matmul_gflops": rate,
            "fraction_of_matmul": gflops / rate, "seconds": [r["seconds"] for r in runs],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def summary(result: dict) -> None:
    if "trainer" in result:
        t = result["trainer"]
        acc = t["accuracy_parity"]
        warm_note = f" ({t['warm_speedup']:.1f}x after compilation)" if "warm_speedup" in t else ""
        print(f"trainer: test accuracy, stacked - naive over {acc['models']} models: "
              f"{acc['mean_pp']:+.2f} pp, 95% CI [{acc['ci95_pp'][0]:+.2f}, {acc['ci95_pp'][1]:+.2f}]: "
              f"{acc['verdict']}")
        print(f"trainer: speed-up (model-epochs/s, median of {len(t['naive']['seconds'])}): "
              f"{t['speedup']:.1f}x{warm_note}")
    if "conv" in result:
        c = result["conv"]
        print(f"conv: {c['work']['conv'][1]} conv layers x {c['work']['conv'][0]} filters, "
              f"speed-up (model-epochs/s, median of {len(c['naive']['seconds'])}): "
              f"{c['speedup']:.1f}x (target: at least 5x); test accuracy, stacked - naive: "
              f"{c['accuracy_parity']['mean_pp']:+.2f} pp ({c['accuracy_parity']['verdict']})")
    if "deep" in result:
        print(f"deep MLP: {result['deep']['gflops']:.1f} GFLOP/s = "
              f"{100 * result['deep']['fraction_of_matmul']:.0f}% of the matmul rate")
    if "overhead" in result:
        o = result["overhead"]
        print(f"overhead: train-stage imports {o['stage_imports_s']:.2f} s, `initbench validate` "
              f"{o['initbench_validate_s']:.2f} s, `initbench --help` {o['initbench_help_s']:.2f} s")
    if "end_to_end" in result:
        e = result["end_to_end"]
        print(f"end to end (the article's experiment, {e['work']['epochs']} epochs): dvc repro "
              f"{e['dvc_repro_median_s']:.1f} s vs Keras script {e['keras_script_median_s']:.1f} s "
              f"(medians of {len(e['dvc_repro_seconds'])}): {e['end_to_end_speedup']:.2f}x "
              f"(target: at least {e['target']:.0f}x); stages run: {', '.join(e['stages_ran'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--models", type=int, help="trainer: default one per initializer of params.yaml")
    ap.add_argument("--epochs", type=int, help="trainer and e2e: default train.epochs of params.yaml")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = ap.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not cases or set(cases) - set(CASES):
        ap.error(f"--cases: choose from {', '.join(CASES)}")

    from initbench import config

    params = config.load(ROOT / "params.yaml")
    data = ROOT / "data" / "processed" / f"{params.data.dataset}.npz"
    if {"trainer", "deep", "conv"} & set(cases) and not data.is_file():
        sys.exit(f"{data} is missing: run `dvc repro normalize` first")
    labels = list(params.initializers)
    models = args.models or len(labels)
    epochs = args.epochs or params.train.epochs
    base = {"params": str(ROOT / "params.yaml"), "data": str(data), "initializers": labels,
            "seeds": -(-models // len(labels)), "models": models, "hidden": list(params.model.hidden),
            "activation": "relu", "optimizer": "adam", "lr": 0.001, "momentum": 0.0,
            "batch_size": 32, "epochs": epochs, "train_limit": None,
            "diag_batch": params.study.diagnostics_batch}
    # The conv cells' work: 16 filters x 4 conv layers, the conv study's optimizer, one model per
    # initializer of study.conv (its seed 0), 2 epochs on 10,000 images.
    cc = params.study.conv
    conv = {**base, "initializers": list(cc.initializers), "seeds": 1, "models": len(cc.initializers),
            "conv": [cc.width, 4], "optimizer": cc.optimizer, "lr": cc.learning_rate,
            "momentum": cc.momentum, "batch_size": cc.batch_size, "epochs": 2, "train_limit": 10000}
    deep = {**base, "initializers": ["he_normal"], "seeds": 8, "models": 8, "hidden": [256] * 20,
            "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "batch_size": 128, "epochs": 1,
            "train_limit": 20000}

    result = {"date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "cases": cases}
    if "e2e" in cases:
        from e2e import run_e2e

        result["end_to_end"] = run_e2e(args.repeats, args.epochs)
    if "trainer" in cases:
        result["trainer"] = trainer_case(base, args.repeats)
    if "deep" in cases:
        result["deep"] = deep_case(deep, args.repeats)
    if "conv" in cases:
        result["conv"] = trainer_case(conv, args.repeats, "conv")
    if "overhead" in cases:
        result["overhead"] = overhead(job)
    for case in ("trainer", "conv"):  # imports TensorFlow here: only once every job has run
        if case in result:
            acc = result[case]["test_accuracy"]
            result[case]["accuracy_parity"] = parity(acc["naive"], acc["stacked"])
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "trainer"}
                     | ({"trainer": {k: v for k, v in result["trainer"].items() if k != "test_accuracy"}}
                        if "trainer" in result else {}), indent=1))
    summary(result)


if __name__ == "__main__":
    main()
