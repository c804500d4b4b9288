"""The converged start (C0: sigma = 0, C1: sigma = 0.3), the authors' logged curves beside ours, and what the
divergence measure measures."""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .models import FEATURES

AUTHORS_CURVES = Path(__file__).with_name("authors_fcn_curves.csv")
AUTHORS_STEPS_PER_EPOCH = 375  # 48 000 training rows, batch 128
# The authors' Exp 1 logs (Results/cifar_30aug.csv, last CNN and FCN rows): accuracy on their (leaky) validation
# images under +-30 % translation and under noise, as fractions.
AUTHORS_ROBUSTNESS = {"translate": {"CNN": 0.369371653, "FCN": 0.372731864},
                      "noise": {"CNN": 0.955309153, "FCN": 0.938592076}}
EXPERIMENTS = {"C0": 0.0, "C1": 0.3}
AUTHORS_OF = {"C0": "0", "C1": "1"}  # the authors' experiment at the same noise level
LAYER1_POSITIONS = ((FEATURES[0][4] - FEATURES[0][2]) // FEATURES[0][3] + 1) ** 2


@lru_cache(maxsize=1)
def _read_authors_curves() -> pd.DataFrame:
    return pd.read_csv(AUTHORS_CURVES, comment="#", dtype={"experiment": str})


def authors_curves() -> pd.DataFrame:
    """The authors' FCN-stage rows (read once; each caller gets its own copy)."""
    return _read_authors_curves().copy()


def authors_at(steps, experiment: str, column: str = "cos_1") -> np.ndarray:
    """The authors' logged value at these FCN step counts, linear between their per-epoch rows."""
    a = _read_authors_curves()
    a = a[a.experiment == experiment]
    return np.interp(np.asarray(steps, float), a.steps.to_numpy(float), a[column].to_numpy(float))


def steps_per_epoch(record: dict) -> int:
    key = record["key"]["from"]
    return -(-key["subset"] // key["batch_size"])


def frame(by_seed: dict[int, dict]) -> pd.DataFrame:
    """summary.json's `converged_start`: per sigma, seed and FCN step, the cosine distance at r = 1 (layers 1-3), the
    unnormalised layer-1 drift from the converted weights and the layer-1 norm."""
    rows = []
    for seed, records in by_seed.items():
        for name, sigma in EXPERIMENTS.items():
            rec = records.get(f"{name}/FCN")
            if rec is None:
                continue
            h, start, spe = rec["history"], rec["distances_at_conversion"], steps_per_epoch(rec)
            points = [(0, start)] + [(e, {k: h[k][i] for k in h}) for i, e in enumerate(h["epoch"])]
            for epoch, m in points:
                rows.append({"sigma": sigma, "experiment": name, "seed": seed, "step": epoch * spe,
                             "cosine_r1": m["cos_l1_r1"], "euclid_r1": m["euclid_l1_r1"], "drift": m.get("drift_l1"),
                             "layer1_norm": m.get("norm_l1"), "cosine_l2": m["cos_l2_r1"], "cosine_l3": m["cos_l3_r1"]})
    return pd.DataFrame(rows)


def regime(by_seed: dict[int, dict]) -> tuple[bool, str]:
    """Every converged-start CNN was stopped by early stopping before its cap."""
    n, stopped, late = 0, 0, []
    for seed, records in by_seed.items():
        for name in EXPERIMENTS:
            rec = records.get(f"{name}/CNN")
            if rec is None:
                continue
            n += 1
            cap = rec["key"]["cnn"]["epochs"]
            if rec["stopped_at"] < cap:
                stopped += 1
            else:
                late.append(f"{name} seed {seed}")
    if not n:
        return False, "no converged-start CNNs"
    return not late, (f"{stopped} of {n} converged-start CNNs were stopped by early stopping before their cap"
                      + (f"; ran to the cap: {', '.join(late)}" if late else ""))


def ratio_table(cs: pd.DataFrame) -> pd.DataFrame:
    """C1 / C0 cosine distance (layer 1, r = 1), means over seeds, at our last measurement at or before a few step
    counts, beside the authors' Exp 1 / Exp 0 ratio interpolated at exactly those steps."""
    last = int(cs.groupby(["experiment", "seed"]).step.max().min())
    marks = sorted({s for s in (100, 200, AUTHORS_STEPS_PER_EPOCH, 500, 750, last) if s <= last})
    mean = cs.groupby(["experiment", "step"]).cosine_r1.mean()
    rows = []
    for step in marks:
        near = int(cs.step[cs.step <= step].max())  # our last measurement at or before this step count
        ours0, ours1 = mean.get(("C0", near)), mean.get(("C1", near))
        a0, a1 = authors_at([near], "0")[0], authors_at([near], "1")[0]
        rows.append({"steps": near, "ours_C0": ours0, "ours_C1": ours1,
                     "ours_ratio": ours1 / ours0 if ours0 else float("nan"), "authors_exp0": a0, "authors_exp1": a1,
                     "authors_ratio": a1 / a0 if a0 else float("nan")})
    return pd.DataFrame(rows)


def measure_relation(dist: pd.DataFrame, cs: pd.DataFrame) -> pd.DataFrame:
    """Cosine distance over squared Euclidean distance (layer 1, r = 1), per point of every FCN stage, ours and the
    authors'. If the position blocks of a layer share one norm, as a converted CNN's do, 1 - cos(u, v) =
    |u - v|^2 / (2 |u|^2) exactly, and with the weight divided by its norm |u|^2 = 1 / positions: the ratio is
    positions / 2, a constant, so the two measures carry the same information."""
    ours = pd.concat([dist[["experiment", "euclid_l1_r1", "cos_l1_r1"]].rename(columns={"euclid_l1_r1": "euclid",
                                                                                        "cos_l1_r1": "cosine"}),
                      cs[["experiment", "euclid_r1", "cosine_r1"]].rename(columns={"euclid_r1": "euclid",
                                                                                  "cosine_r1": "cosine"})])
    a = authors_curves()
    theirs = pd.DataFrame({"experiment": "authors Exp " + a.experiment, "euclid": a.dist_1, "cosine": a.cos_1})
    both = pd.concat([ours.assign(source="ours"), theirs.assign(source="authors")])
    both = both[both.euclid > 0]
    return both.assign(ratio=both.cosine / both.euclid ** 2)


def relation_headline(rel: pd.DataFrame) -> dict:
    out = {"rel_expected": LAYER1_POSITIONS / 2}
    for source, g in rel.groupby("source"):
        out[f"rel_{source}_median"] = float(g.ratio.median())
        out[f"rel_{source}_lo"], out[f"rel_{source}_hi"] = (float(q) for q in g.ratio.quantile([0.05, 0.95]))
    return out


def norm_change(cs: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and seed: log(layer-1 norm at the end of the FCN stage / at conversion) and the drift."""
    rows = []
    for (exp, seed), g in cs.groupby(["experiment", "seed"]):
        g = g.sort_values("step")
        rows.append({"experiment": exp, "seed": seed, "log_norm_ratio": math.log(g.layer1_norm.iloc[-1] / g.layer1_norm.iloc[0]),
                     "drift": g.drift.iloc[-1], "norm_start": g.layer1_norm.iloc[0], "norm_end": g.layer1_norm.iloc[-1],
                     "cosine_end": g.cosine_r1.iloc[-1], "step": g.step.iloc[-1]})
    return pd.DataFrame(rows)
