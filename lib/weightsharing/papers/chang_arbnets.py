"""Chang & Lipson, "Balanced and Deterministic Weight-sharing Helps Network Performance" (ICANN 2018): ArbNets.

Every weight of a layer reads a hash table through an index map fixed before training; collisions are weight
sharing. Is more balanced sharing (Dirichlet alpha up) and more deterministic sharing (Neighborhood radius down)
better? Spec: ../shared/specs/chang.md. No code was published: every unstated choice is ours and marked so.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from .. import data, plotting
from ..bench import StackCase, epoch_steps
from ..layers import HashedLinear, hash_index, hash_stats
from ..metrics import (ALPHA, Comparison, contrast, failure_rates, holm, one_sample, regression_term, test_accuracy,
                       welch)
from ..verdicts import Finding, finished, judge, leave_one_out, not_run, rules
from ..planning import Planned
from ..runs import Store, sweep
from ..train import fit

SLUG = "chang_arbnets"
REVISION = 1
DATA = ("mnist", "cifar10")  # the datasets a run needs, checked before it starts


# ---------------------------------------------------------------------------------------------- model

@dataclass(frozen=True)
class Hash:
    """One hash setting; `kind` as in layers.hash_index, plus "dense" (an ordinary nn.Linear, the no-sharing reference)."""
    kind: str
    alpha: float | None = None
    radius: int | None = None

    @property
    def label(self) -> str:
        if self.kind == "dirichlet":
            return f"Dirichlet α = {self.alpha:g}"
        if self.kind == "neighborhood":
            return "modulus (r = 0)" if self.radius == 0 else f"Neighborhood r = {self.radius}"
        return {"uniform": "uniform", "permuted_modulus": "permuted modulus", "modulus": "modulus",
                "dense": "dense (no sharing)"}[self.kind]


class ArbNet(nn.Sequential):
    """[Linear -> ELU -> BN] per layer, including the 10-unit output layer (its BN output is the logit vector), with
    every weight matrix hashed into its own table of `table_size` entries (biases and BN are ordinary)."""

    def __init__(self, *, sizes: tuple[int, ...], hash: Hash, table_size: int, sparsity: float, seed: int):
        layers, self.shapes, self.indices = [], [], []
        for layer, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
            if hash.kind == "dense":
                linear = nn.Linear(fan_in, fan_out)
            else:
                # hash and zero mask from (seed, layer): the same seed pairs settings on identical masks
                index = hash_index(hash.kind, shape=(fan_out, fan_in), table_size=table_size,
                                   rng=np.random.default_rng((seed, layer)), sparsity=sparsity,
                                   alpha=hash.alpha, radius=hash.radius)
                linear = HashedLinear(fan_in, fan_out, index=index, table_size=table_size)
                self.indices.append(index)
            self.shapes.append((fan_out, fan_in))
            layers += [linear, nn.ELU(), nn.BatchNorm1d(fan_out)]
        super().__init__(*layers)
        self.table_size = table_size

    def hash_stats(self) -> list[dict]:
        return [asdict(hash_stats(i, table_size=self.table_size, shape=s)) for i, s in zip(self.indices, self.shapes)]


def network_entropy(layers: list[dict]) -> float:
    """Mean of the layers' entropies weighted by their non-zero counts (ours: the paper defines it for one table)."""
    total = sum(l["nonzero"] for l in layers)
    return sum(l["entropy"] * l["nonzero"] for l in layers) / total if total else float("nan")


# ---------------------------------------------------------------------------------------------- C6: common layers are ArbNets

