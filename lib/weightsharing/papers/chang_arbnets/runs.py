"""Budgets, the plan of units, training one ArbNet, the sweep, and the cost plan."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import pandas as pd
import torch
import torch.nn.functional as F

from ... import data
from ...bench import StackCase, epoch_steps
from ...context import RunContext
from ...metrics import test_accuracy
from ...planning import Planned
from ...store import Store, canonical, sweep
from ...train import fit, n_params, precise, seeded
from .models import ArbNet, Hash, network_entropy


SLUG = "chang_arbnets"
REVISION = 1
DATA = ("mnist", "cifar10")  # the datasets a run needs, checked before it starts
# The precision this chapter's new units are to train in (a Run's `precision`, recorded in its key): `make bench`
# times one training step of each ArbNet with the chapter's SGD, and CIFAR-10's 512-wide net runs about 1.4x faster in
# bf16, MNIST's 200-wide one about 1.1x, so MNIST stays fp32. Every unit trained so far is fp32 and keeps its key; the
# arms a claim compares share one precision. The first units to take it are the chapter's confirmatory seeds.
PRECISION = {"mnist": "fp32", "cifar10": "bf16"}

@dataclass(frozen=True)
class Grid:
    """What one dataset runs: network, data, table size, and the hash settings crossed with sparsities and seeds."""
    width: int
    depth: int
    train: int            # training images (a seeded random subset if below the full set)
    test: int
    table_size: int
    sparsities: tuple[float, ...]
    alphas: tuple[float, ...]
    radii: tuple[int, ...]
    seeds: int
    epochs: int           # cap; the plateau schedule may stop earlier (three decays)
    dense: bool = False   # add the unhashed reference

    def hashes(self) -> tuple[Hash, ...]:
        return (tuple(Hash("dirichlet", alpha=a) for a in self.alphas) + tuple(Hash("neighborhood", radius=r) for r in self.radii)
                + (Hash("uniform"), Hash("permuted_modulus")))


@dataclass(frozen=True)
class Budget:
    mnist: Grid
    cifar10: Grid
    e4_sparsities: tuple[float, ...]        # MNIST modulus with n = 1000 (duplicated neurons), 1 seed
    e4b: tuple[Hash, ...]                   # CIFAR with the literal n = 997 at s = 0.1, 1 seed
    batch_size: int = 128
    lr: float = 0.1
    # Confirmatory seeds, trained after the claims that judge them were frozen: the arms those claims compare,
    # (dataset, hash, sparsities), at a longer cap per dataset (the exploratory caps left runs still rising)
    confirm_seeds: tuple[int, ...] = ()
    confirm_epochs: tuple[tuple[str, int], ...] = ()
    confirm_arms: tuple[tuple[str, Hash, tuple[float, ...]], ...] = ()


# The claims' arms. MNIST: C1 the extreme α at every sparsity, C3 every α at the extreme sparsities, C4, C5 and C7
# modulus, uniform and the permuted modulus at every sparsity. CIFAR-10: C2 the extreme α and C4 modulus and uniform,
# at both sparsities.
CPU_ALPHAS, CPU_SPARSITIES = (1e-3, 1e-2, 1e-1, 1, 100), (0.1, 0.5, 0.9)
MODULUS, UNIFORM = Hash("neighborhood", radius=0), Hash("uniform")
CPU_CONFIRM = (tuple(("mnist", Hash("dirichlet", alpha=a), CPU_SPARSITIES if a in (1e-3, 100) else (0.1, 0.9))
                     for a in CPU_ALPHAS)
               + tuple(("mnist", h, CPU_SPARSITIES) for h in (MODULUS, UNIFORM, Hash("permuted_modulus")))
               + tuple(("cifar10", h, (0.1, 0.9)) for h in (Hash("dirichlet", alpha=1e-2), Hash("dirichlet", alpha=100),
                                                             MODULUS, UNIFORM)))

BUDGETS = {
    "smoke": Budget(
        mnist=Grid(width=200, depth=2, train=2000, test=1000, table_size=997, sparsities=(0.5,), alphas=(0.01, 10),
                   radii=(0, 10), seeds=1, epochs=1),
        cifar10=Grid(width=64, depth=2, train=1000, test=500, table_size=997, sparsities=(0.5,), alphas=(), radii=(0,),
                     seeds=1, epochs=1),
        e4_sparsities=(0.5,), e4b=(), confirm_seeds=(1,), confirm_epochs=(("mnist", 2), ("cifar10", 2)),
        confirm_arms=(("mnist", Hash("uniform"), (0.5,)), ("mnist", Hash("neighborhood", radius=0), (0.5,)))),
    "cpu": Budget(
        mnist=Grid(width=200, depth=2, train=60_000, test=10_000, table_size=997, sparsities=(0.1, 0.5, 0.9),
                   alphas=(1e-3, 1e-2, 1e-1, 1, 100), radii=(0, 10, 100), seeds=5, epochs=10, dense=True),
        cifar10=Grid(width=512, depth=5, train=10_000, test=10_000, table_size=10_007, sparsities=(0.1, 0.9),
                     alphas=(1e-2, 1, 100), radii=(0, 100), seeds=3, epochs=8),
        e4_sparsities=(0.1, 0.9), e4b=(Hash("uniform"), Hash("dirichlet", alpha=1.0)),
        confirm_seeds=(10, 11, 12), confirm_epochs=(("mnist", 20), ("cifar10", 40)), confirm_arms=CPU_CONFIRM),
    "paper": Budget(
        mnist=Grid(width=200, depth=2, train=60_000, test=10_000, table_size=997, sparsities=(0, 0.1, 0.5, 0.9, 0.99),
                   alphas=(1e-3, 1e-2, 1e-1, 1, 10, 100), radii=(0, 1, 3, 10, 30, 100, 300), seeds=5, epochs=100,
                   dense=True),
        cifar10=Grid(width=2000, depth=5, train=50_000, test=10_000, table_size=39_047, sparsities=(0.1, 0.5, 0.9),
                     alphas=(1e-2, 1e-1, 1, 10, 100), radii=(0, 10, 100, 300), seeds=3, epochs=100),
        e4_sparsities=(0, 0.1, 0.5, 0.9, 0.99), e4b=(Hash("uniform"),)),
}


@dataclass(frozen=True)
class Run:
    experiment: str
    dataset: str
    hash: Hash
    sparsity: float
    table_size: int
    seed: int
    grid: Grid
    precision: str = "fp32"

    def key(self, budget: Budget) -> dict:
        g = self.grid
        return precise({"rev": REVISION, "dataset": self.dataset, **asdict(self.hash), "sparsity": self.sparsity,
                        "table_size": self.table_size, "seed": self.seed, "width": g.width, "depth": g.depth,
                        "train": g.train, "test": g.test, "epochs": g.epochs, "batch_size": budget.batch_size,
                        "lr": budget.lr}, self.precision)


def plan(budget: Budget) -> list[Run]:
    runs = []
    for dataset in ("mnist", "cifar10"):
        g: Grid = getattr(budget, dataset)
        for seed in range(g.seeds):
            if g.dense:
                runs.append(Run("E2-E3", dataset, Hash("dense"), 0.0, g.table_size, seed, g))
            for s in g.sparsities:
                for h in g.hashes():
                    runs.append(Run("E2-E3", dataset, h, s, g.table_size, seed, g))
    caps = dict(budget.confirm_epochs)
    for seed in budget.confirm_seeds:
        for dataset, h, sparsities in budget.confirm_arms:
            longer = replace(getattr(budget, dataset), epochs=caps[dataset])
            runs += [Run("E2-E3", dataset, h, s, longer.table_size, seed, longer, PRECISION[dataset]) for s in sparsities]
    for s in budget.e4_sparsities:
        runs.append(Run("E4", "mnist", Hash("modulus"), s, 1000, 0, budget.mnist))
    for h in budget.e4b:
        runs.append(Run("E4b", "cifar10", h, 0.1, 997, 0, budget.cifar10))
    return runs


# ---------------------------------------------------------------------------------------------- training

def load_flat(dataset: str, grid: Grid) -> tuple[torch.Tensor, ...]:
    """Flattened (C, H, W) images, /255, standardised per channel with the mean and std of the images trained on.

    Below the full set, the training images are a seeded random subset, the same for every run.
    """
    ds = data.load(dataset)
    x_train, y_train = ds.x_train, ds.y_train
    if grid.train < len(y_train):
        keep = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(0))[:grid.train]
        x_train, y_train = x_train[keep], y_train[keep]
    x_train, x_test = x_train.float() / 255, ds.x_test[:grid.test].float() / 255
    mean, std = x_train.mean(dim=(0, 2, 3), keepdim=True), x_train.std(dim=(0, 2, 3), keepdim=True)
    return ((x_train - mean) / std).flatten(1), y_train, ((x_test - mean) / std).flatten(1), ds.y_test[:grid.test]


def loss_and_hits(m, batch):
    """Cross-entropy of a batch and its number of correct predictions (the plateau schedule reads train accuracy)."""
    logits = m(batch[0])
    return F.cross_entropy(logits, batch[1]), (logits.argmax(-1) == batch[1]).sum()


def train_run(run: Run, tensors: tuple[torch.Tensor, ...], budget: Budget, device: str = "cpu") -> dict:
    x_train, y_train, x_test, y_test = (t.to(device) for t in tensors)
    g = run.grid
    order = seeded(run.seed)
    model = ArbNet(sizes=sizes(run, x_train.shape[1]), hash=run.hash, table_size=run.table_size, sparsity=run.sparsity, seed=run.seed).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=budget.lr, momentum=0.9)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=4, threshold=0)

    decays = []

    def on_epoch(row):  # the paper's schedule on training accuracy; stop after three decays (ours)
        before = opt.param_groups[0]["lr"]
        plateau.step(row["train_acc"])
        if opt.param_groups[0]["lr"] < before:
            decays.append(row["epoch"])
        return len(decays) >= 3

    history = fit(model, opt, loss_and_hits, (x_train, y_train), epochs=g.epochs, batch_size=budget.batch_size,
                  generator=order, on_epoch=on_epoch, precision=run.precision)
    test_acc = test_accuracy(model, x_test, y_test, batch_size=2000)
    layers = model.hash_stats()
    return {"test_acc": test_acc, "train_acc": [h["train_acc"] for h in history], "lr": [h["lr"] for h in history],
            "epochs_run": len(history), "decayed_after_epochs": decays, "layers": layers, "entropy": network_entropy(layers),
            "params": n_params(model), "device": device}


def stack_cases() -> list[StackCase]:
    """`bench.stacked_training`'s case: the MNIST ArbNet, each seed with its own SGD (its own plateau schedule). The
    chapter trains seeds alone: stacked, whole epochs of `train_run`'s loop measured 1.1-1.2x, under 1.3x."""
    def steps(n, g):
        x, y = torch.randn(128 * n, 784, generator=g), torch.randint(0, 10, (128 * n,), generator=g)
        return epoch_steps(lambda r: ArbNet(sizes=(784, 200, 200, 10), hash=Hash("uniform"), table_size=997, sparsity=0.5,
                                            seed=r),
                           lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), loss_and_hits, (x, y), 128, 5,
                           shared=False)

    return [StackCase("Chang MNIST ArbNet (uniform)", 128, 5, False, steps)]


