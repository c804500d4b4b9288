"""Table I beside the paper and the authors' notebook, collapsed runs, Fig. 5 values, sensitivity, claims."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ...metrics import ALPHA, binomial_se, equivalence, failure_rates, holm, linear_contrast, one_sample, spread, welch
from ...verdicts import Finding, finished, judge, leave_one_out, not_run, rules
from .models import ABSTRACT_LEVELS, COUNTERPART, FIG5, NOTEBOOK_TABLE1, PAPER_FIG5, PAPER_TABLE1, PAPER_TABLE2, SENSITIVITY, TABLE1, WS_GAIN
from .runs import ABLATIONS, SLUG


def final(df: pd.DataFrame, experiment: str = "E1: Table I") -> dict[str, np.ndarray]:
    sub = df[df.experiment == experiment]
    return {m: g.sort_values("seed").test_acc.to_numpy() for m, g in sub.groupby("model", sort=False)}


COLLAPSED = 0.6  # final train accuracy below this: the run never left the majority-class plateau


def collapsed(df: pd.DataFrame, experiment: str, model: str) -> int:
    sub = df[(df.experiment == experiment) & (df.model == model)]
    return int((sub.train_acc < COLLAPSED).sum())


def table1(df: pd.DataFrame, n_test: int) -> pd.DataFrame:
    acc = final(df)
    rows = []
    for arm in TABLE1:
        s = spread(acc[arm.name])
        paper, paper_std = PAPER_TABLE1[arm.name]
        rows.append({"model": arm.name, "params": int(df[df.model == arm.name].params.iloc[0]), "lr": arm.lr,
                     "ours": s.mean, "ours_std": s.std, "n_seeds": s.n, "ours_median": float(np.median(acc[arm.name])),
                     "collapsed_runs": collapsed(df, "E1: Table I", arm.name), "binomial_se": binomial_se(s.mean, n_test),
                     "paper": paper, "paper_std": paper_std, "notebook": NOTEBOOK_TABLE1[arm.name],
                     "diff": None if paper is None else s.mean - paper})
    return pd.DataFrame(rows)


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


def verdicts(df: pd.DataFrame, curves: pd.DataFrame) -> list[dict]:
    """`claims` with each verdict's fragility: every unit (one model, protocol and seed) left out in turn, once
    however many experiments share it."""
    first = df.drop_duplicates("unit")

    def without(unit):
        if unit is None:
            return claims(df, curves)
        gone = df[df.unit == unit]
        keep = ~pd.Series(False, index=curves.index)
        for r in gone.itertuples():
            keep &= ~((curves.experiment == r.experiment) & (curves.model == r.model) & (curves.seed == r.seed))
        return claims(df[df.unit != unit], curves[keep])

    def describe(unit):
        r = first[first.unit == unit].iloc[0]
        return f"{r.model} seed {r.seed} ({r.experiment.split(':')[0]}{', collapsed' if r.train_acc < COLLAPSED else ''})"

    return leave_one_out(without, first.unit, describe=describe)


def collapse_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and model: runs that collapsed (final train accuracy < COLLAPSED) with the exact 95 % interval
    of the rate; models without a collapsed run are left out."""
    return pd.DataFrame(failure_rates(df, ["experiment", "model"], df.train_acc < COLLAPSED, name="collapsed"))


def fig5_table(df: pd.DataFrame) -> pd.DataFrame:
    acc = final(df, "E2: Fig. 5")
    return pd.DataFrame([{"panel": panel, "model": a.name, "lr": a.lr, "ours": spread(acc[a.name]).mean,
                          "ours_std": spread(acc[a.name]).std, "n_seeds": len(acc[a.name]), "collapsed_runs": collapsed(df, "E2: Fig. 5", a.name),
                          "paper": PAPER_FIG5[a.name]}
                         for panel, arms in FIG5.items() for a in arms if a.name in acc])


def sensitivity_table(df: pd.DataFrame) -> pd.DataFrame:
    e5, e1, e2 = final(df, "E5: sensitivity"), final(df), final(df, "E2: Fig. 5")
    rows = []
    for arm, base_name in SENSITIVITY:
        if arm.name not in e5:
            continue
        base = e1.get(base_name, e2.get(base_name))
        rows.append({"model": arm.name, "lr": arm.lr, "ours": e5[arm.name].mean(), "ours_std": e5[arm.name].std(ddof=1),
                     "n_seeds": len(e5[arm.name]), "collapsed_runs": collapsed(df, "E5: sensitivity", arm.name),
                     "baseline": base_name,
                     "baseline_acc": None if base is None else base.mean(),
                     "change": None if base is None else welch(e5[arm.name], base).diff,
                     "change_se": None if base is None else welch(e5[arm.name], base).se,
                     "p": None if base is None else welch(e5[arm.name], base).p})
    return pd.DataFrame(rows)


