"""Figures 1-4: the Dirichlet draws, and accuracy against balance and determinism."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ... import plotting
from .analysis import main_runs


def sparsity_label(s: float) -> str:
    return f"s = {s:g}"


def figure1(alphas=(1e-3, 1e-2, 1e-1, 1, 10, 100), entries: int = 1000, seed: int = 0):
    """Dirichlet(α) parameters on 1000 entries as 25 x 40 heatmaps on one colour scale, entropy in the title."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    ps = [rng.dirichlet(np.full(entries, a)) for a in alphas]
    vmax = max(p.max() for p in ps)
    cols = 3
    fig, axes = plt.subplots(-(-len(alphas) // cols), cols, figsize=plotting.size(3.0 * cols, 2.3 * -(-len(alphas) // cols)),
                             layout="constrained")
    for ax, a, p in zip(axes.flat, alphas, ps):
        q = p[p > 0]
        im = ax.imshow(p.reshape(25, 40), vmin=0, vmax=vmax, cmap="viridis")
        ax.set(title=f"α = {a:g}\nH = {-(q * np.log(q)).sum():.2f} nats", xticks=[], yticks=[])
    fig.colorbar(im, ax=axes, shrink=0.8, label="p")
    return fig


def figure2(df: pd.DataFrame):
    fig, axes = plotting.panels(2, sharey=False)
    for ax, dataset in zip(axes, ("mnist", "cifar10")):
        d = main_runs(df, dataset)
        dirich = d[d.hash == "dirichlet"].assign(s=lambda x: x.sparsity.map(sparsity_label))
        if not len(dirich):
            continue
        colors = plotting.band(ax, dirich, x="alpha", y="test_acc", hue="s", spread="se")
        for s, g in d[d.hash == "uniform"].groupby("sparsity"):
            ax.axhline(g.test_acc.mean(), color=colors[sparsity_label(s)], ls="--", lw=1)
        ax.set(xscale="log", title=f"{dataset}: balance", xlabel="Dirichlet α (dashed: uniform hash)",
               ylabel="test accuracy")
        ax.legend()
    return fig


def figure3(df: pd.DataFrame):
    fig, axes = plotting.panels(2, sharey=False)
    markers = {"dirichlet": "o", "neighborhood": "s", "uniform": "^", "permuted_modulus": "D"}
    for ax, dataset in zip(axes, ("mnist", "cifar10")):
        d = main_runs(df, dataset)
        d = d[d.hash != "dense"]
        palette = dict(zip(sorted(d.sparsity.unique()), plotting.series_colors(d.sparsity.nunique())))
        for (kind, s), g in d.groupby(["hash", "sparsity"]):
            ax.scatter(g.entropy, g.test_acc, color=palette[s], marker=markers[kind], s=22, alpha=0.8,
                       label=sparsity_label(s) if kind == "dirichlet" else None)
        for kind, m in markers.items():
            ax.scatter([], [], color="grey", marker=m, label=kind.replace("_", " "))
        ax.set(title=f"{dataset}: accuracy vs entropy", xlabel="network entropy (nats)", ylabel="test accuracy")
        ax.legend()
    return fig


def figure4(df: pd.DataFrame):
    fig, axes = plotting.panels(2, sharey=False)
    for ax, dataset in zip(axes, ("mnist", "cifar10")):
        d = main_runs(df, dataset)
        nb = d[d.hash.isin(["neighborhood", "uniform"])].copy()
        if not len(nb):
            continue
        inf = 10 * max(nb.radius.max(), 1)
        nb["r"] = nb.radius.fillna(inf)
        nb["s"] = nb.sparsity.map(sparsity_label)
        colors = plotting.band(ax, nb, x="r", y="test_acc", hue="s", spread="se")
        for s, g in d[d.hash == "permuted_modulus"].groupby("sparsity"):
            ax.plot([0], [g.test_acc.mean()], marker="D", color=colors[sparsity_label(s)], linestyle="none")
        ax.set_xscale("symlog", linthresh=1)
        ticks = sorted(nb.r.unique())
        ax.set_xticks(ticks, [("∞" if t == inf else f"{t:g}") for t in ticks])
        ax.plot([], [], marker="D", color="grey", linestyle="none", label="permuted modulus (at r = 0)")
        ax.set(title=f"{dataset}: hash radius", xlabel="radius r (0 = modulus, ∞ = uniform)", ylabel="test accuracy")
        # below the axes: inside, the legend's grey diamond sat on a data line and read as a point
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    return fig
