"""The report's comparison and depth figures: what they draw, from data built to a known answer.

Each test would fail on the old figures: the comparison drew mean accuracies as bars on an axis cut
near the best one (0.1 pp looked like 9% of the axis), and the depth figures averaged failed runs
in with trained ones on a 0-1 axis, where a 1 pp effect is 1% of the panel.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from initbench.report import figures, figures_depth
from initbench.report.figures_depth import DepthPoint, accuracy_limits, trained_points
from initbench.report.stats import Interval, bounded_interval
from initbench.report.tables import cell_table

REF = [0.975, 0.976, 0.977, 0.978, 0.979]
NAN = math.nan


def member(label: str, seed: int, acc: float) -> dict:
    failed = acc < 0.2
    spread = [[10 if i == j else 0 for j in range(10)] for i in range(10)]
    chance = [[100 if j == 1 else 0 for j in range(10)]] + [[0] * 10] * 9  # class 1 only
    return {"label": label, "initializer": label, "seed_index": seed, "test_accuracy": acc,
            "final_train_loss": 2.3 if failed else 0.1, "diverged": failed,
            "history": [{"epoch": 1, "loss": 2.3 if failed else 0.1,
                         "accuracy": 0.1 if failed else acc}],
            "confusion": chance if failed else spread}


def cell(groups: dict[str, list[float]], activation: str = "relu") -> dict:
    return {"activation": activation, "members": [member(label, i, a) for label, values in
                                                  groups.items() for i, a in enumerate(values)]}


def test_comparison_draws_paired_differences_in_pp_with_zero_and_the_margin(tmp_path):
    """A 0.1 pp difference is drawn as 0.1 pp from 0 on an axis holding 0, the margin band and
    every interval; a row with no interval says why instead of drawing one."""
    rows = [("small", 0.001, 0.0005, 0.0015, "higher accuracy"),
            ("wide", -0.002, -0.009, 0.005, "inconclusive"),
            figures.DiffRow("zeros", NAN, NAN, NAN, "not enough finite values",
                            "no interval (0/5 trained)")]
    layout = figures.comparison(rows, "he_normal", 0.003, tmp_path / "c.png", "Pipeline cell")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert layout.x[:2] == pytest.approx([0.1, -0.2]) and layout.margin == pytest.approx(0.3)
    assert layout.high[0] - layout.low[0] == pytest.approx(0.1)  # pp, no rescaling
    assert list(layout.drawn) == [True, True, False]
    lo, hi = layout.xlim
    assert lo < -0.9 and hi > 0.5 and lo < 0 < hi  # the -0.9 pp end of "wide", 0, the margin
    assert hi - lo < 1.8  # zoomed to the data: no 0-100 axis either
    assert layout.texts[0] == "+0.10 [+0.05, +0.15] pp: higher accuracy"
    assert layout.notes[2] == "no interval (0/5 trained)" and layout.texts[2] == "not enough finite values"
    # Without a wide interval the axis still shows the whole margin band.
    narrow = figures.comparison_layout(rows[:1], 0.003)
    assert narrow.xlim[0] < -0.3 and narrow.xlim[1] > 0.3


def test_the_drawn_comparison_is_the_layout():
    layout = figures.comparison_layout([("a", 0.001, 0.0005, 0.0015, "higher accuracy"),
                                        ("b", NAN, NAN, NAN, "n/a", "no interval (1/3 trained)")],
                                       0.003)
    fig = figures.draw_comparison(layout, "he_normal", "t")
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx(layout.xlim)
    band = ax.patches[0]  # the margin, in pp
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx((-0.3, 0.3))
    point = next(line for line in ax.lines if line.get_marker() == "o")
    assert list(point.get_xdata()) == pytest.approx([0.1]) and list(point.get_ydata()) == [0]
    assert any(line.get_xdata()[0] == 0 for line in ax.lines if line.get_linestyle() == "-")
    texts = [t.get_text() for t in ax.texts]
    assert "no interval (1/3 trained)" in texts and "+0.10 [+0.05, +0.15] pp: higher accuracy" in texts
    figures.plt.close(fig)


def test_summary_rows_leave_out_the_reference_and_say_how_many_trained():
    _, summary = cell_table(cell({"he_normal": REF, "worse": [v - 0.01 for v in REF],
                                  "same": list(REF), "zeros": [0.1135] * 5}), 0.95, 0.003)
    rows = figures.summary_rows(summary)
    assert [r.label for r in rows] == ["same", "worse", "zeros"]  # largest first, no interval last
    assert rows[1].difference == pytest.approx(-0.01) and rows[1].verdict == "lower accuracy"
    assert rows[2].note == "no interval (0/5 trained)"


def test_depth_points_are_over_the_runs_that_trained():
    """2 of 3 seeds trained at 96%: the point is 96% and 2/3, not 67% (the mean with the failure)."""
    cells = {(10, "tanh"): cell({"glorot_uniform": [0.97, 0.971, 0.972],
                                 "normal": [0.96, 0.1135, 0.96]}, "tanh")}
    pts = trained_points(cells, ["glorot_uniform", "normal"], 0.95)
    p = pts[(10, "tanh", "normal")]
    assert (p.trained, p.seeds) == (2, 3) and p.interval.mean == pytest.approx(0.96)
    assert pts[(10, "tanh", "glorot_uniform")].trained == 3


def iv(mean: float, half: float) -> Interval:
    return Interval(mean, half, mean - half, mean + half, 3)


def test_the_accuracy_axis_is_zoomed_so_one_pp_shows():
    """Means of 96 and 97% with +-0.3 pp intervals: 1 pp fills most of the panel (on 0-1 it was 1%)."""
    lo, hi = accuracy_limits([DepthPoint(iv(0.96, 0.003), 3, 3), DepthPoint(iv(0.97, 0.003), 3, 3)])
    assert lo < 95.7 and hi > 97.3 and 1 / (hi - lo) > 0.5
    # One wide interval (two trained runs, t at 1 df) does not flatten the panel again.
    wide = DepthPoint(Interval(0.965, 0.01, 0.60, 1.0, 2, "t, clipped"), 2, 3)
    failed = DepthPoint(bounded_interval([], 0.95), 0, 3)
    lo, hi = accuracy_limits([DepthPoint(iv(0.96, 0.003), 3, 3), DepthPoint(iv(0.97, 0.003), 3, 3),
                              wide, failed])
    assert (lo, hi) == pytest.approx((93.7, 99.3))  # means 96-97, +-2 pp, 6% padding
    assert accuracy_limits([failed]) == (0.0, 100.0)


def test_the_depth_figure_draws_success_apart_and_marks_cut_intervals(tmp_path):
    depths, labels = [2, 10], ["he_normal", "glorot_uniform", "normal"]
    pts = {(d, "relu", lab): DepthPoint(iv(acc, 0.003), 3, 3)
           for d in depths for lab, acc in zip(labels, (0.97, 0.965, 0.96), strict=True)}
    pts[(10, "relu", "normal")] = (Interval(0.955, 0.02, 0.5, 1.0, 2), 2, 3)
    fig = figures_depth.draw_accuracy_vs_depth(pts, depths, ["relu"], labels, confidence=0.95)
    top, bottom = fig.axes[0], fig.axes[1]
    assert top.get_ylim() == pytest.approx(accuracy_limits(DepthPoint(*v) for v in pts.values()))
    assert top.get_ylim()[0] > 90  # not 0-1
    shares = [list(line.get_ydata()) for line in bottom.lines]
    assert shares == [[1, 1], [1, 1], [1, pytest.approx(2 / 3)]]
    markers = {line.get_marker() for line in bottom.lines}
    assert len(markers) == 3  # labels told apart by marker as well as colour
    cut = [line for line in top.lines if line.get_marker() in ("v", "^") and len(line.get_xdata())]
    assert {line.get_marker() for line in cut} == {"v", "^"}  # both ends of the wide interval
    assert "2/3" in [t.get_text() for t in top.texts]
    figures.plt.close(fig)
    figures_depth.accuracy_vs_depth(pts, depths, ["relu"], labels, tmp_path / "d.png", "conv layers")
    assert (tmp_path / "d.png").stat().st_size > 10_000
    assert np.isfinite(top.get_ylim()).all()
