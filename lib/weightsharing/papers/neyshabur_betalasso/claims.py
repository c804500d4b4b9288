"""The claims N1-N7, A1 and A2 by the rules of papers/claims/neyshabur_betalasso.yml: the regime check, the verdicts,
and their fragility over runs."""
from __future__ import annotations
import math
from functools import partial
import numpy as np
import pandas as pd
from ...metrics import ALPHA, equivalence, holm, linear_contrast, one_sample, welch
from ...verdicts import Finding, Origin, finished, judge, judged, not_run, rules
from . import ladder
from .analysis import DATASETS, NULL_MARGIN, e1
from .models import dense_counts, layer1_reference_counts
from .runs import SLUG


def sgd_fits(df: pd.DataFrame) -> tuple[bool, str]:
    """The regime check of every claim: the median SGD S-FC run ends with training accuracy >= 95 % per dataset."""
    sgd = e1(df)
    sgd = sgd[(sgd.model == "S-FC") & (sgd.optimizer == "SGD")]
    med = sgd.groupby("dataset").final_train_acc.median()
    if not len(med):
        return False, "no SGD S-FC runs"
    return bool((med >= 0.95).all()), ("median final training accuracy of SGD S-FC: "
                                       + ", ".join(f"{d} {100 * v:.1f} %" for d, v in med.items()) + " (threshold 95 %)")


def on_arms(support, against, evidence, arms, cells=(), *, check: tuple[bool, str]) -> Finding:
    """A finding over the compared arms (each a frame of runs) under the regime `check` (passed, why): the fewest runs
    in any arm, and the finish times of all of them."""
    return Finding(support, against, evidence, min((len(a) for a in arms), default=0), *check, tuple(cells),
                   finished(*(a.finished_at for a in arms)))


