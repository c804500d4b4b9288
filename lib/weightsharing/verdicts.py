"""Claims as data and the one rule that turns a finding into a verdict.

Each chapter declares its claims in `papers/claims/<slug>.yml`: per claim its statement, the rule (test, arms,
threshold or margin, in words), the regime check it depends on (or `no_regime`: why none is needed), whose claim it is
(`by: book` for the book's own findings and controls) and, once frozen, the seeds that will judge it. A chapter's
analysis measures each claim into a `Finding` (supported? significantly against? how many runs in the smallest arm?
did the regime check, measured on the claim's own arms and cells, pass?) and `judge` gives the verdict:

- `not run`: the budget has no data for it;
- `not assessed`: fewer than MIN_RUNS independent runs in some compared arm;
- `out of regime`: the regime check failed, so the run could not test the paper's mechanism; the claim keeps its
  `leaning` (which way the estimate points, and its p) and `would_decide` (the run that would, with its cost);
- `holds`: the data support the claim by its rule, in a passed (or argued-null) regime;
- `contradicted`: the data significantly contradict it, in a passed (or argued-null) regime;
- `inconclusive`: neither, in a passed (or argued-null) regime.

Exploratory, then confirmatory (`judged`): a claim whose entry lists `seeds` is frozen at the commit that last changed
its statement, rule, regime check or seeds (`history.entry_changes`). Its verdict comes only from confirmatory runs:
runs of those seeds whose every unit was trained at a commit descending from the freeze. Every other run is
exploratory; the verdict the same rule gives on them stands beside it (`exploratory_verdict`). Editing a frozen entry
moves its freeze past the runs that judged it, so the claim is exploratory again until fresh seeds are trained.

`leave_one_out` recomputes every claim with each run left out: a verdict that changes, or whose evidence shrinks (a
cell drops out), is fragile. A run belongs to a claim when leaving it out changes anything the claim reports, and
`rule_changed_after_results` says whether the claim's rule was last written after the first unit of any of those runs'
configurations (any seed, any revision) had finished (`history.first_seen`). A claim's `seeds` are those of the runs
its verdict was computed on (its confirmatory runs, or every run), `exploratory_seeds` those of the other runs.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Mapping

from . import history

VERDICTS = ("holds", "contradicted", "inconclusive", "out of regime", "not assessed", "not run")
DECIDED = ("holds", "contradicted")
MIN_RUNS = 3
CLAIMS_DIR = history.CLAIMS_DIR
_min_runs: ContextVar[int] = ContextVar("min_runs", default=MIN_RUNS)


def _seeds(value) -> tuple[int, ...]:
    """`[10, 11]`, `"10-19"` or a list mixing both, as a sorted tuple of ints."""
    if value is None:
        return ()
    out = set()
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str) and "-" in item:
            a, b = (int(x) for x in item.split("-"))
            out.update(range(a, b + 1))
        else:
            out.add(int(item))
    return tuple(sorted(out))


@dataclass(frozen=True)
class Rule:
    id: str
    claim: str
    rule: str                     # the test, the arms, the threshold or margin
    regime: str | None = None     # the condition under which the paper's mechanism can show, measured on the runs
    no_regime: str | None = None  # why the claim needs no regime check (a claim about the protocol as published)
    by: str = "paper"             # "book": the book's own finding or control, not the paper's claim
    seeds: tuple[int, ...] = ()   # set: the claim is frozen, and these seeds (or trials) judge it
    earlier: str | None = None    # the rule's history in words (the exact rule before its last change is read from git)
    larger_run: dict | None = None  # {"budget": ..., "experiments": [...]}: the run that would decide it
    would_decide: dict | None = None  # {run, cpu_minutes}: the smallest run that would decide it, where `plan` cannot
    earlier_id: str | None = None  # the id the claim had in earlier summaries (a claim split in two keeps its parent's)
    lines: tuple[int, int] = (0, 0)  # where the claim is declared in its file
    frozen_lines: tuple[tuple[int, int], ...] = ()  # the lines of its statement, rule, regime check and seeds

    @property
    def frozen(self) -> bool:
        return bool(self.seeds)


@lru_cache(maxsize=None)
def rules(slug: str) -> dict[str, Rule]:
    """The claims file of a chapter, in its order; each rule knows the lines that declare it."""
    return parse_rules((CLAIMS_DIR / f"{slug}.yml").read_text())


def parse_rules(text: str) -> dict[str, Rule]:
    """`rules` of a claims file's text (the chapter's now, or one from git history)."""
    import yaml

    lines = text.splitlines()

    def last(line: int) -> int:  # a block scalar's span ends at its last non-blank line
        while line > 1 and not lines[line - 1].strip():
            line -= 1
        return line

    node = yaml.compose(text)
    out = {}
    for key, value in node.value:
        fields = yaml.safe_load(yaml.serialize(value))
        spans = tuple((k.start_mark.line + 1, last(v.end_mark.line + (v.end_mark.column > 0)))
                      for k, v in value.value if k.value in history.FROZEN_FIELDS)
        fields["seeds"] = _seeds(fields.get("seeds"))
        out[key.value] = Rule(id=key.value, lines=(key.start_mark.line + 1, value.end_mark.line), frozen_lines=spans,
                              **fields)
    return out


@dataclass
class Finding:
    """What a claim's measurement shows, before the verdict rule is applied."""
    support: bool
    against: bool
    evidence: str
    n_runs: int | None                     # the fewest independent runs in any compared arm; None: an exact check
    regime: bool | None = None             # the rule's regime check passed (None: the rule names none)
    regime_evidence: str = ""
    cells: tuple[str, ...] = ()            # the datasets, arms or cells the evidence covers
    finished: tuple[str | None, str | None] = (None, None)  # finished_at of the oldest and newest unit used
    lean: float | None = None              # the estimate's direction relative to the claim: > 0 towards it
    p: float | None = None                 # the p of that estimate (the rule's own test)


