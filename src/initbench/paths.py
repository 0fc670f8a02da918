"""Every path the project reads or writes, anchored at the project root.

The root is the directory holding ``params.yaml`` and ``dvc.yaml``: ``$INITBENCH_ROOT`` when set,
else the nearest such ancestor of the working directory (DVC runs every stage from there). It is
deliberately not derived from this file's location, so an installed package works on any copy of
the project (the end-to-end tests run the pipeline in a temporary copy).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


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
    def data(self) -> Path:
        return self.root / "data"

    def raw_dir(self, dataset: str) -> Path:
        return self.data / "raw" / dataset

    def processed(self, dataset: str) -> Path:
        return self.data / "processed" / f"{dataset}.npz"

    def stats(self, dataset: str) -> Path:
        return self.data / "processed" / f"{dataset}.stats.json"

    def train_dir(self, label: str) -> Path:
        return self.data / "train" / label

    def eval_dir(self, label: str) -> Path:
        return self.data / "eval" / label

    @property
    def compare_dir(self) -> Path:
        return self.data / "compare"


@contextmanager
def atomic_dir(out_dir: Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``out_dir``; when the block succeeds it replaces
    ``out_dir`` in one rename, when it fails it is removed: no half-written output survives."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        yield tmp
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# File names inside the per-initializer directories, shared by the stages that write and read them.
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
TRAIN_METRICS_FILE = "metrics.json"
EVAL_METRICS_FILE = "metrics.json"
CONFUSION_JSON = "confusion.json"
CONFUSION_PNG = "confusion.png"
