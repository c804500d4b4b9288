"""The chapter's run: every unit through the store, then its tables, figures, glued values and claims."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ... import data
from ...context import RunContext
from ...metrics import binomial_interval
from ...results import Results
from .analysis import (COLLAPSED, ablation_table, collapse_rates, fig5_table, ladder_rows, positive_share,
                       sensitivity_table, table1, table2)
from .claims import epochs_to_converge, verdicts
from .figures import figure5, figure6, figure7, figure_runs
from .models import ABSTRACT_LEVELS, PAPER_TABLE1, mnist_pairs
from .runs import run_all


def run(ctx: RunContext) -> Results:
    res, b = Results(), ctx.budget
    mnist = data.load("mnist")
    train_pairs, test_pairs = mnist_pairs(mnist, b.n_pairs, seed=0)
    checks = res.table("pairs", pd.DataFrame([
        {"split": name, "pairs": len(p.target), "P(target = 1)": p.target.float().mean().item(),
         "equal digits": (p.classes[:, 0] == p.classes[:, 1]).float().mean().item(),
         "first pair (MNIST indices)": tuple(p.index[0].tolist()), "input mean": p.x.mean().item(),
         "input max": p.x.max().item()}
        for name, p in (("train", train_pairs), ("test", test_pairs))]))
    res.glue("test_positive_rate", checks["P(target = 1)"].iloc[1])
    res.glue("n_test", len(test_pairs.target))

    df, curves = run_all(b, ctx.store, mnist=mnist, device=ctx.device)
    print(f"{len(df)} runs over {df.experiment.nunique()} experiments ({len(ctx.store)} distinct units); training time "
          f"{ctx.store.compute_seconds:.0f} s")

    t1 = res.table("table1", table1(df, n_test=len(test_pairs.target)),
                   {"lr": "{:.2g}", "notebook": "{:.4f}", "diff": "{:+.3f}"}, save=True)
    for row in t1.itertuples():
        res.glue(f"t1_{row.model}", row.ours)
    res.glue("t1_max_abs_diff", t1["diff"].abs().max())
    res.glue("t1_collapsed", int(t1.collapsed_runs.sum()))
    no_al = ~t1.model.str.startswith("AL") & t1.paper.notna()
    res.glue("t1_noal_reported", int(no_al.sum()))
    res.glue("t1_noal_below_paper", int((no_al & (t1["diff"] < 0)).sum()))
    res.figure("runs", figure_runs(df))

    rates = res.table("collapse_rates", collapse_rates(df), decimals=2, empty="no run collapsed", save=True)
    res.glue("collapsed_total", int(rates.collapsed.sum()) if len(rates) else 0)
    res.glue("collapsed_runs_total", len(df))
    res.glue("collapsed_models", len(rates))
    worst = rates.sort_values("rate").iloc[-1] if len(rates) else None
    res.glue("collapsed_worst", f"{worst.model} ({worst.collapsed} of {worst.runs}, 95 % interval "
                                f"{worst.rate_lo:.2f}–{worst.rate_hi:.2f})" if worst is not None else "none")
    below = df.train_acc[df.train_acc < COLLAPSED]
    res.glue("collapse_below_max", below.max() if len(below) else float("nan"))
    res.glue("collapse_above_min", df.train_acc[df.train_acc >= COLLAPSED].min())
    res.glue("collapse_upper_if_none", binomial_interval(0, b.runs)[1])

    redraws = {seed: mnist_pairs(mnist, b.n_pairs, seed=int(seed))[1].target.float().mean().item()
               for seed in sorted(df[df.experiment.str.startswith("E6b")].seed.unique())}
    share = positive_share(df, redraws, seed0_share=checks["P(target = 1)"].iloc[1])
    res.save("e6b_positive_share", share)
    # shown as two tables that fit the column: the accuracies, then the draws' share of positive pairs
    accuracy = ["model", "ours", "ours_std", "n_seeds", "paper", "gap_seed0", "gap_redrawn", "change", "change_se", "p"]
    res.table("e6b_accuracy", share[accuracy] if len(share) else share,
              {c: "{:+.3f}" for c in ("change", "gap_seed0", "gap_redrawn")} | {"p": "{:.2g}"},
              empty="E6b is not in this budget")
    res.table("e6b_share", share[["model", "seed0_pairs", "seed0_share", "redrawn_share_mean", "rho_share_acc"]]
              if len(share) else share, {"rho_share_acc": "{:+.3f}"}, empty="E6b is not in this budget")
    if len(share):
        below = share[share.gap_seed0 < 0]
        closes = below[(below.change > 0) & (below.p < 0.05) & (below.change >= -below.gap_seed0 / 2)]
        res.glue("e6b_below", ", ".join(below.model) or "none")
        res.glue("e6b_changes", "; ".join(f"{r.model} {r.change:+.3f} ± {r.change_se:.3f} (p = {r.p:.2g})"
                                          for r in below.itertuples()) or "—")
        res.glue("e6b_verdict", "explains" if len(below) and len(closes) == len(below) else "does not explain")
        res.glue("e6b_share_mean", share.redrawn_share_mean.iloc[0])
        res.glue("e6b_rho", "; ".join(f"{r.model} {r.rho_share_acc:+.2f}" for r in share.itertuples()))
    else:
        res.glue_all({k: "not run" for k in ("e6b_below", "e6b_changes", "e6b_verdict", "e6b_rho")})
        res.glue("e6b_share_mean", float("nan"))

    res.figure("figure5", figure5(curves))
    f5 = res.table("fig5", fig5_table(df), {"lr": "{:.2g}", "paper": "{:.4f}"}, save=True)
    res.glue("fig5_collapsed", int(f5.collapsed_runs.sum()))
    res.figure("figure6", figure6(curves))
    res.figure("figure7", figure7(curves))

    res.claims = verdicts(df, curves, ctx.store.records)
    res.glue("frozen_at", ", ".join(sorted({c["frozen_at"][:7] for c in res.claims if c.get("frozen_at")})) or "none")
    res.glue("exploratory_verdicts", "; ".join(f"{c['id']} {c['exploratory_verdict']}" for c in res.claims))
    res.glue("n_runs_all", len(df))
    res.glue("speed_medians", ", ".join(f"{m} {np.median(epochs_to_converge(curves, m)):g}"
                                        for m in ("WS2", "FCNN3", "WS3", "WS1")))
    res.glue("abstract_ws", ABSTRACT_LEVELS["WS"][1])
    res.glue("table1_ws_mean", float(np.mean([PAPER_TABLE1[m][0] for m in ABSTRACT_LEVELS["WS"][0]])))

    sens = res.table("sensitivity", sensitivity_table(df), {"lr": "{:.2g}", "change": "{:+.3f}", "p": "{:.2g}"},
                     save=True)
    res.glue("sens_changes", "; ".join(f"{r.model} {r.change:+.3f} ± {r.change_se:.3f} (p = {r.p:.2g})"
                                       for r in sens.itertuples()))
    significant = sens[sens.p < 0.05]
    res.glue("sens_significant", ", ".join(f"{r.model} ({'better' if r.change > 0 else 'worse'})"
                                           for r in significant.itertuples()) or "none")
    res.glue("sens_largest", sens.change.abs().max() if len(sens) else float("nan"))
    res.table("ablations", ablation_table(df), save=True,
              empty=f"ablations E6a-c run only in the `paper` budget (this is {ctx.budget_name!r})")

    t2 = res.table("table2_learning_rates", table2(df),
                   {"paper_lr": "{:.2g}", "ours_lr": "{:.2g}", "change": "{:+.3f}"}, save=True)
    res.glue("t2_differ", ", ".join(t2.model[~t2.same]) or "none")

    res.ladder = ladder_rows(res.saved)
    return res
