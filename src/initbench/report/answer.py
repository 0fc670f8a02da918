"""The report's answer: which initializer, for which network, and does it matter -- a few
sentences per kind of network, generated from the verdicts of :mod:`initbench.report.tables`, the
syntheses across depths (:mod:`initbench.report.synthesis`) and the other sections' summaries.
Nothing here is written by hand: every name and number comes from ``summary``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from initbench.config import Params
from initbench.paths import cell_name
from initbench.report import blocked, synthesis

RATE = "success rate"


def _pp(value: float) -> str:
    return f"{100 * value:+.2f}"


def _span(rows: Mapping[str, Mapping[str, Any]], labels: list[str]) -> str:
    diffs = [rows[k]["difference"] for k in labels if math.isfinite(rows[k]["difference"])]
    if not diffs:
        return ""
    lo, hi = min(diffs), max(diffs)
    return f" ({_pp(lo)} pp)" if lo == hi else f" ({_pp(lo)} to {_pp(hi)} pp)"


def cell_sentence(s: Mapping[str, Any]) -> str:
    """One cell's verdicts against its reference, grouped, with their effect sizes."""
    ref, rows = s["reference"], s["initializers"]
    others = {k: v for k, v in rows.items() if k != ref}

    def having(*words: str) -> list[str]:
        return [k for k, v in others.items() if v["vs_reference"] in words]

    parts = []
    if eq := having("equivalent"):
        parts.append(f"equivalent to {ref} within +-{100 * s['margin']:.1f} pp: "
                     f"{', '.join(eq)}{_span(others, eq)}")
    if small := having("different but negligible"):
        parts.append(f"different but inside the margin: {', '.join(small)}{_span(others, small)}")
    def with_interval(k: str) -> str:
        r = others[k]
        if not math.isfinite(r["difference_low"]):
            return k
        return (f"{k} {_pp(r['difference'])} pp [{_pp(r['difference_low'])}, "
                f"{_pp(r['difference_high'])}]")

    for word in ("higher", "lower"):
        if named := having(f"{word} accuracy"):
            parts.append(f"{word} accuracy than {ref}: {'; '.join(map(with_interval, named))}")
    for word in ("lower", "higher"):
        if named := having(f"{word} {RATE}"):
            items = [f"{k} ({others[k]['trained']}/{others[k]['seeds']})" for k in named]
            parts.append(f"train{'s' if len(named) == 1 else ''} {'less' if word == 'lower' else 'more'}"
                         f" often than {ref} ({rows[ref]['trained']}/{rows[ref]['seeds']}): "
                         f"{', '.join(items)}")
    if unsure := having("inconclusive", "not testable"):
        parts.append(f"undecided: {'; '.join(map(with_interval, unsure))}")
    return "; ".join(parts) + "."


