"""This chapter's speed measurements, for `make bench`: S-LOCAL's locally connected layer against Conv2d per backend,
beta-lasso's step against SGD's on S-FC, and each model's training step in bf16 against fp32 (`runs.PRECISION`)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ... import bench
from ...bench import interleaved
from ...optim import BetaLasso
from .models import build
from .runs import PRECISION

BENCH_ALPHA = 8  # the width the `cpu` budget trains (alpha = 8)


def benchmarks(*, quick: bool = False) -> dict[str, list[dict]]:
    rounds = 1 if quick else 15
    own = {k: v for k, v in bench.LC_SHAPES.items() if k.startswith("S-LOCAL")}  # the other papers' layers: theirs
    return {"lc_benchmark": bench.lc_backends(rounds=rounds, shapes=own),
            "optimizer_benchmark": optimizer_steps(alpha=BENCH_ALPHA, rounds=rounds)}


def precision_cases() -> list[bench.PrecisionCase]:
    """S-CONV, S-LOCAL, S-FC and 3-FC at alpha = 8, batch 512, with SGD as the chapter trains them."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(512, 3, 32, 32, generator=g), torch.randint(0, 10, (512,), generator=g)
    return [bench.precision_case(f"Neyshabur {m}", lambda m=m: build(m, alpha=BENCH_ALPHA, classes=10), x, y,
                                 optimizer=lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), repeat=1,
                                 decision=PRECISION)
            for m in ("S-CONV", "S-LOCAL", "S-FC", "3-FC")]


def optimizer_steps(*, alpha: int = 8, batch: int = 512, rounds: int = 15) -> list[dict]:
    """BetaLasso's step against SGD's (momentum 0.9, weight decay 5e-4, as the chapter's SGD runs) on S-FC, alone
    and within a whole training step (forward, cross-entropy, backward, step), timed interleaved."""
    torch.manual_seed(0)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    models = {name: build("S-FC", alpha=alpha, classes=10) for name in ("SGD", "BetaLasso")}
    models["BetaLasso"].load_state_dict(models["SGD"].state_dict())
    w = models["BetaLasso"].weight_matrices()
    rest = [p for p in models["BetaLasso"].parameters() if all(p is not q for q in w)]
    opts = {"SGD": torch.optim.SGD(models["SGD"].parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4),
            # the chapter's budget-matched beta = 50 at cpu: k = 33, threshold beta * lambda = 1e-3 on layer 1
            "BetaLasso": BetaLasso([{"params": w[:1], "lam": 6.7e-4, "beta": 1.5},
                                    {"params": w[1:], "lam": 1.7e-4, "beta": 1.5},
                                    {"params": rest, "lam": 0.0}], lr=0.1)}
    for name, m in models.items():
        F.cross_entropy(m(x), y).backward()  # a real gradient, kept for the step-only timing
    step_only = interleaved({n: opts[n].step for n in opts}, baseline="SGD", rounds=rounds)

    def full(name):
        def step():
            loss = F.cross_entropy(models[name](x), y)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
        return step

    whole = interleaved({n: full(n) for n in opts}, baseline="SGD", rounds=rounds)
    return [{"what": what, "optimizer": n, "ms": r["ms"], "ratio_to_sgd": r["ratio"], "ratio_min": r["ratio_min"],
             "ratio_max": r["ratio_max"]} for what, res in (("optimizer step", step_only), ("training step", whole))
            for n, r in res.items()]
