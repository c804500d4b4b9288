"""Tables and the claims R1-R9 of the Rao et al. chapter, from the stage records of `runs.run_all`."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...metrics import ALPHA, equivalence, holm, one_sample
from ...verdicts import Finding, finished, judge, leave_one_out, not_run, rules
from . import converged as start
from .runs import SLUG

# Paper text: final validation accuracy (%) of the code's leaky split, CNN -> FCN
PAPER_VAL = {"1": (95.8, 94.0), "2": (94.0, 92.6), "3": (83.85, 85.25)}
# The FCN epochs completed at which the distance table shows the authors' logged values (read from their CSVs,
# `converged.authors_curves`, where a row holds the value measured before its epoch).
AUTHOR_EPOCHS = {"0": (1, 4, 9, 29, 99, 129), "1": (1, 4, 9, 19, 49, 99, 140)}
SERIES = ("euclid_l1_r1", "euclid_l1_r4", "cos_l1_r1", "cos_l1_r4")
AUTHOR_COLUMNS = dict(zip(SERIES, ("dist_1", "dist_4", "cos_1", "cos_4")))  # the same series in the authors' CSVs


def stages(records: dict) -> dict[str, tuple[dict, dict]]:
    """Experiment -> (the CNN state the FCN started from, the final FCN), Exp 3's CNN being Exp 2's snapshot."""
    out = {}
    for name in ("0", "1", "2", "3", "L"):
        fcn = records.get(f"{name}/FCN")
        if fcn is None:
            continue
        cnn = records["2/CNN"]["snapshot_eval"] if name == "3" else records[f"{name}/CNN"]
        out[name] = (cnn, fcn)
    return out


def accuracy_table(by_seed: dict[int, dict], n_test: int) -> pd.DataFrame:
    """Per experiment and network: accuracies as mean over seeds (std beside), the paper's validation value."""
    rows = []
    for seed, records in by_seed.items():
        for name, (cnn, fcn) in stages(records).items():
            control = records.get(f"{name}/CNN continued")
            for net, rec in (("CNN", cnn), ("FCN", fcn)) + ((("CNN continued", control),) if control else ()):
                epochs = records["2/CNN"]["key"]["snapshot_at"] if (name, net) == ("3", "CNN") else \
                    records[f"{name}/{net}"]["stopped_at"]
                rows.append({"experiment": name, "network": net, "seed": seed, "epochs": epochs,
                             "val_acc": 100 * rec["val_acc"], "test_acc": 100 * rec["test_acc"],
                             "clean_train_acc": 100 * rec["clean_train_acc"]})
    df = pd.DataFrame(rows)
    out = df.groupby(["experiment", "network"], sort=False).agg(
        epochs=("epochs", "mean"), val_acc=("val_acc", "mean"), test_acc=("test_acc", "mean"),
        test_std=("test_acc", "std"), clean_train_acc=("clean_train_acc", "mean"), ours_std=("val_acc", "std"),
        n_seeds=("seed", "nunique")).reset_index()
    out["paper"] = [PAPER_VAL.get(e, (None, None))[n == "FCN"] if n != "CNN continued" else None
                    for e, n in zip(out.experiment, out.network)]
    out["ours"] = out.val_acc
    out["val_minus_paper"] = [o - p if p is not None else None for o, p in zip(out.ours, out.paper)]
    return out


def distance_frame(records: dict) -> pd.DataFrame:
    rows = []
    for name, (_, fcn) in stages(records).items():
        h = fcn["history"]
        rows.append({"experiment": name, "epoch": 0, **{s: 0.0 for s in h if s.startswith(("euclid", "cos"))}})
        for i, epoch in enumerate(h["epoch"]):
            rows.append({"experiment": name, "epoch": epoch, **{s: h[s][i] for s in h if s.startswith(("euclid", "cos"))}})
    return pd.DataFrame(rows)


