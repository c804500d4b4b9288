"""Accuracies and the statistics behind every verdict: mean, std and s.e. over seeds, Welch tests."""
from __future__ import annotations

import math
from dataclasses import dataclass

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
