"""Interactions: does a setting (an optimizer, a depth) change the gap between two initializers?

An initializer x setting interaction is a difference of differences. Per seed s,

    D_s = (acc[i, B, s] - acc[r, B, s]) - (acc[i, A, s] - acc[r, A, s]),

the change of initializer i's gap to the reference r from setting A to setting B, over the seeds
where all four runs trained. Seeds are independent replicates, so the D_s are independent
whatever the settings share, and the Student t interval of their mean has its stated coverage
under normal noise; what two settings share by seed (initial weights, batch order) cancels in
D_s and only narrows it. This is the interaction contrast of a two-way layout blocked by seed
(Montgomery, *Design and Analysis of Experiments*, ch. 5 and 14), one t interval per contrast,
Bonferroni-adjusted over the contrasts of a family that can be tested.

Verdicts, by the cells' rules (:func:`initbench.report.blocked.decide`): *the gap widens* or
*narrows* when the two-sided interval excludes 0 (which: whether the mean gap over those seeds is
larger in magnitude under B than under A; "by less than the margin" when it is also equivalent to
0), *unchanged within the margin* when two one-sided tests put it inside (-margin, +margin)
(Schuirmann 1987), else *inconclusive*, with the number of seeds that would decide it at the
observed mean and sd. An initializer that trains in a different number of seeds under A and B is
compared by its success rates instead (Boschloo's exact test: it *trains less/more often*, or the
change is inconclusive), since pairs that condition on every run training compare different
subsets of seeds.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from initbench.report import blocked
from initbench.report.stats import Interval, t_interval
from initbench.report.tables import successful
from initbench.results import by_label

WIDENS, NARROWS = "the gap widens", "the gap narrows"
UNCHANGED, INCONCLUSIVE = "unchanged within the margin", "inconclusive"
NOT_TESTABLE, NEVER = "not testable", "trains under neither setting"
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Setting:
    """One setting's runs: its name, label -> {seed: accuracy} of the runs that trained, and
    label -> number of runs."""

    name: str
    acc: Mapping[str, Mapping[int, float]]
    runs: Mapping[str, int]

    @classmethod
    def of(cls, name: str, cell: dict[str, Any]) -> Setting:
        return cls(name, successful(cell), {k: len(v) for k, v in by_label(cell["members"]).items()})

    def trained(self, label: str) -> str:
        return f"{len(self.acc.get(label, {}))}/{self.runs.get(label, 0)}"


def gaps(acc: Mapping[str, Mapping[int, float]], label: str, ref: str) -> dict[int, float]:
    """seed -> acc[label] - acc[ref], over the seeds where both trained."""
    a, r = acc.get(label, {}), acc.get(ref, {})
    return {s: a[s] - r[s] for s in sorted(set(a) & set(r))}


def adjusted(confidence: float, comparisons: int) -> float:
    """Each interval's level so that ``comparisons`` of them hold together at ``confidence``."""
    return 1 - (1 - confidence) / max(1, comparisons)


def paired(diffs: list[float], confidence: float, margin: float
           ) -> tuple[Interval, blocked.Decision]:
    """The t interval of the mean of per-seed differences at ``confidence``, and the verdict of
    the cells' rules on it (:func:`initbench.report.blocked.decide`: the two-sided interval for a
    difference, two one-sided tests at 1 - confidence each for equivalence)."""
    iv = t_interval(diffs, confidence)
    se = iv.sd / math.sqrt(iv.n) if iv.n > 1 else math.nan
    c = blocked.Contrast(iv.mean, se, iv.n - 1, iv.n, "paired t")
    return iv, blocked.decide(c, margin, 1 - confidence)


def undecided(iv: Interval, d: blocked.Decision) -> str:
    """An inconclusive verdict with what would decide it."""
    if not d.seeds_needed:
        return INCONCLUSIVE
    return (f"{INCONCLUSIVE}: about {d.seeds_needed} seeds (now {iv.n}) at the observed mean and "
            f"sd ({100 * iv.sd:.2f} pp) would decide it")


