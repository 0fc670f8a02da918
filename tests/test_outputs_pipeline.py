"""The real pipeline in a small copy of the project (one cell, one epoch): a failed or
interrupted report stage leaves the git-tracked ``reports/`` byte-identical, a store failing
after the start-up check costs the publishing only, and a SIGKILLed ``normalize`` leaves nothing
under ``data/`` once DVC restores the stage from its cache.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from initbench.paths import REPORT_FILES

from .conftest import copy_project, one_cell, run
from .storeproxy import sqlite_server
from .test_outputs import parts, writing

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory, env) -> Path:
    root = copy_project(tmp_path_factory.mktemp("outputs"), env, one_cell)
    run(["dvc", "repro"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "trained"], root, env)
    return root


def tree_hash(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def up_to_date(root: Path, env: dict) -> bool:
    return "Data and pipelines are up to date" in run(["dvc", "status"], root, env).stdout


def test_a_failed_report_stage_leaves_the_previous_reports(project, env):
    reports = tree_hash(project / "reports")
    assert len(reports) > 10 and up_to_date(project, env)  # persist: true changes no lock entry
    results = project / "data/train/baseline/results.json"
    good = results.read_bytes()
    try:
        results.write_text('{"cell": "baseline", "members": [')  # damaged: the report fails
        # (-s: the report alone; `dvc repro` would first restore the train stage's output)
        proc = run(["dvc", "repro", "-s", "report"], project, env, check=False)
        assert proc.returncode != 0 and "Running stage 'report'" in proc.stdout, proc.stdout
        assert "initbench report: error:" in proc.stderr
    finally:
        results.write_bytes(good)
    assert tree_hash(project / "reports") == reports and parts(project) == []
    assert up_to_date(project, env)


def test_an_interrupted_report_stage_leaves_the_previous_reports(project, env):
    reports = tree_hash(project / "reports")
    assert len(reports) > 10
    dvc = subprocess.Popen(["dvc", "repro", "--force", "-s", "report"], cwd=project, env=env,
                           start_new_session=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not writing(project, "reports"):
        assert dvc.poll() is None and time.monotonic() < deadline, "the report was not caught"
        time.sleep(0.05)
    os.killpg(dvc.pid, signal.SIGINT)  # what Ctrl-C sends: dvc and its stage
    out = dvc.communicate(timeout=120)[0]
    assert dvc.returncode != 0 and "initbench report: interrupted" in out, out[-3000:]
    assert tree_hash(project / "reports") == reports and parts(project) == []
    assert up_to_date(project, env)


def stage_process(dvc: subprocess.Popen, name: str) -> psutil.Process | None:
    try:
        return next((p for p in psutil.Process(dvc.pid).children(recursive=True)
                     if "initbench" in " ".join(p.cmdline()) and name in p.cmdline()), None)
    except psutil.Error:
        return None


def test_a_sigkilled_normalize_leaves_nothing_once_dvc_restores_it(project, env):
    processed_hash = tree_hash(project / "data/processed")
    for _attempt in range(3):  # the write takes about a second: caught almost always at once
        dvc = subprocess.Popen(["dvc", "repro", "--force", "-s", "normalize"], cwd=project,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while dvc.poll() is None and not writing(project, "processed"):
            time.sleep(0.005)
        stage = stage_process(dvc, "normalize")
        if stage is not None:
            stage.kill()  # the OOM killer, say: no finally runs
        out = dvc.communicate(timeout=120)[0]
        if stage is not None:
            break
    assert dvc.returncode != 0, out[-3000:]
    assert parts(project)[0].name.startswith(".processed.")  # what SIGKILL leaves
    restored = run(["dvc", "repro"], project, env)
    assert "Stage 'normalize' is cached - skipping run" in restored.stdout, restored.stdout
    assert parts(project / "data") == [] and tree_hash(project / "data/processed") == processed_hash
    assert up_to_date(project, env)


class Proxy(http.server.ThreadingHTTPServer):
    """A tracking server that answers until the stages' start-up check, then is gone: it
    forwards requests to a real MLflow server, and stops listening once a search of experiments
    (the check) has been answered."""

    def __init__(self, upstream: str):
        class Handler(http.server.BaseHTTPRequestHandler):
            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                conn = http.client.HTTPConnection(upstream, timeout=60)
                conn.request(self.command, self.path, body,
                             {k: v for k, v in self.headers.items() if k.lower() != "host"})
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if "experiments/search" in self.path:
                    threading.Thread(target=self.server.shutdown).start()

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = forward  # noqa: N815 (http.server's names)

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=lambda: (self.serve_forever(), self.server_close())).start()


def test_a_store_failing_after_the_check_costs_the_publishing_not_the_report(project, env,
                                                                             tmp_path):
    shutil.rmtree(project / "reports")  # so the report written is this run's
    with sqlite_server(tmp_path, env) as (url, _):
        proxy = Proxy(url.removeprefix("http://"))
        store = {"MLFLOW_TRACKING_URI": proxy.url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
        proc = run(["initbench", "report"], project, {**env, **store}, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    warning = [line for line in proc.stdout.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "but publishing it to MLflow failed (" in warning[0]
    assert "initbench log --cell baseline" in warning[0] and "Traceback" not in proc.stderr
    assert sorted(p.name for p in (project / "reports").iterdir()) == sorted(REPORT_FILES)
    assert (project / "reports/report.md").stat().st_size > 1000
    assert parts(project) == []  # the normalize stage's leftover went with this write, too
