"""The epoch ladder (experiment L): S-FC on a CIFAR-10 subset that SGD fits, at several lengths, each with its own
cosine schedule. Tables, the trend of each arm's gap to SGD over the rungs, and the regime check of the claims that
the ladder judges (N2, N3, N5, N6, A2)."""
from __future__ import annotations

import math

import pandas as pd

from ...metrics import ALPHA, Comparison, linear_contrast, welch
from .models import dense_counts

ARMS = ("SGD", "plain SGD", "β-lasso (paper λ)", "β-lasso (matched λ)")  # every rung
TOP_ONLY = ("S-LOCAL SGD", "SGD (crops)")                                 # the top rung only
WIDTH_ARM = "β-lasso (matched λ, width-scaled λ₂)"                         # the confirmatory rung only
ARCHITECTURES = ("S-CONV SGD", "3-FC SGD")                                # the confirmatory rung, N1a, N1b, A1
# each arm's short name in the glue keys of the chapter (lad_<key>_test, ...)
GLUE_KEYS = {"SGD": "sgd", "plain SGD": "plain", "β-lasso (paper λ)": "paper", "β-lasso (matched λ)": "matched",
             "S-LOCAL SGD": "local", "SGD (crops)": "crops"}
FIT = 0.95  # the regime check: SGD's median clean training accuracy at the top rung


def arm_name(r) -> str:
    if r.model != "S-FC":
        return f"{r.model} SGD"
    if r.augment == "crop_flip":
        return "SGD (crops)"
    if pd.isna(r.beta):
        return "plain SGD" if r.plain_sgd else "SGD"
    if r.lam2_scale != 1.0:
        return WIDTH_ARM
    return "β-lasso (paper λ)" if r.paper_lambda else "β-lasso (matched λ)"


def frame(df: pd.DataFrame, dataset: str | None = "cifar10") -> pd.DataFrame:
    """The ladder's runs on `dataset` (None: every dataset), one row each, with their arm."""
    d = df[(df.experiment == "L") & ((df.dataset == dataset) if dataset else True)]
    return d.assign(arm=[arm_name(r) for r in d.itertuples()], epochs=d.epochs.astype(int))


def table(lad: pd.DataFrame, alpha: int) -> pd.DataFrame:
    """summary.json's `epoch_ladder`: per run its arm, length, seed, final training accuracy (clean images),
    test accuracy, layer-1 non-zeros and locality (median l; and its excess over the shuffle null)."""
    dense = dense_counts(alpha, 10)
    return pd.DataFrame({
        "arm": lad.arm, "epochs": lad.epochs, "seed": lad.seed, "train_acc": lad.clean_train_acc,
        "augmented_train_acc": lad.final_train_acc, "test_acc": lad.test_acc, "nonzeros": lad.nnz1,
        "share1": lad.nnz1 / dense[0], "share2": lad.nnz2 / dense[1], "share3": lad.nnz3 / dense[2],
        "locality": lad.locality, "locality_excess": lad.ell_excess, "live_filters": lad.ell_live,
        "seconds": lad.seconds}).sort_values(["arm", "epochs", "seed"]).reset_index(drop=True)


def top(lad: pd.DataFrame) -> int:
    return int(lad.epochs.max())


def at_top(lad: pd.DataFrame, arm: str) -> pd.DataFrame:
    return lad[(lad.arm == arm) & (lad.epochs == top(lad))]


def regime(lad: pd.DataFrame, arms: tuple[str, ...] = ("SGD",)) -> tuple[bool, str]:
    """Each of `arms` fits its training data at the top rung (median clean training accuracy >= 95 %), on every
    dataset `lad` holds."""
    runs = {(d, arm): at_top(lad[lad.dataset == d], arm) for d in sorted(lad.dataset.unique()) for arm in arms}
    if not runs or not all(len(r) for r in runs.values()):
        return False, "the ladder's top rung lacks " + (", ".join(f"{d} {a}" for (d, a), r in runs.items() if not len(r))
                                                       or "every arm")
    med = {k: float(r.clean_train_acc.median()) for k, r in runs.items()}
    several = lad.dataset.nunique() > 1
    return all(m >= FIT for m in med.values()), (
        f"median training accuracy at the ladder's top rung ({top(lad)} epochs, un-augmented images): "
        + ", ".join(f"{d + ' ' if several else ''}{_shown(arm)} {100 * m:.1f} %" for (d, arm), m in med.items())
        + f" (threshold {100 * FIT:.0f} %)")


def _shown(arm: str) -> str:
    """An arm as the regime line names it: the S-FC arms with their model, the others as they are."""
    return arm if arm in TOP_ONLY + ARCHITECTURES else f"{arm} S-FC"


