"""Torch modules of the FBNet space as HW-NAS-Bench defines it for CIFAR-100.

Macro-architecture (HW-NAS-Bench's FBNet model, CIFAR setting): input 3x32x32; stem 3x3 conv,
16 channels, stride 1, BN, ReLU; 22 searchable layers in stages of 1, 4, 4, 4, 4, 4, 1 with
16, 24, 32, 64, 112, 184, 352 output channels and strides 1, 1, 2, 2, 1, 2, 1 (the stride on a
stage's first layer); a 1x1 conv to 1504 channels, BN, ReLU; global average pooling; a linear
classifier. The shapes agree with ``_fbnet._layer_shapes``.

Candidate blocks ``k{3,5}_e{1,3,6}[_g2]``: 1x1 conv (``groups=g``) to ``e * C_in`` channels, BN,
ReLU, a channel shuffle when ``g > 1``, a ``k x k`` depthwise conv carrying the stride, BN, ReLU,
1x1 conv (``groups=g``) to ``C_out``, BN, and a residual add when the shape is unchanged.
``skip`` is the identity, or a 1x1 conv + BN + ReLU when the stride or the width changes.

``quantize=True`` gives the int8 forward pass the search scores: every conv/linear weight is
rounded once to a symmetric per-output-channel int8 grid, and the output of the stem, of every
layer and of the head is fake-quantised to 8 bits (per-tensor, symmetric, scale = max|x| / 127).
``in_channels`` and ``num_classes`` adapt the stem and the classifier to other data (any input
size of at least 8x8 works: the pooling is adaptive).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FBNet", "build_fbnet", "STAGE_CHANNELS", "STAGE_DEPTHS", "STAGE_STRIDES"]

STAGE_CHANNELS: tuple[int, ...] = (16, 24, 32, 64, 112, 184, 352)
STAGE_DEPTHS: tuple[int, ...] = (1, 4, 4, 4, 4, 4, 1)
STAGE_STRIDES: tuple[int, ...] = (1, 1, 2, 2, 1, 2, 1)
STEM_CHANNELS = 16
HEAD_CHANNELS = 1504
# (kernel, expansion, groups) of op indices 0..7 (8 is skip), the order of FBNET_OPS.
_BLOCKS: tuple[tuple[int, int, int], ...] = (
    (3, 1, 1), (3, 1, 2), (3, 3, 1), (3, 6, 1), (5, 1, 1), (5, 1, 2), (5, 3, 1), (5, 6, 1),
)
_SKIP = 8


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _FakeQuant8(nn.Module):
    """Symmetric per-tensor 8-bit fake quantisation of activations (scale from the batch max)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.detach().abs().amax().clamp_min(1e-8) / 127.0
        return torch.round(x / scale).clamp(-128, 127) * scale


@torch.no_grad()
def quantize_weights_int8(model: nn.Module) -> None:
    """Round every conv/linear weight to a symmetric per-output-channel int8 grid (in place)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight
            scale = w.abs().reshape(w.shape[0], -1).amax(1).clamp_min(1e-12) / 127.0
            shape = (-1,) + (1,) * (w.dim() - 1)
            w.copy_(torch.round(w / scale.reshape(shape)).clamp(-127, 127) * scale.reshape(shape))


class _Shuffle(nn.Module):
    """Channel shuffle over ``groups`` groups."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class _MBBlock(nn.Module):
    """Inverted-bottleneck block: 1x1 expand, depthwise k x k, 1x1 project (+ residual)."""

    def __init__(self, cin: int, cout: int, kernel: int, expand: int, groups: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        parts: list[nn.Module] = [_conv_bn(cin, mid, 1, groups=groups)]
        if groups > 1:
            parts.append(_Shuffle(groups))
        parts.append(_conv_bn(mid, mid, kernel, stride=stride, groups=mid))
        parts.append(_conv_bn(mid, cout, 1, groups=groups, relu=False))
        self.body = nn.Sequential(*parts)
        self.residual = cin == cout and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y + x if self.residual else y


def _layer(op: int, cin: int, cout: int, stride: int) -> nn.Module:
    if op == _SKIP:
        if stride == 1 and cin == cout:
            return nn.Identity()
        return _conv_bn(cin, cout, 1, stride=stride)
    k, e, g = _BLOCKS[op]
    return _MBBlock(cin, cout, k, e, g, stride)


class FBNet(nn.Module):
    """One FBNet architecture (see the module docstring).

    Args:
        ops: 22 op indices into ``FBNET_OPS``.
        num_classes: classifier outputs (100 for CIFAR-100).
        in_channels: input channels (3 for CIFAR).
        quantize: int8 weights and 8-bit fake-quantised activations (see the module docstring).
    """

    input_size: tuple[int, int, int] = (3, 32, 32)

    def __init__(self, ops: Sequence[int], num_classes: int = 100, in_channels: int = 3,
                 quantize: bool = False) -> None:
        super().__init__()
        ops = [int(o) for o in ops]
        if len(ops) != sum(STAGE_DEPTHS) or not all(0 <= o <= _SKIP for o in ops):
            raise ValueError(f"FBNet needs {sum(STAGE_DEPTHS)} op indices in 0..{_SKIP}, got {ops}")
        self.stem = _conv_bn(in_channels, STEM_CHANNELS, 3)
        layers: list[nn.Module] = []
        cin, i = STEM_CHANNELS, 0
        for cout, depth, stride in zip(STAGE_CHANNELS, STAGE_DEPTHS, STAGE_STRIDES):
            for j in range(depth):
                layers.append(_layer(ops[i], cin, cout, stride if j == 0 else 1))
                if quantize:
                    layers[-1] = nn.Sequential(layers[-1], _FakeQuant8())
                cin, i = cout, i + 1
        self.layers = nn.Sequential(*layers)
        self.head = _conv_bn(cin, HEAD_CHANNELS, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)
        self.quantize = bool(quantize)
        if quantize:
            self.stem.append(_FakeQuant8())
            self.head.append(_FakeQuant8())
            quantize_weights_int8(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.layers(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def build_fbnet(ops: Sequence[int], num_classes: int = 100, in_channels: int = 3, quantize: bool = False) -> FBNet:
    """An :class:`FBNet` for 22 op indices."""
    return FBNet(ops, num_classes=num_classes, in_channels=in_channels, quantize=quantize)
