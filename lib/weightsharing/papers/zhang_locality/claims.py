"""The claims Z1-Z9 by the rules of papers/claims/zhang_locality.yml: the regime checks, the verdicts, and their
fragility over trials."""
from __future__ import annotations
import numpy as np
import pandas as pd
from ...metrics import ALPHA, equivalence, holm, one_sample, welch
from ...verdicts import Finding, Origin, finished, judge, judged, not_run, rules
from .analysis import fig1_table, fig2_metrics, iid, paper_fig3, stuck_rates, unexplained
from .models import FULL, LOCALITY, TREE_MODELS
from .runs import SLUG


UNFIT = 0.1  # a net fits its training data when it leaves at most this share of the signal's variance unexplained


def tree_regime(tree: pd.DataFrame, models, sizes, noises) -> tuple[bool, str]:
    """Scoped to a claim's arms and cells: in each (model, n, ε) it compares, the median trial leaves at most UNFIT of
    its training signal unexplained (the net fits its own training data)."""
    sub = iid(tree)
    sub = sub[sub.model.isin(list(models)) & sub.n_train.isin(list(sizes)) & sub.noise.isin(list(noises))]
    med = sub.assign(unfit=unexplained(sub)).groupby(["model", "n_train", "noise"]).unfit.median()
    if not len(med):
        return False, "no runs in the claim's cells"
    bad = med[med > UNFIT].sort_values(ascending=False)
    worst = med.idxmax()
    return not len(bad), (
        f"{len(med) - len(bad)} of {len(med)} (model, n, ε) cells fit (median unexplained training signal at most "
        f"{UNFIT:g}); " + ("unfit: " + "; ".join(f"{m} n = {n} ε = {e:g} ({v:.3f})" for (m, n, e), v in bad.head(6).items())
                           + (f" and {len(bad) - 6} more" if len(bad) > 6 else "")
                           if len(bad) else f"worst: {worst[0]} at n = {worst[1]}, ε = {worst[2]:g} ({med[worst]:.3f})"))


FIDELITY = 0.05  # an image arm is in the paper's regime when its mean test accuracy is this close to the paper's


def image_regime(images: pd.DataFrame) -> tuple[bool, str]:
    """Every compared arm's mean test accuracy lies within FIDELITY of the paper's digitized Fig. 3 value at that
    size: our cheaper schedule (larger batches, scaled learning rate) lands where the paper's protocol did, under-fit
    CIFAR-10 included."""
    arms = images.groupby(["dataset", "per_class", "model"]).clean_acc.mean()
    gaps = {}
    for (dataset, k, model), ours in arms.items():
        paper = paper_fig3(dataset, model, k)
        if paper is not None:
            gaps[dataset, k, model] = ours - paper
    if not gaps:
        return False, "no compared arm has a paper value"
    worst = max(gaps, key=lambda a: abs(gaps[a]))
    within = sum(abs(g) <= FIDELITY for g in gaps.values())
    return within == len(gaps), (
        f"{within} of {len(gaps)} arms within ±{FIDELITY:g} of the paper's accuracy; largest gap {gaps[worst]:+.3f} "
        f"({worst[0]} {worst[2]} k = {_size(worst[1])})")


def _trials(tree: pd.DataFrame, model: str, noise: float, n: int) -> pd.Series:
    sub = tree[(tree.model == model) & (tree.noise == noise) & (tree.n_train == n) & ~tree.constant]
    return sub.set_index("trial").test_mse


