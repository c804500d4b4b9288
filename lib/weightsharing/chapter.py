"""What every chapter's notebook does around its paper's `run(ctx)`: open the run context, print the setup, show
the results where the prose needs them, glue numbers into the prose, and write the summary the synthesis and status
pages read. Every paper's notebook makes the same calls:

    ch = Chapter.open(paper, budget, device=device, fresh=fresh)
    ch.print_setup()
    res = ch.run()               # paper.run(ch.ctx): trains or reuses every unit, returns one `Results`
    ch.show(res, "table1")       # a table or a figure, by name
    ch.show_claims(res)
    ch.finish(res)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from . import plotting, summary, tables, verdicts
from .context import RunContext
from .errors import show_user_errors_briefly
from .paths import shown as shown_path
from .results import Results

LEGEND = ("**Verdicts.** `holds`, `contradicted` and `inconclusive` are given only where the claim's regime check, "
          "measured on the arms and cells the claim compares, passed, or where the claims file argues that the claim "
          "needs none. `out of regime`: the check failed, so these runs could not test the paper's mechanism; the "
          "claim keeps its *leaning* (which way the data point, with the p of the rule's test) and the run that would "
          "decide it. `not assessed`: fewer than {min_runs} runs in a compared arm. `not run`: no data at this budget. "
          "**Phase.** A claim is *exploratory* until its entry is frozen (statement, rule, regime check and seeds "
          "committed) and fresh seeds are trained after that commit; a *confirmatory* verdict uses those seeds alone, "
          "with the verdict the same rule gives on the earlier runs beside it. Of these {n} claims, {conf} are "
          "confirmatory and {frozen} frozen. The column *rule written after its data were seen* is "
          "`rule_changed_after_results` in `summary.json`: the rule's last edit (by `git blame -M -C` of its "
          "statement, rule, regime check and seeds) came after the first unit of any configuration it judges had "
          "finished, whatever its revision, or after the chapter had already given the claim a verdict; {changed} of "
          "the {n} rules were.")

SMOKE_NOTE = ("**Smoke budget.** This page was executed with a few examples and one or two epochs, only to check "
              "that the code runs end to end: its numbers and verdicts carry no scientific meaning. The `cpu` "
              "build is the report.")


def glue(name: str, value: Any) -> None:
    """Make `value` available to the prose as {glue:text}`name`; numpy scalars become plain Python numbers first
    (their repr, `np.float64(...)`, cannot be formatted by the book)."""
    from myst_nb import glue as myst_glue

    myst_glue(name, value.item() if hasattr(value, "item") else value, display=False)


@dataclass
class Chapter:
    paper: Any                     # the paper's package (a `papers.Paper`)
    ctx: RunContext
    _planned: dict = field(default_factory=dict, init=False)  # budget -> its planned units, for larger_run

    @classmethod
    def open(cls, paper: Any, budget: str, *, device: str = "cpu", fresh: bool = False) -> Chapter:
        show_user_errors_briefly()
        ctx = RunContext.open(paper, budget, device=device, fresh=fresh)
        plotting.style()
        return cls(paper, ctx)

    slug = property(lambda self: self.ctx.slug)
    budget_name = property(lambda self: self.ctx.budget_name)
    budget = property(lambda self: self.ctx.budget)
    store = property(lambda self: self.ctx.store)
    prov = property(lambda self: self.ctx.prov)

    def run(self) -> Results:
        """The paper's whole run through the store, its values glued into the prose."""
        res = self.paper.run(self.ctx)
        if not isinstance(res, Results):
            raise TypeError(f"{self.slug}.run(ctx) returned {type(res).__name__}: every paper returns one Results")
        for name, value in res.values.items():
            self.glue(name, value)
        return res

    def show(self, res: Results, name: str) -> None:
        """One of `res`'s tables (styled, or its `empty` sentence if it has no rows) or figures, here."""
        from IPython.display import display

        if name in res.figures:
            if res.figures[name] is not None:  # None: not drawn at this budget (its table says so)
                display(res.figures[name])
            return
        t = res.tables[name]
        if not len(t.frame) and t.empty:
            print(t.empty)
            return
        if t.title:
            print(t.title)
        display(tables.show(t.frame, t.formats, decimals=t.decimals))

    def glue(self, name: str, value: Any) -> None:
        glue(name, value)

    def note_if_smoke(self) -> None:
        if self.budget_name == "smoke":
            from IPython.display import Markdown, display

            display(Markdown(SMOKE_NOTE))

    def print_setup(self) -> None:
        """The budget and the provenance as two small tables, and where the results live (relative to the checkout)."""
        import pandas as pd
        from IPython.display import display

        self.note_if_smoke()
        display(tables.show(pd.DataFrame(budget_rows(self.budget), columns=[f"budget: {self.budget_name}", "value"])))
        shown = {"git_sha": "commit", "torch_version": "torch", "python": "python", "device": "device",
                 "threads": "threads", "started_at": "started (UTC)"}
        display(tables.show(pd.DataFrame([{v: self.prov[k] for k, v in shown.items()}])))
        print(f"results: {shown_path(self.store.path)} ({len(self.store)} finished units on disk"
              f"{', ignored: fresh run' if self.ctx.fresh else ''})")
        for k in ("git_sha", "torch_version", "device", "started_at"):
            self.glue(f"prov_{k}", self.prov[k])
        self.glue("budget", self.budget_name)

    def show_claims(self, res: Results) -> None:
        """The claims table (verdict with its leaning, phase, runs and seeds, regime check, fragility, whether the rule
        was written after its data were seen), then each claim's evidence and the run that would decide it, then the
        rules. Adds the rule's history and `would_decide` to each claim (in place, so the summary carries them); glues
        verdict_<id>, phase_<id>, fragility_<id> and the counts."""
        import pandas as pd
        from IPython.display import Markdown, display

        self.note_if_smoke()
        claims = res.claims
        verdicts.annotate(claims, self.slug, self.budget_name)
        for c in claims:
            c["would_decide"] = self.would_decide(c) if c["verdict"] not in verdicts.DECIDED else None
        display(Markdown(LEGEND.format(min_runs=verdicts.MIN_RUNS, n=len(claims), conf=sum(c.get("phase") == "confirmatory" for c in claims),
                                       frozen=sum(bool(c.get("frozen_at")) for c in claims),
                                       changed=sum(bool(c.get("rule_changed_after_results")) for c in claims))))
        display(tables.show(pd.DataFrame([{
            "id": c["id"], "claim": c["claim"], "verdict": verdict_phrase(c), "phase": phase_phrase(c),
            "runs": c.get("n_runs") or "—", "regime": regime_word(c.get("regime")),
            "fragility": fragility_word(c.get("fragile")),
            "rule written after its data were seen": (
                f"yes (verdict before: {c['earlier_verdict'] or 'new claim'})" if c.get("rule_changed_after_results")
                and c.get("earlier_rule") else "yes" if c.get("rule_changed_after_results") else "no")}
            for c in claims])))
        display(Markdown("The evidence behind each verdict, and for every claim not decided, the run that would "
                         "decide it:"))
        display(tables.show(pd.DataFrame([{"id": c["id"], "evidence": c["evidence"],
                                           "would decide it": (c["would_decide"] or {}).get("run", "—")}
                                          for c in claims])))
        display(Markdown("The rule behind each verdict, as declared in the chapter's claims file, and where it was "
                         "changed, the earlier rule with the verdict the chapter gave under it:"))
        display(tables.show(pd.DataFrame([{"id": c["id"], "rule": c["test"], "regime check": regime_text(c),
                                           "earlier rule (verdict under it)": (
                                               f"{c.get('earlier_rule') or 'not recorded'} "
                                               f"({c.get('earlier_verdict') or 'a new claim'})"
                                               if c.get("earlier_rule") else "—")} for c in claims])))
        for c in claims:
            self.glue(f"verdict_{c['id']}", c["verdict"])
            self.glue(f"phase_{c['id']}", c.get("phase", "exploratory"))
            self.glue(f"fragility_{c['id']}", fragility_word(c.get("fragile")))
        counts = verdicts.fragility_counts(claims)
        self.glue("n_robust", counts["robust"])
        self.glue("n_fragile", counts["fragile"])
        self.glue("runs_left_out", max((c.get("runs_left_out", 0) for c in claims), default=0))
        for word, n in verdicts.verdict_counts(claims).items():
            self.glue(f"n_{word.replace(' ', '_')}", n)
        self.glue("n_claims", len(claims))
        self.glue("n_rule_changed", sum(bool(c.get("rule_changed_after_results")) for c in claims))
        self.glue("n_confirmatory", sum(c.get("phase") == "confirmatory" for c in claims))
        self.glue("n_frozen", sum(bool(c.get("frozen_at")) for c in claims))

    def would_decide(self, claim: dict) -> dict:
        """The run that would decide a claim this budget leaves undecided: the claims file's own `would_decide` (a run
        on this machine, with its CPU minutes) where it names one, else the larger budget's experiments its
        `larger_run` names (default: all of `paper`), priced by `plan`; where that budget would only train the same
        units again, no budget planned here decides it."""
        from . import planning

        rule = verdicts.rules(self.slug).get(claim["id"].split("/")[0])
        if rule and rule.would_decide:
            return {"run": f"{rule.would_decide['run']}: about {rule.would_decide['cpu_minutes']} CPU minutes here",
                    "cpu_minutes": rule.would_decide["cpu_minutes"], "gpu_hours": None, "reachable": True}
        want = (rule.larger_run if rule else None) or {"budget": "paper", "experiments": []}
        if want["budget"] not in self._planned:  # one plan per budget, however many claims ask
            self._planned[want["budget"]] = self.paper.planned(self.paper.BUDGETS[want["budget"]])
        units = self._planned[want["budget"]]
        if want.get("experiments"):
            units = [u for u in units if u.experiment.startswith(tuple(want["experiments"]))]
        what = ", ".join(want.get("experiments") or ["every experiment"])
        if not units or all(u.key is not None and u.key in self.store for u in units):
            return {"run": f"no budget planned here: budget '{want['budget']}' ({what}) would train exactly these "
                           "units again; deciding it needs a longer or larger run than any budget plans",
                    "gpu_hours": None, "reachable": False}
        est = planning.estimate(units)
        hours = float(est.gpu_hours.sum())
        return {"run": f"budget '{want['budget']}' ({what}; {len(est)} units), about {hours:.1f} GPU hours on one "
                       f"{planning.ASSUMED_GPU[0]} by plan's estimate", "gpu_hours": round(hours, 2),
                "reachable": True}

    def finish(self, res: Results) -> None:
        """Write summary.json (claims, saved tables, ladder rows); the store keeps exactly the units this run used."""
        self.store.drop_unused()
        path = summary.write_summary(self.slug, self.budget_name, store=self.store, prov=self.prov,
                                     wall_seconds=time.perf_counter() - self.ctx.started, claims=res.claims,
                                     tables={**res.saved, "ladder": res.ladder})
        print(f"wrote {shown_path(path)}: {self.store.computed} units computed, {self.store.reused} reused")


