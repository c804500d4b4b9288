"""Claims as data and the one rule that turns a finding into a verdict.

Each chapter declares its claims in `papers/claims/<slug>.yml`: per claim its statement, the rule (test, arms,
threshold or margin, in words), the regime check it depends on and, where the rule changed after results were seen,
the earlier rule. A chapter's analysis measures each claim into a `Finding` (supported? significantly against? how
many runs in the smallest arm? did the regime check pass?) and `judge` gives the verdict:

- `not run`: the budget has no data for it;
- `not assessed`: fewer than MIN_RUNS independent runs in some compared arm;
- `holds`: the data support the claim by its rule;
- `contradicted`: the data significantly contradict it, in runs where the regime check passed (the paper's
  mechanism could act);
- `not reproduced at this budget`: not supported, and the regime check failed: our budget is too small to tell;
- `inconclusive`: neither support nor a significant contradiction.

`annotate` adds what the rule's history says: whether the rule was last changed (by its lines' commits, from `git
blame`) after any unit it judges had finished, so that part of its data could have been seen (stricter than "after
the newest unit": rules written after a first seed was seen count), and the verdict the chapter's summary gave
before that change.
`leave_one_out` recomputes every claim with each run left out: a verdict that changes, or whose evidence shrinks (a
cell drops out), is fragile.
"""
from __future__ import annotations

import json
import subprocess
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

VERDICTS = ("holds", "contradicted", "not reproduced at this budget", "inconclusive", "not assessed", "not run")
MIN_RUNS = 3
CLAIMS_DIR = Path(__file__).parent / "papers" / "claims"
_min_runs: ContextVar[int] = ContextVar("min_runs", default=MIN_RUNS)


@dataclass(frozen=True)
class Rule:
    id: str
    claim: str
    rule: str                     # the test, the arms, the threshold or margin: fixed before the data are read
    regime: str | None = None     # the condition under which the paper's mechanism can show, measured on the runs
    earlier: str | None = None    # the rule before its last change, where that change came after results
    larger_run: dict | None = None  # {"budget": ..., "experiments": [...]}: the run that would decide it
    earlier_id: str | None = None  # the id the claim had in earlier summaries (a claim split in two keeps its parent's)
    lines: tuple[int, int] = (0, 0)  # where the claim is declared in its file, for git blame


@lru_cache(maxsize=None)
def rules(slug: str) -> dict[str, Rule]:
    """The claims file of a chapter, in its order; each rule knows the lines that declare it."""
    import yaml

    path = CLAIMS_DIR / f"{slug}.yml"
    text = path.read_text()
    node = yaml.compose(text)
    out = {}
    for key, value in node.value:
        fields = yaml.safe_load(yaml.serialize(value))
        out[key.value] = Rule(id=key.value, lines=(key.start_mark.line + 1, value.end_mark.line), **fields)
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


def judge(rule: Rule, f: Finding) -> dict:
    """The verdict of `f` under `rule` (see the module's docstring), with the fields every summary carries."""
    min_runs = _min_runs.get()
    if f.n_runs is not None and f.n_runs < min_runs:
        verdict = "not assessed"
        evidence = f"fewer than {min_runs} runs in an arm (n = {f.n_runs}): {f.evidence}"
    else:
        verdict = ("holds" if f.support else
                   "contradicted" if f.against and f.regime is not False else
                   "not reproduced at this budget" if f.regime is False else "inconclusive")
        evidence = f.evidence
    if f.regime is not None and f.regime_evidence:
        evidence += f". Regime check {'passed' if f.regime else 'FAILED'}: {f.regime_evidence}"
    return {"id": rule.id, "claim": rule.claim, "verdict": verdict, "evidence": evidence, "test": rule.rule,
            "n_runs": None if f.n_runs is None else int(f.n_runs), "regime": None if rule.regime is None else
            {"check": rule.regime, "passed": f.regime}, "cells": list(f.cells), "first_unit": f.finished[0],
            "newest_unit": f.finished[1]}


