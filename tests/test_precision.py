"""Precision as a unit's choice: bf16 autocast changes a chapter's metrics no more than another seed does, keeps the
master weights (and BetaLasso's thresholding) in fp32, and is recorded in the key only when it is not fp32."""
import pytest
import torch
from torch import nn

from weightsharing import metrics
from weightsharing.optim import BetaLasso
from weightsharing.papers.chang_arbnets import runs as chang
from weightsharing.train import autocast, fit, precise

MARGIN = 0.02  # two points of test accuracy: the bf16 runs must sit within the fp32 seeds' spread, to this margin


@pytest.mark.slow
def test_bf16_metrics_are_equivalent_to_fp32_over_seeds():
    """Chang's own trainer (`train_run`) on the configuration the chapter trains in bf16, a CIFAR-10 ArbNet (here 256
    wide, 3 000 images, 3 epochs), 6 seeds in each precision. A seed fixes the initialisation and the batch order in
    both precisions, so the test is paired: a one-sample TOST of the per-seed bf16 − fp32 test accuracy against ±2
    points; and every bf16 run lies inside the fp32 runs' range widened by the margin."""
    assert chang.PRECISION["cifar10"] == "bf16"
    grid = chang.Grid(width=256, depth=2, train=3000, test=2000, table_size=10_007, sparsities=(0.5,), alphas=(),
                      radii=(), seeds=6, epochs=3)
    budget = chang.BUDGETS["smoke"]
    tensors = chang.load_flat("cifar10", grid)
    acc = {p: [chang.train_run(chang.Run("T", "cifar10", chang.Hash("uniform"), 0.5, 10_007, seed, grid, precision=p),
                               tensors, budget)["test_acc"] for seed in range(6)] for p in ("fp32", "bf16")}
    eq = metrics.equivalence(metrics.one_sample([b - f for b, f in zip(acc["bf16"], acc["fp32"])], 0.0), MARGIN)
    assert eq.equivalent, f"bf16 − fp32: {eq}"
    assert min(acc["fp32"]) - MARGIN <= min(acc["bf16"]) and max(acc["bf16"]) <= max(acc["fp32"]) + MARGIN


def test_betalasso_thresholds_fp32_master_weights_under_autocast():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = BetaLasso(model.parameters(), lr=0.05, lam=1e-2, beta=5.0)
    x, y = torch.randn(256, 64), torch.randint(0, 4, (256,))

    def loss_fn(m, batch):
        out = m(batch[0])
        assert out.dtype == torch.bfloat16  # the forward pass did run in bf16
        return nn.functional.cross_entropy(out, batch[1])

    fit(model, opt, loss_fn, (x, y), epochs=3, batch_size=64, precision="bf16")
    w = model[0].weight
    assert w.dtype == torch.float32 and w.grad.dtype == torch.float32
    live = w[w != 0].abs()
    assert (w == 0).any() and (live >= 5.0 * 1e-2).all()  # exact zeros, every survivor at or above beta * lam


def test_precision_enters_a_key_only_when_it_is_not_fp32():
    key = {"rev": 1, "seed": 3}
    assert precise(key, "fp32") is key and precise(key, "bf16") == {**key, "precision": "bf16"}
    run = chang.Run("T", "mnist", chang.Hash("uniform"), 0.5, 997, 0, chang.BUDGETS["smoke"].mnist)
    budget = chang.BUDGETS["smoke"]
    assert "precision" not in run.key(budget)
    assert chang.Run(**{**run.__dict__, "precision": "bf16"}).key(budget)["precision"] == "bf16"
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        autocast("cpu", "fp16")
