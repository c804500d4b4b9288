"""Speed of the shared layers as ratios to a baseline timed in the same process: `python -m weightsharing.bench`.

Wall-clock numbers vary by machine and load; ratios measured back to back are what carries over.
"""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import numpy as np

from .layers import HashedLinear, LocallyConnected2d, hash_index


class PositionLoop(nn.Module):
    """The original code's locally connected layer: one small Conv2d per output position, applied to its patch."""

    def __init__(self, layer: LocallyConnected2d):
        super().__init__()
        (self.kh, self.kw), (self.sh, self.sw), self.out_size = layer.kernel_size, layer.stride, layer.out_size
        self.padding = layer.padding
        self.convs = nn.ModuleList(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size)
                                   for _ in range(layer.weight.shape[0]))
        with torch.no_grad():
            for conv, w, b in zip(self.convs, layer.weight, layer.bias):
                conv.weight.copy_(w.view_as(conv.weight))
                conv.bias.copy_(b)

    def forward(self, x):
        x = F.pad(x, (self.padding[1], self.padding[1], self.padding[0], self.padding[0]))
        oh, ow = self.out_size
        outs = [conv(x[:, :, (p // ow) * self.sh:(p // ow) * self.sh + self.kh, (p % ow) * self.sw:(p % ow) * self.sw + self.kw])
                for p, conv in enumerate(self.convs)]
        return torch.cat(outs, dim=-1).view(x.shape[0], -1, oh, ow)


def median_seconds(step, *, repeats: int, warmup: int, reset=None) -> float:
    """Median wall time of `step()` over `repeats` calls after `warmup` untimed ones; `reset()` runs untimed after each."""
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
        if reset is not None:
            reset()
    return statistics.median(times)


def time_step(module: nn.Module, x: torch.Tensor, *, input_grad: bool = True, repeats: int = 20,
              warmup: int = 3) -> float:
    """Median seconds of one forward + backward pass (parameter gradients, and the input's if `input_grad`)."""
    x = x.detach().requires_grad_(input_grad)

    def reset():
        module.zero_grad(set_to_none=True)
        x.grad = None

    return median_seconds(lambda: module(x).sum().backward(), repeats=repeats, warmup=warmup, reset=reset)


# LocalNet's two locally connected layers (Zhang chapter): (in_channels, out_channels, input size). A first layer
# needs no input gradient in training (its input is data), a second layer does; the timings follow that.
LOCALNET_SHAPES = {"MNIST layer 1": (1, 6, 28), "MNIST layer 2": (6, 16, 12),
                   "CIFAR layer 1": (3, 6, 32), "CIFAR layer 2": (6, 16, 14)}


def locally_connected(batch: int = 32, *, loop: bool = True, repeats: int = 20) -> list[dict]:
    """LocallyConnected2d against Conv2d (same receptive fields, shared weights) and against the per-position loop."""
    rows = []
    for name, (cin, cout, size) in LOCALNET_SHAPES.items():
        torch.manual_seed(0)
        lc = LocallyConnected2d(cin, cout, in_size=size, kernel_size=6, stride=2)
        conv = nn.Conv2d(cin, cout, 6, stride=2)
        x = torch.randn(batch, cin, size, size)
        grad = not name.endswith("layer 1")
        t_conv = time_step(conv, x, input_grad=grad, repeats=repeats)
        t_lc = time_step(lc, x, input_grad=grad, repeats=repeats)
        row = {"layer": name, "batch": batch, "input_grad": grad, "positions": lc.weight.shape[0], "conv2d_ms": 1e3 * t_conv,
               "locally_connected_ms": 1e3 * t_lc, "ratio_to_conv2d": t_lc / t_conv}
        if loop:
            t_loop = time_step(PositionLoop(lc), x, input_grad=grad, repeats=max(3, repeats // 4))
            row.update(loop_ms=1e3 * t_loop, speedup_over_loop=t_loop / t_lc)
        rows.append(row)
    return rows


# (in, out) of the Chang chapter's hashed layers: MNIST 784 -> 200 -> 200, CIFAR 3072 -> 512 (cpu) / 2000 (paper)
HASHED_SHAPES = ((784, 200), (200, 200), (3072, 512), (3072, 2000))


def hashed_linear(batch: int = 128, *, table_size: int = 997, repeats: int = 20) -> list[dict]:
    """HashedLinear (uniform hash, 10 % sparsity) against nn.Linear of the same shape, forward + backward."""
    rows = []
    for fan_in, fan_out in HASHED_SHAPES:
        torch.manual_seed(0)
        index = hash_index("uniform", shape=(fan_out, fan_in), table_size=table_size, rng=np.random.default_rng(0),
                           sparsity=0.1)
        hashed, dense = HashedLinear(fan_in, fan_out, index=index, table_size=table_size), nn.Linear(fan_in, fan_out)
        x = torch.randn(batch, fan_in)
        t_dense = time_step(dense, x, repeats=repeats)
        t_hashed = time_step(hashed, x, repeats=repeats)
        rows.append({"shape": f"{fan_in}x{fan_out}", "batch": batch, "linear_ms": 1e3 * t_dense,
                     "hashed_ms": 1e3 * t_hashed, "ratio_to_linear": t_hashed / t_dense})
    return rows


def train_step_ms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, repeats: int = 30, warmup: int = 5) -> float:
    """Median milliseconds of one SGD step (forward, cross-entropy, backward, update) on the batch (x, y)."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return 1e3 * median_seconds(step, repeats=repeats, warmup=warmup)


def main() -> None:
    for batch in (4, 32):
        print(f"LocallyConnected2d, forward + backward, batch {batch} ({torch.get_num_threads()} threads)")
        for r in locally_connected(batch):
            print(f"  {r['layer']:<14} {r['positions']:>4} positions: Conv2d {r['conv2d_ms']:.3f} ms, "
                  f"LC {r['locally_connected_ms']:.3f} ms ({r['ratio_to_conv2d']:.2f}x Conv2d), "
                  f"loop {r['loop_ms']:.2f} ms (LC {r['speedup_over_loop']:.1f}x faster)")
    print(f"HashedLinear vs nn.Linear, forward + backward, batch 128 ({torch.get_num_threads()} threads)")
    for r in hashed_linear():
        print(f"  {r['shape']:<10} Linear {r['linear_ms']:.3f} ms, hashed {r['hashed_ms']:.3f} ms "
              f"({r['ratio_to_linear']:.2f}x)")


if __name__ == "__main__":
    main()

