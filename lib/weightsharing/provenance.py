"""What a record or a summary says about where it came from: the commit, the software, the machine, the time."""
from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .paths import repo_root, results_root


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo_root(), capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "lib"], cwd=repo_root(),
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(device: str | torch.device = "cpu") -> dict[str, Any]:
    return {"git_sha": git_sha(), "python": platform.python_version(), "torch_version": torch.__version__,
            "numpy_version": np.__version__, "device": str(device), "threads": torch.get_num_threads(),
            "platform": f"{platform.system()} {platform.machine()}", "started_at": now(),
            "argv0": Path(sys.argv[0]).name}


def trained_provenance(records) -> dict:
    """Where a chapter's units come from: how many were trained at each commit, and the UTC time range."""
    records = list(records)
    commits: dict[str, int] = {}
    for r in records:
        commit = r.get("commit", "unrecorded") + (" (inferred)" if r.get("commit_inferred") else "")
        commits[commit] = commits.get(commit, 0) + 1
    times = sorted(r["finished_at"] for r in records if r.get("finished_at"))
    return {"commits": dict(sorted(commits.items(), key=lambda kv: -kv[1])),
            "from": times[0] if times else None, "to": times[-1] if times else None}


def training_minutes_at(commit: str, budget: str) -> dict:
    """Each chapter's training minutes (the sum of its units' seconds) in the summaries committed at `commit`: the
    "before" of a speed-up, read from git so that no number is copied by hand. Written to TIMING_BASELINE."""
    minutes = {}
    for path in sorted(results_root().glob(f"*/{budget}/summary.json")):
        rel = path.relative_to(repo_root()).as_posix()
        shown = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=repo_root(), capture_output=True, text=True)
        if shown.returncode == 0:
            minutes[path.parents[1].name] = round(json.loads(shown.stdout)["compute_seconds"] / 60, 2)
    return {"commit": commit, "budget": budget, "training_minutes": minutes}


TIMING_BASELINE = "timing_baseline.json"  # in results_root(): training_minutes_at(the commit before the speed-ups)
