import pytest
import torch

from weightsharing.optim import BetaLasso


def one_step(theta, grad, **kw):
    p = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float64))
    p.grad = torch.tensor(grad, dtype=torch.float64)
    BetaLasso([p], **kw).step()
    return p.detach()


def test_one_step_against_a_hand_computation():
    lr, lam, beta = 0.1, 0.01, 2.0  # threshold beta * lam = 0.02; the l1 shrink lr * lam = 0.001
    theta = [0.5, 0.0205, 0.0, 0.0, -0.3, 0.03]
    grad = [1.0, 0.0, 0.1, -0.5, -1.0, 0.05]
    expected = [0.5 - 0.1 * 1.0 - 0.001,    # 0.399: stays
                0.0,                         # 0.0205 - 0.001 = 0.0195 < 0.02: crosses the threshold, zeroed
                0.0,                         # a zero weight with a small gradient: -0.01, stays zero
                0.05,                        # a zero weight revived by a large gradient: 0.05 >= 0.02
                -0.3 + 0.1 * 1.0 + 0.001,    # -0.199
                0.03 - 0.1 * 0.05 - 0.001]   # 0.024 >= 0.02: stays
    torch.testing.assert_close(one_step(theta, grad, lr=lr, lam=lam, beta=beta),
                               torch.tensor(expected, dtype=torch.float64))


def test_sign_is_taken_before_the_step():
    # 0.001 - 0.1 * 0.02 = -0.001; the l1 term uses sign(+0.001) = +1, so -0.001 - 0.1 * 0.01 = -0.002.
    # The reproduction's post-step sign (sign(-0.001) = -1) would give 0.0 instead.
    out = one_step([0.001], [0.02], lr=0.1, lam=0.01, beta=0.0)
    torch.testing.assert_close(out, torch.tensor([-0.002], dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_weight_exactly_at_the_threshold_is_kept(dtype):
    # dyadic values, exact in floating point: 0.375 - 0.5 * 0.25 = 0.25 = beta * lam
    p = torch.nn.Parameter(torch.tensor([0.375, 0.37], dtype=dtype))
    p.grad = torch.zeros(2, dtype=dtype)
    BetaLasso([p], lr=0.5, lam=0.25, beta=1.0).step()
    assert p.tolist() == [0.25, 0.0]


@pytest.mark.parametrize("lam,beta", [(0.01, 0.0), (0.0, 0.0)])
def test_limits_equal_sgd(lam, beta):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    twin.load_state_dict(model.state_dict())
    ours = BetaLasso(model.parameters(), lr=0.05, lam=lam, beta=beta)
    sgd = torch.optim.SGD(twin.parameters(), lr=0.05)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    for _ in range(5):
        for m, opt in ((model, ours), (twin, sgd)):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(m(x), y)
            if m is twin and lam:  # SGD on loss + lam * ||theta||_1 (subgradient sign(0) = 0)
                loss = loss + lam * sum(p.abs().sum() for p in m.parameters())
            loss.backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)


def test_groups_keep_their_own_lambda_and_bn_takes_plain_sgd():
    w, bn = torch.nn.Parameter(torch.tensor([0.5])), torch.nn.Parameter(torch.tensor([0.5]))
    w.grad, bn.grad = torch.zeros(1), torch.zeros(1)
    BetaLasso([{"params": [w], "lam": 0.1, "beta": 1.0}, {"params": [bn], "lam": 0.0, "beta": 0.0}], lr=1.0).step()
    assert w.item() == pytest.approx(0.4) and bn.item() == 0.5


def test_negative_settings_are_refused():
    with pytest.raises(ValueError, match="lr, lam and beta >= 0"):
        BetaLasso([torch.nn.Parameter(torch.zeros(1))], lr=0.1, lam=-1.0)
