
import numpy as np
import pandas as pd
import pytest
import torch

from weightsharing.papers.chang_arbnets import claims as C, models as M, runs as R

MNIST = (784, 200, 200, 10)
CIFAR_CPU = (3072,) + (512,) * 5 + (10,)


@pytest.mark.parametrize("sizes,hash_,table,params", [
    (MNIST, M.Hash("uniform"), 997, 4_221), (MNIST, M.Hash("dense"), 997, 200_030),
    (CIFAR_CPU, M.Hash("uniform"), 10_007, 67_752), (CIFAR_CPU, M.Hash("dense"), 10_007, 2_634_270)])
def test_parameter_counts_match_the_spec(sizes, hash_, table, params):
    net = M.ArbNet(sizes=sizes, hash=hash_, table_size=table, sparsity=0.1, seed=0)
    assert sum(p.numel() for p in net.parameters()) == params
    assert net(torch.randn(4, sizes[0])).shape == (4, 10)


def test_the_seed_pairs_settings_on_the_same_zero_mask():
    a = M.ArbNet(sizes=MNIST, hash=M.Hash("uniform"), table_size=997, sparsity=0.5, seed=3)
    b = M.ArbNet(sizes=MNIST, hash=M.Hash("dirichlet", alpha=1.0), table_size=997, sparsity=0.5, seed=3)
    for ia, ib in zip(a.indices, b.indices):
        assert torch.equal(ia == 997, ib == 997)


@pytest.mark.parametrize("alpha,lo,hi", [(1e-3, 0.0, 2.0), (1e-1, 4.6, 5.4), (100, 6.85, 6.905)])
def test_entropy_landscape_of_the_spec(alpha, lo, hi):
    net = M.ArbNet(sizes=MNIST, hash=M.Hash("dirichlet", alpha=alpha), table_size=997, sparsity=0.1, seed=0)
    assert lo < net.hash_stats()[0]["entropy"] < hi


def test_network_entropy_weights_layers_by_their_nonzero_counts():
    layers = [{"entropy": 6.0, "nonzero": 300}, {"entropy": 3.0, "nonzero": 100}]
    assert M.network_entropy(layers) == pytest.approx(5.25)


def test_arbnet_identities_hold():
    assert max(M.arbnet_checks().values()) < 1e-5


def test_training_stops_after_three_decays_and_logs_train_accuracy():
    grid = R.Grid(width=16, depth=1, train=256, test=64, table_size=97, sparsities=(0.5,), alphas=(), radii=(),
                  seeds=1, epochs=40)
    budget = R.Budget(mnist=grid, cifar10=grid, e4_sparsities=(), e4b=(), lr=0.1)
    x = torch.randn(256, 20)
    y = torch.full((256,), 3)  # one class: training accuracy saturates at 1, then plateaus
    out = R.train_run(R.Run("E2-E3", "mnist", M.Hash("uniform"), 0.5, 97, 0, grid), (x, y, x[:64], y[:64]), budget)
    assert len(out["decayed_after_epochs"]) == 3 and out["epochs_run"] == out["decayed_after_epochs"][-1] < 40
    assert out["lr"][-1] == pytest.approx(1e-3) and len(out["train_acc"]) == out["epochs_run"]
    assert out["train_acc"][-1] == 1.0 and out["test_acc"] == 1.0
    assert 0 <= out["test_acc"] <= 1 and len(out["layers"]) == 2


