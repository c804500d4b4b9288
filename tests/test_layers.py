import pytest
import torch
from torch import nn
from torch.func import functional_call

from weightsharing.bench import PositionLoop
from weightsharing.layers import LocallyConnected2d


@pytest.mark.parametrize("cin,cout,size,k,stride,padding", [(1, 6, 28, 6, 2, 0), (6, 16, 12, 6, 2, 0),
                                                          (3, 4, 9, 3, 1, 1), (2, 3, (7, 10), (3, 2), (2, 1), (0, 1))])
@pytest.mark.parametrize("backend", ["unfold", "masked"])
def test_tied_weights_equal_conv2d(cin, cout, size, k, stride, padding, backend):
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding)
    lc = LocallyConnected2d.tied_to(conv, in_size=size, backend=backend)
    size = (size, size) if isinstance(size, int) else size
    x = torch.randn(5, cin, *size)
    torch.testing.assert_close(lc(x), conv(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend,tile", [("unfold", None), ("masked", None), ("masked", (2, 2))])
def test_untied_positions_are_independent(backend, tile):
    torch.manual_seed(0)
    lc = LocallyConnected2d(2, 3, in_size=8, kernel_size=3, stride=2, backend=backend, tile=tile)  # 3x3 positions
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


# The shapes the chapters use: S-LOCAL (Neyshabur, alpha = 2), LocalNet layers (Zhang), the FCN's first layer (Rao).
SHAPES = [(3, 2, 32, 9, 2, 4), (1, 6, 28, 6, 2, 0), (6, 16, 12, 6, 2, 0), (3, 8, 14, 5, 2, 0), (2, 3, (9, 7), 3, 2, 1)]


@pytest.mark.parametrize("cin,cout,size,k,stride,padding", SHAPES)
@pytest.mark.parametrize("tile", [None, (1, 1), (2, 3), (4, 4)])
def test_backends_agree_on_outputs_and_gradients(cin, cout, size, k, stride, padding, tile):
    torch.manual_seed(0)
    ref = LocallyConnected2d(cin, cout, in_size=size, kernel_size=k, stride=stride, padding=padding, backend="unfold")
    masked = LocallyConnected2d(cin, cout, in_size=size, kernel_size=k, stride=stride, padding=padding,
                                backend="masked", tile=tile)
    masked.load_state_dict(ref.state_dict())
    size = (size, size) if isinstance(size, int) else size
    x = torch.randn(3, cin, *size)
    target = torch.randn(3, cout, *ref.out_size)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    outs = [layer(xi) for layer, xi in zip((ref, masked), xs)]
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-5)
    for out in outs:
        (out * target).sum().backward()
    for a, b in ((ref.weight.grad, masked.weight.grad), (ref.bias.grad, masked.bias.grad), (xs[0].grad, xs[1].grad)):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def test_perturbing_one_position_of_the_masked_backend_changes_only_its_outputs():
    torch.manual_seed(0)
    lc = LocallyConnected2d(3, 2, in_size=32, kernel_size=9, stride=2, padding=4, backend="masked", tile=(4, 4))
    x = torch.randn(2, 3, 32, 32)
    before = lc(x)
    p = 5 * 16 + 7  # row 5, column 7 of the 16 x 16 output
    with torch.no_grad():
        lc.weight[p].add_(torch.randn_like(lc.weight[p]))
    changed = (lc(x) - before).abs().amax(dim=(0, 1)).flatten() > 0
    assert changed.nonzero().flatten().tolist() == [p]


def test_dense_weight_is_the_equivalent_fully_connected_layer_and_counts_live_taps():
    torch.manual_seed(0)
    lc = LocallyConnected2d(3, 2, in_size=32, kernel_size=9, stride=2, padding=4, bias=False)
    x = torch.randn(4, 3, 32, 32)
    dense = lc.dense_weight()
    torch.testing.assert_close(nn.functional.linear(x.flatten(1), dense).view(4, 2, 16, 16), lc(x), atol=1e-5, rtol=1e-5)
    # S-LOCAL: 62 208 alpha stored weights, 53 868 alpha of them off the zero padding (spec, section 2)
    assert lc.weight.numel() == 62_208 * 2 and lc.live_weights() == 53_868 * 2 == int((dense != 0).sum())


@pytest.mark.parametrize("cin,cout,size,k,stride,padding,batch,backend", [
    (3, 8, 32, 9, 2, 4, 512, "masked"),   # S-LOCAL, alpha = 8, at its training batch: 127 MB of patches
    (3, 8, 32, 9, 2, 4, 32, "unfold"),    # the same layer at a small batch
    (1, 6, 28, 6, 2, 0, 32, "unfold"),    # LocalNet MNIST layer 1
    (6, 16, 12, 6, 2, 0, 4096, "unfold"), # LocalNet MNIST layer 2: wide enough at any batch
    (3, 64, 32, 5, 2, 0, 128, "unfold"),  # Rao's FCN layer 1
])
def test_auto_backend_follows_the_rule(cin, cout, size, k, stride, padding, batch, backend):
    lc = LocallyConnected2d(cin, cout, in_size=size, kernel_size=k, stride=stride, padding=padding)
    assert lc.backend == "auto" and lc.backend_for(batch) == backend
    if cout < 16:  # a skinny layer carries the tiling a large batch runs on
        assert cout * lc.tile[0] * lc.tile[1] >= 48 and hasattr(lc, "block_index")
    else:  # a wide one never runs masked, so it holds no block index (two weights' worth of memory)
        assert lc.tile is None and not hasattr(lc, "block_index")


@pytest.mark.parametrize("cin,cout,size,k,stride,padding", [(2, 3, 7, 3, 2, 1), (1, 2, (6, 5), (3, 2), (1, 2), 0)])
def test_hand_written_backward_passes_gradcheck(cin, cout, size, k, stride, padding):
    torch.manual_seed(0)
    lc = LocallyConnected2d(cin, cout, in_size=size, kernel_size=k, stride=stride, padding=padding,
                            backend="unfold").double()
    size = (size, size) if isinstance(size, int) else size
    x = torch.randn(2, cin, *size, dtype=torch.double, requires_grad=True)
    weight = lc.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, w: functional_call(lc, {"weight": w}, (x,)), (x, weight))


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backend 'fast': choose one of auto, unfold, masked"):
        LocallyConnected2d(1, 2, in_size=8, kernel_size=3, backend="fast")


@pytest.mark.parametrize("backend", ["unfold", "masked"])
def test_forward_and_backward_under_bf16_autocast_match_fp32(backend):
    """Mixed precision on the CPU (and so on a GPU): the hand-written backward takes the bf16 gradient and returns
    gradients in the parameters' fp32. Outputs and gradients agree with fp32 to bf16's precision: relative error
    (norm of the difference over the norm) below 2 %, with 8 significant bits and sums over up to 75 taps."""
    torch.manual_seed(0)
    layer = LocallyConnected2d(3, 8, kernel_size=5, in_size=(12, 12), padding=2, backend=backend)
    x = torch.randn(16, 3, 12, 12, requires_grad=True)

    def run(autocast: bool):
        layer.zero_grad()
        x.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = layer(x)
        (y.float() ** 2).mean().backward()
        return y.float(), x.grad.clone(), layer.weight.grad.clone(), layer.bias.grad.clone()

    exact, mixed = run(False), run(True)
    assert mixed[2].dtype == torch.float32 and mixed[1].dtype == torch.float32
    assert (exact[0] - mixed[0]).abs().max() > 0  # the bf16 path did run
    for a, b in zip(exact, mixed):
        assert ((a - b).norm() / a.norm()).item() < 0.02
