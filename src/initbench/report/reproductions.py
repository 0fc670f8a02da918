"""The report's Reproductions: one row per published quantitative claim the study tests -- its
source, the claim, this run's measurement with an interval, and the verdict.

A claim is tested only where this run has its setting (the cell, the initializers); otherwise its
row says ``n/a`` and which profile or cell would test it. Theory claims are compared by the signed
log ratio log(measured / predicted) with its interval (:mod:`initbench.report.theory`); the
verdict *reproduced* means that interval, widened by the stated tolerance, holds 0. Sources:
He et al. (2015), ICCV, arXiv:1502.01852; Glorot & Bengio (2010), AISTATS; Poole et al. (2016),
arXiv:1606.05340; Schoenholz et al. (2017), arXiv:1611.01232; Pennington, Schoenholz & Ganguli
(2017), arXiv:1711.04735; Hanin & Rolnick (2018), arXiv:1803.01719.
"""

from __future__ import annotations

import math
from typing import Any

from initbench.config import Params
from initbench.paths import cell_name
from initbench.report import blocked, checks, isometry, maps, theory
from initbench.report.checks import effect_text, span
from initbench.report.stats import paired_difference
from initbench.report.tables import successful
from initbench.results import by_label, epochs_to_reach

Cells = dict[str, dict[str, Any]]
# Glorot & Bengio (2010, sec. 4.2.2): the mean singular value of a layer's Jacobian at init.
GLOROT_SV = {"standard_uniform": 0.5, "glorot_uniform": 0.8}
SAXE_TARGET = 0.9  # validation accuracy whose epochs-to-reach stands for learning time


def _row(source: str, claim: str, measured: str, verdict: str) -> dict[str, str]:
    return {"source": source, "claim": claim, "measured": measured, "verdict": verdict}


def _missing(source: str, claim: str, why: str) -> dict[str, str]:
    return _row(source, claim, "-", f"n/a: {why}")


def _agreement(source: str, claim: str, a: theory.Agreement | None, why: str) -> dict[str, str]:
    if a is None or a.agrees is None:
        return _missing(source, claim, why)
    text = (f"{span(a.measured, a.low, a.high, '{:.3g}'.format)} vs {a.predicted:.3g}; "
            f"log ratio {effect_text(a)}")
    return _row(source, claim, text, "reproduced" if a.agrees else "not reproduced")


def _cell(cells: Cells, depth: int | None, act: str) -> dict[str, Any] | None:
    return None if depth is None else cells.get(cell_name(depth, act))


