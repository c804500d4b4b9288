"""The chapter's run: every unit through the store, then its tables, figures, glued values and claims."""
from __future__ import annotations

import pandas as pd

from ...context import RunContext
from ...planning import ASSUMED_GPU
from ...results import Results
from . import analysis as A, claims as C, figures as Fig, ladder as L, runs as R
from .models import dense_counts


def run(ctx: RunContext) -> Results:
    res, b = Results(), ctx.budget
    datasets, missing = setup(res, ctx)

    counts = res.table("parameters", pd.DataFrame(A.parameter_table(b.alpha)), {"paper_millions": "{:.0f}"}, save=True)
    res.glue("counts_match", "all" if counts.match.all() else "not all")

    runs, records = R.run_all(b, ctx.store, datasets, device=ctx.device)
    df = R.frame(runs, records)
    n_test = {d: R.test_images(d, b) for d in datasets}
    lad = L.frame(df)
    res.glue("units", len(ctx.store))
    res.glue("train_minutes", ctx.store.compute_seconds / 60)

    t2 = A.table2(df, n_test, missing)
    res.table("table2", t2.drop(columns=["status"]).assign(ours=t2.ours.where(t2.status == "ran")),
              {"reproduction": "{:.0f}", "ours_minus_paper": "{:+.2f}"}, decimals=2)
    res.figure("table2_dots", Fig.table2_dots(t2))
    res.glue_all(A.headline(A.accuracies(df, n_test), datasets))

    classes = {d: R.CLASSES[d] for d in datasets}
    res.figure("figure3", Fig.figure3(A.nonzero_history(df), alpha=b.alpha, classes=classes))
    fin = res.table("final_nonzeros", A.final_nonzeros(df, b.alpha, classes),
                    {"k": "{:.1f}", "test_acc": "{:.4f}", **{f"nnz{i}": "{:,.0f}" for i in (1, 2, 3)},
                     **{f"share{i}": "{:.2%}" for i in (1, 2, 3)}}, save=True)
    res.glue_all(A.sparsity_headline(fin, b.alpha))

    f3 = A.fig3_beside_paper(fin, lad, b.alpha)
    res.table("fig3_beside_paper", f3, {c: "{:.3f}" for c in f3.columns if c != "layer"}, save=True)
    by_layer = f3.set_index("layer")
    for col in by_layer.columns:
        for layer in by_layer.index:
            res.glue(f"fig3_{col}_{layer}", by_layer.loc[layer, col])

    res.figure("figure4", Fig.figure4(df))
    loc = res.table("locality", A.locality_table(df), {"radius_median": "{:.1f}"}, save=True)
    res.glue_all(A.locality_headline(loc))

    ladder(res, lad, b.alpha)
    every = L.frame(df, None)
    for d in ("cifar10", "cifar100"):
        sub = every[every.dataset == d]
        arms = {a: L.at_top(sub, a) for a in ("S-CONV SGD", "S-LOCAL SGD", "SGD", "3-FC SGD")} if len(sub) else {}
        res.glue(f"lad_arch_{d}", ", ".join(f"{a.replace(' SGD', '') if a != 'SGD' else 'S-FC'} "
                                           f"{100 * r.test_acc.mean():.1f} %" for a, r in arms.items() if len(r))
                 or "not run")
    lam_tab = res.table("lambda", A.lambda_table(lad, b.alpha) if len(lad) else pd.DataFrame(),
                        {"k": "{:.1f}", "lam1": "{:.2e}", "beta_eff": "{:.3g}", "shrink": "{:.4f}", "nnz1": "{:,.0f}",
                         "share1": "{:.3%}", "train_acc": "{:.4f}", "test_acc": "{:.4f}"},
                        empty="the epoch ladder is not in this budget", save=True)
    res.figure("figure_e4", Fig.figure_e4(lad, alpha=b.alpha) if len(lam_tab) else None)
    res.glue_all(A.e4_headline(lam_tab))

    e5 = res.table("e5", A.e5_table(df), {"test_acc": "{:.4f}"}, save=True)
    res.glue_all(A.e5_headline(e5))
    res.glue_all(A.beta1_context(df, b))

    res.table("reproduction_code", A.reproduction_as_found(), save=True)
    res.glue_all(A.reproduction_effects())

    res.claims = C.verdicts(df, ctx.store.records, alpha=b.alpha)

    lc = res.measured(R.SLUG, "lc_benchmark", decimals=2)
    opt = res.measured(R.SLUG, "optimizer_benchmark", decimals=2, title=False)
    res.glue_all(A.bench_headline(lc, opt))

    res.save("table2", t2)
    res.save("epoch_ladder", L.table(lad, b.alpha) if len(lad) else [])
    res.ladder = A.ladder_rows(res.saved)
    return res


