"""Effects of balance and determinism, stuck runs, the paper's statements beside ours, duplicated neurons, claims."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ...layers import hash_index, hash_stats
from ...metrics import Comparison, failure_rates, one_sample, welch


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


def acc_by_seed(df: pd.DataFrame, **where) -> pd.Series:
    sub = df
    for k, v in where.items():
        sub = sub[sub[k] == v]
    return sub.set_index("seed").test_acc.sort_index()


def paired_by_seed(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Accuracies of two settings on the seeds both have (a seed fixes the mask, so these are paired runs)."""
    common = a.index.intersection(b.index)
    return a[common].to_numpy(), b[common].to_numpy()


def radius_effect(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per sparsity: modulus (r = 0) against uniform (r -> inf) and permuted modulus, paired by seed."""
    d = main_runs(df, dataset)
    rows = []
    for s, g in d.groupby("sparsity"):
        mod, uni, perm = (acc_by_seed(g, hash="neighborhood", radius=0), acc_by_seed(g, hash="uniform"),
                          acc_by_seed(g, hash="permuted_modulus"))
        drop = np.subtract(*paired_by_seed(mod, uni))
        if not len(drop):
            continue
        rows.append({"dataset": dataset, "sparsity": s, "modulus": mod.mean(), "uniform": uni.mean(),
                     "permuted_modulus": perm.mean() if len(perm) else None, "radius_drop": drop.mean(),
                     "radius_drop_se": drop.std(ddof=1) / math.sqrt(len(drop)) if len(drop) > 1 else float("nan"),
                     "radius_drop_df": len(drop) - 1.0, "radius_drop_p": one_sample(drop).p,
                     "perm_minus_modulus": np.subtract(*paired_by_seed(perm, mod)).mean() if len(perm) else None,
                     "perm_minus_uniform": np.subtract(*paired_by_seed(perm, uni)).mean() if len(perm) else None})
    return pd.DataFrame(rows)


def confirmatory_table(df: pd.DataFrame) -> pd.DataFrame:
    """The claims' arms, exploratory beside confirmatory seeds: mean test accuracy, runs, stuck runs and the largest
    late change of training accuracy among the runs that trained."""
    main = df[df.experiment == "E2-E3"]
    conf = main[main.confirmatory]
    if not len(conf):
        return pd.DataFrame()
    arms = set(zip(conf.dataset, conf.label, conf.sparsity))
    main = with_stuck(main)
    main = main[[a in arms for a in zip(main.dataset, main.label, main.sparsity)]]
    rows = []
    for (dataset, label, s, phase), g in main.groupby(["dataset", "label", "sparsity", "confirmatory"]):
        trained = g[~g.stuck]
        rows.append({"dataset": dataset, "setting": label, "sparsity": s,
                     "phase": "confirmatory" if phase else "exploratory",
                     "epochs cap": int(g.epochs_cap.iloc[0]), "runs": len(g), "stuck": int(g.stuck.sum()),
                     "test accuracy": g.test_acc.mean(),
                     "late change, worst trained run (points)": 100 * trained.late_change.max() if len(trained) else None})
    return pd.DataFrame(rows)


def stuck_threshold(df: pd.DataFrame, dataset: str) -> float:
    """Half-way between chance and the best setting's mean accuracy: the stuck runs sit near chance, the rest near
    the best (on MNIST ~0.2 against ~0.8 at the same α), so any cut in the gap classifies them the same."""
    best = main_runs(df, dataset).groupby("label").test_acc.mean().max()
    return (0.1 + best) / 2  # both datasets have 10 classes


def with_stuck(df: pd.DataFrame) -> pd.DataFrame:
    """`stuck`: a main-grid run below its dataset's `stuck_threshold` (near chance: it never left its first plateau)."""
    cut = {d: stuck_threshold(df, d) for d in df.dataset.unique()}
    return df.assign(stuck=[acc < cut[d] for d, acc in zip(df.dataset, df.test_acc)])


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


def as_comparison(row) -> Comparison:
    """alpha_effect's or radius_effect's row as the comparison it was computed from."""
    if hasattr(row, "delta_p"):
        return Comparison(row.delta, row.delta_se, row.delta_df, row.delta_p)
    return Comparison(row.radius_drop, row.radius_drop_se, row.radius_drop_df, row.radius_drop_p, "one-sample")


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
