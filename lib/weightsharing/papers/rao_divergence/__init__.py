"""Rao, Kriplani, Musco, "Weight Divergence in Convolutional Neural Networks" (NYU student project): train a CNN,
free its weights into a locally connected FCN of the same structure, fine-tune, and watch neighbouring filters drift.

models: the CNN, the FCN and the conversion; leak: the original code's in-place shuffle; runs: budgets, splits,
the two training stages and checkpoints; analysis: tables and claims R1-R9; figures. Spec: ../shared/specs/rao.md.
"""
from .runs import BUDGETS, DATA, REVISION, SLUG, planned, train  # noqa: F401
from .analysis import ladder_rows  # noqa: F401  (the synthesis page's ladder rows)
