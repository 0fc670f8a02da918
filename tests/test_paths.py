"""Atomic outputs (a file or a directory): replaced whole on success, untouched on failure, no
leftovers; the project layout and file hashes."""

from __future__ import annotations

import gzip
import hashlib
import os

import pytest

from initbench.paths import (
    Paths,
    atomic_output,
    cell_from_stage,
    cell_name,
    dataset_cell,
    sha256_file,
    stage_of_cell,
)


def entries(directory):
    return sorted(p.name for p in directory.iterdir())


def test_a_file_is_replaced_atomically(tmp_path):
    out = tmp_path / "stage" / "out.json"  # the parent is created
    with atomic_output(out) as tmp:
        assert tmp.parent == out.parent and not tmp.exists()
        assert tmp.name.startswith(".")  # hidden until it is complete
        tmp.write_text("first")
        assert not out.exists()  # nothing at the target before the block succeeds
    assert out.read_text() == "first"
    inode = out.stat().st_ino
    with atomic_output(out) as tmp:
        tmp.write_text("second")
        assert out.read_text() == "first"  # the old version stays readable meanwhile
    assert out.read_text() == "second"
    assert out.stat().st_ino != inode  # a rename of the new file, not a rewrite in place
    assert entries(out.parent) == ["out.json"]


def test_a_directory_is_replaced_and_the_old_content_is_gone(tmp_path):
    out = tmp_path / "stage" / "out"
    out.mkdir(parents=True)
    (out / "old.txt").write_text("old")
    (out / "sub").mkdir()
    (out / "sub" / "old.bin").write_bytes(b"\0")
    with atomic_output(out, ["old.txt", "sub", "new.txt"]) as tmp:
        assert tmp.parent == out.parent and not tmp.exists()
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
        assert entries(out) == ["old.txt", "sub"]
    assert entries(out) == ["new.txt"]
    assert (out / "new.txt").read_text() == "new"
    assert entries(out.parent) == ["out"]  # neither the old directory nor a temporary remains


def test_a_new_directory_is_created(tmp_path):
    out = tmp_path / "out"
    with atomic_output(out) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("a")
    assert entries(out) == ["a.txt"] and entries(tmp_path) == ["out"]


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_failure_leaves_the_old_output_and_no_temporary(tmp_path, kind):
    out = tmp_path / "out"
    if kind == "dir":
        out.mkdir()
        (out / "old.txt").write_text("old")
    else:
        out.write_text("old")
    expected = ["old.txt"] if kind == "dir" else None
    with pytest.raises(RuntimeError, match="boom"), atomic_output(out, expected) as tmp:
        if kind == "dir":
            tmp.mkdir()
            (tmp / "half.txt").write_text("half")
        else:
            tmp.write_text("half")
        raise RuntimeError("boom")
    if kind == "dir":
        assert entries(out) == ["old.txt"] and (out / "old.txt").read_text() == "old"
    else:
        assert out.read_text() == "old"
    assert entries(tmp_path) == ["out"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_failure_without_an_old_output_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt), atomic_output(out) as tmp:
        tmp.mkdir()
        (tmp / "half.txt").write_text("half")
        raise KeyboardInterrupt
    assert entries(tmp_path) == []


def test_layout(tmp_path):
    paths = Paths(tmp_path)
    assert paths.params == tmp_path / "params.yaml"
    assert paths.raw == tmp_path / "data" / "raw"
    assert paths.processed_dir == tmp_path / "data" / "processed"
    assert paths.processed("mnist") == tmp_path / "data" / "processed" / "mnist.npz"
    assert paths.cell_dir("baseline") == tmp_path / "data" / "train" / "baseline"
    assert paths.runs_dir("baseline") == tmp_path / "data" / "runs" / "baseline"
    assert paths.reports == tmp_path / "reports"
    assert cell_name() == "baseline" and cell_name(5, "tanh") == "depth-5-tanh"
    assert dataset_cell("fashion-mnist") == "dataset-fashion-mnist"
    assert stage_of_cell("dataset-fashion-mnist") == "train_dataset@fashion-mnist"
    assert cell_from_stage("train_dataset@fashion-mnist") == "dataset-fashion-mnist"


def test_sha256_file(tmp_path):
    data = os.urandom(3 << 20)  # more than one read chunk
    (tmp_path / "x").write_bytes(data)
    (tmp_path / "x.gz").write_bytes(gzip.compress(data))
    assert sha256_file(tmp_path / "x") == hashlib.sha256(data).hexdigest()
    assert sha256_file(tmp_path / "x.gz", gzip.open) == hashlib.sha256(data).hexdigest()
