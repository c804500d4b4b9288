"""The chapter's run: every stage through the store, then its tables, figures, glued values and claims."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ... import planning
from ...context import RunContext
from ...results import Results
from ...train import n_params
from . import converged as CS
from . import source
from .analysis import (accuracy_table, authors_robustness, distance_frame, distance_table, fitted_table, ladder_rows,
                       leak_table, robustness_table)
from .claims import FIT, fitted, verdicts
from .figures import converged_start, curves, deeper_layers, divergence, measure_relation
from .models import PARAMS, cnn, convert
from .runs import BUDGETS, SLUG, planned, run_all


def run(ctx: RunContext) -> Results:
    res, b = Results(), ctx.budget
    exps = {e.name: e for e in b.experiments}
    res.glue_all({"n_train": b.train, "n_val": b.val, "n_test": b.test, "leak_pool": b.leak_pool,
                  "paper_split_ratio": 48_000 / b.train,  # the code's training split: 80 % of the merged 60 000
                  "n_seeds": len(b.seeds), "our_spe": -(-b.train // b.batch_size)})
    for e in b.experiments:
        res.glue(f"cnn_epochs_{e.name}", e.cnn.epochs)
        res.glue(f"fcn_epochs_{e.name}", e.fcn.epochs)
    confirm = {e.name: e for e in b.confirm_experiments}
    if "F0" in exps:
        f0 = exps["F0"]
        res.glue_all({"fit_train": f0.subset, "fit_cnn_explore": f0.cnn.epochs, "fit_fcn_epochs": f0.fcn.epochs,
                      "fit_steps": f0.fcn.epochs * -(-f0.subset // b.batch_size), "fit_threshold": 100 * FIT,
                      "n_confirm": len(b.confirm), "confirm_seeds": ", ".join(map(str, b.confirm)) or "none"})
    if "F3" in confirm:
        res.glue_all({"fit_cnn_confirm": confirm["F2"].cnn.epochs, "f3_epoch": confirm["F3"].cnn.epochs})
    if "C0" in exps:
        c0 = exps["C0"]
        res.glue_all({"conv_train": c0.subset, "conv_patience": c0.cnn.patience, "conv_cap": c0.cnn.epochs,
                      "conv_fcn_epochs": c0.fcn.epochs, "conv_steps": c0.fcn.epochs * -(-c0.subset // b.batch_size)})
    conversion(res)

    by_seed = run_all(b, ctx.store, device=ctx.device)
    explore = {s: by_seed[s] for s in b.seeds}  # the paper's protocol (Exp 0-3, L) and C0, C1: exploratory seeds only
    # the fitted start as frozen (its exploratory seeds ran a shorter CNN stage, shown apart in the source table)
    confirmed = {s: by_seed[s] for s in b.confirm} or by_seed
    records = by_seed[b.seeds[0]]  # the curves and the divergence figure show the first seed; tables and claims use all
    res.glue("train_minutes", ctx.store.compute_seconds / 60)
    res.figure("curves", curves(records))

    res.figure("divergence", divergence(records))
    dtab = distance_table(explore)
    res.table("distances", dtab.drop(columns=["steps", "fcn_epoch"]), {"seeds": "{:.0f}"}, decimals=5)
    res.save("distances", dtab)
    ends = dtab[dtab.fcn_epoch.notna()].set_index("experiment")
    for e, row in ends.iterrows():
        res.glue(f"cos1_end_{e}", row.ours_cos_l1_r1)
        res.glue(f"fcn_end_{e}", int(row.fcn_epoch))
    if {"0", "1"} <= set(ends.index):
        spe = -(-b.train // b.batch_size)
        stage_steps = int(round(spe * sum(r["1/FCN"]["stopped_at"] for r in explore.values()) / len(explore)))
        res.glue("authors_spe", CS.AUTHORS_STEPS_PER_EPOCH)
        res.glue("stage_steps", stage_steps)
        for name, steps in (("epoch", CS.AUTHORS_STEPS_PER_EPOCH), ("stage", stage_steps)):
            res.glue(f"authors_ratio_{name}", CS.authors_at([steps], "1")[0] / CS.authors_at([steps], "0")[0])
        res.glue("ours_ratio_end", ends.loc["1", "ours_cos_l1_r1"] / ends.loc["0", "ours_cos_l1_r1"])
    a1 = CS.authors_curves().query("experiment == '1'")
    res.glue_all({"authors_exp1_cos_max": float(a1.cos_1.max()), "authors_exp1_steps": int(a1.steps.max())})

    cs = CS.frame(confirmed)
    fitted_start(res, cs, by_seed, b.confirm)
    source_of_the_gap(res, by_seed, b)

    dist_all = pd.concat([distance_frame(r).assign(seed=s) for s, r in explore.items()])
    rel = CS.measure_relation(dist_all, cs if len(cs) else
                              pd.DataFrame(columns=["experiment", "euclid_r1", "cosine_r1"]))
    res.figure("measure_relation", measure_relation(rel))
    res.glue_all(CS.relation_headline(rel))

    res.figure("deeper_layers", deeper_layers(explore))
    deeper(res, dist_all)

    acc = accuracy_table(explore, b.test)
    res.table("accuracies", acc.drop(columns=["ours", "ours_std"]), {"epochs": "{:.1f}"}, decimals=2)
    t = acc.set_index(["experiment", "network"]).test_acc
    for e in ("0", "1", "2", "3"):
        if (e, "FCN") in t and (e, "CNN continued") in t:
            res.glue(f"fcn_vs_cnn_{e}", t[(e, "FCN")] - t[(e, "CNN")])
            res.glue(f"fcn_vs_control_{e}", t[(e, "FCN")] - t[(e, "CNN continued")])

    leak_tab = res.table("leak", leak_table(records), decimals=2, save=True)
    if len(leak_tab) == 2:
        f = leak_tab.set_index("stage").loc["FCN"]
        for k in ("distinct", "val_rows", "val_in_train", "val_in_earlier_train", "val_in_either_train"):
            res.glue(f"leak_{k}", int(f[k]))
        res.glue_all({"leak_val": f.val_acc, "leak_test": f.test_acc, "leak_gap": f.val_acc - f.test_acc})

    ftab = res.table("fitted_accuracy", fitted_table(by_seed),
                     {"sigma": "{:g}", "cnn_epochs": "{:.0f}", "fcn_minus_cnn": "{:+.2f}", "fcn_minus_control": "{:+.2f}",
                      "paper_fcn_minus_cnn": "{:+.2f}"}, decimals=2, save=True)
    if len(ftab):
        ftab = ftab.drop_duplicates("experiment", keep="last")  # the confirmatory schedule, listed after the exploratory
        for r in ftab.itertuples():
            res.glue(f"fit_{r.experiment}_vs_cnn", r.fcn_minus_cnn)
            res.glue(f"fit_{r.experiment}_vs_control", r.fcn_minus_control)
            res.glue(f"fit_{r.experiment}_cnn_fit", r.cnn_fit)
        short = [f"{r.experiment} ({r.cnn_fit:.1f} % on average)" for r in ftab.itertuples()
                 if r.experiment != "F3" and r.cnn_fit < 100 * FIT]  # F3 starts from a short CNN by design
        res.glue("fit_short", "every CNN but F3's (short by design) fits at least that on average" if not short else
                 f"the CNNs of {', '.join(short)} fall short of it, so every claim whose regime check includes "
                 f"{'it' if len(short) == 1 else 'them'} is out of regime")
    rob = res.table("robustness", robustness_table(confirmed, b.test),
                    {"fcn_minus_cnn": "{:+.2f}", "fcn_minus_control": "{:+.2f}", "p": "{:.2g}", "control_p": "{:.2g}",
                     "df": "{:.0f}"}, decimals=2, save=True)
    ar = res.table("authors_robustness", authors_robustness(rob), {"ours_p": "{:.2g}"}, decimals=2, save=True)
    for r in ar.itertuples():
        res.glue(f"auth_{r.perturbation}", r.authors_fcn_minus_cnn)
        res.glue(f"ours_{r.perturbation}", r.ours_fcn_minus_cnn)
    t = ar.set_index("perturbation").authors_fcn_minus_cnn

    def side(x):
        return "less robust" if x < 0 else "no less robust"

    res.glue("auth_reading", f"show the FCN {side(t['noise'])} under noise"
             + (" (the paper's direction)" if t["noise"] < 0 else "")
             + f" and {side(t['translate'])} under translation, the perturbation weight sharing is about")

    res.claims = verdicts(by_seed, n_test=b.test, records=ctx.store.records)

    tim = res.measured(SLUG, "step_benchmark", {"ms": "{:.1f}"}, decimals=2)
    res.glue("fcn_step_ratio", tim.set_index("network").ratio["FCN"] if len(tim) else float("nan"))

    res.save("accuracies", acc)
    res.save("fitted_start", cs[["sigma", "seed", "step", "cosine_r1", "drift", "layer1_norm"]] if len(cs) else [])
    res.save("measure_relation", [CS.relation_headline(rel)])
    res.ladder = ladder_rows(res.saved)
    return res


def conversion(res: Results) -> None:
    """The CNN freed into an FCN computes the same function, and both have the spec's parameter counts."""
    torch.manual_seed(0)
    net = cnn()
    free = convert(net)
    probe = torch.rand(64, 3, 32, 32)
    with torch.no_grad():
        res.glue("conv_err", (free(probe) - net(probe)).abs().max().item())
    res.glue_all({"cnn_params_m": n_params(net) / 1e6, "fcn_params_m": n_params(free) / 1e6})
    params = res.table("parameters", pd.DataFrame([{"network": "CNN", "ours": n_params(net), "spec": PARAMS["CNN"]},
                                                   {"network": "FCN", "ours": n_params(free), "spec": PARAMS["FCN"]}]))
    res.glue("params_match", "equal" if (params.ours == params.spec).all() else "do not equal")


