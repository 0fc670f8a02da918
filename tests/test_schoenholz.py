"""A tiny `schoenholz` grid end to end: the profile's setting (tanh, fan_out weights, biases
N(0, 0.05), shifted pixels, plain SGD, a step budget, training accuracy on every training image)
trained by the train stage's own function, then the report's phase section and Reproductions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from initbench import config, profiles
from initbench.data import normalize
from initbench.report import maps, phase, phase_figure, reproductions
from initbench.train.cell import plan, train_cell
from initbench.train.records import cell_results

from .conftest import ROOT

DEPTHS, SIGMA_W, STEPS = (2, 6), (1.0, 1.4142, 2.0), 7


@pytest.fixture(scope="module")
def tiny(mnist, tmp_path_factory):
    _, raw = profiles.profiled(ROOT / "params.yaml", "schoenholz")
    raw["data"]["train_limit"] = 1200
    raw["study"]["phase"].update(depths=list(DEPTHS), sigma_w=list(SIGMA_W), width=64,
                                 train_limit=None, seeds=2, epochs=2, steps=STEPS)
    params = config.from_dict(raw)
    arrays, _ = normalize.build_arrays(mnist, params.data)
    cells = {}
    for depth in DEPTHS:
        cell = params.cell(f"phase-{depth}-tanh")
        results, _ = train_cell(cell, plan(cell, params.train.seed, True), arrays, 64)
        cells[cell.name] = json.loads(json.dumps(cell_results(params, cell, len(arrays["y_train"]),
                                                              results)))
    return params, cells, arrays


def test_the_profile_is_the_published_setting():
    _, raw = profiles.profiled(ROOT / "params.yaml", "schoenholz")
    p = config.from_dict(raw).study.phase
    assert (p.width, p.activations, p.mode, p.optimizer, p.momentum) == (300, ("tanh",), "fan_out",
                                                                        "sgd", 0.0)
    assert (p.learning_rate, p.batch_size, p.steps, p.train_limit) == (1e-3, 256, 201, None)
    assert p.sigma_b**2 == pytest.approx(0.05, rel=1e-6) and raw["data"]["shift"] == 0.5
    assert [d + 1 for d in p.depths] == [10, 25, 50, 75, 100]  # Dense layers in all
    s2 = [s * s for s in p.sigma_w]
    assert len(s2) >= 10 and min(s2) == pytest.approx(1) and max(s2) == pytest.approx(4)


def test_a_tiny_grid_trains_with_the_step_budget_and_scores_on_every_training_image(tiny):
    _, cells, arrays = tiny
    n_all = len(arrays["y_train"]) + len(arrays["y_val"])  # 1,200: the training + validation split
    for cell in cells.values():
        assert cell["config"]["train.steps"] == STEPS
        for m in cell["members"]:
            assert len(m["history"]) == 2  # 1,080 images, batch 256: 5 updates, then 2 of 5
            # an accuracy over n_all images is a multiple of 1 / n_all
            assert m["train_accuracy"] * n_all == pytest.approx(round(m["train_accuracy"] * n_all))
            assert len(m["init_probes"]["pair_c"]) == cell["depth"] + 1
    biases = cells["phase-6-tanh"]["config"]["model.sigma_b"]
    assert biases**2 == pytest.approx(0.05, rel=1e-6)


def test_the_report_reads_the_grid_with_biases_and_its_measure(tiny, tmp_path):
    params, cells, _ = tiny
    ph = params.study.phase
    assert phase.accuracy_key(cells, ph) == "train_accuracy"
    assert phase.critical(  # with biases the edge of chaos moves: sigma_w^2 = 1.76 (Schoenholz fig. 1)
        "tanh", ph.sigma_b) ** 2 == pytest.approx(1.76, abs=0.01)
    text = "\n".join(phase.markdown(cells, ph, "phase.png"))
    assert "weights N(0, sigma_w^2 / fan_out)" in text and "biases N(0, 0.05)" in text
    assert f"exactly {STEPS} updates" in text
    assert "training accuracy after the last update, on the training and validation splits" in text
    res = phase.summary(cells, ph)
    assert all(r["tests"].startswith("Schoenholz") for r in res["tanh"].values())  # both sides
    phase_figure.figure(cells, ph, tmp_path / "phase.png")
    assert (tmp_path / "phase.png").read_bytes()[:4] == b"\x89PNG"
    # the correlation map with sigma_b^2 = 0.05 against theory, at every weight scale
    a = maps.cmap_pooled(cells["phase-6-tanh"], 0.95)
    assert a is not None and a.effect.n == len(SIGMA_W) * 2 and math.isfinite(a.effect.mean)
    assert abs(a.effect.mean) < 0.5  # width 64: a loose band, but a wrong map misses by far more
    rows = reproductions.rows(params, {"baseline": {"members": []}, **cells}, res, 0.95)
    poole = [r for r in rows if r["source"] == "Poole et al. 2016" and "phase grid" in r["claim"]]
    assert len(poole) == 1 and poole[0]["verdict"] in ("reproduced", "not reproduced")
    assert "biases N(0, 0.05)" in poole[0]["claim"]


def test_the_shift_is_in_the_processed_inputs(tiny):
    _, _, arrays = tiny
    assert np.isclose(arrays["x_train"].min(), -0.5) and arrays["x_train"].max() <= 0.5

