import math

import pytest
import torch
import pandas as pd
from torch import nn

from weightsharing.layers import LocallyConnected2d
from weightsharing.papers.neyshabur_betalasso import analysis as A, ladder as L, models as M, runs as R

# spec section 2: (alpha, classes) -> S-CONV, S-LOCAL, S-FC, 3-FC trainable parameters, and 3-FC's width
COUNTS = {(150, 10): (138_319_960, 147_614_710, 256_324_810, 256_314_217, 14_541),
          (150, 100): (138_644_050, 147_938_800, 256_648_900, 256_656_157, 14_511),
          (8, 10): (397_490, 893_210, 6_691_082, 6_691_305, 1_469),
          (8, 100): (414_860, 910_580, 6_708_452, 6_707_800, 1_450),
          (4, 10): (100_446, 348_306, 3_247_242, 3_245_545, 829),
          (4, 100): (109_176, 357_036, 3_255_972, 3_257_572, 816),
          (2, 10): (25_652, 149_582, 1_599_050, 1_599_186, 452)}


@pytest.mark.parametrize("alpha,classes", COUNTS)
def test_parameter_counts_equal_the_spec(alpha, classes):
    with torch.device("meta"):  # alpha = 150 is 256 M parameters: counted, never allocated
        counts = [M.trainable(M.build(name, alpha=alpha, classes=classes)) for name in M.MODELS]
    assert counts == list(COUNTS[(alpha, classes)][:4])
    assert M.matched_width(M.s_fc_params(alpha, classes), classes) == COUNTS[(alpha, classes)][4]


def test_s_local_is_locally_connected_and_untied():
    model = M.build("S-LOCAL", alpha=2, classes=10)
    assert isinstance(model.first, LocallyConnected2d) and model.first.weight.shape == (256, 2, 243)
    assert not any(isinstance(m, nn.Conv2d) for m in model.modules())
    x = torch.randn(2, 3, 32, 32)
    before = model.first(x)
    with torch.no_grad():
        model.first.weight[17].add_(1.0)  # one position's filters
    changed = (model.first(x) - before).abs().amax(dim=(0, 1)).flatten() > 0
    assert changed.nonzero().flatten().tolist() == [17]


@pytest.mark.parametrize("name", M.MODELS)
def test_every_model_maps_images_to_logits_and_names_its_three_weight_matrices(name):
    model = M.build(name, alpha=2, classes=100)
    assert model(torch.randn(4, 3, 32, 32)).shape == (4, 100)
    w = model.weight_matrices()
    assert len(w) == 3 and all(p.dim() >= 2 for p in w)
    assert model.head.bias is not None and model.first.bias is None and model.second.bias is None


def test_first_layer_filters_place_conv_and_local_filters_on_the_image():
    conv = M.build("S-CONV", alpha=2, classes=10)
    filters = M.first_layer_filters(conv)  # (2 channels x 256 positions, 3, 32, 32)
    assert filters.shape == (512, 3, 32, 32)
    corner = filters[0]  # channel 0 at position (0, 0): the kernel's taps on the image, padding cut
    assert torch.equal(corner[:, :5, :5], conv.first.weight[0][:, 4:, 4:]) and corner[:, 5:, :].abs().sum() == 0


def test_locality_of_constructed_filters():
    local = torch.zeros(2, 3, 32, 32)
    local[0, :, 10:19, 3:12] = torch.rand(3, 9, 9) + 0.1   # a 9 x 9 filter: l = 1
    local[1, 1, 20, 25] = 1.0                                # one pixel: l = 1, radius 0
    ell, radius = A.filter_locality(local)
    torch.testing.assert_close(ell, torch.ones(2, dtype=torch.float64))
    assert radius[1] == 0
    flat = torch.ones(1, 3, 32, 32)  # uniform mass: the 9 x 9 window around the centre holds 81 / 1024
    assert A.filter_locality(flat)[0].item() == pytest.approx(81 / 1024)
    assert A.locality(torch.zeros(3, 3, 32, 32))["kept"] == 0  # fewer than 20 non-zeros: left out


def test_budget_matching_keeps_the_threshold_and_matches_the_paper_shrink():
    b = R.BUDGETS["cpu"]
    steps = b.steps("cifar10", 50_000)
    lam = R.lambdas(R.Run("E1", "cifar10", "S-FC", beta=50.0), b, steps)
    assert lam["lam1"] * lam["beta"] == pytest.approx(50 * 2e-5)                 # beta' lambda' = beta lambda
    assert lam["k"] * lam["lr_sum"] == pytest.approx(R.PAPER_LR_SUM)            # same accumulated shrink
    assert lam["k"] == pytest.approx(33.3, abs=0.1)                             # spec: k ~ 33 at 12 epochs
    cosine = [0.05 * (1 + math.cos(math.pi * t / steps)) for t in range(steps)]
    assert sum(cosine) == pytest.approx(lam["lr_sum"])
    unscaled = R.lambdas(R.Run("E4", "cifar10", "S-FC", beta=50.0, paper_lambda=True), b, steps)
    assert unscaled["k"] == 1 and unscaled["lam1"] == 2e-5