def describe(run: Run, r: dict) -> str:
    return (f"{run.experiment:<5} {run.dataset:<7} s = {run.sparsity:<4} n = {run.table_size:<5} "
            f"{run.hash.label:<22} seed {run.seed}: test {r['test_acc']:.3f}, entropy {r['entropy']:.2f}, "
            f"{r['epochs_run']} epochs")


def train(ctx: RunContext) -> list[dict | None]:
    return sweep_units(ctx.budget, ctx.store, device=ctx.device)


def sweep_units(budget: Budget, store: Store, *, device: str = "cpu") -> list[dict | None]:
    """Every unit of the budget through the store (a sharded store trains only its own); records in plan order."""
    tensors = data.Latest()

    def train_one(run):
        return train_run(run, tensors((run.dataset, run.grid.train, run.grid.test), lambda: load_flat(run.dataset, run.grid)),
                         budget, device)

    return sweep(store, plan(budget), key=lambda run: run.key(budget), run=train_one, describe=describe)


def run_all(budget: Budget, store: Store, *, device: str = "cpu") -> pd.DataFrame:
    runs, records = plan(budget), sweep_units(budget, store, device=device)
    return pd.DataFrame([{"experiment": run.experiment, "dataset": run.dataset, "hash": run.hash.kind,
                          "label": run.hash.label, "alpha": run.hash.alpha, "radius": run.hash.radius,
                          "sparsity": run.sparsity, "table_size": run.table_size, "seed": run.seed,
                          "epochs_cap": run.grid.epochs, "confirmatory": run.seed in budget.confirm_seeds,
                          "test_acc": rec["test_acc"], "final_train_acc": rec["train_acc"][-1], "entropy": rec["entropy"],
                          "epochs_run": rec["epochs_run"], "lr_decays": len(rec["decayed_after_epochs"]),
                          "min_distinct_rows": min((l["distinct_rows"] for l in rec["layers"]), default=None),
                          "late_change": late_change(rec["train_acc"]), "finished_at": rec.get("finished_at"),
                          "unit": canonical(rec["key"]),
                          "layers": rec["layers"], "seconds": rec["seconds"]} for run, rec in zip(runs, records)])


