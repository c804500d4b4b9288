"""The claims R1-R10 by the rules of papers/claims/rao_divergence.yml: the regime check, the verdicts, and their
fragility over seeds. Since issue 31 every claim but R9 (the leak) reads the fitted start F0-F3, whose CNNs were
trained to fit their images before conversion; R9 reads the leak ablation."""
from __future__ import annotations

import math

import numpy as np

from ...metrics import ALPHA, equivalence, holm, one_sample
from ...store import canonical
from ...verdicts import Finding, Origin, finished, judge, judged, not_run, rules
from .analysis import FITTED, SERIES, distance_frame, second_half_share, series_of, stages
from .runs import SLUG

FIT = 0.95  # the regime check: a CNN classifies at least this share of (a fixed 2 000 of) its training images
LABEL = {"F0": "F0 (σ 0)", "F1": "F1 (σ 0.3)", "F2": "F2 (σ 0.5)", "F3": "F3 (σ 0.5, short start)"}


def fitted(by_seed: dict[int, dict], names) -> tuple[bool, str]:
    """The regime check of every claim on the fitted start: each CNN an FCN of `names` starts from classifies at least
    FIT of its clean training images (a fixed slice), in every seed."""
    accs = {(n, s): r[f"{n}/CNN"]["clean_train_acc"] for s, r in by_seed.items() for n in names if f"{n}/CNN" in r}
    if not accs:
        return False, f"no CNN of {', '.join(names)} in this budget"
    low = [f"{n} seed {s} ({100 * a:.1f} %)" for (n, s), a in accs.items() if a < FIT]
    (n0, s0), worst = min(accs.items(), key=lambda kv: kv[1])
    return not low, (f"{len(accs) - len(low)} of {len(accs)} CNNs of {', '.join(names)} classify ≥ {100 * FIT:.0f} % of "
                     f"their training images (lowest {100 * worst:.1f} %, {n0} seed {s0})"
                     + (f"; below: {', '.join(low[:4])}" + (" …" if len(low) > 4 else "") if low else ""))


