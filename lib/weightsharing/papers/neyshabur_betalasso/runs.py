"""Budgets, data, training and the sweep of the beta-lasso chapter.

Data stay uint8 on the device (zero-padded by 4 once, for the random crops) and each batch is cropped, flipped,
normalised and (E5) pixel-permuted on the fly, so a run never copies the dataset. Learning rate: 0.1, cosine to 0
per step. SGD models: momentum 0.9, weight decay 5e-4. Beta-lasso: Algorithm 1 on S-FC's three weight matrices.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import pandas as pd
import torch
import torch.nn.functional as F

from ... import data
from ...context import RunContext
from ...errors import UserError
from ...metrics import test_accuracy
from ...optim import BetaLasso
from ...planning import Planned
from ...planning import estimate as planning_estimate
from ...store import Store, canonical, pack_float16, sweep
from ...train import columns, fit, n_params, precise, seeded
from .models import Shallow, build, first_layer_filters

SLUG = "neyshabur_betalasso"
REVISION = 1  # bump whenever a change alters this chapter's results
DATA = ("cifar10", "cifar100")  # checked before a run starts (SVHN, where used, is optional)
CLASSES = {"cifar10": 10, "cifar100": 100, "svhn": 10}
# The paper's cumulative learning rate over 400 epochs (Table 1): 98 steps per epoch, cosine from 0.1 (mean 0.05).
PAPER_LR_SUM = 0.05 * 400 * 98 + 0.05


@dataclass(frozen=True)
class Ladder:
    """The epoch ladder (issue 17): S-FC on a CIFAR-10 subset small enough that SGD fits it, at a few lengths, each
    with its own cosine schedule. Flips without crops: an FC net does not fit randomly translated crops in a CPU
    budget (the `crop_flip` arm at the longest rung shows how far it gets)."""
    train: int = 2_500
    lengths: tuple[int, ...] = (3, 12, 48)
    seeds: int = 3
    augment: str = "flip"
    # Confirmatory seeds, trained after the claims that judge them were frozen, at one longer rung (its k is a quarter
    # of the 48-epoch rung's): every ladder arm, and the arms N1a, N1b and A1 compare, on CIFAR-10 and CIFAR-100
    confirm_seeds: tuple[int, ...] = ()
    confirm_length: int = 0


@dataclass(frozen=True)
class Budget:
    alpha: int
    epochs: tuple[tuple[str, int], ...]   # dataset -> epochs; the datasets this budget runs (SVHN where available)
    train: int | None = None              # a seeded subset of the training set; None = all of it
    test: int | None = None               # a seeded subset of the (shuffled) test set; None = all of it
    holdout: int = 0                      # training images held out as a validation set (paper: for choosing lambda)
    augment: str = "crop_flip"            # "crop_flip" | "flip" (no crops) | "autoaugment" (per image, then crop + flip)
    lam1: float = 2e-5                    # the paper budget's lambda for layer 1 ...
    lam2: float = 5e-6                    # ... and for layers 2-3
    betas: tuple[float, ...] = (0.0, 1.0, 50.0)
    match_lambda: bool = True             # budget-matched lambda' = k lambda, beta' = beta / k (spec section 4, #9)
    e4: bool = False                      # beta = 50 with the paper's lambda unscaled (CIFAR-10)
    e5_models: tuple[str, ...] = ()       # trained on pixel-permuted CIFAR-10
    seeds: int = 1                        # seeds of every setting (a verdict needs at least 3 per compared arm)
    batch_size: int = 512
    lr: float = 0.1
    ladder: Ladder | None = None          # the epoch ladder (experiment L), CIFAR-10 only

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(d for d, _ in self.epochs)

    def steps(self, dataset: str, n_train: int) -> int:
        return dict(self.epochs)[dataset] * math.ceil(n_train / self.batch_size)


BUDGETS = {
    "smoke": Budget(alpha=2, epochs=(("cifar10", 2),), train=2048, test=1000, e5_models=("S-FC",),
                    ladder=Ladder(train=256, lengths=(1, 2), seeds=1, confirm_seeds=(1,), confirm_length=3)),
    # CIFAR-100 runs 5 epochs (10 before issue 16): three seeds of every setting fit the 60 minutes that way. E4 (the
    # paper's lambda in a short run) moved into the ladder in issue 17, where SGD fits its data.
    "cpu": Budget(alpha=8, epochs=(("cifar10", 12), ("cifar100", 5), ("svhn", 12)),
                  e5_models=("S-FC", "S-CONV"), seeds=3, ladder=Ladder(confirm_seeds=(10, 11, 12), confirm_length=192)),
    # the ladder's top rung is the paper's own length, 4000 epochs (Table 2), on the training set less the hold-out;
    # flips without crops, as at `cpu`, so that the rungs compare with the `cpu` ladder
    "paper": Budget(alpha=150, epochs=(("cifar10", 400), ("cifar100", 400), ("svhn", 400)), holdout=5000,
                    augment="autoaugment", match_lambda=False, e5_models=("S-FC", "S-CONV"), seeds=3,
                    ladder=Ladder(train=45_000, lengths=(400, 1000, 4000))),
}


# The precision this chapter's new units are to train in (a Run's `precision`, recorded in its key). `make bench` times
# one training step of each model with SGD at batch 512: bf16 autocast runs 3-FC and S-FC about 3x, S-LOCAL about 1.7x
# faster, S-CONV about 0.8x (slower). The dense-heavy arms dominate the chapter's cost and every claim compares S-FC
# with another arm, so all its new units take bf16 (arms a claim compares share one precision). BetaLasso thresholds
# the fp32 master weights: autocast touches only the forward pass. Every unit trained so far is fp32 and keeps its key.
PRECISION = "bf16"

@dataclass(frozen=True)
class Run:
    experiment: str                       # E1 (Table 2), E4 (paper lambda), E5 (permuted), L (ladder); not keyed
    dataset: str
    model: str
    beta: float | None = None             # None: SGD; else beta-lasso with this (paper-scale) beta
    paper_lambda: bool = False            # E4: lambda unscaled even where the budget matches it
    permuted: bool = False
    seed: int = 0
    plain_sgd: bool = False               # SGD without momentum and weight decay (the optimizer beta-lasso wraps)
    lam2_scale: float = 1.0               # lambda of layers 2-3 times this (the width control: see WIDTH_SCALE)
    epochs: int | None = None             # the ladder: this run's length and augmentation (None: the budget's)
    augment: str | None = None
    precision: str = "fp32"               # every unit trained so far; the chapter's confirmatory seeds take PRECISION

    @property
    def label(self) -> str:
        crops = " (crops)" if self.augment == "crop_flip" and self.experiment == "L" else ""
        if self.beta is None:
            return f"{self.model} {'plain SGD' if self.plain_sgd else 'SGD'}{crops}"
        return (f"{self.model} β-lasso β = {self.beta:g}" + (" (paper λ)" if self.paper_lambda else "")
                + (f" (λ₂ × {self.lam2_scale:.2f})" if self.lam2_scale != 1.0 else ""))

    def budget(self, budget: Budget) -> Budget:
        """The budget this run trains under: the ladder's subset, length and augmentation for its rungs."""
        if self.epochs is None:
            return budget
        return replace(budget, train=budget.ladder.train, epochs=((self.dataset, self.epochs),), augment=self.augment)

    def key(self, budget: Budget) -> dict:
        own = self.budget(budget)
        b = asdict(own)
        for k in ("epochs", "e4", "e5_models", "seeds", "betas", "ladder"):
            b.pop(k)
        b["epochs"] = dict(own.epochs)[self.dataset]
        mine = {k: v for k, v in asdict(self).items() if k not in ("experiment", "epochs", "augment", "precision")}
        if not self.plain_sgd:
            mine.pop("plain_sgd")  # the keys of units stored before the field existed
        if self.lam2_scale == 1.0:
            mine.pop("lam2_scale")
        return precise({"rev": REVISION, **mine, **b}, self.precision)