def leaning(f: Finding) -> dict:
    """Which way the data point, whatever the verdict: `supports` or `against` where the rule's test says so,
    else the sign of the estimate where the analysis gives one (`neither` without one, or at zero)."""
    direction = ("supports" if f.support else "against" if f.against else
                 "neither" if not f.lean else "supports" if f.lean > 0 else "against")
    return {"direction": direction, "p": None if f.p is None else float(f.p), "significant": f.support or f.against}


def judge(rule: Rule, f: Finding) -> dict:
    """The verdict of `f` under `rule` (see the module's docstring), with the fields every summary carries."""
    min_runs = _min_runs.get()
    if f.n_runs is not None and f.n_runs < min_runs:
        verdict = "not assessed"
        evidence = f"fewer than {min_runs} runs in an arm (n = {f.n_runs}): {f.evidence}"
    else:
        unmeasured = rule.regime is not None and f.regime is None  # a check the rule names but nothing measured
        verdict = ("out of regime" if f.regime is False or unmeasured else
                   "holds" if f.support else "contradicted" if f.against else "inconclusive")
        evidence = f.evidence
    if f.regime is not None and f.regime_evidence:
        evidence += f". Regime check {'passed' if f.regime else 'FAILED'}: {f.regime_evidence}"
    return {"id": rule.id, "claim": rule.claim, "by": rule.by, "verdict": verdict, "leaning": leaning(f),
            "evidence": evidence, "test": rule.rule, "n_runs": None if f.n_runs is None else int(f.n_runs),
            "regime": _regime(rule, f.regime), "cells": list(f.cells), "first_unit": f.finished[0],
            "newest_unit": f.finished[1]}


def _regime(rule: Rule, passed: bool | None) -> dict | None:
    if rule.regime is not None:
        return {"check": rule.regime, "passed": passed}
    return {"check": None, "passed": None, "null_because": rule.no_regime} if rule.no_regime else None


