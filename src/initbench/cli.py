"""The ``initbench`` command: one thin subcommand per DVC stage, plus helpers.

Each stage subcommand loads and validates the whole ``params.yaml`` first (so bad input fails
before any download or training), then calls the stage's importable function with the input and
output paths given on the command line -- the same paths as the stage's deps/outs in dvc.yaml.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from initbench import config
from initbench.paths import Paths


def _params(args: argparse.Namespace) -> config.Params:
    return config.load(Path(args.params), args.set)


def cmd_validate(args: argparse.Namespace, paths: Paths) -> None:
    params = _params(args)
    print(f"{args.params}: valid ({len(params.initializers)} initializers: "
          f"{', '.join(params.initializers)})")


def cmd_download(args: argparse.Namespace, paths: Paths) -> None:
    from initbench.download import download

    params = _params(args)
    for name, source in download(params.data.dataset, Path(args.out)).items():
        print(f"{name}: {source}")


def cmd_normalize(args: argparse.Namespace, paths: Paths) -> None:
    from initbench.normalize import normalize

    stats = normalize(Path(args.raw), Path(args.out), Path(args.stats), _params(args).data)
    print(f"wrote {args.out}: {stats['n']}")


def cmd_train(args: argparse.Namespace, paths: Paths) -> None:
    params = _params(args)
    params.initializer(args.initializer)
    from initbench.train import train

    data = Path(args.data) if args.data else paths.processed(params.data.dataset)
    out = Path(args.out) if args.out else paths.train_dir(args.initializer)
    metrics = train(params, args.initializer, data, out, paths.root)
    print(f"{args.initializer}: val accuracy {metrics['final_val_accuracy']:.4f} "
          f"(MLflow run {metrics['run_id']})")


def cmd_evaluate(args: argparse.Namespace, paths: Paths) -> None:
    params = _params(args)
    params.initializer(args.initializer)
    from initbench.evaluate import evaluate

    model = Path(args.model) if args.model else paths.train_dir(args.initializer)
    data = Path(args.data) if args.data else paths.processed(params.data.dataset)
    out = Path(args.out) if args.out else paths.eval_dir(args.initializer)
    metrics = evaluate(params, args.initializer, model, data, out, paths.root)
    print(f"{args.initializer}: test accuracy {metrics['test_accuracy']:.4f}")


def cmd_compare(args: argparse.Namespace, paths: Paths) -> None:
    from initbench.compare import compare, to_markdown

    params = _params(args)
    rows = compare(params, Path(args.train_root), Path(args.eval_root), Path(args.out), paths.root)
    print(to_markdown(rows, params))


def cmd_study(args: argparse.Namespace, paths: Paths) -> None:
    params = _params(args)
    from initbench.study_stage import run_cell

    depth = args.depth if args.cell == "depth" else None
    if args.cell == "depth" and (args.depth is None or args.activation is None):
        raise ValueError("initbench study depth needs --depth and --activation")
    out = run_cell(params, Path(args.data), Path(args.out), paths.root, depth, args.activation)
    t = out["timing"]
    print(f"{out['cell']}: {len(out['members'])} models, {t['model_epochs']:.0f} model-epochs in "
          f"{t['train_seconds']:.1f} s training + {t['diagnostics_seconds']:.1f} s diagnostics "
          f"+ {t['tracking_seconds']:.1f} s tracking")


def cmd_report(args: argparse.Namespace, paths: Paths) -> None:
    params = _params(args)
    from initbench.report_stage import write_report

    write_report(params, Path(args.study), Path(args.out), paths.root)
    print(f"wrote {Path(args.out) / 'report.md'}")


def cmd_profile(args: argparse.Namespace, paths: Paths) -> None:
    from initbench.profiles import apply_profile

    apply_profile(paths.params, args.name)
    print(f"{paths.params}: applied profile {args.name!r}")


def cmd_pipeline(args: argparse.Namespace, paths: Paths) -> None:
    """``dvc repro`` with the run ``mlflow run`` created (if any) as the pipeline's parent run."""
    _params(args)  # validates params.yaml with the overrides before DVC starts anything
    env = dict(os.environ)
    if "MLFLOW_RUN_ID" in env:
        env["INITBENCH_PARENT_RUN_ID"] = env.pop("MLFLOW_RUN_ID")
    overrides = [o for o in args.set if not o.endswith("=")]
    if overrides:
        command = ["dvc", "exp", "run", *(a for o in overrides for a in ("-S", o))]
    else:
        command = ["dvc", "repro"]
    sys.exit(subprocess.call([*command, *args.dvc_args], cwd=paths.root, env=env))


