import pytest
import torch
from torch import nn

from weightsharing.bench import PositionLoop
from weightsharing.layers import LocallyConnected2d


@pytest.mark.parametrize("cin,cout,size,k,stride,padding", [(1, 6, 28, 6, 2, 0), (6, 16, 12, 6, 2, 0),
                                                          (3, 4, 9, 3, 1, 1), (2, 3, (7, 10), (3, 2), (2, 1), (0, 1))])
def test_tied_weights_equal_conv2d(cin, cout, size, k, stride, padding):
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding)
    lc = LocallyConnected2d.tied_to(conv, in_size=size)
    size = (size, size) if isinstance(size, int) else size
    x = torch.randn(5, cin, *size)
    torch.testing.assert_close(lc(x), conv(x), atol=1e-5, rtol=1e-5)


def test_untied_positions_are_independent():
    torch.manual_seed(0)
    lc = LocallyConnected2d(2, 3, in_size=8, kernel_size=3, stride=2)  # 3x3 = 9 positions
    x = torch.randn(4, 2, 8, 8)
    before = lc(x)
    with torch.no_grad():
        lc.weight[4].add_(1.0)  # the centre position only
        lc.bias[4].add_(1.0)
    changed = (lc(x) - before).abs().amax(dim=(0, 1)) > 0
    assert changed.flatten().tolist() == [i == 4 for i in range(9)]


def test_matches_the_per_position_loop_of_the_original_code():
    torch.manual_seed(0)
    lc = LocallyConnected2d(3, 6, in_size=32, kernel_size=6, stride=2)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(lc(x), PositionLoop(lc)(x), atol=1e-5, rtol=1e-5)


def test_gradcheck_in_float64():
    torch.manual_seed(0)
    lc = LocallyConnected2d(2, 3, in_size=5, kernel_size=3, stride=1, padding=1).double()
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: torch.func.functional_call(lc, {"weight": w, "bias": b}, (x,)),
                                    (x, lc.weight, lc.bias))


@pytest.mark.parametrize("cin,cout,size,positions,params", [(1, 6, 28, 144, 31_968), (3, 6, 32, 196, 128_184),
                                                           (6, 16, 12, 16, 16 * (216 * 16 + 16)),
                                                           (6, 16, 14, 25, 25 * (216 * 16 + 16))])
def test_shapes_and_parameter_counts_of_localnet_layers(cin, cout, size, positions, params):
    lc = LocallyConnected2d(cin, cout, in_size=size, kernel_size=6, stride=2)
    out = lc(torch.zeros(2, cin, size, size))
    assert out.shape == (2, cout, *lc.out_size) and lc.out_size[0] * lc.out_size[1] == positions
    assert sum(p.numel() for p in lc.parameters()) == params


def test_init_matches_conv2d_bounds():
    lc = LocallyConnected2d(3, 6, in_size=32, kernel_size=6, stride=2)
    bound = 1 / (3 * 36) ** 0.5
    assert lc.weight.abs().max() <= bound and lc.weight.abs().max() > 0.9 * bound
    assert lc.bias.abs().max() <= bound


def test_wrong_input_size_is_a_clear_error():
    lc = LocallyConnected2d(1, 2, in_size=8, kernel_size=3)
    with pytest.raises(ValueError, match=r"built for \(8, 8\) inputs got \(9, 9\)"):
        lc(torch.zeros(1, 1, 9, 9))