def not_run(rule: Rule, why: str) -> dict:
    return {"id": rule.id, "claim": rule.claim, "by": rule.by, "verdict": "not run", "leaning": None,
            "evidence": why, "test": rule.rule, "n_runs": 0, "regime": _regime(rule, None), "cells": [],
            "first_unit": None, "newest_unit": None}


def finished(*groups: Iterable[str | None]) -> tuple[str | None, str | None]:
    """The earliest and the latest finished_at among the units a claim used."""
    times = [t for group in groups for t in group if t]
    return (min(times), max(times)) if times else (None, None)


# ---------------------------------------------------------------------------------------------- fragility

@contextmanager
def relaxed(min_runs: int):
    """Judge with a lower run minimum: leaving one run out of a 3-run arm must test the verdict's direction, not
    turn every claim into 'not assessed'."""
    token = _min_runs.set(min_runs)
    try:
        yield
    finally:
        _min_runs.reset(token)


REPORTED = ("verdict", "leaning", "regime", "evidence", "n_runs", "cells", "first_unit", "newest_unit")


def leave_one_out(claims_without: Callable[[Any], list[dict]], runs: Iterable, *,
                  describe: Callable[[Any], str] = str, shown: int = 3) -> list[dict]:
    """Each claim of `claims_without(None)` with its fragility: the claims are recomputed with each run of `runs`
    (each unit once, however many experiments share it) left out in turn. A claim is fragile when its verdict
    changes, or when its evidence shrinks (a cell it covered drops out, or it can no longer be computed).

    While a run is left out an arm may hold MIN_RUNS - 1 runs; the run minimum is relaxed by one so the check asks
    whether one run decides the verdict, not whether the arm still has enough runs.
    """
    base = claims_without(None)
    deciders: dict[str, list[dict]] = {c["id"]: [] for c in base}
    used: dict[str, list] = {c["id"]: [] for c in base}  # the runs leaving out which changes what a claim reports
    count, unassessed = 0, []
    for run in runs:
        try:
            with relaxed(MIN_RUNS - 1):
                without = {c["id"]: c for c in claims_without(run)}
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
            unassessed.append(describe(run))
            for c in base:
                used[c["id"]].append(run)
            continue
        count += 1
        for c in base:
            other = without.get(c["id"])
            if other is None or any(other.get(k) != c.get(k) for k in REPORTED):
                used[c["id"]].append(run)
            if c["verdict"] == "not run":
                continue
            if other is None or other["verdict"] == "not run":
                deciders[c["id"]].append({"run": describe(run), "verdict": "not run", "reason": "evidence shrinks"})
            elif other["verdict"] != c["verdict"]:
                deciders[c["id"]].append({"run": describe(run), "verdict": other["verdict"], "reason": "verdict changes"})
            elif set(other.get("cells", ())) < set(c.get("cells", ())):
                lost = sorted(set(c["cells"]) - set(other["cells"]))
                deciders[c["id"]].append({"run": describe(run), "verdict": other["verdict"],
                                          "reason": f"evidence shrinks ({', '.join(lost)} drops out)"})
    out = []
    for c in base:
        decided = deciders[c["id"]]
        fragile = None if c["verdict"] == "not run" else True if decided else None if unassessed else False
        c = {**c, "fragile": fragile, "runs_left_out": count, "decided_by": decided, "_runs": used[c["id"]]}
        if decided:
            named = "; ".join(f"without {d['run']} it would be '{d['verdict']}'"
                              + ("" if d["reason"] == "verdict changes" else f" ({d['reason']})") for d in decided[:shown])
            more = f" (and {len(decided) - shown} more runs)" if len(decided) > shown else ""
            c["evidence"] = f"{c['evidence']}. FRAGILE: {named}{more}"
        elif fragile is None and c["verdict"] != "not run":
            c["evidence"] = (f"{c['evidence']}. Fragility not assessed: the claims cannot be computed without "
                             f"{unassessed[0]}" + (f" or {len(unassessed) - 1} other runs" if len(unassessed) > 1 else ""))
        out.append(c)
    return out


