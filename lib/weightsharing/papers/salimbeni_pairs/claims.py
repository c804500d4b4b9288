"""The claims S1-S7 by the rules of papers/claims/salimbeni_pairs.yml: the regime checks, the verdicts, and their
fragility over runs."""
from __future__ import annotations
import numpy as np
import pandas as pd
from ...metrics import ALPHA, equivalence, holm, linear_contrast, one_sample, welch
from ...verdicts import Finding, Origin, finished, judge, judged, not_run, rules
from .analysis import COLLAPSED, collapsed, final
from .models import ABSTRACT_LEVELS, COUNTERPART, WS_GAIN
from .runs import SLUG


def early_mean(curves: pd.DataFrame, model: str, epochs: int = 5) -> np.ndarray:
    """Per-run mean test accuracy over epochs 1..`epochs` (the convergence-speed measure of claim S6)."""
    sub = curves[(curves.experiment == "E1: Table I") & (curves.model == model) & (curves.epoch <= epochs)]
    return sub.groupby("seed").test_acc.mean().to_numpy()


def fitted(df: pd.DataFrame, experiment: str, models) -> tuple[bool, str]:
    """The regime check of every claim: each compared arm's median final training accuracy is at least 0.95."""
    sub = df[(df.experiment == experiment) & df.model.isin(list(models))]
    med = sub.groupby("model").train_acc.median()
    return bool((med >= 0.95).all()), (f"lowest median final training accuracy {med.min():.3f} ({med.idxmin()}) "
                                        f"over {len(med)} arms (threshold 0.95)")