def claims(df: pd.DataFrame, *, alpha: int, **_) -> list[dict]:
    """N1-N7, A1 and A2 by the rules of papers/claims/neyshabur_betalasso.yml."""
    R, t1 = rules(SLUG), e1(df)
    datasets = sorted(t1.dataset.unique(), key=DATASETS.index)
    regime, regime_why = sgd_fits(df)
    out = []

    def arm(d, model, training="SGD", frame=t1):
        return frame[(frame.dataset == d) & (frame.model == model) & (frame.training == training)]

    def acc(d, model, training="SGD"):
        return arm(d, model, training).test_acc.to_numpy()

    finding = partial(on_arms, check=(regime, regime_why))

    def have(d, *rows):
        return all(len(arm(d, *r)) for r in rows)

    # N1a, N1b and A1 on the ladder's top rung of each dataset, where SGD fits (Table 2's `cpu` runs underfit)
    every = ladder.frame(df, None)
    tops = {d: {a: ladder.at_top(every[every.dataset == d], a) for a in ("SGD", "S-LOCAL SGD", *ladder.ARCHITECTURES)}
            for d in sorted(every.dataset.unique(), key=DATASETS.index)}
    arch_check = ladder.regime(every, ("SGD",)) if len(every) else (False, "the epoch ladder is not in this budget")

    afinding = partial(on_arms, check=arch_check)

    def top_acc(d, a):
        return tops[d][a].test_acc.to_numpy()

    def has(d, *arms):
        return all(len(tops[d][a]) for a in arms)

    tests, contrasts, ev, arms, cells = {}, {}, [], [], []
    for d in tops:
        if not has(d, "S-CONV SGD", "S-LOCAL SGD", "SGD"):
            continue
        groups = {m: top_acc(d, a) for m, a in (("S-CONV", "S-CONV SGD"), ("S-LOCAL", "S-LOCAL SGD"), ("S-FC", "SGD"))}
        tests[d, "advantage"] = welch(groups["S-CONV"], groups["S-FC"])
        tests[d, "recovered"] = contrasts[d] = linear_contrast(groups, {"S-LOCAL": 1, "S-CONV": -0.5, "S-FC": -0.5})
        arms += [tops[d][a] for a in ("S-CONV SGD", "S-LOCAL SGD", "SGD")]
        cells.append(d)
        ev.append(f"{d}: S-CONV − S-FC = {tests[d, 'advantage'].points()}; S-LOCAL − (S-CONV + S-FC)/2 = {contrasts[d].points()}")
    against = [c.diff < 0 and p < ALPHA for c, p in zip(contrasts.values(), holm(c.p for c in contrasts.values()))]
    where_top = f"ladder top rung ({ladder.top(every)} epochs): " if len(every) else ""
    out.append(judge(R["N1a"], afinding(all(c.significant() > 0 for c in tests.values()), any(against),
                                        where_top + "; ".join(ev), arms, cells))
               if tests else not_run(R["N1a"], "no dataset's ladder top rung has every compared arm"))

    tests, ev, arms, cells = {}, [], [], []
    for d in tops:
        if has(d, "SGD", "3-FC SGD"):
            tests[d] = welch(top_acc(d, "SGD"), top_acc(d, "3-FC SGD"))
            arms += [tops[d]["SGD"], tops[d]["3-FC SGD"]]
            cells.append(d)
            ev.append(f"{d}: S-FC − 3-FC = {tests[d].points()}")
    ev[:1] = [where_top + e for e in ev[:1]]
    out.append(_family(R["N1b"], tests, ev, arms, cells, afinding))

    # N2, N3, A2 on the ladder's top rung, where SGD fits its data
    lad = ladder.frame(df)

    top = {a: ladder.at_top(lad, a) for a in (*ladder.ARMS, *ladder.TOP_ONLY, ladder.WIDTH_ARM)} if len(lad) else {}
    where = f"ladder top rung ({ladder.top(lad)} epochs)" if len(lad) else ""
    # without budget matching (`paper`) the matched lambda is the paper's, and the ladder has that one arm
    paper_arm = "β-lasso (paper λ)" if len(top.get("β-lasso (paper λ)", ())) else "β-lasso (matched λ)"
    # N2 against SGD with momentum and weight decay (the paper's baseline), A2 against plain SGD (the optimizer
    # β-lasso wraps: what its ℓ1 step and threshold add); each regime asks that both compared arms fit
    for cid, name, base in (("N2", "β-lasso (matched λ)", "SGD"), ("A2", paper_arm, "plain SGD")):
        b, sgd = top.get(name, ()), top.get(base, ())
        if len(b) and len(sgd):
            c = welch(b.test_acc, sgd.test_acc)
            out.append(judge(R[cid], on_arms(c.significant() > 0, c.significant() < 0,
                                              f"{where}: {name} − {base} = {c.points()}; layer 1 "
                                              f"{100 * b.nnz1.mean() / dense_counts(alpha, 10)[0]:.2f} % non-zero",
                                              [b, sgd], check=ladder.regime(lad, (base, name)))))
        else:
            out.append(not_run(R[cid], "the epoch ladder is not in this budget"))
    b, sgd, local = (top.get(a, ()) for a in ("β-lasso (matched λ)", "SGD", "S-LOCAL SGD"))
    if len(b) and len(sgd) and len(local):
        groups = {"b50": b.test_acc, "sgd": sgd.test_acc, "local": local.test_acc}
        c = linear_contrast(groups, {"b50": 1, "sgd": -0.5, "local": -0.5})
        gap = local.test_acc.mean() - sgd.test_acc.mean()
        closed = (b.test_acc.mean() - sgd.test_acc.mean()) / gap if gap else float("nan")
        out.append(judge(R["N3"], on_arms(c.significant() > 0, c.significant() < 0,
                                              f"{where}: β50 closes {100 * closed:.0f} % of the {100 * gap:.2f}-point "
                                              f"SGD S-FC → S-LOCAL gap; β50 − midpoint = {c.points()}", [b, sgd, local],
                                              check=ladder.regime(lad, ("SGD", "β-lasso (matched λ)", "S-LOCAL SGD")))))
    else:
        out.append(not_run(R["N3"], "the epoch ladder is not in this budget"))

    # N4: beta = 50 against beta = 0 and 1 (Table 2's runs)
    tests, ev, arms, cells = {}, [], [], []
    for d in datasets:
        others = ("β-lasso β = 0", "β-lasso β = 1")
        if not have(d, ("S-FC", "β-lasso β = 50"), *(("S-FC", o) for o in others)):
            continue
        for o in others:
            tests[d, o] = welch(acc(d, "S-FC", "β-lasso β = 50"), acc(d, "S-FC", o))
            ev.append(f"{d}: β50 − {o} = {tests[d, o].points()}")
            arms.append(arm(d, "S-FC", o))
        arms.append(arm(d, "S-FC", "β-lasso β = 50"))
        cells.append(d)
    ks = pd.concat(arms).k.dropna() if arms else pd.Series(dtype=float)
    k_check = (bool(len(ks)) and bool((ks.round(6) == 1).all()),
               f"budget matching scales λ by k = {ks.min():.0f}-{ks.max():.0f} in the compared β-lasso runs (needs k = 1: "
               f"β' = β / k falls below the learning rate and β = 1 degenerates to plain ℓ1)" if len(ks) else "no β-lasso runs")

    out.append(_family(R["N4"], tests, ev, arms, cells, partial(on_arms, check=k_check)))

    # N5 (with A3) on the ladder's top rung
    b = top.get("β-lasso (matched λ)", ())
    ref = layer1_reference_counts(alpha)
    if len(b):
        dense = dense_counts(alpha, 10)
        share2, share3 = b.nnz2 / dense[1], b.nnz3 / dense[2]
        t = {"layer 1 below S-LOCAL": one_sample(b.nnz1, ref["S-LOCAL"]), "layer 1 above S-CONV": one_sample(b.nnz1, ref["S-CONV"]),
             "layer 2 below 25 %": one_sample(share2, 0.25), "layer 3 above 50 %": one_sample(share3, 0.5)}
        right = [c.p_below() if "below" in k else c.p_above() for k, c in t.items()]
        wrong = holm(c.p_above() if "below" in k else c.p_below() for k, c in t.items())
        out.append(judge(R["N5"], on_arms(
            all(p < ALPHA for p in right), any(p < ALPHA for p in wrong),
            f"{where}: layer 1 {b.nnz1.mean():,.0f} (S-CONV {ref['S-CONV']:,}, S-LOCAL {ref['S-LOCAL']:,}), layer 2 "
            f"{100 * share2.mean():.1f} % of dense, layer 3 {100 * share3.mean():.1f} % ({len(b)} seeds)"
            + _width_control(top.get(ladder.WIDTH_ARM, ()), dense), [b],
            check=ladder.regime(lad, ("SGD", "β-lasso (matched λ)")))))
    else:
        out.append(not_run(R["N5"], "the epoch ladder is not in this budget"))

    # N6: locality beyond a shuffle null, on the ladder's top rung
    b, sgd = top.get("β-lasso (matched λ)", ()), top.get("SGD", ())
    if len(b) and len(sgd) and b.ell_excess.notna().all() and sgd.ell_excess.notna().all():
        level = one_sample(b.ell_excess, 0.0)
        diff = welch(b.ell_excess, sgd.ell_excess)
        out.append(judge(R["N6"], on_arms(
            level.p_above() < ALPHA and diff.p_above() < ALPHA, diff.p_below() < ALPHA,
            f"{where}: mean excess of ℓ over its shuffle null per live filter: β-lasso {b.ell_excess.mean():.3f} "
            f"({b.ell_live.mean():,.0f} live filters), SGD {sgd.ell_excess.mean():.3f}; β-lasso − 0: {level}; "
            f"β-lasso − SGD: {diff}; the earlier bar {NULL_MARGIN} (no anchor in the paper): β-lasso − {NULL_MARGIN} "
            f"{one_sample(b.ell_excess, NULL_MARGIN)}", [b, sgd], check=ladder.regime(lad, ("SGD", "β-lasso (matched λ)")))))
    else:
        out.append(not_run(R["N6"], "the epoch ladder is not in this budget"))

    # N7
    e5 = df[df.experiment == "E5"]
    fc, conv = e5[e5.model == "S-FC"], e5[e5.model == "S-CONV"]
    if set(fc.permuted) == {False, True} and set(conv.permuted) == {False, True}:
        fc_acc = welch(fc[fc.permuted].test_acc, fc[~fc.permuted].test_acc)
        fc_loc = welch(np.log(fc[fc.permuted].locality.astype(float)), np.log(fc[~fc.permuted].locality.astype(float)))
        drop = welch(conv[~conv.permuted].test_acc, conv[conv.permuted].test_acc)
        eq_acc, eq_loc = equivalence(fc_acc, 0.015), equivalence(fc_loc, math.log(1.2))
        wrong = holm([fc_acc.p_outside(0.015),
                      fc_loc.p_outside(math.log(1.2)), drop.p_below(0.05)])
        out.append(judge(R["N7"], finding(
            eq_acc.equivalent and eq_loc.equivalent and drop.p_above(0.05) < ALPHA, any(p < ALPHA for p in wrong),
            f"S-FC β-lasso permuted − natural accuracy {eq_acc}; log ℓ {eq_loc}; S-CONV natural − permuted {drop}",
            [fc[fc.permuted], fc[~fc.permuted], conv[conv.permuted], conv[~conv.permuted]])))
    else:
        out.append(not_run(R["N7"], "E5 is not in this budget"))

    # A1 on the ladder's top rung of each dataset
    tests, ev, arms, cells = {}, [], [], []
    for d in tops:
        if has(d, "S-CONV SGD", "S-LOCAL SGD"):
            tests[d] = welch(top_acc(d, "S-CONV SGD"), top_acc(d, "S-LOCAL SGD"))
            ev.append(f"{d}: S-CONV − S-LOCAL {equivalence(tests[d], 0.02)}")
            arms += [tops[d]["S-CONV SGD"], tops[d]["S-LOCAL SGD"]]
            cells.append(d)
    beyond = holm(c.p_outside(0.02) for c in tests.values())
    out.append(judge(R["A1"], afinding(bool(tests) and all(equivalence(c, 0.02).equivalent for c in tests.values()),
                                       any(p < ALPHA for p in beyond), where_top + "; ".join(ev), arms, cells))
               if tests else not_run(R["A1"], "no dataset's ladder top rung has S-CONV and S-LOCAL"))

    return sorted(out, key=lambda c: list(R).index(c["id"]))


