"""Where the authors' 35-47x comes from (issue 31): the Exp 1 / Exp 0 divergence ratio of our pipeline's variants
beside the same ratio measured on the authors' own code (an external run, `authors_code_run.csv`) and beside their
published CSV."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import converged as CS
from .analysis import distance_steps, stages

AUTHORS_CODE = Path(__file__).with_name("authors_code_run.csv")
MARKS = (375, 750)  # FCN steps: one and two of the authors' epochs

# Our variants: (σ = 0 experiment, σ = 0.3 experiment, the CNN, the FCN stage's images, its noise feed)
OURS = (("F0", "F1", "fitted", "own", "reshuffled"),
        ("F0", "F1 fixed", "fitted", "own", "fixed"),
        ("F0 fresh", "F1 fresh", "fitted", "fresh", "reshuffled"),
        ("C0", "C1", "early-stopped", "own", "reshuffled"))


def at(s: pd.Series, step: float) -> float:
    return float(np.interp(step, s.index.to_numpy(float), s.to_numpy(float))) if step <= s.index.max() else np.nan


def ours(by_seed: dict[int, dict]) -> pd.DataFrame:
    """Per variant and seed: both experiments' distances at MARKS and at their last common step."""
    rows = []
    for e0, e1, cnn, images, feed in OURS:
        for seed, records in by_seed.items():
            if f"{e0}/FCN" not in records or f"{e1}/FCN" not in records:
                continue
            d = distance_steps(records, (e0, e1))  # 1 - cos at r = 1 of layer 1 against FCN steps, 0 at conversion
            s0, s1 = (d[d.experiment == e].set_index("steps").cos_l1_r1 for e in (e0, e1))
            last = int(min(s0.index.max(), s1.index.max()))
            fit = [cnn_rec["clean_train_acc"] for cnn_rec, _ in stages(records, (e0, e1)).values()]
            epochs = records[f"{e0}/FCN"]["key"]["from"]["cnn"]["epochs"]  # the fitted start's length differs by phase
            row = {"cnn": f"{cnn} {epochs} ep" if cnn == "fitted" else cnn, "images": images, "feed": feed,
                   "seed": seed, "last": last, "cnn_fit": float(np.mean(fit))}
            for step, tag in [(m, str(m)) for m in MARKS] + [(last, "last")]:
                row[f"exp0_{tag}"], row[f"exp1_{tag}"] = at(s0, step), at(s1, step)
            rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["cnn", "images", "feed", "seed"])


def authors_code() -> pd.DataFrame:
    return pd.read_csv(AUTHORS_CODE, comment="#")


def table(by_seed: dict[int, dict]) -> pd.DataFrame:
    """One row per source and variant (CNN, with its epochs where fixed · FCN images · noise feed): Exp 0 and Exp 1 at
    750 steps, the ratio at 375 and 750 steps and at the end of the FCN stage (ours: geometric mean over seeds), beside
    the authors' code and their CSV."""
    rows = []
    per = ours(by_seed)
    for (cnn, images, feed), g in per.groupby(["cnn", "images", "feed"], sort=False):
        geo = lambda tag: float(np.exp(np.mean(np.log(g[f"exp1_{tag}"] / g[f"exp0_{tag}"]))))
        rows.append({"source": "ours", "cnn": cnn, "images": images, "feed": feed, "seeds": len(g),
                     "exp0_750": g.exp0_750.mean(), "exp1_750": g.exp1_750.mean(), "ratio_375": geo("375"),
                     "ratio_750": geo("750"), "ratio_end": geo("last"), "end_steps": int(g["last"].min()),
                     "cnn_fit": 100 * g.cnn_fit.mean()})
    code = authors_code()
    for variant, g in code.groupby("variant", sort=False):
        first = g.iloc[0]
        row = {"source": f"their code, {variant}", "cnn": first.cnn, "images": first.images, "feed": first.feed,
               "seeds": 1}
        if g.exp0.notna().all():
            by = g.set_index("steps")
            ratio = by.exp1 / by.exp0
            row.update(exp0_750=by.exp0.get(750), exp1_750=by.exp1.get(750), ratio_375=ratio.iloc[0],
                       ratio_750=ratio.get(750), ratio_end=ratio.iloc[-1], end_steps=int(by.index[-1]))
        else:
            row.update(ratio_end=first.ratio)
        rows.append(row)
    csv = CS.authors_curves()
    last = int(csv[csv.experiment == "1"].steps.max())
    end = min(1125, last)  # the authors' CSV row nearest their code's ~1 000 FCN steps
    a = {s: (CS.authors_at([s], "0")[0], CS.authors_at([s], "1")[0]) for s in (*MARKS, end)}
    rows.append({"source": "their CSV", "cnn": "fitted", "images": "re-split", "feed": "fixed",
                 "seeds": 1, "exp0_750": a[750][0], "exp1_750": a[750][1], "ratio_375": a[375][1] / a[375][0],
                 "ratio_750": a[750][1] / a[750][0], "ratio_end": a[end][1] / a[end][0], "end_steps": end})
    out = pd.DataFrame(rows)
    variant = out.cnn + " · " + out.images + " · " + out.feed  # one column: the table must fit the page
    return out.drop(columns=["cnn", "images", "feed"]).assign(variant=variant)[
        ["source", "variant", *[c for c in out.columns if c not in ("source", "cnn", "images", "feed")]]]
