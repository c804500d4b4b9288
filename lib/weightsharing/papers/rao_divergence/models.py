"""The CNN of the original code and its "free" twin (FCN): every convolution replaced by a locally connected layer.

CNN  Conv(3 -> 64, 5x5, /2) -> Conv(64 -> 128, 5x5, /2) -> Conv(128 -> 256, 3x3) -> Dense 1024 -> Dense 10, ReLU
     after every layer but the last; valid padding: 32 -> 14 -> 5 -> 3. 2 875 530 parameters.
FCN  the same, each Conv2d a LocallyConnected2d of the same geometry: 11 103 626 parameters.

Keras defaults, as the code: Glorot-uniform weights (fans C k k and F k k for convolutions), zero biases. The
dense layer reads the NCHW flattening (Keras reads NHWC: a fixed permutation of its inputs, irrelevant when trained
from scratch).
"""
from __future__ import annotations

import torch
from torch import nn

from ...layers import LocallyConnected2d

# (in, out, kernel, stride, input size) of the three feature layers
FEATURES = ((3, 64, 5, 2, 32), (64, 128, 5, 2, 14), (128, 256, 3, 1, 5))
PARAMS = {"CNN": 2_875_530, "FCN": 11_103_626}


class Net(nn.Module):
    def __init__(self, *, features: nn.ModuleList):
        super().__init__()
        self.features = features
        self.dense = nn.Linear(256 * 3 * 3, 1024)
        self.head = nn.Linear(1024, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.features:
            x = torch.relu(layer(x))
        return self.head(torch.relu(self.dense(x.flatten(1))))


def glorot_(module: nn.Module) -> None:
    """Keras' glorot_uniform and zero biases, for every weight (a locally connected layer's fans are its filters')."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, LocallyConnected2d):
            fan_in = m.weight.shape[-1]
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            bound = (6 / (fan_in + fan_out)) ** 0.5
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


def cnn() -> Net:
    net = Net(features=nn.ModuleList(nn.Conv2d(c, f, k, stride=s) for c, f, k, s, _ in FEATURES))
    glorot_(net)
    return net


def fcn() -> Net:
    net = Net(features=nn.ModuleList(LocallyConnected2d(c, f, in_size=n, kernel_size=k, stride=s)
                                     for c, f, k, s, n in FEATURES))
    glorot_(net)
    return net


def convert(net: Net) -> Net:
    """The FCN that computes exactly what the CNN `net` computes: every position holds the conv's kernel and bias."""
    free = Net(features=nn.ModuleList(LocallyConnected2d.tied_to(conv, in_size=n)
                                      for conv, (*_, n) in zip(net.features, FEATURES)))
    free.to(net.dense.weight.device)
    free.dense.load_state_dict(net.dense.state_dict())
    free.head.load_state_dict(net.head.state_dict())
    return free
