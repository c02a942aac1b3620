"""The MAX78000 cycle model against the vendor's own figures (max78000.md).

The MAX78002 uses the same cycle model (``devices/_max78002.py``), so the cycle figures are
checked on both chips; latency is each chip's cycles at its own CNN clock, and the board
timings are the MAX78000's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devices import MAX78000, get_device, layer_cycles
from search_spaces import Layer, Network

DATA = Path(__file__).parent / "data"


def one_layer(**kw: object) -> Network:
    layer = Layer.from_dict(kw)
    return Network(input=(layer.in_channels, *layer.in_dim), layers=(layer,))


# The synthesis tool's unit-test cycle counts (each includes the +1 start cycle).
UNIT_TESTS = [
    ("3x32x32 conv 3x3 pad 1 -> 64", dict(op="conv2d", in_channels=3, out_channels=64, in_dim=[32, 32], pad=1), 67_981),
    ("same, pad 0", dict(op="conv2d", in_channels=3, out_channels=64, in_dim=[32, 32], pad=0), 59_773),
    ("same, max pool 2/2, pad 0", dict(op="conv2d", in_channels=3, out_channels=64, in_dim=[32, 32], pad=0, pool=2, pool_stride=2), 13_885),
    ("64x20x20 pool 2/2 pad 2 -> 16", dict(op="conv2d", in_channels=64, out_channels=16, in_dim=[20, 20], pad=2, pool=2, pool_stride=2), 3_049),
    ("3x65x65 pool 16 stride 4 -> 32", dict(op="conv2d", in_channels=3, out_channels=32, in_dim=[65, 65], pad=1, pool=16, pool_stride=4), 49_010),
    ("128x8x8 pool 2 pad 1 -> 16", dict(op="conv2d", in_channels=128, out_channels=16, in_dim=[8, 8], pad=1, pool=2), 773),
    ("128x8x8 pad 1 -> 16", dict(op="conv2d", in_channels=128, out_channels=16, in_dim=[8, 8], pad=1), 2_485),
    ("128x8x8 pad 0 -> 16", dict(op="conv2d", in_channels=128, out_channels=16, in_dim=[8, 8], pad=0), 1_437),
    ("1x28x28 -> 8", dict(op="conv2d", in_channels=1, out_channels=8, in_dim=[28, 28], pad=1), 8_189),
    ("element-wise add 4x12x12", dict(op="passthrough", in_channels=4, out_channels=4, in_dim=[12, 12], operands=2), 721),
    ("ConvTranspose2d 3x7x9 -> 64", dict(op="convtranspose2d", in_channels=3, out_channels=64, in_dim=[7, 9], pad=1), 16_837),
    ("flatten 12x8x8 -> 10", dict(op="linear", in_channels=12, out_channels=10, in_dim=[8, 8], flatten=True), 770),
    ("1x1x1", dict(op="conv2d", in_channels=1, out_channels=1, in_dim=[1, 1], pad=1), 29),
]


CHIPS = ["max78000", "max78002"]


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("label,layer,cycles", UNIT_TESTS, ids=[t[0] for t in UNIT_TESTS])
def test_vendor_unit_test_cycles(label: str, layer: dict, cycles: int, chip: str) -> None:
    net = one_layer(**layer)
    report = get_device(chip).report(net)
    assert report.cycles == cycles
    assert report.layer_cycles == [cycles - 1]
    assert report.fits, report.violations


# name: (total cycles, per-layer cycles, weight bytes, measured us)
BOARD = {
    "mnist": (70_157, [48_956, 16_664, 4_012, 332, 192], 71_148, 1410),
    "old-cifar-10": (85_265, [63_884, 16_844, 4_012, 332, 192], 72_228, 1712),
    "old-cifar-100": (
        129_319,
        [18_828, 22_924, 22_924, 22_924, 6_604, 5_836, 11_980, 3_500, 3_308, 1_676, 4_136, 4_160, 306, 212],
        381_792,
        2593,
    ),
    "kws20_v3": (71_782, [27_136, 24_706, 8_452, 3_056, 2_016, 2_750, 3_006, 567, 92], 169_472, 1442),
}


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("name", sorted(BOARD))
def test_board_measured_networks(name: str, chip: str) -> None:
    total, per_layer, weight_bytes, measured_us = BOARD[name]
    net = Network.load(DATA / f"{name}.yaml")
    dev = get_device(chip)
    report = dev.report(net)
    assert report.layer_cycles == per_layer
    assert report.cycles == total == 1 + sum(per_layer)
    assert report.weight_bytes == weight_bytes
    assert report.layers == len(per_layer)
    if (name, chip) == ("kws20_v3", "max78002"):
        # the MAX78002 pads no Conv1d with more than 64 input channels (the vendor keeps a
        # separate ai87-kws20-v3-hwc.yaml with pad 0); layers 2, 6 and 7 have 96-100 and pad 1
        assert [v.split(":")[0] for v in report.violations] == ["layer 2", "layer 6", "layer 7"]
        assert all("padded conv1d" in v for v in report.violations)
    else:
        assert report.fits, report.violations
    clock = {"max78000": 50e6, "max78002": 200e6}[chip]
    assert report.clock_hz == clock
    assert report.latency_ms == pytest.approx(total / clock * 1e3)
    if chip == "max78000":  # measured on MAX78000 boards
        assert abs(report.latency_ms * 1e3 - measured_us) / measured_us < 0.01
    assert report.max_column <= dev.hardware.large_kernel_columns


def test_latency_scales_with_clock_and_matches_report() -> None:
    net = Network.load(DATA / "mnist.yaml")
    slow = MAX78000(clock_hz=25e6)
    assert slow.latency_ms(net) == pytest.approx(2 * MAX78000().latency_ms(net))
    assert slow.latency_ms(net) == pytest.approx(slow.report(net).latency_ms)


def test_streaming_takes_the_vendor_1_5x_guess() -> None:
    plain = Layer.from_dict(dict(op="conv2d", in_channels=3, out_channels=64, in_dim=[32, 32], pad=1))
    streamed = Layer.from_dict(dict(op="conv2d", in_channels=3, out_channels=64, in_dim=[32, 32], pad=1, streaming=True))
    assert layer_cycles(streamed) == (15 * layer_cycles(plain) + 9) // 10


def test_input_load_model() -> None:
    net = Network.load(DATA / "old-cifar-10.yaml")
    dev = MAX78000(cpu_clock_hz=100e6, input_cycles_per_word=5)
    report = dev.report(net)
    assert report.input_load_words == 32 * 32 * 1  # 3 channels -> one 32-bit word per pixel
    assert report.input_load_ms == pytest.approx(32 * 32 * 5 / 100e6 * 1e3)
    kws = dev.report(Network.load(DATA / "kws20_v3.yaml"))
    assert kws.input_load_words == 128 * 1 * 32
