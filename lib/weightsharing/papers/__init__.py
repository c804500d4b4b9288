"""One package per paper: models, runs, analysis, claims, figures, and `report` (its `run(ctx)`). The registry maps
notebook slugs to packages, and `Paper` is what every one of them offers the drivers (the CLI, the notebook helper)."""
from __future__ import annotations

from importlib import import_module
from typing import Any, Protocol, runtime_checkable

from ..context import RunContext
from ..errors import UserError
from ..results import Results


@runtime_checkable
class Paper(Protocol):
    """A paper's module (a package's __init__) as the drivers read it."""

    SLUG: str                   # the notebook's name and the results folder
    REVISION: int               # bumped whenever a change alters the chapter's results (part of every unit key)
    DATA: tuple[str, ...]       # datasets a run needs, checked before anything starts
    BUDGETS: dict[str, Any]     # smoke, cpu, paper

    def train(self, ctx: RunContext) -> Any:
        """Every unit of `ctx.budget` through `ctx.store`, nothing else (what a shard runs)."""

    def run(self, ctx: RunContext) -> Results:
        """The chapter: every unit through the store (trained or reused), then its tables, figures, glued values,
        claims and ladder rows."""

    def planned(self, budget: Any, store: Any = None) -> list:
        """Every unit as `planning.Planned`, for `plan`, the cost line and the paper-scale tests."""

    def benchmarks(self, *, quick: bool = False) -> dict[str, list[dict]]:
        """The chapter's speed measurements, table name -> rows, for `make bench` (never timed by a book build)."""

    def precision_cases(self) -> list:
        """`bench.PrecisionCase` per model: its training step, timed in bf16 against fp32 by `make bench`, and the
        precision the chapter decided for its new units."""

# Every slug of the book (DESIGN.md); a slug maps to its module once its chapter exists.
PLANNED = ("zhang_locality", "rao_divergence", "salimbeni_pairs", "chang_arbnets", "neyshabur_betalasso")
IMPLEMENTED = ("zhang_locality", "rao_divergence", "salimbeni_pairs", "chang_arbnets", "neyshabur_betalasso")


def paper(slug: str) -> Paper:
    if slug not in IMPLEMENTED:
        planned = f" ({slug} is planned but has no chapter yet)" if slug in PLANNED else ""
        raise UserError(f"unknown notebook {slug!r}{planned}: choose one of {', '.join(IMPLEMENTED)}")
    return import_module(f"{__name__}.{slug}")
