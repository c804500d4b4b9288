"""The chapter's run: every unit through the store, then its tables, figures, glued values and claims."""
from __future__ import annotations

import pandas as pd

from ...context import RunContext
from ...results import Results
from .analysis import (alpha_effect, confirmatory_table, control_reading, duplicated_neurons, e4_reading, e4b_reading,
                       ladder_rows, radius_effect, stuck_rates, statements, with_stuck)
from .claims import verdicts
from .figures import figure1, figure2, figure3, figure4
from .models import arbnet_checks
from .runs import SLUG, run_all


def run(ctx: RunContext) -> Results:
    res = Results()
    res.figure("figure1", figure1())
    everything = run_all(ctx.budget, ctx.store, device=ctx.device)
    # the figures and tables show the exploratory sweep (every setting, one epoch cap); the confirmatory seeds (the
    # claims' arms at a longer cap) enter the claims and their own table
    df = everything[~everything.confirmatory]
    res.table("confirmatory", confirmatory_table(everything), {"sparsity": "{:g}"}, decimals=4,
              empty="no confirmatory seeds in this budget", save=True)
    schedule = everything[everything.experiment == "E2-E3"].groupby("confirmatory")
    decayed, runs = schedule.lr_decays.apply(lambda x: (x > 0).sum()), schedule.size()
    res.glue_all({"decayed_explore": int(decayed.get(False, 0)), "runs_explore": int(runs.get(False, 0)),
                  "decayed_confirm": int(decayed.get(True, 0)), "runs_confirm": int(runs.get(True, 0))})
    main_all = with_stuck(everything[everything.experiment == "E2-E3"])  # the claims' cut: over both phases
    conf = main_all[main_all.confirmatory]
    trained = conf[~conf.stuck].groupby("dataset")
    res.glue("decayed_trained", "; ".join(f"{d}: {int((g.lr_decays > 0).sum())} of {len(g)}" for d, g in trained) or "none")
    main = df[df.experiment == "E2-E3"]
    res.table("settings_wide", main.groupby(["dataset", "sparsity", "label"]).test_acc.agg(["mean", "std", "count"])
              .unstack("sparsity"))

    res.figure("figure2", figure2(df))
    res.table("alpha_effect", pd.concat([alpha_effect(df, d) for d in ("mnist", "cifar10")]),
              {"sparsity": "{:g}", "rho": "{:+.2f}", "delta": "{:+.3f}"}, save=True)

    stuck = res.table("stuck_rates", stuck_rates(df), {"sparsity": "{:g}", "rate": "{:.2f}", "rate_lo": "{:.2f}",
                                                       "rate_hi": "{:.2f}"}, empty="no run got stuck", save=True)
    res.glue("stuck_total", int(stuck.stuck.sum()) if len(stuck) else 0)
    res.glue("stuck_settings", ", ".join(f"{r.dataset} {r.setting} s = {r.sparsity:g} ({r.stuck}/{r.runs})"
                                         for r in stuck.itertuples()) or "none")
    res.glue("stuck_runs", int(len(main)))

    res.figure("figure3", figure3(df))
    res.figure("figure4", figure4(df))
    radius_tab = res.table("radius_effect", pd.concat([radius_effect(df, d) for d in ("mnist", "cifar10")]),
                           {"sparsity": "{:g}"}, decimals=4, save=True)
    res.glue_all(control_reading(radius_tab), prefix="control_")

    dup = res.table("duplicated_neurons", duplicated_neurons(df), {"test_acc": "{:.4f}", "sparsity": "{:g}"},
                    empty="E4 is not in this budget", save=True)
    e4b = df[df.experiment == "E4b"]
    res.table("e4b", e4b[["label", "table_size", "test_acc", "final_train_acc", "epochs_run"]].reset_index(drop=True),
              empty="E4b is not in this budget",
              title="E4b, CIFAR-10 with the literal 997-entry tables (s = 0.1, seed 0):")
    if len(dup):
        res.glue_all(e4_reading(dup, df), prefix="e4_")
    if len(e4b):
        res.glue_all(e4b_reading(df), prefix="e4b_")

    res.table("statements", statements(df), {"ours": "{:+.4f}", "ours_std": "{:.4f}"}, save=True)
    res.claims = verdicts(everything, arbnet_checks(), ctx.store.records)

    hashed = res.measured(SLUG, "hashed_benchmark", {"ratio_to_linear": "{:.2f}"})
    res.glue("hashed_ratio_max", hashed.ratio_to_linear.max() if len(hashed) else float("nan"))
    res.glue("hashed_ratio_min", hashed.ratio_to_linear.min() if len(hashed) else float("nan"))

    res.save("settings", main.groupby(["dataset", "label", "sparsity"]).test_acc.agg(["mean", "std", "count"])
             .reset_index())
    res.ladder = ladder_rows(res.saved)
    return res
