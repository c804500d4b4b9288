import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from weightsharing import metrics
from weightsharing.train import columns, fit, fit_replicas


def test_fit_learns_a_linear_map_and_logs_one_row_per_epoch():
    torch.manual_seed(0)
    x = torch.randn(256, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = nn.Linear(3, 1)
    rows = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(),
               (x, y), epochs=20, batch_size=32, generator=torch.Generator().manual_seed(0),
               evaluate=lambda m: {"mse": ((m(x) - y) ** 2).mean().item()})
    assert [r["epoch"] for r in rows] == list(range(1, 21))
    assert rows[-1]["mse"] < 1e-3 < rows[0]["mse"]
    assert columns(rows)["mse"] == [r["mse"] for r in rows]


def test_fit_without_shuffle_feeds_the_same_batches_in_order():
    seen = []

    def loss(model, batch):
        seen.append(batch[0][:, 0].tolist())
        return model(batch[0]).sum()

    model = nn.Linear(1, 1)
    fit(model, torch.optim.SGD(model.parameters(), lr=0.0), loss, (torch.arange(6.0)[:, None],),
        epochs=2, batch_size=4, shuffle=False)
    assert seen == [[0, 1, 2, 3], [4, 5], [0, 1, 2, 3], [4, 5]]


def _net(seed):
    # BatchNorm after the nonlinearity, as in ArbNet: a bias right before it has no gradient but rounding noise,
    # which Adam would scale up to full steps, alone and stacked alike, but not alike
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 3))


@pytest.mark.parametrize("shared", [False, True])
def test_fit_replicas_equals_each_seed_fitted_alone(shared):
    """Per-seed data, init and batch order; BatchNorm buffers per replica; one optimizer each or one over the stack."""
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(50, 6, generator=g), torch.randint(0, 3, (50,), generator=g)) for _ in range(3)]
    loss = lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1])
    evaluate = lambda m: {"w_sum": m[3].weight.sum().item(), "bn_mean": m[2].running_mean.sum().item()}
    alone = []
    for seed, d in enumerate(data):
        model = _net(seed)
        alone.append(fit(model, torch.optim.Adam(model.parameters(), lr=1e-2), loss, d, epochs=3, batch_size=16,
                         generator=torch.Generator().manual_seed(seed), evaluate=evaluate))
    models = [_net(seed) for seed in range(3)]
    opts = (lambda ps: torch.optim.Adam(ps, lr=1e-2)) if shared else [torch.optim.Adam(m.parameters(), lr=1e-2) for m in models]
    stacked = fit_replicas(models, opts, loss, tuple(torch.stack(t) for t in zip(*data)), epochs=3, batch_size=16,
                           generators=[torch.Generator().manual_seed(s) for s in range(3)],
                           evaluate=lambda r, m: evaluate(m))
    for a, b in zip(alone, stacked):
        for ra, rb in zip(a, b):
            assert ra.keys() == rb.keys() and ra["epoch"] == rb["epoch"]
            for k in ("train_loss", "w_sum", "bn_mean"):
                assert abs(ra[k] - rb[k]) <= 1e-5
    assert len({round(r[-1]["train_loss"], 6) for r in stacked}) == 3


def test_fit_replicas_freezes_a_replica_that_stops():
    models = [_net(seed) for seed in range(2)]
    g = torch.Generator().manual_seed(1)
    data = (torch.randn(2, 40, 6, generator=g), torch.randint(0, 3, (2, 40), generator=g))
    snapshot = {}

    def stop_first(r, row):
        if r == 0 and row["epoch"] == 1:
            snapshot.update({k: v.clone() for k, v in models[0].state_dict().items()})
            return True
        return False

    rows = fit_replicas(models, [torch.optim.SGD(m.parameters(), lr=0.1) for m in models],
                        lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]), data, epochs=3, batch_size=8,
                        generators=[torch.Generator().manual_seed(s) for s in range(2)], on_epoch=stop_first)
    assert [len(r) for r in rows] == [1, 3]
    for k, v in models[0].state_dict().items():  # weights and BatchNorm statistics as they were when it stopped
        assert torch.equal(v, snapshot[k]), k


def test_fit_replicas_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="one optimizer"):
        fit_replicas([_net(0), _net(1)], [], lambda m, b: m(b[0]).sum(), (torch.zeros(2, 4, 6),), epochs=1,
                     batch_size=2, generators=[torch.Generator()] * 2)


def test_welch_matches_scipy_and_spread_is_unbiased():
    a, b = np.array([0.8, 0.82, 0.79, 0.85]), np.array([0.7, 0.75, 0.72])
    c = metrics.welch(a, b)
    assert c.diff == pytest.approx(a.mean() - b.mean())
    assert c.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    s = metrics.spread(a)
    assert s.std == pytest.approx(np.std(a, ddof=1)) and s.se == pytest.approx(s.std / 2)


def test_accuracies():
    assert metrics.binary_accuracy(torch.tensor([0.2, 0.7, 0.51]), torch.tensor([0, 1, 0])) == pytest.approx(2 / 3)
    assert metrics.accuracy(torch.tensor([[1.0, 2.0], [3.0, 0.0]]), torch.tensor([1, 1])) == 0.5
    assert metrics.binomial_se(0.5, 100) == pytest.approx(0.05)


def test_test_accuracy_is_batch_independent_and_in_eval_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    model.train()
    a = metrics.test_accuracy(model, x, y, batch_size=7)
    assert not model.training
    with torch.no_grad():
        expected = (model(x).argmax(-1) == y).float().mean().item()
    assert a == pytest.approx(expected) == metrics.test_accuracy(model, x, y, batch_size=50)


def test_binomial_interval_is_clopper_pearson():
    lo, hi = metrics.binomial_interval(1, 2)
    assert lo == pytest.approx(0.012579, abs=1e-6) and hi == pytest.approx(0.987421, abs=1e-6)
    assert metrics.binomial_interval(0, 10)[0] == 0.0 and metrics.binomial_interval(10, 10)[1] == 1.0
    lo, hi = metrics.binomial_interval(3, 10)
    assert lo < 0.3 < hi and stats.binomtest(3, 10).proportion_ci().low == pytest.approx(lo)


def test_failure_rates_count_per_group_with_exact_intervals_and_name_the_seeds():
    import pandas as pd

    runs = pd.DataFrame({"arm": ["a"] * 4 + ["b"] * 3, "seed": [0, 1, 2, 3, 0, 1, 2], "acc": [0.1, 0.9, 0.2, 0.9, 0.9, 0.9, 0.9]})
    rows = metrics.failure_rates(runs, ["arm"], runs.acc < 0.5, name="stuck")
    assert len(rows) == 1  # arm b never failed: left out
    r = rows[0]
    assert (r["arm"], r["runs"], r["stuck"], r["rate"], r["stuck_seeds"]) == ("a", 4, 2, 0.5, "0, 2")
    assert (r["rate_lo"], r["rate_hi"]) == metrics.binomial_interval(2, 4)
    assert list(r) == ["arm", "runs", "stuck", "rate", "rate_lo", "rate_hi", "stuck_seeds"]
