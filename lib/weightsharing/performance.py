"""Training time and speed, as the status and appendix pages show them: minutes per chapter against the `cpu`
budget's limit, before and after a speed-up, and the stored speed measurements behind them (locally connected layers,
stacked seeds, bf16 against fp32)."""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import plotting
from .paths import results_root
from .provenance import TIMING_BASELINE

# The `cpu` budget's limit (the design card): at most 120 minutes of training per chapter on a 2-core CPU, exploratory
# and confirmatory runs together. (The earlier whole-book aim of three hours and "locally connected layers within 2x
# Conv2d" were retired: the remaining gap needs a fused kernel.)
CHAPTER_AIM_MINUTES = 120
# The per-seed speed-up at which a chapter stacks a model's seeds, and the per-step one at which it trains in bf16.
STACK_MIN_SPEEDUP = PRECISION_MIN_SPEEDUP = 1.3


def baseline(budget: str) -> dict | None:
    """The committed "before" minutes (`provenance.training_minutes_at`), if they were taken at this budget."""
    path = results_root() / TIMING_BASELINE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return data if data["budget"] == budget else None


def minutes_table(summaries: list[dict], before: dict | None) -> pd.DataFrame:
    """Per chapter: its units' training minutes now, before (at the baseline's commit) and the aim."""
    old = (before or {}).get("training_minutes", {})
    rows = [{"chapter": s["slug"], "aim (min)": float(CHAPTER_AIM_MINUTES),
             "before (min)": old.get(s["slug"], np.nan), "now (min)": s["compute_seconds"] / 60} for s in summaries]
    df = pd.DataFrame(rows, columns=["chapter", "aim (min)", "before (min)", "now (min)"])
    df["change (min)"] = df["now (min)"] - df["before (min)"]
    total = {"chapter": "whole book", "aim (min)": np.nan, "before (min)": df["before (min)"].sum(min_count=1),
             "now (min)": df["now (min)"].sum()}
    total["change (min)"] = total["now (min)"] - total["before (min)"]
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


def minutes_figure(table: pd.DataFrame, commit: str | None):
    """Horizontal bars, before and now, per chapter, with the per-chapter aim; the book's total in the title."""
    chapters = table[table.chapter != "whole book"]
    total = table[table.chapter == "whole book"].iloc[0]
    y = np.arange(len(chapters))
    fig, ax = plt.subplots(figsize=(plotting.MAX_WIDTH, 0.55 * len(chapters) + 1.4))
    colors = plotting.series_colors(2)
    if chapters["before (min)"].notna().any():
        ax.barh(y - 0.2, chapters["before (min)"], height=0.38, color=colors[1], label=f"before (commit {commit})")
    ax.barh(y + 0.2, chapters["now (min)"], height=0.38, color=colors[0], label="now")
    ax.axvline(CHAPTER_AIM_MINUTES, color="0.3", linestyle="--", linewidth=1, label=f"limit: {CHAPTER_AIM_MINUTES} min per chapter")
    ax.set_yticks(y, chapters.chapter)
    ax.invert_yaxis()
    ax.set_xlabel("training minutes (sum of the units' compute seconds)")
    before = "" if np.isnan(total["before (min)"]) else f"{total['before (min)']:.0f} min before, "
    ax.set_title(f"Whole book: {before}{total['now (min)']:.0f} min now", pad=24)
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, fontsize=9)
    fig.tight_layout()
    return fig


def speedup_figure(layers: pd.DataFrame, stacks: pd.DataFrame):
    """Top: each locally connected layer's cost in Conv2d's units, before (hollow) and now (filled, with its min-max
    over interleaved rounds). Bottom: each model's per-seed speed-up when its seeds train
    stacked, with its min-max, filled where the book stacks that model, against the 1.3x threshold."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(plotting.MAX_WIDTH, 0.32 * (len(layers) + len(stacks)) + 2.4),
                                      gridspec_kw={"height_ratios": [len(layers) + 1, len(stacks) + 1]})
    colors = plotting.series_colors(2)
    y = np.arange(len(layers))
    top.plot(layers.before_ratio, y, "o", markerfacecolor="none", color=colors[1], label="before")
    top.errorbar(layers.ratio_to_conv2d, y, xerr=[layers.ratio_to_conv2d - layers.ratio_min,
                                                  layers.ratio_max - layers.ratio_to_conv2d],
                 fmt="o", color=colors[0], capsize=2, label="now (min-max over rounds)")
    top.axvline(1.0, color="0.5", linewidth=1)
    top.set_yticks(y, [f"{n}, batch {b}" for n, b in zip(layers.layer, layers.batch)])
    top.invert_yaxis()
    top.set_xlim(0, max(layers.ratio_max.max(), layers.before_ratio.max()) * 1.08)
    top.set_xlabel("forward + backward time, in units of Conv2d's at the same shape")
    top.set_title("Locally connected layers")
    top.legend(loc="lower right", fontsize=8.5)
    y = np.arange(len(stacks))
    for stacked, face in ((True, colors[0]), (False, "none")):
        s = stacks[stacks.stacked_in_book == stacked]
        yy = y[stacks.stacked_in_book.to_numpy() == stacked]
        bottom.errorbar(s.speedup, yy, xerr=[s.speedup - s.speedup_min, s.speedup_max - s.speedup], fmt="o",
                        color=colors[0], markerfacecolor=face, capsize=2,
                        label="stacked in the book" if stacked else "trained alone in the book")
    bottom.axvline(1.0, color="0.5", linewidth=1)
    bottom.axvline(STACK_MIN_SPEEDUP, color="0.3", linestyle="--", linewidth=1, label=f"{STACK_MIN_SPEEDUP:g}×")
    bottom.set_xscale("log")
    bottom.set_yticks(y, [f"{m}, batch {b}, R = {r}" for m, b, r in zip(stacks.model, stacks.batch, stacks.replicas)])
    bottom.invert_yaxis()
    bottom.set_xlabel("per-seed speed-up with R seeds stacked (log scale)")
    bottom.set_title("Seeds stacked in one step")
    bottom.legend(loc="lower right", fontsize=8.5)
    fig.tight_layout()
    return fig
