"""ArbNets: hashed layers, their index maps and entropy, and C6's check that common layers are ArbNets."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...layers import HashedLinear, hash_index, hash_stats


@dataclass(frozen=True)
class Hash:
    """One hash setting; `kind` as in layers.hash_index, plus "dense" (an ordinary nn.Linear, the no-sharing reference)."""
    kind: str
    alpha: float | None = None
    radius: int | None = None

    @property
    def label(self) -> str:
        if self.kind == "dirichlet":
            return f"Dirichlet α = {self.alpha:g}"
        if self.kind == "neighborhood":
            return "modulus (r = 0)" if self.radius == 0 else f"Neighborhood r = {self.radius}"
        return {"uniform": "uniform", "permuted_modulus": "permuted modulus", "modulus": "modulus",
                "dense": "dense (no sharing)"}[self.kind]


class ArbNet(nn.Sequential):
    """[Linear -> ELU -> BN] per layer, including the 10-unit output layer (its BN output is the logit vector), with
    every weight matrix hashed into its own table of `table_size` entries (biases and BN are ordinary)."""

    def __init__(self, *, sizes: tuple[int, ...], hash: Hash, table_size: int, sparsity: float, seed: int):
        layers, self.shapes, self.indices = [], [], []
        for layer, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
            if hash.kind == "dense":
                linear = nn.Linear(fan_in, fan_out)
            else:
                # hash and zero mask from (seed, layer): the same seed pairs settings on identical masks
                index = hash_index(hash.kind, shape=(fan_out, fan_in), table_size=table_size,
                                   rng=np.random.default_rng((seed, layer)), sparsity=sparsity,
                                   alpha=hash.alpha, radius=hash.radius)
                linear = HashedLinear(fan_in, fan_out, index=index, table_size=table_size)
                self.indices.append(index)
            self.shapes.append((fan_out, fan_in))
            layers += [linear, nn.ELU(), nn.BatchNorm1d(fan_out)]
        super().__init__(*layers)
        self.table_size = table_size

    def hash_stats(self) -> list[dict]:
        return [asdict(hash_stats(i, table_size=self.table_size, shape=s)) for i, s in zip(self.indices, self.shapes)]


def network_entropy(layers: list[dict]) -> float:
    """Mean of the layers' entropies weighted by their non-zero counts (ours: the paper defines it for one table)."""
    total = sum(l["nonzero"] for l in layers)
    return sum(l["entropy"] * l["nonzero"] for l in layers) / total if total else float("nan")


# ---------------------------------------------------------------------------------------------- C6: common layers are ArbNets

def arbnet_checks() -> dict[str, float]:
    """Max abs error of three identities of §2: identity hash = dense, Toeplitz hash = convolution, modulus hash over
    unrolled time steps = one shared recurrent matrix. Tiny, so the chapter recomputes them."""
    torch.manual_seed(0)
    dense = nn.Linear(12, 5)
    ident = HashedLinear(12, 5, index=torch.arange(60), table_size=60)
    with torch.no_grad():
        ident.table.copy_(dense.weight.flatten())
        ident.bias.copy_(dense.bias)
    x = torch.randn(7, 12)
    err_dense = (ident(x) - dense(x)).abs().max().item()

    k, size, out = 3, 5, 3
    index = torch.full((out * out, size * size), k * k)
    for o in range(out * out):
        for t in range(k * k):
            index[o, (o // out + t // k) * size + o % out + t % k] = t
    toeplitz = HashedLinear(size * size, out * out, index=index.flatten(), table_size=k * k, bias=False)
    img = torch.randn(4, 1, size, size)
    err_conv = (toeplitz(img.flatten(1)) - F.conv2d(img, toeplitz.table.view(1, 1, k, k)).flatten(1)).abs().max().item()

    steps, hidden = 4, 6
    unrolled = hash_index("modulus", shape=(steps * hidden, hidden), table_size=hidden * hidden,
                          rng=np.random.default_rng(0)).view(steps, -1)
    err_rnn = float((unrolled - unrolled[:1]).abs().max())
    return {"identity hash vs nn.Linear": err_dense, "Toeplitz hash vs conv2d": err_conv,
            "modulus hash over time steps vs one shared matrix": err_rnn}