def _series(dist: pd.DataFrame, exp: str, col: str) -> pd.Series:
    return dist[dist.experiment == exp].set_index("epoch")[col]


def second_half_share(s: pd.Series) -> float:
    """Share of the final value added in the second half of the FCN stage."""
    last = s.index.max()
    half = s[s.index <= last / 2].iloc[-1]
    return (s.iloc[-1] - half) / s.iloc[-1] if s.iloc[-1] else float("nan")


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
                x = _series(dist[s], exp, col)
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
            f"ratio − log 5 {ratio}); C0 second-half share − 0.25 {share0}")))
        out.append(judge(R["R3"], cfinding(
            ratio.p_above() < ALPHA and share1.p_above() < ALPHA, any(p < ALPHA for p in holm([ratio.p_below(), share1.p_below()])),
            f"converged start, C1 / C0: {times} (log ratio − log 5 {ratio}); C1 second-half share − 0.25 {share1}")))
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
                                   "; ".join(f"{evidence_label(k)} {_pts(c)}" for k, c in tests.items()),
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
            "; ".join(f"Exp {e}: FCN gap − {label} {_pts(c)}" for e, c in tests.items()),
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
                                          f"Exp 3: FCN − CNN {_pts(c)}; non-inferior to −1 point: one-sided p = "
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


def _pts(c) -> str:
    if not math.isfinite(c.df):
        return f"{100 * c.diff:+.2f} pts (one run: no test)"
    return f"{100 * c.diff:+.2f} ± {100 * c.se:.2f} pts ({c.test} t = {c.t:.2f}, df = {c.df:.0f}, p = {c.p:.2g})"


def _pts_eq(e) -> str:
    lo, hi = e.comparison.interval(0.9)
    if not math.isfinite(lo):
        return f"{100 * e.comparison.diff:+.2f} pts (one run: no test)"
    return (f"{100 * e.comparison.diff:+.2f} pts, 90 % CI [{100 * lo:+.2f}, {100 * hi:+.2f}] against ±{100 * e.margin:g} "
            f"(TOST p = {e.p:.2g}, df = {e.comparison.df:.0f})")


def verdicts(by_seed: dict[int, dict], *, n_test: int, scale: str = "") -> list[dict]:
    """`claims` with each verdict's fragility: each run (one seed: its CNNs, the FCN stages that start from them and
    their controls) left out in turn."""
    def without(seed):
        return claims(by_seed if seed is None else {s: r for s, r in by_seed.items() if s != seed}, n_test=n_test)

    return leave_one_out(without, sorted(by_seed), describe=lambda s: f"seed {s}")


def leak_table(records: dict) -> pd.DataFrame:
    rows = []
    for stage in ("CNN", "FCN"):
        rec = records.get(f"L/{stage}")
        if rec:
            rows.append({"stage": stage, **rec["leak_counts"], "val_acc": 100 * rec["val_acc"], "test_acc": 100 * rec["test_acc"]})
    return pd.DataFrame(rows)


def robustness_table(by_seed: dict[int, dict], n_test: int) -> pd.DataFrame:
    """Per experiment and test-set perturbation: CNN, FCN and (where trained) CNN-continued accuracy, means over
    seeds; FCN − CNN and FCN − CNN continued with their one-sample t tests over seeds."""
    rows = []
    exps = [e for e in ("0", "1", "2", "3", "L") if any(e in stages(r) for r in by_seed.values())]
    for exp in exps:
        for kind in ("test", "noise_0.15", "translate_8px"):
            got = [(st[exp], by_seed[s].get(f"{exp}/CNN continued")) for s, st in
                   ((s, stages(r)) for s, r in by_seed.items()) if exp in st]
            cnn = [c[f"{kind}_acc"] for (c, _), _ in got]
            fcn = [f[f"{kind}_acc"] for (_, f), _ in got]
            c = one_sample(np.subtract(fcn, cnn))
            row = {"experiment": exp, "images": "clean" if kind == "test" else kind, "cnn_acc": 100 * np.mean(cnn),
                   "fcn_acc": 100 * np.mean(fcn), "fcn_minus_cnn": 100 * c.diff, "diff_se": 100 * c.se, "df": c.df,
                   "p": c.p, "n_seeds": len(got)}
            if all(ctl is not None for _, ctl in got):
                ctl = [k[f"{kind}_acc"] for _, k in got]
                cc = one_sample(np.subtract(fcn, ctl))
                row.update(control_acc=100 * np.mean(ctl), fcn_minus_control=100 * cc.diff, control_p=cc.p)
            rows.append(row)
    return pd.DataFrame(rows)


