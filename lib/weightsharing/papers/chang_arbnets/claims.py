"""The claims C1-C6 by the rules of papers/claims/chang_arbnets.yml: the regime check, the verdicts, and their
fragility over runs."""
from __future__ import annotations
import numpy as np
import pandas as pd
from ...metrics import ALPHA, contrast, equivalence, holm, one_sample, regression_term
from ...verdicts import Finding, Origin, finished, judge, judged, not_run, rules
from .analysis import (acc_by_seed, alpha_effect, as_comparison, main_runs, paired_by_seed, radius_effect,
                       with_stuck)
from .runs import SLUG

CONTROL_MARGIN = 0.003  # C7's margin of "no better than uniform": a third of the modulus-over-uniform effect C4 tests


def converged(df: pd.DataFrame) -> tuple[bool, str]:
    """The regime check of every Chang claim: every run of each compared arm that is not stuck moved its training
    accuracy by less than 1 point over the last tenth of training. (The median run of a bimodal arm can be a flat,
    stuck one, which said nothing about the runs that trained.) Says too whether the plateau schedule ever acted."""
    trained = df[~df.stuck]
    late = trained.groupby(["dataset", "label", "sparsity"]).late_change.max().dropna()
    if not len(late):
        return False, "no compared run both trained and ran long enough to measure its last tenth"
    worst = late.idxmax()
    decayed = int((df.lr_decays > 0).sum())
    return bool(late.max() < 0.01), (
        f"largest change of training accuracy over the last tenth of training among the runs that are not stuck "
        f"{100 * late.max():.2f} points ({worst[0]} {worst[1]} s = {worst[2]:g}; threshold 1), "
        f"{int((late >= 0.01).sum())} of {len(late)} arms above it; {int(df.stuck.sum())} stuck runs set aside; the "
        f"plateau schedule decayed the learning rate in {decayed} of {len(df)} runs")


def claims(df: pd.DataFrame, checks: dict[str, float]) -> list[dict]:
    R, out = rules(SLUG), []
    df = with_stuck(df)

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

    trained = dir_m[~dir_m.stuck]  # C3 fits the runs that trained; the stuck ones are a rate, reported apart
    quad = {s: regression_term(np.column_stack([np.ones(len(g)), g.entropy, g.entropy ** 2]), g.test_acc.to_numpy(), 2)
            for s, g in trained.groupby("sparsity") if g.alpha.nunique() >= 3}
    if len(quad) >= 2:
        lo, hi = min(quad), max(quad)
        diff = contrast(quad[lo], quad[hi])
        out.append(judge(R["C3"], finding(
            quad[lo].significant() < 0 and diff.significant() < 0,
            diff.significant() > 0 or quad[lo].significant() > 0,
            "; ".join(f"s = {s:g}: quadratic term {q}" for s, q in quad.items())
            + f"; q(s = {lo:g}) − q(s = {hi:g}) = {diff}; fitted on the {len(trained[trained.sparsity.isin([lo, hi])])} "
              f"runs that are not stuck ({int(dir_m[dir_m.sparsity.isin([lo, hi])].stuck.sum())} stuck runs set aside)",
            dir_m[dir_m.sparsity.isin([lo, hi])],
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

    ctrl = {}
    for s_, g in d.groupby("sparsity"):
        mod, uni, perm = (acc_by_seed(g, hash="neighborhood", radius=0), acc_by_seed(g, hash="uniform"),
                          acc_by_seed(g, hash="permuted_modulus"))
        for name, other in (("modulus", mod), ("uniform", uni)):
            a, b = paired_by_seed(perm, other)
            ctrl.setdefault(name, []).extend(np.subtract(a, b))
    if all(len(v) >= 2 for v in ctrl.values()) and len(ctrl) == 2:
        vs_mod, vs_uni = one_sample(ctrl["modulus"]), one_sample(ctrl["uniform"])
        same = equivalence(vs_uni, CONTROL_MARGIN)
        bad = holm([vs_mod.p_above(), vs_uni.p_outside(CONTROL_MARGIN)])
        arms = d[d.hash.isin(["uniform", "permuted_modulus"]) | ((d.hash == "neighborhood") & (d.radius == 0))]
        out.append(judge(R["C7"], finding(
            vs_mod.p_below() < ALPHA and same.equivalent, any(p < ALPHA for p in bad),
            f"MNIST, paired over sparsities and seeds: permuted modulus − modulus {vs_mod} (one-sided p = "
            f"{vs_mod.p_below():.2g}); permuted modulus − uniform "
            f"{same}", arms, int(arms.groupby(["label", "sparsity"]).size().min()))))
    else:
        out.append(not_run(R["C7"], "needs paired modulus, uniform and permuted-modulus runs"))

    worst = max(checks.values())
    out.append(judge(R["C6"], Finding(worst < 1e-5, worst >= 1e-5,
                                      "; ".join(f"{k}: max abs error {v:.1e}" for k, v in checks.items()), None)))
    return out


def verdicts(df: pd.DataFrame, checks: dict[str, float], records: dict) -> list[dict]:
    """`claims` by phase, with each verdict's fragility: every E2-E3 run (one setting, one seed) left out in turn."""
    main = with_stuck(df[df.experiment == "E2-E3"])

    def describe(i):
        stuck = " (a stuck run)" if main.stuck[i] else ""
        return f"{main.dataset[i]} {main.label[i]} s = {main.sparsity[i]:g} seed {main.seed[i]}{stuck}"

    return judged(SLUG, lambda runs: claims(df.drop(index=list(runs)) if runs else df, checks), main.index,
                  describe=describe, records=records, origin=lambda i: Origin(int(main.seed[i]), (main.unit[i],)))
