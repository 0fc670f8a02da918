"""Every path the project reads or writes, the names of every output file, and atomic writes.

The root is the directory holding ``params.yaml`` and ``dvc.yaml``: the nearest such ancestor of
the working directory (DVC runs every stage from there), else ``$INITBENCH_ROOT`` (a container
started elsewhere), so no environment variable can point a stage at another checkout. It is
deliberately not derived from this file's location, so an installed package works on any copy of
the project (the end-to-end tests run the pipeline in a temporary copy).

A leaf module: the stages share output names through it, never by importing each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from initbench import scratch

# The train stage writes two directories per cell. data/train/<cell>/ holds the results, a pure
# function of params, data and code (byte-identical when rerun: the report reads only these):
RESULTS_FILE = "results.json"  # every model: curves, test metrics, confusion, diagnostics
METRICS_DIR = "metrics"  # metrics/<label>.json: one file per initializer (DVC metrics)
CURVES_DIR = "curves"  # curves/<label>.csv: per-epoch means over seeds (DVC plots)
CELL_FILES = (RESULTS_FILE, METRICS_DIR, CURVES_DIR)


def processed_names(dataset: str) -> tuple[str, str]:
    """The normalize stage's two files per dataset in ``data/processed/``: the arrays and their
    statistics (DVC metrics)."""
    return f"{dataset}.npz", f"{dataset}.stats.json"


# data/runs/<cell>/ holds what differs on every execution (no stage reads it):
RUNS_FILE = "runs.json"  # each model's MLflow run id and .keras file; wall times
MODELS_DIR = "models"  # models/<label>/s<seed index>.keras: one ordinary Keras model per seed
RUN_FILES = (RUNS_FILE, MODELS_DIR)
# Inside reports/ (written by the report stage):
REPORT_FILES = ("report.md", "summary.json", "figures", "diagnostics", "metrics.json", "curves.csv",
                "confusion.csv")


class ProjectRootNotFoundError(RuntimeError):
    """Raised when no directory with params.yaml and dvc.yaml encloses the working directory."""


def find_root(start: Path | None = None) -> Path:
    """Return the project root (see the module docstring)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "params.yaml").is_file() and (candidate / "dvc.yaml").is_file():
            # Whatever $INITBENCH_ROOT says: a value left in the shell must never make a stage
            # here write another checkout's data/ or reports/.
            return candidate
    env = os.environ.get("INITBENCH_ROOT")
    if env and (Path(env) / "params.yaml").is_file() and (Path(env) / "dvc.yaml").is_file():
        return Path(env).resolve()
    raise ProjectRootNotFoundError(
        f"no initbench project (a directory with params.yaml and dvc.yaml) encloses {here}"
        + (f" and INITBENCH_ROOT={env} is none" if env else "")
        + "; run from inside the project or set INITBENCH_ROOT to one")


# Cells of a kind are ``<kind>-<item>`` (``depth-5-relu``, ``phase-8-tanh``, ``dataset-fashion-mnist``,
# ``strategy-cosine``),
# each trained by the DVC stage ``train_<kind>@<item>``.
CELL_KINDS = ("dataset", "strategy", "conv", "depth", "phase")
SINGLE_CELLS = {"baseline": "train", "lr_sweep": "train_lr_sweep"}  # cell -> its one stage


def cell_name(depth: int | None = None, activation: str | None = None, kind: str = "depth") -> str:
    """``baseline`` (the pipeline's model), ``depth-<d>-<activation>`` (a depth-study cell) or
    ``phase-<d>-<activation>`` (a column of the trainability phase diagram)."""
    return "baseline" if depth is None else f"{kind}-{depth}-{activation}"


def dataset_cell(dataset: str) -> str:
    """``dataset-<name>``: the pipeline's cell on a further dataset of ``study.datasets``."""
    return f"dataset-{dataset}"


def cell_from_stage(name: str) -> str:
    """A cell name, also from the DVC stage that trains it: ``train`` -> ``baseline``,
    ``train_lr_sweep`` -> ``lr_sweep``, ``train_<kind>@<item>`` -> ``<kind>-<item>``; other
    names unchanged."""
    for cell, stage in SINGLE_CELLS.items():
        if name == stage:
            return cell
    for kind in CELL_KINDS:
        if name.startswith(f"train_{kind}@"):
            return f"{kind}-" + name.removeprefix(f"train_{kind}@")
    return name


