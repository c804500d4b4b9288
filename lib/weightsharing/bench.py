"""Speed of the shared layers as ratios to a baseline timed in the same process: `python -m weightsharing.bench`.

The timing harness (`interleaved`), the layers' benchmarks, and the stacked-seeds timer whose cases each chapter
lists for itself (`papers.speed` gathers them: this module imports no paper).

Wall-clock numbers vary by machine and load; ratios measured back to back are what carries over.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layers import HashedLinear, LocallyConnected2d, hash_index, plan_tile


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


class EinsumLocal(nn.Module):
    """The book's previous "unfold" backend, kept as a baseline: patches as a strided view and one einsum, with
    autograd's backward (which scatters the input gradient element by element). Reads `layer`'s parameters."""

    def __init__(self, layer: LocallyConnected2d):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        lc = self.layer
        (ph, pw), (kh, kw), (sh, sw), (oh, ow) = lc.padding, lc.kernel_size, lc.stride, lc.out_size
        patches = F.pad(x, (pw, pw, ph, ph)).unfold(2, kh, sh).unfold(3, kw, sw)[:, :, :oh, :ow]
        weight = lc.weight.view(oh, ow, lc.out_channels, lc.in_channels, kh, kw)
        return torch.einsum("bchwij,hwocij->bohw", patches, weight) + lc.bias.t().reshape(1, -1, oh, ow)


def previous_auto(layer: LocallyConnected2d) -> nn.Module:
    """What backend="auto" ran before: masked tiles below 16 output channels, at any batch, else `EinsumLocal`."""
    if layer.out_channels >= 16:
        return EinsumLocal(layer)
    masked = LocallyConnected2d(layer.in_channels, layer.out_channels, in_size=layer.in_size,
                                kernel_size=layer.kernel_size, stride=layer.stride, padding=layer.padding,
                                backend="masked", tile=layer.tile)
    masked.load_state_dict(layer.state_dict())
    return masked


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


def interleaved(steps: dict[str, Callable[[], None]], *, baseline: str, rounds: int = 15, warmup: int = 2,
                resets: dict[str, Callable[[], None]] | None = None) -> dict[str, dict]:
    """Time every step once per round, in turn, so that the machine's drifts (these CPUs are shared and noisy) hit
    them alike; each round gives each step's ratio to the baseline's time in that round. Returns per step its
    median milliseconds and the median, min and max of its ratio over the rounds."""
    resets = resets or {}
    times = {name: [] for name in steps}
    for r in range(warmup + rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
            resets.get(name, lambda: None)()
    base = times[baseline]
    out = {}
    for name, ts in times.items():
        ratios = [t / b for t, b in zip(ts, base)]
        out[name] = {"ms": 1e3 * statistics.median(ts), "ratio": statistics.median(ratios), "ratio_min": min(ratios),
                     "ratio_max": max(ratios), "ratios": ratios}
    return out


def _forward_backward(module: nn.Module, x: torch.Tensor) -> tuple[Callable[[], None], Callable[[], None]]:
    def reset():
        module.zero_grad(set_to_none=True)
        x.grad = None

    return (lambda: module(x).sum().backward()), reset


# Locally connected layers of the chapters, at their training batch: (in, out, input size, kernel, stride, padding,
# batch). A first layer needs no input gradient (its input is data); later layers do, and are timed with it.
LC_SHAPES = {
    "S-LOCAL layer 1, α = 8 (Neyshabur)": (3, 8, 32, 9, 2, 4, 512),
    "LocalNet MNIST layer 1 (Zhang)": (1, 6, 28, 6, 2, 0, 32),
    "LocalNet CIFAR layer 1 (Zhang)": (3, 6, 32, 6, 2, 0, 32),
    "LocalNet MNIST layer 2 (Zhang)": (6, 16, 12, 6, 2, 0, 32),
    "LocalNet CIFAR layer 2 (Zhang)": (6, 16, 14, 6, 2, 0, 32),
    "FCN layer 1 (Rao)": (3, 64, 32, 5, 2, 0, 128),
    "FCN layer 2 (Rao)": (64, 128, 14, 5, 2, 0, 128),
}


def lc_backends(*, rounds: int = 15, shapes: dict | None = None) -> list[dict]:
    """Each LocallyConnected2d backend against Conv2d at the same shape and batch, timed interleaved: unfold, and
    masked at the tile "auto" would use; `auto` marks the one "auto" runs at this batch."""
    rows = []
    for name, (cin, cout, size, k, stride, pad, batch) in (shapes or LC_SHAPES).items():
        torch.manual_seed(0)
        x = torch.randn(batch, cin, size, size, requires_grad="layer 1" not in name)
        conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad)
        make = lambda **kw: LocallyConnected2d(cin, cout, in_size=size, kernel_size=k, stride=stride, padding=pad, **kw)
        auto = make()
        best = plan_tile(auto)  # the tile "auto" would use, were the layer skinny
        tile = f"masked, tile {best[0]}×{best[1]}"
        layers = {"Conv2d": conv, "unfold": make(backend="unfold"), tile: make(backend="masked", tile=best)}
        pairs = {n: _forward_backward(m, x) for n, m in layers.items()}
        res = interleaved({n: p[0] for n, p in pairs.items()}, baseline="Conv2d", rounds=rounds,
                          resets={n: p[1] for n, p in pairs.items()})
        picked = "unfold" if auto.backend_for(batch) == "unfold" else tile
        for backend, r in res.items():
            if backend != "Conv2d":
                rows.append({"layer": name, "batch": batch, "backend": backend, "auto": backend == picked,
                             "conv2d_ms": res["Conv2d"]["ms"], "ms": r["ms"], "ratio_to_conv2d": r["ratio"],
                             "ratio_min": r["ratio_min"], "ratio_max": r["ratio_max"]})
    return rows


def lc_speedups(*, rounds: int = 15, shapes: dict | None = None) -> list[dict]:
    """Per shape the book trains: Conv2d, what "auto" ran before (`previous_auto`) and what it runs now, forward and
    backward, timed interleaved. `speedup` = previous / now, with its min-max over the rounds."""
    rows = []
    for name, (cin, cout, size, k, stride, pad, batch) in (shapes or LC_SHAPES).items():
        torch.manual_seed(0)
        x = torch.randn(batch, cin, size, size, requires_grad="layer 1" not in name)
        now = LocallyConnected2d(cin, cout, in_size=size, kernel_size=k, stride=stride, padding=pad)
        layers = {"Conv2d": nn.Conv2d(cin, cout, k, stride=stride, padding=pad), "before": previous_auto(now), "now": now}
        pairs = {n: _forward_backward(m, x) for n, m in layers.items()}
        res = interleaved({n: p[0] for n, p in pairs.items()}, baseline="Conv2d", rounds=rounds,
                          resets={n: p[1] for n, p in pairs.items()})
        before, after = res["before"], res["now"]
        speedups = [b / a for b, a in zip(before["ratios"], after["ratios"])]  # per round: its own drift cancels
        rows.append({"layer": name, "batch": batch, "backend": now.backend_for(batch), "conv2d_ms": res["Conv2d"]["ms"],
                     "before_ratio": before["ratio"], "ratio_to_conv2d": after["ratio"], "ratio_min": after["ratio_min"],
                     "ratio_max": after["ratio_max"], "speedup": statistics.median(speedups),
                     "speedup_min": min(speedups), "speedup_max": max(speedups)})
    return rows


# LocalNet's two locally connected layers (Zhang chapter): (in_channels, out_channels, input size).
LOCALNET_SHAPES = {"MNIST layer 1": (1, 6, 28), "MNIST layer 2": (6, 16, 12),
                   "CIFAR layer 1": (3, 6, 32), "CIFAR layer 2": (6, 16, 14)}


def locally_connected(batch: int = 32, *, loop: bool = True, repeats: int = 20) -> list[dict]:
    """LocalNet's layers (the backend "auto" picks) against Conv2d and against the per-position loop, interleaved."""
    rows = []
    for name, (cin, cout, size) in LOCALNET_SHAPES.items():
        torch.manual_seed(0)
        lc = LocallyConnected2d(cin, cout, in_size=size, kernel_size=6, stride=2)
        x = torch.randn(batch, cin, size, size, requires_grad=not name.endswith("layer 1"))
        layers = {"conv": nn.Conv2d(cin, cout, 6, stride=2), "lc": lc}
        if loop:
            layers["loop"] = PositionLoop(lc)
        pairs = {n: _forward_backward(m, x) for n, m in layers.items()}
        res = interleaved({n: p[0] for n, p in pairs.items()}, baseline="conv", rounds=repeats,
                          resets={n: p[1] for n, p in pairs.items()})
        row = {"layer": name, "batch": batch, "input_grad": x.requires_grad, "positions": lc.weight.shape[0],
               "backend": lc.backend_for(batch), "conv2d_ms": res["conv"]["ms"], "locally_connected_ms": res["lc"]["ms"],
               "ratio_to_conv2d": res["lc"]["ratio"]}
        if loop:
            row.update(loop_ms=res["loop"]["ms"], speedup_over_loop=res["loop"]["ratio"] / res["lc"]["ratio"])
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


