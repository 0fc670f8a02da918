"""The download stage: local source, verification, atomic writes, and the all-failed error."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import http.server
import re
import shutil
import threading
import time

import pytest

from initbench.data import download as dl
from initbench.data.datasets import DATASETS

UNREACHABLE = ("http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/")  # discard port: refused at once


@pytest.fixture
def offline_mirrors(monkeypatch):
    for name, spec in list(DATASETS.items()):
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(spec, mirrors=UNREACHABLE))


def test_local_source_is_copied_and_verified(tmp_path, mnist, monkeypatch, offline_mirrors):
    monkeypatch.setenv(dl.DATA_DIR_ENV, str(mnist))
    used = dl.download("mnist", tmp_path / "raw")
    assert set(used) == {f.name for f in DATASETS["mnist"].files.values()}
    assert all(source.startswith(str(mnist)) for source in used.values())
    for f in DATASETS["mnist"].files.values():
        assert (tmp_path / "raw" / f.name).read_bytes() == (mnist / f.name).read_bytes()
    assert not list((tmp_path / "raw").glob(".*"))  # no temporary files left
    # A second call verifies what is there and fetches nothing.
    assert set(dl.download("mnist", tmp_path / "raw").values()) == {"already present"}


def test_dataset_subdirectory_of_data_dir(tmp_path, mnist, monkeypatch, offline_mirrors):
    shutil.copytree(mnist, tmp_path / "src" / "mnist")
    monkeypatch.setenv(dl.DATA_DIR_ENV, str(tmp_path / "src"))
    used = dl.download("mnist", tmp_path / "raw")
    assert all("/src/mnist/" in s for s in used.values())


def test_several_data_dirs_and_debians_datasets(tmp_path, mnist, fashion, monkeypatch,
                                                offline_mirrors):
    """INITBENCH_DATA_DIR lists directories like PATH; a directory holding another dataset's files
    is passed over (their SHA-256 differs); Debian's /usr/share/datasets/<dataset> comes after."""
    monkeypatch.setenv(dl.DATA_DIR_ENV, f"{tmp_path / 'nowhere'}:{mnist}:{fashion.parent}")
    assert all(s.startswith(str(mnist)) for s in dl.download("mnist", tmp_path / "m").values())
    used = dl.download("fashion-mnist", tmp_path / "f")
    assert all(s.startswith(str(fashion)) for s in used.values()), used
    monkeypatch.delenv(dl.DATA_DIR_ENV)
    used = dl.download("fashion-mnist", tmp_path / "g")
    assert all(s.startswith(str(dl.SYSTEM_DATA_DIR / "fashion-mnist")) for s in used.values())


def test_every_source_failing_gives_one_clear_error(tmp_path, mnist, monkeypatch, offline_mirrors):
    # A local copy whose content was altered: it must be rejected, not used.
    src = tmp_path / "src"
    shutil.copytree(mnist, src)
    name = "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress((src / name).read_bytes()))
    data[100] = (data[100] + 1) % 10
    (src / name).write_bytes(gzip.compress(bytes(data)))
    monkeypatch.setenv(dl.DATA_DIR_ENV, str(src))
    out = tmp_path / "raw"
    with pytest.raises(dl.DownloadError) as err:
        dl.download("mnist", out)
    text = str(err.value)
    assert f"could not fetch {name}" in text
    assert f"{src / name}: ValueError: SHA-256 of the content is" in text
    assert f"{src / 'mnist' / name}: FileNotFoundError" in text
    for mirror in UNREACHABLE:
        assert f"{mirror}{name}: URLError" in text
    assert "INITBENCH_DATA_DIR" in text
    assert not (out / name).exists()
    assert not list(out.glob(".*part"))


def test_no_local_dir_says_how_to_work_offline(tmp_path, monkeypatch, offline_mirrors):
    monkeypatch.delenv(dl.DATA_DIR_ENV, raising=False)
    with pytest.raises(dl.DownloadError, match="INITBENCH_DATA_DIR is not set"):
        dl.download("mnist", tmp_path / "raw")


def test_corrupt_existing_file_is_replaced(tmp_path, mnist, monkeypatch, offline_mirrors):
    monkeypatch.setenv(dl.DATA_DIR_ENV, str(mnist))
    out = tmp_path / "raw"
    out.mkdir()
    (out / "t10k-labels-idx1-ubyte.gz").write_bytes(b"partial garbage")
    used = dl.download("mnist", out)
    assert used["t10k-labels-idx1-ubyte.gz"].startswith(str(mnist))
    dl.verify(out / "t10k-labels-idx1-ubyte.gz", DATASETS["mnist"].files["test_labels"])


def test_verify_rejects_non_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="not a valid gzip file"):
        dl.verify(path, DATASETS["mnist"].files["test_labels"])


def test_fashion_mnist_recompressed_files_verify_by_content(tmp_path, monkeypatch, offline_mirrors,
                                                            fashion):
    monkeypatch.setenv(dl.DATA_DIR_ENV, str(fashion))
    used = dl.download("fashion-mnist", tmp_path / "raw")
    assert len(used) == 4


class _Server(http.server.BaseHTTPRequestHandler):
    """Serves bytes without end, slowly: a broken or hostile mirror."""

    def do_GET(self) -> None:
        self.send_response(200)
        if "announce" in self.path:
            self.send_header("Content-Length", str(10**9))
        self.end_headers()
        with contextlib.suppress(OSError):
            while True:
                self.wfile.write(b"x" * (1 << 16))
                if "slow" in self.path:
                    time.sleep(0.2)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def endless_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("path, error", [
    ("/announce/", "ValueError: the server announces 1000000000 bytes; the file has at most"),
    ("/endless/", "ValueError: more than 47091152 bytes"),  # 47,040,016 + 0.1% + 4 KiB
    ("/slow/", "TimeoutError: not complete after 1 s"),
])
def test_a_mirror_that_never_stops_is_cut_off(path, error, tmp_path, monkeypatch, endless_server):
    monkeypatch.delenv(dl.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(dl, "DEADLINE_S", 1 if path == "/slow/" else 60)
    spec = DATASETS["mnist"]
    if path == "/slow/":  # a cap high enough that only the deadline can stop it
        spec = dataclasses.replace(spec, files={k: dataclasses.replace(f, decompressed_bytes=10**9)
                                                for k, f in spec.files.items()})
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(spec, mirrors=(endless_server + path,)))
    start = time.monotonic()
    with pytest.raises(dl.DownloadError, match=re.escape(error)):
        dl.download("mnist", tmp_path / "raw")
    assert time.monotonic() - start < 30
    assert not (tmp_path / "raw" / "train-images-idx3-ubyte.gz").exists()
    assert not list((tmp_path / "raw").glob(".*"))
