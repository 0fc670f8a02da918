"""Where the project's one MLflow store and its artifacts live, from every workspace DVC uses.

DVC runs a stage in the project root (``dvc repro``) or in a throwaway copy of it
(``dvc exp run --temp``, queued experiments: ``<project>/.dvc/tmp/exps/<tmp>``, deleted after
the run, with ``$DVC_ROOT`` naming the project). Nothing the store keeps may live in such a copy:
the default store, a relative SQLite path in ``$MLFLOW_TRACKING_URI`` and a SQLite store's
artifacts are all placed from the project root, and artifact locations already inside a scratch
directory are recognised (see :func:`initbench.tracking.experiment_id`).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

from initbench.paths import find_root


def store_root() -> Path:
    """Where the project's one default store lives: the project root (whatever the working
    directory); in one of DVC's throwaway workspaces the project's own, ``$DVC_ROOT``. A
    ``$DVC_ROOT`` naming anything else (left in a shell: DVC keeps a value it finds) is ignored."""
    root = find_root()
    if os.environ.get("DVC_ROOT"):
        project = Path(os.environ["DVC_ROOT"]).resolve()
        if root == project or root.is_relative_to(project / ".dvc" / "tmp"):
            return project
    return root


def store_uri() -> str:
    """The store the stages use: ``$MLFLOW_TRACKING_URI``, a relative SQLite path in it
    (``sqlite:///mlflow.db``, MLflow's notation) read from :func:`store_root` -- the same file in
    every workspace, never one inside a throwaway copy -- else the project's ``mlflow.db``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{store_root() / 'mlflow.db'}"
    path, sep, query = uri.removeprefix("sqlite:///").partition("?")
    if uri.startswith("sqlite:///") and path and path != ":memory:" and not path.startswith("/"):
        uri = f"sqlite:///{store_root() / path}{sep}{query}"
    return uri


def artifact_root(uri: str) -> Path | None:
    """Where a SQLite store keeps its experiments' artifacts: ``mlruns/`` beside its own file
    (derived from the store, not from a working directory); None for any other store, which
    decides for itself (a server's ``--artifacts-destination``)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///").partition("?")[0])
    return db.resolve().parent / "mlruns" if db.name and db.name != ":memory:" else None


def _local_path(location: str) -> Path | None:
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme in ("", "file") and not parsed.netloc:
        return Path(urllib.parse.unquote(parsed.path))
    return None  # an artifact server or a bucket: not this project's to judge


def scratch_reason(location: str, store_dir: Path) -> str | None:
    """Why a local artifact location loses (or has lost) its files -- it is inside a hidden
    scratch directory beside the store (``.quick/``, DVC's ``.dvc/tmp/``: deleted with it),
    relative to whatever directory a stage runs in, or gone -- else None."""
    path = _local_path(location)
    if path is None:
        return None
    if not path.is_absolute():
        return "a path relative to whatever directory a stage runs in"
    if path.is_relative_to(store_dir):
        top = path.relative_to(store_dir).parts[:1]
        return f"inside {store_dir / top[0]}, a scratch directory" if top and top[0].startswith(
            ".") else None
    return None if path.exists() else "which no longer exists"