@dataclass(frozen=True)
class StackCase:
    """One model of a chapter for `stacked_training`: `steps(n, generator)` returns (one seed's n steps, R seeds' n
    steps stacked), as the chapter trains them; `stacked_in_book` says whether the chapter stacks its seeds."""
    model: str
    batch: int
    replicas: int
    stacked_in_book: bool
    steps: Callable[[int, torch.Generator], tuple[Callable[[], None], Callable[[], None]]]


def epoch_steps(build: Callable[[int], nn.Module], optimizer: Callable, loss: Callable, data: tuple[torch.Tensor, ...],
                batch: int, replicas: int, *, shared: bool) -> tuple[Callable[[], None], Callable[[], None]]:
    """One epoch over `data` of one seed through `fit`, and of `replicas` seeds through `fit_replicas`: the two
    trainers the chapters use, each step timed whole (optimizer and per-epoch work included). `optimizer` maps
    parameters to an optimizer; `shared`: one optimizer over the stack (constant hyperparameters), else one per seed."""
    from .train import fit, fit_replicas

    alone = build(0)
    alone_opt = optimizer(alone.parameters())
    seeds = [build(r) for r in range(replicas)]
    seeds_opt = optimizer if shared else [optimizer(m.parameters()) for m in seeds]
    stacked = tuple(t.expand(replicas, *t.shape) for t in data)
    gen = lambda r: torch.Generator().manual_seed(r)

    def one():
        fit(alone, alone_opt, loss, data, epochs=1, batch_size=batch, generator=gen(0))

    def many():
        fit_replicas(seeds, seeds_opt, loss, stacked, epochs=1, batch_size=batch, generators=[gen(r) for r in range(replicas)])

    return one, many


