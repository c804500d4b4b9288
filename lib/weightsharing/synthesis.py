"""The book's front door, read from every chapter's summary.json (nothing here is a result or knows a paper): what
each paper's claims amount to, one table of every claim, what deciding the undecided ones would cost, the counts led
by the verdicts a referee signs, and every architecture of the five papers on one ladder of inductive bias."""
from __future__ import annotations

import pandas as pd
from docutils.nodes import make_id

from .verdicts import DECIDED, VERDICTS

RUNGS = ("shared and local", "local only", "shared only", "hashed sharing", "learned sparsity", "neither")
RUNG_NOTE = {"shared and local": "a convolution", "local only": "untied local filters",
             "shared only": "one weight vector at every position, or one branch for both inputs",
             "hashed sharing": "weights read from a small table through a fixed hash",
             "learned sparsity": "a fully connected net trained to become sparse (β-lasso)",
             "neither": "fully connected"}

UNDECIDED = tuple(v for v in VERDICTS if v not in DECIDED)


def signed(claim: dict) -> bool:
    """A verdict a referee signs: decided, confirmatory, in a passed (or argued-null) regime, robust to any one run."""
    regime = claim.get("regime") or {}
    return (claim["verdict"] in ("holds", "contradicted") and claim.get("phase") == "confirmatory"
            and (regime.get("passed") is True or regime.get("check") is None) and claim.get("fragile") is False)


def _ids(claims: list[dict], lean: bool = False) -> str:
    def one(c):
        d = (c.get("leaning") or {}).get("direction")
        return f"{c['id']} leaning {d}" if lean and d and d != "neither" else c["id"]
    return ", ".join(one(c) for c in claims)


def paragraph(summary: dict) -> str:
    """What one chapter's claims amount to, in a sentence or three, from its summary alone."""
    claims = summary["claims"]
    by = {v: [c for c in claims if c["verdict"] == v] for v in VERDICT_ORDER}
    own = sum(c.get("by") == "book" for c in claims)
    parts = [f"{len(by[v])} {'hold' if v == 'holds' and len(by[v]) > 1 else v} "
             f"({_ids(by[v], lean=v in ('out of regime', 'inconclusive'))})" for v in VERDICT_ORDER if by[v]]
    conf = sum(c.get("phase") == "confirmatory" for c in claims)
    hours = total_hours(claims)
    unreachable = [c["id"] for c in claims if (c.get("would_decide") or {}).get("reachable") is False]
    undecided = sum(c["verdict"] in UNDECIDED for c in claims)
    text = (f"{len(claims)} claims{f' ({own} the book’s own)' if own else ''}: " + "; ".join(parts) + ". "
            f"{conf} of them confirmatory, {sum(map(signed, claims))} signed. ")
    minutes = total_hours(claims, "cpu_minutes")
    if undecided:
        cost = [f"{hours:.{0 if hours >= 10 else 1}f} GPU hours by plan's estimate" if hours else "",
                f"{minutes:.0f} CPU minutes here" if minutes else ""]
        text += (f"Deciding the {undecided} undecided would take about {' and '.join(c for c in cost if c) or 'no run'}"
                 + (f"; no budget planned here reaches {', '.join(unreachable)}" if unreachable else "") + ".")
    return text


def total_hours(claims: list[dict], unit: str = "gpu_hours") -> float:
    """What deciding every undecided claim of `claims` would cost: `plan`'s GPU hours (or, with unit="cpu_minutes",
    the CPU minutes of the runs the claims files name), each distinct run counted once (claims that the same larger
    run decides share it)."""
    runs = {(c.get("would_decide") or {}).get("run"): (c.get("would_decide") or {}).get(unit) or 0
            for c in claims if c["verdict"] in UNDECIDED}
    return float(sum(runs.values()))


VERDICT_ORDER = ("holds", "contradicted", "out of regime", "inconclusive", "not assessed", "not run")


def claims_table(summaries: list[dict], names: dict[str, str]) -> pd.DataFrame:
    """One row per claim: paper, claim, verdict, leaning, phase, runs (and whose claim it is)."""
    rows = []
    for s in summaries:
        for c in s["claims"]:
            lean = c.get("leaning") or {}
            p = f" (p = {lean['p']:.2g})" if lean.get("p") is not None else ""
            rows.append({"paper": names.get(s["slug"], s["slug"]), "id": c["id"], "slug": s["slug"],
                         "claim": c["claim"] + (" [the book's]" if c.get("by") == "book" else ""),
                         "verdict": c["verdict"], "leaning": (lean.get("direction") or "—") + p,
                         "phase": c.get("phase", "exploratory"), "runs": c.get("n_runs") or "—",
                         "signed": "yes" if signed(c) else "no"})
    return pd.DataFrame(rows)


def cost_table(summaries: list[dict], names: dict[str, str]) -> pd.DataFrame:
    """Every undecided claim with the run that would decide it and `plan`'s GPU hours (None where no budget reaches
    its regime)."""
    rows = [{"paper": names.get(s["slug"], s["slug"]), "id": c["id"], "verdict": c["verdict"],
             "would decide it": (c.get("would_decide") or {}).get("run", "—"),
             "GPU hours": (c.get("would_decide") or {}).get("gpu_hours"),
             "CPU minutes": (c.get("would_decide") or {}).get("cpu_minutes")}
            for s in summaries for c in s["claims"] if c["verdict"] in UNDECIDED]
    return pd.DataFrame(rows, columns=["paper", "id", "verdict", "would decide it", "GPU hours", "CPU minutes"])


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
