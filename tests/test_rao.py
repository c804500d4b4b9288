from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from weightsharing.metrics import neighbour_distances
from weightsharing.papers.rao_divergence import converged as CS, leak, models as M, runs as R


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_parameter_counts_equal_the_spec():
    assert count(M.cnn()) == M.PARAMS["CNN"] == 2_875_530
    assert count(M.fcn()) == M.PARAMS["FCN"] == 11_103_626


def test_converted_fcn_reproduces_the_cnns_logits_then_unties():
    torch.manual_seed(0)
    net = M.cnn()
    free = M.convert(net)
    assert count(free) == M.PARAMS["FCN"]
    x = torch.rand(16, 3, 32, 32)
    assert (free(x) - net(x)).abs().max().item() < 1e-4
    opt = torch.optim.Adam(free.parameters(), lr=1e-3, eps=1e-7)
    F.cross_entropy(free(x), torch.arange(16) % 10).backward()
    opt.step()
    w = free.features[0].weight  # (196 positions, 64, 75): identical copies before, different after one step
    assert (w - w[:1]).abs().amax(dim=(1, 2)).gt(0).sum() > 100


def test_glorot_init_and_zero_biases_as_keras():
    net = M.cnn()
    conv = net.features[0]
    bound = (6 / (3 * 25 + 64 * 25)) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert all(m.bias.abs().sum() == 0 for m in (*net.features, net.dense, net.head))


def test_distances_of_constructed_weights():
    torch.manual_seed(0)
    block = torch.randn(1, 64, 75)
    same = block.expand(196, 64, 75)
    for r, pairs in ((1, 144 * 8), (4, 36 * 32)):  # 1152 ordered pairs at both distances
        d = neighbour_distances(same, (14, 14), r)
        assert d["pairs"] == pairs and d["euclidean"] == pytest.approx(0, abs=1e-12)
        assert d["cosine"] == pytest.approx(0, abs=1e-12)
    # a checkerboard of a block and its negation: of the 8 neighbours at distance 1, the 4 edge ones are negated
    # (cosine distance 2) and the 4 corners equal (0)
    sign = torch.tensor([[(-1.0) ** (i + j) for j in range(14)] for i in range(14)]).flatten()
    board = block * sign[:, None, None]
    assert neighbour_distances(board, (14, 14), 1)["cosine"] == pytest.approx(1.0)
    rows = block * torch.tensor([(-1.0) ** i for i in range(14) for _ in range(14)])[:, None, None]
    d4 = neighbour_distances(rows, (14, 14), 4)  # rows alternate in sign: an even row offset gives the same block,
    ring = [(di, dj) for di in range(-4, 5) for dj in range(-4, 5) if max(abs(di), abs(dj)) == 4]
    expected = sum(2.0 for di, _ in ring if di % 2) / len(ring)  # an odd one its negation
    assert d4["cosine"] == pytest.approx(expected)
    unrelated = neighbour_distances(torch.randn(196, 64, 75), (14, 14), 1)
    assert unrelated["cosine"] == pytest.approx(1, abs=0.05) and unrelated["euclidean"] == pytest.approx(2 ** 0.5 / 14, rel=0.05)


def test_the_codes_shuffle_keeps_half_the_images_and_leaks_validation():
    train, val = leak.buggy_split(60_000, seed=0)
    c = leak.leak_counts(train, val)
    assert 29_500 < c["distinct"] < 30_700                  # spec: about 30 100 of 60 000 survive
    assert 0.85 < c["val_in_train"] / c["val_rows"] < 0.91  # about 88 % of validation rows are training rows


def test_a_clean_shuffle_would_not_leak():
    rows = np.random.default_rng(0).permutation(1000)
    c = leak.leak_counts(rows[:800], rows[800:])
    assert c["distinct"] == 1000 and c["val_in_train"] == 0


def tiny_split(n=64):
    from weightsharing.papers.rao_divergence.runs import Split

    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return Split(x, y, x[:32], y[:32], x[:32], y[:32])


def test_early_stopping_waits_patience_epochs_without_strict_improvement_and_keeps_the_last_weights():
    from weightsharing.papers.rao_divergence.runs import Stage, train_stage

    torch.manual_seed(0)
    net = M.cnn()
    out = train_stage(net, tiny_split(), Stage(epochs=30, patience=2), sigma=0.3, seed=0, batch_size=32,
                      snapshot_at=1, log=lambda s: None)
    val = out["history"]["val_acc"]
    best = max(val)
    assert out["best_epoch"] == val.index(best) + 1
    assert out["stopped_at"] == len(val) and (len(val) == 30 or len(val) - out["best_epoch"] == 2)
    assert out["snapshot"] is not None and set(out["snapshot"]) == set(net.state_dict())