def authors_robustness(rob: pd.DataFrame) -> pd.DataFrame:
    """R8 beside the authors' logged Exp 1 robustness (their last CNN and FCN rows of Results/cifar_30aug.csv, on
    their leaky validation images, under their own translation and noise tests): FCN − CNN, theirs and ours."""
    ours = rob[rob.experiment == "1"].set_index("images")
    rows = []
    for theirs, mine in (("translate", "translate_8px"), ("noise", "noise_0.15")):
        a = start.AUTHORS_ROBUSTNESS[theirs]
        row = {"perturbation": theirs, "authors_cnn": 100 * a["CNN"], "authors_fcn": 100 * a["FCN"],
               "authors_fcn_minus_cnn": 100 * (a["FCN"] - a["CNN"])}
        if mine in ours.index:
            o = ours.loc[mine]
            row.update(ours_cnn=o.cnn_acc, ours_fcn=o.fcn_acc, ours_fcn_minus_cnn=o.fcn_minus_cnn, ours_p=o.p)
        rows.append(row)
    return pd.DataFrame(rows)


def distance_table(by_seed: dict[int, dict]) -> pd.DataFrame:
    """Our distances (mean over seeds) at the epochs the authors' CSVs report, beside theirs, and at the end of each
    FCN stage."""
    dist = pd.concat([distance_frame(r).assign(seed=s) for s, r in by_seed.items()])
    mean = dist.groupby(["experiment", "epoch"])[list(SERIES)].mean()
    authors = start.authors_curves().assign(epoch=lambda a: a.csv_epoch - 1).set_index(["experiment", "epoch"])
    rows = []
    for exp, epochs in AUTHOR_EPOCHS.items():
        for epoch in epochs:
            if (exp, epoch) in mean.index:
                rows.append({"experiment": exp, "fcn_epoch": epoch, **{f"ours_{s}": mean.loc[(exp, epoch), s] for s in SERIES},
                             **{f"paper_{s}": authors.loc[(exp, epoch), AUTHOR_COLUMNS[s]] for s in SERIES}})
    for exp, g in dist.groupby("experiment", sort=False):
        last = g.groupby("seed").epoch.max().min()  # the last epoch every seed reached
        rows.append({"experiment": exp, "fcn_epoch": int(last),
                     **{f"ours_{s}": mean.loc[(exp, last), s] for s in SERIES}})
    return pd.DataFrame(rows)


# The rung each network stands on (the synthesis page's ladder); the FCN starts from the CNN's weights, then is freed.
LADDER = {"CNN": "shared and local", "FCN": "neither"}


def ladder_rows(tables: dict) -> list[dict]:
    """This chapter's rows of the book's ladder of inductive bias (`synthesis.RUNGS`), read from its summary tables:
    {"rung", "setting", "model", "accuracy" (%), "heading" (the section it comes from)}."""
    return [{"rung": LADDER[r["network"]], "setting": f"CIFAR-10, Exp {r['experiment']}", "model": r["network"],
             "accuracy": r["test_acc"], "heading": "Final accuracies beside the paper's"}
            for r in tables.get("accuracies", []) if r["network"] in LADDER and r["experiment"] in ("1", "2")
            and pd.notna(r["test_acc"])]
