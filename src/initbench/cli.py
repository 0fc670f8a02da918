"""The ``initbench`` command: one thin subcommand per DVC stage, plus helpers.

Each stage subcommand loads and validates the whole ``params.yaml`` first (so bad input fails
before any download or training), then calls the stage's importable function. Input and output
paths default to the project's layout (``paths.Paths``, which mirrors dvc.yaml's deps/outs), so
``dvc.yaml`` commands carry no params value: nothing from params.yaml ever reaches a shell. The
depth and phase cells' commands name their cell through DVC's own ``$DVC_STAGE``
(``train_depth@2-relu``, ``train_phase@8-tanh``).
Every expected failure is one line, ``initbench <command>: error: ...``, and a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zipfile
import zlib
from pathlib import Path

from initbench import config
from initbench.paths import Paths, cell_from_stage


def _params(args: argparse.Namespace) -> config.Params:
    return config.load(Path(args.params), args.set)


def cmd_validate(args: argparse.Namespace, paths: Paths) -> None:
    params = _params(args)
    print(f"{args.params}: valid ({len(params.initializers)} initializers: "
          f"{', '.join(params.initializers)})")


def cmd_download(args: argparse.Namespace, paths: Paths) -> None:
    from initbench.data.download import download

    params = _params(args)
    out = Path(args.out) if args.out else paths.raw
    for dataset in params.datasets:
        for name, source in download(dataset, out / dataset).items():
            print(f"{dataset}/{name}: {source}")


def cmd_normalize(args: argparse.Namespace, paths: Paths) -> None:
    from initbench.data.normalize import normalize

    params = _params(args)
    out = Path(args.out) if args.out else paths.processed_dir
    for dataset, stats in normalize(Path(args.raw) if args.raw else paths.raw, out,
                                    params.data, params.datasets).items():
        print(f"wrote {out / dataset}.npz: {stats['n']}")


def cmd_train(args: argparse.Namespace, paths: Paths) -> None:
    params = _params(args)
    args.cell = cell_from_stage(args.cell)
    cell = params.cell(args.cell)  # a clear error for an unknown cell, before TensorFlow loads
    data = Path(args.data) if args.data else paths.processed(cell.dataset)
    out = Path(args.out) if args.out else paths.cell_dir(args.cell)
    runs = Path(args.runs) if args.runs else paths.runs_dir(args.cell)
    if not cell.initializers:  # e.g. no learning-rate sweep: no TensorFlow, no MLflow run
        from initbench.train.records import run_empty_cell

        run_empty_cell(params, args.cell, data, out, runs)
        return
    from initbench import process

    with process.native_startup_silenced():
        from initbench.train.stage import run_cell

    result = run_cell(params, args.cell, data, out, runs, paths.root)
    t = result["timing"]
    print(f"{args.cell}: {len(result['members'])} models, {t['model_epochs']} model-epochs in "
          f"{t['train_seconds']:.1f} s training + {t['diagnostics_seconds']:.1f} s diagnostics "
          f"+ {t['test_seconds']:.1f} s testing; wrote {out} and {runs}")


def cmd_report(args: argparse.Namespace, paths: Paths) -> None:
    params = _params(args)
    from initbench.report.stage import write_report

    out = Path(args.out) if args.out else paths.reports
    write_report(params, Path(args.cells) if args.cells else paths.cells, out, paths.root)
    import mlflow

    print(f"wrote {out / 'report.md'}; every run: `mlflow ui --backend-store-uri "
          f"{mlflow.get_tracking_uri()}` (experiment {params.experiment!r})")


def cmd_log(args: argparse.Namespace, paths: Paths) -> None:
    params = _params(args)
    for cell in args.cell:
        params.cell(cell)  # an unknown cell fails before TensorFlow loads
    from initbench import process

    with process.native_startup_silenced():
        import keras  # noqa: F401 - TensorFlow's start-up notices go here

        from initbench.replay import replay
    logged = replay(params, paths, args.cell or None)
    import mlflow

    print(f"logged into {mlflow.get_tracking_uri()}: "
          + ", ".join(f"{cell} ({n} models)" for cell, n in logged.items()))


def cmd_profile(args: argparse.Namespace, paths: Paths) -> None:
    from initbench.profile_run import profile_command

    profile_command(paths.root, Path(args.params), args.name, args.run, args.overrides)


def cmd_pipeline(args: argparse.Namespace, paths: Paths) -> None:
    """``dvc repro [stages]`` (``dvc exp run -S ...`` with overrides), with the run ``mlflow run``
    created (if any) as the pipeline's parent run."""
    from initbench.profile_run import run_pipeline

    _params(args)  # validates params.yaml with the overrides before DVC starts anything
    sys.exit(run_pipeline(paths.root, [o for o in args.set if not o.endswith("=")], args.dvc_args))


def cmd_sweep(args: argparse.Namespace, paths: Paths) -> None:
    """Queue every combination of the --set values (DVC's grid) and run them --jobs at a time,
    all under one MLflow run (:mod:`initbench.sweep`)."""
    from initbench.sweep import run_sweep

    if args.jobs < 1:
        raise ValueError(f"--jobs is {args.jobs}; expected an integer >= 1")
    if not args.set:
        raise ValueError("nothing to sweep; give --set key=value[,value...] at least once")
    name = args.name or "sweep " + time.strftime("%Y-%m-%d %H:%M:%S")
    if run_sweep(paths.root, Path(args.params), args.set, args.jobs, name) != "FINISHED":
        sys.exit(1)