def rows(params: Params, cells: Cells, phase_summary: dict[str, Any] | None,
         confidence: float) -> list[dict[str, str]]:
    """Every claim's row (see the module docstring)."""
    depths = params.study.depth.depths
    deepest = max(depths) if depths else None
    relu, tanh = _cell(cells, deepest, "relu"), _cell(cells, deepest, "tanh")
    no_cell = "no depth cell of this activation in this run (the default and full runs have one)"
    out = []

    def lit(source: str, claim: str, cell: dict[str, Any] | None, label: str, what: str) -> None:
        a = None if cell is None else checks.literature_agreement(cell, label, what, confidence)
        out.append(_agreement(source, claim.format(depth=deepest), a, no_cell if cell is None
                              else f"{label} is not in the cell"))

    lit("He et al. 2015", "sigma_w^2 = 2 keeps the ReLU activation scale over {depth} layers "
        "(std last / first = 1)", relu, "he_normal", "ratio")
    lit("Glorot & Bengio 2010", "their normalized init carries tanh's activation scale through "
        "{depth} layers as its variance predicts (std last / first, by mean-field theory)", tanh,
        "glorot_uniform", "ratio")
    for label, claimed in GLOROT_SV.items():
        members = [] if tanh is None else by_label(tanh["members"]).get(label, [])
        members = [m for m in members if m.get("layer_jacobian_sv_mean")]
        claim = (f"mean singular value of a layer's Jacobian about {claimed} at init with "
                 f"{label} (tanh)")
        a = (theory.agreement([claimed] * len(members), _layer_sv(members), confidence)
             if members else None)
        out.append(_agreement("Glorot & Bengio 2010", claim, a, no_cell if tanh is None
                              else f"{label} is not in the cell"))
    # The maps of each deep cell, computed once (the c-map iterates every pair of every model).
    ag = {act: {} if cell is None else maps.agreements(cell, confidence)
          for act, cell in (("tanh", tanh), ("relu", relu))}
    for act in ("tanh", "relu"):
        for label in ("glorot_uniform", "he_normal") if act == "relu" else ("glorot_uniform",):
            r = ag[act].get(label)
            out.append(_agreement("Poole et al. 2016", f"the c-map predicts the last hidden "
                                  f"layer's input correlation (1 - c_L; {act}, {label})",
                                  None if r is None else r["cmap"], no_cell))
    ph = params.study.phase
    for act in ph.activations if ph.depths else ():
        cell = cells.get(cell_name(max(ph.depths), act, "phase"))
        bias = f"biases N(0, {ph.sigma_b ** 2:.3g})" if ph.sigma_b else "zero biases"
        out.append(_agreement("Poole et al. 2016", f"the c-map predicts the input correlation "
                              f"after {max(ph.depths)} layers at every sigma_w of the phase grid "
                              f"({act}, {bias}; the models as units)",
                              None if cell is None else maps.cmap_pooled(cell, confidence),
                              "no phase cell"))
    for label in (isometry.ORTHOGONAL, isometry.GAUSSIAN):
        r = ag["tanh"].get(label)
        out.append(_agreement("Pennington et al. 2017", f"Var(lambda)/E[lambda]^2 of J's squared "
                              f"singular values = sum of the layers' v_W + mu_2/mu_1^2 - 1 (tanh, "
                              f"{label})", None if r is None else r.get("spread"), no_cell))
    held = None if tanh is None else isometry.orthogonal_narrower(tanh)
    out.append(_missing("Pennington et al. 2017", "orthogonal weights keep J's spectrum narrower "
                        "than Gaussian ones of the same variance (tanh)", no_cell) if held is None
               else _row("Pennington et al. 2017", "orthogonal weights keep J's spectrum narrower "
                         "than Gaussian ones of the same variance (tanh)", held[1],
                         "reproduced" if held[0] else "not reproduced"))
    he = [] if relu is None or maps.sigma_b2(relu) else by_label(relu["members"]).get("he_normal", [])
    a = (maps.hanin_rolnick(he, [int(w) for w in relu["config"]["model.hidden"]], confidence)
         if he and he[0].get("init_probes") else None)
    out.append(_agreement("Hanin & Rolnick 2018", "Var over weight draws of ln ||h_L||^2 = "
                          "5 sum_j 1/n_j over the hidden layers (ReLU, He, zero biases)", a,
                          no_cell if relu is None else "the ReLU cell has biases or no he_normal"))
    out += _schoenholz(phase_summary)
    out.append(_saxe(cells, depths, confidence))
    out.append(_defaults(params, cells, confidence))
    return out


def _saxe(cells: Cells, depths: tuple[int, ...], confidence: float) -> dict[str, str]:
    """Saxe et al. (2014): orthogonal weights learn in a time independent of depth, Gaussian ones
    of the same variance slow down. Measured on the deepest tanh cell as the paired difference,
    seed by seed, of the epochs to ``SAXE_TARGET`` validation accuracy (a run that never reaches
    it counts as one epoch beyond its last), Gaussian minus orthogonal."""
    claim = (f"orthogonal weights reach {SAXE_TARGET:.0%} validation accuracy in fewer epochs "
             "than Gaussian ones of the same variance in a deep net (tanh)")
    cell = cells.get(cell_name(max(depths), "tanh")) if depths else None
    labels = {} if cell is None else by_label(cell["members"])
    if isometry.ORTHOGONAL not in labels or isometry.GAUSSIAN not in labels:
        return _missing("Saxe et al. 2014", claim, "no deep tanh cell with orthogonal_g1 and "
                        "lecun_normal in this run")

    def epochs(m: dict[str, Any]) -> float:
        reached = epochs_to_reach([r["val_accuracy"] for r in m["history"]], SAXE_TARGET)
        return float(len(m["history"]) + 1 if reached is None else reached)

    o = {m["seed_index"]: epochs(m) for m in labels[isometry.ORTHOGONAL]}
    g = {m["seed_index"]: epochs(m) for m in labels[isometry.GAUSSIAN]}
    seeds = sorted(set(o) & set(g))
    d = paired_difference({i: g[i] for i in seeds}, {i: o[i] for i in seeds}, confidence)
    if not math.isfinite(d.low):
        return _missing("Saxe et al. 2014", claim, "one seed: no interval")
    text = (f"epochs to {SAXE_TARGET:.0%}, Gaussian - orthogonal: {d.mean:+.2f} "
            f"[{d.low:+.2f}, {d.high:+.2f}] over {len(seeds)} paired seeds (depth {max(depths)})")
    verdict = ("reproduced" if d.low > 0 else "not reproduced" if d.high < 0
               else "inconclusive (the interval holds 0)")
    return _row("Saxe et al. 2014", claim, text, verdict)


