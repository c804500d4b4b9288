"""Figures of the beta-lasso chapter: Table 2 as a dot plot, Fig. 3 (non-zeros per layer), Fig. 4 (filters), E4."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ... import plotting
from .analysis import DATASETS, ROWS, e1
from .ladder import at_top
from .models import dense_counts, layer1_reference_counts
from ...store import unpack_float16

NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN"}


def table2_dots(t2: pd.DataFrame):
    """Per dataset that ran: ours (mean ± std over seeds) beside the original's 4000-epoch and the reproduction's
    100-epoch accuracies, one line per Table 2 row."""
    ran = [d for d in DATASETS if (t2[t2.dataset == d].status == "ran").any()]
    fig, axes = plotting.panels(len(ran), width=4.4, height=3.4, sharey=True)
    colors = plotting.series_colors(3)
    labels = [f"{m} {t}" for m, t in ROWS]
    for ax, d in zip(axes, ran):
        g = t2[t2.dataset == d].set_index(["model", "training"]).loc[list(ROWS)]
        y = np.arange(len(ROWS))[::-1]
        ax.errorbar(g.ours, y, xerr=g.ours_std.fillna(0), fmt="o", color=colors[0], label="ours")
        ax.plot(g.paper, y, color=colors[1], label="original (4000 ep.)", **plotting.PAPER_MARKER)
        ax.plot(g.reproduction, y, "x", color=colors[2], label="reproduction (100 ep.)", markersize=7)
        ax.set(title=NAMES[d], xlabel="test accuracy (%)", yticks=y, yticklabels=labels)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3)
    return fig


def figure3(nnz: pd.DataFrame, *, alpha: int, classes: dict[str, int]):
    """Non-zero weights of S-FC's three layers against epoch under beta-lasso (beta = 50), one line per dataset;
    dashed: dense counts, and in panel 1 the first-layer counts of S-LOCAL and S-CONV (from the architectures)."""
    fig, axes = plotting.panels(3, width=4.2, height=3.2, sharey=False)
    colors = dict(zip(DATASETS, plotting.series_colors(3)))
    ref = layer1_reference_counts(alpha)
    for layer, ax in enumerate(axes, 1):
        for d, g in nnz[nnz.layer == layer].groupby("dataset", sort=False):
            dense = dense_counts(alpha, classes[d])[layer - 1]
            mean = pd.concat([pd.Series({0: dense}), g.groupby("epoch").nnz.mean()])  # epoch 0: dense at init
            ax.plot(mean.index, mean.values, marker=".", color=colors[d], label=NAMES[d])
            ax.axhline(dense, color=colors[d], ls="--", lw=1)
        if layer == 1:
            for name, ls in (("S-LOCAL", ":"), ("S-CONV", "-.")):
                ax.axhline(ref[name], color="0.35", ls=ls, lw=1.2, label=f"{name} layer 1")
        ax.set(yscale="log", xlabel="epoch", title=f"layer {layer}", ylabel="non-zero weights" if layer == 1 else None)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(loc="lower left")
    return fig


def _rgb(f: np.ndarray) -> np.ndarray:
    """(3, 32, 32) filter -> RGB image: scaled by its max |w|, 0 -> grey; exact zeros black."""
    scale = np.abs(f).max() or 1.0
    img = 0.5 + 0.5 * f / scale
    img[:, (f == 0).all(0)] = 0.0
    return img.transpose(1, 2, 0)


def figure4(df: pd.DataFrame):
    """16 first-layer filters per model (CIFAR-10, seed 0), drawn at random among those with >= 20 non-zeros."""
    d = e1(df)
    d = d[(d.dataset == "cifar10") & (d.seed == 0)]
    rows = [("S-FC SGD", d[(d.model == "S-FC") & (d.optimizer == "SGD")]),
            ("S-FC β-lasso β = 50", d[(d.model == "S-FC") & (d.beta == 50)]),
            ("S-LOCAL SGD", d[d.model == "S-LOCAL"])]
    rows = [(name, g.iloc[0].record["filters"]) for name, g in rows if len(g) and "filters" in g.iloc[0].record]
    n = max(unpack_float16(f).shape[0] for _, f in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=plotting.size(0.8 * n, 0.95 * len(rows)), squeeze=False,
                             gridspec_kw=dict(wspace=0.05, hspace=0.3))
    for r, (name, packed) in enumerate(rows):
        filters = unpack_float16(packed)
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(filters):
                ax.imshow(_rgb(filters[c]), interpolation="nearest")
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize="small")
    return fig


def figure_e4(lad: pd.DataFrame, *, alpha: int):
    """The ladder's top rung, its first seed: layer-1 non-zeros and training accuracy per epoch of beta-lasso
    (beta = 50) with the budget-matched lambda against the paper's."""
    top = pd.concat([at_top(lad, "β-lasso (paper λ)"), at_top(lad, "β-lasso (matched λ)")])
    top = top[top.seed == top.seed.min()]
    fig, axes = plotting.panels(2, width=4.2, height=3.2, sharey=False)
    for (arm, g), color in zip(top.groupby("arm"), plotting.series_colors(2)):
        r = g.iloc[0]
        hist = r.record["history"]
        label = "paper λ (k = 1)" if "paper" in arm else f"budget-matched λ (k = {r.k:.0f})"
        axes[0].plot(hist["epoch"], [n[0] for n in hist["nnz"]], marker=".", color=color, label=label)
        axes[1].plot(hist["epoch"], hist["train_acc"], marker=".", color=color, label=label)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].axhline(dense_counts(alpha, 10)[0], color="0.35", ls="--", lw=1, label="dense")
    axes[0].set(yscale="log", xlabel="epoch", ylabel="layer-1 non-zero weights", title="sparsity")
    axes[1].set(xlabel="epoch", ylabel="training accuracy (flipped images)", title="fit")
    axes[0].legend()
    return fig


