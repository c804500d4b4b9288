"""Budgets and protocols, training one arm alone or seeds stacked, the sweep, and the cost plan."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import cache

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ... import data
from ...bench import StackCase, epoch_steps
from ...context import RunContext
from ...metrics import binary_accuracy
from ...planning import Planned
from ...store import Store, canonical, sweep
from ...train import columns, fit, fit_replicas, n_params, seeded
from .models import ARMS, Arm, FIG5, Pairs, SENSITIVITY, TABLE1, mnist_pairs, spec_params


SLUG = "salimbeni_pairs"
REVISION = 1  # bump whenever a change alters this chapter's results: stored units with another revision are recomputed
STACKED_REVISION = 2  # units of the arms whose seeds train stacked (STACKED_KINDS); revision 1 trained them alone
DATA = ("mnist",)  # the datasets a run needs, checked before it starts
# New units train in fp32: the pair nets are small enough that bf16 autocast pays nothing per step (`make bench`:
# 0.8-1.1x).
PRECISION = "fp32"

@dataclass(frozen=True)
class Budget:
    n_pairs: int
    runs: int
    epochs: int
    fig5_all: bool        # all 11 Fig. 5 configurations, else the first of each panel
    sensitivity: int      # how many of the E5 configurations
    ablations: tuple[str, ...]  # of ABLATIONS (E6: inputs /255 + shuffling; pairs redrawn per run; hidden 500)
    batch_size: int = 20
    # Confirmatory seeds, trained after the claims that name them were frozen: `confirm` for every arm of E1 and E2,
    # `deep` as well for the arms of `deep_arms` (S5's and S7's, where a collapse in 1 of 10 runs decides a test)
    confirm: tuple[int, ...] = ()
    deep: tuple[int, ...] = ()
    deep_arms: tuple[str, ...] = ()

    def seeds(self, experiment: str, arm: str) -> tuple[int, ...]:
        """The seeds a run of `arm` in `experiment` trains: the exploratory 0..runs-1, then the confirmatory ones."""
        if experiment not in CONFIRMED:
            return tuple(range(self.runs))
        return tuple(range(self.runs)) + self.confirm + (self.deep if arm in self.deep_arms else ())


@dataclass(frozen=True)
class Protocol:
    """How the data are fed: the authors' (raw 0-255 inputs, fixed batch order, one pair draw) or an ablation."""
    scale: str = "raw"      # "raw" | "unit" (/255)
    shuffle: bool = False
    pairs: str = "seed0"    # "seed0" | "per-run" (pairs redrawn with seed = run)


AUTHORS = Protocol()
ABLATIONS = {
    "E6a: inputs /255 + shuffling": (Protocol(scale="unit", shuffle=True), TABLE1),
    "E6b: pairs redrawn per run": (Protocol(pairs="per-run"), tuple(ARMS[m] for m in ("FCNN3", "WS2", "AL3", "AL4"))),
    "E6c: hidden n = 500": (AUTHORS, tuple(replace(ARMS[m], hidden=500, name=f"{m} n=500")
                                             for m in ("FCNN3", "WS2", "AL1", "AL3"))),
}


CONFIRMED = ("E1: Table I", "E2: Fig. 5")  # the experiments the claims judge
CONFIRM, DEEP = tuple(range(10, 20)), tuple(range(20, 110))
DEEP_ARMS = ("WS1", "FCNN3", "FCNN1 n=200", "FCNN3 n=200")

BUDGETS = {
    "smoke": Budget(n_pairs=100, runs=2, epochs=2, fig5_all=False, sensitivity=1, ablations=tuple(ABLATIONS),
                    confirm=(2,), deep=(3,), deep_arms=("WS1",)),
    # E6b at cpu: tests whether our one test draw explains the models that score below the paper
    "cpu": Budget(n_pairs=1000, runs=10, epochs=25, fig5_all=True, sensitivity=3, ablations=("E6b: pairs redrawn per run",),
                  confirm=CONFIRM, deep=DEEP, deep_arms=DEEP_ARMS),
    "paper": Budget(n_pairs=1000, runs=10, epochs=25, fig5_all=True, sensitivity=3, ablations=tuple(ABLATIONS),
                    confirm=CONFIRM, deep=DEEP, deep_arms=DEEP_ARMS),
}


def experiments(budget: Budget) -> dict[str, tuple[Protocol, tuple[Arm, ...]]]:
    """Experiment name -> (protocol, arms). Identical (arm, protocol) pairs across experiments share their runs."""
    fig5 = tuple(a for arms in FIG5.values() for a in (arms if budget.fig5_all else arms[:1]))
    out = {"E1: Table I": (AUTHORS, TABLE1), "E2: Fig. 5": (AUTHORS, fig5),
           "E5: sensitivity": (AUTHORS, tuple(a for a, _ in SENSITIVITY[:budget.sensitivity]))}
    out.update({name: ABLATIONS[name] for name in budget.ablations})
    return out


