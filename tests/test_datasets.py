"""The same cell on several datasets: which verdicts replicate, which contradict, time to a
dataset-relative target, the figure, and the report section (on cells built to agree or not)."""

from __future__ import annotations

import pytest

from initbench.report import datasets, figures
from initbench.report.tables import cell_table

REF = [0.975, 0.976, 0.977, 0.978, 0.979]
FASHION = [v - 0.09 for v in REF]  # the same seeds' spread, about 9 pp lower


def member(label: str, seed: int, acc: float, curve: list[float]) -> dict:
    failed = acc < 0.2
    return {"label": label, "seed_index": seed, "test_accuracy": acc, "final_train_loss": 0.1,
            "diverged": failed, "confusion": [[10 if i == j else 0 for j in range(10)] for i in range(10)],
            "history": [{"epoch": e + 1, "loss": 0.1, "accuracy": v, "val_accuracy": v}
                        for e, v in enumerate(curve)]}


def cell(groups: dict[str, list[float]]) -> dict:
    return {"activation": "relu", "config": {"n_train": 1000},
            "members": [member(label, i, a, [a - 0.05, a - 0.005, a]) for label, values in groups.items()
                        for i, a in enumerate(values)]}


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("higher accuracy", "lower accuracy", True),
    ("higher accuracy", "equivalent", True),
    ("equivalent", "lower accuracy", True),
    ("higher accuracy", "higher accuracy", False),
    ("equivalent", "equivalent", False),
    ("higher accuracy", "inconclusive", False),
    ("inconclusive", "equivalent", False),
    ("not enough finite values", "lower accuracy", False),
])
def test_which_verdicts_contradict(a, b, expected):
    assert datasets.contradicts(a, b) is expected and datasets.contradicts(b, a) is expected


def test_time_to_target_is_relative_to_the_dataset():
    """Target: 99% of the best initializer's mean final validation accuracy; a run that never
    trained is not counted, a seed that never reaches the target is said so."""
    c = cell({"he_normal": [0.80, 0.80], "slow": [0.80, 0.80], "zeros": [0.1, 0.1]})
    for m in c["members"]:
        if m["label"] == "slow":
            m["history"][1]["val_accuracy"] = 0.7  # reaches 0.792 only at epoch 3
        if m["label"] == "slow" and m["seed_index"] == 1:
            m["history"][2]["val_accuracy"] = 0.78
    target, epochs = datasets.time_to_target(c)
    assert target == pytest.approx(0.99 * 0.80)
    assert epochs == {"he_normal": "2", "slow": "1/2 reached", "zeros": "no run trained"}


def _section(fashion: dict[str, list[float]], tmp_path):
    names = {"baseline": "mnist", "dataset-fashion-mnist": "fashion-mnist"}
    mnist = {"he_normal": REF, "same": list(REF), "worse": [v - 0.01 for v in REF]}
    cells = {"baseline": cell(mnist), "dataset-fashion-mnist": cell(fashion)}
    summary = {k: cell_table(v, 0.95, 0.003)[1] for k, v in cells.items()}
    figures.dataset_differences(summary, names, tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 10_000
    return "\n".join(datasets.markdown(cells, summary, names, 0.95, "figures/d.png"))


def test_a_replicated_conclusion_is_named(tmp_path):
    text = _section({"he_normal": FASHION, "same": list(FASHION),
                     "worse": [v - 0.01 for v in FASHION]}, tmp_path)
    assert "Same verdict on every dataset: same (equivalent), worse (lower accuracy)." in text
    assert "Contradicting verdicts: none." in text
    assert ("| he_normal | 97.70 [97.50, 97.90] | reference | 2 | 88.70 [88.50, 88.90] | reference "
            "| 2 |") in text


def test_a_contradiction_is_named(tmp_path):
    """On the second dataset 'worse' is better than the reference: the section must say so."""
    text = _section({"he_normal": FASHION, "same": list(FASHION),
                     "worse": [v + 0.01 for v in FASHION]}, tmp_path)
    assert ("Contradicting verdicts: worse (mnist: lower accuracy, fashion-mnist: higher accuracy)."
            in text)
    assert "Same verdict on every dataset: same (equivalent)." in text
