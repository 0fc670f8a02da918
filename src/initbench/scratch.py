"""Where an atomic output is written before it replaces its target, and one writer per output.

A stage's temporaries never live inside a DVC-tracked directory: in a DVC project they go to
``<project>/.dvc/tmp/initbench/<the target's directory, relative to the project>/`` (same
filesystem, so the final ``os.replace`` stays atomic). A writer killed with SIGKILL leaves its
temporary there, where neither DVC restoring the stage from its cache nor a directory dependency
(the report reads ``data/train``) ever sees it. Outside a project, or when that directory is on
another filesystem, temporaries go beside the target.

Each target has a lock file in that directory, held (``fcntl.flock``) for the whole write: a
second writer of the same output refuses in one line naming the holder's pid, and leftovers are
removed only by whoever holds their target's lock -- the proof that their writer is dead.
A leaf module: no initbench imports.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRATCH = Path(".dvc") / "tmp" / "initbench"
# mkdtemp names: ".<target>.<random characters>.part", and ".part.old" for a replaced directory.
LEFTOVER = re.compile(r"^\.(?P<target>.+)\.[^.]+\.part(\.old)?$")


class OutputBusyError(RuntimeError):
    """Another live process is writing the same output."""


def scratch_dir(target: Path) -> Path:
    """The directory for ``target``'s temporaries and lock (see the module docstring)."""
    parent = target.parent.resolve()
    for project in (parent, *parent.parents):
        if (project / ".dvc").is_dir() and (project / "dvc.yaml").is_file():
            scratch = project / SCRATCH / parent.relative_to(project)
            scratch.mkdir(parents=True, exist_ok=True)
            if os.stat(scratch).st_dev == os.stat(parent).st_dev:
                return scratch
            break
    return parent


def _try_lock(lock: Path) -> int | None:
    """An open descriptor holding ``lock`` exclusively, or None when a live process holds it."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:  # the previous holder may have unlinked the file between our open and flock
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _release(lock: Path, fd: int) -> None:
    lock.unlink(missing_ok=True)  # before the unlock: a waiting opener sees the inode changed
    os.close(fd)


def _remove_leftovers(directory: Path, target: str) -> None:
    for stale in directory.glob(f".{glob.escape(target)}.*.part*"):
        if LEFTOVER.match(stale.name):
            shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink()


def sweep(scratch_root: Path) -> None:
    """Remove every leftover under ``scratch_root`` whose writer is dead (its lock is free)."""
    for stale in sorted(scratch_root.rglob(".*.part*")):
        match = LEFTOVER.match(stale.name)
        if match is None or not stale.exists():
            continue
        lock = stale.with_name(f".{match['target']}.lock")
        fd = _try_lock(lock)
        if fd is not None:
            try:
                _remove_leftovers(stale.parent, match["target"])
            finally:
                _release(lock, fd)


@contextmanager
def one_writer(scratch: Path, target: Path) -> Iterator[None]:
    """Hold ``target``'s lock for the block, after removing its dead writers' leftovers; refuse
    (within a second) when another process holds it."""
    lock = scratch / f".{target.name}.lock"
    fd, holder = _try_lock(lock), ""
    for _ in range(10):  # a moment: another stage may be holding it to sweep leftovers
        if fd is not None:
            break
        time.sleep(0.1)
        fd = _try_lock(lock)
    if fd is None:
        with contextlib.suppress(OSError):
            holder = lock.read_text().strip()
        raise OutputBusyError(
            f"output {target} is being written by another process (pid {holder or 'unknown'}, "
            f"lock {lock}); wait for it to finish or stop it, then run this again")
    try:
        os.ftruncate(fd, 0)  # a dead writer's lock file still names its pid
        os.write(fd, f"{os.getpid()}\n".encode())
        _remove_leftovers(scratch, target.name)
        for tree in (p for p in (scratch, *scratch.parents) if p.parts[-3:] == SCRATCH.parts):
            sweep(tree)  # other outputs' leftovers too, e.g. of a stage DVC restored since
        yield
    finally:
        _release(lock, fd)
