"""The conv cells' claim, "He beats Xavier in deeper CNNs", read from cells built to hold it
(He better, and more so when deeper), to fall short of it (He better by the same at every depth:
the old reading said it held), to contradict it, with Glorot as the reference (tanh), with too
few seeds, and with He failing in some seeds."""

from __future__ import annotations

import types

import numpy as np

from initbench.report import conv

from .test_interaction import cell_of, gapped

DEPTHS = (2, 8)


def config(activations: tuple[str, ...] = ("relu",), depths: tuple[int, ...] = DEPTHS,
           initializers: tuple[str, ...] = ("he_normal", "glorot_uniform", "lecun_normal")
           ) -> types.SimpleNamespace:
    """What the section reads of a ConvConfig."""
    return types.SimpleNamespace(depths=depths, activations=activations,
                                 initializers=dict.fromkeys(initializers))


def cells(glorot: dict[tuple[int, str], float], seeds: int = 6, noise: float = 0.0005,
          seed: int = 0) -> dict:
    """conv cells where Glorot is ``glorot[depth, activation]`` from He (lecun_normal 0.5 pp
    below He everywhere), each seed with an effect shared by its runs at that depth."""
    rng = np.random.default_rng(seed)
    out = {}
    for (d, a), g in glorot.items():
        acc = gapped({"glorot_uniform": g, "lecun_normal": -0.005}, seeds, noise, rng)
        out[f"conv-{d}-{a}"] = cell_of(acc, a)
    return out


def claim(res: dict, activation: str = "relu") -> str:
    return res["activations"][activation]["claim"]["verdict"]


def test_he_better_and_more_so_when_deep_holds_either_way_round():
    data = cells({(2, "relu"): 0.0, (8, "relu"): -0.02, (2, "tanh"): 0.0, (8, "tanh"): -0.02})
    cc = config(("relu", "tanh"))
    res = conv.summary(data, cc, 0.95, 0.003)
    assert res["comparisons"] == 4 and res["interaction_comparisons"] == 4
    for a in ("relu", "tanh"):
        assert claim(res, a) == "holds: He is better at 8 conv layers, and more so than at 2"
        rows = res["activations"][a]["glorot_minus_he"]
        assert rows["2"]["verdict"] == "equivalent" and rows["8"]["verdict"] == "He better"
    # tanh: Glorot is the reference, so the contrast is He - Glorot, and it widens just the same
    tanh = res["activations"]["tanh"]["depth_x_initializer"]
    assert set(tanh) == {"he_normal", "lecun_normal"} and tanh["he_normal"]["low"] > 0
    assert tanh["he_normal"]["verdict"] == "the gap widens"
    relu = res["activations"]["relu"]["depth_x_initializer"]
    assert relu["glorot_uniform"]["verdict"] == "the gap widens" and relu["glorot_uniform"]["high"] < 0
    assert relu["lecun_normal"]["verdict"] == "unchanged within the margin"
    text = "\n".join(conv.markdown(data, cc, "f.png", 0.95, 0.003))
    assert "| 8 | relu | 6/6 | 6/6 | -1.98 [-2.06, -1.91] | He better |" in text
    assert ("| relu | glorot_uniform - he_normal | -0.04 | -1.98 | -1.94 [-2.08, -1.80] | the gap "
            "widens |") in text
    assert "| tanh | he_normal - glorot_uniform | " in text
    assert ('- **relu**: "He beats Xavier in deeper CNNs" **holds**: He is better at 8 conv layers, '
            "and more so than at 2.") in text


def test_he_better_by_the_same_at_every_depth_is_not_supported():
    """The old reading said "holds" here: He detectably better at 2 and at 8 conv layers. The
    claim is about *deeper* CNNs: the gap must grow with depth, and here it stays within the
    margin."""
    data = cells({(2, "relu"): -0.02, (8, "relu"): -0.02}, seeds=12)
    res = conv.summary(data, config(), 0.95, 0.003)
    rows = res["activations"]["relu"]["glorot_minus_he"]
    assert rows["2"]["verdict"] == rows["8"]["verdict"] == "He better"
    assert claim(res) == ("not supported: at 8 conv layers: He better; from 2 to 8 conv layers, "
                          "Glorot - He: unchanged within the margin")


