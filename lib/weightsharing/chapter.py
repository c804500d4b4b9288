"""What every notebook does around its experiments: resolve the budget, open the store, record provenance,
glue numbers into the prose, and write the summary the synthesis and status pages read."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from . import plotting, runs
from .errors import show_user_errors_briefly


def glue(name: str, value: Any) -> None:
    """Make `value` available to the prose as {glue:text}`name`; numpy scalars become plain Python numbers first
    (their repr, `np.float64(...)`, cannot be formatted by the book)."""
    from myst_nb import glue as myst_glue

    myst_glue(name, value.item() if hasattr(value, "item") else value, display=False)


@dataclass
class Chapter:
    slug: str
    budget_name: str
    budgets: dict[str, Any]
    device: str = "cpu"
    fresh: bool = False
    budget: Any = field(init=False)
    store: runs.Store = field(init=False)
    prov: dict = field(init=False)
    _start: float = field(init=False)

    def __post_init__(self):
        show_user_errors_briefly()
        self.budget = runs.resolve_budget(self.budgets, self.budget_name, self.slug)
        runs.check_device(self.device)
        self.store = runs.Store(runs.results_dir(self.slug, self.budget_name) / "runs.jsonl", fresh=self.fresh)
        self.prov = runs.provenance(self.device)
        self._start = time.perf_counter()
        plotting.style()

    def glue(self, name: str, value: Any) -> None:
        glue(name, value)

    def print_setup(self) -> None:
        print(f"{self.slug} at budget {self.budget_name!r}: {self.budget}")
        print("  ".join(f"{k}={v}" for k, v in self.prov.items()))
        print(f"results: {runs.shown(self.store.path)} ({len(self.store)} finished units on disk"
              f"{', ignored: fresh run' if self.fresh else ''})")
        for k in ("git_sha", "torch_version", "device", "started_at"):
            self.glue(f"prov_{k}", self.prov[k])
        self.glue("budget", self.budget_name)

    def finish(self, claims: list[dict], tables: dict[str, list[dict]]) -> None:
        """Write summary.json; the store keeps exactly the units this run of the notebook used."""
        self.store.drop_unused()
        path = runs.write_summary(self.slug, self.budget_name, store=self.store, prov=self.prov,
                                  wall_seconds=time.perf_counter() - self._start, claims=claims, tables=tables)
        print(f"wrote {runs.shown(path)}: {self.store.computed} units computed, {self.store.reused} reused")
