"""``deploy/tracking-server`` on a machine that already holds things: it changes only what it
made. Someone's ``postgres/`` is refused and left as it was; a failed initdb removes only the
cluster directory it made; a port in use is refused before anything starts; a pid file naming a
live, unrelated process (a pid reused after a reboot) is stale and that process is left alone; a
failed start stops the PostgreSQL it started. Real PostgreSQL, real processes, loopback only."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import ROOT, run
from .test_team_server import SCRIPT, _one_line, _running, _settings

pytestmark = pytest.mark.e2e


def _tree(path: Path) -> list:
    """Every entry under ``path`` (and itself): name, mode, owner, group and file contents."""
    return [(str(p.relative_to(path)), p.lstat().st_mode, p.lstat().st_uid, p.lstat().st_gid,
             p.read_bytes() if p.is_file() else None) for p in sorted([path, *path.rglob("*")])]


@pytest.fixture
def top():
    """A world-traversable temporary directory: as root, PostgreSQL runs as `postgres`."""
    top = Path(tempfile.mkdtemp(prefix="initbench-server-"))
    top.chmod(0o755)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def _sleeper() -> subprocess.Popen:
    """A live process in its own process group, owned by the user PostgreSQL runs as."""
    user = "postgres" if os.geteuid() == 0 else None
    return subprocess.Popen(["sleep", "1000"], start_new_session=True, user=user)


@pytest.mark.parametrize("files", [{"notes.txt": "someone's"}, {"PG_VERSION": "15\n", "postgresql.conf": ""}])
def test_a_postgres_directory_it_did_not_make_is_left_untouched(env, top, files):
    state = top / "state"
    (state / "postgres").mkdir(parents=True)
    for name, text in files.items():
        (state / "postgres" / name).write_text(text)
    (state / "postgres").chmod(0o700)
    before = _tree(state)
    senv = {**env, **_settings(state)}
    _one_line(run([SCRIPT, "start"], ROOT, senv, check=False),
              f"{state / 'postgres'} exists but holds no cluster made by this script")
    assert "left" in run([SCRIPT, "stop"], ROOT, senv).stderr
    assert _tree(state) == before and not _running(top)


def test_a_failed_initdb_removes_only_what_it_made(env, top):
    state = top / "state"
    state.mkdir()
    state.chmod(0o1777)
    (state / "notes.txt").write_text("someone's")
    limit = 2**20  # bytes per file: initdb's first WAL segment cannot be written

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([SCRIPT, "start"], env={**env, **_settings(state)}, capture_output=True,
                          text=True, preexec_fn=small_files, check=False)
    assert "File too large" in _one_line(proc, "initdb failed: ")
    assert sorted(p.name for p in state.iterdir()) == ["initdb.log", "notes.txt"]
    assert stat.S_IMODE(state.stat().st_mode) == 0o1777 and not _running(top)


def test_a_port_in_use_is_refused_before_anything_starts(env, top):
    senv = {**env, **_settings(top / "state")}
    with socket.create_server(("127.0.0.1", int(senv["INITBENCH_SERVER_PORT"]))):
        proc = run([SCRIPT, "start"], ROOT, senv, check=False)
    _one_line(proc, f"INITBENCH_SERVER_PORT is {senv['INITBENCH_SERVER_PORT']}: cannot listen on")
    assert "in use" in proc.stderr and not (top / "state").exists() and not _running(top)


def test_a_stale_mlflow_pid_names_a_process_that_stop_leaves_alone(env, tmp_path):
    senv = {**env, **_settings(tmp_path)}
    sleeper = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        (tmp_path / "mlflow.pid").write_text(f"{sleeper.pid}\n")
        assert "mlflow server: stopped" in run([SCRIPT, "status"], ROOT, senv, check=False).stdout
        proc = run([SCRIPT, "stop"], ROOT, senv)
        assert proc.stderr.strip() == (f"tracking-server: removed stale {tmp_path / 'mlflow.pid'}: pid "
                                       f"{sleeper.pid} is not the mlflow server started in {tmp_path} "
                                       "(that process, if any, was left alone)")
        assert sleeper.poll() is None and not (tmp_path / "mlflow.pid").exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_failed_start_stops_what_it_started_and_a_stale_postmaster_pid_is_left_alone(env, top):
    senv = {**env, **_settings(top / "state")}
    pidfile = top / "state" / "postgres" / "postmaster.pid"
    line = _one_line(run([SCRIPT, "start", "--", "--no-such-option"], ROOT, senv, check=False),
                     "mlflow server exited (status 2): ")
    assert "No such option '--no-such-option'" in line and not _running(top)
    assert "ready to accept connections" in (pidfile.parent / "postgres.log").read_text()
    assert (pidfile.parent / "PG_VERSION").is_file() and not (top / "state" / "mlflow.pid").exists()
    assert stat.S_IMODE((top / "state").stat().st_mode) == 0o755  # made here: the mode it needs
    sleeper = _sleeper()  # a reboot later, postmaster.pid names a live, unrelated process
    try:
        pidfile.write_text(f"{sleeper.pid}\n{pidfile.parent}\n")
        assert "postgresql: stopped" in run([SCRIPT, "status"], ROOT, senv, check=False).stdout
        assert "removed stale" in run([SCRIPT, "stop"], ROOT, senv).stderr and not pidfile.exists()
        assert sleeper.poll() is None
        pidfile.write_text(f"{sleeper.pid}\n{pidfile.parent}\n")  # start drops it and starts PostgreSQL
        proc = run([SCRIPT, "start", "--", "--no-such-option"], ROOT, senv, check=False)
        assert "removed stale" in proc.stderr and "mlflow server exited" in proc.stderr
        assert sleeper.poll() is None and not _running(top)
    finally:
        sleeper.kill()
        sleeper.wait()
