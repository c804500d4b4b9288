"""Accuracies and the statistics behind every verdict: mean, std and s.e. over seeds, Welch and one-sample t tests
with their degrees of freedom, equivalence tests (TOST), Holm's correction, exact binomial intervals for rates."""
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


ALPHA = 0.05  # every test in the book: two-sided 0.05, or one-sided 0.05 per side of an equivalence test


@dataclass(frozen=True)
class Comparison:
    """A difference of means (or a mean against a reference) with its Welch t statistics."""
    diff: float  # mean(a) - mean(b), or mean(a) - reference
    se: float
    df: float    # Welch-Satterthwaite degrees of freedom (n - 1 for one sample); nan below 2 values per side
    p: float     # two-sided p-value; nan with fewer than 2 values per side
    test: str = "Welch"  # "Welch" (two samples) or "one-sample" (paired differences, a level against a value)

    @property
    def t(self) -> float:
        return self.diff / self.se if self.se > 0 else math.copysign(math.inf, self.diff) if self.diff else 0.0

    def p_above(self, margin: float = 0.0) -> float:
        """One-sided p-value of H0: diff <= margin against H1: diff > margin."""
        if not math.isfinite(self.df):
            return float("nan")
        if self.se == 0:
            return 0.0 if self.diff > margin else 1.0
        return float(stats.t.sf((self.diff - margin) / self.se, self.df))

    def p_below(self, margin: float = 0.0) -> float:
        """One-sided p-value of H0: diff >= margin against H1: diff < margin."""
        if not math.isfinite(self.df):
            return float("nan")
        if self.se == 0:
            return 0.0 if self.diff < margin else 1.0
        return float(stats.t.cdf((self.diff - margin) / self.se, self.df))

    def p_outside(self, margin: float) -> float:
        """One-sided p-value that the difference lies beyond +-margin, on the side the estimate is on: the test that
        contradicts a claim of equivalence."""
        return min(self.p_above(margin), self.p_below(-margin))

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided t interval of the difference."""
        if not math.isfinite(self.df):
            return float("nan"), float("nan")
        half = float(stats.t.ppf(0.5 + level / 2, self.df)) * self.se
        return self.diff - half, self.diff + half

    def significant(self, alpha: float = ALPHA) -> int:
        """+1 if the difference is significantly positive, -1 if significantly negative, 0 otherwise (two-sided)."""
        return 0 if not self.p < alpha else 1 if self.diff > 0 else -1

    def points(self, *, df_digits: int = 1) -> str:
        """A difference of accuracies (fractions) in percentage points, with its test."""
        if not math.isfinite(self.df):
            return f"{100 * self.diff:+.2f} pts (one run: no test)"
        return (f"{100 * self.diff:+.2f} ± {100 * self.se:.2f} pts ({self.test} t = {self.t:.2f}, "
                f"df = {self.df:.{df_digits}f}, p = {self.p:.2g})")

    def __str__(self) -> str:
        if not math.isfinite(self.df):
            return f"{self.diff:+.3f} (one run: no test)"
        return f"{self.diff:+.3f} ± {self.se:.3f} ({self.test} t = {self.t:.2f}, df = {self.df:.1f}, p = {self.p:.2g})"


def _t_test(diff: float, se: float, df: float, test: str) -> Comparison:
    """The two-sided t test of `diff` with standard error `se` on `df` degrees of freedom (a zero se: p 0 or 1)."""
    if se == 0:
        return Comparison(diff, 0.0, float(df), 0.0 if diff else 1.0, test)
    return Comparison(diff, se, float(df), float(2 * stats.t.sf(abs(diff) / se, df)), test)


def welch(a, b) -> Comparison:
    """Welch's unequal-variance t test of mean(a) - mean(b)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Comparison(diff, float("nan"), float("nan"), float("nan"))
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = se ** 4 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se else len(a) + len(b) - 2
    return _t_test(diff, se, df, "Welch")


def one_sample(a, reference: float = 0.0) -> Comparison:
    """Student's t test of mean(a) - reference (a paired difference, or a level against a stated value)."""
    a = np.asarray(a, dtype=float)
    diff = float(a.mean() - reference)
    if len(a) < 2:
        return Comparison(diff, float("nan"), float("nan"), float("nan"), "one-sample")
    return _t_test(diff, float(a.std(ddof=1)) / math.sqrt(len(a)), len(a) - 1, "one-sample")


