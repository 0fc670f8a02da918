"""The ``normalize`` stage: raw IDX files -> ``data/processed/<dataset>.npz`` + stats JSON, for
every dataset the study reads (``data.dataset`` and ``study.datasets``), each with the same
``data`` settings.

Pixels are scaled to float32 in [0, 1] and shifted by ``data.shift`` (0.5: [-0.5, 0.5], the
inputs of Schoenholz et al. 2017's MNIST experiment); or standardized with the *training* split's
mean and standard deviation (never the test set's, to avoid leaking it). The validation split is a
seeded, stratified split of the training set (scikit-learn's ``train_test_split``). The archive
holds plain arrays (no pickle): x_train, y_train, x_val, y_val, x_test, y_test.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from initbench.config import DataConfig
from initbench.data import processed
from initbench.data.datasets import DATASETS
from initbench.data.idx import read_pair
from initbench.paths import atomic_output, processed_names

SPLITS = ("train", "val", "test")


def build_arrays(raw_dir: Path, cfg: DataConfig) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Parse, subset, split and scale; returns the arrays and their statistics."""
    files = DATASETS[cfg.dataset].files
    x_all, y_all = read_pair(raw_dir / files["train_images"].name, raw_dir / files["train_labels"].name)
    x_test, y_test = read_pair(raw_dir / files["test_images"].name, raw_dir / files["test_labels"].name)
    x_all, y_all = processed.stratified_subset(x_all, y_all, cfg.train_limit, cfg.split_seed)
    x_test, y_test = processed.stratified_subset(x_test, y_test, cfg.test_limit, cfg.split_seed)
    x_train, x_val, y_train, y_val = train_test_split(
        x_all, y_all, test_size=cfg.val_fraction, stratify=y_all, random_state=cfg.split_seed
    )
    arrays = {"x_train": x_train, "x_val": x_val, "x_test": x_test}
    arrays = {k: v.astype(np.float32) / np.float32(255.0) for k, v in arrays.items()}
    mean = float(arrays["x_train"].mean(dtype=np.float64))
    std = float(arrays["x_train"].std(dtype=np.float64))
    if cfg.standardize:
        arrays = {k: ((v - mean) / std).astype(np.float32) for k, v in arrays.items()}
    elif cfg.shift:
        arrays = {k: v - np.float32(cfg.shift) for k, v in arrays.items()}
    labels = {"y_train": y_train, "y_val": y_val, "y_test": y_test}
    arrays.update({k: v.astype(np.int64) for k, v in labels.items()})
    n_classes = len(DATASETS[cfg.dataset].classes)
    stats = {
        "dataset": cfg.dataset,
        "train_pixel_mean": mean,
        "train_pixel_std": std,
        "standardized": cfg.standardize,
        **({"shift": cfg.shift} if cfg.shift else {}),
        "n": {s: len(arrays[f"y_{s}"]) for s in SPLITS},
        "class_counts": {
            s: np.bincount(arrays[f"y_{s}"], minlength=n_classes).tolist() for s in SPLITS
        },
    }
    return arrays, stats


def normalize(raw_root: Path, out_dir: Path, cfg: DataConfig,
              datasets: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Run the stage: ``raw_root/<dataset>/`` -> ``out_dir/<dataset>.npz`` and
    ``<dataset>.stats.json`` for each dataset, the directory written in one atomic step (a
    failure on any dataset leaves no output); return dataset -> its stats."""
    names = [n for d in datasets for n in processed_names(d)]
    out = {}
    with atomic_output(out_dir, names) as tmp:
        tmp.mkdir()
        for dataset in datasets:
            arrays, out[dataset] = build_arrays(raw_root / dataset,
                                                dataclasses.replace(cfg, dataset=dataset))
            npz, stats = processed_names(dataset)
            processed.save(tmp / npz, arrays)
            (tmp / stats).write_text(json.dumps(out[dataset], indent=2) + "\n")
    return out
