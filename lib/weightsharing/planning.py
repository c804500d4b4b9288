"""What a run of a chapter would train, before it trains anything: `python -m weightsharing plan SLUG --budget B`.

Every paper module lists its units as `Planned` items (`planned(budget, store)`): the store key, the model as a
builder (called under `torch.device("meta")`, so a `paper`-size model costs no memory), the training examples it
processes and one real training step at batch 2 (for the tests). From these this module counts parameters and
estimates compute:

    training FLOPs = 6 x forward MACs per example x examples processed  (forward 2, backward 4 per MAC)
    + evaluation FLOPs = 2 x forward MACs x examples evaluated
    GPU hours = FLOPs / ASSUMED_GPU's sustained throughput + optimizer steps x ASSUMED_STEP_SECONDS

with the MACs counted by forward hooks on the meta model (`model_macs`). The per-step term stands for
kernel launches and Python, which bound the small models (the tree, the pairs, the MNIST MLPs); data loading,
augmentation and evaluation overheads are not counted. Both constants are assumptions, not measurements: the
estimate says how a budget's cost is distributed and its order of magnitude, not what a given GPU will take.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
from torch import nn

from .layers import HashedLinear, LocallyConnected2d
from .train import n_params

# An assumption, not a measurement: sustained fp32 throughput (TF32 matmuls and convolutions) of one NVIDIA A100 on
# these dense layers at large batch, about a third of its 156 TFLOP/s TF32 peak.
ASSUMED_GPU = ("NVIDIA A100 (TF32)", 50e12)
ASSUMED_STEP_SECONDS = 1e-3  # launch and Python overhead of one small training step on a GPU


@dataclass(frozen=True)
class Planned:
    experiment: str
    label: str
    key: dict | None                     # the store key; None where it depends on another unit's result
    build: Callable[[], nn.Module]       # the model at the budget's full size
    input_shape: tuple[int, ...]         # one example
    examples: int                        # training examples processed: epochs x training set (a cap under early stopping)
    evaluated: int = 0                   # examples run forward only (test sets, FGSM, per-epoch validation)
    steps: int = 0                       # optimizer steps (a cap under early stopping)
    config: str = ""                     # its distinct model-and-optimizer configuration
    step: Callable[[], float] | None = None   # one real training step at batch 2 on the CPU; returns its metric
    expected_params: int | None = None   # the spec's parameter count (the tests check the built model has it)
    macs: int | None = None              # forward MACs per example, for models the hooks cannot count
    stored: bool = False


def params(unit: Planned) -> int:
    with torch.device("meta"):
        return n_params(unit.build())


def forward_macs(unit: Planned) -> int:
    if unit.macs is not None:
        return unit.macs

    with torch.device("meta"):
        model = unit.build()
    return model_macs(model, unit.input_shape)


def estimate(units: list[Planned]) -> pd.DataFrame:
    """One row per distinct unit (by key): parameters, FLOPs, hours at ASSUMED_GPU, stored or not."""
    rows, seen, counted = [], set(), {}
    for u in units:
        ident = repr(u.key) if u.key is not None else f"{u.experiment}/{u.label}"
        if ident in seen:
            continue
        seen.add(ident)
        if u.config not in counted or not u.config:
            counted[u.config] = (u.expected_params if u.expected_params is not None else params(u), forward_macs(u))
        n_params, macs = counted[u.config]
        flops = 6 * macs * u.examples + 2 * macs * u.evaluated
        seconds = flops / ASSUMED_GPU[1] + u.steps * ASSUMED_STEP_SECONDS
        rows.append({"experiment": u.experiment, "unit": u.label, "params": n_params, "examples": u.examples,
                     "steps": u.steps, "pflop": flops / 1e15, "gpu_hours": seconds / 3600, "stored": u.stored})
    return pd.DataFrame(rows)


def report(slug: str, budget: str, units: list[Planned]) -> str:
    """The text `plan` prints: per experiment, the units, how many are stored, and the compute estimate."""
    df = estimate(units)
    by = df.groupby("experiment", sort=False).agg(units=("unit", "size"), stored=("stored", "sum"),
                                                  params_max=("params", "max"), pflop=("pflop", "sum"),
                                                  gpu_hours=("gpu_hours", "sum"))
    todo = df[~df.stored]
    lines = [f"{slug} at budget {budget!r}: {len(df)} units, {int(df.stored.sum())} already stored, "
             f"{len(todo)} to train",
             f"{'experiment':<34} {'units':>5} {'stored':>6} {'largest model':>14} {'PFLOP':>9} {'GPU h':>8}"]
    for name, r in by.iterrows():
        lines.append(f"{name[:34]:<34} {int(r.units):>5} {int(r.stored):>6} {int(r.params_max):>14,} {r.pflop:>9.3f} "
                     f"{r.gpu_hours:>8.2f}")
    lines.append(f"{'to train':<34} {len(todo):>5} {'':>6} {'':>14} {todo.pflop.sum():>9.3f} "
                 f"{todo.gpu_hours.sum():>8.2f}")
    lines.append(f"estimate, not a measurement: FLOPs = 6 x forward MACs x training examples + 2 x MACs x evaluated "
                 f"examples; hours at {ASSUMED_GPU[1] / 1e12:.0f} TFLOP/s assumed sustained on one {ASSUMED_GPU[0]} "
                 f"plus {ASSUMED_STEP_SECONDS * 1e3:g} ms assumed overhead per optimizer step "
                 f"(see weightsharing/planning.py)")
    return "\n".join(lines)


def distinct_configs(units: list[Planned]) -> list[Planned]:
    """The first unit of every distinct model-and-optimizer configuration."""
    seen, out = set(), []
    for u in units:
        if u.config not in seen:
            seen.add(u.config)
            out.append(u)
    return out


def model_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass of one example, as the layers really compute them (the masked
    backend's multiplications by zero included), counted by forward hooks. Build the model under
    `torch.device("meta")` to count one too large to allocate."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if not isinstance(output, torch.Tensor):  # containers (a model returning a tuple) hold no MACs of their own
            return
        # per example of the model's input: a module may see more rows (a branch shared by both images of a pair)
        per = output.shape[0] / 2
        if isinstance(module, (nn.Linear, HashedLinear)):  # a hashed layer gathers its weights, then one dense matmul
            total += module.in_features * module.out_features * output[..., 0].numel() / 2
        elif isinstance(module, nn.Conv2d):
            total += output[0].numel() * module.weight[0].numel() * per
        elif isinstance(module, LocallyConnected2d):
            if module.backend_for(len(inputs[0])) == "masked":
                nth, ntw, wh, ww = module.tiling()
                total += nth * ntw * module.in_channels * wh * ww * module.out_channels * module.tile[0] * module.tile[1] * per
            else:
                total += module.weight.numel() * per

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:  # a batch of 2: BatchNorm refuses one example in training mode; the hooks count per example anyway
        model(torch.zeros(2, *input_shape, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return int(total)