def fitted_start(res: Results, cs: pd.DataFrame, by_seed: dict, confirm) -> None:
    """The fitted start's F0 and F1 (R2, R3, R10): the distance and the layer-1 norm through the FCN stage, and how
    much of F0's distance its first FCN epoch sets (the confirmatory seeds)."""
    res.figure("converged_start", converged_start(cs) if len(cs) else None)
    res.glue("fit_regime", fitted(by_seed, ("F0", "F1", "F2"))[1])
    f0 = [(by_seed[s]["F0/CNN"], by_seed[s]["F0/FCN"]) for s in confirm if "F0/FCN" in by_seed.get(s, {})]
    if f0:
        mean = lambda f: float(np.mean([f(c, h) for c, h in f0]))
        res.glue_all({"f0_cos_first": mean(lambda c, f: f["history"]["cos_l1_r1"][0]),
                      "f0_cos_end": mean(lambda c, f: f["history"]["cos_l1_r1"][-1]),
                      "f0_loss_first": mean(lambda c, f: f["history"]["train_loss"][0]),
                      "f0_cnn_loss": mean(lambda c, f: c["history"]["train_loss"][-1])})
    if not len(cs):
        res.table("fitted_norms", pd.DataFrame(), empty="the fitted start is not in this budget")
        return
    norms = CS.norm_change(cs)
    res.table("fitted_norms", norms.groupby("experiment")[["norm_start", "norm_end", "log_norm_ratio", "drift",
                                                           "cosine_end"]].mean().reset_index(),
              {"log_norm_ratio": "{:+.4f}", "cosine_end": "{:.5f}"}, decimals=3)
    nm = norms.groupby("experiment").log_norm_ratio.mean()
    res.glue("fit_norm_F0", 100 * (math.exp(nm["F0"]) - 1))
    res.glue("fit_norm_F1", 100 * (math.exp(nm["F1"]) - 1))


