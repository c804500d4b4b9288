"""The tree task and the eight networks: four tree nets that assume both, one or neither of sharing and
locality, and their image counterparts; the spec's parameter counts."""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch
from torch import nn

from ...layers import LocallyConnected2d
from ...store import canonical

TREE_MODELS = ("WeightNet", "LocalNet", "OracleNet", "FCNet")
IMAGE_MODELS = ("ConvNet", "FCNet", "WeightNet", "LocalNet")
LOCALITY = ("LocalNet", "OracleNet")
FULL = 0  # "examples per class" value meaning the whole training set


# ============================================================================================== tree experiment

def tree_function(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """f_theta(x) for theta (R, 6, 2), x (R, N, 64): tanh of weighted pairs up a binary tree, linear at the top."""
    h = x
    for k in range(6):
        pairs = h.unflatten(-1, (-1, 2))
        h = theta[:, k, 0, None, None] * pairs[..., 0] + theta[:, k, 1, None, None] * pairs[..., 1]
        if k < 5:
            h = torch.tanh(h)
    return h.squeeze(-1)


class TreeNet(nn.Module):
    """R stacked replicas of one of the four tree architectures (6 bias-free layers, widths 64 -> 32 -> ... -> 1).

    WeightNet: one vector w of the layer's input width, output j = sum_i w_i z_{(i + 2j) mod m} (sharing, no locality).
    LocalNet: one pair of weights per output on its own two inputs (locality, no sharing).
    OracleNet: one pair per layer for every output (both). FCNet: a dense matrix (neither).
    """

    def __init__(self, *, kind: str, replicas: int, tile: int = 1, generators: list[torch.Generator] | None = None):
        """`replicas` independent inits, the whole stack repeated `tile` times (replica r = copy * replicas + i).

        `generators`, one per replica, draw each replica's init from its own stream: a replica's weights then depend
        on its own seed only, never on how many replicas share the stack."""
        super().__init__()
        if kind not in TREE_MODELS:
            raise ValueError(f"unknown tree model {kind!r}: choose one of {', '.join(TREE_MODELS)}")
        self.kind = kind
        shapes, fans = [], []
        for k in range(6):
            m = 64 >> k
            shape = {"WeightNet": (m,), "LocalNet": (m // 2, 2), "OracleNet": (2,), "FCNet": (m // 2, m)}[kind]
            shapes.append(shape)
            fans.append(m if kind in ("WeightNet", "FCNet") else 2)
        if generators is not None and len(generators) != replicas:
            raise ValueError(f"{len(generators)} generators for {replicas} replicas: pass one per replica")
        gens = generators or [None] * replicas

        def init(shape, fan):
            draw = torch.stack([torch.rand(*shape, generator=g) for g in gens])
            return nn.Parameter(((draw * 2 - 1) / math.sqrt(fan)).repeat(tile, *[1] * len(shape)))

        self.weights = nn.ParameterList(init(s, f) for s, f in zip(shapes, fans))
        if kind == "WeightNet":  # circulant index: W[j, i] = w[(i - 2j) mod m]
            for k in range(6):
                m = 64 >> k
                j, i = torch.arange(m // 2)[:, None], torch.arange(m)[None, :]
                self.register_buffer(f"circulant{k}", (i - 2 * j) % m, persistent=False)

    def layer_matrix(self, k: int) -> torch.Tensor:
        w = self.weights[k]
        return w[:, getattr(self, f"circulant{k}")] if self.kind == "WeightNet" else w

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (R, B, 64) -> (R, B)
        for k, w in enumerate(self.weights):
            if self.kind in ("WeightNet", "FCNet"):
                z = torch.einsum("rbi,rji->rbj", z, self.layer_matrix(k))
            else:
                pairs = z.unflatten(-1, (-1, 2))
                z = (pairs * (w[:, None] if self.kind == "LocalNet" else w[:, None, None])).sum(-1)
            if k < 5:
                z = torch.tanh(z)
        return z.squeeze(-1)

    def params_per_replica(self) -> int:
        return sum(w[0].numel() for w in self.weights)


TREE_SIZES = (64, 128, 256, 512, 1024, 2048, 4096)
TREE_EPOCHS = dict(zip(TREE_SIZES, (800, 700, 600, 500, 400, 300, 200)))
TREE_TRIALS = dict(zip(TREE_SIZES, (8, 7, 6, 5, 4, 3, 2)))  # the paper's; we run at least MIN_TRIALS
MIN_TRIALS = 5  # at every tree size: with 2 trials one unlucky draw decides a verdict


@dataclass(frozen=True)
class TreeSetting:
    noise: float
    constant: bool = False  # the original code's bug: one noise draw shared by every training target


def tree_data(n_train: int, trial: int, *, n_test: int = 1024):
    """theta, x_train, standard-normal noise draws, x_test for one (n_train, trial); every noise level reuses them."""
    g = torch.Generator().manual_seed(hash_seed("tree data", n_train, trial))
    theta = torch.rand(6, 2, generator=g) * 2
    x_train = torch.randn(n_train, 64, generator=g)
    xi = torch.randn(n_train, generator=g)
    x_test = torch.randn(n_test, 64, generator=g)
    return theta, x_train, xi, x_test


# ============================================================================================== image experiment

class ConvNet(nn.Sequential):
    def __init__(self, *, channels: int, size: int):
        flat = 16 * (((size - 4) // 2 - 4) // 2) ** 2
        super().__init__(nn.Conv2d(channels, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), *head(flat))


class FCNet(nn.Sequential):
    """Convolution stages replaced by dense layers of the same latent sizes as ConvNet's."""

    def __init__(self, *, channels: int, size: int):
        l1, l2 = 6 * ((size - 4) // 2) ** 2, 16 * (((size - 4) // 2 - 4) // 2) ** 2
        super().__init__(nn.Flatten(), nn.Linear(channels * size * size, l1), nn.ReLU(), nn.Linear(l1, l2), nn.ReLU(),
                         *head(l2))


class WeightNet(nn.Sequential):
    """Sharing without locality: full-size kernels with symmetric padding (the code's shapes; odd latent sizes)."""

    def __init__(self, *, channels: int, size: int):
        pad1 = {28: 6, 32: 7}[size]
        out1 = size + 2 * pad1 - size + 1                     # 13 (MNIST) or 15 (CIFAR)
        k2, pad2 = out1, 2
        super().__init__(nn.Conv2d(channels, 6, size, padding=pad1), nn.ReLU(), nn.Conv2d(6, 16, k2, padding=pad2),
                         nn.ReLU(), nn.Flatten(), *head(16 * (2 * pad2 + 1) ** 2))


class LocalNet(nn.Sequential):
    """Locality without sharing: two locally connected layers (kernel 6, stride 2, untied weights and biases)."""

    def __init__(self, *, channels: int, size: int):
        lc1 = LocallyConnected2d(channels, 6, in_size=size, kernel_size=6, stride=2)
        lc2 = LocallyConnected2d(6, 16, in_size=lc1.out_size, kernel_size=6, stride=2)
        super().__init__(lc1, nn.ReLU(), lc2, nn.ReLU(), nn.Flatten(),
                         *head(16 * lc2.out_size[0] * lc2.out_size[1]))


def head(flat: int) -> list[nn.Module]:
    return [nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)]


# parameter counts of spec section 2 (Table 1; the tests check every model against them)
SPEC_TREE_PARAMS = {"WeightNet": 126, "LocalNet": 126, "OracleNet": 12, "FCNet": 2730}
SPEC_IMAGE_PARAMS = {("mnist", "ConvNet"): 44_426, ("mnist", "FCNet"): 941_534, ("mnist", "WeightNet"): 80_084,
                     ("mnist", "LocalNet"): 129_374, ("cifar10", "ConvNet"): 62_006, ("cifar10", "FCNet"): 4_143_782,
                     ("cifar10", "WeightNet"): 99_188, ("cifar10", "LocalNet"): 274_118}
IMAGE_NETS = {"ConvNet": ConvNet, "FCNet": FCNet, "WeightNet": WeightNet, "LocalNet": LocalNet}
DATASETS = {"mnist": (1, 28), "cifar10": (3, 32)}
FGSM_EPS = {"mnist": 0.1, "cifar10": 0.01}  # in the normalised [-1, 1] space, as the code


def build_image_model(name: str, dataset: str) -> nn.Module:
    channels, size = DATASETS[dataset]
    return IMAGE_NETS[name](channels=channels, size=size)


SAMPLE_IMAGES = 8  # FGSM sample figure: the first 8 test images


def hash_seed(*parts) -> int:
    """A stable seed from a unit's identity (Python's own hash() of a string changes from process to process)."""
    return zlib.crc32(canonical(list(parts)).encode())