def plan(budget: Budget, datasets: tuple[str, ...]) -> list[Run]:
    """Every unit of this budget on the datasets that are available (E4 and E5 are CIFAR-10 only)."""
    runs = []
    seeds = range(budget.seeds)
    for d in datasets:
        runs += [Run("E1", d, model, seed=s) for model in ("S-CONV", "S-LOCAL", "3-FC") for s in seeds]
        runs += [Run("E1", d, "S-FC", beta=beta, seed=s) for beta in (None, *budget.betas) for s in seeds]
    if "cifar10" in datasets:
        if budget.e4 and budget.match_lambda:
            runs += [Run("E4", "cifar10", "S-FC", beta=50.0, paper_lambda=True, seed=s) for s in seeds]
        for model in budget.e5_models:
            beta = 50.0 if model == "S-FC" else None
            runs += [Run("E5", "cifar10", model, beta=beta, permuted=p, seed=s) for p in (False, True) for s in seeds]
        if budget.ladder is not None:
            runs += ladder_runs(budget.ladder, match_lambda=budget.match_lambda, datasets=datasets)
    return runs


LADDER_ARMS = {"SGD": {}, "plain SGD": {"plain_sgd": True}, "β-lasso (paper λ)": {"beta": 50.0, "paper_lambda": True},
               "β-lasso (matched λ)": {"beta": 50.0}}


