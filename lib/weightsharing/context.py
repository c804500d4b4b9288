"""What a paper's `run(ctx)` and `train(ctx)` get from outside: the budget, the device and the results store. Opening a
context checks them, sets torch up once for the whole process, and records the provenance."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import UserError
from .paths import results_dir
from .provenance import provenance
from .store import Store

BUDGET_NAMES = ("smoke", "cpu", "paper")


@dataclass
class RunContext:
    slug: str
    budget_name: str
    budget: Any               # the paper's budget dataclass for budget_name
    device: str
    store: Store
    fresh: bool = False
    prov: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def open(cls, paper: Any, budget_name: str, *, device: str = "cpu", fresh: bool = False,
             shard: tuple[int, int] | None = None, threads: int | None = None, log=print) -> RunContext:
        """The context of one paper (its module: SLUG and BUDGETS) at one budget, with its store under book/results."""
        budget = resolve_budget(paper.BUDGETS, budget_name, paper.SLUG)
        check_device(device)
        configure_torch(device, threads=threads)
        store = Store(results_dir(paper.SLUG, budget_name) / "runs.jsonl", fresh=fresh, shard=shard, log=log,
                      strict=budget_name != "smoke", budget=budget_name)
        return cls(paper.SLUG, budget_name, budget, device, store, fresh, provenance(device))


def configure_torch(device: str, *, threads: int | None = None) -> None:
    """Once per process, before any unit trains. Threads: `threads`, else $WEIGHTSHARING_THREADS, else torch's choice
    (two shards sharing one machine should split its cores). On CUDA, TF32 matmuls and convolutions: the throughput
    `planning.ASSUMED_GPU` is quoted at."""
    threads = threads or int(os.environ.get("WEIGHTSHARING_THREADS") or 0)
    if threads:
        torch.set_num_threads(threads)
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True


def resolve_budget(budgets: dict[str, Any], name: str, slug: str):
    if name not in budgets:
        raise UserError(f"unknown budget {name!r} for {slug}: choose one of {', '.join(budgets)}")
    return budgets[name]


def check_device(device: str) -> None:
    """`device` names a torch device this machine has: one line otherwise, before anything is trained."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UserError(f"{device!r} is not a torch device: use cpu, cuda, cuda:1 or mps") from None
    available = {"cpu": lambda: True, "cuda": torch.cuda.is_available,
                 "mps": lambda: torch.backends.mps.is_available()}.get(dev.type, lambda: False)()
    if not available:
        raise UserError(f"device {device!r} is not available on this machine: use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)")
