"""Shared fixtures: the real MNIST files, a throwaway MLflow store, valid params."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def mnist_dir() -> Path:
    """``$INITBENCH_DATA_DIR`` if set, else ``../shared/data/mnist`` beside the checkout."""
    env = os.environ.get("INITBENCH_DATA_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist() -> Path:
    path = mnist_dir()
    if not (path / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.fail(f"MNIST files not found in {path}; set INITBENCH_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def default_raw_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def raw_params(default_raw_params) -> dict:
    """A deep copy of the project's params.yaml, to modify in a test."""
    return copy.deepcopy(default_raw_params)


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
