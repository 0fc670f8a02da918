"""The trainability phase diagram: its params, its cells, the depth scale, and its report section."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initbench import config
from initbench.paths import cell_from_stage, stage_of_cell
from initbench.report import phase, phase_figure, phase_fit, theory


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
    return {f"phase-{d}-{a}": {"activation": a, "members": [
        _member(config.sigma_label(s), i, accuracy(a, d, s, i)) for s in p.sigma_w for i in range(2)]}
        for d in p.depths for a in p.activations}


SIGMA_W = [0.5, 0.7, 0.85, 1.0, 1.2, 1.41, 1.7, 2.0, 2.5, 3.0]  # params.yaml's grid


def _phase(raw_params, depths) -> config.PhaseConfig:
    raw_params["study"]["phase"].update(depths=depths, activations=["tanh", "relu"], sigma_w=SIGMA_W)
    return config.from_dict(raw_params).study.phase


def _edge(c: float):
    """Runs train (90%) iff depth < c xi, else sit at chance."""
    return lambda a, d, s, seed: 0.9 if d < c * theory.depth_scale(a, s) else 0.11


def test_fit_of_a_grid_with_edge_6_xi_contains_6_and_excludes_3_and_12(raw_params):
    summary = phase.summary(_cells(p := _phase(raw_params, [4, 8, 16, 32, 64]), _edge(6.0)), p)
    assert {a: list(v) for a, v in summary.items()} == {"tanh": ["ordered", "chaotic"],
                                                        "relu": ["vanishing", "exploding"]}
    for act, sides in summary.items():
        for name, r in sides.items():
            assert r["low"] < 6 < r["high"] and r["low"] > 3 and r["high"] < 12, (act, name, r)
            assert r["contains_6"] and r["verdict"].startswith("consistent with 6 xi: c = "), r
    # sigma_w = 1 (tanh) is critical: xi infinite, on neither side; He's 1.41 is just below sqrt 2.
    assert summary["tanh"]["chaotic"]["sigma_w"] == [1.2, 1.41, 1.7, 2.0, 2.5, 3.0]
    assert summary["tanh"]["ordered"]["points"] == 3 * 5 and summary["tanh"]["ordered"]["runs"] == 30
    assert summary["relu"]["vanishing"]["sigma_w"] == [0.5, 0.7, 0.85, 1.0, 1.2, 1.41]
    assert "Schoenholz et al.'s 6 xi" in summary["tanh"]["chaotic"]["tests"]
    assert "q* = 0" in summary["tanh"]["ordered"]["tests"]
    assert all("scale threshold" in summary["relu"][n]["tests"] for n in ("vanishing", "exploding"))


def test_fit_of_a_grid_with_edge_10_xi_excludes_6(raw_params):
    summary = phase.summary(_cells(p := _phase(raw_params, [4, 8, 16, 32, 64]), _edge(10.0)), p)
    for act, name in (("tanh", "chaotic"), ("relu", "vanishing"), ("relu", "exploding")):
        r = summary[act][name]
        assert r["low"] < 10 < r["high"] and r["low"] > 6 and not r["contains_6"], (act, name, r)
        assert r["verdict"].startswith("excludes 6 xi: c = "), r
    # tanh's ordered side has no grid point with 5.7 < depth / xi < 10.4: it cannot tell 6 from 8.
    r = summary["tanh"]["ordered"]
    assert r["low"] < 6 < 8 < r["high"]


def test_a_grid_that_never_crosses_the_edge_is_inconclusive_and_says_what_would_decide(raw_params):
    # The default's two depths reach depth / xi = 3.4 at most on tanh's chaotic side: all train.
    r = phase.summary(_cells(p := _phase(raw_params, [4, 16]), _edge(6.0)), p)["tanh"]["chaotic"]
    assert r["high"] is None and r["c"] is None and r["trained"] == r["runs"] == 24
    assert r["verdict"].startswith("inconclusive: c > ")
    assert "no run failed, so deeper nets (depth >= 56 at sigma_w 3) would decide it" in r["verdict"]
    # Runs that do not follow depth / xi (seed 0 trains everywhere, seed 1 nowhere): no edge.
    coin = phase.summary(_cells(p, lambda a, d, s, seed: 0.9 if seed == 0 else 0.11), p)
    assert all(r["low"] < 3 and r["high"] is None for v in coin.values() for r in v.values())
    # One grid point (quick's depth 3 at one sigma_w a side) decides nothing, either way.
    assert phase_fit.fit([4.16], [0], [2]).low == 0 and math.isinf(phase_fit.fit([4.16], [2], [2]).high)


def test_the_interval_covers_the_true_c_in_about_95_percent_of_simulated_grids():
    # ReLU's vanishing side of the full grid, 2 seeds a point, a soft logistic edge at c = 6.
    ratios = np.array([d / theory.depth_scale("relu", s) for d in (4, 8, 16, 32) for s in SIGMA_W[:6]])
    p = 1 / (1 + np.exp(-3.0 * (math.log(6.0) - np.log(ratios))))
    rng = np.random.default_rng(2017)
    sims = 200
    covered = sum(phase_fit.fit(ratios, rng.binomial(2, p), [2] * len(ratios)).contains(6.0)
                  for _ in range(sims))
    assert 0.9 <= covered / sims <= 0.99


def test_phase_report_gives_each_side_its_constant_and_what_it_tests(raw_params, tmp_path):
    p = _phase(raw_params, [4, 8, 16, 32, 64])
    text = "\n".join(phase.markdown(_cells(p, _edge(6.0)), p, "f.png"))
    assert "agree on trainability" not in text  # a count of agreeing points cannot tell 6 from 8
    assert "95% profile-likelihood interval" in text
    for act, name in (("tanh", "ordered"), ("tanh", "chaotic"), ("relu", "vanishing"),
                      ("relu", "exploding")):
        assert f"| {act} | {name} | " in text
    assert "tanh chaotic: Schoenholz et al.'s 6 xi" in text
    assert "relu vanishing and relu exploding: a scale threshold" in text
    assert ("| 64 | 11.0 (0/2) | 11.0 (0/2) | 11.0 (0/2) | 90.0 (2/2) | 90.0 (2/2) | 90.0 (2/2) "
            "| 90.0 (2/2) | 11.0 (0/2) | 11.0 (0/2) | 11.0 (0/2) |") in text  # tanh
    phase_figure.figure(_cells(p, _edge(6.0)), p, tmp_path / "phase.png")
    assert (tmp_path / "phase.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
