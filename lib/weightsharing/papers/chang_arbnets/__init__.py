"""Chang & Lipson, "Balanced and Deterministic Weight-sharing Helps Network Performance" (ICANN 2018): ArbNets.

Every weight of a layer reads a hash table through an index map fixed before training; collisions are weight
sharing. Is more balanced sharing (Dirichlet alpha up) and more deterministic sharing (Neighborhood radius down)
better? Spec: ../shared/specs/chang.md. No code was published: every unstated choice is ours and marked so.

models: ArbNets and their hashes; runs: budgets, training, the sweep; analysis: effects, statements; claims: C1-C6;
figures; report: `run(ctx)`, the chapter.
"""
from .runs import BUDGETS, DATA, REVISION, SLUG, planned, train  # noqa: F401  (the `papers.Paper` interface)
from .report import run  # noqa: F401
from .speed import benchmarks, precision_cases  # noqa: F401
