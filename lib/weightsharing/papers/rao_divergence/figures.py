"""Figures of the Rao et al. chapter: both stages' curves on one epoch axis, and the divergence series."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ... import plotting
from . import converged
from .analysis import AUTHOR_COLUMNS, SERIES, distance_frame, stages

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
    """The four first-layer distance series against FCN epochs, one line per experiment; thin dashed lines: the
    authors' logged curves of Exp 0 and 1 per their FCN epoch (375 steps each; ours are 40), over our epoch range.
    Log scale, from FCN epoch 1 (every series is 0 at conversion by construction)."""
    dist = distance_frame(records)
    authors = converged.authors_curves().assign(epoch=lambda a: a.csv_epoch - 1)
    fig, axes = plotting.panels(4, width=4.5, height=3.2, sharey=False, cols=2)
    colors = dict(zip(NAMES, plotting.series_colors(len(NAMES))))
    for ax, col in zip(axes, SERIES):
        for exp, g in dist[dist.epoch > 0].groupby("experiment", sort=False):
            ax.plot(g.epoch, g[col], marker=".", color=colors[exp], label=NAMES[exp])
            theirs = authors[(authors.experiment == exp) & (authors.epoch > 0) & (authors.epoch <= g.epoch.max())]
            if len(theirs):
                ax.plot(theirs.epoch, theirs[AUTHOR_COLUMNS[col]], color=colors[exp], ls="--", lw=1,
                        label=f"authors' {NAMES[exp]}")
        ax.set(title=TITLES[col], xlabel="FCN epochs", yscale="log")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=4, fontsize="small")
    return fig


def converged_start(cs):
    """The fitted start's FCN stage against steps, mean ± std over seeds: cosine distance (layer 1, r = 1) beside the
    authors' Exp 0 / Exp 1 curves at the same step counts (dashed), the unnormalised layer-1 drift, the layer-1
    norm."""
    fig, axes = plotting.panels(3, width=4.2, height=3.2, sharey=False)
    names = {e: f"{e} (σ {s:g})" for e, s in cs.groupby("experiment").sigma.first().items()}
    d = cs[cs.step > 0].assign(name=lambda x: x.experiment.map(names))
    colors = plotting.band(axes[0], d, x="step", y="cosine_r1", hue="name", order=list(names.values()))
    steps = sorted(d.step.unique())
    for exp, name in names.items():
        axes[0].plot(steps, converged.authors_at(steps, converged.AUTHORS_OF[exp]), color=colors[name], ls="--",
                     lw=1.2, label=f"authors' Exp {converged.AUTHORS_OF[exp]}")
    plotting.band(axes[1], d, x="step", y="drift", hue="name", order=list(names.values()), colors=colors)
    plotting.band(axes[2], cs.assign(name=cs.experiment.map(names)), x="step", y="layer1_norm", hue="name",
                  order=list(names.values()), colors=colors)
    axes[0].set(yscale="log", title="1 − cosine, layer 1, r = 1", xlabel="FCN steps")
    axes[1].set(title="layer-1 drift |W − W₀|", xlabel="FCN steps")
    axes[2].set(title="layer-1 norm |W|", xlabel="FCN steps")
    axes[0].legend(fontsize="small")
    return fig


def measure_relation(rel):
    """Cosine distance against squared Euclidean distance (layer 1, r = 1) for every measured point, ours and the
    authors'; the line is cosine = (positions / 2) x Euclidean², what equal block norms imply."""
    fig, axes = plotting.panels(1, width=5.0, height=3.6)
    ax = axes[0]
    for (source, marker), color in zip((("ours", "o"), ("authors", "^")), plotting.series_colors(2)):
        g = rel[rel.source == source]
        ax.scatter(g.euclid ** 2, g.cosine, s=10, marker=marker, color=color, alpha=0.6, label=source, lw=0)
    x = np.geomspace((rel.euclid ** 2).min(), (rel.euclid ** 2).max(), 50)
    ax.plot(x, converged.LAYER1_POSITIONS / 2 * x, color="0.3", lw=1,
            label=f"cosine = {converged.LAYER1_POSITIONS // 2} × Euclidean²")
    ax.set(xscale="log", yscale="log", xlabel="Euclidean distance²", ylabel="1 − cosine")
    ax.legend(fontsize="small")
    return fig


def deeper_layers(by_seed: dict):
    """Cosine distance at r = 1 of layers 2 and 3 against FCN epochs, per experiment (mean over seeds)."""
    dist = pd.concat([distance_frame(r).assign(seed=s) for s, r in by_seed.items()])
    fig, axes = plotting.panels(2, width=4.5, height=3.2, sharey=True)
    colors = dict(zip(NAMES, plotting.series_colors(len(NAMES))))
    for ax, col, title in zip(axes, ("cos_l2_r1", "cos_l3_r1"), ("layer 2", "layer 3")):
        for exp, g in dist[dist.epoch > 0].groupby("experiment", sort=False):
            m = g.groupby("epoch")[col].mean()
            ax.plot(m.index, m.values, marker=".", color=colors[exp], label=NAMES[exp])
        ax.set(title=f"1 − cosine, {title}, r = 1", xlabel="FCN epochs", yscale="log")
    axes[0].legend(fontsize="small")
    return fig
