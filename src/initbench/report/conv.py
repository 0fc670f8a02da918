"""Convolutional cells: does He beat Xavier (Glorot) in deeper CNNs?

The article the study starts from says that for image classification with CNNs Xavier and He are
the usual choices and that for deeper networks He is usually better, since it suits ReLU (He et
al. 2015 derive Var = 2 / fan_in for ReLU, where Glorot & Bengio 2010's 2 / (fan_in + fan_out)
halves the signal's second moment per layer; for a 3x3 conv, fan_in = 9 x input channels). Each
``conv-<layers>-<activation>`` cell trains every initializer of ``study.conv`` over its seeds.

The claim has two parts, tested apart, per activation: He is detectably better at the deepest
depth (Glorot - He paired by seed, its interval below 0), and He's advantage grows with depth (the
depth x initializer interaction: the change of Glorot - He from the shallowest to the deepest
depth, per seed, a difference of differences, :mod:`initbench.report.interaction`, its interval
below 0). It *holds* when both do (an intersection-union test, at the level of its parts: Berger
1982), is *contradicted* when Xavier is detectably better at the deepest depth or the difference
moves detectably towards Xavier with depth, and is *not supported* otherwise. The interaction is
given for every initializer against the reference (He for ReLU and other activations, Glorot for
tanh). Cells of different depths are different networks, so a seed shares at most its batch
order across them; the seeds stay independent replicates, and the interval keeps its level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from initbench.config import ConvConfig
from initbench.paths import cell_name
from initbench.report.interaction import Setting, adjusted, compare, gaps, paired, pp, row, undecided
from initbench.report.tables import REFERENCE

HE, GLOROT = "he_normal", "glorot_uniform"
SAYS = {"lower accuracy": "He better", "higher accuracy": "Xavier better"}


def glorot_minus_he(x: Setting, confidence: float, margin: float) -> dict[str, Any]:
    """Glorot - He in one cell, paired by seed over the seeds where both trained."""
    iv, d = paired(list(gaps(x.acc, GLOROT, HE).values()), confidence, margin)
    words = SAYS.get(d.verdict, d.verdict)
    if d.verdict == "not testable":
        words = f"not testable: {iv.n} seed(s) where both trained"
    elif d.verdict == "inconclusive":
        words = undecided(iv, d)
    return {"he_trained": x.trained(HE), "glorot_trained": x.trained(GLOROT), "seeds": iv.n,
            "difference": iv.mean, "low": d.low, "high": d.high, "sd": iv.sd,
            "confidence": confidence, "verdict": words}


def summary(cells: Mapping[str, dict[str, Any]], cc: ConvConfig, confidence: float,
            margin: float) -> dict[str, Any]:
    """The section's verdicts (for summary.json): Glorot - He per cell, the depth x initializer
    interactions (deepest vs shallowest depth) and the claim, per activation."""
    if HE not in cc.initializers or GLOROT not in cc.initializers:
        return {"verdict": f"not testable: the claim needs both {HE} and {GLOROT} in "
                           "study.conv.initializers"}
    at = {(d, a): Setting.of(f"{d} layers", cells[cell_name(d, a, "conv")])
          for d in cc.depths for a in cc.activations}
    counted = sum(len(gaps(x.acc, GLOROT, HE)) >= 2 for x in at.values())
    level = adjusted(confidence, counted)
    shallow, deep = min(cc.depths), max(cc.depths)
    refs = {a: REFERENCE[a] if REFERENCE.get(a) in (HE, GLOROT) else HE for a in cc.activations}
    contrasts = {(a, k): (at[shallow, a], at[deep, a], k, refs[a]) for a in cc.activations
                 for k in cc.initializers if k != refs[a]} if deep > shallow else {}
    entries, depth_level, m = compare(contrasts, confidence, margin)
    out: dict[str, Any] = {"confidence": confidence, "margin": margin, "level": level,
                           "comparisons": counted, "interaction_level": depth_level,
                           "interaction_comparisons": m, "shallowest": shallow, "deepest": deep,
                           "activations": {}}
    for a in cc.activations:
        per_depth = {str(d): glorot_minus_he(at[d, a], level, margin) for d in cc.depths}
        other = GLOROT if refs[a] == HE else HE
        widen = entries.get((a, other))
        out["activations"][a] = {
            "reference": refs[a], "glorot_minus_he": per_depth,
            "depth_x_initializer": {k: e for (b, k), e in entries.items() if b == a},
            "claim": {"verdict": claim(per_depth[str(deep)], widen, refs[a] == HE, shallow, deep)}}
    return out


def claim(at_deep: Mapping[str, Any], widen: Mapping[str, Any] | None, he_is_ref: bool,
          shallow: int, deep: int) -> str:
    """The claim's verdict from Glorot - He at the deepest depth and its change with depth."""
    if widen is None:
        return "not testable: one conv depth"
    low, high = widen.get("low", math.nan), widen.get("high", math.nan)
    if not he_is_ref:  # the entry is He - Glorot: read it as Glorot - He
        low, high = -high, -low
    deep_words = f"at {deep} conv layers: {at_deep['verdict']}"
    grows = f"from {shallow} to {deep} conv layers, Glorot - He: {widen['verdict']}"
    if at_deep["high"] < 0 and high < 0:
        return f"holds: He is better at {deep} conv layers, and more so than at {shallow}"
    if at_deep["low"] > 0 or low > 0:
        return f"contradicted: {deep_words}; {grows}"
    return f"not supported: {deep_words}; {grows}"