def cmd_initializers(args: argparse.Namespace, paths: Paths | None) -> None:
    from initbench import initializer_docs, initializers

    if getattr(args, "markdown", False):
        print(initializer_docs.markdown_table())
        return
    for name in initializers.names():
        info = initializers.get_info(name)
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults.items()) or "-"
        data = " [needs data]" if info.data_dependent else ""
        print(f"{name:16}{data} Var={info.variance}; {info.distribution} [{defaults}]"
              f" for {info.activation}; {info.reference}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="initbench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def stage(name: str, func, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help)
        s.add_argument("--params", default=None, help="params file (default: <root>/params.yaml)")
        s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a parameter, e.g. train.epochs=3 (an empty value is ignored)")
        s.set_defaults(func=func)
        return s

    stage("validate", cmd_validate, "check params.yaml and exit")
    stage("download", cmd_download, "fetch the raw IDX files").add_argument("--out", required=True)
    s = stage("normalize", cmd_normalize, "parse, split and scale the raw files")
    for flag in ("--raw", "--out", "--stats"):
        s.add_argument(flag, required=True)
    s = stage("train", cmd_train, "train one initializer's model")
    s.add_argument("--initializer", required=True, help="a label of params.yaml's initializers")
    s.add_argument("--data", help="processed archive (default: data/processed/<dataset>.npz)")
    s.add_argument("--out", help="output directory (default: data/train/<label>)")
    s = stage("evaluate", cmd_evaluate, "evaluate one initializer's model on the test set")
    s.add_argument("--initializer", required=True, help="a label of params.yaml's initializers")
    s.add_argument("--model", help="train output directory (default: data/train/<label>)")
    s.add_argument("--data", help="processed archive (default: data/processed/<dataset>.npz)")
    s.add_argument("--out", help="output directory (default: data/eval/<label>)")
    s = stage("compare", cmd_compare, "compare all initializers")
    for flag in ("--train-root", "--eval-root", "--out"):
        s.add_argument(flag, required=True)
    s = stage("study", cmd_study, "train one study cell (baseline or a depth cell)")
    s.add_argument("cell", choices=["baseline", "depth"])
    s.add_argument("--depth", type=int)
    s.add_argument("--activation")
    for flag in ("--data", "--out"):
        s.add_argument(flag, required=True)
    s = stage("report", cmd_report, "statistics, figures and reports/report.md")
    for flag in ("--study", "--out"):
        s.add_argument(flag, required=True)
    s = stage("profile", cmd_profile, "overlay a profile (profiles/<name>.yaml) onto params.yaml")
    s.add_argument("name", help="e.g. quick")
    s = stage("pipeline", cmd_pipeline, "run `dvc repro` (used by MLproject's main entry point)")
    s.add_argument("dvc_args", nargs=argparse.REMAINDER, help="passed on to dvc repro")
    s = sub.add_parser("initializers", help="list the registered initializers")
    s.add_argument("--markdown", action="store_true",
                   help="print docs/initializers.md (table, gains, common formula mistakes)")
    s.set_defaults(func=cmd_initializers, params=None)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        paths = Paths.discover() if args.func is not cmd_initializers else None
        if getattr(args, "params", "") is None and paths is not None:
            args.params = str(paths.params)
        args.func(args, paths)
    except (config.ConfigError, ValueError, RuntimeError, FileNotFoundError) as err:
        print(f"initbench {args.command}: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
