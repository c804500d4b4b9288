"""This chapter's speed measurements, for `make bench`: the hashed layer against nn.Linear, and the ArbNets' training
step in bf16 against fp32 (the chapter's precision decision, `runs.PRECISION`)."""
from __future__ import annotations

import torch

from ... import bench
from .models import ArbNet, Hash
from .runs import PRECISION


def benchmarks(*, quick: bool = False) -> dict[str, list[dict]]:
    return {"hashed_benchmark": bench.hashed_linear(repeats=3 if quick else 20)}


def precision_cases() -> list[bench.PrecisionCase]:
    """The MNIST (784-200-200-10) and CIFAR-10 (3072-512×5-10) ArbNets at batch 128 with the chapter's SGD."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for dataset, inputs, width, depth, table in (("mnist", 784, 200, 2, 997), ("cifar10", 3072, 512, 5, 10_007)):
        x, y = torch.randn(128, inputs, generator=g), torch.randint(0, 10, (128,), generator=g)
        sizes = (inputs,) + (width,) * depth + (10,)
        cases.append(bench.precision_case(
            f"Chang {dataset} ArbNet", lambda sizes=sizes, table=table: ArbNet(sizes=sizes, hash=Hash("uniform"),
                                                                              table_size=table, sparsity=0.5, seed=0),
            x, y, optimizer=lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), decision=PRECISION[dataset]))
    return cases