def claims(df: pd.DataFrame, curves: pd.DataFrame) -> list[dict]:
    R, acc, out = rules(SLUG), final(df), []
    e1 = df[df.experiment == "E1: Table I"]

    def finding(support, against, evidence, models, experiment="E1: Table I", frame=e1):
        ok, why = fitted(df, experiment, models)
        used = frame[frame.model.isin(list(models))]
        return Finding(support, against, evidence, int(used.groupby("model").size().reindex(list(models)).fillna(0).min()),
                       ok, why, tuple(models), finished(used.finished_at))

    al = {a: welch(acc[a], acc[b]) for a, b in COUNTERPART.items()}
    al_holm = dict(zip(al, holm(c.p for c in al.values())))
    out.append(judge(R["S1"], finding(
        all(c.significant() > 0 for c in al.values()), any(c.diff < 0 and al_holm[a] < ALPHA for a, c in al.items()),
        "; ".join(f"{a} − {COUNTERPART[a]} = {c} (Holm p = {al_holm[a]:.2g})" for a, c in al.items()),
        dict.fromkeys([*COUNTERPART, *COUNTERPART.values()]))))  # ordered: a set's order varies by process

    ws = {a: welch(acc[a], acc[b]) for a, b in WS_GAIN.items()}
    weights: dict[str, float] = {}
    for sign, pairs in ((1, COUNTERPART), (-1, WS_GAIN)):  # mean AL gain minus mean WS gain, as one contrast
        for a, b in pairs.items():
            weights[a] = weights.get(a, 0) + sign / 4
            weights[b] = weights.get(b, 0) - sign / 4
    gap = linear_contrast(acc, weights)
    out.append(judge(R["S2"], finding(
        gap.significant() > 0 and not any(c.significant() < 0 for c in ws.values()), gap.significant() < 0,
        "; ".join(f"{a} − {b} = {ws[a]}" for a, b in WS_GAIN.items()) + f"; mean AL gain − mean WS gain = {gap}",
        dict.fromkeys([*COUNTERPART, *COUNTERPART.values(), *WS_GAIN, *WS_GAIN.values()]))))

    means = {m: v.mean() for m, v in acc.items()}
    others = [m for m in acc if m not in ("AL3", "AL4")]
    vs = {(h, m): welch(acc[h], acc[m]) for h in ("AL4", "AL3") for m in others}
    al4_vs = {m: welch(acc["AL4"], acc[m]) for m in acc if m != "AL4"}
    al4_holm = dict(zip(al4_vs, holm(c.p for c in al4_vs.values())))
    ranking = sorted(means, key=means.get, reverse=True)
    (weak_h, weak_m), weak = min(vs.items(), key=lambda kv: kv[1].diff)
    out.append(judge(R["S3"], finding(
        ranking[0] == "AL4" and all(c.significant() > 0 for c in vs.values()),
        any(c.diff < 0 and al4_holm[m] < ALPHA for m, c in al4_vs.items()),
        "ranking by mean: " + " > ".join(f"{m} {means[m]:.3f}" for m in ranking[:4])
        + f"; AL4 − AL3 = {al4_vs['AL3']}; weakest hybrid margin over a non-hybrid: {weak_h} − {weak_m} = {weak}",
        list(acc))))

    level = {g: one_sample(np.concatenate([acc[m] for m in models]), target)
             for g, (models, target) in ABSTRACT_LEVELS.items()}
    eq = {g: equivalence(c, 0.02) for g, c in level.items()}
    beyond = {g: c.p_outside(0.02) for g, c in level.items()}
    beyond_holm = dict(zip(beyond, holm(beyond.values())))
    out.append(judge(R["S4"], finding(
        all(e.equivalent for e in eq.values()), any(p < ALPHA for p in beyond_holm.values()),
        "; ".join(f"{g} (stated {ABSTRACT_LEVELS[g][1]:.2f}): ours − stated {eq[g]}; beyond the margin Holm p = "
                  f"{beyond_holm[g]:.2g}" for g in eq),
        [m for models, _ in ABSTRACT_LEVELS.values() for m in models])))

    fig5 = final(df, "E2: Fig. 5")
    pairs = [(a, b) for i, a in enumerate(fig5) for b in list(fig5)[i + 1:]]
    if pairs:
        tests = {(a, b): welch(fig5[a], fig5[b]) for a, b in pairs}
        eq5 = {k: equivalence(c, 0.05) for k, c in tests.items()}
        out5 = dict(zip(tests, holm(c.p_outside(0.05) for c in tests.values())))
        worst = max(eq5, key=lambda k: eq5[k].p)
        n_collapsed = sum(collapsed(df, "E2: Fig. 5", m) for m in fig5)
        e2 = df[df.experiment == "E2: Fig. 5"]
        out.append(judge(R["S5"], finding(
            all(e.equivalent for e in eq5.values()), any(p < ALPHA for p in out5.values()),
            f"{sum(e.equivalent for e in eq5.values())} of {len(eq5)} pairs of configurations equivalent within ±0.05; "
            f"least equivalent: {worst[0]} − {worst[1]} = {eq5[worst]}; smallest Holm p beyond the margin "
            f"{min(out5.values()):.2g}; {n_collapsed} collapsed run(s) (final training accuracy < {COLLAPSED})",
            list(fig5), "E2: Fig. 5", e2)))
    else:
        out.append(not_run(R["S5"], "no Fig. 5 configurations in this budget"))

    early = {(a, b): welch(early_mean(curves, a), early_mean(curves, b)) for a, b in (("WS2", "FCNN3"), ("WS3", "WS1"))}
    early_holm = dict(zip(early, holm(c.p for c in early.values())))
    out.append(judge(R["S6"], finding(
        all(c.significant() > 0 for c in early.values()), any(c.diff < 0 and early_holm[k] < ALPHA for k, c in early.items()),
        "; ".join(f"{a} − {b} over epochs 1-5 = {c} (Holm p = {early_holm[a, b]:.2g})" for (a, b), c in early.items()),
        ["WS2", "FCNN3", "WS3", "WS1"])))

    cnn = welch(acc["WS1"], acc["FCNN3"])
    eq7 = equivalence(cnn, 0.015)
    out.append(judge(R["S7"], finding(
        eq7.equivalent, cnn.p_outside(0.015) < ALPHA,
        f"WS1 − FCNN3 = {cnn}; equivalence {eq7}", ["WS1", "FCNN3"])))
    return out


def verdicts(df: pd.DataFrame, curves: pd.DataFrame, records: dict) -> list[dict]:
    """`claims` by phase, with each verdict's fragility: every unit (one model, protocol and seed) left out in turn,
    once however many experiments share it."""
    first = df.drop_duplicates("unit")

    def without(units: frozenset):
        if not units:
            return claims(df, curves)
        gone = df[df.unit.isin(units)]
        keep = ~pd.Series(False, index=curves.index)
        for r in gone.itertuples():
            keep &= ~((curves.experiment == r.experiment) & (curves.model == r.model) & (curves.seed == r.seed))
        return claims(df[~df.unit.isin(units)], curves[keep])

    def describe(unit):
        r = first[first.unit == unit].iloc[0]
        return f"{r.model} seed {r.seed} ({r.experiment.split(':')[0]}{', collapsed' if r.train_acc < COLLAPSED else ''})"

    seeds = dict(zip(first.unit, first.seed))
    return judged(SLUG, without, first.unit, describe=describe, records=records,
                  origin=lambda unit: Origin(int(seeds[unit]), (unit,)))
