"""The life of a stage process: how it ends when it is told to, or when its pipeline dies.

``dvc repro`` runs each stage as ``sh -c '<cmd>'``; a user stops it with Ctrl-C (SIGINT, which
Python raises as KeyboardInterrupt) or SIGTERM (``kill``, a scheduler, a CI timeout). SIGTERM is
turned into the same KeyboardInterrupt, so the same ``finally`` blocks run: partial output is
removed and open MLflow runs end as KILLED. If the ``dvc`` process itself dies, a stage would go
on as an orphan and write outputs DVC never records; a watchdog thread sends it SIGTERM instead.
What SIGKILL leaves behind is cleaned at the next start (``paths.atomic_output``,
``tracking.reap_orphans``, which uses :func:`owner` to tell dead writers from live ones).

An interrupt should not land inside a write to the MLflow store: SQLAlchemy interrupted between
statements can leave SQLite locked, and the cleanup that ends the runs as KILLED then fails. Store
writes therefore run :func:`shielded`: an interrupt that arrives meanwhile is held until the write
is done -- but never for long: a second interrupt, or the grace a remote store is given
(:func:`set_grace`; a hung HTTP request holds no lock of ours), raises it at once. Once the stage is
stopping, a further SIGTERM is ignored (the watchdog and a scheduler may both send one; the cleanup
is bounded and must not be cut short); a further Ctrl-C is the user's and is handled as the first.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import psutil


class _Stop:
    depth = 0  # how many shielded() blocks the main thread is in
    pending: KeyboardInterrupt | None = None  # an interrupt a shield holds back
    grace: float | None = None  # how long a shield may hold one (None: until the block ends)
    stopping = False  # an interrupt has been raised: the stage is ending
    cut_short = False  # ... from inside a shielded block (the store call did not return)
    note = "open MLflow runs marked KILLED"  # how the stage's runs ended, for its last line


def _raise(err: KeyboardInterrupt, inside: bool) -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)  # no deadline left to fire
    _Stop.pending, _Stop.stopping = None, True
    _Stop.cut_short = _Stop.cut_short or inside
    raise err


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGTERM and _Stop.stopping:
        return
    err = KeyboardInterrupt("SIGTERM" if signum == signal.SIGTERM else "")
    if _Stop.depth and _Stop.pending is None:
        _Stop.pending = err
        if _Stop.grace is not None:
            signal.setitimer(signal.ITIMER_REAL, _Stop.grace)
        return
    _raise(_Stop.pending or err, inside=_Stop.depth > 0)


def _deadline(signum: int, frame: FrameType | None) -> None:
    if _Stop.pending is not None and _Stop.depth:
        _raise(_Stop.pending, inside=True)


def set_grace(seconds: float | None) -> None:
    """How long a shielded block may hold back an interrupt: None (until it ends) for a local
    store, a few seconds for one reached over the network."""
    _Stop.grace = seconds


def stopping() -> bool:
    """Whether this stage is being stopped (an interrupt was raised and is being handled)."""
    return _Stop.stopping and signal.getsignal(signal.SIGINT) is _interrupt


def cut_short() -> bool:
    """Whether the interrupt broke into a shielded call that had not returned (a hung store)."""
    return stopping() and _Stop.cut_short


def stop_note(note: str | None = None) -> str:
    """How the stage's MLflow runs ended, for the line it ends with; ``note`` replaces it."""
    if note is not None:
        _Stop.note = note
    return _Stop.note


@contextmanager
def shielded() -> Iterator[None]:
    """Run a block (a store write) to its end; a SIGTERM or Ctrl-C that arrives meanwhile is
    raised as KeyboardInterrupt when the outermost shielded block exits, at a second interrupt,
    or once the grace (:func:`set_grace`) has passed, whichever comes first."""
    _Stop.depth += 1
    try:
        yield
    finally:
        _Stop.depth -= 1
        if not _Stop.depth and _Stop.pending is not None:
            _raise(_Stop.pending, inside=False)


def dvc_process() -> psutil.Process | None:
    """The nearest ``dvc`` ancestor of this process (the pipeline execution), if any."""
    for proc in psutil.Process().parents():
        try:
            if any(Path(arg).name == "dvc" for arg in proc.cmdline()[:2]):
                return proc
        except psutil.Error:
            continue
    return None


def owner() -> str:
    """``host:pid:start`` of this process: a dead writer is told apart even after pid reuse."""
    me = psutil.Process()
    return f"{socket.gethostname()}:{me.pid}:{int(me.create_time() * 1000)}"


def is_alive(owner_value: str) -> bool | None:
    """Whether the process named by :func:`owner` still runs; None for another host or no value."""
    host, _, rest = owner_value.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit() or not started.isdigit():
        return None
    try:
        return int(psutil.Process(int(pid)).create_time() * 1000) == int(started)
    except psutil.Error:
        return False


def end_with_pipeline(poll_s: float = 1.0) -> None:
    """SIGTERM ends this process like Ctrl-C; so does the death of its ``dvc`` ancestor."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGALRM, _deadline)
    _Stop.pending, _Stop.stopping, _Stop.cut_short = None, False, False
    pipeline = dvc_process()
    if pipeline is None:
        return

    def alive() -> bool:
        # A dead dvc stays a zombie until its own parent reaps it: dead all the same.
        try:
            return pipeline.is_running() and pipeline.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def watch() -> None:
        while alive():
            time.sleep(poll_s)
        # Not when an interrupt is already held or handled: a second one would cut a write short.
        if _Stop.pending is None and not _Stop.stopping:
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="initbench-watchdog", daemon=True).start()


@contextmanager
def native_startup_silenced() -> Iterator[None]:
    """Discard what native code writes to file descriptor 2 during the block (TensorFlow's import
    prints absl/oneDNN notices before its log level is read, so ``TF_CPP_MIN_LOG_LEVEL`` cannot
    hide them). Python's own errors still show: they are printed after the block. Set
    ``TF_CPP_MIN_LOG_LEVEL=0`` to see everything."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    import sys

    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
