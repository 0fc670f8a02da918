"""IDX parsing on generated files (valid and corrupt) and on the real MNIST test labels."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from initbench.data.idx import IMAGES_MAGIC, LABELS_MAGIC, IdxError, read_images, read_labels, read_pair


def write_idx(path, magic, dims, body: bytes, compress=True):
    data = struct.pack(f">I{len(dims)}I", magic, *dims) + body
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    return pixels, write_idx(tmp_path / "img.gz", IMAGES_MAGIC, (7, 28, 28), pixels.tobytes())


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_images_and_labels(tmp_path, compress):
    pixels = np.arange(3 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(3, 28, 28)
    img = write_idx(tmp_path / "i", IMAGES_MAGIC, (3, 28, 28), pixels.tobytes(), compress)
    lab = write_idx(tmp_path / "l", LABELS_MAGIC, (3,), bytes([9, 0, 4]), compress)
    x, y = read_pair(img, lab)
    assert x.dtype == np.uint8 and x.shape == (3, 28, 28)
    np.testing.assert_array_equal(x, pixels)
    assert y.tolist() == [9, 0, 4]


def test_wrong_magic_is_rejected(tmp_path, images):
    pixels, _ = images
    path = write_idx(tmp_path / "bad.gz", LABELS_MAGIC, (7, 28, 28), pixels.tobytes())
    with pytest.raises(IdxError, match=r"magic number 0x00000801, expected 0x00000803"):
        read_images(path)


def test_truncated_body_is_rejected(tmp_path, images):
    pixels, _ = images
    path = write_idx(tmp_path / "short.gz", IMAGES_MAGIC, (7, 28, 28), pixels.tobytes()[:-10])
    with pytest.raises(IdxError, match=r"dimensions \(7, 28, 28\) \(5488 bytes of data\), found 5478"):
        read_images(path)


def test_trailing_bytes_are_rejected(tmp_path, images):
    pixels, _ = images
    path = write_idx(tmp_path / "long.gz", IMAGES_MAGIC, (7, 28, 28), pixels.tobytes() + b"\0")
    with pytest.raises(IdxError, match="found 5489 bytes"):
        read_images(path)


def test_truncated_header_and_empty_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(IdxError, match="too short"):
        read_labels(tmp_path / "empty")
    (tmp_path / "hdr").write_bytes(struct.pack(">I", IMAGES_MAGIC) + b"\0\0")
    with pytest.raises(IdxError, match="header truncated"):
        read_images(tmp_path / "hdr")


def test_corrupt_gzip_is_rejected(tmp_path, images):
    _, good = images
    broken = tmp_path / "broken.gz"
    broken.write_bytes(good.read_bytes()[:200])
    with pytest.raises(IdxError, match="cannot read"):
        read_images(broken)


def test_wrong_image_size(tmp_path):
    path = write_idx(tmp_path / "i.gz", IMAGES_MAGIC, (2, 32, 32), bytes(2 * 32 * 32))
    with pytest.raises(IdxError, match=r"images are \(32, 32\), expected \(28, 28\)"):
        read_images(path)


def test_label_out_of_range(tmp_path):
    path = write_idx(tmp_path / "l.gz", LABELS_MAGIC, (4,), bytes([1, 2, 10, 3]))
    with pytest.raises(IdxError, match=r"label 10 at index 2 is outside 0..9"):
        read_labels(path)


def test_count_mismatch(tmp_path, images):
    _, img = images
    lab = write_idx(tmp_path / "l.gz", LABELS_MAGIC, (6,), bytes(6))
    with pytest.raises(IdxError, match=r"7 images but .* 6 labels"):
        read_pair(img, lab)


def test_real_mnist_test_split(mnist):
    x, y = read_pair(mnist / "t10k-images-idx3-ubyte.gz", mnist / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)
    # The canonical class counts of the MNIST test set.
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert y[:5].tolist() == [7, 2, 1, 0, 4]