def stacked_training(cases: list[StackCase], *, rounds: int = 5, steps: int = 20) -> list[dict]:
    """Training steps per second of each case: one seed alone and R seeds stacked in one step (per seed), timed
    interleaved over `steps` steps each. `speedup` = R x (one seed's time) / (the stack's time): what stacking saves
    per seed, with its min and max over the rounds. The chapters list their cases (`papers.speed`)."""
    g = torch.Generator().manual_seed(0)
    rows = []
    for case in cases:
        single, stacked = case.steps(steps, g)
        t = interleaved({"single": single, "stacked": stacked}, baseline="single", rounds=rounds, warmup=1)
        speedups = [case.replicas / r for r in t["stacked"]["ratios"]]  # per round: robust to the machine's drift
        speedup = statistics.median(speedups)
        rows.append({"model": case.model, "batch": case.batch, "replicas": case.replicas,
                     "stacked_in_book": case.stacked_in_book, "single_steps_per_s": steps * 1e3 / t["single"]["ms"],
                     "stacked_steps_per_s_per_seed": speedup * steps * 1e3 / t["single"]["ms"], "speedup": speedup,
                     "speedup_min": min(speedups), "speedup_max": max(speedups)})
    return rows


@dataclass(frozen=True)
class PrecisionCase:
    """One model of a chapter for `precision_speedups`: `step(precision)` returns one training step (forward under
    that precision, backward, optimizer) as the chapter's trainer runs it; `decision`, the precision the chapter trains
    this model's new units in."""
    model: str
    batch: int
    step: Callable[[str], Callable[[], None]]
    decision: str = "fp32"


