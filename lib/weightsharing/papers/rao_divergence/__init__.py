"""Rao, Kriplani, Musco, "Weight Divergence in Convolutional Neural Networks" (NYU student project): train a CNN,
free its weights into a locally connected FCN of the same structure, fine-tune, and watch neighbouring filters drift.

models: the CNN, the FCN and the conversion; leak: the original code's in-place shuffle; runs: budgets, splits,
the two training stages and checkpoints; converged: the converged-start experiment; analysis: tables; claims: R1-R9;
figures; report: `run(ctx)`, the chapter. Spec: ../shared/specs/rao.md.
"""
from .runs import BUDGETS, DATA, REVISION, SLUG, planned, train  # noqa: F401  (the `papers.Paper` interface)
from .report import run  # noqa: F401
from .speed import benchmarks, precision_cases  # noqa: F401
