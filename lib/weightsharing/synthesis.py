"""The book's front door: every architecture of the five papers on one ladder of inductive bias, with what each
chapter measured at each rung, read from the "ladder" table of every chapter's summary.json (each chapter puts its own
models on the rungs; nothing here is a result or knows a paper)."""
from __future__ import annotations

import pandas as pd
from docutils.nodes import make_id

RUNGS = ("shared and local", "local only", "shared only", "hashed sharing", "learned sparsity", "neither")
RUNG_NOTE = {"shared and local": "a convolution", "local only": "untied local filters",
             "shared only": "one weight vector at every position, or one branch for both inputs",
             "hashed sharing": "weights read from a small table through a fixed hash",
             "learned sparsity": "a fully connected net trained to become sparse (β-lasso)",
             "neither": "fully connected"}

def _section(slug: str, heading: str) -> str:
    return f"{slug}.html#{make_id(heading)}"


def ladder(summaries: list[dict]) -> pd.DataFrame:
    """One row per (chapter, setting, model): its rung, test accuracy (%), and the gap to the best model of the same
    setting, with a link to the chapter section it comes from."""
    rows = []

    def add(slug, setting, model, rung, acc, heading):
        if acc is not None:
            rows.append({"rung": rung, "chapter": slug, "setting": setting, "model": model, "accuracy": acc,
                         "section": _section(slug, heading)})

    for s in summaries:  # each chapter classifies its own models (its module's ladder_rows)
        for r in s["tables"].get("ladder", []):
            add(s["slug"], r["setting"], r["model"], r["rung"], r["accuracy"], r["heading"])
    out = pd.DataFrame(rows, columns=["rung", "chapter", "setting", "model", "accuracy", "section"])
    out["gap_to_best"] = out.accuracy - out.groupby(["chapter", "setting"]).accuracy.transform("max")
    out["rung"] = pd.Categorical(out.rung, categories=RUNGS, ordered=True)
    return out.sort_values(["rung", "chapter", "setting"]).reset_index(drop=True)


def ladder_figure(rows: pd.DataFrame):
    """Rungs top (most built-in structure) to bottom; x: points of accuracy behind the best model of the same
    chapter and setting; colour: chapter; marker: setting within the chapter."""
    import matplotlib.pyplot as plt

    from . import plotting

    chapters = list(dict.fromkeys(rows.chapter))
    colours = dict(zip(chapters, plotting.series_colors(len(chapters))))
    markers = "osD^vP"
    fig, ax = plt.subplots(figsize=plotting.size(9, 4.6), layout="constrained")
    offsets = {c: (i - (len(chapters) - 1) / 2) * 0.12 for i, c in enumerate(chapters)}
    for (chapter, setting), g in rows.groupby(["chapter", "setting"], sort=False, observed=True):
        settings = list(dict.fromkeys(rows[rows.chapter == chapter].setting))
        y = [RUNGS.index(r) + offsets[chapter] for r in g.rung]
        ax.scatter(g.gap_to_best, y, color=colours[chapter], marker=markers[settings.index(setting) % len(markers)],
                   s=42, label=f"{chapter}: {setting}", edgecolor="white", linewidth=0.5, zorder=3)
    ax.set_yticks(range(len(RUNGS)), [f"{r}\n({RUNG_NOTE[r]})" if len(RUNG_NOTE[r]) < 28 else r for r in RUNGS])
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.8)
    ax.set(xlabel="test accuracy minus the best model of the same chapter and setting (points)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8.5)
    return fig
