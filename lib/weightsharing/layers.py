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


BACKENDS = ("auto", "unfold", "masked")


class _PatchMatmul(torch.autograd.Function):
    """y[p] = patches[p] @ weight[p].T at every position p, with a hand-written backward. Autograd through the
    strided patch view scatters the input gradient element by element and copies operands; here each gradient is
    one batched matmul, and (positions, out, fan_in) is already the weight gradient's layout. The patches are a
    second, non-differentiable output so that the backward reuses them (and vmap can stack seeds through it)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, layer: "LocallyConnected2d"):
        patches = layer.patches(x)
        y = torch.bmm(patches, weight.transpose(1, 2))                        # (positions, B, O)
        return y.permute(1, 2, 0).unflatten(2, layer.out_size), patches

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, layer = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(output[1], weight)
        ctx.layer, ctx.in_shape = layer, x.shape

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor, _):
        patches, weight = ctx.saved_tensors
        # Under autocast the forward matmul ran in bf16 and so does its gradient; the saved fp32 master weight and
        # patches join it in that precision (autograd casts each gradient back to its input's dtype).
        patches, weight = patches.to(grad_y.dtype), weight.to(grad_y.dtype)
        grad_y = grad_y.flatten(2).permute(2, 0, 1).contiguous()             # (positions, B, O)
        grad_x = ctx.layer.fold(torch.bmm(grad_y, weight), ctx.in_shape) if ctx.needs_input_grad[0] else None
        grad_w = torch.bmm(grad_y.transpose(1, 2), patches) if ctx.needs_input_grad[1] else None
        return grad_x, grad_w, None


class LocallyConnected2d(nn.Module):
    """Conv2d-shaped layer with untied weights and biases per output position (positions in row-major order).

    weight: (positions, out_channels, in_channels * kh * kw), with patches ordered (c, kh, kw) as in
    `Conv2d.weight.reshape(out_channels, -1)`; bias: (positions, out_channels). Each position is initialised as a
    fresh `Conv2d` would be: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Two backends compute the same function from the same parameters, so the choice never changes a state dict:
    - "unfold": the patches gathered once into a (positions, batch, fan_in) tensor, then one batched matmul over
      positions forward and one each for the weight and input gradients backward (`_PatchMatmul`); the input
      gradient is folded back tap by tap. Good whenever the patches of a batch are cheap to gather.
    - "masked": the output positions are cut into tiles of `tile` = (th, tw) positions; each tile is one dense
      matmul of its whole input window against a weight block that holds the tile's filters at their offsets and
      zeros elsewhere (blocks rebuilt by one scatter per step, so the zeros also mask the gradient). `tile=None`
      is one tile over the whole output: the masked dense layer of the equivalent fully connected net. It gathers
      windows, not patches: a few multiplications by zero buy far less memory traffic when the patches are large.
    "auto" (the default) decides per batch by `backend_for`'s rule, read off `python -m weightsharing.bench`.
    """

    def __init__(self, in_channels: int, out_channels: int, *, in_size: int | tuple[int, int],
                 kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] = 0, bias: bool = True, backend: str = "auto",
                 tile: int | tuple[int, int] | None = None):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
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
        self.backend = backend
        # the masked tiling exists only where a batch can run masked: "auto" picks it for skinny layers alone, and the
        # block index costs two weights' worth of memory
        masked = backend == "masked" or (backend == "auto" and out_channels < _SKINNY_CHANNELS)
        if backend == "auto" and masked:
            tile = plan_tile(self)
        self.tile = tuple(min(t, n) for t, n in zip(_pair(tile or self.out_size), self.out_size)) if masked else None
        if masked:
            self.register_buffer("block_index", self._block_index(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[-1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def _taps(self):
        """Per (position, fan_in) entry: its output row and column, and its input row and column (padding < 0)."""
        (oh, ow), (kh, kw), (sh, sw), (ph, pw) = self.out_size, self.kernel_size, self.stride, self.padding
        p = torch.arange(oh * ow)
        c, i, j = (t.flatten() for t in torch.meshgrid(torch.arange(self.in_channels), torch.arange(kh),
                                                        torch.arange(kw), indexing="ij"))
        py, px = (p // ow)[:, None], (p % ow)[:, None]
        return py, px, c, py * sh - ph + i, px * sw - pw + j

    def _inside(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Which taps fall on the input rather than on its zero padding."""
        return (y >= 0) & (y < self.in_size[0]) & (x >= 0) & (x < self.in_size[1])

    def tiling(self) -> tuple[int, int, int, int]:
        """(tile rows, tile columns, window height, window width) of the masked backend."""
        (th, tw), (oh, ow), (kh, kw), (sh, sw) = self.tile, self.out_size, self.kernel_size, self.stride
        return -(-oh // th), -(-ow // tw), (th - 1) * sh + kh, (tw - 1) * sw + kw

    def _block_index(self) -> torch.Tensor:
        """Where each entry of `weight` (flattened) goes in the flattened (tiles, window, tile outputs) blocks."""
        (th, tw), (ph, pw) = self.tile, self.padding
        _, ntw, wh, ww = self.tiling()
        py, px, c, y, x = self._taps()
        k, n = self.in_channels * wh * ww, self.out_channels * th * tw
        tile = (py // th) * ntw + px // tw
        col = (c * wh + y + ph - (py // th) * th * self.stride[0]) * ww + x + pw - (px // tw) * tw * self.stride[1]
        row = torch.arange(self.out_channels)[None, :] * (th * tw) + (py % th) * tw + px % tw    # (positions, O)
        return ((tile * k + col)[:, None, :] * n + row[:, :, None]).flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != self.in_size:
            raise ValueError(f"LocallyConnected2d built for {self.in_size} inputs got {tuple(x.shape[-2:])}")
        oh, ow = self.out_size
        y = self._masked(x) if self.backend_for(len(x)) == "masked" else _PatchMatmul.apply(x, self.weight, self)[0]
        if self.bias is not None:
            y = y + self.bias.t().reshape(1, self.out_channels, oh, ow)
        return y

    def backend_for(self, batch: int) -> str:
        """The backend a batch of this size runs on: "auto" takes masked tiles only for a layer with fewer than
        `_SKINNY_CHANNELS` output channels (the layers given a tiling) whose batch of patches exceeds
        `AUTO_PATCH_BYTES`."""
        if self.backend != "auto":
            return self.backend
        patch_bytes = 4 * batch * self.weight.shape[0] * self.weight.shape[2]
        return "masked" if self.tile is not None and patch_bytes > AUTO_PATCH_BYTES else "unfold"

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(positions, batch, fan_in): every output position's receptive field, in `weight`'s (c, kh, kw) order."""
        (ph, pw), (kh, kw), (sh, sw), (oh, ow) = self.padding, self.kernel_size, self.stride, self.out_size
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph))
        return x.unfold(2, kh, sh).unfold(3, kw, sw)[:, :, :oh, :ow].permute(2, 3, 0, 1, 4, 5).reshape(oh * ow, len(x), -1)

    def fold(self, grad_patches: torch.Tensor, in_shape: torch.Size) -> torch.Tensor:
        """The adjoint of `patches`: (positions, batch, fan_in) summed back onto a (batch, C, H, W) input."""
        (ph, pw), (kh, kw), (sh, sw), (oh, ow), (h, w) = self.padding, self.kernel_size, self.stride, self.out_size, self.in_size
        b, c = in_shape[:2]
        # accumulated as (H, W, B, C), so every tap adds whole contiguous (B, C) planes: 1.5x faster than F.fold
        # (in at least fp32: a bf16 gradient's taps would round at every addition)
        grad = grad_patches.new_zeros(h + 2 * ph, w + 2 * pw, b, c,
                                      dtype=torch.promote_types(grad_patches.dtype, torch.float32))
        taps = grad_patches.view(oh, ow, b, c, kh, kw)
        for i in range(kh):
            for j in range(kw):
                grad[i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += taps[..., i, j]
        return grad[ph:ph + h, pw:pw + w].permute(2, 3, 0, 1)

    def _masked(self, x: torch.Tensor) -> torch.Tensor:
        (th, tw), (sh, sw), (ph, pw), (oh, ow) = self.tile, self.stride, self.padding, self.out_size
        nth, ntw, wh, ww = self.tiling()
        b, o = x.shape[0], self.out_channels
        # zero-pad on the far sides too, so that the last row and column of tiles have whole windows
        x = F.pad(x, (pw, (ntw - 1) * tw * sw + ww - x.shape[-1] - pw, ph, (nth - 1) * th * sh + wh - x.shape[-2] - ph))
        windows = x.unfold(2, wh, th * sh).unfold(3, ww, tw * sw)                       # (B, C, nth, ntw, wh, ww)
        windows = windows.permute(2, 3, 0, 1, 4, 5).reshape(nth * ntw, b, -1)
        k, n = windows.shape[-1], o * th * tw
        blocks = self.weight.new_zeros(nth * ntw * k * n).scatter(0, self.block_index, self.weight.flatten())
        y = torch.bmm(windows, blocks.view(nth * ntw, k, n))                             # (tiles, B, O * th * tw)
        y = y.view(nth, ntw, b, o, th, tw).permute(2, 3, 0, 4, 1, 5).reshape(b, o, nth * th, ntw * tw)
        return y[:, :, :oh, :ow]

    def dense_weight(self) -> torch.Tensor:
        """The layer as the weight of a fully connected layer: (out * positions, in * H * W), rows channel-major
        (o * positions + p), columns (c, y, x) as `x.flatten(1)`; zero outside the receptive fields."""
        py, px, c, y, x = self._taps()
        (h, w), (oh, ow) = self.in_size, self.out_size
        inside = self._inside(y, x)
        cols = self.in_channels * h * w
        row = torch.arange(self.out_channels)[None, :, None] * (oh * ow) + (py * ow + px)[:, :, None]
        flat = torch.where(inside[:, None, :], row * cols + ((c * h + y) * w + x)[:, None, :], -1).flatten()
        keep = flat >= 0
        dense = self.weight.new_zeros(self.out_channels * oh * ow * cols)
        dense[flat[keep].to(dense.device)] = self.weight.flatten()[keep.to(self.weight.device)]
        return dense.view(-1, cols)

    def live_weights(self) -> int:
        """Weights that can ever be non-zero: those not on the zero padding (`weight.numel()` counts them too)."""
        *_, y, x = self._taps()
        return int(self._inside(y, x).sum()) * self.out_channels

    @classmethod
    def tied_to(cls, conv: nn.Conv2d, *, in_size: int | tuple[int, int], **backend) -> "LocallyConnected2d":
        """A locally connected layer whose every position holds `conv`'s kernel and bias: it computes `conv`."""
        layer = cls(conv.in_channels, conv.out_channels, in_size=in_size, kernel_size=conv.kernel_size,
                    stride=conv.stride, padding=conv.padding, bias=conv.bias is not None, **backend)
        layer = layer.to(conv.weight.device)
        with torch.no_grad():
            layer.weight.copy_(conv.weight.reshape(conv.out_channels, -1).expand_as(layer.weight))
            if conv.bias is not None:
                layer.bias.copy_(conv.bias.expand_as(layer.bias))
        return layer

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, in_size={self.in_size}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, out_size={self.out_size}, bias={self.bias is not None}, "
                f"backend={self.backend!r}" + (f", tile={self.tile}" if self.tile else ""))


# The rule behind "auto", read off `python -m weightsharing.bench` on a 2-core CPU: "unfold" is the fastest at every
# shape the book trains but one, S-LOCAL's first layer at batch 512, whose patches (127 MB for 8 output channels)
# cost more to gather than to multiply (9.5x Conv2d, masked tiles about 3x). Hence masked tiles for layers with
# fewer than 16 output channels once a batch's patches exceed 32 MB, and "unfold" otherwise.
_SKINNY_CHANNELS, _TILE_WIDTH, AUTO_PATCH_BYTES = 16, 48, 2 ** 25


def plan_tile(layer: LocallyConnected2d) -> tuple[int, int]:
    """The masked backend's tile: at least `_TILE_WIDTH` outputs per GEMM, with the window that wastes the fewest
    multiplications by zero (window area over the kernel's, per output)."""
    (oh, ow), (kh, kw), (sh, sw), o = layer.out_size, layer.kernel_size, layer.stride, layer.out_channels
    tiles = [(th, tw) for th in (1, 2, 4, 8, 16) for tw in (1, 2, 4, 8, 16)
             if th <= oh and tw <= ow and (o * th * tw >= _TILE_WIDTH or (th, tw) == (oh, ow))]
    waste = lambda t: ((t[0] - 1) * sh + kh) * ((t[1] - 1) * sw + kw) / (kh * kw)
    return min(tiles or [(oh, ow)], key=lambda t: (waste(t), -t[0] * t[1]))


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
