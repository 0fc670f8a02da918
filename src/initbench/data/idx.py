"""Strict reader of IDX files (the MNIST format), gzip-compressed or not.

Format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian magic number whose third
byte is the element type (0x08 = unsigned byte) and fourth the number of dimensions, then one
big-endian uint32 per dimension, then the data in row-major order. Anything else -- a wrong magic
number, a truncated or over-long body, labels outside the allowed range -- is a clear error.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

IMAGES_MAGIC = 0x00000803  # ubyte, 3 dimensions
LABELS_MAGIC = 0x00000801  # ubyte, 1 dimension


class IdxError(ValueError):
    """A file that is not the IDX file it should be; the message names the file and the problem."""


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return Path(path).read_bytes()
    except (OSError, EOFError) as err:
        raise IdxError(f"{path}: cannot read ({err})") from None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file with the expected ``magic``; returns a uint8 array of its shape."""
    data = _read_bytes(path)
    if len(data) < 4:
        raise IdxError(f"{path}: {len(data)} bytes, too short for an IDX header")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise IdxError(f"{path}: magic number {found:#010x}, expected {magic:#010x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: header truncated ({len(data)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    body = len(data) - header
    if body != expected:
        raise IdxError(
            f"{path}: header says dimensions {dims} ({expected} bytes of data), found {body} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_images(path: Path, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    images = read_idx(path, IMAGES_MAGIC)
    if images.shape[1:] != shape:
        raise IdxError(f"{path}: images are {images.shape[1:]}, expected {shape}")
    return images


def read_labels(path: Path, n_classes: int = 10) -> np.ndarray:
    labels = read_idx(path, LABELS_MAGIC)
    if labels.size and int(labels.max()) >= n_classes:
        bad = int(np.argmax(labels >= n_classes))
        raise IdxError(
            f"{path}: label {int(labels[bad])} at index {bad} is outside 0..{n_classes - 1}"
        )
    return labels


def read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split, checked to have the same count."""
    images, labels = read_images(images_path), read_labels(labels_path)
    if len(images) != len(labels):
        raise IdxError(
            f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels"
        )
    return images, labels
