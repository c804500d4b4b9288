"""Tables and the claims R1-R9 of the Rao et al. chapter, from the stage records of `runs.run_all`."""
from __future__ import annotations


import numpy as np
import pandas as pd

from ...metrics import one_sample
from . import converged as start

# Paper text: final validation accuracy (%) of the code's leaky split, CNN -> FCN
PAPER_VAL = {"1": (95.8, 94.0), "2": (94.0, 92.6), "3": (83.85, 85.25)}
SERIES = ("euclid_l1_r1", "euclid_l1_r4", "cos_l1_r1", "cos_l1_r4")
AUTHOR_COLUMNS = dict(zip(SERIES, ("dist_1", "dist_4", "cos_1", "cos_4")))  # the same series in the authors' CSVs


PAPER_EXPERIMENTS = ("0", "1", "2", "3", "L")  # the paper's protocol at `cpu` scale (and the leak ablation)
FITTED = ("F0", "F1", "F2", "F3")              # the fitted start: Exp 0-3's analogues, from CNNs that fit their images
SNAPSHOT_OF = {"3": "2", "F3": "F2"}           # a short start: the FCN begins from this experiment's CNN snapshot


def stages(records: dict, names=PAPER_EXPERIMENTS) -> dict[str, tuple[dict, dict]]:
    """Experiment -> (the CNN state the FCN started from, the final FCN), Exp 3's (F3's) CNN being Exp 2's (F2's)
    snapshot and a variant's ("F1 fixed") its base experiment's CNN."""
    out = {}
    for name in names:
        fcn = records.get(f"{name}/FCN")
        if fcn is None:
            continue
        base = name.split()[0]
        cnn = records[f"{SNAPSHOT_OF[name]}/CNN"]["snapshot_eval"] if name in SNAPSHOT_OF else records[f"{base}/CNN"]
        out[name] = (cnn, fcn)
    return out


def accuracy_table(by_seed: dict[int, dict], n_test: int) -> pd.DataFrame:
    """Per experiment and network: accuracies as mean over seeds (std beside), the paper's validation value."""
    rows = []
    for seed, records in by_seed.items():
        for name, (cnn, fcn) in stages(records).items():
            control = records.get(f"{name}/CNN continued")
            for net, rec in (("CNN", cnn), ("FCN", fcn)) + ((("CNN continued", control),) if control else ()):
                epochs = records["2/CNN"]["key"]["snapshot_at"] if (name, net) == ("3", "CNN") else \
                    records[f"{name}/{net}"]["stopped_at"]
                rows.append({"experiment": name, "network": net, "seed": seed, "epochs": epochs,
                             "val_acc": 100 * rec["val_acc"], "test_acc": 100 * rec["test_acc"],
                             "clean_train_acc": 100 * rec["clean_train_acc"]})
    df = pd.DataFrame(rows)
    out = df.groupby(["experiment", "network"], sort=False).agg(
        epochs=("epochs", "mean"), val_acc=("val_acc", "mean"), test_acc=("test_acc", "mean"),
        test_std=("test_acc", "std"), clean_train_acc=("clean_train_acc", "mean"), ours_std=("val_acc", "std"),
        n_seeds=("seed", "nunique")).reset_index()
    out["paper"] = [PAPER_VAL.get(e, (None, None))[n == "FCN"] if n != "CNN continued" else None
                    for e, n in zip(out.experiment, out.network)]
    out["ours"] = out.val_acc  # the summary's common column: ours beside `paper`
    return out


