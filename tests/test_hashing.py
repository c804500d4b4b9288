import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from weightsharing.layers import HASHES, HashedLinear, hash_index, hash_stats


def rng(seed=0):
    return np.random.default_rng(seed)


def test_identity_hash_equals_a_dense_layer():
    torch.manual_seed(0)
    dense = nn.Linear(12, 5)
    layer = HashedLinear(12, 5, index=hash_index("identity", shape=(5, 12), table_size=60, rng=rng()), table_size=60)
    with torch.no_grad():
        layer.table.copy_(dense.weight.flatten())
        layer.bias.copy_(dense.bias)
    x = torch.randn(7, 12)
    torch.testing.assert_close(layer(x), dense(x))
    layer(x).sum().backward(), dense(x).sum().backward()
    torch.testing.assert_close(layer.table.grad, dense.weight.grad.flatten())


def test_toeplitz_hash_is_a_convolution():
    # eq. 6: a 3x3 kernel over a 5x5 single-channel image, out-of-field weights on the zero entry
    kernel_size, size, out = 3, 5, 3
    index = torch.full((out * out, size * size), kernel_size * kernel_size)
    for oy in range(out):
        for ox in range(out):
            for ky in range(kernel_size):
                for kx in range(kernel_size):
                    index[oy * out + ox, (oy + ky) * size + (ox + kx)] = ky * kernel_size + kx
    layer = HashedLinear(size * size, out * out, index=index.flatten(), table_size=9, bias=False)
    x = torch.randn(4, 1, size, size)
    expected = F.conv2d(x, layer.table.view(1, 1, 3, 3)).flatten(1)
    torch.testing.assert_close(layer(x.flatten(1)), expected)


def test_modulus_hash_across_stacked_layers_is_one_shared_matrix():
    # an RNN unrolled over 4 steps: identifiers continue across steps, so a table of out * in entries repeats
    index = hash_index("modulus", shape=(4 * 3, 5), table_size=15, rng=rng()).view(4, 15)
    assert all(torch.equal(index[0], index[t]) for t in range(4))


def test_gradients_accumulate_over_colliding_weights():
    index = torch.tensor([0, 0, 1, 2])  # weights (0, 0) and (0, 1) share entry 0; entry 2 is the constant zero
    layer = HashedLinear(2, 2, index=index, table_size=2, bias=False)
    x = torch.tensor([[1.0, 2.0]])
    layer(x)[0, 0].backward()
    assert layer.table.grad.tolist() == [3.0, 0.0]  # d(w0 x0 + w0 x1)/dw0 = x0 + x1
    assert layer.weight()[1, 1].item() == 0.0


@pytest.mark.parametrize("n,rows", [(1000, (125, 5, 5)), (997, (200, 200, 10))])
def test_modulus_duplicated_neurons_on_the_mnist_net(n, rows):
    shapes = [(200, 784), (200, 200), (10, 200)]
    got = tuple(hash_stats(hash_index("modulus", shape=s, table_size=n, rng=rng()), table_size=n, shape=s).distinct_rows
                for s in shapes)
    assert got == rows


def test_entropy_empty_buckets_and_load():
    s = hash_stats(hash_index("modulus", shape=(10, 100), table_size=50, rng=rng()), table_size=50, shape=(10, 100))
    assert s.entropy == pytest.approx(math.log(50)) and s.empty == 0 and s.max_load == 20 and s.nonzero == 1000
    skewed = hash_stats(hash_index("dirichlet", shape=(200, 784), table_size=997, rng=rng(), alpha=1e-3),
                        table_size=997, shape=(200, 784))
    balanced = hash_stats(hash_index("dirichlet", shape=(200, 784), table_size=997, rng=rng(), alpha=100.0),
                          table_size=997, shape=(200, 784))
    assert skewed.entropy < 2 < 6.8 < balanced.entropy < math.log(997) and skewed.empty > 900 > balanced.empty


def test_sparsity_pins_that_fraction_to_the_zero_entry():
    for kind in ("modulus", "uniform", "neighborhood", "permuted_modulus"):
        idx = hash_index(kind, shape=(20, 50), table_size=97, rng=rng(), sparsity=0.9, radius=3)
        assert (idx == 97).sum().item() == 900 and idx.max() <= 97


def test_neighborhood_radius_zero_is_modulus_and_permuted_modulus_is_balanced():
    a = hash_index("neighborhood", shape=(20, 50), table_size=97, rng=rng(1), radius=0, sparsity=0.5)
    b = hash_index("modulus", shape=(20, 50), table_size=97, rng=rng(1), sparsity=0.5)
    assert torch.equal(a, b)
    p = hash_index("permuted_modulus", shape=(20, 50), table_size=100, rng=rng(2))
    assert torch.bincount(p, minlength=100).tolist() == [10] * 100


def test_a_hash_is_a_function_of_its_seed():
    for kind in HASHES[1:]:
        kw = {"alpha": 0.1, "radius": 5}
        a = hash_index(kind, shape=(8, 30), table_size=31, rng=rng(5), sparsity=0.3, **kw)
        assert torch.equal(a, hash_index(kind, shape=(8, 30), table_size=31, rng=rng(5), sparsity=0.3, **kw))


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of"):
        hash_index("random", shape=(2, 2), table_size=3, rng=rng())
    with pytest.raises(ValueError, match="index must be 6 entries"):
        HashedLinear(3, 2, index=torch.zeros(5, dtype=torch.long), table_size=3)