def test_beta_lasso_touches_only_the_three_weight_matrices():
    model = M.build("S-FC", alpha=2, classes=10)
    opt, _ = R.optimizer(model, R.Run("E1", "cifar10", "S-FC", beta=50.0), R.BUDGETS["smoke"], steps=8)
    groups = opt.param_groups
    assert [len(g["params"]) for g in groups] == [1, 2, len(list(model.parameters())) - 3]
    assert groups[0]["lam"] > groups[1]["lam"] > 0 and groups[2]["lam"] == 0
    bn = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()}
    assert bn <= {id(p) for p in groups[2]["params"]}


def fake_images(n=8, flip=True):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return R.Images(x_train=nn.functional.pad(x, (4, 4, 4, 4)), y_train=torch.arange(n) % 10, x_val=None, y_val=None,
                    x_test=torch.zeros(2, 3, 32, 32), y_test=torch.zeros(2, dtype=torch.long),
                    mean=torch.zeros(1, 3, 1, 1), std=torch.ones(1, 3, 1, 1), flip=flip), x


def test_augmentation_crops_flips_and_keeps_nchw_contiguous():
    imgs, x = fake_images(flip=False)
    out = imgs.normalise(x)
    crops = R.augment(imgs, imgs.x_train, torch.Generator().manual_seed(1))
    assert crops.shape == (8, 3, 32, 32) and crops.is_contiguous()
    # every crop is a shifted copy of its image: its inner 24 x 24 part occurs in the original at some offset
    for i in range(8):
        hits = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                if torch.equal(crops[i, :, 4:28, 4:28], out[i, :, 4 + dy:28 + dy, 4 + dx:28 + dx])]
        assert hits


def test_permutation_is_undone_before_locality():
    imgs, x = fake_images()
    perm = R.permuted(imgs)
    assert sorted(perm.perm.tolist()) == list(range(1024))
    plain = imgs.normalise(x[:2])
    permuted = perm.normalise(x[:2])
    assert torch.equal(permuted.flatten(2), plain.flatten(2)[:, :, perm.perm])


def test_autoaugment_path_of_the_paper_budget_runs_on_a_batch():
    from torchvision.transforms import v2

    imgs, _ = fake_images()
    out = R.augment(imgs, imgs.x_train[:4], torch.Generator().manual_seed(0),
                    autoaugment=v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10))
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32


def test_the_plan_shares_e5s_natural_units_with_table_2():
    b = R.BUDGETS["cpu"]
    runs = R.plan(b, ("cifar10", "cifar100"))
    keys = {str(r.key(b)) for r in runs}
    # E5's S-FC beta = 50 and S-CONV on natural pixels are Table 2 units, for every seed
    assert len(runs) - len(keys) == 2 * b.seeds
    per_seed = {s: sum(r.seed == s and r.augment != "crop_flip" for r in runs) for s in range(b.seeds)}  # crops: 1 seed
    assert b.seeds >= 3 and len(set(per_seed.values())) == 1  # every setting has every seed


def test_the_paper_budgets_code_path_runs_at_a_tiny_size():
    """Hold-out split, AutoAugment per image and the unscaled lambda: everything `paper` does except its size."""
    from dataclasses import replace

    tiny = replace(R.BUDGETS["paper"], alpha=2, epochs=(("cifar10", 1),), train=64, test=64, holdout=32, batch_size=32)
    imgs = R.prepare("cifar10", tiny)
    assert len(imgs.y_train) == 64 and len(imgs.y_val) == 32 and len(imgs.y_test) == 64
    out = R.train_run(R.Run("E1", "cifar10", "S-FC", beta=50.0), imgs, tiny)
    assert out["k"] == 1 and out["lam1"] == 2e-5 and 0 <= out["val_acc"] <= 1 and len(out["nnz"]) == 3
    est = R.estimate(R.BUDGETS["paper"], ("cifar10", "cifar100", "svhn"))
    # (7 rows x 3 datasets + E5's 2 permuted settings) x 3 seeds; E5's natural-pixel runs are Table 2 units; the
    # ladder: 3 arms (no budget matching: one λ) x 3 rungs x 3 seeds, S-LOCAL x 3 seeds and one crops run at the top
    assert len(est) == (7 * 3 + 2) * 3 + 3 * 3 * 3 + 3 + 1 and est.gpu_hours.sum() > 1


def test_units_stored_before_the_ladder_keep_their_keys():
    """New Run fields enter a key only where they differ from their defaults, so no earlier unit retrains."""
    b = R.BUDGETS["cpu"]
    key = R.Run("E1", "cifar10", "S-FC", beta=50.0, seed=1).key(b)
    assert {"plain_sgd", "ladder", "augment"} & set(key) == {"augment"} and key["augment"] == "crop_flip"
    assert key["epochs"] == 12 and key["train"] is None


