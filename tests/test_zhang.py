
import numpy as np
import pytest
import pandas as pd
import torch

from weightsharing.metrics import fgsm
from weightsharing.papers.zhang_locality import analysis as A, models as M, runs as R

SPEC_IMAGE_PARAMS = M.SPEC_IMAGE_PARAMS
SPEC_LATENTS = {("mnist", "WeightNet"): [(6, 13, 13), (16, 5, 5)], ("mnist", "LocalNet"): [(6, 12, 12), (16, 4, 4)],
                ("cifar10", "WeightNet"): [(6, 15, 15), (16, 5, 5)], ("cifar10", "LocalNet"): [(6, 14, 14), (16, 5, 5)],
                ("mnist", "ConvNet"): [(6, 12, 12), (16, 4, 4)], ("cifar10", "ConvNet"): [(6, 14, 14), (16, 5, 5)]}


@pytest.mark.parametrize("dataset,model", SPEC_IMAGE_PARAMS)
def test_image_parameter_counts_match_the_spec(dataset, model):
    net = M.build_image_model(model, dataset)
    assert sum(p.numel() for p in net.parameters()) == SPEC_IMAGE_PARAMS[dataset, model]
    channels, size = M.DATASETS[dataset]
    assert net(torch.zeros(3, channels, size, size)).shape == (3, 10)


@pytest.mark.parametrize("dataset,model", SPEC_LATENTS)
def test_latent_shapes_match_the_spec(dataset, model):
    net = M.build_image_model(model, dataset)
    channels, size = M.DATASETS[dataset]
    shapes, x = [], torch.zeros(1, channels, size, size)
    for layer in net:
        x = layer(x)
        if isinstance(layer, (torch.nn.MaxPool2d,)) or (model != "ConvNet" and isinstance(layer, torch.nn.ReLU)
                                                       and x.dim() == 4):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == SPEC_LATENTS[dataset, model]


@pytest.mark.parametrize("kind,params", M.SPEC_TREE_PARAMS.items())
def test_tree_parameter_counts(kind, params):
    assert M.TreeNet(kind=kind, replicas=2).params_per_replica() == params


def test_oracle_net_with_theta_is_the_target_function():
    theta, _, _, x = M.tree_data(64, 0)
    net = M.TreeNet(kind="OracleNet", replicas=1)
    with torch.no_grad():
        for k in range(6):
            net.weights[k].copy_(theta[k][None])
    torch.testing.assert_close(net(x[None]), M.tree_function(theta[None], x[None]))


def test_localnet_and_weightnet_can_represent_the_target():
    theta, _, _, x = M.tree_data(128, 1)
    local, weight = M.TreeNet(kind="LocalNet", replicas=1), M.TreeNet(kind="WeightNet", replicas=1)
    with torch.no_grad():
        for k in range(6):
            local.weights[k].copy_(theta[k].expand_as(local.weights[k][0])[None])
            w = torch.zeros_like(weight.weights[k])
            w[0, :2] = theta[k]  # all mass on rotation 0: output j reads z_{2j}, z_{2j+1}
            weight.weights[k].copy_(w)
    target = M.tree_function(theta[None], x[None])
    torch.testing.assert_close(local(x[None]), target)
    torch.testing.assert_close(weight(x[None]), target)