def test_robustness_perturbations_are_fixed_and_translate_by_at_most_8_px_with_edge_fill():
    from weightsharing.papers.rao_divergence.runs import perturbations

    ar = torch.arange(32.0)
    x = torch.stack([ar[:, None].expand(32, 32), ar[None, :].expand(32, 32), torch.zeros(32, 32)])  # (3, 32, 32)
    x = x.expand(50, 3, 32, 32).contiguous()  # channel 0 holds each pixel's row, channel 1 its column
    a, b = perturbations(x, seed=3), perturbations(x, seed=3)
    assert all(torch.equal(a[k], b[k]) and a[k].shape == x.shape for k in a)
    noise = a["noise_0.15"] - x
    assert 0.13 < noise.std() < 0.17 and noise.abs().max() > 0.5  # Gaussian, not clipped
    moves = set()
    for img in a["translate_8px"]:
        dy, dx = int(img[0, 16, 0] - 16), int(img[1, 0, 16] - 16)
        assert abs(dy) <= 8 and abs(dx) <= 8
        assert torch.equal(img[0, :, 0], (ar + dy).clamp(0, 31)) and torch.equal(img[1, 0, :], (ar + dx).clamp(0, 31))
        moves.add((dy, dx))
    assert len(moves) > 10


def test_a_block_against_its_negation_has_cosine_distance_2():
    block = torch.randn(1, 4, 6)
    grid = -block.expand(9, 4, 6).clone()
    grid[4] = block[0]  # a 3 x 3 grid: the one centre holds the block, its 8 neighbours its negation
    d = neighbour_distances(grid, (3, 3), 1)
    assert d["pairs"] == 8 and d["cosine"] == pytest.approx(2.0) and d["per_filter_cosine"] == pytest.approx(2.0)
    assert d["euclidean"] == pytest.approx(2 * block.norm().item() / grid.norm().item())


def test_the_cpu_leak_pool_matches_the_spec():
    train, val = leak.buggy_split(12_500, seed=0)
    c = leak.leak_counts(train, val)
    assert 5_900 < c["distinct"] < 6_600 and 0.85 < c["val_in_train"] / c["val_rows"] < 0.92


def test_cosine_distance_is_positions_over_two_times_euclidean_squared_for_equal_block_norms():
    """What the measure measures: blocks of one norm make 1 - cos exactly (positions / 2) x Euclidean^2."""
    g = torch.Generator().manual_seed(0)
    grid, filters, fan_in = 14, 4, 75
    base = torch.randn(filters, fan_in, generator=g, dtype=torch.float64)
    w = base.expand(grid * grid, filters, fan_in).clone()
    for p in range(grid * grid):  # rotate each block a little, keeping its norm (in float64: 1 - cos is tiny)
        theta = 0.01 * (p % 7)
        v = torch.randn(filters, fan_in, generator=g, dtype=torch.float64)
        v -= (v * base).sum() / (base * base).sum() * base
        v *= base.norm() / v.norm()
        w[p] = base * np.cos(theta) + v * np.sin(theta)
    d = neighbour_distances(w, (grid, grid), 1)
    # per pair of blocks, 1 - cos = |u - v|^2 / (2 |u|^2) = positions / 2 x |u - v|^2 once the weight is divided by
    # its norm, as the measure does
    assert CS.LAYER1_POSITIONS == grid * grid
    u = (w / w.norm()).reshape(grid * grid, -1).double()
    pair = (u[1:] - u[:-1]).norm(dim=1) ** 2 * (grid * grid) / 2
    cos = 1 - torch.nn.functional.cosine_similarity(u[1:], u[:-1], dim=1)
    assert torch.allclose(pair, cos, rtol=1e-6, atol=1e-12) and d["cosine"] > 0


def test_the_authors_curves_interpolate_from_zero_at_conversion():
    a = CS.authors_curves()
    assert set(a.experiment) == {"0", "1"} and (a.groupby("experiment").steps.min() == 0).all()
    first = a[(a.experiment == "1") & (a.steps == CS.AUTHORS_STEPS_PER_EPOCH)].cos_1.iloc[0]
    assert CS.authors_at([0], "1")[0] == 0 and CS.authors_at([CS.AUTHORS_STEPS_PER_EPOCH], "1")[0] == pytest.approx(first)
    assert CS.authors_at([CS.AUTHORS_STEPS_PER_EPOCH / 2], "1")[0] == pytest.approx(first / 2)