def fitted_table(by_seed: dict[int, dict]) -> pd.DataFrame:
    """The fitted start per experiment, means over seeds: how much of its training images the CNN fits, the test
    accuracy of the CNN, its FCN and the CNN trained on as long, and FCN − CNN beside the paper's (their leaky
    validation accuracies; a difference within one experiment, so the leak largely cancels)."""
    rows = []
    for seed, records in by_seed.items():
        for name, (cnn, fcn) in stages(records, FITTED).items():
            control = records.get(f"{name}/CNN continued")
            rows.append({"experiment": name, "sigma": fcn["key"]["sigma"], "seed": seed,
                         "cnn_epochs": fcn["key"]["from_epoch"] or fcn["key"]["from"]["cnn"]["epochs"],
                         "cnn_fit": 100 * cnn["clean_train_acc"], "cnn": 100 * cnn["test_acc"],
                         "fcn": 100 * fcn["test_acc"], "control": 100 * control["test_acc"] if control else np.nan})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).assign(fcn_minus_cnn=lambda d: d.fcn - d.cnn, fcn_minus_control=lambda d: d.fcn - d.control)
    out = df.groupby(["experiment", "sigma", "cnn_epochs"], sort=False).agg(
        seeds=("seed", "nunique"), cnn_fit=("cnn_fit", "mean"), cnn=("cnn", "mean"), fcn=("fcn", "mean"),
        control=("control", "mean"), fcn_minus_cnn=("fcn_minus_cnn", "mean"),
        fcn_minus_control=("fcn_minus_control", "mean")).reset_index()
    paper = {f"F{e}": v[1] - v[0] for e, v in PAPER_VAL.items()}
    out["paper_fcn_minus_cnn"] = out.experiment.map(paper)
    return out


def distance_frame(records: dict, names=PAPER_EXPERIMENTS) -> pd.DataFrame:
    rows = []
    for name, (_, fcn) in stages(records, names).items():
        h = fcn["history"]
        rows.append({"experiment": name, "epoch": 0, **{s: 0.0 for s in h if s.startswith(("euclid", "cos"))}})
        for i, epoch in enumerate(h["epoch"]):
            rows.append({"experiment": name, "epoch": epoch, **{s: h[s][i] for s in h if s.startswith(("euclid", "cos"))}})
    return pd.DataFrame(rows)


def distance_steps(records: dict, names=PAPER_EXPERIMENTS) -> pd.DataFrame:
    """`distance_frame` with each row's FCN step count (epochs x the stage's steps per epoch)."""
    d = distance_frame(records, names)
    if not len(d):
        return d.assign(steps=pd.Series(dtype=int))
    return d.assign(steps=d.experiment.map(lambda e: start.steps_per_epoch(records[f"{e}/FCN"])) * d.epoch)


def series_of(dist: pd.DataFrame, exp: str, col: str) -> pd.Series:
    return dist[dist.experiment == exp].set_index("epoch")[col]


def second_half_share(s: pd.Series) -> float:
    """Share of the final value added in the second half of the FCN stage."""
    last = s.index.max()
    half = s[s.index <= last / 2].iloc[-1]
    return (s.iloc[-1] - half) / s.iloc[-1] if s.iloc[-1] else float("nan")


def leak_table(records: dict) -> pd.DataFrame:
    rows = []
    for stage in ("CNN", "FCN"):
        rec = records.get(f"L/{stage}")
        if rec:
            rows.append({"stage": stage, **rec["leak_counts"], "val_acc": 100 * rec["val_acc"], "test_acc": 100 * rec["test_acc"]})
    return pd.DataFrame(rows)


def robustness_table(by_seed: dict[int, dict], n_test: int, names=FITTED) -> pd.DataFrame:
    """Per experiment and test-set perturbation: CNN, FCN and (where trained) CNN-continued accuracy, means over
    seeds; FCN − CNN and FCN − CNN continued with their one-sample t tests over seeds."""
    rows = []
    exps = [e for e in names if any(e in stages(r, names) for r in by_seed.values())]
    for exp in exps:
        for kind in ("test", "noise_0.15", "translate_8px"):
            got = [(st[exp], by_seed[s].get(f"{exp}/CNN continued")) for s, st in
                   ((s, stages(r, names)) for s, r in by_seed.items()) if exp in st]
            cnn = [c[f"{kind}_acc"] for (c, _), _ in got]
            fcn = [f[f"{kind}_acc"] for (_, f), _ in got]
            c = one_sample(np.subtract(fcn, cnn))
            row = {"experiment": exp, "images": "clean" if kind == "test" else kind, "cnn_acc": 100 * np.mean(cnn),
                   "fcn_acc": 100 * np.mean(fcn), "fcn_minus_cnn": 100 * c.diff, "diff_se": 100 * c.se, "df": c.df,
                   "p": c.p, "n_seeds": len(got)}
            if all(ctl is not None for _, ctl in got):
                ctl = [k[f"{kind}_acc"] for _, k in got]
                cc = one_sample(np.subtract(fcn, ctl))
                row.update(control_acc=100 * np.mean(ctl), fcn_minus_control=100 * cc.diff, control_p=cc.p)
            rows.append(row)
    return pd.DataFrame(rows)