def stage_of_cell(cell: str) -> str:
    """The DVC stage that trains ``cell``: the inverse of :func:`cell_from_stage`."""
    if cell in SINGLE_CELLS:
        return SINGLE_CELLS[cell]
    kind, _, rest = cell.partition("-")
    return f"train_{kind}@{rest}" if kind in CELL_KINDS and rest else "train"


@dataclass(frozen=True)
class Paths:
    """The project's layout; mirrors the ``deps``/``outs`` of dvc.yaml."""

    root: Path

    @classmethod
    def discover(cls) -> Paths:
        return cls(find_root())

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def raw(self) -> Path:
        """The download stage's output: ``<dataset>/`` with the four IDX files, per dataset."""
        return self.root / "data" / "raw"

    @property
    def processed_dir(self) -> Path:
        """The normalize stage's output: :func:`processed_names` per dataset."""
        return self.root / "data" / "processed"

    def processed(self, dataset: str) -> Path:
        return self.processed_dir / processed_names(dataset)[0]

    @property
    def cells(self) -> Path:
        return self.root / "data" / "train"

    def cell_dir(self, cell: str) -> Path:
        return self.cells / cell

    def runs_dir(self, cell: str) -> Path:
        return self.root / "data" / "runs" / cell

    @property
    def reports(self) -> Path:
        return self.root / "reports"


def sha256_file(path: Path, opener: Callable[..., IO[bytes]] = open) -> str:
    """Hex SHA-256 of a file's bytes (``opener=gzip.open``: of its decompressed content)."""
    digest = hashlib.sha256()
    with opener(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class OutputError(ValueError):
    """An output path a stage must not write (it would destroy something that is not its own)."""


def check_output(target: Path, expected: Collection[str] | None = None) -> None:
    """Refuse to replace anything but a stage's own previous output, before any work starts.

    Refused: a symlink; the working directory, the project root or an ancestor of either; a
    directory holding a project (``.git``, ``dvc.yaml``); an existing directory when the output is
    a file (``expected`` None), or one holding a name the stage never writes (not in ``expected``).
    """
    if target.is_symlink():
        raise OutputError(f"output {target} is a symlink; refusing to replace it")
    resolved = target.resolve()
    protected = {Path.cwd().resolve(), *Path.cwd().resolve().parents}
    with contextlib.suppress(ProjectRootNotFoundError):
        root = find_root()
        protected |= {root, *root.parents}
    if resolved in protected or (resolved / ".git").exists() or (resolved / "dvc.yaml").exists():
        raise OutputError(f"output {target} is the project, the working directory or one of "
                          "their ancestors; refusing to replace it")
    if not target.is_dir():
        return
    if expected is None:
        raise OutputError(f"output {target} is an existing directory; refusing to replace it "
                          "with a file")
    leftovers = {n for n in os.listdir(target) if n.startswith(".") and ".part" in n}
    foreign = sorted(set(os.listdir(target)) - set(expected) - leftovers)
    if foreign:
        raise OutputError(f"output {target} holds {', '.join(foreign[:3])}, which this stage "
                          f"never writes: not its previous output, refusing to replace it")


@contextmanager
def atomic_output(target: Path, expected: Collection[str] | None = None) -> Iterator[Path]:
    """Yield a fresh path for ``target``; the block writes a file or a directory there.

    :func:`check_output` runs first (``expected``: the names a directory output may hold), then
    the target's lock is taken: a second writer refuses (:mod:`initbench.scratch`, which also says
    where the fresh path lives -- outside DVC-tracked directories -- and removes dead writers'
    leftovers). When the block succeeds, that path replaces ``target`` (a file in one
    ``os.replace``; a directory by moving the old one aside first, so some complete version exists
    at every moment); when it fails, it is removed: no half-written output is ever left.
    """
    check_output(target, expected)
    target.parent.mkdir(parents=True, exist_ok=True)
    where = scratch.scratch_dir(target)
    with scratch.one_writer(where, target):
        tmp = Path(tempfile.mkdtemp(dir=where, prefix=f".{target.name}.", suffix=".part"))
        tmp.rmdir()  # the caller creates a file or a directory here
        old = None
        try:
            yield tmp
            if tmp.is_dir() and target.is_dir():
                old = tmp.with_name(f"{tmp.name}.old")
                target.rename(old)
            try:
                os.replace(tmp, target)
            except OSError:
                if old is not None:
                    old.rename(target)
                    old = None
                raise
        finally:
            for leftover in (tmp, old):
                if leftover is not None and leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                elif leftover is not None:
                    leftover.unlink(missing_ok=True)
