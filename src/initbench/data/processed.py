"""The processed archive ``data/processed/<dataset>.npz``: its format, and stratified subsets.

A leaf shared by the stage that writes the archive (normalize) and those that read it (train):
plain arrays, no pickle -- x_train, y_train, x_val, y_val, x_test, y_test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load(path: Path) -> dict[str, np.ndarray]:
    """Load the processed archive (no pickle)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def stratified_subset(x: np.ndarray, y: np.ndarray, n: int | None,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subset of n examples with the class proportions of y (all if n is None or too large)."""
    if n is None or n >= len(y):
        return x, y
    from sklearn.model_selection import train_test_split  # only when a subset is asked for

    keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    keep = np.sort(keep)
    return x[keep], y[keep]