def unit_key(arm: Arm, protocol: Protocol, budget: Budget, seed: int) -> dict:
    rev = STACKED_REVISION if arm.kind in STACKED_KINDS else REVISION
    return {"rev": rev, **arm.config(), **asdict(protocol), "n_pairs": budget.n_pairs, "epochs": budget.epochs,
            "batch_size": budget.batch_size, "seed": seed}


# ---------------------------------------------------------------------------------------------- training

def prepare(pairs: Pairs, protocol: Protocol, device: str) -> tuple[torch.Tensor, ...]:
    x = pairs.x / 255 if protocol.scale == "unit" else pairs.x
    return tuple(t.to(device) for t in (x, pairs.target, pairs.classes))


def loss_fn(aux: bool):
    def loss(model: nn.Module, batch) -> torch.Tensor:
        x, target, classes = batch
        prob, digits = model(x)
        out = F.binary_cross_entropy(prob, target.float())
        if aux:
            out = out + F.cross_entropy(digits[:, 0], classes[:, 0]) + F.cross_entropy(digits[:, 1], classes[:, 1])
        return out
    return loss


def _evaluator(train: tuple[torch.Tensor, ...], test: tuple[torch.Tensor, ...]) -> Callable[[nn.Module], dict]:
    def evaluate(model):
        row = {}
        for split, (x, t, _) in (("train", train), ("test", test)):
            prob, _ = model(x)
            row[f"{split}_bce"] = F.binary_cross_entropy(prob, t.float()).item()
            row[f"{split}_acc"] = binary_accuracy(prob, t)
        return row
    return evaluate


def _model(arm: Arm, seed: int, device: str) -> tuple[nn.Module, torch.Generator]:
    """The arm initialised from `seed`, and the generator of its batch order."""
    order = seeded(seed)
    return arm.build().to(device), order


def _result(model: nn.Module, history: list[dict], device: str) -> dict:
    cols = columns(history)
    return {"test_acc": cols["test_acc"][-1], "train_acc": cols["train_acc"][-1], "params": n_params(model),
            "history": cols, "device": device}


def train_unit(arm: Arm, protocol: Protocol, budget: Budget, seed: int, *, pairs: tuple[Pairs, Pairs],
               device: str = "cpu") -> dict:
    """Train one arm from init seed `seed` on the given (train, test) pairs; test accuracy after every epoch."""
    train, test = (prepare(p, protocol, device) for p in pairs)
    model, order = _model(arm, seed, device)
    history = fit(model, torch.optim.Adam(model.parameters(), lr=arm.lr), loss_fn(arm.aux), train,
                  epochs=budget.epochs, batch_size=budget.batch_size, shuffle=protocol.shuffle,
                  generator=order, evaluate=_evaluator(train, test))
    return _result(model, history, device)


# Seeds of a two-branch arm train stacked (`fit_replicas`): whole epochs of this chapter's trainer, ten seeds alone
# against stacked in one process, ran 1.3-2.1x faster per seed on a 2-core CPU (FCNN3, AL3, WS1, WS2, AL4); the
# one-layer FlatNet gained nothing (0.7-1.0x in `python -m weightsharing.papers.speed`), so its seeds train alone.
STACKED_KINDS = ("pair",)


def train_stack(arm: Arm, protocol: Protocol, budget: Budget, seeds: list[int], *,
                pairs: list[tuple[Pairs, Pairs]], device: str = "cpu") -> list[dict]:
    """`train_unit` for several seeds of one arm side by side (`pairs[i]` for seed i): each as it trains alone."""
    splits = [tuple(prepare(p, protocol, device) for p in pair) for pair in pairs]
    models, orders = map(list, zip(*(_model(arm, seed, device) for seed in seeds)))
    train = tuple(torch.stack(t) for t in zip(*(s[0] for s in splits)))
    evaluators = [_evaluator(*s) for s in splits]
    histories = fit_replicas(models, lambda stacked: torch.optim.Adam(stacked, lr=arm.lr), loss_fn(arm.aux),
                             train, epochs=budget.epochs, batch_size=budget.batch_size, shuffle=protocol.shuffle,
                             generators=list(orders),
                             evaluate=lambda i, m: evaluators[i](m))
    return [_result(m, h, device) for m, h in zip(models, histories)]


def stack_cases() -> list[StackCase]:
    """`bench.stacked_training` cases: a flat arm and three two-branch arms, seeds alone against stacked."""
    def case(arm: Arm) -> StackCase:
        def steps(n, g):
            x = torch.rand(20 * n, 2, 14, 14, generator=g) * 255
            data = (x, torch.randint(0, 2, (20 * n,), generator=g), torch.randint(0, 10, (20 * n, 2), generator=g))
            return epoch_steps(lambda r: arm.build(), lambda ps: torch.optim.Adam(ps, lr=arm.lr), loss_fn(arm.aux), data,
                               20, 10, shared=True)
        return StackCase(f"Salimbeni {arm.name}", 20, 10, arm.kind in STACKED_KINDS, steps)

    return [case(ARMS[name]) for name in ("FCNN1", "FCNN3", "WS1", "AL4")]