def test_xavier_better_when_deep_or_he_losing_ground_contradicts_it():
    res = conv.summary(cells({(2, "relu"): 0.02, (8, "relu"): -0.02}), config(), 0.95, 0.003)
    assert claim(res).startswith("holds")  # from Xavier 2 pp ahead to He 2 pp ahead: He gains
    res = conv.summary(cells({(2, "relu"): -0.02, (8, "relu"): 0.02}), config(), 0.95, 0.003)
    assert claim(res).startswith("contradicted: at 8 conv layers: Xavier better")
    res = conv.summary(cells({(2, "relu"): -0.03, (8, "relu"): -0.01}), config(), 0.95, 0.003)
    assert claim(res) == ("contradicted: at 8 conv layers: He better; from 2 to 8 conv layers, "
                          "Glorot - He: the gap narrows")


def test_few_noisy_seeds_leave_it_undecided_and_say_what_would_decide_it():
    res = conv.summary(cells({(2, "relu"): 0.0, (8, "relu"): -0.01}, seeds=3, noise=0.01),
                       config(), 0.95, 0.003)
    verdict = claim(res)
    assert verdict.startswith("not supported: at 8 conv layers: inconclusive: about ")
    assert "from 2 to 8 conv layers, Glorot - He: inconclusive: about " in verdict


def test_failures_give_success_counts_and_shrink_the_pairs():
    """He failing in two deep seeds leaves every contrast with He four seeds; lecun_normal
    failing in one deep seed only is not comparable across depths."""
    data = cells({(2, "relu"): 0.0, (8, "relu"): -0.02})
    for m in data["conv-8-relu"]["members"]:
        if (m["label"], m["seed_index"]) in {("he_normal", 0), ("he_normal", 1), ("lecun_normal", 5)}:
            m.update(diverged=True, test_accuracy=0.1)
    res = conv.summary(data, config(), 0.95, 0.003)
    e = res["activations"]["relu"]
    assert e["glorot_minus_he"]["8"]["he_trained"] == "4/6" and e["glorot_minus_he"]["8"]["seeds"] == 4
    glorot, lecun = e["depth_x_initializer"]["glorot_uniform"], e["depth_x_initializer"]["lecun_normal"]
    assert glorot["verdict"] == "the gap widens" and glorot["seeds"] == 4
    assert lecun["verdict"].startswith("inconclusive: trained 6/6 (2 layers) vs 5/6 (8 layers), not "
                                       "a significant change of the success rate")
    assert res["interaction_comparisons"] == 1
    text = "\n".join(conv.markdown(data, config(), "f.png", 0.95, 0.003))
    assert "| 8 | relu | 4/6 | 6/6 | " in text
    assert ("| relu | lecun_normal - he_normal | 6/6 trained | 5/6 trained | - | inconclusive: "
            "trained 6/6") in text


def test_one_depth_or_a_missing_initializer_cannot_test_it():
    res = conv.summary(cells({(8, "relu"): -0.02}), config(depths=(8,)), 0.95, 0.003)
    assert claim(res) == "not testable: one conv depth"
    text = conv.markdown({}, config(initializers=("he_normal",)), "f.png", 0.95, 0.003)
    assert text == ["(not testable: the claim needs both he_normal and glorot_uniform in "
                    "study.conv.initializers.)"]


def test_the_answer_gives_the_claim_per_activation():
    data = cells({(2, "relu"): 0.0, (8, "relu"): -0.02, (2, "tanh"): -0.02, (8, "tanh"): -0.02},
                 seeds=12)
    res = conv.summary(data, config(("relu", "tanh")), 0.95, 0.003)
    assert conv.answer(res) == (
        'relu: "He beats Xavier in deeper CNNs" holds: He is better at 8 conv layers, and more so '
        'than at 2. tanh: "He beats Xavier in deeper CNNs" not supported: at 8 conv layers: He '
        "better; from 2 to 8 conv layers, Glorot - He: unchanged within the margin.")
