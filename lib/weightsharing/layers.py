"""Layers that separate locality from weight sharing.

LocallyConnected2d: a convolution's receptive fields without its weight sharing (every output position has its own
filter and bias).
"""
from __future__ import annotations

import math

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