def authors_robustness(rob: pd.DataFrame, exp: str = "F1") -> pd.DataFrame:
    """R8 beside the authors' logged Exp 1 robustness (their last CNN and FCN rows of Results/cifar_30aug.csv, on
    their leaky validation images, under their own translation and noise tests): FCN − CNN, theirs and ours (`exp`,
    the fitted start at Exp 1's σ = 0.3)."""
    ours = rob[rob.experiment == exp].set_index("images")
    rows = []
    for theirs, mine in (("translate", "translate_8px"), ("noise", "noise_0.15")):
        a = start.AUTHORS_ROBUSTNESS[theirs]
        row = {"perturbation": theirs, "authors_cnn": 100 * a["CNN"], "authors_fcn": 100 * a["FCN"],
               "authors_fcn_minus_cnn": 100 * (a["FCN"] - a["CNN"])}
        if mine in ours.index:
            o = ours.loc[mine]
            row.update(ours_cnn=o.cnn_acc, ours_fcn=o.fcn_acc, ours_fcn_minus_cnn=o.fcn_minus_cnn, ours_p=o.p)
        rows.append(row)
    return pd.DataFrame(rows)


def distance_table(by_seed: dict[int, dict]) -> pd.DataFrame:
    """Our distances (mean over the seeds that got there) at the FCN step counts of the authors' first two logged
    epochs, beside theirs at the same steps (Exp 0 and 1), and at the end of each FCN stage. Steps, not epochs: an
    epoch of ours is 40 steps at `cpu`, one of theirs 375."""
    dist = pd.concat([distance_steps(r).assign(seed=s) for s, r in by_seed.items()])
    rows = []
    for exp, g in dist.groupby("experiment", sort=False):
        for mark in (start.AUTHORS_STEPS_PER_EPOCH, 2 * start.AUTHORS_STEPS_PER_EPOCH) if exp in ("0", "1") else ():
            reached = [ser for _, ser in g.groupby("seed") if ser.steps.max() >= mark]
            if not reached:
                continue
            ours = {c: np.mean([np.interp(mark, ser.steps, ser[c]) for ser in reached]) for c in SERIES}
            rows.append({"experiment": exp, "at": f"{mark} steps", "steps": mark, "seeds": len(reached),
                         **{f"ours_{c}": v for c, v in ours.items()},
                         **{f"paper_{c}": start.authors_at([mark], exp, AUTHOR_COLUMNS[c])[0] for c in SERIES}})
        last = g.groupby("seed").epoch.max().min()  # the last epoch every seed reached
        end = g[g.epoch == last]
        rows.append({"experiment": exp, "at": f"end (epoch {last})", "steps": int(end.steps.mean()),
                     "seeds": end.seed.nunique(), "fcn_epoch": int(last), **{f"ours_{c}": end[c].mean() for c in SERIES}})
    return pd.DataFrame(rows)


# The rung each network stands on (the synthesis page's ladder); the FCN starts from the CNN's weights, then is freed.
LADDER = {"CNN": "shared and local", "FCN": "neither"}


def ladder_rows(tables: dict) -> list[dict]:
    """This chapter's rows of the book's ladder of inductive bias (`synthesis.RUNGS`), read from its summary tables:
    {"rung", "setting", "model", "accuracy" (%), "heading" (the section it comes from)}."""
    return [{"rung": LADDER[r["network"]], "setting": f"CIFAR-10, Exp {r['experiment']}", "model": r["network"],
             "accuracy": r["test_acc"], "heading": "Final accuracies beside the paper's"}
            for r in tables.get("accuracies", []) if r["network"] in LADDER and r["experiment"] in ("1", "2")
            and pd.notna(r["test_acc"])]