def _defaults(params: Params, cells: Cells, confidence: float) -> dict[str, str]:
    """Keras' default (glorot_uniform, zero bias) against PyTorch's nn.Linear default, in the
    pipeline's cell: the paired difference and its equivalence verdict at the cell's margin."""
    claim = ("practice: a model ported between Keras and PyTorch trains the same under either "
             "default initialization (glorot_uniform + zero bias vs pytorch_default)")
    acc = successful(cells["baseline"])
    if "glorot_uniform" not in acc or "pytorch_default" not in acc:
        return _missing("Keras / PyTorch defaults", claim, "the pipeline's cell lacks one of them")
    c = blocked.contrast(acc["pytorch_default"], acc["glorot_uniform"], blocked.pooled(acc),
                         ("pytorch_default", "glorot_uniform"))
    margin = params.study.margin("baseline")
    d = blocked.decide(c, margin, 1 - confidence)
    if not math.isfinite(d.low):
        return _missing("Keras / PyTorch defaults", claim, "one seed: no interval")
    text = (f"test accuracy, pytorch_default - glorot_uniform: {100 * c.estimate:+.2f} pp "
            f"[{100 * d.low:+.2f}, {100 * d.high:+.2f}] over {c.n} paired seeds ({c.method}; "
            f"margin +-{100 * margin:.1f} pp): {d.verdict}")
    # "the same" holds when the difference is within the margin, fails when it is beyond it
    word = ("reproduced" if d.verdict in ("equivalent", "different but negligible") else
            "inconclusive" if d.verdict.startswith("inconclusive") else "not reproduced")
    return _row("Keras / PyTorch defaults", claim, text, word)


def _layer_sv(members: list[dict[str, Any]]) -> list[float]:
    return [sum(m["layer_jacobian_sv_mean"]) / len(m["layer_jacobian_sv_mean"]) for m in members]


def _schoenholz(phase_summary: dict[str, Any] | None) -> list[dict[str, str]]:
    claim = "a plain net trains while its depth is below 6 xi_c (tanh, {side} side)"
    if not phase_summary or "tanh" not in phase_summary:
        return [_missing("Schoenholz et al. 2017", claim.format(side="either"),
                         "no tanh phase diagram in this run")]
    out = []
    for side, r in phase_summary["tanh"].items():
        if not r["tests"].startswith("Schoenholz"):
            continue  # a scale threshold, not their edge (zero biases, ordered side)
        verdict = r["verdict"]
        word = ("reproduced" if verdict.startswith("consistent") else "not reproduced"
                if verdict.startswith("excludes") else verdict.split(":")[0])
        out.append(_row("Schoenholz et al. 2017", claim.format(side=side), r["estimate"], word))
    return out


def markdown(table: list[dict[str, str]]) -> list[str]:
    lines = ["| source | claim | measured here | verdict |", "|---|---|---|---|"]
    lines += [f"| {r['source']} | {r['claim']} | {r['measured']} | {r['verdict']} |" for r in table]
    return lines


def answer(table: list[dict[str, str]]) -> str:
    done = [r for r in table if not r["verdict"].startswith(("n/a", "inconclusive", "untested"))]
    held = sum(r["verdict"] == "reproduced" for r in done)
    return (f"{held} of the {len(done)} published claims tested here reproduced"
            + (f" ({len(table) - len(done)} more undecided or not testable in this run)"
               if len(table) > len(done) else "") + ".")