def table2(df: pd.DataFrame) -> pd.DataFrame:
    """Appendix Table II (learning rates) beside the rates we ran, and, where they differ, both accuracies."""
    e1, e2, e5 = final(df), final(df, "E2: Fig. 5"), final(df, "E5: sensitivity")
    ours = {a.name: a for a in TABLE1} | {"FCNN2": next(a for a in FIG5["FCNN depth"] if a.name == "L=3")}
    at_table2 = {base: arm.name for arm, base in SENSITIVITY}
    rows = []
    for model, paper_lr in PAPER_TABLE2.items():
        arm = ours[model]
        acc = e1.get(arm.name, e2.get(arm.name))
        other = e5.get(at_table2.get(arm.name, ""))
        rows.append({"model": model, "paper_lr": paper_lr, "ours_lr": arm.lr, "same": math.isclose(arm.lr, paper_lr),
                     "acc_ours_lr": None if acc is None else acc.mean(),
                     "acc_table2_lr": None if other is None else other.mean(),
                     "change": None if other is None or acc is None else other.mean() - acc.mean()})
    return pd.DataFrame(rows)


def positive_share(df: pd.DataFrame, test_positive: dict[int, float], *, seed0_share: float) -> pd.DataFrame:
    """E6b: each model with its pairs redrawn per run (`ours`) against the same model on the one seed-0 draw (E1),
    with the paper's value: does our draw explain why a model scores below the paper? `test_positive` maps a pair
    seed to its test set's share of positives."""
    redrawn, e1 = final(df, "E6b: pairs redrawn per run"), final(df)
    sub = df[df.experiment == "E6b: pairs redrawn per run"]
    rows = []
    for model, acc in redrawn.items():
        c = welch(acc, e1[model])
        runs = sub[sub.model == model].sort_values("seed")
        share = np.array([test_positive[s] for s in runs.seed])
        paper = PAPER_TABLE1[model][0]
        rows.append({"model": model, "seed0_pairs": e1[model].mean(), "ours": acc.mean(), "ours_std": acc.std(ddof=1),
                     "n_seeds": len(acc), "change": c.diff, "change_se": c.se, "p": c.p, "paper": paper,
                     "gap_seed0": e1[model].mean() - paper, "gap_redrawn": acc.mean() - paper,
                     "rho_share_acc": float(stats.spearmanr(share, runs.test_acc).statistic),
                     "redrawn_share_mean": share.mean(), "seed0_share": seed0_share})
    return pd.DataFrame(rows)


def ablation_table(df: pd.DataFrame) -> pd.DataFrame:
    e1 = final(df)
    rows = []
    for experiment, (_, arms) in ABLATIONS.items():
        acc = final(df, experiment)
        for arm in arms:
            if arm.name not in acc:
                continue
            base_name = arm.name.split(" ")[0]
            rows.append({"ablation": experiment, "model": arm.name, "ours": acc[arm.name].mean(),
                         "ours_std": acc[arm.name].std(ddof=1), "table1_protocol": e1[base_name].mean(),
                         "change": str(welch(acc[arm.name], e1[base_name]))})
    return pd.DataFrame(rows)

# The rung each model stands on (the synthesis page's ladder). WS2 shares one MLP branch between the two images:
# sharing without locality.
LADDER = {"WS1": "shared and local", "WS3": "shared and local", "WS2": "shared only", "FCNN3": "neither", "FCNN1": "neither"}


def ladder_rows(tables: dict) -> list[dict]:
    """This chapter's rows of the book's ladder of inductive bias (`synthesis.RUNGS`), read from its summary tables:
    {"rung", "setting", "model", "accuracy" (%), "heading" (the section it comes from)}."""
    return [{"rung": LADDER[r["model"]], "setting": "MNIST digit pairs", "model": r["model"], "accuracy": 100 * r["ours"],
             "heading": "Table I"} for r in tables.get("table1", []) if r["model"] in LADDER and pd.notna(r["ours"])]