def contrast(a: Comparison, b: Comparison) -> Comparison:
    """a.diff - b.diff for two independent comparisons: se from both, Welch-Satterthwaite degrees of freedom."""
    diff, se2 = a.diff - b.diff, a.se ** 2 + b.se ** 2
    if not (math.isfinite(a.df) and math.isfinite(b.df)):
        return Comparison(diff, float("nan"), float("nan"), float("nan"), "contrast")
    df = se2 ** 2 / (a.se ** 4 / a.df + b.se ** 4 / b.df) if se2 else a.df + b.df
    return _t_test(diff, math.sqrt(se2), df, "contrast")


def linear_contrast(groups: dict, weights: dict) -> Comparison:
    """sum_m w_m mean(groups[m]) over independent groups, with its Welch-Satterthwaite t test: the generalisation
    of Welch's test to any contrast of arm means (e.g. one mean gain against another sharing some arms)."""
    terms = [(w, np.asarray(groups[m], dtype=float)) for m, w in weights.items() if w]
    diff = float(sum(w * v.mean() for w, v in terms))
    if any(len(v) < 2 for _, v in terms):
        return Comparison(diff, float("nan"), float("nan"), float("nan"), "contrast")
    parts = [(w ** 2 * v.var(ddof=1) / len(v), len(v) - 1) for w, v in terms]
    var = sum(p for p, _ in parts)
    df = var ** 2 / sum(p ** 2 / d for p, d in parts) if var else sum(d for _, d in parts)
    return _t_test(diff, math.sqrt(var), df, "contrast")


def regression_term(x: np.ndarray, y: np.ndarray, column: int) -> Comparison:
    """Ordinary least squares of y on the columns of x: coefficient `column` with its t test (n - p degrees of
    freedom)."""
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(y) - x.shape[1]
    if dof <= 0:
        return Comparison(float(coef[column]), float("nan"), float("nan"), float("nan"), "OLS")
    sigma2 = float(((y - x @ coef) ** 2).sum()) / dof
    se = math.sqrt(sigma2 * np.linalg.inv(x.T @ x)[column, column])
    p = float(2 * stats.t.sf(abs(coef[column] / se), dof)) if se > 0 else float("nan")
    return Comparison(float(coef[column]), se, float(dof), p, "OLS")


@dataclass(frozen=True)
class Equivalence:
    """Two one-sided tests (TOST) that a difference lies within +-margin: equivalent when both reject at ALPHA."""
    comparison: Comparison
    margin: float
    p: float  # the larger of the two one-sided p-values

    @property
    def equivalent(self) -> bool:
        return self.p < ALPHA

    def __str__(self) -> str:
        lo, hi = self.comparison.interval(1 - 2 * ALPHA)
        if not math.isfinite(lo):
            return f"{self.comparison.diff:+.3f} (one run: no test) against ±{self.margin:g}"
        return (f"{self.comparison.diff:+.3f}, 90 % CI [{lo:+.3f}, {hi:+.3f}] against ±{self.margin:g} "
                f"(TOST p = {self.p:.2g}, df = {self.comparison.df:.1f})")


def equivalence(c: Comparison, margin: float) -> Equivalence:
    """TOST on a Welch or one-sample comparison: H1 is -margin < diff < margin."""
    p = max(c.p_above(-margin), c.p_below(margin))
    return Equivalence(c, margin, p if math.isfinite(p) else float("nan"))


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control for a family of tests); nan stays nan."""
    ps = list(pvalues)
    order = sorted((i for i, p in enumerate(ps) if p == p), key=lambda i: ps[i])
    m, out, running = len(order), [float("nan")] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


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


def failure_rates(runs, by: list[str], failed, *, name: str) -> list[dict]:
    """Per group of `runs` (a DataFrame with a `seed` column) by the columns `by`: how many runs `failed` (a boolean
    per row), the rate with its exact 95 % interval, and which seeds; groups without a failure are left out. Rows
    {*by, "runs", name, "rate", "rate_lo", "rate_hi", f"{name}_seeds"}, in the order the groups first appear."""
    rows = []
    for keys, g in runs.groupby(by, sort=False):
        bad = failed[g.index]
        k = int(bad.sum())
        if k:
            lo, hi = binomial_interval(k, len(g))
            rows.append({**dict(zip(by, keys if isinstance(keys, tuple) else (keys,))), "runs": len(g), name: k,
                         "rate": k / len(g), "rate_lo": lo, "rate_hi": hi,
                         f"{name}_seeds": ", ".join(str(x) for x in sorted(g.seed[bad]))})
    return rows
