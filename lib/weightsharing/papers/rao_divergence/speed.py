"""This chapter's speed measurements, for `make bench`: one Adam step of the CNN and of its freed FCN, and each in
bf16 against fp32 (`runs.PRECISION`)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ... import bench
from .models import cnn, fcn
from .runs import PRECISION


def benchmarks(*, quick: bool = False) -> dict[str, list[dict]]:
    rounds = 3 if quick else 10
    return {"step_benchmark": step_benchmark(rounds=rounds)}


def _adam(ps):
    return torch.optim.Adam(ps, lr=1e-4, eps=1e-7)


def step_benchmark(*, rounds: int) -> list[dict]:
    """One Adam step of the CNN and of its FCN at batch 128, interleaved in this process; the FCN's ratio to the CNN."""
    x, y = torch.rand(128, 3, 32, 32), torch.randint(0, 10, (128,))
    steps = {}
    for name, make in (("CNN", cnn), ("FCN", fcn)):
        model = make()
        opt = _adam(model.parameters())

        def step(model=model, opt=opt):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        steps[name] = step
    timing = bench.interleaved(steps, baseline="CNN", rounds=rounds)
    return [{"network": k, **{m: v for m, v in t.items() if m != "ratios"}} for k, t in timing.items()]


def precision_cases() -> list[bench.PrecisionCase]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(128, 3, 32, 32, generator=g), torch.randint(0, 10, (128,), generator=g)
    return [bench.precision_case(f"Rao {name}", make, x, y, optimizer=_adam, repeat=2, decision=PRECISION[name])
            for name, make in (("CNN", cnn), ("FCN", fcn))]
