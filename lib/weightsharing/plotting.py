"""One house style for every figure: mean line with a band over seeds, the paper's values as hollow markers."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PAPER_MARKER = dict(marker="o", markerfacecolor="none", markersize=7, linestyle="none", markeredgewidth=1.4)


def style() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 90, "axes.titlesize": "medium",
                         "legend.fontsize": "small", "legend.frameon": False})


def band(ax, df: pd.DataFrame, *, x: str, y: str, hue: str, spread: str = "std", order=None, colors=None,
         linestyle="-", labels: bool = True, alpha: float = 0.18) -> dict:
    """Mean of `y` over rows sharing (`hue`, `x`), drawn as a line with a +-1 std (or s.e.) band.

    Returns {hue value: colour} so a second call (e.g. train curves, dashed) can reuse the colours.
    """
    order = order if order is not None else list(dict.fromkeys(df[hue]))
    palette = colors or dict(zip(order, sns.color_palette(n_colors=len(order))))
    for key in order:
        g = df[df[hue] == key].groupby(x)[y]
        mean, err = g.mean(), g.std(ddof=1) if spread == "std" else g.sem(ddof=1)
        err = err.fillna(0)
        ax.plot(mean.index, mean.values, color=palette[key], linestyle=linestyle, label=str(key) if labels else None)
        ax.fill_between(mean.index, (mean - err).values, (mean + err).values, color=palette[key], alpha=alpha, lw=0)
    return palette


def paper_points(ax, xs, ys, *, color, label: str | None = None) -> None:
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    ok = ~np.isnan(ys)
    ax.plot(xs[ok], ys[ok], color=color, label=label, **PAPER_MARKER)


def panels(n: int, *, width: float = 4.2, height: float = 3.3, sharey: bool = True):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), sharey=sharey, squeeze=False, layout="constrained")
    return fig, list(axes[0])