def test_weightnet_layer_is_the_circular_stride_two_correlation():
    net = M.TreeNet(kind="WeightNet", replicas=1)
    w, z = net.weights[2][0], torch.randn(16)
    m = 16
    expected = torch.stack([sum(w[i] * z[(i + 2 * j) % m] for i in range(m)) for j in range(m // 2)])
    torch.testing.assert_close(net.layer_matrix(2)[0] @ z, expected)


def test_stacked_replicas_train_exactly_like_separate_models():
    settings = (M.TreeSetting(0.0), M.TreeSetting(0.3))
    stacked = R.train_tree("LocalNet", 64, 2, 3, settings)
    alone = R.train_tree("LocalNet", 64, 2, 3, settings[:1])
    both = {(r["trial"], r["noise"]): r["test_mse"] for r in stacked["rows"]}
    for r in alone["rows"]:
        assert both[r["trial"], 0.0] == pytest.approx(r["test_mse"], rel=1e-5)


def test_iid_noise_differs_per_example_and_the_codes_offset_does_not():
    settings = (M.TreeSetting(0.3), M.TreeSetting(0.3, constant=True))
    theta, x, xi, _ = M.tree_data(64, 0)
    assert xi.std() > 0.5  # per-example draws
    clean = M.tree_function(theta[None], x[None])[0]
    const = clean + 0.3 * xi[:1].expand_as(xi)
    assert torch.allclose(const - clean, torch.full_like(clean, 0.3 * xi[0].item()))
    out = R.train_tree("OracleNet", 64, 1, 1, settings)
    assert {(r["noise"], r["constant"]) for r in out["rows"]} == {(0.3, False), (0.3, True)}


def test_weightnet_localisation_metric():
    w = np.zeros(64)
    w[10], w[11] = -0.6, -0.5
    m = A.weightnet_localisation(w, (0.6, 0.5))
    assert m["concentration"] == pytest.approx(1.0) and m["pair_error"] == pytest.approx(0.0) and m["rotation"] == 5
    theta = np.full((6, 2), 0.8)
    theta[0] = (0.6, 0.5)
    loc = A.localnet_recovery(np.tile([0.6, -0.5], 32), theta)
    assert loc["rel_error"] == pytest.approx(0.0) and loc["cv"] == pytest.approx(0.0) and loc["influential"] == 32


def test_localnet_recovery_ignores_positions_the_output_cannot_see():
    theta = np.full((6, 2), 0.8)
    theta[0] = (0.6, 0.5)
    theta[2] = (1.0, 0.01)  # level 3's right child barely reaches the output: positions j with bit 1 set
    gain = A.path_gain(theta)
    blind = ((np.arange(32) >> 1) & 1).astype(bool)
    assert gain[blind].max() < 0.1 * gain.max() <= gain[~blind].min()
    w = np.tile([0.6, 0.5], (32, 1))
    w[blind] *= 0.3  # the loss does not pin these down: whatever training left
    loc = A.localnet_recovery(w.flatten(), theta)
    assert loc["rel_error"] == pytest.approx(0.0) and loc["influential"] == 16
    assert loc["rel_error_all"] == pytest.approx(0.35)


def test_fgsm_does_not_depend_on_the_evaluation_batch_and_stays_in_range():
    torch.manual_seed(0)
    net = M.build_image_model("ConvNet", "mnist")
    x, y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (64,))
    a = fgsm(net, x, y, eps=0.1, batch_size=64)
    b = fgsm(net, x, y, eps=0.1, batch_size=7)
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    assert set(a[2].unique().tolist()) <= {-1, 0, 1}


def test_image_runs_share_subsets_across_models_and_budgets_resolve():
    runs = R.image_runs(R.BUDGETS["cpu"])
    assert {r.model for r in runs} == set(M.IMAGE_MODELS)
    assert sum(r.samples for r in runs) == 4  # WeightNet and LocalNet, full data, both datasets
    full_fgsm = [r for r in runs if r.per_class == M.FULL and r.fgsm and r.trial < R.CONFIRM_FIRST]
    per_model = dict(R.BUDGETS["cpu"].fgsm_trials)[M.FULL]
    assert len(full_fgsm) == 4 * 2 * per_model and len({canonical_key(r) for r in runs}) == len(runs)


def test_confirmatory_units_draw_fresh_trials_and_leave_exploratory_keys_as_they_were():
    """Confirmatory tree units name their first trial (exploratory keys keep no such field, so stored units still
    match); their trials are new draws, identical to what the same trial gives when trained in another stack."""
    b = R.BUDGETS["cpu"]
    units = R.tree_units(b)
    explore = [u for u in units if "first_trial" not in u]
    confirm = [u for u in units if "first_trial" in u]
    assert len(explore) == len(confirm) == len(b.tree_sizes) * len(M.TREE_MODELS)
    assert all(u["first_trial"] >= max(b.tree_trials) for u in confirm)
    assert {(u["model"], u["n_train"], u["trials"]) for u in confirm} >= set(b.tree_confirm_more)
    images = [r for r in R.image_runs(b) if r.trial >= R.CONFIRM_FIRST]
    assert {(r.dataset, r.model) for r in images if r.per_class == M.FULL} == {
        (d, m) for d in M.DATASETS for m in ("WeightNet", "LocalNet")}
    assert all(r.fgsm == (r.per_class in dict(b.fgsm_trials)) for r in images)
    settings = (M.TreeSetting(0.0),)
    alone = R.train_tree("LocalNet", 16, 1, 2, settings, first_trial=11)
    stacked = R.train_tree("LocalNet", 16, 2, 2, settings, first_trial=10)
    row = next(r for r in stacked["rows"] if r["trial"] == 11)
    assert alone["rows"][0]["trial"] == 11 and alone["rows"][0]["test_mse"] == pytest.approx(row["test_mse"], rel=1e-5)
    assert alone["layer1"]["11"] == pytest.approx(stacked["layer1"]["11"], rel=1e-5)


@pytest.mark.parametrize("budget", ["cpu", "paper"])
def test_every_verdict_rests_on_enough_trials(budget):
    """The floors of issue 9: >= 5 trials at every tree size (never fewer than the paper's), >= 3 per image row,
    FGSM rows and the text protocol included."""
    b = R.BUDGETS[budget]
    assert all(t >= max(5, M.TREE_TRIALS[n]) for n, t in zip(b.tree_sizes, b.tree_trials))
    assert all(t >= 3 for _, trials in b.image_trials for t in trials)
    assert all(t >= 3 for _, t in b.fgsm_trials) and b.text_protocol_trials >= 3
    seeds = {M.hash_seed("mnist", 100, 0), M.hash_seed("mnist", 100, 1), M.hash_seed("cifar10", 100, 0)}
    assert len(seeds) == 3
    # the stream that trained the stored units, pinned: Python's own hash() of a str would change per process
    assert M.hash_seed("mnist", 100, 0) == 1846147653


def canonical_key(run):
    from weightsharing.store import canonical
    return canonical(run.key())


def test_table1_regenerates_the_papers_layer_counts():
    t1 = A.table1()
    assert t1.same.all() and list(t1["ours total"]) == [M.SPEC_TREE_PARAMS[m] for m in M.TREE_MODELS]


@pytest.mark.parametrize("kind", M.TREE_MODELS)
def test_a_trial_does_not_change_when_more_trials_share_its_stack(kind):
    # Each trial's init and batch order come from its own (model, size, trial) key. The stacked einsum may block the
    # replica axis differently for 2 and 3 replicas, so equality is to float32 rounding, not bit for bit.
    settings = (M.TreeSetting(0.0), M.TreeSetting(0.3))
    fewer, more = R.train_tree(kind, 64, 2, 3, settings), R.train_tree(kind, 64, 3, 3, settings)
    shared = {(r["trial"], r["noise"]): r for r in more["rows"]}
    for r in fewer["rows"]:
        other = shared[r["trial"], r["noise"]]
        assert other["test_mse"] == pytest.approx(r["test_mse"], rel=1e-6, abs=1e-9)
        assert other["train_mse"] == pytest.approx(r["train_mse"], rel=1e-6, abs=1e-9)
    for t in ("0", "1"):
        np.testing.assert_allclose(more["layer1"][t], fewer["layer1"][t], rtol=1e-6, atol=1e-9)


def test_the_tree_regime_check_is_scoped_to_each_claims_models_and_cells():
    """WeightNet does not fit at the largest n: Z2's check (WeightNet there) fails while Z3's (ε = 0.3, n ≤ 1024)
    passes, in one chapter's data. Fit is relative to the signal's variance: the same absolute misfit passes on a
    trial whose f varies 100x more."""
    from weightsharing.papers.zhang_locality.claims import tree_regime

    rows = []
    for model in ("LocalNet", "OracleNet", "WeightNet", "FCNet"):
        for n in (512, 1024, 4096):
            for noise in (0.0, 0.3):
                for trial in range(3):
                    misfit = 0.05 if (model, n) == ("WeightNet", 4096) else 0.0
                    rows.append(dict(model=model, n_train=n, noise=noise, trial=trial, constant=False,
                                     train_mse=noise ** 2 + 1e-4 + misfit, test_mse=0.01, test_nmse=0.05))
    tree = pd.DataFrame(rows)  # Var f = 0.2: the misfit 0.05 leaves a quarter of the signal unexplained
    z2, why2 = tree_regime(tree, ["WeightNet"], [4096], [0.0, 0.3])
    z3, _ = tree_regime(tree, ["LocalNet", "OracleNet", "WeightNet", "FCNet"], [512, 1024], [0.3])
    assert not z2 and z3 and "WeightNet n = 4096" in why2
    wide, _ = tree_regime(tree.assign(test_nmse=0.0005), ["WeightNet"], [4096], [0.0, 0.3])  # Var f = 20
    assert wide
