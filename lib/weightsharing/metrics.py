"""Accuracies and the statistics behind every verdict: mean, std and s.e. over seeds, Welch tests, binomial
intervals for rates, and the leave-one-run-out check that marks a verdict fragile."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
import torch
from scipy import stats


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return (logits.argmax(-1) == y).float().mean().item()


def test_accuracy(model, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1000) -> float:
    """Accuracy of a classifier over a whole split, in eval mode, in batches that fit in memory."""
    model.eval()
    with torch.no_grad():
        correct = sum((model(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum().item()
                      for i in range(0, len(y), batch_size))
    return correct / len(y)


def binary_accuracy(prob: torch.Tensor, y: torch.Tensor) -> float:
    """Threshold 0.5 on a probability, as round(sigmoid(.)) does."""
    return ((prob.reshape(-1) > 0.5).long() == y).float().mean().item()


def binomial_se(p: float, n: int) -> float:
    """Standard error of an accuracy p measured on n independent test examples."""
    return math.sqrt(p * (1 - p) / n)


@dataclass(frozen=True)
class Spread:
    mean: float
    std: float  # unbiased (n - 1), as torch.std
    se: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f} (n={self.n})"


def spread(values) -> Spread:
    v = np.asarray(values, dtype=float)
    std = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    return Spread(float(v.mean()), std, std / math.sqrt(len(v)) if len(v) > 1 else float("nan"), len(v))


@dataclass(frozen=True)
class Comparison:
    diff: float  # mean(a) - mean(b)
    se: float
    p: float     # two-sided Welch p-value; nan with fewer than 2 values per side

    def __str__(self) -> str:
        return f"{self.diff:+.3f} ± {self.se:.3f} (Welch p = {self.p:.2g})"


def welch(a, b) -> Comparison:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Comparison(diff, float("nan"), float("nan"))
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue) if se > 0 else (0.0 if diff else 1.0)
    return Comparison(diff, se, p)


def fgsm(model, x: torch.Tensor, y: torch.Tensor, *, eps: float, lo: float = -1.0, hi: float = 1.0,
         batch_size: int = 1000) -> tuple[float, float, torch.Tensor]:
    """One-step untargeted FGSM: x + eps * sign(grad of the mean cross-entropy w.r.t. x), clamped to [lo, hi].

    Returns (clean accuracy, adversarial accuracy, the gradient signs as int8). The batch mean only rescales each
    example's input gradient, so the result does not depend on `batch_size` (no batch norm here).
    """
    import torch.nn.functional as F

    model.eval()
    clean = adv = 0
    signs = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].detach().requires_grad_(True), y[i:i + batch_size]
        logits = model(xb)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, yb), xb)
        with torch.no_grad():
            clean += (logits.argmax(-1) == yb).sum().item()
            adv += (model((xb + eps * grad.sign()).clamp(lo, hi)).argmax(-1) == yb).sum().item()
        signs.append(grad.sign().to(torch.int8))
    return clean / len(x), adv / len(x), torch.cat(signs)


def verdict(support: bool, against: bool) -> str:
    """A claim holds when the data support it, does not hold when they significantly contradict it, else neither."""
    return "holds" if support else "does not hold" if against else "inconclusive"


def neighbour_distances(weight: torch.Tensor, grid: tuple[int, int], r: int) -> dict[str, float]:
    """Mean distance between the weight blocks of neighbouring positions of a locally connected layer (Rao et al.'s
    MeasureDistance): `weight` (positions, filters, fan_in) in row-major position order on `grid`, divided by its
    Frobenius norm; every centre (i, j) with r <= i, j < size - r against each neighbour at Chebyshev distance
    exactly r. Euclidean: mean of |u - v|; cosine: mean of 1 - cos(u, v), on whole blocks (all filters of a
    position); per_filter_cosine: the same cosine distance filter by filter, averaged."""
    h, w = grid
    blocks = (weight / weight.norm()).reshape(h, w, weight.shape[1], weight.shape[2]).double()
    centre = blocks[r:h - r, r:w - r]
    euclid, cosine, per_filter, pairs = 0.0, 0.0, 0.0, 0
    for di in range(-r, r + 1):
        for dj in range(-r, r + 1):
            if max(abs(di), abs(dj)) != r:
                continue
            other = blocks[r + di:h - r + di, r + dj:w - r + dj]
            u, v = centre.flatten(2), other.flatten(2)
            euclid += (u - v).norm(dim=-1).sum().item()
            cosine += (1 - torch.nn.functional.cosine_similarity(u, v, dim=-1)).sum().item()
            per_filter += (1 - torch.nn.functional.cosine_similarity(centre, other, dim=-1)).mean(-1).sum().item()
            pairs += u.shape[0] * u.shape[1]
    if not pairs:
        raise ValueError(f"a {h} x {w} grid has no centre with neighbours at distance {r}")
    return {"euclidean": euclid / pairs, "cosine": cosine / pairs, "per_filter_cosine": per_filter / pairs,
            "pairs": pairs}


def binomial_interval(k: int, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval for a rate of k events in n runs: exact, so it stays honest at k = 0 or k = n and
    with the handful of runs a chapter has."""
    if n == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    lo = float(stats.beta.ppf(tail, k, n - k + 1)) if k > 0 else 0.0
    hi = float(stats.beta.ppf(1 - tail, k + 1, n - k)) if k < n else 1.0
    return lo, hi


