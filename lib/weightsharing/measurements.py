"""Speed measurements as data. `make bench` (`python -m weightsharing.papers.speed`) times every case once and writes
`results/benchmarks.json`, saying when, at which commit and on which machine; the chapters and the appendix page read
it. A book build times nothing, so a fresh clone's `make book` costs what the notebooks cost and no more, and its
pages show the same numbers however loaded the machine that builds them.

The file: {"measured_at", "commit", "machine": {...}, "quick": bool, "sections": {section: {table: [rows]}}}, one
section per chapter (its slug) and "book" for the shared layers and stacked seeds.
"""
from __future__ import annotations

import json
import os
import platform
from functools import lru_cache
from pathlib import Path

import pandas as pd
import torch

from .paths import results_root
from .provenance import git_sha, now
from .store import strict, write_atomic

FILE = "benchmarks.json"


def path() -> Path:
    return results_root() / FILE


def machine() -> dict:
    """What the timings depend on besides the code."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "platform": f"{platform.system()} {platform.machine()}", "torch": torch.__version__}


def write(sections: dict[str, dict[str, list[dict]]], *, quick: bool = False, commit: str | None = None,
          to: Path | None = None) -> Path:
    target = to or path()
    doc = {"measured_at": now(), "commit": commit or git_sha(), "machine": machine(), "quick": quick,
           "sections": sections}
    write_atomic(target, json.dumps(strict(doc), indent=1, allow_nan=False) + "\n")
    return target


def read() -> dict | None:
    """The stored measurements, or None where `make bench` never ran here (read once per version of the file)."""
    p = path()
    return _read(p, p.stat().st_mtime_ns) if p.exists() else None


@lru_cache(maxsize=4)
def _read(p: Path, mtime_ns: int) -> dict:
    return json.loads(p.read_text())


def tables(section: str) -> dict[str, pd.DataFrame]:
    """One section's tables as frames; {} where nothing is stored."""
    doc = read() or {}
    return {name: pd.DataFrame(rows) for name, rows in doc.get("sections", {}).get(section, {}).items()}


def provenance_line() -> str:
    """Where the stored numbers come from, for the line above each benchmark table."""
    doc = read()
    if doc is None:
        return "no stored measurements: run `make bench` to time these"
    m = doc["machine"]
    return (f"measured by `make bench` on {doc['measured_at'][:10]} at commit {doc['commit']}, on {m['cpu']} "
            f"({m['threads']} threads, torch {m['torch']}){' (quick)' if doc.get('quick') else ''}")