def setup(res: Results, ctx: RunContext) -> tuple[tuple[str, ...], dict[str, str]]:
    """The datasets that load here, the cost of the plan, and what the budget scales (glued into the setup table)."""
    b = ctx.budget
    datasets, missing = R.available(b.datasets)
    for name, reason in missing.items():
        print(f"{name}: {reason}; its rows are marked `not run` and the published values are printed alone")
    cost = R.estimate(b, datasets, ctx.store)
    gpu, tflops = ASSUMED_GPU
    print(f"{len(cost)} units, {int(cost.stored.sum())} already stored; estimated {cost.pflop.sum():.3g} PFLOP of "
          f"training, ≈ {cost.gpu_hours.sum():.2g} h on one {gpu} at an assumed {tflops / 1e12:.0f} TFLOP/s "
          f"({cost[~cost.stored].gpu_hours.sum():.2g} h still to train)")
    res.glue("alpha", b.alpha)
    for d, e in b.epochs:
        res.glue(f"epochs_{d}", e)
    res.glue("gpu_hours", cost.gpu_hours.sum())
    res.glue_all(A.shrink_context(b.alpha))
    k_matched = [R.lambdas(R.Run("E1", d, "S-FC", beta=50.0), b, b.steps(d, R.train_images(d, b)))["k"]
                 for d in datasets]
    res.glue_all({"k_min": min(k_matched), "k_max": max(k_matched), "gpu_name": gpu, "n_seeds": b.seeds})
    if b.ladder is not None:
        res.glue_all({"ladder_train": b.ladder.train, "ladder_rungs": ", ".join(map(str, b.ladder.lengths)),
                      "ladder_seeds": b.ladder.seeds, "conf_len": b.ladder.confirm_length or "none",
                      "conf_seeds": ", ".join(map(str, b.ladder.confirm_seeds)) or "none",
                      "width_scale": R.WIDTH_SCALE})
    return datasets, missing


def ladder(res: Results, lad: pd.DataFrame, alpha: int) -> None:
    """The epoch ladder: the figure, the trend per doubling of training, and whether its top rung fits its data."""
    res.figure("ladder", Fig.ladder_figure(lad, alpha=alpha) if len(lad) else None)
    if not len(lad):
        res.table("ladder_trends", pd.DataFrame(), empty="the epoch ladder is not in this budget", save=True)
        return
    trends = res.table("ladder_trends", L.trends(lad), {"p": "{:.2g}", "df": "{:.1f}"}, decimals=2, save=True)
    res.glue_all(L.headline(lad, trends, alpha))
    res.glue("lad_regime", "passes" if L.regime(lad)[0] else "fails")
    width, matched = L.at_top(lad, L.WIDTH_ARM), L.at_top(lad, "β-lasso (matched λ)")
    dense = dense_counts(alpha, 10)
    have = bool(len(width) and len(matched))
    res.glue_all({"lad_width_share2": 100 * (width.nnz2 / dense[1]).mean() if have else float("nan"),
                  "lad_matched_share2": 100 * (matched.nnz2 / dense[1]).mean() if have else float("nan"),
                  "lad_width_test": 100 * width.test_acc.mean() if have else float("nan"),
                  "lad_width_train": 100 * width.clean_train_acc.mean() if have else float("nan")})
