"""The claims R1-R9 by the rules of papers/claims/rao_divergence.yml: the regime check, the verdicts, and their
fragility over seeds."""
from __future__ import annotations
import math
import numpy as np
from ...metrics import ALPHA, equivalence, holm, one_sample
from ...store import canonical
from ...verdicts import Finding, Origin, finished, judge, judged, not_run, rules
from . import converged as start
from .analysis import SERIES, distance_frame, second_half_share, series_of, stages
from .runs import SLUG


def converged(by_seed: dict[int, dict]) -> tuple[bool, str]:
    """Rao's regime check: every CNN that an FCN starts from had stopped improving on validation for its last
    PATIENCE epochs before conversion (early stopping fired, or would have at a fixed length)."""
    late = []
    for seed, records in by_seed.items():
        for name in ("0", "1", "2", "L"):
            rec = records.get(f"{name}/CNN")
            if rec is None:
                continue
            h = rec["history"]["val_acc"]
            best = max(range(len(h)), key=lambda i: (h[i], -i)) + 1  # the first epoch reaching the best accuracy
            if rec["stopped_at"] - best < PATIENCE:
                late.append(f"Exp {name} seed {seed} (best at epoch {best} of {rec['stopped_at']})")
    n = sum(f"{name}/CNN" in r for r in by_seed.values() for name in ("0", "1", "2", "L"))
    return not late, (f"{n - len(late)} of {n} CNNs had stopped improving {PATIENCE} epochs before conversion"
                      + (f"; still improving: {', '.join(late[:4])}" + (" …" if len(late) > 4 else "") if late else ""))


PATIENCE = 5