def regime_word(regime: dict | None) -> str:
    if not regime:
        return "—"
    if regime.get("check") is None:
        return "none needed"
    return {True: "passed", False: "failed", None: "not measured"}[regime.get("passed")]


def regime_text(claim: dict) -> str:
    regime = claim.get("regime") or {}
    if regime.get("check"):
        return regime["check"]
    return f"none: {regime['null_because']}" if regime.get("null_because") else "—"


def verdict_phrase(claim: dict) -> str:
    """The verdict, with which way the data lean where the verdict itself does not say."""
    lean = claim.get("leaning") or {}
    if claim["verdict"] in ("out of regime", "inconclusive") and lean.get("direction"):
        p = f", p = {lean['p']:.2g}" if lean.get("p") is not None else ""
        return f"{claim['verdict']} (leans: {lean['direction']}{p})"
    return claim["verdict"]


def phase_phrase(claim: dict) -> str:
    if claim.get("phase") == "confirmatory":
        return f"confirmatory (exploratory: {claim.get('exploratory_verdict')})"
    return "exploratory" + (" (frozen, awaiting fresh seeds)" if claim.get("frozen_at") else "")


def fragility_word(fragile: bool | None) -> str:
    return {True: "fragile", False: "robust", None: "not assessed"}[fragile]


def budget_rows(budget: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A budget dataclass as (setting, value) rows; a nested dataclass (one dataset's grid) becomes its own rows."""
    from dataclasses import fields, is_dataclass

    if hasattr(budget, "readable") and not prefix:  # a budget may say better what its fields mean
        return budget.readable()
    rows = []
    for f in fields(budget):
        value = getattr(budget, f.name)
        name = f"{prefix}{f.name.replace('_', ' ')}"
        if is_dataclass(value):
            rows += budget_rows(value, prefix=f"{name}: ")
        elif isinstance(value, (tuple, list)):
            rows.append((name, ", ".join(_plain(v) for v in value) or "—"))
        else:
            rows.append((name, _plain(value)))
    return rows


def _plain(value: Any) -> str:
    """1e-3 rather than 0.001, (name, 3) pairs as 'name 3', dataclasses by their fields: readable, no reprs."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(value):
        parts = [(f.name.replace("_", " "), getattr(value, f.name)) for f in fields(value)]
        return " ".join(k if v is True else f"{k} {_plain(v)}" for k, v in parts if v is not None and v is not False)
    if isinstance(value, (tuple, list)):
        return " ".join(_plain(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
