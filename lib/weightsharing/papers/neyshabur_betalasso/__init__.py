"""Neyshabur, "Towards Learning Convolutions from Scratch" (NeurIPS 2020), through the EE-411 reproduction of
Alnuaimee, Cammarata and Sahebi (2024): can beta-lasso teach a fully connected net the locality of a convolution?

models: S-CONV, S-LOCAL, S-FC, 3-FC; runs: budgets, data, training, the sweep; analysis: locality, Table 2;
claims: N1-N7, A1, A2; ladder: the epoch ladder; figures; report: `run(ctx)`, the chapter.
Spec: ../shared/specs/neyshabur.md.
"""
from .runs import BUDGETS, DATA, REVISION, SLUG, planned, train  # noqa: F401  (the `papers.Paper` interface)
from .report import run  # noqa: F401
from .speed import benchmarks, precision_cases  # noqa: F401
