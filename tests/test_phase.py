"""The trainability phase diagram: its params, its cells, the depth scale, and its report section."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initbench import config
from initbench.paths import cell_from_stage, stage_of_cell
from initbench.report import phase, theory


def test_phase_cells_hold_every_sigma_w_as_an_initializer(raw_params):
    raw_params["study"]["phase"].update(depths=[3, 6], activations=["tanh"], sigma_w=[0.5, 1.41])
    cells = config.from_dict(raw_params).cells()
    assert [n for n in cells if n.startswith("phase-")] == ["phase-3-tanh", "phase-6-tanh"]
    cell = cells["phase-6-tanh"]
    assert cell.model.hidden == (raw_params["study"]["phase"]["width"],) * 6
    assert cell.train.optimizer == raw_params["study"]["phase"]["optimizer"] and not cell.save_models
    spec = cell.initializers["sw_1p41"]
    assert spec.name == "variance_scaling"
    assert dict(spec.args) == {"scale": pytest.approx(1.41**2), "mode": "fan_in",
                               "distribution": "untruncated_normal"}
    assert list(cell.initializers) == ["sw_0p5", "sw_1p41"]
    assert stage_of_cell("phase-6-tanh") == "train_phase@6-tanh"
    assert cell_from_stage("train_phase@6-tanh") == "phase-6-tanh"
    assert stage_of_cell("depth-2-relu") == "train_depth@2-relu" and stage_of_cell("baseline") == "train"


@pytest.mark.parametrize(("key", "value", "says"), [
    ("sigma_w", [], "study.phase.sigma_w: got []"),
    ("sigma_w", [1.0, 1.0], "distinct numbers"),
    ("sigma_w", [0.0, 1.0], "in (0, 10]"),
    ("sigma_w", ["wide"], "study.phase.sigma_w[0]: got 'wide'"),
    ("depths", [4, 0], "study.phase.depths"),
    ("activations", ["tnah"], "did you mean 'tanh'"),
    ("learning_rate", -1.0, "study.phase.learning_rate"),
    ("initializers", {"he_normal": None}, "study.phase.initializers: unknown key"),
])
def test_bad_phase_params_name_the_field(raw_params, key, value, says):
    raw_params["study"]["phase"][key] = value
    with pytest.raises(config.ConfigError, match=None) as err:
        config.from_dict(raw_params)
    assert says in str(err.value)


def test_depth_scale_matches_closed_forms_and_diverges_at_the_edge():
    for s in (0.5, 0.7, 0.9):  # tanh, ordered phase: q* = 0, chi = sigma_w^2
        assert theory.depth_scale("tanh", s) == pytest.approx(-1 / math.log(s * s))
    for s in (0.5, 1.0, 2.0, 3.0):  # relu: the gradient factor sigma_w^2 / 2
        assert theory.depth_scale("relu", s) == pytest.approx(1 / abs(math.log(s * s / 2)))
    assert theory.depth_scale("tanh", 1.0) == math.inf
    assert theory.depth_scale("relu", math.sqrt(2)) > 1e6
    # Chaotic tanh: q* solves q = sigma_w^2 E[tanh^2], checked by Monte Carlo, and xi falls with
    # sigma_w past the edge.
    q = theory.fixed_point("tanh", 4.0)
    z = np.random.default_rng(0).standard_normal(2_000_000)
    assert 4.0 * np.mean(np.tanh(math.sqrt(q) * z) ** 2) == pytest.approx(q, rel=2e-3)
    chi_c = 4.0 * np.mean(1 / np.cosh(math.sqrt(q) * z) ** 2) ** 2
    assert theory.depth_scale("tanh", 2.0) == pytest.approx(-1 / math.log(chi_c), rel=1e-2)
    xis = [theory.depth_scale("tanh", s) for s in (1.1, 1.5, 2.0, 3.0)]
    assert xis == sorted(xis, reverse=True)


def _member(label: str, seed: int, acc: float) -> dict:
    failed = acc < 0.2
    return {"label": label, "seed_index": seed, "test_accuracy": acc, "diverged": failed,
            "history": [{"loss": 2.3 if failed else 0.3, "accuracy": 0.1 if failed else acc}],
            "confusion": [[10 if i == j else 0 for j in range(10)] for i in range(10)]}


def _cells(p: config.PhaseConfig, accuracy) -> dict:
    return {f"phase-{d}-{a}": {"members": [
        _member(config.sigma_label(s), i, accuracy(a, d, s)) for s in p.sigma_w for i in range(2)]}
        for d in p.depths for a in p.activations}


def test_phase_report_counts_agreement_and_names_each_disagreement(raw_params, tmp_path):
    raw_params["study"]["phase"].update(depths=[4, 32], activations=["tanh", "relu"],
                                        sigma_w=[0.5, 1.0, 1.41, 3.0])
    p = config.from_dict(raw_params).study.phase

    def theory_says(a: str, d: int, s: float) -> float:
        return 0.9 if d <= 6 * theory.depth_scale(a, s) else 0.11

    text = "\n".join(phase.markdown(_cells(p, theory_says), p, "f.png"))
    assert "agree on trainability at **16 of 16** points" in text and "disagree" not in text
    assert "| 32 | 11.0 (0/2) | 90.0 (2/2) | 90.0 (2/2) | 11.0 (0/2) |" in text  # tanh

    def relu_fails_at_he(a: str, d: int, s: float) -> float:
        return 0.11 if (a, d, s) == ("relu", 32, 1.41) else theory_says(a, d, s)

    text = "\n".join(phase.markdown(_cells(p, relu_fails_at_he), p, "f.png"))
    assert "**15 of 16**" in text
    assert "Where they disagree: relu depth 32 sigma_w 1.41 (fails, 6 xi = " in text
    phase.figure(_cells(p, relu_fails_at_he), p, tmp_path / "phase.png")
    assert (tmp_path / "phase.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
