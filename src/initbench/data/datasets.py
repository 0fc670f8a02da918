"""The datasets the pipeline knows: their four IDX files, pinned SHA-256 sums and mirrors.

MNIST: LeCun, Cortes & Burges, http://yann.lecun.com/exdb/mnist/ (sums as in the canonical files).
Fashion-MNIST: Xiao, Rasul & Vollgraf (2017), arXiv:1708.07747.

Each file is pinned twice: the SHA-256 of the gzip file as published (``gz_sha256``, None where
no canonical value is pinned) and of its decompressed IDX content (``sha256``). A download is
accepted when either matches, so a mirror or distribution that recompressed the same bytes (for
example Debian's ``dataset-fashion-mnist``) is accepted while any change to the data is not.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IdxFile:
    name: str
    sha256: str
    gz_sha256: str | None
    decompressed_bytes: int


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    files: dict[str, IdxFile]  # role (train_images, ...) -> file
    mirrors: tuple[str, ...]  # base URLs, tried in order; the file name is appended
    classes: tuple[str, ...]


_DIGITS = tuple(str(d) for d in range(10))

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist",
        {
            "train_images": IdxFile(
                "train-images-idx3-ubyte.gz",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                47040016,
            ),
            "train_labels": IdxFile(
                "train-labels-idx1-ubyte.gz",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                60008,
            ),
            "test_images": IdxFile(
                "t10k-images-idx3-ubyte.gz",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                7840016,
            ),
            "test_labels": IdxFile(
                "t10k-labels-idx1-ubyte.gz",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                10008,
            ),
        },
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        _DIGITS,
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        {
            "train_images": IdxFile(
                "train-images-idx3-ubyte.gz",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                None,
                47040016,
            ),
            "train_labels": IdxFile(
                "train-labels-idx1-ubyte.gz",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                None,
                60008,
            ),
            "test_images": IdxFile(
                "t10k-images-idx3-ubyte.gz",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                None,
                7840016,
            ),
            "test_labels": IdxFile(
                "t10k-labels-idx1-ubyte.gz",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                None,
                10008,
            ),
        },
        (
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        (
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
    ),
}
