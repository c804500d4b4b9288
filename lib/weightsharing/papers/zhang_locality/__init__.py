"""Zhang, "Empirical evaluations of learning datasets with weight-sharing and locality" (MIT 6.860, 2021).

Is locality or weight sharing harder to learn? Four networks that assume both, one, or neither, on a binary-tree
regression task whose target has both properties, then on MNIST and CIFAR-10. Spec: ../shared/specs/zhang.md.

models: the tree task and the networks; runs: budgets, trainers and sweeps; analysis: paper values, tables and
claims; figures. The chapter reads everything from this package's namespace (`Z.figure1`, `Z.BUDGETS`, ...).
"""
from .models import *  # noqa: F401,F403
from .runs import *  # noqa: F401,F403
from .analysis import *  # noqa: F401,F403
from .figures import *  # noqa: F401,F403
from .runs import BUDGETS, DATA, REVISION, SLUG, planned, train  # noqa: F401  (the interface every chapter has)
from .analysis import ladder_rows  # noqa: F401  (the synthesis page's ladder rows)
