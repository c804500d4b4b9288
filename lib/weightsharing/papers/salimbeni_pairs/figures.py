"""Figures 5-7 (curves over epochs) and every run's final accuracy."""
from __future__ import annotations

import pandas as pd

from ... import plotting
from .models import COUNTERPART, FIG5, PAPER_FIG5, PAPER_FIG6, PAPER_TABLE1, TABLE1


def _curves(ax, curves: pd.DataFrame, experiment: str, models: list[str], paper: dict[str, float] | None = None,
            *, title: str = "") -> None:
    sub = curves[(curves.experiment == experiment) & curves.model.isin(models)]
    colors = plotting.band(ax, sub, x="epoch", y="test_acc", hue="model", order=models)
    plotting.band(ax, sub, x="epoch", y="train_acc", hue="model", order=models, colors=colors, linestyle="--",
                  labels=False, alpha=0.0)
    last = sub.epoch.max()
    for m in models:
        if paper and paper.get(m) is not None:
            plotting.paper_points(ax, [last], [paper[m]], color=colors[m])
    ax.set(title=title, xlabel="epoch", ylim=(0.5, 1.01))
    ax.plot([], [], color="grey", **plotting.PAPER_MARKER, label="paper, final epoch")


def figure5(curves: pd.DataFrame):
    fig, axes = plotting.panels(3)
    for ax, (panel, arms) in zip(axes, FIG5.items()):
        models = [a.name for a in arms if a.name in set(curves[curves.experiment == "E2: Fig. 5"].model)]
        _curves(ax, curves, "E2: Fig. 5", models, PAPER_FIG5, title=panel)
    axes[0].set_ylabel("accuracy (solid: test, dashed: train)")
    for ax in axes:
        ax.legend(loc="lower right")
    return fig


def figure6(curves: pd.DataFrame):
    fig, (ax,) = plotting.panels(1, width=6.5, height=4)
    _curves(ax, curves, "E1: Table I", ["FCNN3", "WS1", "WS2", "WS3"], PAPER_FIG6, title="weight sharing vs FCNN3")
    ax.set_ylabel("accuracy (solid: test, dashed: train)")
    ax.legend(loc="lower right")
    return fig


def figure7(curves: pd.DataFrame):
    fig, axes = plotting.panels(4, width=4.5, height=3.2, cols=2)
    paper = {m: v for m, (v, _) in PAPER_TABLE1.items()}
    for ax, (al, base) in zip(axes, COUNTERPART.items()):
        _curves(ax, curves, "E1: Table I", [al, base], paper, title=f"{al} vs {base}")
        ax.legend(loc="lower right")
    for ax in axes[::2]:
        ax.set_ylabel("accuracy (solid: test, dashed: train)")
    return fig


def figure_runs(df: pd.DataFrame):
    """Every run's final test accuracy: exposes stuck runs that a mean and std hide."""
    import seaborn as sns

    sub = df[df.experiment == "E1: Table I"]
    fig, (ax,) = plotting.panels(1, width=9, height=3.6)
    order = [a.name for a in TABLE1]
    sns.stripplot(sub, x="model", y="test_acc", order=order, ax=ax, size=5, alpha=0.8, jitter=0.15)
    paper = [PAPER_TABLE1[m][0] for m in order]
    plotting.paper_points(ax, range(len(order)), paper, color="black", label="paper Table I")
    ax.set(ylabel="final test accuracy", xlabel="", title="per-run final test accuracy (one dot per init seed)")
    ax.legend(loc="lower right")
    return fig
