"""Figs. 1-3 and the FGSM samples."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ... import data, plotting
from .models import DATASETS, FGSM_EPS, FULL, IMAGE_MODELS, SAMPLE_IMAGES, TREE_MODELS, TREE_SIZES
from .analysis import PAPER_FIG1, PAPER_FIG3, PAPER_FIG3_SIZES


# ============================================================================================== figures

def figure1(tree: pd.DataFrame, *, constant: bool = False):
    sub = tree[tree.constant == constant]
    noises = sorted(sub.noise.unique())
    fig, axes = plotting.panels(len(noises), sharey=True)
    colors = None
    for ax, noise in zip(axes, noises):
        g = sub[sub.noise == noise]
        colors = plotting.band(ax, g, x="n_train", y="test_mse", hue="model", order=list(TREE_MODELS), spread="se")
        if not constant:
            for m in TREE_MODELS:
                plotting.paper_points(ax, TREE_SIZES, PAPER_FIG1[noise][m], color=colors[m])
        ax.set(title=f"ε = {noise:g}" + (" (constant offset)" if constant else ""), xlabel="training examples")
        ax.set_xscale("log", base=2)
        ax.set_yscale("symlog", linthresh=0.01)
    axes[0].set_ylabel("test MSE (mean ± s.e. over trials)")
    axes[-1].plot([], [], color="grey", **plotting.PAPER_MARKER, label="paper (digitized)")
    axes[-1].legend(loc="upper right")
    return fig


def figure2(extras: dict, n_values=(512, 4096)):
    import matplotlib.pyplot as plt

    n_values = [n for n in n_values if ("WeightNet", n) in extras]
    fig, axes = plt.subplots(len(n_values), 4, figsize=plotting.size(14, 3.2 * len(n_values)), squeeze=False,
                             layout="constrained")
    for row, n in zip(axes, n_values):
        theta = extras[("WeightNet", n)]["theta"][0][0]
        w = np.array(extras[("WeightNet", n)]["layer1"]["0"])
        loc = np.array(extras[("LocalNet", n)]["layer1"]["0"]).reshape(-1, 2)
        panels = [(w[0::2], theta[0], "WeightNet, even entries"), (w[1::2], theta[1], "WeightNet, odd entries"),
                  (loc[:, 0], theta[0], "LocalNet, left weights"), (loc[:, 1], theta[1], "LocalNet, right weights")]
        for ax, (values, t, title) in zip(row, panels):
            ax.hist(values, bins=30, color="C0")
            for sign in (-1, 1):
                ax.axvline(sign * t, color="C3", lw=1, ls="--")
            ax.set(title=f"{title}\n(n = {n})", yticks=[])
    return fig


def figure3(images: pd.DataFrame):
    ours = images[images.protocol == "ours"].copy()
    full_x = {"mnist": 6000, "cifar10": 5000}
    fig, axes = plotting.panels(2, sharey=False)
    for ax, dataset in zip(axes, DATASETS):
        g = ours[ours.dataset == dataset].copy()
        g["x"] = g.per_class.where(g.per_class != FULL, full_x[dataset])
        colors = plotting.band(ax, g, x="x", y="clean_acc", hue="model", order=list(IMAGE_MODELS), spread="se")
        xs = [k if k < 10000 else full_x[dataset] for k in PAPER_FIG3_SIZES]
        for m in IMAGE_MODELS:
            plotting.paper_points(ax, xs, PAPER_FIG3[dataset][m], color=colors[m])
        ax.set(xscale="log", title={"mnist": "MNIST", "cifar10": "CIFAR-10"}[dataset],
               xlabel="training examples per class (rightmost: full set)", ylabel="test accuracy")
    axes[1].plot([], [], color="grey", **plotting.PAPER_MARKER, label="paper (digitized)")
    axes[1].legend(loc="lower right")
    return fig


def figure_fgsm_samples(images: pd.DataFrame, datasets: dict[str, data.Dataset]):
    """Original test images and their FGSM versions against WeightNet and LocalNet (largest FGSM size, trial 0)."""
    import matplotlib.pyplot as plt

    sub = images[images.sample_signs.notna()]
    fig, axes = plt.subplots(6, SAMPLE_IMAGES, figsize=plotting.size(SAMPLE_IMAGES * 1.2, 6 * 1.25), layout="constrained")
    for block, dataset in enumerate(DATASETS):
        x = data.to_float(datasets[dataset].x_test[:SAMPLE_IMAGES])
        rows = [("original", x)]
        for model in ("WeightNet", "LocalNet"):
            rec = sub[(sub.dataset == dataset) & (sub.model == model)]
            if len(rec):
                signs = torch.tensor(rec.sample_signs.iloc[0], dtype=torch.float32).view_as(x)
                rows.append((f"FGSM vs {model}", (x + FGSM_EPS[dataset] * signs).clamp(-1, 1)))
        for r, (label, imgs) in enumerate(rows):
            for c in range(SAMPLE_IMAGES):
                ax = axes[3 * block + r, c]
                img = (imgs[c] * 0.5 + 0.5).permute(1, 2, 0).squeeze(-1).numpy()
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
                ax.set_xticks([]), ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(f"{dataset}\n{label}")
    return fig
