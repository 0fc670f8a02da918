"""The Answer: sentences generated from verdicts, on cells built to give them, and the synthesis
of one contrast over depths."""

from __future__ import annotations

import numpy as np
import pytest

from initbench.report import answer
from initbench.report.tables import cell_table, judged
from tests.test_report import CHANCE, member


def built(effects: dict[str, float | None], seeds: int, sd: float, seed: int = 0,
          activation: str = "relu") -> dict:
    """A cell whose initializers differ from 0.95 by ``effects`` (None: collapses every seed)."""
    rng = np.random.default_rng(seed)
    block = rng.normal(0, 0.003, seeds)
    members = []
    for label, e in effects.items():
        for s in range(seeds):
            if e is None:
                members.append(member(label, s, 0.1135, 2.3, CHANCE))
            else:
                members.append(member(label, s, 0.95 + e + block[s] + rng.normal(0, sd)))
    return judged({"activation": activation, "members": members}, 0.1)


def test_each_verdict_becomes_its_clause_with_effect_sizes():
    cell = built({"he_normal": 0.0, "same_a": 0.0, "same_b": 0.0005, "worse": -0.03,
                  "never": None}, seeds=8, sd=0.0005)
    _, s = cell_table(cell, 0.95, 0.003)
    verdicts = {k: v["vs_reference"] for k, v in s["initializers"].items() if k != "he_normal"}
    near = ("equivalent", "different but negligible")
    assert verdicts["same_a"] in near and verdicts["same_b"] in near
    assert (verdicts["worse"], verdicts["never"]) == ("lower accuracy", "lower success rate")
    text = answer.cell_sentence(s)
    for words, clause in zip(near, ("equivalent to he_normal within +-0.3 pp: ",
                                    "different but inside the margin: "), strict=True):
        named = [k for k in ("same_a", "same_b") if verdicts[k] == words]
        if named:
            diffs = sorted(100 * s["initializers"][k]["difference"] for k in named)
            span = (f"({diffs[0]:+.2f} pp)" if len(diffs) == 1
                    else f"({diffs[0]:+.2f} to {diffs[1]:+.2f} pp)")
            assert f"{clause}{', '.join(named)} {span}" in text
    assert "lower accuracy than he_normal: worse -2.9" in text
    assert "trains less often than he_normal (8/8): never (0/8)" in text
    assert "undecided" not in text


def test_an_undecided_comparison_is_named_as_such():
    cell = built({"he_normal": 0.0, "noisy": 0.002, "other": 0.0}, seeds=3, sd=0.01)
    _, s = cell_table(cell, 0.95, 0.003)
    assert s["initializers"]["noisy"]["vs_reference"] == "inconclusive"
    noisy = s["initializers"]["noisy"]
    assert (f"undecided: noisy {100 * noisy['difference']:+.2f} pp [{100 * noisy['difference_low']:+.2f}, "
            f"{100 * noisy['difference_high']:+.2f}]") in answer.cell_sentence(s)


class _Params:
    """The few params fields answer.syntheses reads."""

    class study:  # noqa: N801
        confidence = 0.95
        deep_equivalence_margin = 0.01

        class depth:  # noqa: N801
            depths = (2, 20)
            activations = ("tanh",)


def test_a_contrast_consistent_across_depths_is_combined_and_one_that_fails_deep_is_named():
    effects = {"glorot_uniform": 0.0, "he_normal": 0.012, "gaussian_1": 0.0}
    shallow = built(effects, 6, 0.006, seed=1, activation="tanh")
    deep = built({**effects, "gaussian_1": None}, 6, 0.006, seed=2, activation="tanh")
    summary = {"depth-2-tanh": cell_table(shallow, 0.95, 0.01)[1],
               "depth-20-tanh": cell_table(deep, 0.95, 0.01)[1]}
    syn = answer.syntheses(_Params, summary)
    he = syn["tanh: he_normal - glorot_uniform"]
    assert he["depths"] == [2, 20] and he["verdict"] in ("higher accuracy", "inconclusive")
    per_cell = [summary[c]["initializers"]["he_normal"]["difference"] for c in summary]
    assert min(per_cell) <= he["difference"] <= max(per_cell)
    assert he["low"] < he["difference"] < he["high"] and he["q_p"] > 0.1
    g = syn["tanh: gaussian_1 - glorot_uniform"]
    assert g["success_differs"] == {"20": "lower success rate"} and "difference" not in g
    assert g["verdict"] == "lower success rate at depth 20"
    lines = answer.synthesis_lines(syn, 0.95)
    assert len(lines) == 2 + len(syn) and "| tanh | gaussian_1 - glorot_uniform | - | - |" in lines[-1]


def test_the_combined_interval_is_narrower_than_either_cells():
    effects = {"glorot_uniform": 0.0, "he_normal": 0.012}
    cells = [built(effects, 6, 0.006, seed=s, activation="tanh") for s in (3, 4)]
    summary = {f"depth-{d}-tanh": cell_table(c, 0.95, 0.01)[1]
               for d, c in zip((2, 20), cells, strict=True)}
    he = answer.syntheses(_Params, summary)["tanh: he_normal - glorot_uniform"]
    widths = [s["initializers"]["he_normal"]["difference_high"]
              - s["initializers"]["he_normal"]["difference_low"] for s in summary.values()]
    assert he["high"] - he["low"] < min(widths)
    assert he["verdict"] == "higher accuracy"
    assert he["difference"] == pytest.approx(np.mean([s["initializers"]["he_normal"]["difference"]
                                                      for s in summary.values()]), abs=0.004)
