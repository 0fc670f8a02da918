"""Every path the project reads or writes, the names of every output file, and atomic writes.

The root is the directory holding ``params.yaml`` and ``dvc.yaml``: ``$INITBENCH_ROOT`` when set,
else the nearest such ancestor of the working directory (DVC runs every stage from there). It is
deliberately not derived from this file's location, so an installed package works on any copy of
the project (the end-to-end tests run the pipeline in a temporary copy).

A leaf module: the stages share output names through it, never by importing each other.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# Inside a cell's output directory, data/train/<cell>/ (written by the train stage, read by report):
RESULTS_FILE = "results.json"  # every model: curves, test metrics, confusion, diagnostics, run id
METRICS_DIR = "metrics"  # metrics/<label>.json: one file per initializer (DVC metrics)
CURVES_DIR = "curves"  # curves/<label>.csv: per-epoch means over seeds (DVC plots)
MODELS_DIR = "models"  # models/<label>/s<seed index>.keras: one ordinary Keras model per seed


class ProjectRootNotFoundError(RuntimeError):
    """Raised when no directory with params.yaml and dvc.yaml encloses the working directory."""


def find_root(start: Path | None = None) -> Path:
    """Return the project root (see the module docstring)."""
    env = os.environ.get("INITBENCH_ROOT")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "params.yaml").is_file() and (candidate / "dvc.yaml").is_file():
            return candidate
    raise ProjectRootNotFoundError(
        f"no initbench project (a directory with params.yaml and dvc.yaml) encloses {here}; "
        "run from inside the project or set INITBENCH_ROOT"
    )


def cell_name(depth: int | None = None, activation: str | None = None) -> str:
    """``baseline`` (the pipeline's model) or ``depth-<d>-<activation>`` (a depth-study cell)."""
    return "baseline" if depth is None else f"depth-{depth}-{activation}"


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

    def raw_dir(self, dataset: str) -> Path:
        return self.root / "data" / "raw" / dataset

    def processed(self, dataset: str) -> Path:
        return self.root / "data" / "processed" / f"{dataset}.npz"

    def cell_dir(self, cell: str) -> Path:
        return self.root / "data" / "train" / cell

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


@contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a fresh path beside ``target``; the block writes a file or a directory there.

    When the block succeeds, that path replaces ``target`` (a file in one ``os.replace``; a
    directory by moving the old one aside first, so some complete version exists at every
    moment); when it fails, it is removed: no half-written output is ever left at ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part"))
    tmp.rmdir()  # the caller creates a file or a directory here
    old = None
    try:
        yield tmp
        if tmp.is_dir() and target.is_dir():
            old = target.with_name(f"{tmp.name}.old")
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