def cmd_initializers(args: argparse.Namespace, paths: Paths | None) -> None:
    from initbench.init import docs
    from initbench.init import registry as initializers

    if getattr(args, "markdown", False):
        print(docs.markdown_table())
        return
    for name in initializers.names():
        info = initializers.get_info(name)
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults.items()) or "-"
        data = " [needs data]" if info.data_dependent else ""
        print(f"{name:16}{data} Var={info.variance}; {info.distribution} [{defaults}]"
              f" for {info.activation}; {info.reference}")


def parser() -> argparse.ArgumentParser:
    from initbench import __version__

    p = argparse.ArgumentParser(prog="initbench", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"initbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def stage(name: str, func, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help)
        s.add_argument("--params", default=None, help="params file (default: <root>/params.yaml)")
        s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a parameter, e.g. train.epochs=3 (an empty value is ignored)")
        s.set_defaults(func=func)
        return s

    stage("validate", cmd_validate, "check params.yaml and exit")
    stage("download", cmd_download, "fetch the raw IDX files of every dataset").add_argument(
        "--out", help="output directory, one subdirectory per dataset (default: data/raw)")
    s = stage("normalize", cmd_normalize, "parse, split and scale every dataset's raw files")
    s.add_argument("--raw", help="raw directory, one subdirectory per dataset (default: data/raw)")
    s.add_argument("--out", help="output directory: <dataset>.npz and <dataset>.stats.json "
                                 "(default: data/processed)")
    s = stage("train", cmd_train, "train and test one cell: every initializer x seed, in stacks")
    s.add_argument("--cell", default="baseline",
                   help="baseline (the pipeline's model), lr_sweep, dataset-<dataset>, "
                        "strategy-<variant>, conv-<layers>-<activation>, depth-<depth>-<activation> "
                        "or phase-<depth>-<activation>; also the DVC stage that trains it (train, "
                        "train_lr_sweep, train_<kind>@<item>: `dvc stage list`)")
    s.add_argument("--data", help="processed archive (default: data/processed/<dataset>.npz)")
    s.add_argument("--out", help="results directory (default: data/train/<cell>)")
    s.add_argument("--runs", help="run ids, timings and models (default: data/runs/<cell>)")
    s = stage("report", cmd_report, "statistics, comparison, figures and reports/report.md")
    s.add_argument("--cells", help="directory of the trained cells (default: data/train)")
    s.add_argument("--out", help="output directory (default: reports)")
    s = stage("log", cmd_log, "replay the workspace's outputs into the current MLflow store "
              "(no training)")
    s.add_argument("--cell", action="append", default=[], help="a cell to log (default: every "
                   "trained cell); repeat for several")
    s = stage("profile", cmd_profile, "run a profile (profiles/<name>.yaml) as a DVC experiment "
              "(--run), print its dvc exp run -S values (--overrides), or overlay it onto --params")
    s.add_argument("name", help="a profile's name, e.g. quick")
    s.add_argument("--run", action="store_true", help="dvc exp run --temp -n <name> -S ...")
    s.add_argument("--overrides", action="store_true", help="print its dvc exp run -S values")
    s = stage("sweep", cmd_sweep, "run a grid of --set values in parallel (dvc queue), under one "
              "MLflow run; e.g. --set train.learning_rate=0.001,0.01 --jobs 2")
    s.add_argument("--jobs", type=int, default=2, help="experiments at a time (default 2)")
    s.add_argument("--name", help="the sweep's MLflow run name (default: sweep <date time>)")
    s = stage("pipeline", cmd_pipeline, "run `dvc repro` (used by MLproject's entry points)")
    s.add_argument("dvc_args", nargs=argparse.REMAINDER, help="passed on to dvc (e.g. stage names)")
    s = sub.add_parser("initializers", help="list the registered initializers")
    s.add_argument("--markdown", action="store_true",
                   help="print docs/initializers.md (table, gains, common formula mistakes)")
    s.set_defaults(func=cmd_initializers, params=None)
    return p


STAGES = ("download", "normalize", "train", "report", "log")
# Failures a user can cause (bad params or data, a full disk, a store that is down): one line.
EXPECTED = (config.ConfigError, ValueError, RuntimeError, OSError, EOFError, zlib.error,
            zipfile.BadZipFile)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command in STAGES:
        from initbench import process

        # TensorFlow's C++ notices (oneDNN, CPU features) are noise in a stage's log.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

        process.end_with_pipeline()
        if hasattr(sys.stdout, "reconfigure"):  # progress shows as it happens, under DVC too
            sys.stdout.reconfigure(line_buffering=True)
    try:
        paths = Paths.discover() if args.func is not cmd_initializers else None
        if getattr(args, "params", "") is None and paths is not None:
            args.params = str(paths.params)
        args.func(args, paths)
    except KeyboardInterrupt as err:
        from initbench.process import stop_note
        how = "terminated (SIGTERM)" if str(err) == "SIGTERM" else "interrupted"
        print(f"initbench {args.command}: {how}; partial output removed, {stop_note()}",
              file=sys.stderr)
        sys.exit(143 if str(err) == "SIGTERM" else 130)
    except Exception as err:
        if not isinstance(err, EXPECTED) and not type(err).__module__.startswith("mlflow"):
            raise  # a bug: keep the traceback
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"initbench {args.command}: error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
