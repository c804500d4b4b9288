"""The FCN stage from sigma = 0 against sigma = 0.3 (the fitted start F0, F1 since issue 31; the converged start C0,
C1 before it), the authors' logged curves beside ours, and what the divergence measure measures."""
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
EXPERIMENTS = {"F0": 0.0, "F1": 0.3}
AUTHORS_OF = {"F0": "0", "F1": "1"}  # the authors' experiment at the same noise level
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
    """An FCN stage's steps per epoch, from the key of the CNN it started from (the leak trains on 80 % of its pool)."""
    key = record["key"]["from"]
    n = key.get("subset") or (int(0.8 * key["leak_pool"]) if key["leak"] else key["train"])
    return -(-n // key["batch_size"])


def frame(by_seed: dict[int, dict]) -> pd.DataFrame:
    """summary.json's `converged_start` (the fitted start since issue 31): per sigma, seed and FCN step, the cosine distance at r = 1 (layers 1-3), the
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
