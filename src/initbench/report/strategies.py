"""Optimization strategies against initialization: does a better optimizer setting make the
initializer matter less?

The depth study's cell at ``study.strategies``' depth and activation is the *plain* setting; each
variant retrains it (same initializers, seeds, initial weights and data order) with some training
settings replaced (see :mod:`initbench.config.strategies`): no momentum, decoupled weight decay
(Loshchilov & Hutter 2019), a cosine schedule with warm-up (Goyal et al. 2017), or Adam (Kingma &
Ba 2015), the optimizer most people use. Per setting the section gives every initializer's
success rate and accuracy, then two tests of initializer x setting
(:mod:`initbench.report.interaction`):

* per initializer and variant, the change of its gap to the reference from the plain setting to
  the variant, paired by seed (a difference of differences): does the variant widen or narrow it?
* per variant, the mean over initializers of the absolute gap to the reference, per seed, plain
  vs variant, paired by seed: does the initializer matter less? A per-seed absolute gap carries
  its noise (E|g_s| >= |E g_s|), so a variant with noisier runs reads a larger mean gap from noise
  alone; the per-initializer contrasts have no such bias.

An initializer that trains in a different number of seeds under the two settings is listed with
its success counts: that, not an accuracy gap, is how such a variant changes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from initbench.config import StrategiesConfig
from initbench.paths import cell_name
from initbench.report.interaction import (
    NARROWS,
    WIDENS,
    Setting,
    adjusted,
    change,
    compare,
    pp,
    row,
)
from initbench.report.stats import bounded_interval
from initbench.report.tables import REFERENCE, pct


def settings(s: StrategiesConfig) -> dict[str, str]:
    """name -> cell, the plain setting (the depth study's cell) first."""
    return {"plain": cell_name(s.depth, s.activation),
            **{name: f"strategy-{name}" for name in s.variants}}


def summary(cells: Mapping[str, dict[str, Any]], s: StrategiesConfig, confidence: float,
            margin: float) -> dict[str, Any]:
    """The section's verdicts (for summary.json): per variant, each initializer's interaction with
    the setting and the overall change of the mean absolute gap to the reference."""
    named = settings(s)
    plain = Setting.of("plain", cells[named["plain"]])
    variants = {n: Setting.of(n, cells[c]) for n, c in named.items() if n != "plain"}
    ref = REFERENCE.get(s.activation)
    ref = ref if ref in plain.runs else next(iter(plain.runs))
    labels = [k for k in plain.runs if k != ref]
    entries, level, m = compare({(v, k): (plain, b, k, ref) for v, b in variants.items()
                                 for k in labels}, confidence, margin)
    overall_level = adjusted(confidence, len(variants))
    return {"reference": ref, "confidence": confidence, "margin": margin, "level": level,
            "comparisons": m, "overall_level": overall_level,
            "variants": {v: {"initializers": {k: entries[(v, k)] for k in labels},
                             "overall": overall(plain, b, ref, labels, overall_level, margin)}
                         for v, b in variants.items()}}


def overall(plain: Setting, variant: Setting, ref: str, labels: list[str], confidence: float,
            margin: float) -> dict[str, Any]:
    """Per seed, the mean |gap to ``ref``| over the initializers that trained in every seed where
    the reference trained under both settings; its change plain -> variant, and the verdict."""
    seeds = sorted(set(plain.acc.get(ref, {})) & set(variant.acc.get(ref, {})))
    kept = [k for k in labels
            if all(s in plain.acc.get(k, {}) and s in variant.acc.get(k, {}) for s in seeds)]

    def mean_gap(x: Setting) -> dict[int, float]:
        return {s: float(np.mean([abs(x.acc[k][s] - x.acc[ref][s]) for k in kept])) for s in seeds}

    entry = change(mean_gap(plain), mean_gap(variant), confidence, margin) if kept else {
        "verdict": "not testable: no initializer trained in every seed under both settings"}
    for gap, matters in ((WIDENS, "the initializer matters more"),
                         (NARROWS, "the initializer matters less")):
        if entry["verdict"].startswith(gap):
            entry["verdict"] = matters + entry["verdict"][len(gap):]
    success = {k: {plain.name: plain.trained(k), variant.name: variant.trained(k)}
               for k in plain.runs if plain.trained(k) != variant.trained(k)}
    return {"initializers": kept, **entry, "success_changed": success}


def markdown(cells: Mapping[str, dict[str, Any]], s: StrategiesConfig,
             describe: Mapping[str, str], confidence: float, margin: float) -> list[str]:
    """``describe``: setting name -> what it changes (e.g. ``momentum 0.0``)."""
    named = settings(s)
    res = summary(cells, s, confidence, margin)
    ref, level = res["reference"], res["level"]
    lines = [
        "| initializer | " + " | ".join(f"{n}: trained | {n}: test %" for n in named) + " |",
        "|---|" + "---:|---:|" * len(named),
    ]
    runs = {n: Setting.of(n, cells[c]) for n, c in named.items()}
    for label in runs["plain"].runs:
        row_ = []
        for x in runs.values():
            acc = list(x.acc.get(label, {}).values())
            row_ += [x.trained(label), pct(bounded_interval(acc, confidence))]
        lines.append(f"| {label} | " + " | ".join(row_) + " |")
    lines += [
        "", f"Initializer x setting: per seed, the change of each initializer's gap to {ref} from "
        "the plain setting to the variant (a difference of differences over the seeds where all "
        f"four runs trained; {level:.2%} intervals, Bonferroni over the {res['comparisons']} "
        f"contrasts that can be tested; margin +-{100 * margin:.1f} pp, unchanged within it by "
        "two one-sided tests at the same level). An initializer that trains in different numbers "
        "of seeds under the two settings is given its success counts instead.", "",
        f"| variant | initializer | gap to {ref}, plain (pp) | gap, variant (pp) | change (pp) "
        f"[{level:.2%} CI] | verdict |", "|---|---|---:|---:|---:|---|"]
    for v, e in res["variants"].items():
        lines += [f"| {v} | {k} | {row(x)} |" for k, x in e["initializers"].items()]
    lines += ["", f"Does the initializer matter less? Per seed, the mean |gap to {ref}| over the "
              "initializers that trained in every seed under both settings, plain vs variant, "
              f"paired by seed ({res['overall_level']:.2%} intervals, Bonferroni over "
              f"{len(res['variants'])} variant(s); noise adds to a per-seed |gap|, so a noisier "
              "setting reads a larger one):", ""]
    for v, e in res["variants"].items():
        lines.append(f"- **{v}** ({describe[v]}; plain: {describe['plain']}): {says(e['overall'])}")
    return lines


def says(o: Mapping[str, Any]) -> str:
    """One variant's overall reading as a sentence."""
    moved = "; ".join(f"{k} {' -> '.join(c.values())}" for k, c in o["success_changed"].items())
    moved = f" Trained (plain -> variant): {moved}." if moved else " Success counts unchanged."
    if "change" not in o or not np.isfinite(o["low"]):
        return f"{o['verdict']}.{moved}"
    return (f"mean |gap| {pp(o['base_gap'], '')} -> {pp(o['other_gap'], '')} pp over "
            f"{len(o['initializers'])} initializer(s) and {o['seeds']} seeds, change "
            f"{pp(o['change'])} [{pp(o['low'])}, {pp(o['high'])}] pp: **{o['verdict']}**.{moved}")


def answer(res: Mapping[str, Any]) -> str:
    """The section in a sentence, for the report's Answer: per variant its overall verdict and
    which initializers' gaps narrow, widen, stay or are undecided."""
    parts = []
    for v, e in res["variants"].items():
        by: dict[str, list[str]] = {}
        for k, x in e["initializers"].items():
            by.setdefault(x.get("verdict", x.get("status", "")).split(":")[0].split(",")[0],
                          []).append(k)
        groups = "; ".join(f"{words}: {', '.join(ks)}" for words, ks in by.items())
        parts.append(f"with {v}, {says(e['overall'])} Per initializer vs {res['reference']}: "
                     f"{groups}.")
    return " ".join(parts)


def describe(s: StrategiesConfig, plain: Mapping[str, Any]) -> dict[str, str]:
    """What each setting changes relative to the plain one (``plain``: study.depth's settings)."""
    out = {"plain": ", ".join(f"{k} {v}" for k, v in plain.items()
                              if k in ("optimizer", "learning_rate", "momentum"))}
    for name, v in s.variants.items():
        changed = {k: x for k, x in v.training().items() if x != plain[k]}
        out[name] = ", ".join(f"{k} {x}" for k, x in changed.items())
    return out