def tree_claims(tree: pd.DataFrame, extras: dict) -> list[dict]:
    R = rules(SLUG)
    table = fig1_table(tree)
    noises = sorted(table.noise.unique())
    sizes = sorted(table.n_train.unique())
    runs = int(iid(tree).groupby(["model", "noise", "n_train"]).size().min())
    when = finished(iid(tree).finished_at)

    def finding(support, against, evidence, scope, n_runs=runs, cells=()):
        regime, regime_why = tree_regime(tree, *scope)  # the claim's own models, sizes and noise levels
        return Finding(support, against, evidence, n_runs, regime, regime_why, tuple(cells), when)

    tests, ties = {}, []
    for noise in noises:
        for n in sizes:
            for loc in LOCALITY:
                for other in ("WeightNet", "FCNet"):
                    a, b = _trials(tree, other, noise, n), _trials(tree, loc, noise, n)
                    if max(a.median(), b.median()) < 0.01:
                        ties.append((noise, n, loc, other))
                        continue
                    both = a.index.intersection(b.index)
                    tests[noise, n, loc, other] = one_sample(np.log10(a[both]) - np.log10(b[both]))
    adjusted = dict(zip(tests, holm(c.p for c in tests.values())))
    ok = [k for k, c in tests.items() if c.significant() > 0]
    reversed_ = [k for k, c in tests.items() if c.diff < 0 and adjusted[k] < ALPHA]
    failing = [k for k in tests if k not in ok]
    rates = stuck_rates(tree)
    stuck_loc = rates[rates.model.isin(LOCALITY)]
    out = [judge(R["Z1"], finding(
        not failing, bool(reversed_),
        f"{len(ok) + len(ties)} of {len(tests) + len(ties)} (cell, pair) comparisons support the ordering "
        f"({len(ties)} ties at zero); not significant: {len(failing) - len(reversed_)}"
        + (f", e.g. {_cell(failing[0])}: {tests[failing[0]]}" if failing else "")
        + ("; Holm-significant reversals: " + "; ".join(f"{_cell(k)} {tests[k]}" for k in reversed_[:3]) if reversed_ else "")
        + f"; stuck locality trials: {int(stuck_loc.stuck.sum())} in {len(stuck_loc)} cells",
        (TREE_MODELS, sizes, noises), cells=[f"ε = {e:g}, n = {n}" for e in noises for n in sizes]))]

    big = max(sizes)
    z2 = {e: one_sample(_trials(tree, "WeightNet", e, big), 0.05) for e in noises}
    z2_holm = dict(zip(z2, holm(c.p_above() for c in z2.values())))
    out.append(judge(R["Z2"], finding(
        all(c.p_below() < ALPHA for c in z2.values()), any(p < ALPHA for p in z2_holm.values()),
        f"WeightNet at n = {big}, mean test MSE − 0.05: " + "; ".join(
            f"ε = {e:g}: {c} (one-sided p below = {c.p_below():.2g})" for e, c in z2.items()),
        (["WeightNet"], [big], noises), cells=[f"ε = {e:g}" for e in noises])))

    noisy = max(noises)
    low = {(m, n): one_sample(_trials(tree, m, noisy, n), 0.05) for m in TREE_MODELS for n in sizes}
    loc_ok = all(any(low[m, n].p_below() < ALPHA for n in sizes if n <= 512) for m in LOCALITY)
    others = [(m, n) for m in ("WeightNet", "FCNet") for n in sizes if n <= 1024]
    others_ok = all(low[k].p_above() < ALPHA for k in others)
    early = dict(zip(others, holm(low[k].p_below() for k in others)))
    first = {m: next((n for n in sizes if low[m, n].p_below() < ALPHA), None) for m in TREE_MODELS}
    out.append(judge(R["Z3"], finding(
        loc_ok and others_ok, any(p < ALPHA for p in early.values()),
        f"smallest n with mean test MSE significantly below 0.05 at ε = {noisy:g}: "
        + ", ".join(f"{m} {first[m] or 'never'}" for m in TREE_MODELS)
        + f"; WeightNet and FCNet significantly above 0.05 in {sum(low[k].p_above() < ALPHA for k in others)} of "
          f"{len(others)} cells with n ≤ 1024", (TREE_MODELS, [n for n in sizes if n <= 1024], [noisy]))))

    f2 = fig2_metrics(extras)
    if len(f2) and set(f2.n_train) >= {512, 4096}:
        w = f2[f2.model == "WeightNet"]
        loc = f2[f2.model == "LocalNet"]
        conc = one_sample(w[w.n_train == 4096].concentration, 0.9)
        grew = welch(w[w.n_train == 4096].concentration, w[w.n_train == 512].concentration)
        err = one_sample(loc[loc.n_train == 4096].rel_error_all, 0.1)  # the spec's measure, as the paper read it
        err_kept = loc.groupby("n_train").rel_error.mean()
        bad = holm([conc.p_below(), err.p_above()])
        out.append(judge(R["Z4"], finding(
            conc.p_above() < ALPHA and grew.significant() > 0 and err.p_below() < ALPHA, any(p < ALPHA for p in bad),
            f"WeightNet concentration at n = 4096 − 0.9: {conc}; n = 4096 − n = 512: {grew}; LocalNet relative error "
            f"of its mean |weight| over all 32 positions at n = 4096 − 0.1: {err}; over its influential positions only "
            f"(the book's diagnostic, not the rule) {err_kept[512]:.3f} → {err_kept[4096]:.3f}",
            (["WeightNet", "LocalNet"], [4096], [0.0]),
            int(min(len(w[w.n_train == 4096]), len(loc[loc.n_train == 4096]))))))
    else:
        out.append(not_run(R["Z4"], "n = 512 and 4096 are not in this budget"))
    return out


def _cell(k) -> str:
    noise, n, loc, other = k
    return f"{other} vs {loc} at n = {n}, ε = {noise:g}"


