"""The claims S1-S7 (with S2b and S4b, where the paper says two things) by the rules of
papers/claims/salimbeni_pairs.yml: the regime checks, the verdicts, and their fragility over runs."""
from __future__ import annotations
import numpy as np
import pandas as pd
from ...metrics import ALPHA, equivalence, holm, linear_contrast, one_sample, welch
from ...verdicts import Finding, Origin, finished, judge, judged, not_run, rules
from .analysis import COLLAPSED, collapsed, final
from .models import ABSTRACT_LEVELS, COUNTERPART, PAPER_TABLE1, WS_GAIN
from .runs import SLUG


SPEED_SHARE = 0.95  # S6: a run has converged once its test accuracy reaches this share of its own final accuracy


def epochs_to_converge(curves: pd.DataFrame, model: str, share: float = SPEED_SHARE) -> np.ndarray:
    """Per run of `model` in E1, the first epoch whose test accuracy reaches `share` of the run's final one (the
    convergence-speed measure of claim S6: speed against each model's own level, not the level itself)."""
    sub = curves[(curves.experiment == "E1: Table I") & (curves.model == model)].sort_values(["seed", "epoch"])
    out = []
    for _, run in sub.groupby("seed"):
        reached = run.epoch[run.test_acc.to_numpy() >= share * run.test_acc.iloc[-1]]
        out.append(float(reached.iloc[0]))
    return np.array(out)


WS_NULL_MARGIN = 0.01  # S2b: a sharing gain within ±1 point is "no significant increase"


def fitted(df: pd.DataFrame, experiment: str, models) -> tuple[bool, str]:
    """The regime check of every claim: each compared arm's median final training accuracy is at least 0.95."""
    sub = df[(df.experiment == experiment) & df.model.isin(list(models))]
    med = sub.groupby("model").train_acc.median()
    return bool((med >= 0.95).all()), (f"lowest median final training accuracy {med.min():.3f} ({med.idxmin()}) "
                                        f"over {len(med)} arms (threshold 0.95)")


def claims(df: pd.DataFrame, curves: pd.DataFrame) -> list[dict]:
    R, acc, out = rules(SLUG), final(df), []
    e1 = df[df.experiment == "E1: Table I"]

    def finding(support, against, evidence, models, experiment="E1: Table I", frame=e1, lean=None, p=None):
        ok, why = fitted(df, experiment, models)
        used = frame[frame.model.isin(list(models))]
        return Finding(support, against, evidence, int(used.groupby("model").size().reindex(list(models)).fillna(0).min()),
                       ok, why, tuple(models), finished(used.finished_at), lean=lean, p=p)

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

    ws_holm = dict(zip(ws, holm(c.p for c in ws.values())))
    eq_ws = {a: equivalence(c, WS_NULL_MARGIN) for a, c in ws.items()}
    up = [a for a, c in ws.items() if c.diff > 0 and ws_holm[a] < ALPHA]
    out.append(judge(R["S2b"], finding(
        all(e.equivalent for e in eq_ws.values()), bool(up),
        "; ".join(f"{a} − {b} = {ws[a]} (Holm p = {ws_holm[a]:.2g}; within ±{WS_NULL_MARGIN:g}: "
                  f"{'yes' if eq_ws[a].equivalent else 'no'})" for a, b in WS_GAIN.items())
        + f"; significant sharing gains after Holm: {', '.join(up) or 'none'}",
        dict.fromkeys([*WS_GAIN, *WS_GAIN.values()]), lean=-float(np.mean([c.diff for c in ws.values()])),
        p=min(ws_holm.values()))))

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

    table = {m: one_sample(acc[m], PAPER_TABLE1[m][0]) for m in acc if PAPER_TABLE1.get(m, (None,))[0] is not None}
    eq_t = {m: equivalence(c, 0.02) for m, c in table.items()}
    beyond_t = dict(zip(table, holm(c.p_outside(0.02) for c in table.values())))
    worst_t = min(table, key=lambda m: table[m].diff)
    out.append(judge(R["S4b"], finding(
        all(e.equivalent for e in eq_t.values()), any(p < ALPHA for p in beyond_t.values()),
        f"{sum(e.equivalent for e in eq_t.values())} of {len(eq_t)} models within ±0.02 of Table I; furthest below: "
        f"{worst_t} ours − Table I {eq_t[worst_t]}; beyond the margin (Holm): "
        + (", ".join(f"{m} (p = {p:.2g})" for m, p in beyond_t.items() if p < ALPHA) or "none"),
        list(table))))

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

    speed = {(a, b): welch(epochs_to_converge(curves, a), epochs_to_converge(curves, b))
             for a, b in (("WS2", "FCNN3"), ("WS3", "WS1"))}
    speed_holm = dict(zip(speed, holm(c.p for c in speed.values())))
    out.append(judge(R["S6"], finding(
        all(c.significant() < 0 for c in speed.values()), any(c.diff > 0 and speed_holm[k] < ALPHA for k, c in speed.items()),
        "; ".join(f"epochs to {SPEED_SHARE:.0%} of its own final accuracy, {a} − {b} = {c} (Holm p = {speed_holm[a, b]:.2g})"
                  for (a, b), c in speed.items()),
        ["WS2", "FCNN3", "WS3", "WS1"], lean=-float(np.mean([c.diff for c in speed.values()])),
        p=max(c.p for c in speed.values()))))

    cnn = welch(acc["WS1"], acc["FCNN3"])
    below, above = cnn.p_below(0.015), cnn.p_above(0.015)  # one-sided: below +0.015 (the claim), above it (against)
    out.append(judge(R["S7"], finding(
        below < ALPHA, above < ALPHA,
        f"WS1 − FCNN3 = {cnn}; one-sided p that it lies below +0.015: {below:.2g}, above: {above:.2g}",
        ["WS1", "FCNN3"], lean=0.015 - cnn.diff, p=below)))
    return out


def verdicts(df: pd.DataFrame, curves: pd.DataFrame, records: dict) -> list[dict]:
    """`claims` by phase, with each verdict's fragility: every unit (one model, protocol and seed) left out in turn,
    once however many experiments share it."""
    first = df.drop_duplicates("unit")
    run_of = curves.experiment + "|" + curves.model + "|" + curves.seed.astype(str)  # a curve row's run

    def without(units: frozenset):
        if not units:
            return claims(df, curves)
        gone = df[df.unit.isin(units)]
        runs = set(gone.experiment + "|" + gone.model + "|" + gone.seed.astype(str))
        return claims(df[~df.unit.isin(units)], curves[~run_of.isin(runs)])

    def describe(unit):
        r = first[first.unit == unit].iloc[0]
        return f"{r.model} seed {r.seed} ({r.experiment.split(':')[0]}{', collapsed' if r.train_acc < COLLAPSED else ''})"

    seeds = dict(zip(first.unit, first.seed))
    return judged(SLUG, without, first.unit, describe=describe, records=records,
                  origin=lambda unit: Origin(int(seeds[unit]), (unit,)))
