"""The claims C1-C6 by the rules of papers/claims/chang_arbnets.yml: the regime check, the verdicts, and their
fragility over runs."""
from __future__ import annotations
import numpy as np
import pandas as pd
from ...metrics import ALPHA, contrast, holm, one_sample, regression_term
from ...verdicts import Finding, Origin, finished, judge, judged, not_run, rules
from .analysis import (acc_by_seed, alpha_effect, as_comparison, main_runs, paired_by_seed, radius_effect,
                       stuck_threshold)
from .runs import SLUG


def converged(df: pd.DataFrame) -> tuple[bool, str]:
    """The regime check of every Chang claim: in each compared arm's median run, training accuracy moved by less
    than 1 point over the last tenth of training."""
    by_arm = df.groupby(["dataset", "label", "sparsity"]).late_change.median()
    worst = by_arm.max()
    return bool(worst < 0.01), (f"largest median change of training accuracy over the last tenth of training "
                                f"{100 * worst:.2f} points over {len(by_arm)} arms (threshold 1)")


def claims(df: pd.DataFrame, checks: dict[str, float]) -> list[dict]:
    R, out = rules(SLUG), []

    def finding(support, against, evidence, runs, n_runs, cells=()):
        ok, why = converged(runs)
        return Finding(support, against, evidence, n_runs, ok, why, tuple(cells), finished(runs.finished_at))

    d = main_runs(df, "mnist")
    dir_m = d[d.hash == "dirichlet"]
    a = alpha_effect(df, "mnist")
    if len(a):
        holm_p = holm(as_comparison(r).p for r in a.itertuples())
        support = all(as_comparison(r).p < ALPHA and r.delta > 0 for r in a.itertuples())
        against = any(r.delta < 0 and hp < ALPHA for r, hp in zip(a.itertuples(), holm_p))
        arms = dir_m[dir_m.alpha.isin([dir_m.alpha.min(), dir_m.alpha.max()])]
        out.append(judge(R["C1"], finding(support, against, "acc(max α) − acc(min α): " + "; ".join(
            f"s = {r.sparsity:g}: {as_comparison(r)} (Holm p = {hp:.2g})" for r, hp in zip(a.itertuples(), holm_p)),
            arms, int(arms.groupby(["sparsity", "alpha"]).size().min()), [f"s = {s:g}" for s in a.sparsity])))
    else:
        out.append(not_run(R["C1"], "no MNIST Dirichlet runs in this budget"))

    c = alpha_effect(df, "cifar10")
    if len(c) >= 2:
        low, high = c.iloc[0], c.iloc[-1]
        diff = contrast(as_comparison(low), as_comparison(high))
        dc = main_runs(df, "cifar10")
        dc = dc[(dc.hash == "dirichlet") & dc.sparsity.isin([low.sparsity, high.sparsity])]
        arms = dc[dc.alpha.isin([dc.alpha.min(), dc.alpha.max()])]
        out.append(judge(R["C2"], finding(
            diff.significant() > 0 and as_comparison(high).significant() >= 0, diff.significant() < 0,
            f"Δ(s = {low.sparsity:g}) = {as_comparison(low)}; Δ(s = {high.sparsity:g}) = {as_comparison(high)}; "
            f"difference {diff} (reduced CIFAR-10 net)", arms, int(arms.groupby(["sparsity", "alpha"]).size().min()))))
    else:
        out.append(not_run(R["C2"], "this budget has fewer than two CIFAR-10 sparsities with α runs"))

    quad = {s: regression_term(np.column_stack([np.ones(len(g)), g.entropy, g.entropy ** 2]), g.test_acc.to_numpy(), 2)
            for s, g in dir_m.groupby("sparsity") if g.alpha.nunique() >= 3}
    if len(quad) >= 2:
        lo, hi = min(quad), max(quad)
        diff = contrast(quad[lo], quad[hi])
        out.append(judge(R["C3"], finding(
            quad[lo].significant() < 0 and diff.significant() < 0,
            diff.significant() > 0 or quad[lo].significant() > 0,
            "; ".join(f"s = {s:g}: quadratic term {q}" for s, q in quad.items())
            + f"; q(s = {lo:g}) − q(s = {hi:g}) = {diff}", dir_m[dir_m.sparsity.isin([lo, hi])],
            int(dir_m[dir_m.sparsity.isin([lo, hi])].groupby(["sparsity", "alpha"]).size().min()))))
    else:
        out.append(not_run(R["C3"], "needs at least 3 α values at 2 sparsities"))

    tests, used = {}, []
    for dataset in ("mnist", "cifar10"):
        m = main_runs(df, dataset)
        drops = []
        for _, g in m.groupby("sparsity"):
            mod, uni = paired_by_seed(acc_by_seed(g, hash="neighborhood", radius=0), acc_by_seed(g, hash="uniform"))
            drops += list(np.subtract(mod, uni))
        if len(drops):
            tests[dataset] = one_sample(drops)
            used.append(m[(m.hash == "uniform") | ((m.hash == "neighborhood") & (m.radius == 0))])
    if tests:
        holm_p = dict(zip(tests, holm(t.p for t in tests.values())))
        arms = pd.concat(used)
        out.append(judge(R["C4"], finding(
            len(tests) == 2 and all(t.significant() > 0 for t in tests.values()),
            any(t.diff < 0 and holm_p[d] < ALPHA for d, t in tests.items()),
            "; ".join(f"{d}: acc(r = 0) − acc(uniform), paired over sparsities and seeds, {t} (Holm p = {holm_p[d]:.2g})"
                      for d, t in tests.items()), arms,
            int(arms.groupby(["dataset", "label", "sparsity"]).size().min()), list(tests))))
    else:
        out.append(not_run(R["C4"], "no paired r = 0 and uniform runs"))

    rad = radius_effect(df, "mnist")
    if len(rad) >= 2:
        low, high = rad.iloc[0], rad.iloc[-1]
        diff = contrast(as_comparison(low), as_comparison(high))
        arms = d[d.sparsity.isin([low.sparsity, high.sparsity]) & ((d.hash == "uniform") | ((d.hash == "neighborhood") & (d.radius == 0)))]
        out.append(judge(R["C5"], finding(
            diff.significant() > 0, diff.significant() < 0,
            f"acc(r = 0) − acc(uniform): s = {low.sparsity:g} {as_comparison(low)}, s = {high.sparsity:g} {as_comparison(high)}; "
            f"difference {diff}", arms, int(arms.groupby(["label", "sparsity"]).size().min()))))
    else:
        out.append(not_run(R["C5"], "needs two sparsities"))

    worst = max(checks.values())
    out.append(judge(R["C6"], Finding(worst < 1e-5, worst >= 1e-5,
                                      "; ".join(f"{k}: max abs error {v:.1e}" for k, v in checks.items()), None)))
    return out


def verdicts(df: pd.DataFrame, checks: dict[str, float], records: dict) -> list[dict]:
    """`claims` by phase, with each verdict's fragility: every E2-E3 run (one setting, one seed) left out in turn."""
    main = df[df.experiment == "E2-E3"]
    cut = {d: stuck_threshold(df, d) for d in main.dataset.unique()}

    def describe(i):
        stuck = " (a stuck run)" if main.test_acc[i] < cut[main.dataset[i]] else ""
        return f"{main.dataset[i]} {main.label[i]} s = {main.sparsity[i]:g} seed {main.seed[i]}{stuck}"

    return judged(SLUG, lambda runs: claims(df.drop(index=list(runs)) if runs else df, checks), main.index,
                  describe=describe, records=records, origin=lambda i: Origin(int(main.seed[i]), (main.unit[i],)))
