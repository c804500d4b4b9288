"""The book's front door: every architecture of the five papers on one ladder of inductive bias, with what each
chapter measured at each rung, read from the chapters' summary.json tables (nothing here is a result)."""
from __future__ import annotations

import pandas as pd
from docutils.nodes import make_id

RUNGS = ("shared and local", "local only", "shared only", "hashed sharing", "learned sparsity", "neither")
RUNG_NOTE = {"shared and local": "a convolution", "local only": "untied local filters",
             "shared only": "one weight vector at every position, or one branch for both inputs",
             "hashed sharing": "weights read from a small table through a fixed hash",
             "learned sparsity": "a fully connected net trained to become sparse (β-lasso)",
             "neither": "fully connected"}

# Which rung each chapter's models stand on: a classification of architectures, not a measurement.
ZHANG = {"ConvNet": "shared and local", "LocalNet": "local only", "WeightNet": "shared only", "FCNet": "neither"}
SALIMBENI = {"WS1": "shared and local", "WS3": "shared and local", "WS2": "shared only", "FCNN3": "neither",
             "FCNN1": "neither"}  # WS2 shares one MLP branch between the two images: sharing without locality
NEYSHABUR = {("S-CONV", "SGD"): "shared and local", ("S-LOCAL", "SGD"): "local only", ("S-FC", "SGD"): "neither",
             ("3-FC", "SGD"): "neither", ("S-FC", "β-lasso β = 50"): "learned sparsity"}
RAO = {"CNN": "shared and local", "FCN": "neither"}  # the FCN starts from the CNN's weights, then is freed
CHANG = {"dense (no sharing)": "neither", "modulus (r = 0)": "hashed sharing", "uniform": "hashed sharing"}


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

    for s in summaries:
        slug, t = s["slug"], s["tables"]
        if slug == "zhang_locality":
            for r in t.get("fig3", []):
                if r["per_class"] == "full" and r["model"] in ZHANG:
                    add(slug, f"{r['dataset']}, full data", r["model"], ZHANG[r["model"]], 100 * r["ours"],
                        "MNIST and CIFAR-10 (Fig. 3)")
        elif slug == "salimbeni_pairs":
            for r in t.get("table1", []):
                if r["model"] in SALIMBENI:
                    add(slug, "MNIST digit pairs", r["model"], SALIMBENI[r["model"]], 100 * r["ours"], "Table I")
        elif slug == "neyshabur_betalasso":
            for r in t.get("table2", []):
                rung = NEYSHABUR.get((r["model"], r["training"]))
                if rung:
                    add(slug, r["dataset"], f"{r['model']} {r['training']}", rung, r["ours"],
                        "Table 2: accuracy of the shallow models")
        elif slug == "rao_divergence":
            for r in t.get("accuracies", []):
                if r["network"] in RAO and r["experiment"] in ("1", "2"):
                    add(slug, f"CIFAR-10, Exp {r['experiment']}", r["network"], RAO[r["network"]], r["test_acc"],
                        "Final accuracies beside the paper's")
        elif slug == "chang_arbnets":
            for r in t.get("settings", []):
                if r["label"] in CHANG and r["sparsity"] in (0.0, 0.1):
                    add(slug, f"{r['dataset']}", f"{r['label']}" + (f", s = {r['sparsity']:g}" if r["sparsity"] else ""),
                        CHANG[r["label"]], 100 * r["mean"], "The runs")
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
