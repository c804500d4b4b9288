"""This chapter's speed measurements, for `make bench`: each pair net's training step in bf16 against fp32 (the
chapter trains in fp32, `runs.PRECISION`), with the chapter's Adam and loss at batch 20."""
from __future__ import annotations

import torch

from ... import bench
from .models import ARMS
from .runs import PRECISION, loss_fn


def benchmarks(*, quick: bool = False) -> dict[str, list[dict]]:
    """No timing of the chapter's own beyond bf16 against fp32 (`precision_cases`)."""
    return {}


def precision_cases() -> list[bench.PrecisionCase]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(20, 2, 14, 14, generator=g) * 255
    target, classes = torch.randint(0, 2, (20,), generator=g), torch.randint(0, 10, (20, 2), generator=g)

    def case(name):
        arm = ARMS[name]
        loss = loss_fn(arm.aux)
        return bench.precision_case(f"Salimbeni {name}", arm.build, x, (target, classes),
                                    optimizer=lambda ps: torch.optim.Adam(ps, lr=arm.lr),
                                    loss=lambda out, y: loss(lambda *a: out, (x, *y)), repeat=10, decision=PRECISION)

    return [case(name) for name in ("FCNN1", "WS1", "AL4")]
