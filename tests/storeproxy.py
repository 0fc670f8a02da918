"""A TCP proxy in front of a real MLflow server, to freeze: a tracking server that answered the
start-up check and then hangs (tests/test_store_faults.py, tests/test_store_hang.py), and their
fixtures: ``server`` (a real SQLite-backed ``mlflow server``, per module) and ``proxy`` before it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .conftest import mlflow_server


class Proxy:
    """127.0.0.1:<port> forwarding to ``upstream``; while :attr:`frozen`, what clients send is
    read and dropped (:attr:`held` is set): a server that answered and then hangs."""

    def __init__(self, upstream: str) -> None:
        self.upstream = ("127.0.0.1", int(upstream.rsplit(":", 1)[1]))
        self.frozen, self.held = threading.Event(), threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, request: bool) -> None:
        try:
            while data := src.recv(65536):
                if request and self.frozen.is_set():
                    self.held.set()
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                s.close()


@contextmanager
def sqlite_server(where: Path, env: dict) -> Iterator[tuple[str, Path]]:
    """A real ``mlflow server`` with a SQLite store in ``where``: (its URL, the store's file)."""
    with mlflow_server(["server", "--workers", "1", "--backend-store-uri",
                        f"sqlite:///{where / 'server.db'}", "--artifacts-destination",
                        str(where / "artifacts")], env) as url:
        yield url, where / "server.db"


@pytest.fixture(scope="module")
def server(tmp_path_factory, env) -> Iterator[tuple[str, Path]]:
    with sqlite_server(tmp_path_factory.mktemp("server"), env) as found:
        yield found


@pytest.fixture
def proxy(server) -> Iterator[Proxy]:
    p = Proxy(server[0])
    yield p
    p.sock.close()


def statuses(uri: str) -> dict[str, str]:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return {r.info.run_id: r.info.status for r in client.search_runs(ids, max_results=5000)}
