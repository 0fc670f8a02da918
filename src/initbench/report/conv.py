"""Convolutional cells: does He beat Xavier (Glorot) in deeper CNNs?

The article the study starts from says that for image classification with CNNs Xavier and He are
the usual choices and that for deeper networks He is usually better, since it suits ReLU (He et
al. 2015 derive Var = 2 / fan_in for ReLU, where Glorot & Bengio 2010's 2 / (fan_in + fan_out)
halves the signal's second moment per layer; for a 3x3 conv, fan_in = 9 x input channels). Each
``conv-<layers>-<activation>`` cell trains every initializer of ``study.conv`` over its seeds;
the paired difference Glorot - He (per seed, Bonferroni-adjusted within the cell, as in every
cell's table) says at which depths He is detectably better, equivalent, or neither.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from initbench.config import ConvConfig
from initbench.paths import cell_name

HE, GLOROT = "he_normal", "glorot_uniform"


def markdown(summary: Mapping[str, dict[str, Any]], cc: ConvConfig, figure: str) -> list[str]:
    if HE not in cc.initializers or GLOROT not in cc.initializers:
        return [f"(The claim needs both {HE} and {GLOROT} in study.conv.initializers.)"]
    lines = [f"![accuracy vs conv depth]({figure})", "",
             f"| conv layers | activation | {HE} trained | {GLOROT} trained | {GLOROT} - {HE} "
             "(pp, paired, adjusted CI) | verdict |", "|---:|---|---:|---:|---:|---|"]
    better: dict[str, list[int]] = {a: [] for a in cc.activations}
    for depth in cc.depths:
        for act in cc.activations:
            cell = summary[cell_name(depth, act, "conv")]
            s = cell["initializers"]
            diff, words = glorot_minus_he(cell)
            if words == "He better":
                better[act].append(depth)
            text = (f"{100 * diff[0]:+.2f} [{100 * diff[1]:+.2f}, {100 * diff[2]:+.2f}]"
                    if all(math.isfinite(v) for v in diff) else "n/a")
            lines.append(f"| {depth} | {act} | {s[HE]['trained']}/{s[HE]['seeds']} | "
                         f"{s[GLOROT]['trained']}/{s[GLOROT]['seeds']} | {text} | {words} |")
    deepest = max(cc.depths)
    lines += [""]
    for act in cc.activations:
        where = better[act]
        holds = deepest in where and all(d in where for d in cc.depths if d >= min(where, default=deepest))
        lines.append(f"- **{act}**: He is detectably better than Xavier at "
                     f"{', '.join(map(str, where)) or 'no'} conv depth(s); \"He beats Xavier in "
                     f"deeper CNNs\" {'holds' if holds else 'is not supported'} here"
                     + ("" if holds else f" (at {deepest} conv layers the difference is not "
                        "detectably in He's favour)") + ".")
    return lines


def glorot_minus_he(cell: dict[str, Any]) -> tuple[tuple[float, float, float], str]:
    """(Glorot - He: mean, low, high) and the verdict read as a statement about He, from a
    cell's summary, whichever of the two is its reference (He for ReLU, Glorot for tanh)."""
    ref, s = cell["reference"], cell["initializers"]
    if ref == HE:
        row = s[GLOROT]
        diff = (row["difference"], row["difference_low"], row["difference_high"])
        flip = {"lower accuracy": "He better", "higher accuracy": "Xavier better"}
    elif ref == GLOROT:
        row = s[HE]
        diff = (-row["difference"], -row["difference_high"], -row["difference_low"])
        flip = {"higher accuracy": "He better", "lower accuracy": "Xavier better"}
    else:
        return (math.nan, math.nan, math.nan), f"n/a (reference {ref})"
    verdict = row["vs_reference"]
    return diff, flip.get(verdict, verdict)