def _fitted_label(experiments) -> str | None:
    """The source table's CNN label of a phase's fitted start (None where the budget has none)."""
    f0 = next((e for e in experiments if e.name == "F0"), None)
    return f"fitted {f0.cnn.epochs} ep" if f0 else None


def source_of_the_gap(res: Results, by_seed: dict, b) -> None:
    """Issue 31: the Exp 1 / Exp 0 ratio of our variants beside the authors' code's and their CSV's, and what a run
    at the paper's scale would cost."""
    tab = res.table("source", source.table(by_seed), {"seeds": "{:.0f}", "end_steps": "{:.0f}", "exp0_750": "{:.2e}",
                                                      "exp1_750": "{:.2e}", "ratio_375": "{:.1f}", "ratio_750": "{:.1f}",
                                                      "ratio_end": "{:.1f}", "cnn_fit": "{:.1f}"}, decimals=2, save=True)
    if not (tab.source == "ours").any():
        return
    ours = tab[tab.source == "ours"].set_index("variant")
    code = tab[tab.source.str.startswith("their code")].assign(v=lambda t: t.source.str.removeprefix("their code, "))
    code = code.set_index("v")
    csv = tab[tab.source == "their CSV"].iloc[0]
    explore, confirm = _fitted_label(b.experiments), _fitted_label(b.confirm_experiments)
    for name, idx in (("own", f"{explore} · own · reshuffled"), ("own_confirm", f"{confirm} · own · reshuffled"),
                      ("fixed", f"{explore} · own · fixed"), ("fresh", f"{explore} · fresh · reshuffled"),
                      ("early", "early-stopped · own · reshuffled")):
        if idx in ours.index:
            row = ours.loc[idx]
            res.glue_all({f"src_{name}_375": row.ratio_375, f"src_{name}_750": row.ratio_750,
                          f"src_{name}_exp0": row.exp0_750, f"src_{name}_exp1": row.exp1_750,
                          f"src_{name}_fit": row.cnn_fit, f"src_{name}_seeds": int(row.seeds)})
    published = code.loc["as published"]
    res.glue_all({"code_375": published.ratio_375, "code_750": published.ratio_750, "code_end": published.ratio_end,
                  "code_exp0": published.exp0_750, "code_exp1": published.exp1_750,
                  "code_own": code.loc["FCN on the CNN's own split"].ratio_end,
                  "code_fresh": code.loc["more fresh data (19 200 rows)"].ratio_end,
                  "code_short": code.loc["short CNN (300 steps)"].ratio_end,
                  "code_reshuffled": code.loc["noise reshuffled"].ratio_end,
                  "csv_375": csv.ratio_375, "csv_750": csv.ratio_750, "csv_end": csv.ratio_end,
                  "csv_end_steps": int(csv.end_steps), "csv_exp0": csv.exp0_750, "csv_exp1": csv.exp1_750})
    both = tab[tab.source != "their CSV"]
    largest, smallest = both.exp1_750.max(), both.exp0_750.min()  # NaN-skipping: rows with a ratio only
    res.glue_all({"src_exp1_largest": largest, "csv_exp1_over_largest": csv.exp1_750 / largest,
                  "src_exp0_smallest": smallest, "csv_exp0_over_smallest": csv.exp0_750 / smallest,
                  "src_ratio_largest": float(both.ratio_750.max()), "code_end_steps": int(published.end_steps),
                  "authors_cnn_steps": 200 * CS.AUTHORS_STEPS_PER_EPOCH,  # Exp 1's CNN: 200 epochs in their CSV
                  "src_mark": source.MARKS[-1]})
    paper = BUDGETS["paper"]
    units = [u for u in planned(paper) if u.experiment in ("Exp 0", "Exp 1")]
    res.glue_all({"paper_run_units": len(units), "paper_run_gpu_hours": float(planning.estimate(units).gpu_hours.sum()),
                  "paper_run_gpu": planning.ASSUMED_GPU[0], "paper_train": paper.train,
                  "paper_cnn_cap": max(e.cnn.epochs for e in paper.experiments if e.name in ("0", "1"))})


