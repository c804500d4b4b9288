"""One house style for every figure: mean line with a band over seeds, the paper's values as hollow markers."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PAPER_MARKER = dict(marker="o", markerfacecolor="none", markersize=7, linestyle="none", markeredgewidth=1.4)
# Okabe and Ito's colour-blind-safe palette, ordered so that the first four (most figures) are far apart in hue and
# lightness for every common colour-vision deficiency; seaborn's "colorblind" puts two oranges in its first four.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]
DPI = 100
MAX_WIDTH = 9.0  # inches: 900 px at DPI, the content column of the book at a 1280 px window; never shown shrunk


def style() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({"figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 10, "axes.titlesize": 10.5,
                         "axes.labelsize": 10, "xtick.labelsize": 9.5, "ytick.labelsize": 9.5, "legend.fontsize": 9.5,
                         "legend.frameon": False, "figure.titlesize": 11})


def series_colors(n: int) -> list:
    """n colours of the house palette (it repeats past eight, so keep a panel's series to eight)."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def band(ax, df: pd.DataFrame, *, x: str, y: str, hue: str, spread: str = "std", order=None, colors=None,
         linestyle="-", labels: bool = True, alpha: float = 0.18) -> dict:
    """Mean of `y` over rows sharing (`hue`, `x`), drawn as a line with a +-1 std (or s.e.) band.

    Returns {hue value: colour} so a second call (e.g. train curves, dashed) can reuse the colours.
    """
    order = order if order is not None else list(dict.fromkeys(df[hue]))
    palette = colors or dict(zip(order, series_colors(len(order))))
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


def size(width: float, height: float) -> tuple[float, float]:
    """(width, height) in inches scaled down, aspect kept, to fit MAX_WIDTH: the figure is then shown at the size it
    is drawn, so its text stays at the size set in `style`."""
    scale = min(1.0, MAX_WIDTH / width)
    return width * scale, height * scale


def panels(n: int, *, width: float = 4.2, height: float = 3.3, sharey: bool = True, cols: int | None = None):
    """n panels in rows of `cols` (default: one row), each `width` x `height` inches before fitting MAX_WIDTH."""
    cols = cols or n
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=size(width * cols, height * rows), sharey=sharey, squeeze=False,
                             layout="constrained")
    axes = list(axes.flat)
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]
