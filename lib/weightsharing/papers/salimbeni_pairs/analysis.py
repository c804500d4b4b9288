"""Table I beside the paper and the authors' notebook, collapsed runs, Fig. 5 values, sensitivity, claims."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ...metrics import binomial_se, failure_rates, spread, welch
from .models import FIG5, NOTEBOOK_TABLE1, PAPER_FIG5, PAPER_TABLE1, PAPER_TABLE2, SENSITIVITY, TABLE1
from .runs import ABLATIONS


def final(df: pd.DataFrame, experiment: str = "E1: Table I") -> dict[str, np.ndarray]:
    sub = df[df.experiment == experiment]
    return {m: g.sort_values("seed").test_acc.to_numpy() for m, g in sub.groupby("model", sort=False)}


COLLAPSED = 0.6  # final train accuracy below this: the run never left the majority-class plateau


def collapsed(df: pd.DataFrame, experiment: str, model: str) -> int:
    sub = df[(df.experiment == experiment) & (df.model == model)]
    return int((sub.train_acc < COLLAPSED).sum())


def table1(df: pd.DataFrame, n_test: int) -> pd.DataFrame:
    acc = final(df)
    rows = []
    for arm in TABLE1:
        s = spread(acc[arm.name])
        paper, paper_std = PAPER_TABLE1[arm.name]
        rows.append({"model": arm.name, "params": int(df[df.model == arm.name].params.iloc[0]), "lr": arm.lr,
                     "ours": s.mean, "ours_std": s.std, "n_seeds": s.n, "ours_median": float(np.median(acc[arm.name])),
                     "collapsed_runs": collapsed(df, "E1: Table I", arm.name), "binomial_se": binomial_se(s.mean, n_test),
                     "paper": paper, "paper_std": paper_std, "notebook": NOTEBOOK_TABLE1[arm.name],
                     "diff": None if paper is None else s.mean - paper})
    return pd.DataFrame(rows)


def collapse_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and model: runs that collapsed (final train accuracy < COLLAPSED) with the exact 95 % interval
    of the rate; models without a collapsed run are left out."""
    return pd.DataFrame(failure_rates(df, ["experiment", "model"], df.train_acc < COLLAPSED, name="collapsed"))


def fig5_table(df: pd.DataFrame) -> pd.DataFrame:
    acc = final(df, "E2: Fig. 5")
    return pd.DataFrame([{"panel": panel, "model": a.name, "lr": a.lr, "ours": spread(acc[a.name]).mean,
                          "ours_std": spread(acc[a.name]).std, "n_seeds": len(acc[a.name]), "collapsed_runs": collapsed(df, "E2: Fig. 5", a.name),
                          "paper": PAPER_FIG5[a.name]}
                         for panel, arms in FIG5.items() for a in arms if a.name in acc])


def sensitivity_table(df: pd.DataFrame) -> pd.DataFrame:
    e5, e1, e2 = final(df, "E5: sensitivity"), final(df), final(df, "E2: Fig. 5")
    rows = []
    for arm, base_name in SENSITIVITY:
        if arm.name not in e5:
            continue
        base = e1.get(base_name, e2.get(base_name))
        rows.append({"model": arm.name, "lr": arm.lr, "ours": e5[arm.name].mean(), "ours_std": e5[arm.name].std(ddof=1),
                     "n_seeds": len(e5[arm.name]), "collapsed_runs": collapsed(df, "E5: sensitivity", arm.name),
                     "baseline": base_name,
                     "baseline_acc": None if base is None else base.mean(),
                     "change": None if base is None else welch(e5[arm.name], base).diff,
                     "change_se": None if base is None else welch(e5[arm.name], base).se,
                     "p": None if base is None else welch(e5[arm.name], base).p})
    return pd.DataFrame(rows)


def table2(df: pd.DataFrame) -> pd.DataFrame:
    """Appendix Table II (learning rates) beside the rates we ran, and, where they differ, both accuracies."""
    e1, e2, e5 = final(df), final(df, "E2: Fig. 5"), final(df, "E5: sensitivity")
    ours = {a.name: a for a in TABLE1} | {"FCNN2": next(a for a in FIG5["FCNN depth"] if a.name == "L=3")}
    at_table2 = {base: arm.name for arm, base in SENSITIVITY}
    rows = []
    for model, paper_lr in PAPER_TABLE2.items():
        arm = ours[model]
        acc = e1.get(arm.name, e2.get(arm.name))
        other = e5.get(at_table2.get(arm.name, ""))
        rows.append({"model": model, "paper_lr": paper_lr, "ours_lr": arm.lr, "same": math.isclose(arm.lr, paper_lr),
                     "acc_ours_lr": None if acc is None else acc.mean(),
                     "acc_table2_lr": None if other is None else other.mean(),
                     "change": None if other is None or acc is None else other.mean() - acc.mean()})
    return pd.DataFrame(rows)


def positive_share(df: pd.DataFrame, test_positive: dict[int, float], *, seed0_share: float) -> pd.DataFrame:
    """E6b: each model with its pairs redrawn per run (`ours`) against the same model on the one seed-0 draw (E1),
    with the paper's value: does our draw explain why a model scores below the paper? `test_positive` maps a pair
    seed to its test set's share of positives."""
    redrawn, e1 = final(df, "E6b: pairs redrawn per run"), final(df)
    sub = df[df.experiment == "E6b: pairs redrawn per run"]
    rows = []
    for model, acc in redrawn.items():
        c = welch(acc, e1[model])
        runs = sub[sub.model == model].sort_values("seed")
        share = np.array([test_positive[s] for s in runs.seed])
        paper = PAPER_TABLE1[model][0]
        rows.append({"model": model, "seed0_pairs": e1[model].mean(), "ours": acc.mean(), "ours_std": acc.std(ddof=1),
                     "n_seeds": len(acc), "change": c.diff, "change_se": c.se, "p": c.p, "paper": paper,
                     "gap_seed0": e1[model].mean() - paper, "gap_redrawn": acc.mean() - paper,
                     "rho_share_acc": float(stats.spearmanr(share, runs.test_acc).statistic),
                     "redrawn_share_mean": share.mean(), "seed0_share": seed0_share})
    return pd.DataFrame(rows)


def ablation_table(df: pd.DataFrame) -> pd.DataFrame:
    e1 = final(df)
    rows = []
    for experiment, (_, arms) in ABLATIONS.items():
        acc = final(df, experiment)
        for arm in arms:
            if arm.name not in acc:
                continue
            base_name = arm.name.split(" ")[0]
            rows.append({"ablation": experiment, "model": arm.name, "ours": acc[arm.name].mean(),
                         "ours_std": acc[arm.name].std(ddof=1), "table1_protocol": e1[base_name].mean(),
                         "change": str(welch(acc[arm.name], e1[base_name]))})
    return pd.DataFrame(rows)

# The rung each model stands on (the synthesis page's ladder). WS2 shares one MLP branch between the two images:
# sharing without locality.
LADDER = {"WS1": "shared and local", "WS3": "shared and local", "WS2": "shared only", "FCNN3": "neither", "FCNN1": "neither"}


def ladder_rows(tables: dict) -> list[dict]:
    """This chapter's rows of the book's ladder of inductive bias (`synthesis.RUNGS`), read from its summary tables:
    {"rung", "setting", "model", "accuracy" (%), "heading" (the section it comes from)}."""
    return [{"rung": LADDER[r["model"]], "setting": "MNIST digit pairs", "model": r["model"], "accuracy": 100 * r["ours"],
             "heading": "Table I"} for r in tables.get("table1", []) if r["model"] in LADDER and pd.notna(r["ours"])]