def precision_case(model: str, build: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor,
                   optimizer: Callable = lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9),
                   loss: Callable = F.cross_entropy, repeat: int = 5, decision: str = "fp32") -> PrecisionCase:
    """A case for a classifier trained on (x, y): each precision gets its own copy of one initialisation; a timed
    step is `repeat` training steps (a single small step is too short to time on a shared machine)."""
    from .train import autocast

    def step(precision: str):
        torch.manual_seed(0)
        net = build()
        opt = optimizer(net.parameters())

        def one():
            for _ in range(repeat):
                with autocast(x.device, precision):
                    value = loss(net(x), y)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
        return one

    return PrecisionCase(model, len(x), step, decision)


def precision_speedups(cases: list[PrecisionCase], *, rounds: int = 7) -> list[dict]:
    """Each case's training step in fp32 and under bf16 autocast, timed interleaved: `speedup` = fp32 / bf16, with its
    min and max over the rounds. A chapter trains new units in bf16 where this is at least 1.3."""
    rows = []
    for case in cases:
        t = interleaved({"fp32": case.step("fp32"), "bf16": case.step("bf16")}, baseline="fp32", rounds=rounds, warmup=1)
        speedups = [1 / r for r in t["bf16"]["ratios"]]
        rows.append({"model": case.model, "batch": case.batch, "fp32_ms": t["fp32"]["ms"], "bf16_ms": t["bf16"]["ms"],
                     "speedup": statistics.median(speedups), "speedup_min": min(speedups),
                     "speedup_max": max(speedups), "decision": case.decision})
    return rows


def main() -> None:
    threads = torch.get_num_threads()
    print(f"LocallyConnected2d backends, forward + backward, ratio to Conv2d: median [min-max] over interleaved rounds "
          f"({threads} threads; * = what backend='auto' picks)")
    for r in lc_backends():
        print(f"  {r['layer']:<36} batch {r['batch']:>3}  {r['backend']:<20}{'*' if r['auto'] else ' '} "
              f"{r['ms']:8.2f} ms  {r['ratio_to_conv2d']:5.2f}x [{r['ratio_min']:.2f}-{r['ratio_max']:.2f}]")
    print(f"LocallyConnected2d, what backend='auto' ran before against what it runs now ({threads} threads)")
    for r in lc_speedups():
        print(f"  {r['layer']:<36} batch {r['batch']:>3}  {r['before_ratio']:5.2f}x -> {r['ratio_to_conv2d']:5.2f}x Conv2d "
              f"({r['backend']}): {r['speedup']:.2f}x faster [{r['speedup_min']:.2f}-{r['speedup_max']:.2f}]")
    for batch in (4, 32):
        print(f"LocalNet layers against the original per-position loop, batch {batch}")
        for r in locally_connected(batch):
            print(f"  {r['layer']:<14} {r['positions']:>4} positions ({r['backend']}): {r['ratio_to_conv2d']:.2f}x Conv2d, "
                  f"{r['speedup_over_loop']:.1f}x faster than the loop")
    print(f"HashedLinear vs nn.Linear, forward + backward, batch 128 ({threads} threads)")
    for r in hashed_linear():
        print(f"  {r['shape']:<10} Linear {r['linear_ms']:.3f} ms, hashed {r['hashed_ms']:.3f} ms "
              f"({r['ratio_to_linear']:.2f}x)")


if __name__ == "__main__":
    main()