def units(budget: Budget) -> list[tuple[str, Arm, Protocol, int]]:
    """(experiment, arm, protocol, seed) of every run; identical (arm, protocol, seed) across experiments share a unit."""
    return [(experiment, arm, protocol, seed) for experiment, (protocol, arms) in experiments(budget).items()
            for arm in arms for seed in budget.seeds(experiment, arm.name)]


def item_key(item, budget: Budget) -> dict:
    return unit_key(*item[1:3], budget, item[3])


def train(ctx: RunContext) -> list[dict | None]:
    return sweep_units(ctx.budget, ctx.store, device=ctx.device)


def sweep_units(budget: Budget, store: Store, *, device: str = "cpu", mnist: data.Dataset | None = None
                ) -> list[dict | None]:
    """Every unit of the budget through the store (a sharded store trains only its own); records in plan order."""
    mnist = mnist if mnist is not None else data.load("mnist")
    pairs = cache(lambda seed: mnist_pairs(mnist, budget.n_pairs, seed=seed))

    def pairs_for(item):
        _, _, protocol, seed = item
        return pairs(seed if protocol.pairs == "per-run" else 0)  # the prologue's draw is seed 0 for every run

    def train_one(item):
        _, arm, protocol, seed = item
        return train_unit(arm, protocol, budget, seed, pairs=pairs_for(item), device=device)

    def train_seeds(items):
        _, arm, protocol, _ = items[0]
        return train_stack(arm, protocol, budget, [i[3] for i in items], pairs=[pairs_for(i) for i in items], device=device)

    def stack(item):  # the unit's key without its seed; a flat arm's seeds stay apart, so its key is its own
        key = item_key(item, budget)
        return {k: v for k, v in key.items() if k != "seed"} if item[1].kind in STACKED_KINDS else key

    def describe(item, record):
        _, arm, protocol, seed = item
        tag = "" if protocol == AUTHORS else f" [{protocol.scale}, shuffle={protocol.shuffle}, pairs={protocol.pairs}]"
        return f"{arm.name:<28} seed {seed}{tag}: test {record['test_acc']:.3f}  train {record['train_acc']:.3f}"

    return sweep(store, units(budget), key=lambda item: item_key(item, budget), run=train_one, describe=describe,
                 stack=stack, run_stack=train_seeds)


def run_all(budget: Budget, store: Store, *, mnist: data.Dataset, device: str = "cpu") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every experiment of the budget through the store. Returns (one row per run, one row per run and epoch)."""
    plan, records = units(budget), sweep_units(budget, store, device=device, mnist=mnist)
    rows, curves = [], []
    for (experiment, arm, protocol, seed), r in zip(plan, records):
        rows.append({"experiment": experiment, "model": arm.name, "lr": arm.lr, "seed": seed, "params": r["params"],
                     "test_acc": r["test_acc"], "train_acc": r["train_acc"], "seconds": r["seconds"],
                     "finished_at": r.get("finished_at"), "unit": canonical(item_key((experiment, arm, protocol, seed), budget))})
        curves.append(pd.DataFrame(r["history"]).assign(experiment=experiment, model=arm.name, seed=seed))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def planned(budget: Budget, store: Store | None = None) -> list[Planned]:
    """Every unit, for `plan` and the paper-scale tests (the pairs' test set is as large as the training set)."""
    out = []
    for item in units(budget):
        experiment, arm, protocol, seed = item

        def step(arm=arm, protocol=protocol, seed=seed):
            g = torch.Generator().manual_seed(0)
            fake = [Pairs(x=torch.randint(0, 256, (2, 2, 14, 14), generator=g).float(), target=torch.tensor([0, 1]),
                               classes=torch.tensor([[3, 1], [2, 5]]), index=torch.zeros(2, 2, dtype=torch.long))] * 2
            return train_unit(arm, protocol, replace(budget, epochs=1, batch_size=2), seed, pairs=tuple(fake))["test_acc"]

        key = item_key(item, budget)
        out.append(Planned(experiment, f"{arm.name} seed {seed}", key, arm.build, (2, 14, 14),
                           examples=budget.epochs * budget.n_pairs, evaluated=budget.epochs * 2 * budget.n_pairs,
                           steps=budget.epochs * math.ceil(budget.n_pairs / budget.batch_size),
                           config=f"{arm.config()} {asdict(protocol)}", step=step, expected_params=spec_params(arm),
                           stored=store is not None and key in store))
    return out