def gap_trend(lad: pd.DataFrame, arm: str, *, metric: str = "test_acc") -> Comparison:
    """Where `arm` − SGD is heading at the top of the ladder: the change of that gap between the two longest rungs,
    per doubling of the epochs, as a linear contrast of the four arm means with its Welch-Satterthwaite t test. (A
    line through every rung would average a gap that first opens, while a short run's huge matched lambda bites, and
    then closes.)"""
    hi, lo = sorted(lad.epochs.unique())[-2:][::-1] if lad.epochs.nunique() > 1 else (top(lad), top(lad))
    groups = {(a, e): lad[(lad.arm == a) & (lad.epochs == e)][metric].to_numpy(float)
              for a in ("SGD", arm) for e in (lo, hi)}
    doublings = math.log2(hi / lo) if hi != lo else float("nan")
    c = linear_contrast(groups, {(arm, hi): 1, ("SGD", hi): -1, (arm, lo): -1, ("SGD", lo): 1})
    return Comparison(c.diff / doublings, c.se / doublings, c.df, c.p, c.test)


def trend_reading(gap_before: float, gap_top: float, change: Comparison) -> str:
    """Closes, holds or widens: the gap's size at the top rung against the rung before, where the change is
    significant."""
    if not math.isfinite(change.p) or change.p >= ALPHA:
        return "holds (no significant change)"
    return "closes" if abs(gap_top) < abs(gap_before) else "widens"


def trends(lad: pd.DataFrame) -> pd.DataFrame:
    """Per arm against SGD: the gap at each rung (points, mean over seeds) and its change per doubling of the epochs
    between the two longest rungs, with a 95 % interval."""
    means = lad[lad.arm.isin(ARMS)].groupby(["arm", "epochs"]).test_acc.mean().unstack("arm")
    rows = []
    for arm in ARMS[1:]:
        if arm not in means:
            continue
        change = gap_trend(lad, arm)
        lo, hi = change.interval()
        gap = 100 * (means[arm] - means["SGD"])
        rows.append({"arm": arm, **{f"gap_{e}": v for e, v in gap.items()}, "change": 100 * change.diff,
                     "change_lo": 100 * lo, "change_hi": 100 * hi, "df": change.df, "p": change.p,
                     "reading": trend_reading(gap.iloc[-2] if len(gap) > 1 else gap.iloc[-1], gap.iloc[-1], change)})
    return pd.DataFrame(rows)


def headline(lad: pd.DataFrame, tr: pd.DataFrame, alpha: int) -> dict:
    """Glue values for the ladder's conclusion."""
    out = {"lad_top": top(lad), "lad_rungs": ", ".join(str(e) for e in sorted(lad.epochs.unique())),
           "lad_seeds": int(at_top(lad, "SGD").seed.nunique())}
    for arm, key in GLUE_KEYS.items():
        t = at_top(lad, arm)
        if len(t):
            out[f"lad_{key}_test"] = 100 * t.test_acc.mean()
            out[f"lad_{key}_train"] = 100 * t.clean_train_acc.mean()
            out[f"lad_{key}_aug_train"] = 100 * t.final_train_acc.mean()
    paper, plain = at_top(lad, "β-lasso (paper λ)"), at_top(lad, "plain SGD")
    if len(paper) and len(plain):
        c = welch(paper.test_acc, plain.test_acc)
        out["lad_paper_minus_plain"] = 100 * c.diff
        out["lad_paper_vs_plain"] = (f"Welch t = {c.t:.2f}, df = {c.df:.1f}, p = {c.p:.2g}: "
                                     + ("a significant difference" if c.p < ALPHA else "not significant"))
        out["lad_a2_reading"] = (
            "so with that λ β-lasso's ℓ1 step and threshold add nothing measurable to the optimizer they wrap; "
            "against SGD with momentum and weight decay its difference is plain SGD's" if c.p >= ALPHA else
            f"so β-lasso's ℓ1 step and threshold add {100 * c.diff:+.2f} points beyond the optimizer they wrap")
    matched = at_top(lad, "β-lasso (matched λ)")
    if len(matched) and len(plain):
        c = welch(matched.test_acc, plain.test_acc)
        out["lad_matched_minus_plain"] = 100 * c.diff
        out["lad_matched_vs_plain"] = f"Welch t = {c.t:.2f}, df = {c.df:.1f}, p = {c.p:.2g}"
        out["lad_n2_reading"] = (
            "N2's gain over SGD with momentum and weight decay is mostly the optimizer: against plain SGD, the "
            "optimizer β-lasso wraps, the matched β-lasso's gain is not significant" if c.p >= ALPHA else
            "the matched β-lasso also beats plain SGD, the optimizer it wraps, so its ℓ1 step and threshold add to it")
    excess = lad[lad.arm == "β-lasso (matched λ)"].groupby("epochs")
    out["lad_excess_by_rung"] = "; ".join(f"{e} epochs {g.ell_excess.mean():.3f} (layer 1 {100 * g.nnz1.mean() / dense_counts(alpha, 10)[0]:.2f} % non-zero)"
                                          for e, g in excess) if len(matched) else "not run"
    for r in tr.itertuples():
        key = GLUE_KEYS[r.arm]
        out[f"lad_{key}_slope"], out[f"lad_{key}_slope_lo"], out[f"lad_{key}_slope_hi"] = r.change, r.change_lo, r.change_hi
        out[f"lad_{key}_reading"] = r.reading
        out[f"lad_{key}_gap_top"] = getattr(r, f"gap_{top(lad)}")
    return out
