"""The results store: finished units of work keyed by their config, so an interrupted sweep resumes.

A unit is one model, one setting, one seed. Its key is the config dict (including the paper's revision
number); `Store.run(key, fn)` returns the stored record if that key finished before, else calls `fn()` and
appends the record. Every write replaces `runs.jsonl` atomically (temp file + `os.replace`), so a kill at any
moment leaves either the old or the new file, never half a line.
"""
from __future__ import annotations

import base64
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import torch

from .errors import UserError

T = TypeVar("T")
BUDGET_NAMES = ("smoke", "cpu", "paper")
VERDICTS = ("holds", "does not hold", "inconclusive", "not run")


def repo_root() -> Path:
    """The checkout this package is installed from (editable install), else the working directory."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "_toc.yml").exists() else Path.cwd()


def results_root() -> Path:
    root = os.environ.get("WEIGHTSHARING_RESULTS")
    return Path(root) if root else repo_root() / "book" / "results"


def shown(path: Path) -> str:
    """A path as a reader of the book should see it: relative to the checkout, never this machine's folders."""
    try:
        return str(Path(path).resolve().relative_to(repo_root()))
    except ValueError:
        return Path(path).name


def results_dir(slug: str, budget: str) -> Path:
    return results_root() / slug / budget


def canonical(key: dict) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def replace_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` into a temporary file beside `path`, then move it over `path`: a reader (or a kill) sees the old
    file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_atomic(path: Path, text: str) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    replace_atomic(path, write)


@dataclass
class Store:
    """`runs.jsonl` of one notebook and budget. `fresh=True` ignores (and on the first write replaces) old records."""

    path: Path
    fresh: bool = False
    log: Callable[[str], None] = print
    records: dict[str, dict] = field(default_factory=dict, init=False)
    computed: int = field(default=0, init=False)
    reused: int = field(default=0, init=False)
    used: set = field(default_factory=set, init=False)  # keys asked for since this store was opened

    def __post_init__(self):
        self.path = Path(self.path)
        if self.path.exists() and not self.fresh:
            self._read()

    def _read(self) -> None:
        lines = self.path.read_text().splitlines()
        rejected = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self.records[canonical(record["key"])] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                rejected.append((number, line))
        if rejected:
            # A damaged line is moved aside, never silently dropped: its unit is recomputed and the text kept.
            quarantine = self.path.with_name(self.path.name + ".rejected")
            with open(quarantine, "a") as f:
                f.writelines(line + "\n" for _, line in rejected)
            numbers = ", ".join(str(n) for n, _ in rejected)
            self.log(f"WARNING: {self.path}: line(s) {numbers} of {len(lines)} are not complete JSON records "
                     f"(an interrupted or hand edit?); moved them to {quarantine.name} and will recompute those units")
            self._flush()

    def _flush(self) -> None:
        write_atomic(self.path, "".join(json.dumps(strict(r), sort_keys=True, allow_nan=False) + "\n"
                                        for r in self.records.values()))

    def __len__(self) -> int:
        return len(self.records)

    @property
    def compute_seconds(self) -> float:
        """Training time of every stored unit, whenever it was computed."""
        return sum(r["seconds"] for r in self.records.values())

    def __contains__(self, key: dict) -> bool:
        return canonical(key) in self.records

    def run(self, key: dict, fn: Callable[[], dict]) -> dict:
        """The record for `key`: stored if finished before, else `fn()`'s result dict, timed and stored."""
        k = canonical(key)
        self.used.add(k)
        if k in self.records:
            self.reused += 1
            return self.records[k]
        start = time.perf_counter()
        result = fn()
        record = {"key": key, **result, "seconds": round(time.perf_counter() - start, 3),
                  "finished_at": now(), "device": result.get("device", "cpu")}
        self.records[k] = record
        self.computed += 1
        self._flush()
        return record

    def drop_unused(self) -> int:
        """Remove the records no run asked for since opening (a budget's plan changed); returns how many."""
        stale = [k for k in self.records if k not in self.used]
        for k in stale:
            del self.records[k]
        if stale:
            self.log(f"dropped {len(stale)} stored unit(s) that are no longer in this budget's plan")
            self._flush()
        return len(stale)


def pack_float16(x) -> dict:
    """A small float array (first-layer filters for a figure, say) as float16 bytes in base64: a tenth of its JSON
    text. `unpack_float16` returns it as float32."""
    a = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float16)
    return {"shape": list(a.shape), "float16_b64": base64.b64encode(a.tobytes()).decode()}


def unpack_float16(d: dict):
    return np.frombuffer(base64.b64decode(d["float16_b64"]), dtype=np.float16).reshape(d["shape"]).astype(np.float32)


def pack_bits(bits) -> str:
    """Per-example booleans (correct or not, for paired tests) as base64 of packed bits: 1 250 bytes per 10 000."""
    return base64.b64encode(np.packbits(np.asarray(bits, dtype=bool)).tobytes()).decode()


def unpack_bits(text: str, n: int):
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:n].astype(bool)


def sweep(store: Store, plan: list[T], *, key: Callable[[T], dict], run: Callable[[T], dict],
          describe: Callable[[T, dict], str]) -> list[dict]:
    """Run every item of `plan` through the store and return its records in plan order.

    Items whose keys are equal (one unit used by two experiments) are trained once. Prints one line per unit
    trained now and a single line for all units reused from disk.
    """
    units: dict[str, T] = {}
    for item in plan:
        units.setdefault(canonical(key(item)), item)
    records, reused = {}, 0
    width = len(str(len(units)))
    for i, (k, item) in enumerate(units.items(), 1):
        stored = k in store.records
        records[k] = store.run(key(item), lambda: run(item))
        if stored:
            reused += 1
        else:
            store.log(f"[{i:>{width}}/{len(units)}] {describe(item, records[k])}  ({records[k]['seconds']:.1f} s)")
    store.log(f"{len(units)} units: {len(units) - reused} trained now, {reused} reused from {store.path.name}")
    return [records[canonical(key(item))] for item in plan]


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


def strict(value):
    """`value` with every NaN or infinity replaced by None (null), so that any JSON reader, a browser included,
    accepts the file (Python's json writes NaN, which is not JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return strict(value.tolist())
    return value


def write_summary(slug: str, budget: str, *, store: Store, prov: dict, wall_seconds: float,
                  claims: list[dict], tables: dict[str, list[dict]]) -> Path:
    bad = [c["id"] for c in claims if c["verdict"] not in VERDICTS]
    if bad:
        raise ValueError(f"claims {bad} have a verdict outside {VERDICTS}")
    summary = {
        "slug": slug, "budget": budget, "git_sha": prov["git_sha"], "finished_at": now(),
        "wall_seconds": round(wall_seconds, 1), "device": prov["device"], "torch_version": prov["torch_version"],
        "units": len(store), "units_computed": store.computed, "units_reused": store.reused,
        "compute_seconds": round(store.compute_seconds, 1),
        "claims": claims, "tables": tables,
    }
    path = store.path.with_name("summary.json")
    write_atomic(path, json.dumps(strict(summary), indent=1, allow_nan=False) + "\n")
    return path


def read_summaries(budget: str | None = None) -> list[dict]:
    out = []
    for path in sorted(results_root().glob("*/*/summary.json")):
        try:
            s = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise UserError(f"{path} is not valid JSON; rerun its notebook (python -m weightsharing run "
                            f"{path.parents[1].name} --budget {path.parent.name})") from None
        if budget is None or s["budget"] == budget:
            out.append(s)
    return out


def resolve_budget(budgets: dict[str, Any], name: str, slug: str):
    if name not in budgets:
        raise UserError(f"unknown budget {name!r} for {slug}: choose one of {', '.join(budgets)}")
    return budgets[name]