def _size(k) -> str:
    return "full" if k == FULL else str(k)


def image_claims(images: pd.DataFrame) -> list[dict]:
    R = rules(SLUG)
    ours = images[images.protocol == "ours"]

    def acc(dataset, model, k, column="clean_acc"):
        return ours[(ours.dataset == dataset) & (ours.model == model) & (ours.per_class == k)][column].to_numpy()

    def finding(support, against, evidence, used, cells=()):
        n_runs = int(used.groupby(["dataset", "model", "per_class"]).size().min()) if len(used) else 0
        regime, regime_why = image_regime(used)  # over the arms this claim compares
        return Finding(support, against, evidence, n_runs, regime, regime_why, tuple(cells), finished(used.finished_at))

    # Z5-Z7 are judged below full data: ConvNet and FCNet train there in the exploratory sweep only (see the budget)
    order = sorted(k for k in set(ours.per_class) if k != FULL)
    small, large = order[0], order[-1]
    out = []
    rise = {(d, m): welch(acc(d, m, large), acc(d, m, small)) for d in DATASETS_ORDER for m in IMAGE_ORDER
            if len(acc(d, m, large))}
    rise_holm = dict(zip(rise, holm(c.p for c in rise.values())))
    out.append(judge(R["Z5"], finding(
        len(order) >= 2 and all(c.significant() > 0 for c in rise.values()),
        any(c.diff < 0 and rise_holm[k] < ALPHA for k, c in rise.items()),
        f"accuracy at k = {_size(large)} − k = {_size(small)}: smallest "
        + (lambda k: f"{k[0]} {k[1]} {rise[k]}")(min(rise, key=lambda k: rise[k].t)),
        ours[ours.per_class.isin([small, large])], [f"{d} {m}" for d, m in rise])))

    best, close, against = [], [], []
    for k in order:
        for m in ("FCNet", "WeightNet", "LocalNet"):
            c = welch(acc("mnist", "ConvNet", k), acc("mnist", m, k))
            best.append(c.significant() > 0)
            against.append((c.diff < 0, c.p))
        if k == FULL or k >= 100:
            trio = ("FCNet", "WeightNet", "LocalNet")
            for i, a in enumerate(trio):
                for b in trio[i + 1:]:
                    c = welch(acc("mnist", a, k), acc("mnist", b, k))
                    close.append((f"k = {_size(k)} {a} − {b}", equivalence(c, 0.03)))
                    against.append((True, c.p_outside(0.03)))
    adj = holm(p for _, p in against)
    worst = max(close, key=lambda t: t[1].p) if close else None
    out.append(judge(R["Z6"], finding(
        all(best) and all(e.equivalent for _, e in close), any(flag and p < ALPHA for (flag, _), p in zip(against, adj)),
        f"ConvNet significantly above each other model in {sum(best)} of {len(best)} comparisons; "
        f"{sum(e.equivalent for _, e in close)} of {len(close)} pairs equivalent within ±0.03"
        + (f"; least equivalent {worst[0]}: {worst[1]}" if worst else ""),
        ours[(ours.dataset == "mnist") & ours.per_class.isin(order)])))

    z7, bad = [], []
    for k in order:
        for m in ("ConvNet", "FCNet", "LocalNet"):
            c = welch(acc("cifar10", "WeightNet", k), acc("cifar10", m, k))
            margin = -0.02 if (k == FULL or k >= 100) else 0.0
            z7.append((f"k = {_size(k)} vs {m}", c, c.p_below(margin) < ALPHA))
            bad.append((c.diff > 0, c.p))
    adj = holm(p for _, p in bad)
    weakest = max(z7, key=lambda t: t[1].diff)
    out.append(judge(R["Z7"], finding(
        all(ok for *_, ok in z7), any(flag and p < ALPHA for (flag, _), p in zip(bad, adj)),
        f"WeightNet below the others by the rule's margin in {sum(ok for *_, ok in z7)} of {len(z7)} comparisons; "
        f"closest: {weakest[0]}: WeightNet − other = {weakest[1]}",
        ours[(ours.dataset == "cifar10") & ours.per_class.isin(order)])))

    fg = ours[ours.fgsm_acc.notna()].assign(change=lambda d: (d.fgsm_acc - d.clean_acc) / d.clean_acc)
    ks = sorted(fg.per_class.unique(), key=lambda k: 10 ** 9 if k == FULL else k)
    if len(ks) >= 2:
        lo_k, hi_k = ks[0], ks[-1]

        def change(dataset, model, k):
            return fg[(fg.dataset == dataset) & (fg.model == model) & (fg.per_class == k)].change.to_numpy()

        sim = {k: welch(change("mnist", "WeightNet", k), change("mnist", "LocalNet", k)) for k in (lo_k, hi_k)}
        shrink = {m: welch(change("mnist", m, hi_k), change("mnist", m, lo_k)) for m in ("WeightNet", "LocalNet")}
        fam = [c.p_outside(0.03) for c in sim.values()] + \
              [c.p_below() for c in shrink.values()]
        used = fg[(fg.dataset == "mnist") & fg.model.isin(["WeightNet", "LocalNet"])]
        out.append(judge(R["Z8"], finding(
            all(equivalence(c, 0.03).equivalent for c in sim.values()) and all(c.significant() > 0 for c in shrink.values()),
            any(p < ALPHA for p in holm(fam)),
            "; ".join(f"k = {_size(k)}: WeightNet − LocalNet {equivalence(c, 0.03)}" for k, c in sim.items())
            + "; " + "; ".join(f"{m} change at k = {_size(hi_k)} − k = {_size(lo_k)}: {c}" for m, c in shrink.items()), used)))
        gap = {k: welch(change("cifar10", "WeightNet", k), change("cifar10", "LocalNet", k)) for k in (lo_k, hi_k)}
        gap_holm = holm(c.p for c in gap.values())
        used = fg[(fg.dataset == "cifar10") & fg.model.isin(["WeightNet", "LocalNet"])]
        out.append(judge(R["Z9"], finding(
            all(c.significant() > 0 and c.diff >= 0.08 for c in gap.values()),
            any(c.diff < 0 and p < ALPHA for c, p in zip(gap.values(), gap_holm)),
            "; ".join(f"k = {_size(k)}: WeightNet change − LocalNet change = {c}" for k, c in gap.items()), used)))
        same = {m: welch(change("cifar10", m, hi_k), change("cifar10", m, lo_k)) for m in ("WeightNet", "LocalNet")}
        same_holm = holm(c.p_outside(0.03) for c in same.values())
        out.append(judge(R["Z9b"], finding(
            all(equivalence(c, 0.03).equivalent for c in same.values()), any(p < ALPHA for p in same_holm),
            "; ".join(f"{m} change at k = {_size(hi_k)} − k = {_size(lo_k)}: {equivalence(c, 0.03)}"
                      for m, c in same.items()), used)))
    else:
        for cid in ("Z8", "Z9", "Z9b"):
            out.append(not_run(R[cid], "this budget evaluates FGSM at fewer than two training sizes"))
    return out