def leave_one_out(claims_without: Callable[[Any], list[dict]], runs: Iterable, *,
                  describe: Callable[[Any], str] = str, shown: int = 3) -> list[dict]:
    """Each claim of `claims_without(None)` with its fragility: the claims are recomputed with each run of `runs`
    left out in turn (`claims_without(run)`), and a verdict that changes for some run is fragile.

    A claim that disappears or turns "not run" without a run needed that run's setting: a verdict that rests on a
    single run is fragile too. If the claims cannot be computed at all without some run (an analysis that needs
    every setting present), no claim can be called robust: those not already fragile are "not assessed" (None).
    Adds `fragile`, `runs_left_out` and `decided_by` (each deciding run, described, with the verdict it would
    leave) to every claim, and names the first `shown` deciding runs in its evidence.
    """
    base = claims_without(None)
    deciders: dict[str, list[dict]] = {c["id"]: [] for c in base}
    count, unassessed = 0, []
    for run in runs:
        try:
            without = {c["id"]: c["verdict"] for c in claims_without(run)}
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
            unassessed.append(describe(run))
            continue
        count += 1
        for c in base:
            changed = without.get(c["id"], "not run")
            if c["verdict"] != "not run" and changed != c["verdict"]:
                deciders[c["id"]].append({"run": describe(run), "verdict": changed})
    out = []
    for c in base:
        decided = deciders[c["id"]]
        fragile = None if c["verdict"] == "not run" else True if decided else None if unassessed else False
        c = {**c, "fragile": fragile, "runs_left_out": count, "decided_by": decided}
        if decided:
            named = "; ".join(f"without {d['run']} it would be '{d['verdict']}'" for d in decided[:shown])
            more = f" (and {len(decided) - shown} more runs)" if len(decided) > shown else ""
            c["evidence"] = f"{c['evidence']}. FRAGILE: {named}{more}"
        elif fragile is None and c["verdict"] != "not run":
            c["evidence"] = (f"{c['evidence']}. Fragility not assessed: the claims cannot be computed without "
                             f"{unassessed[0]}" + (f" or {len(unassessed) - 1} other runs" if len(unassessed) > 1 else "")
                             + " (the only run of its setting)")
        out.append(c)
    return out


def fragility_counts(claims: Iterable[dict]) -> dict[str, int]:
    """Robust, fragile and not-assessed (not run) verdicts among `claims`."""
    claims = list(claims)
    return {"robust": sum(c.get("fragile") is False for c in claims),
            "fragile": sum(c.get("fragile") is True for c in claims),
            "not assessed": sum(c.get("fragile") is None for c in claims)}