def deeper(res: Results, dist_all: pd.DataFrame) -> None:
    """Layers 2 and 3: does the noise's effect on neighbouring filters carry past the first layer?"""
    def last_epoch(g):
        return g.sort_values("epoch").iloc[-1]

    ends = dist_all.groupby(["experiment", "seed"]).apply(last_epoch, include_groups=False)
    ends = ends.groupby("experiment")[["cos_l1_r1", "cos_l2_r1", "cos_l3_r1"]].mean()
    res.table("deeper_ends", ends.reset_index(), decimals=5)
    for e in ends.index:
        for layer in (1, 2, 3):
            res.glue(f"deep_{e}_l{layer}", ends.loc[e, f"cos_l{layer}_r1"])
    if {"0", "1"} <= set(ends.index):
        # noise / no noise per layer; within 10 % (a mean over three seeds, untested) reads as "about as much"
        ratio = {layer: ends.loc["1", f"cos_l{layer}_r1"] / ends.loc["0", f"cos_l{layer}_r1"] for layer in (2, 3)}
        for layer, r in ratio.items():
            res.glue(f"deep_l{layer}_reading", "about as much with noise as without (within 10 %)" if abs(r - 1) < 0.1
                     else "more with noise than without" if r > 1 else "more without noise than with it")
        noisier = [r >= 1.1 for r in ratio.values()]
        res.glue("deep_conclusion", "carries to both deeper layers" if all(noisier) else
                 "carries to neither deeper layer" if not any(noisier) else "carries to only one of the deeper layers")

