"""Torch modules of the NAS-Bench-201 CIFAR network (C=16, N=5).

Network: 3x3 conv stem (16 channels) + BN; three stages of 5 cells with 16, 32, 64 channels on
32x32, 16x16 and 8x8 maps, joined by residual reduction blocks (ReLU-conv3x3/2-BN,
ReLU-conv3x3-BN, shortcut 2x2 average pool + 1x1 conv); BN, ReLU, global average pooling and a
linear classifier. A cell has 4 nodes; node ``j`` sums ``op(node i)`` over its edges ``i < j``;
ops: ``none`` (no edge), ``skip_connect`` (identity), ``nor_conv_1x1`` / ``nor_conv_3x3``
(ReLU-conv-BN), ``avg_pool_3x3`` (stride 1, padding 1, padding excluded from the average). A
node with only ``none`` inputs is zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["NasBench201Network", "build_nasbench201"]

_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_CHANNELS = (16, 32, 64)
_CELLS = 5


def _relu_conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
    )


def _op(index: int, c: int) -> nn.Module | None:
    if index == 0:
        return None
    if index == 1:
        return nn.Identity()
    if index == 2:
        return _relu_conv_bn(c, c, 1)
    if index == 3:
        return _relu_conv_bn(c, c, 3)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class _Cell(nn.Module):
    def __init__(self, ops: Sequence[int], c: int) -> None:
        super().__init__()
        mods = [_op(o, c) for o in ops]
        self.live = [i for i, m in enumerate(mods) if m is not None]
        self.edges = nn.ModuleList([m if m is not None else nn.Identity() for m in mods])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            acc: torch.Tensor | None = None
            for e, (to, src) in enumerate(_EDGES):
                if to == j and e in self.live:
                    y = self.edges[e](nodes[src])
                    acc = y if acc is None else acc + y
            nodes.append(acc if acc is not None else torch.zeros_like(x))
        return nodes[3]


class _Reduction(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(cin, cout, 3, stride=2)
        self.conv_b = _relu_conv_bn(cout, cout, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NasBench201Network(nn.Module):
    """The NAS-Bench-201 CIFAR network of one cell (see the module docstring).

    Args:
        ops: the 6 op indices of the cell, in string order.
        num_classes: classifier outputs (10 for CIFAR-10).
    """

    input_size: tuple[int, int, int] = (3, 32, 32)

    def __init__(self, ops: Sequence[int], num_classes: int = 10) -> None:
        super().__init__()
        ops = [int(o) for o in ops]
        if len(ops) != 6 or not all(0 <= o <= 4 for o in ops):
            raise ValueError(f"a NAS-Bench-201 cell needs 6 op indices in 0..4, got {ops}")
        self.stem = nn.Sequential(nn.Conv2d(3, _CHANNELS[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(_CHANNELS[0]))
        blocks: list[nn.Module] = []
        for s, c in enumerate(_CHANNELS):
            if s:
                blocks.append(_Reduction(_CHANNELS[s - 1], c))
            blocks.extend(_Cell(ops, c) for _ in range(_CELLS))
        self.cells = nn.Sequential(*blocks)
        self.last = nn.Sequential(nn.BatchNorm2d(_CHANNELS[-1]), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(_CHANNELS[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.last(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def build_nasbench201(ops: Sequence[int], num_classes: int = 10) -> NasBench201Network:
    """A :class:`NasBench201Network` for 6 op indices."""
    return NasBench201Network(ops, num_classes=num_classes)
