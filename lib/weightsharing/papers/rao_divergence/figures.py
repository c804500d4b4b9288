"""Figures of the Rao et al. chapter: both stages' curves on one epoch axis, and the divergence series."""
from __future__ import annotations

import matplotlib.pyplot as plt

from ... import plotting
from .analysis import PAPER_CSV, SERIES, distance_frame, stages

TITLES = {"euclid_l1_r1": "Euclidean, r = 1", "euclid_l1_r4": "Euclidean, r = 4", "cos_l1_r1": "1 − cosine, r = 1",
          "cos_l1_r4": "1 − cosine, r = 4"}
NAMES = {"0": "Exp 0 (σ 0)", "1": "Exp 1 (σ 0.3)", "2": "Exp 2 (σ 0.5)", "3": "Exp 3 (σ 0.5, short)", "L": "leak (σ 0)"}


def curves(records: dict):
    """Per experiment: loss and accuracy of the CNN stage then the FCN stage on one epoch axis (paper Figs. 1, 3,
    5, 7); solid = validation (clean), dashed = training (augmented batches); the vertical line is the conversion."""
    exps = list(stages(records))
    fig, axes = plt.subplots(len(exps), 2, figsize=(8.6, 2.3 * len(exps)), squeeze=False, layout="constrained")
    colors = plotting.series_colors(2)
    for row, exp in zip(axes, exps):
        cnn = records["2/CNN"] if exp == "3" else records[f"{exp}/CNN"]
        n_cnn = cnn["key"]["snapshot_at"] if exp == "3" else cnn["stopped_at"]
        fcn = records[f"{exp}/FCN"]
        for ax, metric in zip(row, ("loss", "acc")):
            for stage, rec, offset, color in (("CNN", cnn, 0, colors[0]), ("FCN", fcn, n_cnn, colors[1])):
                h = rec["history"]
                keep = [i for i, e in enumerate(h["epoch"]) if stage == "FCN" or e <= n_cnn]
                xs = [h["epoch"][i] + offset for i in keep]
                ax.plot(xs, [h[f"val_{metric}"][i] for i in keep], color=color, label=f"{stage} validation")
                ax.plot(xs, [h[f"train_{metric}"][i] for i in keep], color=color, ls="--", label=f"{stage} training")
            ax.axvline(n_cnn + 0.5, color="0.4", lw=1)
            ax.set(ylabel=f"{NAMES[exp]}\n{metric}" if metric == "loss" else "accuracy")
        row[0].set_xlabel("epoch") if exp == exps[-1] else None
        row[1].set_xlabel("epoch") if exp == exps[-1] else None
    axes[0][1].legend(loc="lower right")
    return fig


def divergence(records: dict):
    """The four first-layer distance series against FCN epochs, one line per experiment (the summary panel of all
    experiments is each panel); hollow markers: the authors' CSV values for Exp 0 and 1 (epochs completed). Log
    scale, from FCN epoch 1 (every series is 0 at conversion by construction)."""
    dist = distance_frame(records)
    fig, axes = plotting.panels(4, width=4.5, height=3.2, sharey=False, cols=2)
    colors = dict(zip(NAMES, plotting.series_colors(len(NAMES))))
    for ax, col in zip(axes, SERIES):
        for exp, g in dist[dist.epoch > 0].groupby("experiment", sort=False):
            ax.plot(g.epoch, g[col], marker=".", color=colors[exp], label=NAMES[exp])
            if exp in PAPER_CSV:
                pts = {e: v[SERIES.index(col)] for e, v in PAPER_CSV[exp].items() if e <= g.epoch.max()}
                plotting.paper_points(ax, list(pts), list(pts.values()), color=colors[exp])
        ax.set(title=TITLES[col], xlabel="FCN epochs", yscale="log")
    axes[0].legend()
    return fig
