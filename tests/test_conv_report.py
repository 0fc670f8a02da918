"""The conv cells' claim, "He beats Xavier in deeper CNNs", read from cells built to hold it,
to contradict it, and with Glorot as the reference (tanh)."""

from __future__ import annotations

import types

from initbench.report import conv
from initbench.report.tables import cell_table

REF = [0.90, 0.91, 0.92]


def member(label: str, seed: int, acc: float) -> dict:
    return {"label": label, "seed_index": seed, "test_accuracy": acc, "final_train_loss": 0.1,
            "diverged": False, "history": [{"epoch": 1, "loss": 0.1, "accuracy": acc}],
            "confusion": [[10 if i == j else 0 for j in range(10)] for i in range(10)]}


def summary(activation: str, gap: float) -> dict:
    """A cell where Glorot is ``gap`` below He in every seed (negative: above)."""
    groups = {"he_normal": REF, "glorot_uniform": [v - gap for v in REF]}
    cell = {"activation": activation,
            "members": [member(k, i, a) for k, v in groups.items() for i, a in enumerate(v)]}
    return cell_table(cell, 0.95, 0.003)[1]


def config(activations: tuple[str, ...]) -> types.SimpleNamespace:
    """What the section reads of a ConvConfig."""
    return types.SimpleNamespace(depths=(2, 8), activations=activations,
                                 initializers={"he_normal": None, "glorot_uniform": None})


def test_he_better_only_when_deep_holds():
    cells = {"conv-2-relu": summary("relu", 0.0), "conv-8-relu": summary("relu", 0.02),
             "conv-2-tanh": summary("tanh", 0.0), "conv-8-tanh": summary("tanh", 0.02)}
    text = "\n".join(conv.markdown(cells, config(("relu", "tanh")), "f.png"))
    assert "| 8 | relu | 3/3 | 3/3 | -2.00 [-2.00, -2.00] | He better |" in text
    assert "| 2 | relu | 3/3 | 3/3 | +0.00 [+0.00, +0.00] | equivalent |" in text
    # tanh: Glorot is the cell's reference, so the difference is read the other way round
    assert "| 8 | tanh | 3/3 | 3/3 | -2.00 [-2.00, -2.00] | He better |" in text
    assert '- **relu**: He is detectably better than Xavier at 8 conv depth(s); "He beats Xavier ' \
           'in deeper CNNs" holds here.' in text


def test_xavier_better_when_deep_is_not_support():
    cells = {"conv-2-relu": summary("relu", 0.02), "conv-8-relu": summary("relu", -0.02)}
    text = "\n".join(conv.markdown(cells, config(("relu",)), "f.png"))
    assert "| 8 | relu | 3/3 | 3/3 | +2.00 [+2.00, +2.00] | Xavier better |" in text
    assert '"He beats Xavier in deeper CNNs" is not supported here (at 8 conv layers' in text