def test_the_confirmatory_rung_is_fresh_seeds_at_one_longer_length_in_one_precision():
    """Every arm the frozen claims compare, at the confirmatory rung only, on both CIFAR subsets where they are asked
    for; each unit's key names its precision, and the width control scales lambda_2 alone."""
    b = R.BUDGETS["cpu"]
    conf = [r for r in R.plan(b, ("cifar10", "cifar100")) if r.seed in b.ladder.confirm_seeds]
    assert conf and {r.epochs for r in conf} == {b.ladder.confirm_length} and b.ladder.confirm_length > max(b.ladder.lengths)
    assert {r.precision for r in conf} == {R.PRECISION} and not set(b.ladder.confirm_seeds) & set(range(b.ladder.seeds))
    names = {(r.dataset, L.arm_name(pd.Series({**r.__dict__, "beta": float("nan") if r.beta is None else r.beta})))
             for r in conf}
    assert {("cifar10", a) for a in (*L.ARMS, *L.TOP_ONLY, L.WIDTH_ARM, *L.ARCHITECTURES)} <= names
    assert {("cifar100", a) for a in ("SGD", "S-LOCAL SGD", *L.ARCHITECTURES)} <= names
    width = next(r for r in conf if r.lam2_scale != 1.0)
    plain = R.lambdas(R.Run("L", "cifar10", "S-FC", beta=50.0), b, 960)
    scaled = R.lambdas(width, b, 960)
    assert scaled["lam1"] == plain["lam1"] and scaled["lam2"] == pytest.approx(plain["lam2"] * R.WIDTH_SCALE)
    assert "lam2_scale" in width.key(b) and "lam2_scale" not in R.Run("L", "cifar10", "S-FC", beta=50.0).key(b)


def test_ladder_units_train_on_their_own_subset_length_and_augmentation():
    b = R.BUDGETS["cpu"]
    runs = [r for r in R.plan(b, ("cifar10",)) if r.experiment == "L" and r.seed not in b.ladder.confirm_seeds]
    assert len(runs) == len(L.ARMS) * len(b.ladder.lengths) * b.ladder.seeds + b.ladder.seeds + 1
    assert len({str(r.key(b)) for r in runs}) == len(runs)
    top = max(b.ladder.lengths)
    plain = next(r for r in runs if r.plain_sgd and r.epochs == top)
    key = plain.key(b)
    assert key["epochs"] == top and key["train"] == b.ladder.train and key["augment"] == "flip" and key["plain_sgd"]
    model = M.build("S-FC", alpha=2, classes=10)
    opt, _ = R.optimizer(model, plain, b, steps=10)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0 and opt.defaults["weight_decay"] == 0


def test_flip_augmentation_takes_the_centre_without_crops():
    imgs = R.fake_images("cifar10", R.BUDGETS["smoke"], n=4)
    imgs.flip = False
    out = R.augment(imgs, imgs.x_train, torch.Generator().manual_seed(0), crop=False)
    assert torch.equal(out, imgs.normalise(imgs.x_train[:, :, 4:36, 4:36]))


def test_locality_null_scores_dense_filters_zero_and_local_ones_high():
    g = torch.Generator().manual_seed(0)
    dense = torch.randn(64, 3, 32, 32, generator=g)
    local = torch.zeros(64, 3, 32, 32)
    local[:, :, 10:15, 12:17] = torch.randn(64, 3, 5, 5, generator=g)
    dead = torch.zeros(8, 3, 32, 32)
    d = A.locality_null(torch.cat([dense, dead]))
    loc = A.locality_null(local)
    assert d["live"] == 64 and d["filters"] == 72  # dead filters are left out, not scored
    assert abs(d["excess"]) < 0.01 and loc["ell"] == pytest.approx(1.0) and loc["excess"] > 0.85
    assert A.locality_null(local, seed=1)["excess"] == pytest.approx(loc["excess"], abs=0.01)


def _ladder(gaps: dict[int, float], noise: float = 0.002) -> "pd.DataFrame":
    import pandas as pd

    rows = []
    for e, gap in gaps.items():
        for s in range(3):
            jitter = noise * (s - 1)
            rows += [{"arm": "SGD", "epochs": e, "seed": s, "test_acc": 0.5 + jitter},
                     {"arm": "β-lasso (matched λ)", "epochs": e, "seed": s, "test_acc": 0.5 + gap - jitter}]
    return pd.DataFrame(rows)


def test_the_ladder_trend_reads_the_gap_between_the_two_longest_rungs():
    closing = L.trends(_ladder({3: -0.05, 12: -0.20, 48: -0.01})).iloc[0]
    assert closing.reading == "closes" and closing.change == pytest.approx(100 * 0.19 / 2)
    widening = L.trends(_ladder({3: 0.0, 12: 0.01, 48: 0.05})).iloc[0]
    assert widening.reading == "widens" and widening.change_lo > 0
    flat = L.trends(_ladder({3: 0.0, 12: 0.02, 48: 0.02}, noise=0.01)).iloc[0]
    assert flat.reading.startswith("holds")