DATASETS_ORDER = ("mnist", "cifar10")
IMAGE_ORDER = ("ConvNet", "FCNet", "WeightNet", "LocalNet")


def verdicts(tree: pd.DataFrame, extras: dict, images: pd.DataFrame, records: dict) -> list[dict]:
    """Every claim by phase, with its fragility: each tree trial (one model, size and θ draw, all its noise settings)
    and each image unit (one model, dataset, size and trial) left out in turn."""
    trials = list(tree[["model", "n_train", "trial"]].drop_duplicates().itertuples(index=False, name=None))
    runs = [("tree", t) for t in trials] + [("images", i) for i in images.index]
    all_tree, all_images = tree_claims(tree, extras), image_claims(images)  # each half is unchanged by the other's runs
    tree_unit = dict(zip(zip(tree.model, tree.n_train, tree.trial), tree.unit))

    def without(dropped: frozenset):
        gone_trials = {ident for kind, ident in dropped if kind == "tree"}
        gone_images = [ident for kind, ident in dropped if kind == "images"]
        half = all_images if not gone_images else image_claims(images.drop(index=gone_images))
        if not gone_trials:
            return all_tree + half
        keep = ~pd.Series([t in gone_trials for t in zip(tree.model, tree.n_train, tree.trial)], index=tree.index)
        ex = dict(extras)
        for model, n, trial in gone_trials:
            if (model, n) in ex:
                ex[(model, n)] = {**ex[(model, n)], "layer1": {t: w for t, w in ex[(model, n)]["layer1"].items()
                                                               if int(t) != trial}}
        return tree_claims(tree[keep], ex) + half

    def origin(run):
        kind, ident = run
        if kind == "tree":
            return Origin(int(ident[2]), (tree_unit[ident],))
        return Origin(int(images.trial[ident]), (images.unit[ident],))

    def describe(run):
        kind, ident = run
        if kind == "tree":
            return "tree {} n = {} trial {}".format(*ident)
        r = images.loc[ident]
        k = "full" if r.per_class == FULL else r.per_class
        return f"{r.dataset} {r.model} k = {k} trial {r.trial}" + (" (text protocol)" if r.protocol == "text" else "")

    return judged(SLUG, without, runs, describe=describe, records=records, origin=origin)