def test_converged_start_units_train_on_their_subset_and_earlier_keys_stay():
    b = R.BUDGETS["cpu"]
    exps = {e.name: e for e in b.experiments}
    assert "subset" not in R.cnn_key(b, exps["0"]) and R.cnn_key(b, exps["C0"])["subset"] == exps["C0"].subset
    split = R.fake_split()
    assert len(R.subset(split, 1).y_train) == 1 and R.subset(split, None) is split
    assert not exps["C0"].control and exps["C1"].sigma == 0.3 and exps["C0"].cnn.patience is not None


def test_fitted_start_variants_share_their_cnn_and_only_their_fcn_keys_change():
    b = R.BUDGETS["cpu"]
    exps = {e.name: e for e in b.experiments}
    base, fixed, fresh = exps["F1"], exps["F1 fixed"], exps["F1 fresh"]
    assert R.parent(b, fixed) is base and R.parent(b, fresh) is base
    assert R.fcn_key(b, fixed)["from"] == R.fcn_key(b, base)["from"] == R.cnn_key(b, base)
    assert R.fcn_key(b, fixed)["fcn_order"] == "fixed" and "fcn_order" not in R.fcn_key(b, base)
    assert R.fcn_key(b, fresh)["fcn_data"] == "fresh" and "fcn_data" not in R.fcn_key(b, exps["1"])
    assert R.cnn_key(b, base)["precision"] == R.PRECISION["CNN"] and "precision" not in R.cnn_key(b, exps["1"])


def test_confirmatory_seeds_train_their_own_set_and_f3_starts_from_f2s_snapshot():
    b = R.BUDGETS["cpu"]
    runs = R.per_seed(b)
    assert [r.seed for r in runs] == [*b.seeds, *b.confirm] and not set(b.seeds) & set(b.confirm)
    confirm = {e.name: e for e in runs[-1].experiments}
    assert set(confirm) == {"F0", "F1", "F2", "F3", "L"}
    assert R.cnn_key(runs[-1], confirm["F2"])["snapshot_at"] == confirm["F3"].cnn.epochs == confirm["F2"].cnn.epochs // 4
    assert R.fcn_key(runs[-1], confirm["F3"])["from"] == R.cnn_key(runs[-1], confirm["F2"])


def test_fresh_images_are_none_the_clean_split_trained_or_validated_on():
    b = R.BUDGETS["smoke"]
    clean = R.clean_split(b)
    fresh = R.fresh_images(b, R.subset(clean, 64), 64)
    rows = lambda x: {hash(r.numpy().tobytes()) for r in x}
    assert len(fresh.y_train) == 64 and fresh.x_val is clean.x_val
    assert not rows(fresh.x_train) & (rows(clean.x_train) | rows(clean.x_val))
    with pytest.raises(ValueError, match="lower the budget's train"):
        R.fresh_images(replace(b, train=49_000), clean, 2_000)


def test_the_fit_check_fails_any_cnn_below_the_threshold():
    from weightsharing.papers.rao_divergence.claims import FIT, fitted

    recs = lambda acc: {"F0/CNN": {"clean_train_acc": 0.99}, "F1/CNN": {"clean_train_acc": acc}}
    ok, why = fitted({0: recs(FIT), 1: recs(0.999)}, ("F0", "F1"))
    assert ok and "4 of 4" in why
    ok, why = fitted({0: recs(FIT - 0.01), 1: recs(0.999)}, ("F0", "F1"))
    assert not ok and "F1 seed 0" in why
    assert not fitted({0: recs(0.99)}, ("F2",))[0]


def test_source_table_reads_the_authors_code_and_csv_at_equal_steps():
    from weightsharing.papers.rao_divergence import source

    t = source.table({})
    code = t[t.source == "their code, as published"].iloc[0]
    runs = source.authors_code().query("variant == 'as published'").set_index("steps")
    assert code.ratio_750 == pytest.approx(runs.exp1[750] / runs.exp0[750])
    csv = t[t.source == "their CSV"].iloc[0]
    assert csv.ratio_375 == pytest.approx(CS.authors_at([375], "1")[0] / CS.authors_at([375], "0")[0])
    assert csv.ratio_375 > 10 * code.ratio_375  # the gap the chapter traces