def fake(acc_by_alpha: dict[float, dict[float, float]], drop: dict[float, float], seeds=4, noise=0.002, late=0.001):
    rng = np.random.default_rng(0)
    rows = []
    for dataset in ("mnist", "cifar10"):
        for s, accs in acc_by_alpha.items():
            for seed in range(seeds):
                e = noise * rng.standard_normal()
                for a, v in accs.items():
                    rows.append(dict(experiment="E2-E3", dataset=dataset, hash="dirichlet", alpha=a, radius=None,
                                     sparsity=s, seed=seed, test_acc=v + e, entropy=np.log(a + 2), layers=[],
                                     label=f"Dirichlet α = {a:g}", late_change=late, lr_decays=0, finished_at="2026-01-01"))
                base = max(accs.values())
                for kind, r, v in (("neighborhood", 0, base + drop[s]), ("neighborhood", 10, base + drop[s] / 2),
                                   ("uniform", None, base), ("permuted_modulus", None, base)):
                    rows.append(dict(experiment="E2-E3", dataset=dataset, hash=kind, alpha=None, radius=r, sparsity=s,
                                     seed=seed, test_acc=v + noise * rng.standard_normal(), entropy=6.9, layers=[],
                                     label=f"{kind} {r}", late_change=late, lr_decays=0, finished_at="2026-01-01"))
    return pd.DataFrame(rows)


def verdicts(df):
    return {c["id"]: c["verdict"] for c in C.claims(df, {"check": 0.0})}


def test_claims_hold_on_data_shaped_like_the_paper():
    df = fake({0.1: {0.01: 0.5, 1: 0.8, 100: 0.9}, 0.9: {0.01: 0.85, 1: 0.88, 100: 0.9}}, {0.1: 0.03, 0.9: 0.005})
    v = verdicts(df)
    assert v["C1"] == v["C2"] == v["C4"] == v["C5"] == v["C6"] == "holds"


def test_claims_are_contradicted_by_reversed_data_from_converged_runs():
    df = fake({0.1: {0.01: 0.9, 1: 0.8, 100: 0.5}, 0.9: {0.01: 0.9, 1: 0.88, 100: 0.85}}, {0.1: -0.03, 0.9: -0.03})
    v = verdicts(df)
    assert v["C1"] == "contradicted" and v["C4"] == "contradicted"


def test_reversed_data_from_runs_still_learning_are_out_of_regime():
    df = fake({0.1: {0.01: 0.9, 1: 0.8, 100: 0.5}, 0.9: {0.01: 0.9, 1: 0.88, 100: 0.85}}, {0.1: -0.03, 0.9: -0.03},
              late=0.05)  # training accuracy still moving 5 points over the last tenth of training
    v = verdicts(df)
    assert v["C1"] == "out of regime" and v["C4"] == "out of regime"


def test_c3_has_a_branch_for_the_reversed_pattern():
    # more concave when sparse than when dense: the opposite of the paper's pattern
    rows = []
    for s, curve in ((0.1, lambda h: 0.5 + 0.1 * h), (0.9, lambda h: 0.5 + 0.4 * h - 0.05 * h ** 2)):
        for seed in range(4):
            for a in (0.01, 0.1, 1, 10, 100):
                h = np.log(a + 2)
                rows.append(dict(experiment="E2-E3", dataset="mnist", hash="dirichlet", alpha=a, radius=None,
                                 sparsity=s, seed=seed, test_acc=curve(h) + 0.001 * (seed - 1.5), entropy=h,
                                 layers=[], label=f"Dirichlet α = {a:g}", late_change=0.0, lr_decays=0,
                                 finished_at="2026"))
    assert verdicts(pd.DataFrame(rows))["C3"] == "contradicted"


@pytest.mark.parametrize("budget", ["cpu", "paper"])
def test_every_setting_has_enough_seeds(budget):
    """The floors of issue 9: 5 seeds per MNIST setting, 3 per CIFAR-10 setting."""
    b = R.BUDGETS[budget]
    assert b.mnist.seeds >= 5 and b.cifar10.seeds >= 3


def test_the_regime_check_reads_every_run_that_trained_not_the_median():
    """An arm whose median run is stuck and flat still fails when one of its trained runs is rising at the end."""
    from weightsharing.papers.chang_arbnets.claims import converged

    arm = pd.DataFrame({"dataset": "mnist", "label": "Dirichlet α = 0.001", "sparsity": 0.1,
                        "stuck": [True, True, True, False], "late_change": [0.001, 0.001, 0.002, 0.057],
                        "lr_decays": 0})
    ok, why = converged(arm)
    assert not ok and "5.70 points" in why and "0 of 4 runs" in why
    assert converged(arm.assign(late_change=0.002))[0]