def fragility_counts(claims: Iterable[dict]) -> dict[str, int]:
    """Robust, fragile and not-assessed (not run) verdicts among `claims`."""
    claims = list(claims)
    return {"robust": sum(c.get("fragile") is False for c in claims),
            "fragile": sum(c.get("fragile") is True for c in claims),
            "not assessed": sum(c.get("fragile") is None for c in claims)}


def verdict_counts(claims: Iterable[dict]) -> dict[str, int]:
    claims = list(claims)
    return {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}


# ---------------------------------------------------------------------------------------------- phases

@dataclass(frozen=True)
class Origin:
    """Where one run (the thing a chapter leaves out in turn) came from: the seed or trial a freeze names, and the
    store keys (canonical JSON) of the units it is made of."""
    seed: int
    units: tuple[str, ...]


def confirmatory(rule: Rule, origin: Origin, records: Mapping[str, dict], frozen_at: str, *,
                 repo: Path | None = None) -> bool:
    """Whether a run may judge a frozen claim: one of its seeds, every unit trained at a commit that descends from the
    freeze (a stored commit, not an inferred one)."""
    if not (rule.frozen and frozen_at and origin.seed in rule.seeds and origin.units):
        return False
    recs = [records.get(u) or {} for u in origin.units]
    return all(not r.get("commit_inferred") and history.descends(str(r.get("commit", "")), frozen_at, repo=repo)
               for r in recs)


def judged(slug: str, claims_without: Callable[[frozenset], list[dict]], runs: Iterable[Hashable], *,
           origin: Callable[[Any], Origin], records: Mapping[str, dict], describe: Callable[[Any], str] = str,
           changes: Mapping[str, tuple[str, str]] | None = None, seen: Mapping[str, str] | None = None,
           repo: Path | None = None) -> list[dict]:
    """Every claim of a chapter, judged by its phase (see the module's docstring), with its fragility.

    `claims_without(dropped)` computes the chapter's claims without the runs in `dropped`; `origin(run)` says where a
    run came from; `records` are the store's records by key. `changes` (claim id -> (commit, time) of its entry's last
    change) and `seen` (configuration -> first finished_at) default to what git says (`history`) in `repo`."""
    runs = list(runs)
    table = rules(slug)
    changes = history.entry_changes(slug) if changes is None else changes
    seen = history.first_seen(slug) if seen is None else seen
    origins = {r: origin(r) for r in runs}
    everything = frozenset(runs)
    frozen_at = {i: changes.get(i, ("", ""))[0] if rule.frozen else "" for i, rule in table.items()}
    conf = {i: frozenset(r for r in runs if confirmatory(rule, origins[r], records, frozen_at[i], repo=repo))
            for i, rule in table.items()}

    cache: dict[frozenset, dict[str, dict]] = {}

    def on(dropped: frozenset) -> dict[str, dict]:
        if dropped not in cache:
            kept = [r for r in runs if r not in dropped]
            cache[dropped] = {c["id"]: c for c in leave_one_out(
                lambda run: claims_without(dropped if run is None else dropped | {run}), kept, describe=describe)}
        return cache[dropped]

    out = []
    for i, explored in on(frozenset()).items():
        rule = table.get(i.split("/")[0])
        mine = conf.get(rule.id, frozenset()) if rule else frozenset()
        if mine:  # a claim that cannot be computed on one side keeps what the other side shows
            explored = on(mine).get(i) or {**explored, "verdict": "not run", "_runs": []}
            c = dict(on(everything - mine).get(i) or {**explored, "verdict": "not run", "phase": "confirmatory"})
        else:
            c = dict(explored)
        used = c.pop("_runs")
        explored_runs = explored.get("_runs", [])
        c["phase"] = "confirmatory" if mine else "exploratory"
        c["frozen_at"] = (frozen_at.get(rule.id) or None) if rule else None
        # the seeds each verdict was computed on: the confirmatory runs, or every run the exploratory one could read
        c["seeds"] = sorted({int(origins[r].seed) for r in (mine or everything)})
        c["exploratory_verdict"] = explored["verdict"]
        c["exploratory_seeds"] = sorted({int(origins[r].seed) for r in everything - mine})
        firsts = [seen.get(history.config(records[u]["key"])) or records[u].get("finished_at")
                  for r in set(used) | set(explored_runs) for u in origins[r].units if u in records]
        first = min((t for t in firsts if t), default=None)
        changed = changes.get(rule.id) if rule else None
        c["data_first_seen"] = first
        c["rule_changed_at"] = changed[1] if changed else None
        c["rule_changed_after_results"] = bool(changed and first and changed[1] > first)
        out.append(c)
    return out