def _width_control(w: pd.DataFrame, dense) -> str:
    """The book's width control beside N5: λ₂ scaled by the ratio of layer 2's initial weight bounds (paper α / ours)."""
    if not len(w):
        return ""
    return (f"; the book's width control (λ₂ × {w.lam2_scale.iloc[0]:.2f}): layer 2 {100 * (w.nnz2 / dense[1]).mean():.1f} %, "
            f"layer 3 {100 * (w.nnz3 / dense[2]).mean():.1f} %, test {100 * w.test_acc.mean():.1f} % ({len(w)} seeds)")


def _family(rule, tests: dict, ev: list[str], arms: list, cells: list, finding) -> dict:
    """A claim over a family of tests: holds if every test is positive at 0.05 (intersection-union), contradicted if
    one is negative after Holm's correction over the family."""
    if not tests:
        return not_run(rule, "no dataset of this budget has every compared arm")
    adjusted = holm(c.p for c in tests.values())
    return judge(rule, finding(all(c.significant() > 0 for c in tests.values()),
                               any(c.diff < 0 and p < ALPHA for c, p in zip(tests.values(), adjusted)),
                               "; ".join(ev), arms, cells))


def verdicts(df: pd.DataFrame, records: dict, **kw) -> list[dict]:
    """`claims(df, **kw)` by phase, with each verdict's fragility: every unit (one model, training and seed) left out
    in turn, once however many experiments share it."""
    first = df.drop_duplicates("unit")

    def describe(unit):
        r = first[first.unit == unit].iloc[0]
        return f"{r.dataset} {r.label} seed {r.seed} ({r.experiment}" + (", permuted)" if r.permuted else ")")

    seeds = dict(zip(first.unit, first.seed))
    return judged(SLUG, lambda units: claims(df[~df.unit.isin(units)] if units else df, **kw), first.unit,
                  describe=describe, records=records, origin=lambda unit: Origin(int(seeds[unit]), (unit,)))
