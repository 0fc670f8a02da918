"""The processed archive ``data/processed/<dataset>.npz``: its format, and stratified subsets.

A leaf shared by the stage that writes the archive (normalize) and those that read it (train):
plain arrays, no pickle -- x_train, y_train, x_val, y_val, x_test, y_test.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


class ArchiveError(ValueError):
    """The processed archive is unreadable or does not hold what normalize writes."""


def save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load(path: Path) -> dict[str, np.ndarray]:
    """Load the processed archive (no pickle) and check it (:func:`check`)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as err:
        raise ArchiveError(f"processed archive {path} cannot be read ({type(err).__name__}: "
                           f"{err}); rerun `dvc repro normalize`") from err
    problem = check(arrays)
    if problem:
        raise ArchiveError(f"processed archive {path}: {problem}; rerun `dvc repro normalize`")
    return arrays


def check(arrays: dict[str, np.ndarray]) -> str | None:
    """What is wrong with the arrays, as normalize writes them, or None: every array of
    :data:`ARRAYS`; images float32 of one shape, finite; labels int64, one per image, >= 0."""
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        return f"no {', '.join(missing)} array (it holds {', '.join(sorted(arrays)) or 'nothing'})"
    shape = arrays["x_train"].shape[1:]
    for split in ("train", "val", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.float32 or x.ndim < 3 or x.shape[1:] != shape or not len(x):
            like = f" like x_train's (n, {', '.join(map(str, shape))})" if split != "train" else ""
            return (f"x_{split} is {x.dtype} of shape {x.shape}; expected float32 images of "
                    f"shape (n, height, width){like}, n > 0")
        if y.dtype != np.int64 or y.shape != (len(x),):
            return f"y_{split} is {y.dtype} of shape {y.shape}; expected int64 of shape ({len(x)},)"
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            return f"x_{split} holds {bad} NaN or infinite pixel value(s)"
        if (y < 0).any():
            return f"y_{split} holds negative labels (min {int(y.min())})"
    return None


def stratified_subset(x: np.ndarray, y: np.ndarray, n: int | None,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subset of n examples with the class proportions of y (all if n is None or too large)."""
    if n is None or n >= len(y):
        return x, y
    from sklearn.model_selection import train_test_split  # only when a subset is asked for

    keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    keep = np.sort(keep)
    return x[keep], y[keep]
