"""The three benchmark networks in PyTorch, layer for layer as in _fs_nets.py.

Each is ``features`` (up to and including the flatten) then ``head``. MXNet's BatchNorm
defaults are kept: eps 1e-3, running-average momentum 0.9 (PyTorch's 0.1) and
``fix_gamma=True`` (gamma stays 1: not trained). Ceil-mode pooling is MXNet's ``'full'``.
"""

from __future__ import annotations

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, features: nn.Module, head: nn.Module):
        super().__init__()
        self.features, self.head = features, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _bn(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=1e-3, momentum=0.1)
    bn.weight.requires_grad_(False)  # fix_gamma=True
    return bn


def build(name: str) -> Net:
    if name == "mlp":
        return Net(nn.Flatten(), nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                                               nn.Linear(64, 10)))
    if name == "lenet":
        return Net(nn.Sequential(nn.Conv2d(1, 20, 5), nn.Tanh(), nn.MaxPool2d(2, 2),
                                 nn.Conv2d(20, 50, 5), nn.Tanh(), nn.MaxPool2d(2, 2), nn.Flatten()),
                   nn.Sequential(nn.Linear(800, 500), nn.Tanh(), nn.Linear(500, 10)))
    if name == "cnn":  # 28 -> conv 13 -> pool 7 -> conv 3 -> pool 2: 32 x 2 x 2 = 128 features
        return Net(nn.Sequential(nn.Conv2d(1, 32, 3, stride=2), _bn(32), nn.ReLU(), nn.MaxPool2d(2, 2, ceil_mode=True),
                                 nn.Conv2d(32, 32, 3, stride=2), _bn(32), nn.ReLU(), nn.MaxPool2d(2, 2, ceil_mode=True),
                                 nn.Flatten()),
                   nn.Linear(128, 10))
    raise ValueError(f"unknown network {name!r}")