def ladder_runs(ladder: Ladder, *, match_lambda: bool = True, datasets: tuple[str, ...] = ("cifar10",)) -> list[Run]:
    """Every arm at every rung and seed; at the top rung also S-LOCAL (for N3) and SGD with crops (one seed: how far
    crops keep an FC net from fitting). Without budget matching the paper's lambda is the only one: no second arm."""
    top, seeds = max(ladder.lengths), range(ladder.seeds)
    arms = [a for name, a in LADDER_ARMS.items() if match_lambda or name != "β-lasso (paper λ)"]
    runs = [Run("L", "cifar10", "S-FC", seed=s, epochs=e, augment=ladder.augment, **arm)
            for arm in arms for e in ladder.lengths for s in seeds]
    runs += [Run("L", "cifar10", "S-LOCAL", seed=s, epochs=top, augment=ladder.augment) for s in seeds]
    runs += [Run("L", "cifar10", "S-FC", seed=0, epochs=top, augment="crop_flip")]
    return runs + confirm_runs(ladder, arms, datasets)


# Layer 2's initial weight bound is 1/sqrt(fan-in), and its fan-in grows with the width alpha: at the paper's alpha the
# same accumulated shrink removes this many times more of layer 2 than at ours (layer 1's fan-in does not depend on
# alpha). The width control scales lambda_2 by it.
WIDTH_SCALE = math.sqrt(150 / 8)


def confirm_runs(ladder: Ladder, arms: list[dict], datasets: tuple[str, ...]) -> list[Run]:
    """The confirmatory rung: every ladder arm, S-LOCAL and one crops seed on CIFAR-10; S-CONV, S-LOCAL, S-FC and
    3-FC with SGD on CIFAR-10 and CIFAR-100 (N1a, N1b, A1); β-lasso with the width-scaled lambda_2 (N5's control)."""
    if not ladder.confirm_seeds:
        return []
    e, aug, seeds = ladder.confirm_length, ladder.augment, ladder.confirm_seeds

    def run(dataset, model, seed, **kw):
        return Run("L", dataset, model, seed=seed, epochs=e, augment=kw.pop("augment", aug), precision=PRECISION, **kw)

    runs = [run("cifar10", "S-FC", s, **arm) for arm in arms for s in seeds]
    runs += [run("cifar10", "S-FC", s, beta=50.0, lam2_scale=WIDTH_SCALE) for s in seeds]
    both = [d for d in ("cifar10", "cifar100") if d in datasets]
    runs += [run(d, m, s) for d in both for m in ("S-LOCAL", "S-CONV", "3-FC") for s in seeds]
    runs += [run("cifar100", "S-FC", s) for s in seeds if "cifar100" in datasets]
    return runs + [run("cifar10", "S-FC", seeds[0], augment="crop_flip")]