def answer(res: Mapping[str, Any]) -> str:
    """The claim's verdict per activation in a sentence, for the report's Answer."""
    if "activations" not in res:
        return f"{res['verdict']}."
    return " ".join(f"{a}: \"He beats Xavier in deeper CNNs\" {x['claim']['verdict']}."
                    for a, x in res["activations"].items())


def markdown(cells: Mapping[str, dict[str, Any]], cc: ConvConfig, figure: str, confidence: float,
             margin: float) -> list[str]:
    res = summary(cells, cc, confidence, margin)
    if "activations" not in res:
        return [f"({res['verdict']}.)"]
    lines = [f"![accuracy vs conv depth]({figure})", "",
             f"Glorot - He per cell, paired by seed over the seeds where both trained "
             f"({res['level']:.2%} intervals, Bonferroni over the {res['comparisons']} cells that "
             f"can be tested; margin +-{100 * margin:.1f} pp, equivalent within it by two one-sided "
             "tests at the same level):", "",
             f"| conv layers | activation | {HE} trained | {GLOROT} trained | {GLOROT} - {HE} "
             f"(pp) [{res['level']:.2%} CI] | verdict |", "|---:|---|---:|---:|---:|---|"]
    for d in cc.depths:
        for a in cc.activations:
            e = res["activations"][a]["glorot_minus_he"][str(d)]
            text = f"{pp(e['difference'])} [{pp(e['low'])}, {pp(e['high'])}]" \
                if math.isfinite(e["low"]) else "n/a"
            lines.append(f"| {d} | {a} | {e['he_trained']} | {e['glorot_trained']} | {text} | "
                         f"{e['verdict']} |")
    lo, hi = res["shallowest"], res["deepest"]
    if hi > lo:
        lines += ["", f"Depth x initializer: per seed, the change of each initializer's gap to the "
                  f"reference from {lo} to {hi} conv layers (a difference of differences over the "
                  f"seeds where all four runs trained; {res['interaction_level']:.2%} intervals, "
                  f"Bonferroni over the {res['interaction_comparisons']} contrasts that can be "
                  "tested; an initializer that trains in different numbers of seeds at the two "
                  "depths is given its success counts):", "",
                  f"| activation | initializer | gap to reference at {lo} (pp) | at {hi} (pp) | "
                  f"change (pp) [{res['interaction_level']:.2%} CI] | verdict |",
                  "|---|---|---:|---:|---:|---|"]
        for a, x in res["activations"].items():
            lines += [f"| {a} | {k} - {x['reference']} | {row(e)} |"
                      for k, e in x["depth_x_initializer"].items()]
    lines += [""]
    for a, x in res["activations"].items():
        word, _, why = x["claim"]["verdict"].partition(": ")
        lines.append(f"- **{a}**: \"He beats Xavier in deeper CNNs\" **{word}**: {why}.")
    return lines