def arbnet_checks() -> dict[str, float]:
    """Max abs error of three identities of §2: identity hash = dense, Toeplitz hash = convolution, modulus hash over
    unrolled time steps = one shared recurrent matrix. Tiny, so the chapter recomputes them."""
    torch.manual_seed(0)
    dense = nn.Linear(12, 5)
    ident = HashedLinear(12, 5, index=torch.arange(60), table_size=60)
    with torch.no_grad():
        ident.table.copy_(dense.weight.flatten())
        ident.bias.copy_(dense.bias)
    x = torch.randn(7, 12)
    err_dense = (ident(x) - dense(x)).abs().max().item()

    k, size, out = 3, 5, 3
    index = torch.full((out * out, size * size), k * k)
    for o in range(out * out):
        for t in range(k * k):
            index[o, (o // out + t // k) * size + o % out + t % k] = t
    toeplitz = HashedLinear(size * size, out * out, index=index.flatten(), table_size=k * k, bias=False)
    img = torch.randn(4, 1, size, size)
    err_conv = (toeplitz(img.flatten(1)) - F.conv2d(img, toeplitz.table.view(1, 1, k, k)).flatten(1)).abs().max().item()

    steps, hidden = 4, 6
    unrolled = hash_index("modulus", shape=(steps * hidden, hidden), table_size=hidden * hidden,
                          rng=np.random.default_rng(0)).view(steps, -1)
    err_rnn = float((unrolled - unrolled[:1]).abs().max())
    return {"identity hash vs nn.Linear": err_dense, "Toeplitz hash vs conv2d": err_conv,
            "modulus hash over time steps vs one shared matrix": err_rnn}


# ---------------------------------------------------------------------------------------------- budgets

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


BUDGETS = {
    "smoke": Budget(
        mnist=Grid(width=200, depth=2, train=2000, test=1000, table_size=997, sparsities=(0.5,), alphas=(0.01, 10),
                   radii=(0, 10), seeds=1, epochs=1),
        cifar10=Grid(width=64, depth=2, train=1000, test=500, table_size=997, sparsities=(0.5,), alphas=(), radii=(0,),
                     seeds=1, epochs=1),
        e4_sparsities=(0.5,), e4b=()),
    "cpu": Budget(
        mnist=Grid(width=200, depth=2, train=60_000, test=10_000, table_size=997, sparsities=(0.1, 0.5, 0.9),
                   alphas=(1e-3, 1e-2, 1e-1, 1, 100), radii=(0, 10, 100), seeds=5, epochs=10, dense=True),
        cifar10=Grid(width=512, depth=5, train=10_000, test=10_000, table_size=10_007, sparsities=(0.1, 0.9),
                     alphas=(1e-2, 1, 100), radii=(0, 100), seeds=3, epochs=8),
        e4_sparsities=(0.1, 0.9), e4b=(Hash("uniform"), Hash("dirichlet", alpha=1.0))),
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

    def key(self, budget: Budget) -> dict:
        g = self.grid
        return {"rev": REVISION, "dataset": self.dataset, **asdict(self.hash), "sparsity": self.sparsity,
                "table_size": self.table_size, "seed": self.seed, "width": g.width, "depth": g.depth,
                "train": g.train, "test": g.test, "epochs": g.epochs, "batch_size": budget.batch_size, "lr": budget.lr}


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
    torch.manual_seed(run.seed)
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
                  generator=torch.Generator().manual_seed(run.seed), on_epoch=on_epoch)
    test_acc = test_accuracy(model, x_test, y_test, batch_size=2000)
    layers = model.hash_stats()
    return {"test_acc": test_acc, "train_acc": [h["train_acc"] for h in history], "lr": [h["lr"] for h in history],
            "epochs_run": len(history), "decayed_after_epochs": decays, "layers": layers, "entropy": network_entropy(layers),
            "params": sum(p.numel() for p in model.parameters()), "device": device}


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


def train(budget: Budget, store: Store, *, device: str = "cpu") -> list[dict | None]:
    """Every unit of the budget through the store (a sharded store trains only its own); records in plan order."""
    tensors = data.Latest()

    def train_one(run):
        return train_run(run, tensors((run.dataset, run.grid), lambda: load_flat(run.dataset, run.grid)), budget, device)

    return sweep(store, plan(budget), key=lambda run: run.key(budget), run=train_one, describe=describe)


def run_all(budget: Budget, store: Store, *, device: str = "cpu") -> pd.DataFrame:
    runs, records = plan(budget), train(budget, store, device=device)
    return pd.DataFrame([{"experiment": run.experiment, "dataset": run.dataset, "hash": run.hash.kind,
                          "label": run.hash.label, "alpha": run.hash.alpha, "radius": run.hash.radius,
                          "sparsity": run.sparsity, "table_size": run.table_size, "seed": run.seed,
                          "test_acc": rec["test_acc"], "final_train_acc": rec["train_acc"][-1], "entropy": rec["entropy"],
                          "epochs_run": rec["epochs_run"], "lr_decays": len(rec["decayed_after_epochs"]),
                          "min_distinct_rows": min((l["distinct_rows"] for l in rec["layers"]), default=None),
                          "late_change": late_change(rec["train_acc"]), "finished_at": rec.get("finished_at"),
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


# ---------------------------------------------------------------------------------------------- analysis

def main_runs(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    return df[(df.experiment == "E2-E3") & (df.dataset == dataset)]


def _acc(df: pd.DataFrame, **where) -> np.ndarray:
    sub = df
    for k, v in where.items():
        sub = sub[sub[k] == v]
    return sub.sort_values("seed").test_acc.to_numpy()



def alpha_effect(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per sparsity: Spearman rho(alpha, accuracy) over all Dirichlet runs and acc(max alpha) - acc(min alpha)."""
    d = main_runs(df, dataset)
    d = d[d.hash == "dirichlet"]
    rows = []
    for s, g in d.groupby("sparsity"):
        lo, hi = g.alpha.min(), g.alpha.max()
        c = welch(_acc(g, alpha=hi), _acc(g, alpha=lo))
        rho = stats.spearmanr(g.alpha, g.test_acc).statistic if g.alpha.nunique() > 1 else float("nan")
        rows.append({"dataset": dataset, "sparsity": s, "rho": rho, "delta": c.diff, "delta_se": c.se, "delta_df": c.df, "delta_p": c.p,
                     "acc_min_alpha": _acc(g, alpha=lo).mean(), "acc_max_alpha": _acc(g, alpha=hi).mean()})
    return pd.DataFrame(rows)


def _by_seed(df: pd.DataFrame, **where) -> pd.Series:
    sub = df
    for k, v in where.items():
        sub = sub[sub[k] == v]
    return sub.set_index("seed").test_acc.sort_index()


def _paired(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Accuracies of two settings on the seeds both have (a seed fixes the mask, so these are paired runs)."""
    common = a.index.intersection(b.index)
    return a[common].to_numpy(), b[common].to_numpy()


def radius_effect(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per sparsity: modulus (r = 0) against uniform (r -> inf) and permuted modulus, paired by seed."""
    d = main_runs(df, dataset)
    rows = []
    for s, g in d.groupby("sparsity"):
        mod, uni, perm = (_by_seed(g, hash="neighborhood", radius=0), _by_seed(g, hash="uniform"),
                          _by_seed(g, hash="permuted_modulus"))
        drop = np.subtract(*_paired(mod, uni))
        if not len(drop):
            continue
        rows.append({"dataset": dataset, "sparsity": s, "modulus": mod.mean(), "uniform": uni.mean(),
                     "permuted_modulus": perm.mean() if len(perm) else None, "radius_drop": drop.mean(),
                     "radius_drop_se": drop.std(ddof=1) / math.sqrt(len(drop)) if len(drop) > 1 else float("nan"),
                     "radius_drop_df": len(drop) - 1.0, "radius_drop_p": one_sample(drop).p,
                     "perm_minus_modulus": np.subtract(*_paired(perm, mod)).mean() if len(perm) else None,
                     "perm_minus_uniform": np.subtract(*_paired(perm, uni)).mean() if len(perm) else None})
    return pd.DataFrame(rows)


def stuck_threshold(df: pd.DataFrame, dataset: str) -> float:
    """Half-way between chance and the best setting's mean accuracy: the stuck runs sit near chance, the rest near
    the best (on MNIST ~0.2 against ~0.8 at the same α), so any cut in the gap classifies them the same."""
    best = main_runs(df, dataset).groupby("label").test_acc.mean().max()
    return (0.1 + best) / 2  # both datasets have 10 classes


def stuck_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, hash and sparsity: how many runs got stuck (test accuracy below `stuck_threshold`), with the
    exact 95 % binomial interval of the rate. Settings without a stuck run are left out."""
    rows = []
    for dataset in ("mnist", "cifar10"):
        d = main_runs(df, dataset)
        if not len(d):
            continue
        cut = stuck_threshold(df, dataset)
        for r in failure_rates(d, ["label", "sparsity"], d.test_acc < cut, name="stuck"):
            seeds = r.pop("stuck_seeds")
            rows.append({"dataset": dataset, "setting": r.pop("label"), **r, "below": cut, "stuck_seeds": seeds})
    return pd.DataFrame(rows)


def _delta(row) -> Comparison:
    """alpha_effect's or radius_effect's row as the comparison it was computed from."""
    if hasattr(row, "delta_p"):
        return Comparison(row.delta, row.delta_se, row.delta_df, row.delta_p)
    return Comparison(row.radius_drop, row.radius_drop_se, row.radius_drop_df, row.radius_drop_p, "one-sample")


def converged(df: pd.DataFrame) -> tuple[bool, str]:
    """The regime check of every Chang claim: in each compared arm's median run, training accuracy moved by less
    than 1 point over the last tenth of training."""
    by_arm = df.groupby(["dataset", "label", "sparsity"]).late_change.median()
    worst = by_arm.max()
    return bool(worst < 0.01), (f"largest median change of training accuracy over the last tenth of training "
                                f"{100 * worst:.2f} points over {len(by_arm)} arms (threshold 1)")


def claims(df: pd.DataFrame, checks: dict[str, float]) -> list[dict]:
    R, out = rules(SLUG), []

    def finding(support, against, evidence, runs, n_runs, cells=()):
        ok, why = converged(runs)
        return Finding(support, against, evidence, n_runs, ok, why, tuple(cells), finished(runs.finished_at))

    d = main_runs(df, "mnist")
    dir_m = d[d.hash == "dirichlet"]
    a = alpha_effect(df, "mnist")
    if len(a):
        holm_p = holm(_delta(r).p for r in a.itertuples())
        support = all(_delta(r).p < ALPHA and r.delta > 0 for r in a.itertuples())
        against = any(r.delta < 0 and hp < ALPHA for r, hp in zip(a.itertuples(), holm_p))
        arms = dir_m[dir_m.alpha.isin([dir_m.alpha.min(), dir_m.alpha.max()])]
        out.append(judge(R["C1"], finding(support, against, "acc(max α) − acc(min α): " + "; ".join(
            f"s = {r.sparsity:g}: {_delta(r)} (Holm p = {hp:.2g})" for r, hp in zip(a.itertuples(), holm_p)),
            arms, int(arms.groupby(["sparsity", "alpha"]).size().min()), [f"s = {s:g}" for s in a.sparsity])))
    else:
        out.append(not_run(R["C1"], "no MNIST Dirichlet runs in this budget"))

    c = alpha_effect(df, "cifar10")
    if len(c) >= 2:
        low, high = c.iloc[0], c.iloc[-1]
        diff = contrast(_delta(low), _delta(high))
        dc = main_runs(df, "cifar10")
        dc = dc[(dc.hash == "dirichlet") & dc.sparsity.isin([low.sparsity, high.sparsity])]
        arms = dc[dc.alpha.isin([dc.alpha.min(), dc.alpha.max()])]
        out.append(judge(R["C2"], finding(
            diff.significant() > 0 and _delta(high).significant() >= 0, diff.significant() < 0,
            f"Δ(s = {low.sparsity:g}) = {_delta(low)}; Δ(s = {high.sparsity:g}) = {_delta(high)}; "
            f"difference {diff} (reduced CIFAR-10 net)", arms, int(arms.groupby(["sparsity", "alpha"]).size().min()))))
    else:
        out.append(not_run(R["C2"], "this budget has fewer than two CIFAR-10 sparsities with α runs"))

    quad = {s: regression_term(np.column_stack([np.ones(len(g)), g.entropy, g.entropy ** 2]), g.test_acc.to_numpy(), 2)
            for s, g in dir_m.groupby("sparsity") if g.alpha.nunique() >= 3}
    if len(quad) >= 2:
        lo, hi = min(quad), max(quad)
        diff = contrast(quad[lo], quad[hi])
        out.append(judge(R["C3"], finding(
            quad[lo].significant() < 0 and diff.significant() < 0,
            diff.significant() > 0 or quad[lo].significant() > 0,
            "; ".join(f"s = {s:g}: quadratic term {q}" for s, q in quad.items())
            + f"; q(s = {lo:g}) − q(s = {hi:g}) = {diff}", dir_m[dir_m.sparsity.isin([lo, hi])],
            int(dir_m[dir_m.sparsity.isin([lo, hi])].groupby(["sparsity", "alpha"]).size().min()))))
    else:
        out.append(not_run(R["C3"], "needs at least 3 α values at 2 sparsities"))

    tests, used = {}, []
    for dataset in ("mnist", "cifar10"):
        m = main_runs(df, dataset)
        drops = []
        for _, g in m.groupby("sparsity"):
            mod, uni = _paired(_by_seed(g, hash="neighborhood", radius=0), _by_seed(g, hash="uniform"))
            drops += list(np.subtract(mod, uni))
        if len(drops):
            tests[dataset] = one_sample(drops)
            used.append(m[(m.hash == "uniform") | ((m.hash == "neighborhood") & (m.radius == 0))])
    if tests:
        holm_p = dict(zip(tests, holm(t.p for t in tests.values())))
        arms = pd.concat(used)
        out.append(judge(R["C4"], finding(
            len(tests) == 2 and all(t.significant() > 0 for t in tests.values()),
            any(t.diff < 0 and holm_p[d] < ALPHA for d, t in tests.items()),
            "; ".join(f"{d}: acc(r = 0) − acc(uniform), paired over sparsities and seeds, {t} (Holm p = {holm_p[d]:.2g})"
                      for d, t in tests.items()), arms,
            int(arms.groupby(["dataset", "label", "sparsity"]).size().min()), list(tests))))
    else:
        out.append(not_run(R["C4"], "no paired r = 0 and uniform runs"))

    rad = radius_effect(df, "mnist")
    if len(rad) >= 2:
        low, high = rad.iloc[0], rad.iloc[-1]
        diff = contrast(_delta(low), _delta(high))
        arms = d[d.sparsity.isin([low.sparsity, high.sparsity]) & ((d.hash == "uniform") | ((d.hash == "neighborhood") & (d.radius == 0)))]
        out.append(judge(R["C5"], finding(
            diff.significant() > 0, diff.significant() < 0,
            f"acc(r = 0) − acc(uniform): s = {low.sparsity:g} {_delta(low)}, s = {high.sparsity:g} {_delta(high)}; "
            f"difference {diff}", arms, int(arms.groupby(["label", "sparsity"]).size().min()))))
    else:
        out.append(not_run(R["C5"], "needs two sparsities"))

    worst = max(checks.values())
    out.append(judge(R["C6"], Finding(worst < 1e-5, worst >= 1e-5,
                                      "; ".join(f"{k}: max abs error {v:.1e}" for k, v in checks.items()), None)))
    return out


def verdicts(df: pd.DataFrame, checks: dict[str, float]) -> list[dict]:
    """`claims` with each verdict's fragility: every E2-E3 run (one setting, one seed) left out in turn."""
    main = df[df.experiment == "E2-E3"]
    cut = {d: stuck_threshold(df, d) for d in main.dataset.unique()}

    def describe(i):
        stuck = " (a stuck run)" if main.test_acc[i] < cut[main.dataset[i]] else ""
        return f"{main.dataset[i]} {main.label[i]} s = {main.sparsity[i]:g} seed {main.seed[i]}{stuck}"

    return leave_one_out(lambda run: claims(df if run is None else df.drop(index=run), checks), main.index,
                         describe=describe)


# ---------------------------------------------------------------------------------------------- figures

def sparsity_label(s: float) -> str:
    return f"s = {s:g}"


def figure1(alphas=(1e-3, 1e-2, 1e-1, 1, 10, 100), entries: int = 1000, seed: int = 0):
    """Dirichlet(α) parameters on 1000 entries as 25 x 40 heatmaps on one colour scale, entropy in the title."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    ps = [rng.dirichlet(np.full(entries, a)) for a in alphas]
    vmax = max(p.max() for p in ps)
    cols = 3
    fig, axes = plt.subplots(-(-len(alphas) // cols), cols, figsize=plotting.size(3.0 * cols, 2.3 * -(-len(alphas) // cols)),
                             layout="constrained")
    for ax, a, p in zip(axes.flat, alphas, ps):
        q = p[p > 0]
        im = ax.imshow(p.reshape(25, 40), vmin=0, vmax=vmax, cmap="viridis")
        ax.set(title=f"α = {a:g}\nH = {-(q * np.log(q)).sum():.2f} nats", xticks=[], yticks=[])
    fig.colorbar(im, ax=axes, shrink=0.8, label="p")
    return fig


def figure2(df: pd.DataFrame):
    fig, axes = plotting.panels(2, sharey=False)
    for ax, dataset in zip(axes, ("mnist", "cifar10")):
        d = main_runs(df, dataset)
        dirich = d[d.hash == "dirichlet"].assign(s=lambda x: x.sparsity.map(sparsity_label))
        if not len(dirich):
            continue
        colors = plotting.band(ax, dirich, x="alpha", y="test_acc", hue="s", spread="se")
        for s, g in d[d.hash == "uniform"].groupby("sparsity"):
            ax.axhline(g.test_acc.mean(), color=colors[sparsity_label(s)], ls="--", lw=1)
        ax.set(xscale="log", title=f"{dataset}: balance", xlabel="Dirichlet α (dashed: uniform hash)",
               ylabel="test accuracy")
        ax.legend()
    return fig


def figure3(df: pd.DataFrame):
    fig, axes = plotting.panels(2, sharey=False)
    markers = {"dirichlet": "o", "neighborhood": "s", "uniform": "^", "permuted_modulus": "D"}
    for ax, dataset in zip(axes, ("mnist", "cifar10")):
        d = main_runs(df, dataset)
        d = d[d.hash != "dense"]
        palette = dict(zip(sorted(d.sparsity.unique()), plotting.series_colors(d.sparsity.nunique())))
        for (kind, s), g in d.groupby(["hash", "sparsity"]):
            ax.scatter(g.entropy, g.test_acc, color=palette[s], marker=markers[kind], s=22, alpha=0.8,
                       label=sparsity_label(s) if kind == "dirichlet" else None)
        for kind, m in markers.items():
            ax.scatter([], [], color="grey", marker=m, label=kind.replace("_", " "))
        ax.set(title=f"{dataset}: accuracy vs entropy", xlabel="network entropy (nats)", ylabel="test accuracy")
        ax.legend()
    return fig


def figure4(df: pd.DataFrame):
    fig, axes = plotting.panels(2, sharey=False)
    for ax, dataset in zip(axes, ("mnist", "cifar10")):
        d = main_runs(df, dataset)
        nb = d[d.hash.isin(["neighborhood", "uniform"])].copy()
        if not len(nb):
            continue
        inf = 10 * max(nb.radius.max(), 1)
        nb["r"] = nb.radius.fillna(inf)
        nb["s"] = nb.sparsity.map(sparsity_label)
        colors = plotting.band(ax, nb, x="r", y="test_acc", hue="s", spread="se")
        for s, g in d[d.hash == "permuted_modulus"].groupby("sparsity"):
            ax.plot([0], [g.test_acc.mean()], marker="D", color=colors[sparsity_label(s)], linestyle="none")
        ax.set_xscale("symlog", linthresh=1)
        ticks = sorted(nb.r.unique())
        ax.set_xticks(ticks, [("∞" if t == inf else f"{t:g}") for t in ticks])
        ax.plot([], [], marker="D", color="grey", linestyle="none", label="permuted modulus")
        ax.set(title=f"{dataset}: determinism", xlabel="radius r (0 = modulus, ∞ = uniform)", ylabel="test accuracy")
        ax.legend()
    return fig


def statements(df: pd.DataFrame) -> pd.DataFrame:
    """The paper's results are figures only; its statements (spec §3) beside the number of ours that tests each."""
    a_m, a_c, r_m = alpha_effect(df, "mnist"), alpha_effect(df, "cifar10"), radius_effect(df, "mnist")
    uniform = main_runs(df, "mnist")
    uniform = uniform[uniform.hash == "uniform"]
    layer1 = [r[0]["entropy"] for r in uniform.layers] if len(uniform) else []
    rows = []

    def add(paper, what, values, se=None, n=None):
        rows.append({"paper": paper, "measure": what, "ours": values, "ours_std": se, "n_seeds": n})

    seeds = int(main_runs(df, "mnist").seed.nunique())
    if len(a_m):
        worst = a_m.loc[a_m.delta.idxmin()]
        add("MNIST: increasing α has a direct positive effect at all sparsities (Fig. 2)",
            "smallest acc(max α) − acc(min α) over sparsities", worst.delta, worst.delta_se, seeds)
    if len(a_c) >= 2:
        add("CIFAR-10: small positive effect of α when sparse, huge at low sparsity (Fig. 2)",
            "Δ(lowest s) − Δ(highest s)", a_c.delta.iloc[0] - a_c.delta.iloc[-1],
            math.hypot(a_c.delta_se.iloc[0], a_c.delta_se.iloc[-1]), int(main_runs(df, "cifar10").seed.nunique()))
    if len(r_m):
        add("Larger radius lowers accuracy overall (Fig. 4)", "mean acc(r = 0) − acc(uniform), MNIST, over sparsities",
            r_m.radius_drop.mean(), None, seeds)
    if len(r_m) >= 2:
        add("On MNIST, higher sparsity gives a smaller drop (Fig. 4)", "drop(highest s) − drop(lowest s)",
            r_m.radius_drop.iloc[-1] - r_m.radius_drop.iloc[0], math.hypot(r_m.radius_drop_se.iloc[0], r_m.radius_drop_se.iloc[-1]), seeds)
    if layer1:
        add("A uniform distribution on 1000 entries has a Shannon entropy of 6.91 (§5.1)",
            "entropy of the uniform hash, MNIST layer 1 (997 entries; nats)", float(np.mean(layer1)),
            float(np.std(layer1, ddof=1)) if len(layer1) > 1 else None, len(layer1))
    return pd.DataFrame(rows)


def duplicated_neurons(df: pd.DataFrame) -> pd.DataFrame:
    """E4: modulus with n = 1000 against the prime n = 997, seed 0, per layer: distinct rows of the hash itself (before
    the zero mask; identical rows are copies of one neuron) and of the masked index map the run trained with."""
    e4 = df[df.experiment == "E4"]
    base = main_runs(df, "mnist")
    base = base[(base.hash == "neighborhood") & (base.radius == 0) & (base.seed == 0) & base.sparsity.isin(set(e4.sparsity))]
    rows = []
    for run in pd.concat([e4, base]).itertuples():
        shapes = [(200, 784), (200, 200), (10, 200)]
        structural = [hash_stats(hash_index("modulus", shape=sh, table_size=run.table_size, rng=np.random.default_rng(0)),
                                 table_size=run.table_size, shape=sh).distinct_rows for sh in shapes]
        rows.append({"table_size": run.table_size, "sparsity": run.sparsity, "test_acc": run.test_acc,
                     "distinct rows of the hash (200, 200, 10)": ", ".join(map(str, structural)),
                     "distinct rows after masking": ", ".join(str(l["distinct_rows"]) for l in run.layers)})
    return pd.DataFrame(rows).sort_values(["sparsity", "table_size"]) if rows else pd.DataFrame()


def e4_reading(dup: pd.DataFrame, df: pd.DataFrame) -> dict:
    """What E4 shows: the hash's distinct rows at n = 1000 and 997, and seed 0's accuracy change at each sparsity
    beside the seed-to-seed std of the modulus runs of the main grid (E4 has one seed per table size)."""
    by = dup.set_index(["sparsity", "table_size"])
    sparsities = sorted(dup.sparsity.unique())
    change = {s: by.test_acc[s, 1000] - by.test_acc[s, 997] for s in sparsities if (s, 1000) in by.index and (s, 997) in by.index}
    mod = main_runs(df, "mnist")
    mod = mod[(mod.hash == "neighborhood") & (mod.radius == 0) & mod.sparsity.isin(sparsities)]
    col = "distinct rows of the hash (200, 200, 10)"
    return {"rows_1000": by[col].xs(1000, level="table_size").iloc[0], "rows_997": by[col].xs(997, level="table_size").iloc[0],
            "acc_change": "; ".join(f"s = {s:g}: {d:+.4f}" for s, d in change.items()),
            "largest_change": max((abs(d) for d in change.values()), default=float("nan")),
            "seed_std": mod.groupby("sparsity").test_acc.std(ddof=1).mean()}


def e4b_reading(df: pd.DataFrame) -> dict:
    """E4b: the literal 997-entry tables on CIFAR-10 against the load-matched tables of the main grid (s = 0.1)."""
    e4b = df[df.experiment == "E4b"]
    main = main_runs(df, "cifar10")
    main = main[main.sparsity == 0.1]
    matched = main[main.hash.isin(set(e4b.hash))].groupby("label").test_acc.mean()
    return {"best_997": e4b.test_acc.max(), "matched_best": matched.max(),
            "matched_table": int(main.table_size.iloc[0]) if len(main) else 0}


def control_reading(radius_tab: pd.DataFrame, dataset: str = "mnist") -> dict:
    """Which hash the permuted-modulus control (balanced, fixed, unstructured) scores like: modulus -> balance or
    determinism explains the radius effect; uniform -> the modulus hash's structure does."""
    r = radius_tab[radius_tab.dataset == dataset]
    to_mod, to_uni = r.perm_minus_modulus.abs().mean(), r.perm_minus_uniform.abs().mean()
    return {"perm_minus_modulus": r.perm_minus_modulus.mean(), "perm_minus_uniform": r.perm_minus_uniform.mean(),
            "closer_to": "uniform" if to_uni < to_mod else "modulus",
            "explains": "the modulus hash's structure" if to_uni < to_mod else "balance and determinism"}


# The rung each hash stands on (the synthesis page's ladder).
LADDER = {"dense (no sharing)": "neither", "modulus (r = 0)": "hashed sharing", "uniform": "hashed sharing"}


def ladder_rows(tables: dict) -> list[dict]:
    """This chapter's rows of the book's ladder of inductive bias (`synthesis.RUNGS`), read from its summary tables:
    {"rung", "setting", "model", "accuracy" (%), "heading" (the section it comes from)}."""
    return [{"rung": LADDER[r["label"]], "setting": r["dataset"],
             "model": r["label"] + (f", s = {r['sparsity']:g}" if r["sparsity"] else ""), "accuracy": 100 * r["mean"],
             "heading": "The runs"} for r in tables.get("settings", [])
            if r["label"] in LADDER and r["sparsity"] in (0.0, 0.1) and pd.notna(r["mean"])]
