"""The ``download`` stage: fetch a dataset's four IDX gzip files into ``data/raw/<dataset>/``.

Sources are tried in order: the local directories named by ``$INITBENCH_DATA_DIR`` (one, or
several separated by ``:`` like ``$PATH``; the files directly in one, or in ``<dir>/<dataset>/``),
then ``/usr/share/datasets/<dataset>/`` (where Debian's ``dataset-fashion-mnist`` puts them), then
the public mirrors. Every file is verified
against its pinned SHA-256 (see :mod:`initbench.datasets`) before it is moved into place with an
atomic rename, so an interrupted or failed fetch never leaves a partial file behind.
"""

from __future__ import annotations

import gzip
import os
import shutil
import time
import urllib.request
from pathlib import Path

from initbench.data.datasets import DATASETS, DatasetSpec, IdxFile
from initbench.paths import atomic_output, check_output, sha256_file

DATA_DIR_ENV = "INITBENCH_DATA_DIR"
SYSTEM_DATA_DIR = Path("/usr/share/datasets")  # Debian's dataset-* packages
TIMEOUT_S = 30  # per socket operation
DEADLINE_S = 600  # per file and source, in all


class DownloadError(RuntimeError):
    """Every source failed for a file; the message lists each source and why."""


def verify(path: Path, spec: IdxFile) -> None:
    """Raise ValueError unless ``path`` is ``spec``'s file (gzip or content SHA-256 matches)."""
    if spec.gz_sha256 is not None and sha256_file(path) == spec.gz_sha256:
        return
    try:
        content = sha256_file(path, gzip.open)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ValueError(f"not a valid gzip file ({err})") from None
    if content != spec.sha256:
        raise ValueError(f"SHA-256 of the content is {content}, expected {spec.sha256}")


def _local_candidates(dataset: str) -> list[Path]:
    bases = [Path(b) for b in os.environ.get(DATA_DIR_ENV, "").split(os.pathsep) if b]
    found = [d for b in bases for d in (b / dataset, b)]
    return [*found, SYSTEM_DATA_DIR / dataset] if (SYSTEM_DATA_DIR / dataset).is_dir() else found


def _copy_local(src: Path, tmp: Path) -> None:
    if not src.is_file():
        raise FileNotFoundError(f"no such file {src}")
    shutil.copyfile(src, tmp)


def _fetch_url(url: str, tmp: Path, max_bytes: int) -> None:
    """Stream ``url`` into ``tmp``; stop at ``max_bytes`` or after ``DEADLINE_S`` in all (the
    socket timeout alone lets a server that trickles bytes hold the stage for ever)."""
    start = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": "initbench"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(tmp, "wb") as out:
        size = int(response.headers.get("Content-Length") or 0)
        if size > max_bytes:
            raise ValueError(f"the server announces {size} bytes; the file has at most {max_bytes}")
        total = 0
        while chunk := response.read(1 << 16):
            total += len(chunk)
            if total > max_bytes:
                raise ValueError(f"more than {max_bytes} bytes; the file has at most that many")
            if time.monotonic() - start > DEADLINE_S:
                raise TimeoutError(f"not complete after {DEADLINE_S} s ({total} bytes)")
            out.write(chunk)


def fetch_file(spec: IdxFile, dataset: DatasetSpec, dest: Path) -> str:
    """Fetch one file into ``dest`` (atomically); return the source that worked."""
    sources: list[tuple[str, object]] = [
        (str(d / spec.name), lambda t, d=d: _copy_local(d / spec.name, t))
        for d in _local_candidates(dataset.name)
    ]
    # A gzip stream is never much larger than its content (stored blocks: 5 bytes per 64 KiB).
    cap = spec.decompressed_bytes + spec.decompressed_bytes // 1000 + 4096
    sources += [(m + spec.name, lambda t, m=m: _fetch_url(m + spec.name, t, cap))
                for m in dataset.mirrors]
    failures = []
    for label, get in sources:
        try:
            with atomic_output(dest) as tmp:
                get(tmp)
                verify(tmp, spec)
            return label
        except Exception as err:
            failures.append(f"  - {label}: {type(err).__name__}: {err}")
    hint = (
        f"To work offline, put the four files of {dataset.name!r} in a directory and set "
        f"{DATA_DIR_ENV} to it (the files directly in it or in <dir>/{dataset.name}/; several "
        f"directories: separate them with {os.pathsep!r})."
    )
    if not os.environ.get(DATA_DIR_ENV):
        hint += f" {DATA_DIR_ENV} is not set."
    raise DownloadError(
        f"could not fetch {spec.name} of {dataset.name!r}; sources tried:\n"
        + "\n".join(failures) + f"\n{hint}"
    )


def download(dataset: str, out_dir: Path) -> dict[str, str]:
    """Fetch all four files of ``dataset`` into ``out_dir``; return file name -> source."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(sorted(DATASETS))}")
    spec = DATASETS[dataset]
    check_output(out_dir, [f.name for f in spec.files.values()])
    out_dir.mkdir(parents=True, exist_ok=True)
    used = {}
    for idx_file in spec.files.values():
        dest = out_dir / idx_file.name
        if dest.exists():
            try:
                verify(dest, idx_file)
                used[idx_file.name] = "already present"
                continue
            except ValueError:
                dest.unlink()
        used[idx_file.name] = fetch_file(idx_file, spec, dest)
    return used
