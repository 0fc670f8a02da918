"""``mlflow run <git-uri> -v <commit>`` as on a remote runner: the project is fetched from a git
server (``git daemon`` on loopback), its environment is built by MLflow's virtualenv env manager
from python_env.yaml offline (the package registry only), and a later commit runs its own code
although MLflow reuses the environment the earlier commit built."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import copy_project, free_port, run

pytestmark = pytest.mark.e2e
MARKER = "initbench from checkout B"


@pytest.fixture
def git_server(tmp_path):
    """A bare repository served read-only by ``git daemon`` on 127.0.0.1; yields (bare, url)."""
    bare, port = tmp_path / "srv" / "initbench.git", free_port()
    bare.parent.mkdir()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={bare.parent}",
         "--listen=127.0.0.1", f"--port={port}", str(bare.parent)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield bare, f"git://127.0.0.1:{port}/{bare.name}"
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)


def _push(work: Path, bare: Path) -> str:
    if not bare.exists():
        subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
        # Fetching one commit by its id, as MLflow does (`git fetch origin <sha> --depth 1`).
        subprocess.run(["git", "-C", str(bare), "config", "uploadpack.allowAnySHA1InWant", "true"],
                       check=True)
    subprocess.run(["git", "push", "-q", str(bare), "HEAD:refs/heads/main"], cwd=work, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_mlflow_run_from_git_builds_its_env_offline_and_runs_each_commits_code(
        git_server, env, tmp_path):
    bare, url = git_server
    work = copy_project(tmp_path / "work", env, lambda p: (
        p["study"]["depth"].update(depths=[]), p["study"]["datasets"].update(names=[]),
        p["study"]["strategies"].update(variants={}), p["study"]["conv"].update(depths=[])))
    commit_a = _push(work, bare)
    renv = {**env, "MLFLOW_ENV_ROOT": str(tmp_path / "envs"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    cmd = ["mlflow", "run", url, "--experiment-name", "initbench", "-e", "train"]

    # Commit A builds the environment (no --env-manager: MLflow's default for python_env), then
    # stops at validation: a bad parameter is one line, before any stage runs.
    started = time.monotonic()
    proc = run([*cmd, "-v", commit_a, "-P", "epochs=many"], tmp_path, renv, check=False)
    built = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "train.epochs" in out and "Running stage" not in out, out[-3000:]
    (env_dir,) = (tmp_path / "envs").iterdir()
    installed = next(env_dir.glob("lib/python*/site-packages/initbench/__init__.py"))
    assert MARKER not in installed.read_text()

    # Commit B changes the code; MLflow reuses A's environment, yet every stage runs B's code.
    init = work / "src" / "initbench" / "__init__.py"
    init.write_text(init.read_text() + f"\nimport sys\nprint({MARKER!r}, file=sys.stderr)\n")
    subprocess.run(["git", "commit", "-qam", "B"], cwd=work, check=True)
    commit_b = _push(work, bare)
    proc = run([*cmd, "-v", commit_b, "-P", "epochs=1"], tmp_path, renv)
    out = proc.stdout + proc.stderr
    assert "already exists" in out and [p.name for p in (tmp_path / "envs").iterdir()] == [env_dir.name]
    assert "Running stage 'train'" in out and "succeeded" in out
    # `initbench pipeline`, download, normalize and train: each printed B's marker.
    assert out.count(MARKER) >= 4, out[-3000:]
    assert not (work / "data").exists()  # the runner worked in its own clone
    print(f"environment built and validated in {built:.0f} s")