def available(datasets: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The datasets that load here, and for each one that does not, the one-line reason."""
    ok, missing = [], {}
    for d in datasets:
        try:
            data.load(d)
            ok.append(d)
        except UserError as e:  # the message names this machine's folders: the chapter shows only the cause
            cause = str(e).split("(")[1].split(")")[0] if "(" in str(e) else "missing"
            missing[d] = f"not on this machine and not downloadable here ({cause})"
    return tuple(ok), missing


# ---------------------------------------------------------------------------------------------- data on the device

@dataclass
class Images:
    """One dataset prepared for a budget: uint8 training images zero-padded for the crops, normalised test images."""
    x_train: torch.Tensor                 # uint8 (N, 3, 40, 40)
    y_train: torch.Tensor
    x_val: torch.Tensor | None            # normalised float (held-out training images), or None
    y_val: torch.Tensor | None
    x_test: torch.Tensor                  # normalised float
    y_test: torch.Tensor
    mean: torch.Tensor                    # (1, 3, 1, 1), of the training images, /255
    std: torch.Tensor
    flip: bool                            # no horizontal flips on SVHN (digits)
    perm: torch.Tensor | None = field(default=None)  # (1024,) pixel permutation for E5

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() / 255 - self.mean) / self.std
        return x if self.perm is None else x.flatten(2)[:, :, self.perm].view_as(x)


def seeded_order(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def prepare(dataset: str, budget: Budget, device: str = "cpu") -> Images:
    ds = data.load(dataset)
    order = seeded_order(len(ds.y_train), 0)  # one fixed shuffle: the subset and the hold-out come from it
    n_val, n_train = budget.holdout, train_images(dataset, budget)
    train, val = order[n_val:n_val + n_train], order[:n_val]
    test = seeded_order(len(ds.y_test), 1)[:budget.test] if budget.test else torch.arange(len(ds.y_test))
    x = ds.x_train[train]
    mean = (x.float() / 255).mean(dim=(0, 2, 3), keepdim=True)
    std = (x.float() / 255).std(dim=(0, 2, 3), keepdim=True)
    imgs = Images(x_train=F.pad(x, (4, 4, 4, 4)).to(device), y_train=ds.y_train[train].to(device), x_val=None,
                  y_val=None, x_test=ds.x_test[test], y_test=ds.y_test[test].to(device), mean=mean.to(device),
                  std=std.to(device), flip=dataset != "svhn")
    imgs.x_test = imgs.normalise(imgs.x_test.to(device))
    if n_val:
        imgs.x_val, imgs.y_val = imgs.normalise(ds.x_train[val].to(device)), ds.y_train[val].to(device)
    return imgs


def permuted(imgs: Images, seed: int = 0) -> Images:
    """The same images with one fixed permutation of the 1024 pixel positions (the same for the 3 channels)."""
    perm = seeded_order(32 * 32, 1000 + seed).to(imgs.x_train.device)
    x_test = imgs.x_test.flatten(2)[:, :, perm].view_as(imgs.x_test)
    x_val = None if imgs.x_val is None else imgs.x_val.flatten(2)[:, :, perm].view_as(imgs.x_val)
    return replace(imgs, x_test=x_test, x_val=x_val, perm=perm)


def augment(imgs: Images, xb: torch.Tensor, generator: torch.Generator, *, autoaugment=None,
            crop: bool = True) -> torch.Tensor:
    """Random 32 x 32 crops of the padded uint8 batch (the centre without `crop`), horizontal flips, then
    normalisation (and permutation). With `autoaugment`, that policy is applied to each image (unpadded) first, as
    torchvision does per image."""
    b = xb.shape[0]
    if autoaugment is not None:
        core = torch.stack([autoaugment(img) for img in xb[:, :, 4:36, 4:36]])
        xb = F.pad(core, (4, 4, 4, 4))
    if crop:
        dy, dx = (torch.randint(0, 9, (2, b), generator=generator)).to(xb.device)
    else:
        dy = dx = torch.full((b,), 4, device=xb.device)
    ar = torch.arange(32, device=xb.device)
    rows, cols = (dy[:, None] + ar)[:, :, None], (dx[:, None] + ar)[:, None, :]
    # advanced indexing puts the channel axis last; contiguous NCHW again, or the whole network runs channels-last
    # (BatchNorm's backward 7x slower on this CPU)
    x = xb[torch.arange(b, device=xb.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2).contiguous()
    if imgs.flip:
        flip = (torch.rand(b, generator=generator) < 0.5).to(xb.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return imgs.normalise(x)


# ---------------------------------------------------------------------------------------------- one run

def lambdas(run: Run, budget: Budget, steps: int) -> dict:
    """The (lambda1, lambda2, beta) a beta-lasso run uses, and the factor k that budget matching applied."""
    lr_sum = budget.lr * 0.5 * steps + budget.lr * 0.5  # sum of the cosine schedule over `steps` steps
    k = PAPER_LR_SUM / lr_sum if budget.match_lambda and not run.paper_lambda else 1.0
    return {"k": k, "lam1": budget.lam1 * k, "lam2": budget.lam2 * k * run.lam2_scale, "beta": run.beta / k,
            "lr_sum": lr_sum}


def optimizer(model: Shallow, run: Run, budget: Budget, steps: int) -> tuple[torch.optim.Optimizer, dict]:
    if run.beta is None and run.plain_sgd:
        return torch.optim.SGD(model.parameters(), lr=budget.lr), {}
    if run.beta is None:
        return torch.optim.SGD(model.parameters(), lr=budget.lr, momentum=0.9, weight_decay=5e-4), {}
    lam = lambdas(run, budget, steps)
    w1, w2, w3 = model.weight_matrices()
    rest = [p for p in model.parameters() if all(p is not w for w in (w1, w2, w3))]
    groups = [{"params": [w1], "lam": lam["lam1"], "beta": lam["beta"]},
              {"params": [w2, w3], "lam": lam["lam2"], "beta": lam["beta"]},
              {"params": rest, "lam": 0.0, "beta": 0.0}]  # BatchNorm and the last bias: plain SGD
    return BetaLasso(groups, lr=budget.lr), lam


def nonzeros(model: Shallow) -> list[int]:
    return [int(torch.count_nonzero(w)) for w in model.weight_matrices()]


FIG4_FILTERS = 16


CLEAN_TRAIN = 5_000  # un-augmented training images a run is scored on at its end (the fit the regime check reads)


def train_run(run: Run, imgs: Images, budget: Budget, device: str = "cpu") -> dict:
    from .analysis import locality, locality_null, sample_filters

    budget = run.budget(budget)
    g = seeded(run.seed)  # initialisation, then batch order and augmentation
    model = build(run.model, alpha=budget.alpha, classes=CLASSES[run.dataset]).to(device)
    steps = budget.steps(run.dataset, len(imgs.y_train))
    opt, lam = optimizer(model, run, budget, steps)
    cosine = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
    aa = None
    if budget.augment == "autoaugment":
        from torchvision.transforms import v2

        policy = v2.AutoAugmentPolicy.SVHN if run.dataset == "svhn" else v2.AutoAugmentPolicy.CIFAR10
        aa = v2.AutoAugment(policy)

    def loss_fn(m, batch):
        logits = m(augment(imgs, batch[0], g, autoaugment=aa, crop=budget.augment != "flip"))
        return F.cross_entropy(logits, batch[1]), (logits.argmax(-1) == batch[1]).sum()

    track = run.model == "S-FC"
    history = fit(model, opt, loss_fn, (imgs.x_train, imgs.y_train), epochs=dict(budget.epochs)[run.dataset],
                  batch_size=budget.batch_size, generator=g, scheduler=cosine, precision=run.precision,
                  evaluate=(lambda m: {"nnz": nonzeros(m)}) if track else None)
    clean = imgs.normalise(imgs.x_train[:CLEAN_TRAIN, :, 4:36, 4:36])
    out = {"test_acc": test_accuracy(model, imgs.x_test, imgs.y_test), "history": columns(history),
           "clean_train_acc": test_accuracy(model, clean, imgs.y_train[:CLEAN_TRAIN]),
           "params": n_params(model), "steps": steps, **lam, "device": device}
    if imgs.x_val is not None:
        out["val_acc"] = test_accuracy(model, imgs.x_val, imgs.y_val)
    if run.model in ("S-FC", "S-LOCAL"):
        filters = first_layer_filters(model).cpu()
        if imgs.perm is not None:  # un-permute: column q of the first layer looks at pixel perm[q]
            flat = torch.empty_like(filters.flatten(2))
            flat[:, :, imgs.perm.cpu()] = filters.flatten(2)
            filters = flat.view_as(filters)
        out["locality"] = locality(filters)
        out["locality_null"] = locality_null(filters, seed=run.seed)
        if run.dataset == "cifar10" and run.seed == 0 and not run.paper_lambda:
            out["filters"] = pack_float16(sample_filters(filters, FIG4_FILTERS))
    if track:
        out["nnz"] = nonzeros(model)
    return out


def run_all(budget: Budget, store: Store, datasets: tuple[str, ...], *, device: str = "cpu") -> tuple[list[Run], list[dict]]:
    runs = plan(budget, datasets)
    images = data.Latest()

    def train(run: Run) -> dict:
        b = run.budget(budget)
        imgs = images((run.dataset, b.train), lambda: prepare(run.dataset, b, device))
        return train_run(run, permuted(imgs) if run.permuted else imgs, budget, device)

    def describe(run: Run, r: dict) -> str:
        nnz = f", non-zeros {'/'.join(str(n) for n in r['nnz'])}" if "nnz" in r else ""
        rung = f" {run.epochs} epochs" if run.epochs else ""
        return f"{run.experiment} {run.dataset:<8} {run.label:<32}{' permuted' if run.permuted else ''}{rung} seed {run.seed}: " \
               f"test {r['test_acc']:.4f}{nnz}"

    records = sweep(store, runs, key=lambda r: r.key(budget), run=train, describe=describe)
    return runs, records


def frame(runs: list[Run], records: list[dict]) -> pd.DataFrame:
    """One row per (run, record): the tidy table every analysis reads."""
    rows = []
    for run, rec in zip(runs, records):
        loc, null = rec.get("locality", {}), rec.get("locality_null", {})
        rows.append({"experiment": run.experiment, "dataset": run.dataset, "model": run.model, "label": run.label,
                     "epochs": run.epochs or rec["key"]["epochs"], "plain_sgd": run.plain_sgd,
                     "lam2_scale": run.lam2_scale,
                     "augment": rec["key"]["augment"], "clean_train_acc": rec.get("clean_train_acc"),
                     "ell_excess": null.get("excess"), "ell_live": null.get("live"),
                     "optimizer": "SGD" if run.beta is None else "β-lasso", "beta": run.beta,
                     "paper_lambda": run.paper_lambda, "permuted": run.permuted, "seed": run.seed,
                     "test_acc": rec["test_acc"], "val_acc": rec.get("val_acc"),
                     "final_train_acc": rec["history"]["train_acc"][-1], "k": rec.get("k"), "lam1": rec.get("lam1"),
                     "lam2": rec.get("lam2"), "beta_eff": rec.get("beta") if run.beta is not None else None,
                     "nnz1": (rec.get("nnz") or [None] * 3)[0], "nnz2": (rec.get("nnz") or [None] * 3)[1],
                     "nnz3": (rec.get("nnz") or [None] * 3)[2], "locality": loc.get("median"),
                     "radius": loc.get("radius_median"), "filters_kept": loc.get("kept"),
                     "params": rec["params"], "seconds": rec["seconds"], "finished_at": rec.get("finished_at"),
                     "unit": canonical(rec["key"]), "record": rec})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- cost before running

TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000, "svhn": 73_257}
TEST_IMAGES = {"cifar10": 10_000, "cifar100": 10_000, "svhn": 26_032}


def train_images(dataset: str, budget: Budget) -> int:
    """Training images a run of `dataset` sees: the budget's subset, or the training set less the hold-out."""
    return budget.train or TRAIN_IMAGES[dataset] - budget.holdout


def test_images(dataset: str, budget: Budget) -> int:
    return min(budget.test or TEST_IMAGES[dataset], TEST_IMAGES[dataset])


def train(ctx: RunContext) -> list[dict | None]:
    """Every unit of the budget on the datasets that load here (what a shard runs; TF32 on CUDA is set by the context)."""
    return run_all(ctx.budget, ctx.store, available(ctx.budget.datasets)[0], device=ctx.device)[1]


def fake_images(dataset: str, budget: Budget, n: int = 2) -> Images:
    """`n` random images in the shapes `prepare` makes (with a validation set where the budget holds one out)."""
    g = torch.Generator().manual_seed(0)
    x = F.pad(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8), (4, 4, 4, 4))
    y = torch.arange(n) % CLASSES[dataset]
    mean, std = torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.25)
    imgs = Images(x_train=x, y_train=y, x_val=None, y_val=None, x_test=x[:, :, 4:36, 4:36], y_test=y, mean=mean,
                  std=std, flip=dataset != "svhn")
    imgs.x_test = imgs.normalise(imgs.x_test)
    if budget.holdout:
        imgs.x_val, imgs.y_val = imgs.x_test.clone(), y.clone()
    return imgs