def claims(by_seed: dict[int, dict], *, n_test: int, scale: str = "") -> list[dict]:
    R, out = rules(SLUG), []
    seeds = sorted(by_seed)
    per = {s: stages(by_seed[s], FITTED + ("L",)) for s in seeds}
    when = finished(r.get("finished_at") for recs in by_seed.values() for r in recs.values())

    def have(*exps):
        return [s for s in seeds if all(e in per[s] for e in exps)]

    def finding(support, against, evidence, n_runs, cells=(), check=()):
        """`check`: the CNNs whose fit the claim's regime asks for (none: the rule names no regime check)."""
        ok, why = fitted(by_seed, check) if check else (None, "")
        return Finding(support, against, evidence, n_runs, ok, why, tuple(cells), when)

    # R1, on every FCN stage of the fitted start
    dist = {s: distance_frame(by_seed[s], FITTED) for s in seeds}
    fails: dict[tuple[str, str], list[int]] = {}
    n_series, exps = 0, sorted({e for s in seeds for e in per[s] if e in FITTED})
    for s in seeds:
        for exp in (e for e in per[s] if e in FITTED):
            for col in SERIES:
                n_series += 1
                x = series_of(dist[s], exp, col)
                after = x[x.index >= 1]
                drop = (after.cummax() - after) / after.cummax()
                if not (after > 0).all() or drop.max() > 0.10:
                    fails.setdefault((exp, col), []).append(s)
    if exps:
        runs_per_exp = {e: sum(e in per[s] for s in seeds) for e in exps}
        majority = [k for k, v in fails.items() if len(v) > runs_per_exp[k[0]] / 2]
        out.append(judge(R["R1"], finding(
            not fails, bool(majority),
            f"{n_series} series checked over {len(seeds)} seeds" + (": failing " + "; ".join(
                f"{e} {c} in seed(s) {', '.join(map(str, v))}" for (e, c), v in fails.items()) if fails else
                ": all > 0 after the first FCN epoch, none falls > 10 % below its running maximum"),
            min(runs_per_exp.values()), exps)))
    else:
        out.append(not_run(R["R1"], "the fitted start is not in this budget"))

    # R2, R3, R10: F1 (σ 0.3) against F0 (σ 0), the distance and the norm of the freed layer 1
    both = have("F0", "F1")
    if both:
        def cosine(exp, seed):
            return series_of(dist[seed], exp, "cos_l1_r1")

        def log_ratio(seed):
            a, b = cosine("F0", seed), cosine("F1", seed)
            step = min(a.index.max(), b.index.max())
            return math.log(b[step] / a[step])

        ratio = one_sample([log_ratio(s) for s in both], math.log(5))
        share1 = one_sample([second_half_share(cosine("F1", s)) for s in both], 0.25)
        times = f"{math.exp(ratio.diff + math.log(5)):.1f}×"
        pair = ("F0", "F1")
        out.append(judge(R["R2"], finding(
            ratio.p_above() < ALPHA, ratio.p_below() < ALPHA,
            f"F1 / F0 cosine distance at their last common FCN epoch: {times} (geometric mean; log ratio − log 5 "
            f"{ratio}; one-sided p above 5× {ratio.p_above():.2g}, below {ratio.p_below():.2g})", len(both), pair, pair)))
        out.append(judge(R["R3"], finding(
            ratio.p_above() < ALPHA and share1.p_above() < ALPHA,
            any(p < ALPHA for p in holm([ratio.p_below(), share1.p_below()])),
            f"F1 / F0: {times} (log ratio − log 5 {ratio}; one-sided p above 5× {ratio.p_above():.2g}); F1's share of "
            f"its final distance added in the second half − 0.25 {share1} (one-sided p above {share1.p_above():.2g})",
            len(both), pair, pair)))

        def log_norm(exp, seed):
            fcn = by_seed[seed][f"{exp}/FCN"]
            return math.log(fcn["history"]["norm_l1"][-1] / fcn["distances_at_conversion"]["norm_l1"])

        diff = one_sample([log_norm("F1", s) - log_norm("F0", s) for s in both])
        own = one_sample([log_norm("F1", s) for s in both])
        out.append(judge(R["R10"], finding(
            diff.p_below() < ALPHA and own.p_below() < ALPHA, diff.p_above() < ALPHA,
            f"log(layer-1 norm end / start of the FCN stage): F1 {own.diff:+.4f}, F0 "
            f"{np.mean([log_norm('F0', s) for s in both]):+.4f}; F1 − F0 {diff}", len(both), pair, pair)))
    else:
        for cid in ("R2", "R3", "R10"):
            out.append(not_run(R[cid], "the fitted start F0, F1 is not in this budget"))

    def paired_family(rule, pairs, label, check):
        if missing := [str(k) for k, v in pairs.items() if not len(v)]:  # the exploratory seeds: no F2, no controls
            return not_run(rule, f"no run of these seeds has every arm (missing: {', '.join(missing)})")
        tests = {k: one_sample(v) for k, v in pairs.items()}
        adjusted = holm(c.p for c in tests.values())
        return judge(rule, finding(all(c.significant() < 0 for c in tests.values()),
                                   any(c.diff > 0 and p < ALPHA for c, p in zip(tests.values(), adjusted)),
                                   "; ".join(f"{label(k)} {c.points(df_digits=0)}" for k, c in tests.items()),
                                   min(len(v) for v in pairs.values()), [str(k) for k in tests], check))

    # What each FCN is compared with: the CNN it started from, or (R4b, R5b, R7b, R8b) that CNN trained on for as
    # many epochs as the FCN ran; per seed, where that seed has it.
    def start_cnn(s, e):
        return per[s][e][0]

    def continued(s, e):
        return by_seed[s].get(f"{e}/CNN continued")

    def fcn_minus(reference, e, measure):
        return [measure(per[s][e][1]) - measure(ref) for s in have(e) if (ref := reference(s, e)) is not None]

    def acc(kind):
        return lambda rec: rec[f"{kind}_acc"]

    noisy = ("F1", "F2")
    out.append(paired_family(R["R4"], {e: fcn_minus(start_cnn, e, acc("test")) for e in noisy},
                             lambda e: f"{LABEL[e]}: FCN − CNN", noisy))
    out.append(paired_family(R["R4b"], {e: fcn_minus(continued, e, acc("test")) for e in noisy},
                             lambda e: f"{LABEL[e]}: FCN − CNN trained on", noisy))

    def gap(rec):
        return rec["clean_train_acc"] - rec["val_acc"]

    def overfit(rule, reference, label):
        """The FCN's train − validation gap minus that of `reference(seed, experiment)`, per experiment over seeds."""
        gaps = {e: fcn_minus(reference, e, gap) for e in FITTED}
        if missing := [e for e, v in gaps.items() if not v]:  # "every experiment" needs all four
            return not_run(rule, f"no run of these seeds has every arm (missing: {', '.join(missing)})")
        tests = {e: one_sample(v) for e, v in gaps.items()}
        adjusted = holm(c.p for c in tests.values())
        return judge(rule, finding(
            all(c.significant() > 0 for c in tests.values()),
            any(c.diff < 0 and p < ALPHA for c, p in zip(tests.values(), adjusted)),
            "; ".join(f"{LABEL[e]}: FCN gap − {label} {c.points(df_digits=0)}" for e, c in tests.items()),
            min(len(v) for v in gaps.values()), list(tests), ("F0", "F1", "F2")))

    out.append(overfit(R["R5"], start_cnn, "CNN gap"))
    out.append(overfit(R["R5b"], continued, "gap of the CNN trained on"))

    got = have(*noisy)
    if got:
        d = {net: one_sample([per[s]["F2"][i]["test_acc"] - per[s]["F1"][i]["test_acc"] for s in got])
             for i, net in enumerate(("CNN", "FCN"))}
        above = holm(c.p_above(0.01) for c in d.values())
        out.append(judge(R["R6"], finding(
            all(c.p_below(0.01) < ALPHA for c in d.values()), any(p < ALPHA for p in above),
            "; ".join(f"{net}: F2 − F1 {c.points(df_digits=0)}, one-sided p below +1 point {c.p_below(0.01):.2g}"
                      for net, c in d.items()), len(got), noisy, noisy)))
    else:
        out.append(not_run(R["R6"], "F1 and F2 are not both in this budget"))

    for cid, reference, what in (("R7", start_cnn, "CNN"), ("R7b", continued, "CNN trained on")):
        diffs = fcn_minus(reference, "F3", acc("test"))
        if diffs:
            c = one_sample(diffs)
            out.append(judge(R[cid], finding(
                c.p_above(-0.01) < ALPHA, c.p_below(-0.01) < ALPHA,
                f"F3: FCN − {what} {c.points(df_digits=0)}; non-inferior to −1 point: one-sided p = "
                f"{c.p_above(-0.01):.2g}", len(diffs), ["F3"])))
        else:
            out.append(not_run(R[cid], "F3 is not in this budget"))

    perturbed = [(e, kind) for e in noisy for kind in ("noise_0.15", "translate_8px")]
    out.append(paired_family(R["R8"], {(e, k): fcn_minus(start_cnn, e, acc(k)) for e, k in perturbed},
                             lambda k: f"{LABEL[k[0]]} {k[1]}: FCN − CNN", noisy))
    out.append(paired_family(R["R8b"], {(e, k): fcn_minus(continued, e, acc(k)) for e, k in perturbed},
                             lambda k: f"{LABEL[k[0]]} {k[1]}: FCN − CNN trained on", noisy))

    got = have("L")
    if got:
        leak = equivalence(one_sample([per[s]["L"][1]["val_acc"] - per[s]["L"][1]["test_acc"] for s in got]), 0.01)
        counts = per[got[0]]["L"][1]["leak_counts"]
        out.append(judge(R["R9"], finding(
            leak.equivalent, leak.comparison.p_above(0.01) < ALPHA,
            f"leak ablation FCN, validation on the code's split − official test: {_pts_eq(leak)}; "
            f"seed {got[0]}: {counts['val_in_either_train']} of {counts['val_rows']} validation rows were training rows",
            len(got))))
    else:
        out.append(not_run(R["R9"], "the leak ablation is not in this budget"))
    return sorted(out, key=lambda c: list(R).index(c["id"]))


def _pts_eq(e) -> str:
    lo, hi = e.comparison.interval(0.9)
    if not math.isfinite(lo):
        return f"{100 * e.comparison.diff:+.2f} pts (one run: no test)"
    return (f"{100 * e.comparison.diff:+.2f} pts, 90 % CI [{100 * lo:+.2f}, {100 * hi:+.2f}] against ±{100 * e.margin:g} "
            f"(TOST p = {e.p:.2g}, df = {e.comparison.df:.0f})")


def verdicts(by_seed: dict[int, dict], *, n_test: int, records: dict, scale: str = "") -> list[dict]:
    """`claims` by phase, with each verdict's fragility: each run (one seed: its CNNs, the FCN stages that start from
    them and their controls) left out in turn."""
    def without(seeds: frozenset):
        return claims({s: r for s, r in by_seed.items() if s not in seeds}, n_test=n_test)

    def origin(seed):
        return Origin(int(seed), tuple(canonical(r["key"]) for r in by_seed[seed].values() if "key" in r))

    return judged(SLUG, without, sorted(by_seed), describe=lambda s: f"seed {s}", records=records, origin=origin)