def syntheses(params: Params, summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per activation of the depth study, each initializer's contrast with the reference combined
    over the depths where both train equally often; the depths where they do not are named."""
    dc, out = params.study.depth, {}
    if len(dc.depths) < 2:
        return out
    for act in dc.activations:
        cells = {d: summary[cell_name(d, act)] for d in dc.depths}
        ref = next(iter(cells.values()))["reference"]
        labels = [k for k in next(iter(cells.values()))["initializers"] if k != ref]
        alpha = (1 - params.study.confidence) / max(1, len(labels))
        for label in labels:
            rows = {d: c["initializers"][label] for d, c in cells.items()}
            rate = {d: r["vs_reference"] for d, r in rows.items() if r["vs_reference"].endswith(RATE)}
            use = {d: blocked.Contrast(r["difference"], r["se"], r["df"], r["pairs"], r["method"])
                   for d, r in rows.items() if d not in rate}
            syn = synthesis.combine(list(use.values()), params.study.deep_equivalence_margin, alpha)
            entry: dict[str, Any] = {"activation": act, "contrast": f"{label} - {ref}",
                                     "depths": list(use) if syn else [],
                                     "success_differs": {str(d): v for d, v in rate.items()}}
            if syn:
                est = syn.random if syn.heterogeneous else syn.combined
                entry.update(difference=est.estimate, low=syn.decision.low, high=syn.decision.high,
                             q=syn.q, q_p=syn.q_p, i2=syn.i2, verdict=syn.verdict)
            elif rate:
                entry["verdict"] = "; ".join(f"{v} at depth {d}" for d, v in rate.items())
            else:
                continue
            out[f"{act}: {label} - {ref}"] = entry
    return out


def synthesis_lines(entries: Mapping[str, Mapping[str, Any]], confidence: float) -> list[str]:
    """The syntheses as a table."""
    if not entries:
        return []
    lines = [f"| activation | contrast | combined over depths | difference (pp) [{confidence:.0%} "
             "family-wise CI] | heterogeneity: Q (p), I^2 | verdict | success rates differ at |",
             "|---|---|---|---:|---|---|---|"]
    for e in entries.values():
        if "difference" in e:
            diff = f"{_pp(e['difference'])} [{_pp(e['low'])}, {_pp(e['high'])}]"
            het = f"{e['q']:.2f} ({e['q_p']:.2g}), {100 * e['i2']:.0f}%"
        else:
            diff, het = "-", "-"
        rates = ", ".join(f"depth {d}: {v}" for d, v in e["success_differs"].items()) or "-"
        lines.append(f"| {e['activation']} | {e['contrast']} | {', '.join(map(str, e['depths'])) or '-'} "
                     f"| {diff} | {het} | {e['verdict']} | {rates} |")
    return lines


def answer(params: Params, summary: Mapping[str, Any], syn: Mapping[str, Mapping[str, Any]],
           others: Mapping[str, str]) -> list[str]:
    """The Answer section: one line per kind of network, then the syntheses and ``others``
    (section name -> a generated sentence, e.g. the phase diagram's)."""
    st, dc, m = params.study, params.study.depth, params.model
    lines = ["## Answer", "",
             f"Generated from the verdicts below ({st.confidence:.0%} family-wise per cell; runs "
             f"that ended more than {100 * st.trained_within:.0f} pp below their cell's best count "
             "as failed, and accuracy differences compare the runs that trained).", "",
             f"- **The pipeline's MLP** (784-{'-'.join(map(str, m.hidden))}-10 {m.activation}, "
             f"{params.train.optimizer}, {st.seeds} seeds): {cell_sentence(summary['baseline'])}"]
    for cell, s in summary.items():
        if cell.startswith("dataset-"):
            lines.append(f"- **The same MLP on {cell.removeprefix('dataset-')}**: {cell_sentence(s)}")
    for d in sorted(dc.depths, reverse=True):
        for act in dc.activations:
            lines.append(f"- **A plain {d}-layer {act} MLP** (width {dc.width}, {dc.optimizer} "
                         f"momentum {dc.momentum}, {dc.seeds} seeds): "
                         f"{cell_sentence(summary[cell_name(d, act)])}")
    for name in st.strategies.variants:
        lines.append(f"- **The {st.strategies.depth}-layer {st.strategies.activation} MLP with "
                     f"`{name}`** ({', '.join(f'{k} {v}' for k, v in _changed(params, name).items())}): "
                     f"{cell_sentence(summary['strategy-' + name])}")
    for d in st.conv.depths:
        for act in st.conv.activations:
            lines.append(f"- **A CNN with {d} conv layers, {act}**: "
                         f"{cell_sentence(summary[cell_name(d, act, 'conv')])}")
    decided = [f"{k} {_pp(e['difference'])} pp [{_pp(e['low'])}, {_pp(e['high'])}] "
               f"({e['verdict']})" for k, e in syn.items() if "difference" in e]
    if decided:
        lines.append(f"- **Across depths {', '.join(map(str, dc.depths))}** (each contrast "
                     f"combined over the depths where both train): {'; '.join(decided)}.")
    lines += [f"- **{name}**: {text}" for name, text in others.items()]
    return [*lines, ""]


def _changed(params: Params, variant: str) -> dict[str, Any]:
    v, dc = params.study.strategies.variants[variant], params.study.depth
    return {k: getattr(v, k) for k in v.training() if getattr(v, k) != getattr(dc, k)}
