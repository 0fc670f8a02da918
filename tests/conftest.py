"""Shared fixtures: the real MNIST files, a throwaway MLflow store, valid params, and the helpers
of the tests that run the real pipeline in a copy of the project."""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from initbench.config.yamlio import parse_yaml
from initbench.profiles import apply_profile

ROOT = Path(__file__).resolve().parents[1]
# The plain optimizer (no weight decay, a constant learning rate), for TrainConfig(..., **PLAIN).
PLAIN = {"weight_decay": 0.0, "lr_schedule": "constant", "warmup_epochs": 0}


def spec(name: str):
    """The registry initializer ``name`` with its default arguments, labelled by its name."""
    from initbench.config import InitializerSpec
    from initbench.init.registry import resolve_args

    return InitializerSpec(name, name, resolve_args(name, {}))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def mnist_dir() -> Path:
    """The first directory of ``$INITBENCH_DATA_DIR`` (a ``:``-separated list) that holds the
    MNIST files, else ``../shared/data/mnist`` beside the checkout."""
    for entry in filter(None, os.environ.get("INITBENCH_DATA_DIR", "").split(os.pathsep)):
        if (Path(entry) / "t10k-labels-idx1-ubyte.gz").is_file():
            return Path(entry)
    return ROOT.parent / "shared" / "data" / "mnist"


FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


@pytest.fixture(scope="session")
def fashion() -> Path:
    """Fashion-MNIST from Debian's package: CI installs it (.ci/run); elsewhere a test that needs
    it is skipped when it is missing."""
    if not (FASHION / "t10k-labels-idx1-ubyte.gz").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"Fashion-MNIST not found in {FASHION}: apt-get install dataset-fashion-mnist")
        pytest.skip("apt package dataset-fashion-mnist not installed")
    return FASHION


@pytest.fixture(scope="session")
def mnist() -> Path:
    path = mnist_dir()
    if not (path / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.fail(f"MNIST files not found in {path}; set INITBENCH_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def default_raw_params() -> dict:
    return parse_yaml((ROOT / "params.yaml").read_text(), "params.yaml")


@pytest.fixture
def raw_params(default_raw_params) -> dict:
    """A deep copy of the project's params.yaml, to modify in a test."""
    return copy.deepcopy(default_raw_params)


def project_params(where: Path, profile: str | None = None) -> Path:
    """A copy of the project's params.yaml and profiles/ in ``where`` (profile applied, if any)."""
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "params.yaml", where / "params.yaml")
    shutil.copytree(ROOT / "profiles", where / "profiles")
    if profile is not None:
        apply_profile(where / "params.yaml", profile)
    return where / "params.yaml"


def set_param(raw: dict, path: tuple[str, ...], value) -> None:
    """Set the nested params key ``path`` (e.g. ("study", "phase", "mode")) to ``value``."""
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def rejects_study_section(raw: dict, section: str, value, says: str) -> None:
    """``study.<section>: value`` fails validation with an error containing ``says``."""
    from initbench.config import ConfigError, from_dict

    raw["study"][section] = value
    with pytest.raises(ConfigError, match=re.escape(says)):
        from_dict(raw)


@pytest.fixture
def full_raw_params(tmp_path_factory) -> dict:
    """The project's params.yaml with profiles/full.yaml applied: every kind of study cell."""
    return parse_yaml(project_params(tmp_path_factory.mktemp("full"), "full").read_text(), "full")


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> str:
    """A fresh SQLite MLflow store for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("INITBENCH_PARENT_RUN_ID", raising=False)
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


def edit_params(root: Path, edit) -> None:
    params = parse_yaml((root / "params.yaml").read_text(), "params.yaml")
    edit(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def one_cell(params: dict, epochs: int = 1) -> None:
    """A params edit: the quick profile trimmed to the pipeline's cell alone, ``epochs`` epochs."""
    for study in ("depth", "phase", "conv"):
        params["study"][study]["depths"] = []
    params["study"]["lr_sweep"]["learning_rates"] = []
    params["study"]["datasets"]["names"] = []
    params["study"]["strategies"]["variants"] = {}  # they retrain a depth cell: none left
    params["train"]["epochs"] = epochs


def copy_project(dest: Path, env: dict, params_edit=None) -> Path:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    run(["initbench", "profile", "quick"], dest, env)
    if params_edit is not None:
        edit_params(dest, params_edit)
    # A repository-local identity: `dvc exp run` commits too, whatever the machine's git config.
    for cmd in (["init", "-q"], ["config", "user.name", "initbench tests"],
                ["config", "user.email", "tests@initbench.invalid"], ["add", "-A"],
                ["commit", "-qm", "copy"]):
        subprocess.run(["git", *cmd], cwd=dest, check=True)
    return dest


@pytest.fixture(scope="session")
def env(mnist):
    """The environment of a user's shell for project copies: the venv first, local MNIST."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "INITBENCH_PARENT_RUN_ID")}
    env["INITBENCH_DATA_DIR"] = str(mnist)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def run(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def ran_stages(proc: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout + proc.stderr))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def project(tmp_path_factory, env):
    """The end-to-end run: a copy of the project with the quick profile, after one `dvc repro`.
    Shared by the pipeline tests (which then change it) and the browser test."""
    dest = copy_project(tmp_path_factory.mktemp("project"), env)
    first = run(["dvc", "repro"], dest, env)
    return dest, first


@pytest.fixture(scope="session")
def client(project):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{project[0] / 'mlflow.db'}")


@contextmanager
def mlflow_server(args: list[str], env: dict) -> Iterator[str]:
    """``mlflow <args>`` (``server`` or ``ui``) on a free loopback port, answering ``/health``;
    yields its URL, then kills it and its workers."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", *args, "--host", "127.0.0.1", "--port", str(port)],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, f"no mlflow {args[0]}"
                time.sleep(1)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