def claims(by_seed: dict[int, dict], *, n_test: int, scale: str = "") -> list[dict]:
    R, out = rules(SLUG), []
    seeds = sorted(by_seed)
    per = {s: stages(by_seed[s]) for s in seeds}
    dist = {s: distance_frame(by_seed[s]) for s in seeds}
    regime, regime_why = converged(by_seed)
    when = finished(r.get("finished_at") for recs in by_seed.values() for r in recs.values())

    def have(*exps):
        return [s for s in seeds if all(e in per[s] for e in exps)]

    def finding(support, against, evidence, n_runs, cells=(), check=True):
        return Finding(support, against, evidence, n_runs, regime if check else None, regime_why if check else "",
                       tuple(cells), when)

    # R1
    fails: dict[tuple[str, str], list[int]] = {}
    n_series, exps = 0, sorted({e for s in seeds for e in per[s]})
    for s in seeds:
        for exp in per[s]:
            for col in SERIES:
                n_series += 1
                x = series_of(dist[s], exp, col)
                after = x[x.index >= 1]
                drop = (after.cummax() - after) / after.cummax()
                if not (after > 0).all() or drop.max() > 0.10:
                    fails.setdefault((exp, col), []).append(s)
    runs_per_exp = {e: sum(e in per[s] for s in seeds) for e in exps}
    majority = [k for k, v in fails.items() if len(v) > runs_per_exp[k[0]] / 2]
    out.append(judge(R["R1"], finding(
        not fails, bool(majority),
        f"{n_series} series checked over {len(seeds)} seeds" + (": failing " + "; ".join(
            f"Exp {e} {c} in seed(s) {', '.join(map(str, v))}" for (e, c), v in fails.items()) if fails else
            ": all > 0 after the first FCN epoch, none falls > 10 % below its running maximum"),
        min(runs_per_exp.values(), default=0), [f"Exp {e}" for e in exps], check=False)))

    # R2, R3, R10 on the converged start, whose own regime check is that its CNNs reached a plateau
    cs = start.frame(by_seed)
    cregime, cregime_why = start.regime(by_seed)
    cseeds = sorted(set(cs[cs.experiment == "C0"].seed) & set(cs[cs.experiment == "C1"].seed)) if len(cs) else []

    cwhen = finished(r.get("finished_at") for recs in by_seed.values() for k, r in recs.items() if k.startswith("C"))

    def cfinding(support, against, evidence):
        return Finding(support, against, evidence, len(cseeds), cregime, cregime_why, (), cwhen)

    def series(exp, seed):
        g = cs[(cs.experiment == exp) & (cs.seed == seed)]
        return g.set_index("step").cosine_r1

    if cseeds:
        def log_ratio(seed):
            a, b = series("C0", seed), series("C1", seed)
            step = min(a.index.max(), b.index.max())
            return math.log(b[step] / a[step])

        ratio = one_sample([log_ratio(s) for s in cseeds], math.log(5))
        share0 = one_sample([second_half_share(series("C0", s)) for s in cseeds], 0.25)
        share1 = one_sample([second_half_share(series("C1", s)) for s in cseeds], 0.25)
        times = f"{math.exp(ratio.diff + math.log(5)):.1f}×"
        out.append(judge(R["R2"], cfinding(
            ratio.p_above() < ALPHA and share0.p_below() < ALPHA, any(p < ALPHA for p in holm([ratio.p_below(), share0.p_above()])),
            f"converged start, C1 / C0 cosine distance at their last common FCN step: {times} (geometric mean; log "
            f"ratio − log 5 {ratio}; one-sided p below 5× {ratio.p_below():.2g}); C0 second-half share − 0.25 "
            f"{share0} (one-sided p below {share0.p_below():.2g})")))
        out.append(judge(R["R3"], cfinding(
            ratio.p_above() < ALPHA and share1.p_above() < ALPHA, any(p < ALPHA for p in holm([ratio.p_below(), share1.p_below()])),
            f"converged start, C1 / C0: {times} (log ratio − log 5 {ratio}; one-sided p above 5× {ratio.p_above():.2g}); "
            f"C1 second-half share − 0.25 {share1} (one-sided p above {share1.p_above():.2g})")))
        nc = start.norm_change(cs).set_index(["experiment", "seed"]).log_norm_ratio
        diff = one_sample([nc["C1", s] - nc["C0", s] for s in cseeds])
        own = one_sample([nc["C1", s] for s in cseeds])
        out.append(judge(R["R10"], cfinding(
            diff.p_below() < ALPHA and own.p_below() < ALPHA, diff.p_above() < ALPHA,
            f"log(layer-1 norm end / start): C1 {own.diff:+.4f}, C0 {np.mean([nc['C0', s] for s in cseeds]):+.4f}; "
            f"C1 − C0 {diff}")))
    else:
        for cid in ("R2", "R3", "R10"):
            out.append(not_run(R[cid], "the converged start is not in this budget"))

    def paired_family(rule, pairs, evidence_label):
        tests = {k: one_sample(v) for k, v in pairs.items() if len(v)}
        if not tests:
            return not_run(rule, "no experiment of this budget has both stages")
        adjusted = holm(c.p for c in tests.values())
        return judge(rule, finding(all(c.significant() < 0 for c in tests.values()),
                                   any(c.diff > 0 and p < ALPHA for c, p in zip(tests.values(), adjusted)),
                                   "; ".join(f"{evidence_label(k)} {c.points(df_digits=0)}" for k, c in tests.items()),
                                   min(c_n for c_n in (len(v) for v in pairs.values())), [str(k) for k in tests]))

    # What each FCN is compared with: the CNN it started from, or (R4b, R5b, R8b) that CNN trained on for as many
    # epochs as the FCN ran; per seed, where that seed has it.
    def start_cnn(s, e):
        return per[s][e][0]

    def continued(s, e):
        return by_seed[s].get(f"{e}/CNN continued")

    def fcn_minus(reference, e, measure):
        return [measure(per[s][e][1]) - measure(ref) for s in have(e) if (ref := reference(s, e)) is not None]

    def acc(kind):
        return lambda rec: rec[f"{kind}_acc"]

    out.append(paired_family(R["R4"], {e: fcn_minus(start_cnn, e, acc("test")) for e in ("1", "2")},
                             lambda e: f"Exp {e}: FCN − CNN"))
    out.append(paired_family(R["R4b"], {e: fcn_minus(continued, e, acc("test")) for e in ("1", "2")},
                             lambda e: f"Exp {e}: FCN − CNN trained on"))

    def gap(rec):
        return rec["clean_train_acc"] - rec["val_acc"]

    def overfit(rule, reference, label):
        """The FCN's train − validation gap minus that of `reference(seed, experiment)`, per experiment over seeds."""
        gaps = {e: fcn_minus(reference, e, gap) for e in ("0", "1", "2", "3")}
        gaps = {e: v for e, v in gaps.items() if v}
        tests = {e: one_sample(v) for e, v in gaps.items()}
        adjusted = holm(c.p for c in tests.values())
        return judge(rule, finding(
            bool(tests) and all(c.significant() > 0 for c in tests.values()),
            any(c.diff < 0 and p < ALPHA for c, p in zip(tests.values(), adjusted)),
            "; ".join(f"Exp {e}: FCN gap − {label} {c.points(df_digits=0)}" for e, c in tests.items()),
            min((len(v) for v in gaps.values()), default=0), [f"Exp {e}" for e in tests]))

    out.append(overfit(R["R5"], start_cnn, "CNN gap"))
    out.append(overfit(R["R5b"], continued, "gap of the CNN trained on"))

    both = have("1", "2")
    if both:
        d = {net: one_sample([per[s]["2"][i]["test_acc"] - per[s]["1"][i]["test_acc"] for s in both])
             for i, net in enumerate(("CNN", "FCN"))}
        eq = {net: equivalence(c, 0.01) for net, c in d.items()}
        better = holm(c.p_above(0.01) for c in d.values())
        epochs = {e: by_seed[both[0]][f"{e}/CNN"]["stopped_at"] for e in ("1", "2")}
        out.append(judge(R["R6"], finding(
            all(e.equivalent for e in eq.values()), any(p < ALPHA for p in better),
            "; ".join(f"{net}: Exp 2 − Exp 1 {_pts_eq(e)}" for net, e in eq.items())
            + f" (CNNs trained {epochs['1']} and {epochs['2']} epochs)", len(both))))
    else:
        out.append(not_run(R["R6"], "Exp 1 and Exp 2 are not both in this budget"))

    got = have("3")
    if got:
        c = one_sample([per[s]["3"][1]["test_acc"] - per[s]["3"][0]["test_acc"] for s in got])
        out.append(judge(R["R7"], finding(c.p_above(-0.01) < ALPHA, c.p_below(-0.01) < ALPHA,
                                          f"Exp 3: FCN − CNN {c.points(df_digits=0)}; non-inferior to −1 point: one-sided p = "
                                          f"{c.p_above(-0.01):.2g}", len(got))))
    else:
        out.append(not_run(R["R7"], "Exp 3 is not in this budget"))

    perturbed = [(e, kind) for e in ("1", "2") for kind in ("noise_0.15", "translate_8px")]
    out.append(paired_family(R["R8"], {(e, k): fcn_minus(start_cnn, e, acc(k)) for e, k in perturbed},
                             lambda k: f"Exp {k[0]} {k[1]}: FCN − CNN"))
    out.append(paired_family(R["R8b"], {(e, k): fcn_minus(continued, e, acc(k)) for e, k in perturbed},
                             lambda k: f"Exp {k[0]} {k[1]}: FCN − CNN trained on"))

    got = have("L")
    if got:
        # its own name: `gap` above is the train − validation gap the overfit closures read
        leak = one_sample([per[s]["L"][1]["val_acc"] - per[s]["L"][1]["test_acc"] for s in got])
        counts = per[got[0]]["L"][1]["leak_counts"]
        out.append(judge(R["R9"], finding(
            equivalence(leak, 0.01).equivalent, leak.p_above(0.01) < ALPHA,
            f"leak ablation FCN, validation on the code's split − official test: {_pts_eq(equivalence(leak, 0.01))}; "
            f"seed {got[0]}: {counts['val_in_either_train']} of {counts['val_rows']} validation rows were training rows",
            len(got), check=False)))
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