def claims_sha(slug: str) -> str | None:
    """The blob hash of the chapter's claims file as it is now (`git hash-object`)."""
    out = history.git("hash-object", str(CLAIMS_DIR / f"{slug}.yml"))
    return out.strip() if out else None


# ---------------------------------------------------------------------------------------------- rule history

OLD_WORDS = {"not reproduced at this budget": "out of regime"}  # the earlier summaries' word for a failed check


@lru_cache(maxsize=None)
def _summary_before(slug: str, budget: str, commit: str) -> dict:
    """claim id -> verdict in the chapter's committed summary just before `commit` (HEAD's for uncommitted rules)."""
    ref = f"{commit}^" if commit else "HEAD"
    text = history.git("show", f"{ref}:book/results/{slug}/{budget}/summary.json")
    try:
        return {c["id"]: OLD_WORDS.get(c["verdict"], c["verdict"]) for c in json.loads(text)["claims"]} if text else {}
    except (json.JSONDecodeError, KeyError, TypeError):
        return {}


@lru_cache(maxsize=None)
def _entry_before(slug: str, commit: str) -> dict[str, Rule]:
    """The chapter's claims as declared just before `commit` (the working tree's last commit for an uncommitted edit)."""
    text = history.git("show", f"{commit}^:lib/weightsharing/papers/claims/{slug}.yml" if commit else
                       f"HEAD:lib/weightsharing/papers/claims/{slug}.yml")
    import yaml

    try:
        return parse_rules(text) if text else {}
    except (yaml.YAMLError, TypeError, ValueError, AttributeError):  # an older format: no earlier rule to show
        return {}


def annotate(claims: list[dict], slug: str, budget: str) -> list[dict]:
    """Each claim with the rule as it read before its last change (`earlier_rule`, from git: rule and regime check)
    and `earlier_verdict`, what the chapter's summary said then (`None` for a new claim). A claim that had a verdict
    before its rule's last change was judged before that change: its rule was written after results, whatever the
    configurations' history says."""
    table = rules(slug)
    changes = history.entry_changes(slug)
    for c in claims:
        rule = table.get(c["id"].split("/")[0])
        changed = changes.get(rule.id) if rule else None
        before = _summary_before(slug, budget, changed[0]) if changed else {}
        prior = _entry_before(slug, changed[0]).get(rule.id) if changed else None
        c["earlier_verdict"] = before.get(c["id"]) or (before.get(rule.earlier_id) if before and rule.earlier_id else None)
        c["earlier_rule"] = (f"{prior.rule} Regime check: {prior.regime or prior.no_regime or 'none'}"
                             if prior and (prior.rule, prior.regime, prior.no_regime) != (rule.rule, rule.regime, rule.no_regime)
                             else None)
        if c["earlier_verdict"] is not None:
            c["rule_changed_after_results"] = True
    return claims
