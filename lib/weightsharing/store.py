"""The results store: finished units of work keyed by their config, so an interrupted sweep resumes.

A unit is one model, one setting, one seed. Its key is the config dict (including the paper's revision
number); `Store.run(key, fn)` returns the stored record if that key finished before, else calls `fn()` and
stores the record. Every write replaces `runs.jsonl` atomically (temp file + `os.replace`), so a kill at any
moment leaves either the old or the new file, never half a line.

Many writers (two notebooks, or the shards of a job array on a shared filesystem) may write one store at once.
A write takes an exclusive lock on `runs.jsonl.lock` (`flock`), re-reads the file, adds this writer's new
units to what the others stored meanwhile, and replaces the file: nothing is lost, and a key is stored once
(the first writer to store it wins). We chose one locked file over one file per writer because the committed
store stays one file that a reader (or a browser) loads as it is, with no merge step that could be skipped;
the lock is held for milliseconds per unit. It needs a filesystem with working `flock` (local disks, NFSv4,
Lustre mounted with `-o flock`, GPFS). Before training a unit the store re-reads the file if it changed, so a
unit another writer finished meanwhile is reused, not retrained.

Reproducible units: `Store(strict=True)` (every budget but `smoke`) refuses to train a unit from a working tree
whose `lib/` has uncommitted changes, since no commit could reproduce it, and does not reuse a stored unit whose
commit ends in `+dirty`: that unit is retrained and its record replaced.

Shards: `Store(shard=(i, n))` owns the units whose stable hash (SHA-1 of the canonical key, or of a group
key for units that must run together) is i - 1 modulo n; `sweep` trains only those and leaves the others to
their shards. Every shard runs the same plan, so a job array needs no coordinator.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from .errors import UserError
from .paths import shown
from .provenance import git_sha, now

T = TypeVar("T")


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


def shard_of(key: dict | str, n: int) -> int:
    """The shard (1..n) a unit belongs to: stable across processes, machines and Python versions."""
    text = key if isinstance(key, str) else canonical(key)
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % n + 1


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`"I/N"` -> (I, N) with 1 <= I <= N; None stays None."""
    if text is None:
        return None
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        i = n = 0
    if not 1 <= i <= n:
        raise UserError(f"--shard {text!r} is not I/N with 1 <= I <= N: e.g. --shard 1/4 for the first of four")
    return i, n


