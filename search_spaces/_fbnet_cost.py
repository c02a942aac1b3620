"""Analytic int8 size and peak activation memory of an FBNet architecture (no torch needed).

The network is the one of ``_fbnet_torch`` (stem, 22 layers, 1x1 head to 1504 channels, global
pooling, linear classifier), for ``in_channels x input_size x input_size`` inputs.

- ``weights``: conv and linear weights; ``biases``: one per conv output channel (BatchNorm folded
  into the conv, as an int8 deployment does) and the classifier's. ``size_bytes`` =
  ``weights x 1 B (int8) + biases x 4 B (int32)``.
- ``peak_ram_bytes``: the largest memory live during one inference, one image, int8 activations
  (1 B per value), taken over every operation as input + output, plus the block input while a
  residual block keeps it for its final add; an identity ``skip`` costs nothing. Weights and the
  runtime's own scratch buffers are not included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FBNetCost", "fbnet_cost", "SIZE_NOTE", "RAM_NOTE"]

SIZE_NOTE = "int8 weights x 1 B + int32 biases x 4 B (BatchNorm folded into the convs)"
RAM_NOTE = ("peak over operations of int8 input + output (+ the block input a residual keeps), "
            "one image, 1 B per value; weights and runtime scratch excluded")


@dataclass(frozen=True)
class FBNetCost:
    """Analytic figures of one architecture (see the module docstring)."""

    weights: int
    biases: int
    size_bytes: int
    peak_ram_bytes: int
    macs: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _out(side: int, stride: int) -> int:
    return (side + stride - 1) // stride


def fbnet_cost(ops: Any, *, in_channels: int = 3, input_size: int = 32, num_classes: int = 100) -> FBNetCost:
    """Weights, biases, int8 size, peak activation bytes and MACs of 22 FBNet op indices."""
    from ._fbnet_torch import (
        _BLOCKS,
        _SKIP,
        HEAD_CHANNELS,
        STAGE_CHANNELS,
        STAGE_DEPTHS,
        STAGE_STRIDES,
        STEM_CHANNELS,
    )

    ops = [int(o) for o in ops]
    side = int(input_size)
    weights = biases = macs = 0
    peak = 0

    def step(live: int) -> None:
        nonlocal peak
        peak = max(peak, live)

    # stem: 3x3 conv, stride 1
    weights += in_channels * STEM_CHANNELS * 9
    biases += STEM_CHANNELS
    macs += side * side * in_channels * STEM_CHANNELS * 9
    step(in_channels * side * side + STEM_CHANNELS * side * side)
    cin, i = STEM_CHANNELS, 0
    for cout, depth, stage_stride in zip(STAGE_CHANNELS, STAGE_DEPTHS, STAGE_STRIDES):
        for j in range(depth):
            stride = stage_stride if j == 0 else 1
            op = ops[i]
            i += 1
            so = _out(side, stride)
            x = cin * side * side
            if op == _SKIP:
                if stride != 1 or cin != cout:
                    weights += cin * cout
                    biases += cout
                    macs += so * so * cin * cout
                    step(x + cout * so * so)
            else:
                k, e, g = _BLOCKS[op]
                mid = cin * e
                res = x if (cin == cout and stride == 1) else 0
                weights += cin * mid // g + mid * k * k + mid * cout // g
                biases += mid + mid + cout
                macs += side * side * cin * mid // g + so * so * mid * k * k + so * so * mid * cout // g
                step(x + mid * side * side)                      # 1x1 expand (x kept as input)
                if g > 1:
                    step(2 * mid * side * side + res)            # channel shuffle (a copy)
                step(mid * side * side + mid * so * so + res)     # depthwise k x k
                step(mid * so * so + cout * so * so + res)        # 1x1 project (+ x for the add)
            cin, side = cout, so
    weights += cin * HEAD_CHANNELS
    biases += HEAD_CHANNELS
    macs += side * side * cin * HEAD_CHANNELS
    step(cin * side * side + HEAD_CHANNELS * side * side)
    step(HEAD_CHANNELS * side * side + HEAD_CHANNELS)            # global average pooling
    weights += HEAD_CHANNELS * num_classes
    biases += num_classes
    macs += HEAD_CHANNELS * num_classes
    step(HEAD_CHANNELS + num_classes)
    return FBNetCost(weights=weights, biases=biases, size_bytes=weights + 4 * biases, peak_ram_bytes=peak,
                     macs=macs)
