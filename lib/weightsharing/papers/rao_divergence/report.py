"""The chapter's run: every stage through the store, then its tables, figures, glued values and claims."""
from __future__ import annotations

import math

import pandas as pd
import torch

from ...context import RunContext
from ...results import Results
from ...train import n_params
from . import converged as CS
from .analysis import (accuracy_table, authors_robustness, distance_frame, distance_table, ladder_rows, leak_table,
                       robustness_table)
from .claims import verdicts
from .figures import converged_start, curves, deeper_layers, divergence, measure_relation
from .models import PARAMS, cnn, convert
from .runs import SLUG, run_all


def run(ctx: RunContext) -> Results:
    res, b = Results(), ctx.budget
    exps = {e.name: e for e in b.experiments}
    res.glue_all({"n_train": b.train, "n_val": b.val, "n_test": b.test, "leak_pool": b.leak_pool,
                  "paper_split_ratio": 48_000 / b.train,  # the code's training split: 80 % of the merged 60 000
                  "n_seeds": len(b.seeds)})
    for e in b.experiments:
        res.glue(f"cnn_epochs_{e.name}", e.cnn.epochs)
        res.glue(f"fcn_epochs_{e.name}", e.fcn.epochs)
    if "C0" in exps:
        c0 = exps["C0"]
        res.glue_all({"conv_train": c0.subset, "conv_patience": c0.cnn.patience, "conv_cap": c0.cnn.epochs,
                      "conv_fcn_epochs": c0.fcn.epochs, "conv_steps": c0.fcn.epochs * -(-c0.subset // b.batch_size)})
    conversion(res)

    by_seed = run_all(b, ctx.store, device=ctx.device)
    records = by_seed[b.seeds[0]]  # the curves and the divergence figure show the first seed; tables and claims use all
    res.glue("train_minutes", ctx.store.compute_seconds / 60)
    res.figure("curves", curves(records))

    res.figure("divergence", divergence(records))
    dtab = res.table("distances", distance_table(by_seed), decimals=4, save=True)
    ends = dtab.drop_duplicates("experiment", keep="last").set_index("experiment")
    for e, row in ends.iterrows():
        res.glue(f"cos1_end_{e}", row.ours_cos_l1_r1)
        res.glue(f"fcn_end_{e}", int(row.fcn_epoch))
    if {"0", "1"} <= set(ends.index):
        spe = -(-b.train // b.batch_size)
        stage_steps = int(round(spe * sum(r["1/FCN"]["stopped_at"] for r in by_seed.values()) / len(by_seed)))
        res.glue("authors_spe", CS.AUTHORS_STEPS_PER_EPOCH)
        res.glue("stage_steps", stage_steps)
        for name, steps in (("epoch", CS.AUTHORS_STEPS_PER_EPOCH), ("stage", stage_steps)):
            res.glue(f"authors_ratio_{name}", CS.authors_at([steps], "1")[0] / CS.authors_at([steps], "0")[0])
        res.glue("ours_ratio_end", ends.loc["1", "ours_cos_l1_r1"] / ends.loc["0", "ours_cos_l1_r1"])

    cs = CS.frame(by_seed)
    converged(res, cs, by_seed)

    dist_all = pd.concat([distance_frame(r).assign(seed=s) for s, r in by_seed.items()])
    rel = CS.measure_relation(dist_all, cs if len(cs) else
                              pd.DataFrame(columns=["experiment", "euclid_r1", "cosine_r1"]))
    res.figure("measure_relation", measure_relation(rel))
    res.glue_all(CS.relation_headline(rel))

    res.figure("deeper_layers", deeper_layers(by_seed))
    deeper(res, dist_all)

    acc = accuracy_table(by_seed, b.test)
    res.table("accuracies", acc.drop(columns=["ours", "ours_std"]), {"val_minus_paper": "{:+.2f}", "epochs": "{:.1f}"},
              decimals=2)
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

    rob = res.table("robustness", robustness_table(by_seed, b.test),
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
    res.save("converged_start", cs[["sigma", "seed", "step", "cosine_r1", "drift", "layer1_norm"]] if len(cs) else [])
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
    params = res.table("parameters", pd.DataFrame([{"network": "CNN", "ours": n_params(net), "spec": PARAMS["CNN"]},
                                                   {"network": "FCN", "ours": n_params(free), "spec": PARAMS["FCN"]}]))
    res.glue("params_match", "equal" if (params.ours == params.spec).all() else "do not equal")


def converged(res: Results, cs: pd.DataFrame, by_seed: dict) -> None:
    """The converged-start experiment (C0, C1): ours beside the authors' curves at equal steps, and the norms."""
    res.figure("converged_start", converged_start(cs) if len(cs) else None)
    if not len(cs):
        res.table("converged_ratio", pd.DataFrame(), empty="the converged-start experiment is not in this budget",
                  save=True)
        res.table("converged_norms", pd.DataFrame())
        return
    ratios = res.table("converged_ratio", CS.ratio_table(cs),
                       {"steps": "{:.0f}", "ours_ratio": "{:.1f}", "authors_ratio": "{:.1f}"}, decimals=5, save=True)
    norms = CS.norm_change(cs)
    res.table("converged_norms", norms.groupby("experiment")[["norm_start", "norm_end", "log_norm_ratio", "drift",
                                                              "cosine_end"]].mean().reset_index(),
              {"log_norm_ratio": "{:+.4f}", "cosine_end": "{:.5f}"}, decimals=3)
    last = ratios.iloc[-1]
    res.glue_all({"cs_steps": int(last.steps), "cs_ratio": last.ours_ratio, "cs_authors_ratio": last.authors_ratio,
                  "cs_c0": last.ours_C0, "cs_c1": last.ours_C1})
    nm = norms.groupby("experiment").log_norm_ratio.mean()
    res.glue("cs_norm_c0", 100 * (math.exp(nm["C0"]) - 1))
    res.glue("cs_norm_c1", 100 * (math.exp(nm["C1"]) - 1))
    res.glue("cs_regime", CS.regime(by_seed)[1])
    stops = pd.DataFrame([{"experiment": n, "seed": s, "val_acc": r[f"{n}/CNN"]["val_acc"]}
                          for s, r in by_seed.items() for n in CS.EXPERIMENTS if f"{n}/CNN" in r])
    res.glue("cs_cnn_val", 100 * stops.val_acc.mean())


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
        for layer in (2, 3):
            more = ends.loc["0", f"cos_l{layer}_r1"] > ends.loc["1", f"cos_l{layer}_r1"]
            res.glue(f"deep_l{layer}_reading",
                     "more without noise than with it" if more else "more with noise than without")
        noisier = [ends.loc["1", f"cos_l{layer}_r1"] > ends.loc["0", f"cos_l{layer}_r1"] for layer in (2, 3)]
        res.glue("deep_conclusion", "carries to both deeper layers" if all(noisier) else
                 "carries to neither deeper layer" if not any(noisier) else "carries to only one of the deeper layers")

