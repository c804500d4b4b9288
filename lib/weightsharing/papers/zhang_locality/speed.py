"""This chapter's speed measurements, for `make bench`: LocalNet's locally connected layers against Conv2d and the
original per-position loop, a training step of each image model, bf16 against fp32 per step, and the models for
`bench.stacked_training` (the tree nets, with a replica axis of their own and one Adam over the stack; the image nets
are trained alone: stacking them measured at most 1.2x with the chapter's trainer)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ... import bench
from ...bench import StackCase, epoch_steps
from .models import DATASETS, IMAGE_MODELS, TreeNet, build_image_model
from .runs import PRECISION


def benchmarks(*, quick: bool = False) -> dict[str, list[dict]]:
    """Every table this chapter shows from `make bench`."""
    repeats = 3 if quick else 20
    torch.manual_seed(0)
    layers = [r for batch in (4, 32) for r in bench.locally_connected(batch, repeats=repeats)]
    steps = []
    for name, (channels, size) in DATASETS.items():
        x, y = torch.randn(32, channels, size, size), torch.randint(0, 10, (32,))
        ms = {m: bench.train_step_ms(build_image_model(m, name), x, y, repeats=repeats) for m in IMAGE_MODELS}
        steps.append({"dataset": name, **{f"{m}_ms": v for m, v in ms.items()},
                      "LocalNet / ConvNet": ms["LocalNet"] / ms["ConvNet"]})
    return {"layer_benchmark": layers, "step_benchmark": steps}


def precision_cases() -> list[bench.PrecisionCase]:
    """The image models at the chapter's batch (32) with its SGD; the tree nets train in fp32 on the CPU as they are."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for dataset, (channels, size) in DATASETS.items():
        x, y = torch.randn(32, channels, size, size, generator=g), torch.randint(0, 10, (32,), generator=g)
        cases += [bench.precision_case(f"Zhang {dataset} {m}", lambda m=m, d=dataset: build_image_model(m, d), x, y,
                                       decision=PRECISION)
                  for m in IMAGE_MODELS]
    return cases


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
