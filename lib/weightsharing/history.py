"""What git says about the order of things: when each claim's rule was last written, which commit froze it, whether a
unit was trained after that commit, and when the data of a configuration first existed.

- `entry_changes(slug)`: per claim, the newest commit and time that changed the lines of its frozen fields (statement,
  rule, regime check, seeds) in `papers/claims/<slug>.yml`, by `git blame -M -C`, so that a claim moved within the
  file, or copied from another, keeps the commit that wrote it. Comments, `earlier` and `larger_run` are history and
  pointers, not the rule: editing them freezes nothing anew.
- `descends(commit, ancestor)`: `ancestor` is `commit` or one of its ancestors (`git merge-base --is-ancestor`).
- `first_seen(slug)`: per configuration (a unit's key without revision, seed or trial, so that retraining an arm at a
  new revision or adding seeds to it does not make its data new), the earliest `finished_at` of any record of it in any committed version
  of the chapter's `runs.jsonl` files or in the working tree.

Every function takes the repository to ask (`repo`, default this checkout), so tests can build a throwaway one.
"""
from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from .paths import repo_root

CLAIMS_DIR = Path(__file__).parent / "papers" / "claims"
FROZEN_FIELDS = ("claim", "rule", "regime", "no_regime", "seeds")


def git(*args: str, repo: Path | None = None) -> str | None:
    """`git args` in `repo`: its stdout, or None where git or the repository is missing or the command fails."""
    try:
        done = subprocess.run(["git", *args], cwd=repo or repo_root(), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _utc(seconds: str) -> str:
    return datetime.fromtimestamp(int(seconds), timezone.utc).isoformat(timespec="seconds")


def _now() -> str:  # provenance.now's twin: provenance imports torch, and the verdict machinery need not
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def blame(path: Path, repo: Path | None = None) -> list[tuple[str, str]] | None:
    """(full commit, committer time ISO) per line of `path`, following moves and copies; commit "" for an uncommitted
    line (its time is now). None outside a git checkout; every line uncommitted for a file git does not track."""
    repo = repo or repo_root()
    out = git("blame", "-M", "-C", "--line-porcelain", "--", str(Path(path).resolve().relative_to(repo.resolve())),
              repo=repo)
    if out is None:
        if git("rev-parse", "--git-dir", repo=repo) is None:
            return None
        return [("", _now()) for _ in Path(path).read_text().splitlines()]
    lines, commit, when = [], "", ""
    for line in out.splitlines():
        head = line.split(" ")
        if len(head[0]) == 40 and len(head) >= 3 and all(ch in "0123456789abcdef" for ch in head[0]):
            commit = "" if set(head[0]) == {"0"} else head[0]
        elif line.startswith("committer-time "):
            when = _utc(line.split()[1])
        elif line.startswith("\t"):
            lines.append((commit, when if commit else _now()))
    return lines


def newest(lines: list[tuple[str, str]] | None, spans: list[tuple[int, int]]) -> tuple[str, str] | None:
    """The newest (commit, time) among the 1-based inclusive line `spans`; an uncommitted line is newest of all."""
    if not lines:
        return None
    picked = [lines[i - 1] for a, b in spans for i in range(a, b + 1) if 0 < i <= len(lines)]
    if not picked:
        return None
    uncommitted = [cw for cw in picked if not cw[0]]
    return uncommitted[0] if uncommitted else max(picked, key=lambda cw: cw[1])


@lru_cache(maxsize=None)
def entry_changes(slug: str) -> dict[str, tuple[str, str]]:
    """claim id -> (commit, time) of the newest change to its frozen fields; commit "" while uncommitted."""
    from .verdicts import rules

    path = CLAIMS_DIR / f"{slug}.yml"
    lines = blame(path)
    out = {}
    for rule in rules(slug).values():
        changed = newest(lines, list(rule.frozen_lines))
        if changed:
            out[rule.id] = changed
    return out


@lru_cache(maxsize=4096)
def descends(commit: str, ancestor: str, repo: Path | None = None) -> bool:
    """Whether `commit` is `ancestor` or descends from it. An unknown, uncommitted (`+dirty`) or missing commit does
    not: nothing can show that its unit was trained from the frozen rule's code."""
    if not commit or not ancestor or commit.endswith("+dirty") or commit in ("unknown", "unrecorded"):
        return False
    return git("merge-base", "--is-ancestor", ancestor, commit, repo=repo) is not None


NOT_CONFIG = ("rev", "revision", "seed", "trial")


def config(key: dict) -> str:
    """A unit's configuration, the arm it belongs to: its key without revision, seed or trial (at any depth),
    canonical JSON. Retraining an arm at a new revision, or adding seeds to it, does not make its data new."""
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in NOT_CONFIG}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return json.dumps(strip(key), sort_keys=True, separators=(",", ":"))


def _earliest(text: str, into: dict[str, str]) -> None:
    for line in text.splitlines():
        try:
            r = json.loads(line)
            c, t = config(r["key"]), r.get("finished_at")
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        if t and (c not in into or t < into[c]):
            into[c] = t


@lru_cache(maxsize=None)
def first_seen(slug: str, repo: Path | None = None) -> dict[str, str]:
    """configuration -> the earliest finished_at of any record of it, committed (any version, any budget of this
    chapter) or on disk now."""
    repo = repo or repo_root()
    rel = f"book/results/{slug}"
    seen: dict[str, str] = {}
    log = git("log", "--format=%H", "--", rel, repo=repo) or ""
    for commit in log.split():
        files = git("ls-tree", "-r", "--name-only", commit, "--", rel, repo=repo) or ""
        for name in files.split():
            if name.endswith("runs.jsonl"):
                _earliest(git("show", f"{commit}:{name}", repo=repo) or "", seen)
    for path in (repo / rel).glob("*/runs.jsonl"):
        _earliest(path.read_text(), seen)
    return seen