def not_run(rule: Rule, why: str) -> dict:
    return {"id": rule.id, "claim": rule.claim, "verdict": "not run", "evidence": why, "test": rule.rule,
            "n_runs": 0, "regime": None if rule.regime is None else {"check": rule.regime, "passed": None},
            "cells": [], "first_unit": None, "newest_unit": None}


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
    count, unassessed = 0, []
    for run in runs:
        try:
            with relaxed(MIN_RUNS - 1):
                without = {c["id"]: c for c in claims_without(run)}
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
            unassessed.append(describe(run))
            continue
        count += 1
        for c in base:
            if c["verdict"] == "not run":
                continue
            other = without.get(c["id"])
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
        c = {**c, "fragile": fragile, "runs_left_out": count, "decided_by": decided}
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


# ---------------------------------------------------------------------------------------------- rule history

def _git(*args: str) -> str | None:
    from .paths import repo_root

    try:
        done = subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@lru_cache(maxsize=None)
def _blame(slug: str) -> tuple[tuple[str, str], ...] | None:
    """(commit, committer time ISO) per line of the claims file; commit "" for an uncommitted line; None without git."""
    from .paths import repo_root

    path = CLAIMS_DIR / f"{slug}.yml"
    out = _git("blame", "--line-porcelain", "--", str(path.relative_to(repo_root())))
    if out is None:  # not a git checkout, or a file git does not track yet: every line is new
        if _git("rev-parse", "--git-dir") is None:
            return None
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return tuple(("", now) for _ in path.read_text().splitlines())
    lines, commit, when = [], "", ""
    for line in out.splitlines():
        head = line.split(" ")
        if len(head[0]) == 40 and all(ch in "0123456789abcdef" for ch in head[0]) and len(head) >= 3:
            commit = "" if set(head[0]) == {"0"} else head[0]
        elif line.startswith("committer-time "):
            when = datetime.fromtimestamp(int(line.split()[1]), timezone.utc).isoformat(timespec="seconds")
        elif line.startswith("\t"):
            lines.append((commit, when if commit else datetime.now(timezone.utc).isoformat(timespec="seconds")))
    return tuple(lines)


def rule_changed(slug: str, rule: Rule) -> tuple[str, str] | None:
    """(commit, time) of the newest change to the claim's declaration; commit "" if it is uncommitted."""
    blame = _blame(slug)
    if not blame:
        return None
    first, last = rule.lines
    return max(blame[first - 1:last], key=lambda cw: cw[1])


@lru_cache(maxsize=None)
def _summary_before(slug: str, budget: str, commit: str) -> dict:
    """claim id -> verdict in the chapter's committed summary just before `commit` (HEAD's for uncommitted rules)."""
    ref = f"{commit}^" if commit else "HEAD"
    text = _git("show", f"{ref}:book/results/{slug}/{budget}/summary.json")
    try:
        return {c["id"]: c["verdict"] for c in json.loads(text)["claims"]} if text else {}
    except (json.JSONDecodeError, KeyError, TypeError):
        return {}


def annotate(claims: list[dict], slug: str, budget: str) -> list[dict]:
    """Each claim with `rule_changed_after_results` (the rule's last change came after the first unit it judges had
    finished) and, wherever the rule records an earlier one, `earlier_verdict`: what the chapter's summary said before
    the last change (under the earlier rule, on the runs of that time; `None` for a claim that is new)."""
    table = rules(slug)
    for c in claims:
        rule = table.get(c["id"].split("/")[0])
        changed = rule_changed(slug, rule) if rule else None
        after = bool(changed and c.get("first_unit") and changed[1] > c["first_unit"])
        c["rule_changed_after_results"] = after
        c["rule_changed_at"] = changed[1] if changed else None
        c["earlier_rule"] = rule.earlier if rule else None
        before = _summary_before(slug, budget, changed[0]) if changed and rule.earlier else {}
        c["earlier_verdict"] = before.get(c["id"]) or (before.get(rule.earlier_id) if before else None)
    return claims
