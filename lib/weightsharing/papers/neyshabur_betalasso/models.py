"""The shallow family of Neyshabur (2020), Fig. 1 and Table 4: three layers, the first of which varies.

S-CONV  Conv2d(3 -> a, 9x9, stride 2, padding 4)                 weights shared and local
S-LOCAL LocallyConnected2d, same geometry, untied at 256 positions local only
S-FC    Linear(3072 -> 256a)                                      neither
3-FC    Linear(3072 -> h) -> Linear(h -> h) -> Linear(h -> c), h matched to S-FC's parameter count

Every layer but the last is followed by BatchNorm and ReLU and has no bias (ours: BN makes it redundant); the last
layer has one. Layer 2 is Linear(256a -> 24a) and layer 3 Linear(24a -> c) in the three S- models.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ...layers import LocallyConnected2d

MODELS = ("S-CONV", "S-LOCAL", "S-FC", "3-FC")
IMAGE = (3, 32, 32)


class Shallow(nn.Module):
    """first -> bn1 -> ReLU -> flatten -> second -> bn2 -> ReLU -> head. `first` sees images (N, 3, 32, 32) when
    `flat_input` is False, else their (C, H, W)-ordered flattening, so that a row of an S-FC first-layer weight
    reshapes to a 3 x 32 x 32 filter."""

    def __init__(self, *, first: nn.Module, bn1: nn.Module, second: nn.Module, bn2: nn.Module, head: nn.Module,
                 flat_input: bool):
        super().__init__()
        self.first, self.bn1, self.second, self.bn2, self.head = first, bn1, second, bn2, head
        self.flat_input = flat_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.first(x.flatten(1) if self.flat_input else x))).flatten(1)
        return self.head(torch.relu(self.bn2(self.second(h))))

    def weight_matrices(self) -> list[nn.Parameter]:
        """The three weight tensors beta-lasso acts on (layer 1, 2, 3); everything else is BatchNorm or a bias."""
        return [self.first.weight, self.second.weight, self.head.weight]


def matched_width(target: int, classes: int) -> int:
    """The 3-FC hidden width h whose count h^2 + (3076 + c) h + c is nearest `target` (S-FC's count)."""
    b = 3076 + classes
    h = int((-b + math.sqrt(b * b + 4 * (target - classes))) / 2)
    return min((h, h + 1), key=lambda w: abs(three_fc_params(w, classes) - target))


def three_fc_params(h: int, classes: int) -> int:
    return h * h + (3076 + classes) * h + classes


def build(name: str, *, alpha: int, classes: int) -> Shallow:
    """One model of the family at base width `alpha`. Keyword-only; build under `torch.device("meta")` to count
    the parameters of a model too large to allocate."""
    c, _, s = IMAGE
    positions = (s // 2) ** 2  # 16 x 16 outputs of the stride-2 first layer
    if name == "3-FC":
        h = matched_width(s_fc_params(alpha, classes), classes)
        return Shallow(first=nn.Linear(c * s * s, h, bias=False), bn1=nn.BatchNorm1d(h),
                       second=nn.Linear(h, h, bias=False), bn2=nn.BatchNorm1d(h), head=nn.Linear(h, classes),
                       flat_input=True)
    if name == "S-CONV":
        first, bn1 = nn.Conv2d(c, alpha, 9, stride=2, padding=4, bias=False), nn.BatchNorm2d(alpha)
    elif name == "S-LOCAL":
        # never Conv2d(groups=...): that still shares each filter across positions (the reproduction's S_local)
        first = LocallyConnected2d(c, alpha, in_size=s, kernel_size=9, stride=2, padding=4, bias=False)
        bn1 = nn.BatchNorm2d(alpha)
    elif name == "S-FC":
        first, bn1 = nn.Linear(c * s * s, positions * alpha, bias=False), nn.BatchNorm1d(positions * alpha)
    else:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return Shallow(first=first, bn1=bn1, second=nn.Linear(positions * alpha, 24 * alpha, bias=False),
                   bn2=nn.BatchNorm1d(24 * alpha), head=nn.Linear(24 * alpha, classes), flat_input=name == "S-FC")


def s_fc_params(alpha: int, classes: int) -> int:
    return 6144 * alpha ** 2 + 786_992 * alpha + 24 * alpha * classes + classes


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer1_reference_counts(alpha: int) -> dict[str, int]:
    """Fig. 3's reference lines, from the architectures: first-layer weights of S-CONV, S-LOCAL and dense S-FC."""
    return {"S-CONV": 243 * alpha, "S-LOCAL": 62_208 * alpha, "S-FC dense": 786_432 * alpha}


def dense_counts(alpha: int, classes: int) -> tuple[int, int, int]:
    """Weights of S-FC's three matrices: 786 432a, 6144a^2, 24ac."""
    return 786_432 * alpha, 6144 * alpha ** 2, 24 * alpha * classes


def first_layer_filters(model: Shallow) -> torch.Tensor:
    """The first layer as (filters, 3, 32, 32) images of what each unit sees: S-FC rows as they are, S-LOCAL and
    S-CONV filters placed at their position (zero elsewhere), as the masked dense layout holds them."""
    first = model.first
    if isinstance(first, nn.Linear):
        w = first.weight
    elif isinstance(first, LocallyConnected2d):
        w = first.dense_weight()
    else:  # a convolution is a locally connected layer with tied weights
        w = LocallyConnected2d.tied_to(first, in_size=IMAGE[1:]).dense_weight()
    return w.detach().reshape(-1, *IMAGE)
