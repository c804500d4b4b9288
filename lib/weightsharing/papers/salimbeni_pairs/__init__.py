"""Salimbeni, Zeller, Mutlu, "Weight Sharing & Auxiliary Loss" (EPFL EE-559, 2021): MNIST digit pairs.

Task: two 14x14 digits in, 1 iff the first is <= the second. Ten models cross weight sharing (a shared
branch, or convolutions) with an auxiliary digit-classification loss. Spec: ../shared/specs/salimbeni.md.

models: the pairs, the arms and the paper's values; runs: budgets, protocols, training alone or stacked, the sweep;
analysis: Table I, collapsed runs, sensitivity; claims: S1-S7; figures; report: `run(ctx)`, the chapter.
"""
from .runs import BUDGETS, DATA, REVISION, SLUG, planned, train  # noqa: F401  (the `papers.Paper` interface)
from .report import run  # noqa: F401
from .speed import benchmarks, precision_cases  # noqa: F401