@dataclass
class Store:
    """`runs.jsonl` of one notebook and budget. `fresh=True` ignores the records stored before it opened (and
    replaces them as it recomputes them); `shard=(i, n)` makes `owns` true for this shard's units only."""

    path: Path
    fresh: bool = False
    log: Callable[[str], None] = print
    shard: tuple[int, int] | None = None
    strict: bool = False                                 # refuse uncommitted code; retrain units trained from it
    budget: str = ""                                     # named in the refusal
    records: dict[str, dict] = field(default_factory=dict, init=False)
    computed: int = field(default=0, init=False)
    reused: int = field(default=0, init=False)
    used: set = field(default_factory=set, init=False)   # keys asked for since this store was opened
    _mine: set = field(default_factory=set, init=False)  # keys this writer stored
    _gone: set = field(default_factory=set, init=False)  # keys this writer removes (stale under fresh, unused)
    _seen: tuple = field(default=(), init=False)         # (mtime_ns, size) of the file when last read
    _commit: str = field(default="", init=False)         # the code that trains this writer's units (git_sha)

    def __post_init__(self):
        self.path = Path(self.path)
        if self.fresh and self.shard is not None:
            raise UserError("--fresh cannot be combined with --shard (each shard would discard the others' units): "
                            f"delete {self.path} once, then run the shards")
        if self.path.exists():  # no lock to read: every write is an atomic replace, so the file is always whole
            disk = self._read(report=True)
            if self.fresh:
                self._gone = set(disk)
            elif self.strict:
                self._gone = {k for k, r in disk.items() if str(r.get("commit", "")).endswith("+dirty")}
                if self._gone:
                    self.log(f"{len(self._gone)} stored unit(s) were trained from uncommitted code: they will be "
                             "retrained, not reused")
            self.records = {k: v for k, v in disk.items() if k not in self._gone}

    @contextmanager
    def _lock(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _stat(self) -> tuple:
        try:
            st = self.path.stat()
            return st.st_mtime_ns, st.st_size
        except FileNotFoundError:
            return ()

    def _read(self, *, report: bool = False) -> dict[str, dict]:
        """The records on disk. With `report`, damaged lines are moved aside (never silently dropped) and said."""
        self._seen = self._stat()
        if not self._seen:
            return {}
        lines = self.path.read_text().splitlines()
        disk, rejected = {}, []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                disk.setdefault(canonical(record["key"]), record)
            except (json.JSONDecodeError, KeyError, TypeError):
                rejected.append((number, line))
        if rejected and report:
            quarantine = self.path.with_name(self.path.name + ".rejected")
            with open(quarantine, "a") as f:
                f.writelines(line + "\n" for _, line in rejected)
            numbers = ", ".join(str(n) for n, _ in rejected)
            self.log(f"WARNING: {shown(self.path)}: line(s) {numbers} of {len(lines)} are not complete JSON records "
                     f"(an interrupted or hand edit?); moved them to {quarantine.name} and will recompute those units")
            with self._lock():  # re-read under the lock, so a unit another writer stored meanwhile is kept
                disk = self._read()
                self._write(disk)
        return disk

    def _write(self, records: dict[str, dict]) -> None:
        write_atomic(self.path, "".join(json.dumps(strict(r), sort_keys=True, allow_nan=False) + "\n"
                                        for r in records.values()))
        self._seen = self._stat()

    def _refresh(self) -> None:
        """Take in what other writers stored since the last read (no lock: every write is an atomic replace)."""
        if self._stat() != self._seen:
            disk = self._read()
            self.records = {**{k: v for k, v in disk.items() if k not in self._gone},
                            **{k: self.records[k] for k in self._mine if k not in disk or k in self._gone}}

    def _flush(self) -> None:
        """Merge this writer's units into the file as it is now, under the lock; the first stored record of a key wins."""
        with self._lock():
            disk = self._read()
            merged = {k: v for k, v in disk.items() if k not in self._gone}
            for k in self._mine:
                merged.setdefault(k, self.records[k])
            self._write(merged)
        self.records = merged

    def __len__(self) -> int:
        return len(self.records)

    @property
    def compute_seconds(self) -> float:
        """Training time of every stored unit, whenever it was computed."""
        return sum(r["seconds"] for r in self.records.values())

    def __contains__(self, key: dict) -> bool:
        return canonical(key) in self.records

    def owns(self, key: dict | str) -> bool:
        """Whether this writer trains `key` (or the units of group key `key`): always, unless sharded."""
        return self.shard is None or shard_of(key, self.shard[1]) == self.shard[0]

    def run(self, key: dict, fn: Callable[[], dict]) -> dict:
        """The record for `key`: stored if finished before (by any writer), else `fn()`'s result dict, timed and stored."""
        return self.run_stack([key], lambda: [fn()])[0]

    def run_stack(self, keys: list[dict], fn: Callable[[], list[dict]]) -> list[dict]:
        """`run` for units trained together (seeds stacked in one step): `fn()` returns their results in order, and
        each record gets an equal share of the stack's seconds. All stored already: nothing runs."""
        ks = [canonical(key) for key in keys]
        self.used.update(ks)
        if any(k not in self.records for k in ks):
            self._refresh()
        if all(k in self.records for k in ks):
            self.reused += len(ks)
            return [self.records[k] for k in ks]
        self._commit = self._commit or git_sha()
        if self.strict and self._commit.endswith("+dirty"):
            raise UserError(f"budget {self.budget or 'cpu'!r} stores only units trained from committed code, and lib/ "
                            "has uncommitted changes: commit them (or stash them), then run again; `smoke` allows it")
        start = time.perf_counter()
        results = fn()
        seconds = round((time.perf_counter() - start) / len(ks), 3)
        records = [{"key": key, **result, "seconds": seconds, "finished_at": now(), "commit": self._commit,
                    "device": result.get("device", "cpu"), **({"stacked": len(ks)} if len(ks) > 1 else {})}
                   for key, result in zip(keys, results)]
        for k, record in zip(ks, records):
            self.records[k] = record
            self._mine.add(k)  # under fresh, k may also be in _gone: then this record replaces the stale one on disk
        self.computed += len(ks)
        self._flush()
        if any(self.records[k] is not r for k, r in zip(ks, records)):
            self.log(f"another writer stored a unit of this stack first; keeping its record ({ks[0][:80]})")
        return [self.records[k] for k in ks]

    def drop_unused(self) -> int:
        """Remove the records no run asked for since opening (a budget's plan changed); returns how many."""
        stale = [k for k in self.records if k not in self.used]
        if stale:
            self._gone.update(stale)
            self._mine.difference_update(stale)
            self.log(f"dropped {len(stale)} stored unit(s) that are no longer in this budget's plan")
            self._flush()
        return len(stale)


# What a record says about where and when it was trained, not what it found: two records of one key that differ only
# here agree (the same unit trained twice, on two shards, say).
PROVENANCE_FIELDS = ("seconds", "finished_at", "commit", "commit_inferred", "device", "stacked")


def merge_stores(sources: list[Path], into: Path) -> dict:
    """The union of several results roots (each holding <slug>/<budget>/runs.jsonl, e.g. the artifacts of a job
    array's shards) written into the results root `into`. Per store, what `into` already holds comes first, then the
    sources in order, and the first record of a key wins; a later record of the same key that differs in anything but
    provenance is a conflict, counted and named. Returns {store: {"records", "added", "conflicts": [keys]}}."""
    report = {}
    stores = sorted({p.relative_to(src) for src in sources for p in Path(src).glob("*/*/runs.jsonl")})
    if not stores:
        raise UserError(f"no <slug>/<budget>/runs.jsonl under {', '.join(map(str, sources))}: pass the folders the "
                        "shards wrote their results into (their book/results)")
    for rel in stores:
        target = Store(Path(into) / rel, log=lambda s: None)
        before = len(target.records)
        conflicts = []
        for src in sources:
            if not (Path(src) / rel).exists():
                continue
            for k, record in Store(Path(src) / rel, log=lambda s: None).records.items():
                kept = target.records.get(k)
                if kept is None:
                    target.records[k] = record
                    target._mine.add(k)
                elif _finding(kept) != _finding(record):
                    conflicts.append(k)
        if target._mine:
            target._flush()
        report[rel.parent.as_posix()] = {"records": len(target.records), "added": len(target.records) - before,
                                         "conflicts": conflicts}
    return report


def _finding(record: dict) -> str:
    return canonical({k: v for k, v in record.items() if k not in PROVENANCE_FIELDS})


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
          describe: Callable[[T, dict], str], group: Callable[[T], dict] | None = None,
          stack: Callable[[T], dict] | None = None, run_stack: Callable[[list[T]], list[dict]] | None = None,
          max_stack: int = 10) -> list[dict | None]:
    """Run every item of `plan` through the store and return its records in plan order.

    Items whose keys are equal (one unit used by two experiments) are trained once. Prints one line per unit
    trained now and a single line for all units reused from disk. On a sharded store, a unit that is not stored
    and belongs to another shard (by its key, or by `group(item)` for units that must run together) is left
    to that shard: its place in the returned list is None. With `stack`, the missing units of one stack key
    (the seeds of one configuration) train together through `run_stack(items)`, on the shard of their stack key, at
    most `max_stack` at a time: a stack of 100 seeds spent most of its time in the kernel allocating and zeroing
    memory, and since each unit's randomness comes from its own key, how the seeds are grouped changes no result.
    """
    units: dict[str, T] = {}
    for item in plan:
        units.setdefault(canonical(key(item)), item)
    owner = stack or group or key
    records, reused, left = {}, 0, 0
    width = len(str(len(units)))
    index = {k: i for i, k in enumerate(units, 1)}
    stack_of = {k: canonical(stack(item)) for k, item in units.items()} if stack else {}
    for k, item in units.items():
        if k in records:
            continue
        if k in store.records:
            records[k], reused = store.run(key(item), lambda: run(item)), reused + 1
            continue
        if not store.owns(owner(item)):
            records[k], left = None, left + 1
            continue
        if stack is None:
            batch = {k: item}
        else:
            batch = dict(list({j: other for j, other in units.items()
                               if j not in records and j not in store.records and stack_of[j] == stack_of[k]}.items())
                         [:max_stack])
        trained = (store.run_stack([key(i) for i in batch.values()], lambda: run_stack(list(batch.values())))
                   if stack is not None else [store.run(key(item), lambda: run(item))])
        for (j, other), record in zip(batch.items(), trained):
            records[j] = record
            store.log(f"[{index[j]:>{width}}/{len(units)}] {describe(other, record)}  ({record['seconds']:.1f} s"
                      + (f", 1/{record['stacked']} of a stack" if record.get("stacked") else "") + ")")
    trained = len(units) - reused - left
    shard = f", {left} left to the other shards" if store.shard else ""
    store.log(f"{len(units)} units: {trained} trained now, {reused} reused from {store.path.name}{shard}")
    return [records[canonical(key(item))] for item in plan]


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
