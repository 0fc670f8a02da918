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
    from initbench.data.download import download

    params = _params(args)
    for name, source in download(params.data.dataset, Path(args.out)).items():
        print(f"{name}: {source}")


def cmd_normalize(args: argparse.Namespace, paths: Paths) -> None:
    from initbench.data.normalize import normalize

    stats = normalize(Path(args.raw), Path(args.out), Path(args.stats), _params(args).data)
    print(f"wrote {args.out}: {stats['n']}")


def cmd_train(args: argparse.Namespace, paths: Paths) -> None:
    params = _params(args)
    params.cell(args.cell)  # a clear error for an unknown cell, before TensorFlow loads
    from initbench.train.stage import run_cell

    data = Path(args.data) if args.data else paths.processed(params.data.dataset)
    out = Path(args.out) if args.out else paths.cell_dir(args.cell)
    result = run_cell(params, args.cell, data, out, paths.root)
    t = result["timing"]
    print(f"{args.cell}: {len(result['members'])} models, {t['model_epochs']} model-epochs in "
          f"{t['train_seconds']:.1f} s training + {t['diagnostics_seconds']:.1f} s diagnostics "
          f"+ {t['test_seconds']:.1f} s testing; wrote {out}")


def cmd_report(args: argparse.Namespace, paths: Paths) -> None:
    params = _params(args)
    from initbench.report.stage import write_report

    write_report(params, Path(args.cells), Path(args.out), paths.root)
    print(f"wrote {Path(args.out) / 'report.md'}")


def cmd_profile(args: argparse.Namespace, paths: Paths) -> None:
    from initbench.profiles import apply_profile

    apply_profile(paths.params, args.name)
    print(f"{paths.params}: applied profile {args.name!r}")


def cmd_pipeline(args: argparse.Namespace, paths: Paths) -> None:
    """``dvc repro [stages]`` (``dvc exp run -S ...`` with overrides), with the run ``mlflow run``
    created (if any) as the pipeline's parent run."""
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
    s = stage("train", cmd_train, "train and test one cell: every initializer x seed, in stacks")
    s.add_argument("--cell", default="baseline",
                   help="baseline (the pipeline's model) or depth-<depth>-<activation>")
    s.add_argument("--data", help="processed archive (default: data/processed/<dataset>.npz)")
    s.add_argument("--out", help="output directory (default: data/train/<cell>)")
    s = stage("report", cmd_report, "statistics, comparison, figures and reports/report.md")
    s.add_argument("--cells", required=True, help="directory of the trained cells (data/train)")
    s.add_argument("--out", required=True, help="output directory (reports)")
    s = stage("profile", cmd_profile, "overlay a profile (profiles/<name>.yaml) onto params.yaml")
    s.add_argument("name", help="e.g. quick")
    s = stage("pipeline", cmd_pipeline, "run `dvc repro` (used by MLproject's entry points)")
    s.add_argument("dvc_args", nargs=argparse.REMAINDER, help="passed on to dvc (e.g. stage names)")
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