def late_change(curve: list[float]) -> float:
    """How much the training accuracy moved over the last tenth of training (at least one epoch)."""
    back = max(1, math.ceil(len(curve) / 10))
    return abs(curve[-1] - curve[-1 - back]) if len(curve) > back else float("nan")


def sizes(run: Run, inputs: int | None = None) -> tuple[int, ...]:
    """Layer widths, input to output; `inputs` defaults to the dataset's flattened image."""
    g = run.grid
    return (inputs or INPUTS[run.dataset],) + (g.width,) * g.depth + (10,)


def spec_params(run: Run) -> int:
    """The spec's count (section 3): one table of n per weight matrix (or the dense matrix), biases, BN scale and shift."""
    s = sizes(run)
    weights = sum(a * b for a, b in zip(s, s[1:])) if run.hash.kind == "dense" else (len(s) - 1) * run.table_size
    return weights + 3 * sum(s[1:])


INPUTS = {"mnist": 784, "cifar10": 3072}
TRAIN_SET = {"mnist": 60_000, "cifar10": 50_000}


def planned(budget: Budget, store: Store | None = None) -> list[Planned]:
    """Every unit, for `plan` and the paper-scale tests: model builder, examples processed (epochs is a cap: the
    plateau schedule may stop earlier), one real step at batch 2."""
    out = []
    for run in plan(budget):
        g = run.grid

        def build(run=run):
            return ArbNet(sizes=sizes(run), hash=run.hash, table_size=run.table_size, sparsity=run.sparsity, seed=run.seed)

        def step(run=run):
            tiny = replace(run, grid=replace(run.grid, epochs=1))
            x = torch.randn(4, INPUTS[run.dataset])
            y = torch.tensor([0, 1, 2, 3])
            return train_run(tiny, (x[:2], y[:2], x[2:], y[2:]), replace(budget, batch_size=2))["test_acc"]

        key, s = run.key(budget), sizes(run)
        out.append(Planned(run.experiment, f"{run.dataset} {run.hash.label} s = {run.sparsity} n = {run.table_size} "
                                           f"seed {run.seed}", key, build, (INPUTS[run.dataset],),
                           examples=g.epochs * min(g.train, TRAIN_SET[run.dataset]), evaluated=g.test,
                           steps=g.epochs * math.ceil(min(g.train, TRAIN_SET[run.dataset]) / budget.batch_size),
                           config=f"{run.dataset} {s} {run.hash.kind} n = {run.table_size}", step=step,
                           expected_params=spec_params(run), macs=sum(a * b for a, b in zip(s, s[1:])),
                           stored=store is not None and key in store))
    return out
