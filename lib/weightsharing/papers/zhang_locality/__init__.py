"""Zhang, "Empirical evaluations of learning datasets with weight-sharing and locality" (MIT 6.860, 2021).

Is locality or weight sharing harder to learn? Four networks that assume both, one, or neither, on a binary-tree
regression task whose target has both properties, then on MNIST and CIFAR-10. Spec: ../shared/specs/zhang.md.

models: the tree task and the networks; runs: budgets, trainers and sweeps; analysis: paper values and tables;
claims: Z1-Z9; figures; report: `run(ctx)`, the chapter.
"""
from .runs import BUDGETS, DATA, REVISION, SLUG, planned, train  # noqa: F401  (the `papers.Paper` interface)
from .report import run  # noqa: F401
from .speed import benchmarks, precision_cases  # noqa: F401
