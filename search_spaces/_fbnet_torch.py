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

__all__ = [
    "FBNet", "build_fbnet", "STAGE_CHANNELS", "STAGE_DEPTHS", "STAGE_STRIDES", "ActFakeQuant", "Int8QatFBNet",
    "fold_bn_fbnet", "prepare_int8_qat", "calibrate_int8", "FBNET_BLOCKS", "SKIP_OP", "STEM_CHANNELS", "HEAD_CHANNELS",
    "layer_geometry", "INT8_WEIGHT_MAX",
]

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
FBNET_BLOCKS = _BLOCKS
"""(kernel, expansion, groups) of the block op indices 0..7."""
SKIP_OP = _SKIP
"""The op index of ``skip``."""


def layer_geometry() -> list[tuple[int, int, int]]:
    """(C_in, C_out, stride) of the 22 searchable layers."""
    out, cin = [], STEM_CHANNELS
    for cout, depth, stride in zip(STAGE_CHANNELS, STAGE_DEPTHS, STAGE_STRIDES):
        for j in range(depth):
            out.append((cin, cout, stride if j == 0 else 1))
            cin = cout
    return out


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

    def __init__(self, cin: int, cout: int, kernel: int, expand: int, groups: int, stride: int,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        mid = cin * expand
        parts: list[nn.Module] = [_conv_bn(cin, mid, 1, groups=groups)]
        if groups > 1:
            parts.append(_Shuffle(groups))
        parts.append(_conv_bn(mid, mid, kernel, stride=stride, groups=mid))
        parts.append(_conv_bn(mid, cout, 1, groups=groups, relu=False))
        self.body = nn.Sequential(*parts)
        self.residual = cin == cout and stride == 1
        if self.residual and zero_init_residual:  # Goyal et al., 2017: the block starts as the identity
            nn.init.zeros_(self.body[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y + x if self.residual else y


def _layer(op: int, cin: int, cout: int, stride: int, zero_init_residual: bool = False) -> nn.Module:
    if op == _SKIP:
        if stride == 1 and cin == cout:
            return nn.Identity()
        return _conv_bn(cin, cout, 1, stride=stride)
    k, e, g = _BLOCKS[op]
    return _MBBlock(cin, cout, k, e, g, stride, zero_init_residual)


class FBNet(nn.Module):
    """One FBNet architecture (see the module docstring).

    Args:
        ops: 22 op indices into ``FBNET_OPS``.
        num_classes: classifier outputs (100 for CIFAR-100).
        in_channels: input channels (3 for CIFAR).
        quantize: int8 weights and 8-bit fake-quantised activations (see the module docstring).
        zero_init_residual: the last BatchNorm scale of every residual block starts at 0, so each
            block starts as the identity (Goyal et al., 2017; ``torchvision``'s option of the same
            name). Training from scratch uses it (``FBNetSpace.build_for_training``): with PyTorch's
            default, deep networks trained for 3 epochs on 8x8 digits fell well behind shallow
            ones (benchmarks/results/supernet_fbnet_digits.md as of commit 40fa590); with it, the
            gap mostly closed (the same file now).
            NASWOT scores networks at PyTorch's default.
    """

    input_size: tuple[int, int, int] = (3, 32, 32)

    def __init__(self, ops: Sequence[int], num_classes: int = 100, in_channels: int = 3,
                 quantize: bool = False, zero_init_residual: bool = False) -> None:
        super().__init__()
        ops = [int(o) for o in ops]
        if len(ops) != sum(STAGE_DEPTHS) or not all(0 <= o <= _SKIP for o in ops):
            raise ValueError(f"FBNet needs {sum(STAGE_DEPTHS)} op indices in 0..{_SKIP}, got {ops}")
        self.stem = _conv_bn(in_channels, STEM_CHANNELS, 3)
        layers: list[nn.Module] = []
        for op, (cin, cout, stride) in zip(ops, layer_geometry(), strict=True):
            layers.append(_layer(op, cin, cout, stride, zero_init_residual))
            if quantize:
                layers[-1] = nn.Sequential(layers[-1], _FakeQuant8())
        self.layers = nn.Sequential(*layers)
        self.head = _conv_bn(STAGE_CHANNELS[-1], HEAD_CHANNELS, 1)
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


def build_fbnet(ops: Sequence[int], num_classes: int = 100, in_channels: int = 3, quantize: bool = False,
                zero_init_residual: bool = False) -> FBNet:
    """An :class:`FBNet` for 22 op indices."""
    return FBNet(ops, num_classes=num_classes, in_channels=in_channels, quantize=quantize,
                 zero_init_residual=zero_init_residual)


# ---------------------------------------------------------------------- int8 QAT (phones)
# Quantisation-aware training for CPUs: BatchNorm folded into the convs, weights per output channel
# on the 7-bit range [-63, 63] stored as int8 (symmetric, scale max|w_c| / 63; INT8_WEIGHT_MAX says
# why) and int8 activations per tensor (affine, range from an exponential moving average of the
# batch min/max while training, frozen in eval). Both use torch's fake_quantize ops
# (straight-through gradients inside the range), which the legacy ONNX exporter writes as
# QuantizeLinear/DequantizeLinear pairs (8-bit only; toolchain.md); nas._export then stores the
# weight integers themselves as int8 initializers.

INT8_WEIGHT_MAX = 63
"""Largest |integer| of a phone weight: the 7-bit range [-63, 63], stored as int8 per output channel.

Every CPU then computes the same integers. On x86 without VNNI (AVX2, AVX-512 without VNNI),
onnxruntime's integer convolutions and GEMMs (MLAS u8 x s8; int8 activations are first shifted to
uint8 by +128, so the kernel reads activations in [0, 255]) multiply with VPMADDUBSW, which adds
each pair of neighbouring products in int16 and saturates. With |w| <= 63 a pair is at most
2 x 255 x 63 = 32,130 < 32,767, so no sum saturates and AVX2, AVX-512, VNNI and ARM agree; with
full-range int8 weights (|w| up to 127) they do not (onnxruntime's documentation, "quantization
on x86: saturation", advises this ``reduce_range``). Weights lose one bit of resolution; the
measured cost is in benchmarks/results/qat_fbnet_weight_bits.md.
"""

@torch.no_grad()
def fold_bn_fbnet(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that follows a conv in a ``Sequential`` into that conv (in place).

    The conv gets a bias ``(0 - mean) * g / sqrt(var + eps) + beta`` and weights scaled by
    ``g / sqrt(var + eps)``; the BatchNorm is replaced by an identity. Returns ``model``.
    """
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
                conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
                seq._modules[b] = nn.Identity()
    return model


class ActFakeQuant(nn.Module):
    """int8 per-tensor affine fake quantisation of activations (range by EMA of min/max)."""

    def __init__(self, momentum: float = 0.1) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, zero point) of the int8 grid covering [min(lo, 0), max(hi, 0)]."""
        lo, hi = torch.clamp(self.lo, max=0.0), torch.clamp(self.hi, min=0.0)
        scale = torch.clamp((hi - lo) / 255.0, min=1e-8).reshape(1).to(torch.float32)
        zp = torch.clamp(torch.round(-128.0 - lo / scale), -128, 127).to(torch.int32)
        return scale, zp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                lo, hi = x.min(), x.max()
                if not bool(self.seen):
                    self.lo.copy_(lo)
                    self.hi.copy_(hi)
                    self.seen.fill_(True)
                else:
                    self.lo.mul_(1 - self.momentum).add_(self.momentum * lo)
                    self.hi.mul_(1 - self.momentum).add_(self.momentum * hi)
            scale, zp = self.qparams()
            return torch.fake_quantize_per_tensor_affine(x, scale, zp, -128, 127)
        scale, zp = self.qparams()  # frozen in eval: plain numbers, constants in an ONNX export
        return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zp), -128, 127)


class _WeightFQ:
    """Per-output-channel symmetric weights on [-INT8_WEIGHT_MAX, INT8_WEIGHT_MAX] (stored as
    int8): scale ``max|w_c| / INT8_WEIGHT_MAX``, recomputed every training step and frozen
    (buffers) in eval so that an export sees constants.

    In eval, once :meth:`Int8QatFBNet.train` has set ``in_scale`` (the scale of the int8
    activation the layer reads), the bias is rounded to int32 at scale ``in_scale * w_scale``,
    as every int8 runtime stores it (onnxruntime quantises a float bias this way when it loads a
    QDQ model); training keeps the float bias.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    w_scale: torch.Tensor
    w_zp: torch.Tensor
    in_scale: torch.Tensor
    training: bool

    def _init_fq(self) -> None:
        n = self.weight.shape[0]
        self.register_buffer("w_scale", torch.ones(n))  # type: ignore[attr-defined]
        self.register_buffer("w_zp", torch.zeros(n, dtype=torch.int32))  # type: ignore[attr-defined]
        self.register_buffer("in_scale", torch.zeros(()))  # type: ignore[attr-defined]  # 0: float bias

    @torch.no_grad()
    def refresh_scale(self) -> None:
        w = self.weight
        self.w_scale.copy_((w.abs().reshape(w.shape[0], -1).amax(1) / float(INT8_WEIGHT_MAX)).clamp_min(1e-8))

    def qweight(self) -> torch.Tensor:
        if self.training:
            self.refresh_scale()
        # The legacy ONNX exporter writes only (-128, 127); nas._export replaces that QuantizeLinear
        # by int_weight(), the integers of this range.
        lo, hi = (-128, 127) if torch.onnx.is_in_onnx_export() else (-INT8_WEIGHT_MAX, INT8_WEIGHT_MAX)
        return torch.fake_quantize_per_channel_affine(self.weight, self.w_scale, self.w_zp, 0, lo, hi)

    @torch.no_grad()
    def int_weight(self) -> torch.Tensor:
        """The weight integers the forward pass uses (int8, within +-INT8_WEIGHT_MAX)."""
        q = self.qweight() / self.w_scale.reshape((-1,) + (1,) * (self.weight.dim() - 1))
        return torch.round(q).to(torch.int8)

    def qbias(self) -> torch.Tensor | None:
        if self.bias is None or self.training or not bool(self.in_scale > 0):
            return self.bias
        scale = self.in_scale * self.w_scale
        return torch.clamp(torch.round(self.bias / scale), -(2**31), 2**31 - 1) * scale


class QConv2d(nn.Conv2d, _WeightFQ):
    """A conv whose weights are fake-quantised to int8 per output channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.qweight(), self.qbias())


class QLinear(nn.Linear, _WeightFQ):
    """A linear layer whose weights are fake-quantised to int8 per output channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.qweight(), self.qbias())


def _swap(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if type(child) is nn.Conv2d:
            q = QConv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                        child.dilation, child.groups, child.bias is not None)
            q._init_fq()
            q.load_state_dict(child.state_dict(), strict=False)
            q.refresh_scale()
            setattr(module, name, q)
        elif type(child) is nn.Linear:
            q = QLinear(child.in_features, child.out_features, child.bias is not None)
            q._init_fq()
            q.load_state_dict(child.state_dict(), strict=False)
            q.refresh_scale()
            setattr(module, name, q)
        else:
            _swap(child)


class Int8QatFBNet(nn.Module):
    """An FBNet prepared for int8 QAT (see :func:`prepare_int8_qat`)."""

    def __init__(self, net: FBNet) -> None:
        super().__init__()
        self.input_fq = ActFakeQuant()
        self.net = net
        self.pool_fq = ActFakeQuant()

    def train(self, mode: bool = True) -> Int8QatFBNet:
        """Switch mode; leaving training freezes the weight scales at the final weights and
        gives every layer the scale of the int8 activation it reads (its int32 bias scale)."""
        super().train(mode)
        if not mode:
            for m in self.modules():
                if isinstance(m, _WeightFQ):
                    m.refresh_scale()
            self._bind_input_scales()
        return self

    @torch.no_grad()
    def _bind_input_scales(self) -> None:
        # The network is a chain (residual sums aside), so a layer reads the output of the
        # quantiser that runs last before it; channel shuffles only permute that tensor.
        last = self.input_fq
        n = self.net
        for m in [*n.stem.modules(), *n.layers.modules(), *n.head.modules()]:
            if isinstance(m, ActFakeQuant):
                last = m
            elif isinstance(m, _WeightFQ):
                m.in_scale.copy_(last.qparams()[0].reshape(()))
        n.classifier.in_scale.copy_(self.pool_fq.qparams()[0].reshape(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.head(n.layers(n.stem(self.input_fq(x))))
        return n.classifier(self.pool_fq(torch.flatten(n.pool(x), 1)))


def prepare_int8_qat(model: FBNet) -> Int8QatFBNet:
    """Fold BN, make weights int8 per channel and insert int8 activation fake-quantisers.

    Activations are quantised at the input, after every conv (+ReLU) group, after every
    residual sum and after the global pooling, once each: a layer whose output is already
    quantised gets no second quantiser, which onnxruntime would fold away (Q-DQ-Q-DQ pairs
    are merged at its basic optimisation level) and so compute differently. The logits stay
    float (what an int8 runtime dequantises at the end). Modifies and wraps ``model`` (a float
    :class:`FBNet`).
    """
    if getattr(model, "quantize", False):
        raise ValueError("prepare_int8_qat needs a float FBNet (quantize=False)")
    fold_bn_fbnet(model)
    _swap(model)
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        if any(isinstance(c, nn.Conv2d) for c in seq.children()):
            seq.append(ActFakeQuant())
    for i, layer in enumerate(model.layers):
        if isinstance(layer, _MBBlock) and layer.residual:  # the sum is a new tensor to quantise
            model.layers[i] = nn.Sequential(layer, ActFakeQuant())
    return Int8QatFBNet(model)


@torch.no_grad()
def calibrate_int8(model: Int8QatFBNet, x: torch.Tensor, batch_size: int = 32, batches: int = 8) -> Int8QatFBNet:
    """Set the activation ranges of a freshly prepared int8 model from its first ``batches``
    mini-batches of ``x`` (train-mode forward, no gradients), then freeze them (eval mode)."""
    model.train()
    for s in range(0, min(len(x), batches * batch_size), batch_size):
        model(x[s : s + batch_size])
    return model.eval()
