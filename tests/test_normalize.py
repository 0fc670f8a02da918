"""The normalize stage on real MNIST: scaling, stratified seeded split, standardization, outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from initbench.config import DataConfig
from initbench.data import normalize, processed


def cfg(**kw) -> DataConfig:
    base = dict(dataset="mnist", val_fraction=0.1, standardize=False, split_seed=0,
                train_limit=5000, test_limit=1000)
    return DataConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def default_arrays(mnist):
    return normalize.build_arrays(mnist, cfg())


def test_shapes_types_and_range(default_arrays):
    arrays, stats = default_arrays
    assert arrays["x_train"].shape == (4500, 28, 28) and arrays["x_val"].shape == (500, 28, 28)
    assert arrays["x_test"].shape == (1000, 28, 28)
    for key in ("x_train", "x_val", "x_test"):
        assert arrays[key].dtype == np.float32
        assert arrays[key].min() == 0.0 and arrays[key].max() == 1.0
    assert stats["n"] == {"train": 4500, "val": 500, "test": 1000}
    assert sum(stats["class_counts"]["val"]) == 500


def test_split_is_stratified(default_arrays):
    arrays, _ = default_arrays
    p_train = np.bincount(arrays["y_train"], minlength=10) / len(arrays["y_train"])
    p_val = np.bincount(arrays["y_val"], minlength=10) / len(arrays["y_val"])
    # Stratification keeps every class share within one image of the training share.
    assert np.all(np.abs(p_train - p_val) <= 1.0 / len(arrays["y_val"]) + 1e-9)


def test_split_is_seeded(mnist, default_arrays):
    again, _ = normalize.build_arrays(mnist, cfg())
    other, _ = normalize.build_arrays(mnist, cfg(split_seed=1))
    np.testing.assert_array_equal(again["x_val"], default_arrays[0]["x_val"])
    assert not np.array_equal(other["y_val"], default_arrays[0]["y_val"])


def test_full_training_set_statistics(mnist):
    arrays, stats = normalize.build_arrays(mnist, cfg(train_limit=None, test_limit=None))
    assert stats["n"] == {"train": 54000, "val": 6000, "test": 10000}
    # The well-known MNIST normalisation constants, over all 60,000 training images.
    full = np.concatenate([arrays["x_train"], arrays["x_val"]])
    assert full.mean() == pytest.approx(0.1307, abs=1e-4)
    assert full.std() == pytest.approx(0.3081, abs=1e-4)


def test_standardization_uses_training_statistics(mnist, default_arrays):
    arrays, stats = normalize.build_arrays(mnist, cfg(standardize=True))
    assert abs(float(arrays["x_train"].mean())) < 1e-4
    assert float(arrays["x_train"].std()) == pytest.approx(1.0, abs=1e-4)
    raw_test = default_arrays[0]["x_test"]
    expected = (raw_test - stats["train_pixel_mean"]) / stats["train_pixel_std"]
    np.testing.assert_allclose(arrays["x_test"], expected, atol=1e-5)


def test_stage_writes_archive_and_stats(mnist, tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "mnist").symlink_to(mnist)
    stats = normalize.normalize(tmp_path / "raw", tmp_path / "p", cfg(), ["mnist"])["mnist"]
    loaded = processed.load(tmp_path / "p" / "mnist.npz")  # allow_pickle=False: no pickle here
    assert set(loaded) == {"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"}
    assert json.loads((tmp_path / "p" / "mnist.stats.json").read_text()) == stats
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["mnist.npz", "mnist.stats.json"]


def test_every_dataset_gets_the_same_settings(mnist, fashion, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "mnist").symlink_to(mnist)
    (raw / "fashion-mnist").symlink_to(fashion)
    stats = normalize.normalize(raw, tmp_path / "p", cfg(), ["mnist", "fashion-mnist"])
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "fashion-mnist.npz", "fashion-mnist.stats.json", "mnist.npz", "mnist.stats.json"]
    assert stats["fashion-mnist"]["dataset"] == "fashion-mnist"
    assert stats["fashion-mnist"]["n"] == stats["mnist"]["n"] == {"train": 4500, "val": 500, "test": 1000}
    # Different images: Fashion-MNIST's clothes are brighter on average than MNIST's digits.
    assert stats["fashion-mnist"]["train_pixel_mean"] > stats["mnist"]["train_pixel_mean"] + 0.1
    alone, _ = normalize.build_arrays(fashion, cfg(dataset="fashion-mnist"))
    np.testing.assert_array_equal(processed.load(tmp_path / "p" / "fashion-mnist.npz")["x_val"],
                                  alone["x_val"])


def test_corrupt_raw_file_fails_without_output(mnist, tmp_path):
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(mnist, raw / "mnist")
    (raw / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz"):
        normalize.normalize(raw, tmp_path / "p", cfg(), ["mnist"])
    assert list(tmp_path.iterdir()) == [raw]