STEP_ALPHA = 8  # the widest model a planned step builds (the cpu budget's)


def planned(budget: Budget, store: Store | None = None, datasets: tuple[str, ...] | None = None) -> list[Planned]:
    """Every unit, for `plan`, the cost line of the chapter and the paper-scale tests."""
    from .analysis import FORMULAS

    out = []
    for run in plan(budget, datasets or budget.datasets):
        own = run.budget(budget)
        n = train_images(run.dataset, own)
        epochs = dict(own.epochs)[run.dataset]

        def make(run=run):
            return build(run.model, alpha=budget.alpha, classes=CLASSES[run.dataset])

        def step(run=run):
            # at most the cpu budget's width: the full width (S-FC is 256 M parameters at alpha = 150) is counted on the
            # meta device, and a real step of it only takes two minutes to exercise the code a narrow one does
            tiny = replace(budget, epochs=((run.dataset, 1),), batch_size=2, alpha=min(budget.alpha, STEP_ALPHA))
            imgs = fake_images(run.dataset, tiny)
            one = replace(run, epochs=1) if run.epochs else run
            return train_run(one, permuted(imgs) if run.permuted else imgs, tiny)["test_acc"]

        key = run.key(budget)
        optimizer_name = ("plain SGD" if run.plain_sgd else "SGD") if run.beta is None else \
            f"β-lasso{' paper λ' if run.paper_lambda else ''}"
        rung = f" {epochs} epochs" if run.epochs else ""
        out.append(Planned(run.experiment, f"{run.dataset} {run.label}{' permuted' if run.permuted else ''}{rung} seed {run.seed}",
                           key, make, (3, 32, 32), examples=n * epochs,
                           evaluated=test_images(run.dataset, own) + own.holdout + min(n, CLEAN_TRAIN),
                           steps=own.steps(run.dataset, n),
                           # augmentation is left out: the paper-scale test steps each model and optimizer once
                           # (AutoAugment's own path has a tiny-size test)
                           config=f"{run.model} α = {budget.alpha} {run.dataset} {optimizer_name}"
                                  f"{' permuted' if run.permuted else ''}",
                           step=step, expected_params=FORMULAS[run.model](budget.alpha, CLASSES[run.dataset]),
                           stored=store is not None and key in store))
    return out


def estimate(budget: Budget, datasets: tuple[str, ...], store: Store | None = None) -> pd.DataFrame:
    """The planning estimate (weightsharing.planning) of every distinct unit of the plan on these datasets."""
    return planning_estimate(planned(budget, store, datasets))
