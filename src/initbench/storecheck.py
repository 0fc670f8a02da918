"""Whether an MLflow store can be used, said in one line, and how long any call to it may take.

MLflow's own HTTP budget is 120 s per try and 7 retries with back-off: a tracking server that
answers the start-up check and then hangs would hold a stage for about 20 minutes. After the check
(:func:`initbench.tracking.use_project_store`) every request gets :data:`BOUNDED` -- seconds, not
minutes -- unless the user set a value; ending runs while the stage is stopping gets
:data:`STOPPING`. MLflow reads these variables at every request, so setting them takes effect at
once. An interrupt is held back by a store call for :data:`GRACE_S` at most on a remote store
(:func:`initbench.process.set_grace`).
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

# 10 s per try, 3 tries, 2 s back-off: about 35 s at worst before a call fails.
BOUNDED = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
           "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5"}
CHECK = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
STOPPING = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
GRACE_S = 3.0


def is_remote(uri: str) -> bool:
    """A store reached over HTTP: a hung request there holds no lock of this process."""
    return uri.partition(":")[0] in ("http", "https", "databricks")


def bound_requests() -> None:
    """Give every later request :data:`BOUNDED`, keeping any value the user set."""
    for key, value in BOUNDED.items():
        os.environ.setdefault(key, value)


@contextmanager
def budget(values: Mapping[str, str]) -> Iterator[None]:
    """Requests made in the block get ``values`` (one short try, say); restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def creation_lock(uri: str) -> Iterator[None]:
    """Serialise the first use of a SQLite store across processes: MLflow creates and migrates
    the schema on first use, and two processes doing it at once (``dvc queue start --jobs 2``)
    can leave the store broken for good."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri.removeprefix("sqlite:///").split("?")[0])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def create_sqlite(uri: str, artifacts: Path | None) -> None:
    """Create a SQLite store that does not exist yet with ``artifacts`` as its artifact root (in
    :func:`creation_lock`): MLflow would give its Default experiment ``./mlruns`` of whatever
    directory the first stage runs in -- inside DVC's throwaway copy for ``dvc exp run --temp``,
    deleted with it."""
    db = Path(uri.removeprefix("sqlite:///").partition("?")[0])
    if uri.startswith("sqlite:///") and artifacts is not None and not db.exists():
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        SqlAlchemyStore(uri, artifacts.as_uri()).engine.dispose()


def _chain(err: BaseException) -> list[BaseException]:
    chain = [err]
    while len(chain) < 10 and (nxt := chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(nxt)
    return chain


def problem(uri: str, err: BaseException) -> str:
    """What is wrong with the store at ``uri``, given what the check raised: one line that keeps
    the reason and says what to do."""
    import mlflow

    text = " ".join(" ".join(str(e).split()) for e in _chain(err))
    store = f"the MLflow tracking store {uri}"
    if "file is not a database" in text or "database disk image is malformed" in text:
        return (f"{store} is not a readable SQLite database (file is not a database: damaged, or "
                "not an MLflow store); move the file aside, or point MLFLOW_TRACKING_URI at the "
                "right store")
    if match := re.search(r"Detected out-of-date database schema.*?latest schema\.", text):
        advice = match.group(0).replace("<database_uri>", uri)
        return f"{store} has another schema than MLflow {mlflow.__version__} expects: {advice}"
    if "filesystem tracking backend" in text:
        return (f"{store} is a file store, which MLflow {mlflow.__version__} refuses (its file "
                "backend is in maintenance mode): migrate it with `mlflow migrate-filestore` to a "
                "sqlite:/// store, or set MLFLOW_ALLOW_FILE_STORE=true to use it as it is")
    reason = re.search(r"\[Errno -?\d+\] [^\"')\]]+|Read timed out|Connect(ion)? timed? ?out", text)
    if is_remote(uri) and reason:
        return (f"{store} does not answer ({reason.group(0).strip()}); start it, or unset "
                "MLFLOW_TRACKING_URI to use the project's own store")
    return f"{store} cannot be used ({type(err).__name__}: {' '.join(str(err).split())[:300]})"
