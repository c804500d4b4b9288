"""Layers that separate locality from weight sharing.

LocallyConnected2d: a convolution's receptive fields without its weight sharing (every output position has its own
filter and bias). HashedLinear: a dense layer whose weights are read from a small table through a fixed index map,
so colliding weights are shared (ArbNets, HashedNets); `hash_index` builds the maps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class LocallyConnected2d(nn.Module):
    """Conv2d-shaped layer with untied weights and biases per output position (positions in row-major order).

    weight: (positions, out_channels, in_channels * kh * kw), with patches ordered (c, kh, kw) as in
    `Conv2d.weight.reshape(out_channels, -1)`; bias: (positions, out_channels). Each position is initialised as a
    fresh `Conv2d` would be: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """

    def __init__(self, in_channels: int, out_channels: int, *, in_size: int | tuple[int, int],
                 kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] = 0, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.kernel_size = _pair(in_size), _pair(kernel_size)
        self.stride, self.padding = _pair(stride), _pair(padding)
        self.out_size = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in
                              zip(self.in_size, self.kernel_size, self.stride, self.padding))
        if min(self.out_size) < 1:
            raise ValueError(f"kernel {self.kernel_size} does not fit input {self.in_size} with padding {self.padding}")
        positions = self.out_size[0] * self.out_size[1]
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.weight = nn.Parameter(torch.empty(positions, out_channels, fan_in))
        self.bias = nn.Parameter(torch.empty(positions, out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[-1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != self.in_size:
            raise ValueError(f"LocallyConnected2d built for {self.in_size} inputs got {tuple(x.shape[-2:])}")
        (ph, pw), (kh, kw), (sh, sw), (oh, ow) = self.padding, self.kernel_size, self.stride, self.out_size
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph))
        # Patches as a strided view (B, C, oh, ow, kh, kw): no im2col copy. einsum then runs one small matmul per
        # position; on CPU this is several times faster than F.unfold + bmm, whose loop copies every operand.
        patches = x.unfold(2, kh, sh).unfold(3, kw, sw)[:, :, :oh, :ow]
        weight = self.weight.view(oh, ow, self.out_channels, self.in_channels, kh, kw)
        y = torch.einsum("bchwij,hwocij->bohw", patches, weight)
        if self.bias is not None:
            y = y + self.bias.t().reshape(1, self.out_channels, oh, ow)
        return y

    @classmethod
    def tied_to(cls, conv: nn.Conv2d, *, in_size: int | tuple[int, int]) -> "LocallyConnected2d":
        """A locally connected layer whose every position holds `conv`'s kernel and bias: it computes `conv`."""
        layer = cls(conv.in_channels, conv.out_channels, in_size=in_size, kernel_size=conv.kernel_size,
                    stride=conv.stride, padding=conv.padding, bias=conv.bias is not None)
        with torch.no_grad():
            layer.weight.copy_(conv.weight.reshape(conv.out_channels, -1).expand_as(layer.weight))
            if conv.bias is not None:
                layer.bias.copy_(conv.bias.expand_as(layer.bias))
        return layer

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, in_size={self.in_size}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, out_size={self.out_size}, bias={self.bias is not None}")


# ---------------------------------------------------------------------------------------------- hashed weight sharing

HASHES = ("identity", "modulus", "uniform", "dirichlet", "neighborhood", "permuted_modulus")


def hash_index(kind: str, *, shape: tuple[int, int], table_size: int, rng: np.random.Generator,
               sparsity: float = 0.0, alpha: float | None = None, radius: int | None = None) -> torch.Tensor:
    """Index map (out * in,) into a table of `table_size` entries; the value `table_size` is the constant zero.

    A random fraction `sparsity` of the weights is pinned to zero; weight identifier i = o * in + j (row-major) is
    hashed to: i mod n (modulus); U{0..n-1} (uniform); Categorical(p), p ~ Dir(alpha) drawn once (dirichlet);
    (i + U{-r..r}) mod n (neighborhood); pi(i) mod n for one random permutation pi (permuted_modulus); i (identity,
    which needs n = out * in).
    """
    n_weights, n = shape[0] * shape[1], table_size
    if kind not in HASHES:
        raise ValueError(f"unknown hash {kind!r}: choose one of {', '.join(HASHES)}")
    if kind == "identity" and n != n_weights:
        raise ValueError(f"the identity hash needs a table of {n_weights} entries, got {n}")
    idx = np.full(n_weights, n, dtype=np.int64)
    kept = np.sort(rng.permutation(n_weights)[: n_weights - round(sparsity * n_weights)])
    if kind in ("identity", "modulus"):
        idx[kept] = kept % n
    elif kind == "uniform":
        idx[kept] = rng.integers(0, n, size=len(kept))
    elif kind == "dirichlet":
        p = rng.dirichlet(np.full(n, alpha))
        idx[kept] = rng.choice(n, size=len(kept), p=p / p.sum())
    elif kind == "neighborhood":
        idx[kept] = (kept + rng.integers(-radius, radius + 1, size=len(kept))) % n
    else:  # permuted_modulus: as balanced and as fixed as modulus, without its structure
        idx[kept] = rng.permutation(n_weights)[kept] % n
    return torch.from_numpy(idx)


class HashedLinear(nn.Module):
    """`nn.Linear` whose weight matrix is `table[index]` (plus a constant zero entry): W[o, j] = ext[index[o * in + j]].

    Every table entry receives the sum of the gradients of the weights mapped to it. The table is initialised like
    `nn.Linear`'s weights, U(-1/sqrt(in), 1/sqrt(in)); the bias is ordinary (not hashed).
    """

    def __init__(self, in_features: int, out_features: int, *, index: torch.Tensor, table_size: int, bias: bool = True):
        super().__init__()
        if index.shape != (in_features * out_features,) or index.min() < 0 or index.max() > table_size:
            raise ValueError(f"index must be {in_features * out_features} entries in [0, {table_size}]")
        self.in_features, self.out_features, self.table_size = in_features, out_features, table_size
        bound = 1 / math.sqrt(in_features)
        self.table = nn.Parameter(torch.empty(table_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound)) if bias else None
        self.register_buffer("index", index.clone())

    def weight(self) -> torch.Tensor:
        ext = torch.cat([self.table, self.table.new_zeros(1)])
        # index_select's backward is an index_add, much faster on CPU than the index_put of ext[index]
        return ext.index_select(0, self.index).view(self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, table_size={self.table_size}, bias={self.bias is not None}"


@dataclass(frozen=True)
class HashStats:
    entropy: float        # nats, of the share of non-zero weights per entry (max ln n)
    empty: int            # entries no weight maps to
    max_load: int         # most weights on one entry
    nonzero: int          # weights not pinned to zero
    distinct_rows: int    # distinct rows of the index map: identical rows are duplicated neurons


def hash_stats(index: torch.Tensor, *, table_size: int, shape: tuple[int, int]) -> HashStats:
    live = index[index < table_size]
    counts = torch.bincount(live, minlength=table_size).double()
    q = counts[counts > 0] / max(len(live), 1)
    return HashStats(entropy=float(-(q * q.log()).sum()), empty=int((counts == 0).sum()), max_load=int(counts.max()),
                     nonzero=len(live), distinct_rows=len(torch.unique(index.view(shape), dim=0)))