def ladder_figure(lad: pd.DataFrame, *, alpha: int):
    """The epoch ladder: per arm, mean ± std over seeds at each rung of test accuracy, training accuracy (clean
    images), layer-1 non-zero share and the locality excess over the shuffle null; S-LOCAL and SGD with crops (top
    rung only) as single markers."""
    from .ladder import ARCHITECTURES, ARMS, TOP_ONLY, WIDTH_ARM

    dense1 = dense_counts(alpha, 10)[0]
    d = lad.assign(test=100 * lad.test_acc, train=100 * lad.clean_train_acc, share1=100 * lad.nnz1 / dense1,
                   excess=lad.ell_excess)
    panels = (("test", "test accuracy (%)"), ("train", "training accuracy (%)"),
              ("share1", "layer-1 non-zeros (% of dense)"), ("excess", "ℓ − shuffled ℓ"))
    fig, axes = plotting.panels(4, width=4.4, height=2.9, sharey=False, cols=2)
    single = (*TOP_ONLY, WIDTH_ARM, *ARCHITECTURES)  # the top rung only: markers without a line
    shown = [a for a in (*ARMS, *single) if (d.arm == a).any()]
    colors = dict(zip(shown, plotting.series_colors(len(shown))))
    markers = dict(zip(shown, "osD^vPX*h"))
    for ax, (col, label) in zip(axes, panels):
        for arm in shown:
            g = d[d.arm == arm].groupby("epochs")[col]
            if not len(g):
                continue
            m, sd = g.mean(), g.std().fillna(0)
            ax.errorbar(m.index, m.values, yerr=sd.values, marker=markers[arm], color=colors[arm], capsize=2,
                        label=arm, linestyle="-" if arm in ARMS else "none")
        ax.set(xscale="log", xlabel="epochs (rung)", title=label)
        ax.set_xticks(sorted(d.epochs.unique()), [str(e) for e in sorted(d.epochs.unique())])
        ax.minorticks_off()
    axes[2].set_yscale("log")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize="small")
    return fig