def change(base: Mapping[int, float], other: Mapping[int, float], confidence: float,
           margin: float) -> dict[str, Any]:
    """The change of a per-seed gap from ``base`` to ``other`` over their common seeds: the
    mean gaps, the t interval of the per-seed change at ``confidence``, and the verdict (the
    cells' rules, :func:`initbench.report.blocked.decide`, read as a change of a gap)."""
    seeds = sorted(set(base) & set(other))
    iv, d = paired([other[s] - base[s] for s in seeds], confidence, margin)
    before = float(np.mean([base[s] for s in seeds])) if seeds else math.nan
    after = float(np.mean([other[s] for s in seeds])) if seeds else math.nan
    words = WIDENS if abs(after) > abs(before) else NARROWS
    if d.verdict == "not testable":
        words = f"{NOT_TESTABLE}: {iv.n} seed(s) where all four runs trained"
    elif d.verdict == "different but negligible":
        words += ", by less than the margin"
    elif d.verdict == "equivalent":
        words = UNCHANGED
    elif d.verdict == "inconclusive":
        words = undecided(iv, d)
    return {"seeds": iv.n, "base_gap": before, "other_gap": after, "change": iv.mean,
            "low": d.low, "high": d.high, "equivalence_low": d.eq_low,
            "equivalence_high": d.eq_high, "sd": iv.sd, "confidence": confidence,
            "margin": margin, "verdict": words}


def compare(contrasts: Mapping[K, tuple[Setting, Setting, str, str]], confidence: float,
            margin: float) -> tuple[dict[K, dict[str, Any]], float, int]:
    """Every contrast (base setting, other setting, initializer, reference) of one family, the
    level of each interval and the number of contrasts it is adjusted for: Bonferroni over those
    that can be tested (the initializer trained in as many seeds under both settings, and all
    four runs in at least two seeds)."""
    out: dict[K, dict[str, Any]] = {}
    testable: dict[K, tuple[dict[int, float], dict[int, float]]] = {}
    rates: dict[K, float] = {}
    for key, (a, b, label, ref) in contrasts.items():
        counts = {a.name: a.trained(label), b.name: b.trained(label)}
        out[key] = {"initializer": label, "reference": ref, "trained": counts}
        base, other = gaps(a.acc, label, ref), gaps(b.acc, label, ref)
        (ka, na), (kb, nb) = (_counts(x, label) for x in (a, b))
        if ka == kb == 0:
            # No run trained under either setting: there is no gap, so no comparison to make.
            out[key]["status"] = f"{NEVER}: {counts[a.name]} ({a.name}), {counts[b.name]} ({b.name})"
        elif counts[a.name] != counts[b.name]:
            # The pairs would condition on success in different seeds: the success rates are
            # what changed, compared exactly (Boschloo), Holm over the family's rate changes.
            rates[key] = out[key]["success_p"] = blocked.success_p(kb, nb, ka, na)
        elif len(set(base) & set(other)) < 2:
            out[key].update(change(base, other, confidence, margin))
        else:
            testable[key] = (base, other)
    changed = blocked.holm(rates, 1 - confidence)
    for key in rates:
        a, b, label, _ = contrasts[key]
        (ka, na), (kb, nb) = (_counts(x, label) for x in (a, b))
        counts = out[key]["trained"]
        out[key]["verdict"] = (
            f"trains {'less' if kb / nb < ka / na else 'more'} often: {counts[b.name]} ({b.name}) "
            f"vs {counts[a.name]} ({a.name})" if key in changed else
            f"{INCONCLUSIVE}: trained {counts[a.name]} ({a.name}) vs {counts[b.name]} ({b.name}), "
            "not a significant change of the success rate"
            + _rate_seeds(ka / na, kb / nb, (1 - confidence) / max(1, len(rates))))
    level = adjusted(confidence, len(testable))
    for key, (base, other) in testable.items():
        out[key].update(change(base, other, level, margin))
    return out, level, len(testable)


def _rate_seeds(rate_a: float, rate_b: float, alpha: float, most: int = 40) -> str:
    """"; about N seeds per setting would decide it" at the observed rates (Boschloo at
    ``alpha``), a planning figure from point estimates; "" when even ``most`` would not."""
    for n in range(2, most + 1):
        ka, kb = round(rate_a * n), round(rate_b * n)
        if ka != kb and blocked.success_p(kb, n, ka, n) < alpha:
            return f"; about {n} seeds per setting at these rates would decide it"
    return ""


def _counts(setting: Setting, label: str) -> tuple[int, int]:
    return len(setting.acc.get(label, {})), setting.runs.get(label, 0)


def pp(x: float, sign: str = "+") -> str:
    return f"{100 * x:{sign}.2f}" if math.isfinite(x) else "n/a"


def row(entry: Mapping[str, Any]) -> str:
    """An entry's gaps, change and verdict as table cells: base gap | other gap | change | verdict."""
    if "change" not in entry or not math.isfinite(entry["low"]):
        counts = " | ".join(f"{c} trained" for c in entry["trained"].values())
        return f"{counts} | - | {entry.get('verdict', entry.get('status'))}"
    return (f"{pp(entry['base_gap'])} | {pp(entry['other_gap'])} | {pp(entry['change'])} "
            f"[{pp(entry['low'])}, {pp(entry['high'])}] | {entry['verdict']}")
