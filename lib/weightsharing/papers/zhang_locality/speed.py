"""This chapter's models for `bench.stacked_training`: the tree nets (a replica axis of their own, one Adam over the
stack) and the image nets (trained alone: stacking them measured at most 1.2x with the chapter's trainer)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...bench import StackCase, epoch_steps
from .models import DATASETS, TreeNet, build_image_model


def _tree(kind: str, replicas: int, batch: int) -> StackCase:
    def steps(n, g):
        x = torch.randn(batch, 64, generator=g)

        def run(r):
            model = TreeNet(kind=kind, replicas=r, tile=1)
            opt, xs = torch.optim.Adam(model.parameters(), lr=1e-3), x.expand(r, *x.shape)

            def step():
                for _ in range(n):
                    opt.zero_grad(set_to_none=True)
                    (model(xs) ** 2).mean(1).sum().backward()
                    opt.step()
            return step

        return run(1), run(replicas)

    return StackCase(f"Zhang tree {kind}", batch, replicas, True, steps)


def _images(name: str, dataset: str, batch: int) -> StackCase:
    def steps(n, g):
        c, size = DATASETS[dataset]
        x, y = torch.randn(batch * n, c, size, size, generator=g), torch.randint(0, 10, (batch * n,), generator=g)
        return epoch_steps(lambda r: build_image_model(name, dataset), lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9),
                           lambda m, b: F.cross_entropy(m(b[0]), b[1]), (x, y), batch, 3, shared=True)

    return StackCase(f"Zhang {dataset} {name}", batch, 3, False, steps)


def stack_cases() -> list[StackCase]:
    return ([_tree(kind, 25, 32) for kind in ("WeightNet", "LocalNet", "FCNet")]
            + [_images(name, d, b) for d, name, b in (("mnist", "ConvNet", 1), ("mnist", "LocalNet", 1),
                                                      ("mnist", "LocalNet", 32), ("cifar10", "LocalNet", 32),
                                                      ("cifar10", "WeightNet", 32), ("cifar10", "FCNet", 32))])
