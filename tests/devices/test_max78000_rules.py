"""Every MAX78000 rule, broken on purpose: the violation names the layer and the limit."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from devices import MAX78000, Ai8xAccelerator, Placement, kernel_columns
from search_spaces import Layer, Network

DATA = Path(__file__).parent / "data"


def net_of(*layers: dict[str, Any]) -> Network:
    built = tuple(Layer.from_dict(d, i) for i, d in enumerate(layers))
    first = built[0]
    return Network(input=(first.in_channels, *first.in_dim), layers=built)


def conv(cin: int, cout: int, dim: int | list[int], **kw: Any) -> dict[str, Any]:
    d = [dim, dim] if isinstance(dim, int) else dim
    return {"op": "conv2d", "in_channels": cin, "out_channels": cout, "in_dim": d, **kw}


def check(net: Network, layer: int, *fragments: str, device: Ai8xAccelerator | None = None) -> list[str]:
    report = (device or MAX78000()).report(net)
    assert not report.fits
    hits = [v for v in report.violations if v.startswith(f"layer {layer}") and all(f in v for f in fragments)]
    assert hits, report.violations
    return report.violations


def tail(cin: int, dim: int) -> dict[str, Any]:
    """A valid 3x3 layer to put after the layer under test (so the rule names a middle layer)."""
    return conv(cin, 8, dim)


# (id, network, layer index, fragments the sentence must contain)
CASES: list[tuple[str, Network, int, tuple[str, ...]]] = [
    ("conv2d 5x5 kernel", net_of(conv(3, 8, 16), conv(8, 8, 16, kernel=5, pad=2)), 1, ("kernel 5x5", "1x1 or 3x3")),
    ("conv2d pad on 1x1", net_of(conv(3, 8, 16), conv(8, 8, 16, kernel=1, pad=1)), 1, ("pad 1,1", "1x1 kernel")),
    ("conv2d pad 3", net_of(conv(3, 8, 16), conv(8, 8, 16, pad=3)), 1, ("pad 3,3",)),
    ("conv1d kernel 10", net_of({"op": "conv1d", "in_channels": 4, "out_channels": 4, "in_dim": [64, 1], "kernel": [10, 1], "pad": [0, 0]}), 0, ("conv1d kernel 10x1", "1..9")),
    ("conv1d pad 3", net_of({"op": "conv1d", "in_channels": 4, "out_channels": 4, "in_dim": [64, 1], "kernel": [3, 1], "pad": [3, 0]}), 0, ("conv1d pad 3,0",)),
    ("conv1d 2-D input", net_of({"op": "conv1d", "in_channels": 4, "out_channels": 4, "in_dim": [64, 2], "kernel": [3, 1], "pad": [1, 0]}), 0, ("conv1d input",)),
    ("convtranspose 1x1", net_of(conv(3, 8, 8), {"op": "convtranspose2d", "in_channels": 8, "out_channels": 8, "in_dim": [8, 8], "kernel": 1, "pad": 0}), 1, ("convtranspose2d kernel 1x1",)),
    ("linear without flatten", net_of(conv(3, 8, 4), {"op": "linear", "in_channels": 8, "out_channels": 10, "in_dim": [4, 4]}), 1, ("flatten: true",)),
    ("passthrough changes channels", net_of(conv(3, 8, 8), {"op": "passthrough", "in_channels": 8, "out_channels": 16, "in_dim": [8, 8]}), 1, ("keep its channels",)),
    ("input channels", net_of(conv(3, 8, 4), conv(1100, 8, 4)), 1, ("1100 input channels", "1024")),
    ("output channels", net_of(conv(3, 8, 4), conv(8, 1100, 4, kernel=1, pad=0)), 1, ("1100 output channels", "1024")),
    ("rows", net_of({"op": "conv1d", "in_channels": 1, "out_channels": 4, "in_dim": [1100, 1], "kernel": [3, 1], "pad": [1, 0]}), 0, ("1100x1", "1023 rows")),
    ("pool size", net_of(conv(3, 8, 40), conv(8, 8, 40, pool=17, pool_stride=2)), 1, ("pool 17x17", "1..16")),
    ("pool stride", net_of(conv(3, 8, 40), conv(8, 8, 40, pool=2, pool_stride=17)), 1, ("pool stride 17x17",)),
    ("pool >64 channels without conv", net_of(conv(3, 128, 8), {"op": "passthrough", "in_channels": 128, "out_channels": 128, "in_dim": [8, 8], "pool": 2}), 1, ("pooling 128 channels", "fused conv")),
    ("operands", net_of(conv(3, 8, 4), conv(8, 8, 4, operands=17)), 1, ("17 element-wise operands",)),
    ("flatten on conv", net_of(conv(3, 8, 4), conv(8, 10, 4, kernel=1, pad=0, flatten=True)), 1, ("flatten is only available on a linear layer",)),
    ("flatten elements", net_of(conv(3, 128, 12), {"op": "linear", "in_channels": 128, "out_channels": 10, "in_dim": [12, 12], "flatten": True}), 1, ("18,432 inputs", "16,384")),
    ("flatten pixels", net_of(conv(3, 1, 17), {"op": "linear", "in_channels": 1, "out_channels": 10, "in_dim": [17, 17], "flatten": True}), 1, ("289 pixels", "256")),
    ("flatten with pooling", net_of(conv(3, 8, 8), {"op": "linear", "in_channels": 8, "out_channels": 10, "in_dim": [8, 8], "pool": 2, "flatten": True}), 1, ("flatten cannot be combined with pooling",)),
    ("weight bits", net_of(conv(3, 8, 8), conv(8, 8, 8, weight_bits=3)), 1, ("3-bit weights", "1, 2, 4 or 8")),
    ("output width", net_of(conv(3, 8, 8), conv(8, 8, 8, output_width=16)), 1, ("output width 16",)),
    ("32-bit output not last", net_of(conv(3, 8, 8, output_width=32), conv(8, 8, 8)), 0, ("only the last layer may output 32-bit",)),
    ("bias over one bank", net_of(conv(3, 8, 2), conv(8, 600, 2, kernel=1, pad=0)), 1, ("600 bias bytes", "512")),
    ("data memory in", net_of(conv(3, 64, 16), conv(64, 64, 16, pool=1), conv(64, 64, [80, 80], kernel=1, pad=0)), 2, ("input needs 25,600 bytes", "16,384")),
    ("data memory out", net_of(conv(3, 8, 8), conv(8, 64, 8), conv(64, 64, 8, kernel=1, pad=0, output_width=8), conv(64, 64, [70, 70], kernel=3, pad=2)), 3, ("output needs 20,736 bytes", "16,384")),
    ("shape mismatch", net_of(conv(3, 8, 8), conv(16, 8, 8)), 1, ("expects 16x8x8",)),
    ("streaming not from layer 0", net_of(conv(3, 8, 8), conv(8, 8, 8, streaming=True)), 1, ("consecutive from layer 0",)),
    ("streaming channels", net_of(conv(32, 8, 8, streaming=True), conv(8, 8, 8)), 0, ("at most 16 channels",)),
    ("last streaming layer padded", net_of(conv(3, 8, 8, streaming=True), conv(8, 8, 8, streaming=True, pad=0), conv(8, 8, 6)), 1, ("last streaming layer must be padded",)),
    ("too many streaming layers", net_of(*[conv(4, 4, 8, streaming=True) for _ in range(9)]), 8, ("at most 8 layers may stream",)),
    ("columns beyond 768", net_of(conv(3, 512, 4, kernel=1, pad=0), conv(512, 1024, 4)), 1, ("8-bit kernels need 8192 columns on processors 0-63", "only 768 exist", "kernel memory exhausted")),
]


@pytest.mark.parametrize("name,net,layer,fragments", CASES, ids=[c[0] for c in CASES])
def test_each_rule_names_the_layer(name: str, net: Network, layer: int, fragments: tuple[str, ...]) -> None:
    check(net, layer, *fragments)


# rules whose limit differs on the MAX78002 (tests/devices/test_max78002_rules.py checks those)
CHIP_SPECIFIC = {"rows", "pool >64 channels without conv", "bias over one bank", "data memory in", "data memory out",
                 "last streaming layer padded", "columns beyond 768"}
SHARED = [c for c in CASES if c[0] not in CHIP_SPECIFIC]


@pytest.mark.parametrize("name,net,layer,fragments", SHARED, ids=[c[0] for c in SHARED])
def test_each_shared_rule_holds_on_the_max78002(name: str, net: Network, layer: int, fragments: tuple[str, ...]) -> None:
    from devices import MAX78002

    check(net, layer, *fragments, device=MAX78002())


def test_unsupported_activation() -> None:
    good = Layer.from_dict(conv(3, 8, 8))
    net = Network(input=(3, 8, 8), layers=(replace(good, activation="sigmoid"),))
    check(net, 0, "activation 'sigmoid' is not supported")


def test_layer_count() -> None:
    net = net_of(*[conv(4, 4, 4, kernel=1, pad=0) for _ in range(33)])
    assert check(net, 32, "33 hardware layers", "at most 32") == [
        "layer 32: the network has 33 hardware layers, but at most 32 are available "
        "(layers 32-32 are over the limit)"
    ]
    assert MAX78000().report(net_of(*[conv(4, 4, 4, kernel=1, pad=0) for _ in range(32)])).fits


def test_bias_banks_first_fit_descending() -> None:
    # Five layers with 500 bias bytes each: four banks of 512 hold four of them.
    layers = [conv(3, 500, 1, kernel=1, pad=0, weight_bits=1)]
    layers += [conv(500, 500, 1, kernel=1, pad=0, weight_bits=1) for _ in range(4)]
    report = MAX78000().report(net_of(*layers))
    assert report.bias_banks[:4] == [0, 1, 2, 3] and report.bias_banks[4] is None
    assert [v for v in report.violations if "bias" in v] == [
        "layer 4: its 500 bias bytes fit in none of the 4 bias banks of 512 bytes "
        "(free: 12, 12, 12, 12; bias memory exhausted)"
    ]
    # Without bias on the last layer it fits.
    layers[4] = {**layers[4], "bias": False}
    assert MAX78000().report(net_of(*layers)).fits


def test_data_budget_is_configurable() -> None:
    net = net_of(conv(64, 64, 80, kernel=1, pad=0), conv(64, 8, 80, kernel=1, pad=0))
    tight = MAX78000().report(net)
    assert [v[:30] for v in tight.violations] == ["layer 0: input needs 25,600 by", "layer 0: output needs 25,600 b",
                                                  "layer 1: input needs 25,600 by", "layer 1: output needs 25,600 b"]
    roomy = MAX78000(data_budget_bytes=32768).report(net)
    assert roomy.fits, roomy.violations
    assert roomy.data_memory_bytes == 80 * 80 * 4 and roomy.data_budget_bytes == 32768


def test_first_layer_chw() -> None:
    # 3x128x128 input: CHW uses 16,384 bytes per instance (fits the 16 KiB budget), HWC 65,536.
    net = net_of(conv(3, 4, 128, pool=4, pool_stride=4), conv(4, 4, 32))
    chw = MAX78000().report(net)
    assert chw.data_in_bytes[0] == 128 * 128 and chw.fits, chw.violations
    hwc = MAX78000(chw_first_layer=False).report(net)
    assert hwc.data_in_bytes[0] == 128 * 128 * 4
    assert any(v.startswith("layer 0: input needs 65,536 bytes") for v in hwc.violations)


def test_every_violation_is_reported_at_once() -> None:
    net = net_of(conv(3, 8, 8), conv(8, 8, 8, kernel=5, pad=3, weight_bits=3, operands=17))
    violations = MAX78000().report(net).violations
    assert len([v for v in violations if v.startswith("layer 1:")]) >= 4


# ------------------------------------------------------------------ kernel placement
def wide(bits: int) -> Network:
    return net_of(
        conv(3, 128, 8, weight_bits=bits),
        conv(128, 128, 8, weight_bits=bits),
        conv(128, 128, 8, weight_bits=bits),
        conv(128, 128, 8, weight_bits=bits),
    )


def test_placement_example_does_not_fit_at_8_bits() -> None:
    report = MAX78000().report(wide(8))
    assert report.kernel_columns == [128, 256, 256, 256]
    assert report.placement[0] is None
    assert [p.column for p in report.placement[1:]] == [0, 256, 512]
    assert report.max_column == 768
    assert report.violations == [
        "layer 0: 8-bit kernels need 128 free consecutive columns on 3 processors (first processor "
        "a multiple of 4), but at most 0 are left on any such group of the 768-column kernel memory "
        "(kernel memory exhausted)"
    ]
    # the raw byte count alone (3*128*9 + 3*128*128*9 = 445,824 B) also says no, but see below
    assert report.weight_bytes == 445_824


def test_placement_example_fits_at_4_bits() -> None:
    report = MAX78000().report(wide(4))
    assert report.fits, report.violations
    assert report.kernel_columns == [64, 128, 128, 128]
    assert report.placement[0] == Placement(first_processor=0, processors=3, column=384, columns=64)
    assert report.max_column == 448


def test_fit_is_not_the_byte_count() -> None:
    # 9,216 weight bytes, far below 442,368, but all 1024 kernels sit on the one input processor.
    r = MAX78000().report(net_of(conv(1, 1024, 4, bias=False)))
    assert r.weight_bytes == 9_216 and r.kernel_columns == [1024]
    assert r.violations == [
        "layer 0: 8-bit kernels need 1024 columns on processor 0, but only 768 exist (kernel memory exhausted)"
    ]


def test_narrow_layer_goes_in_the_last_free_columns() -> None:
    # 3 -> 64 then 11 x (64 -> 64), 3x3, 8 bits: 11 x 64 columns on all processors first, then the
    # first layer's 64 columns on processors 0-2 at column 704: exactly 768. One more does not fit.
    layers = [conv(3, 64, 8)] + [conv(64, 64, 8) for _ in range(11)]
    r = MAX78000().report(net_of(*layers))
    assert r.fits and r.max_column == 768
    assert r.placement[0] == Placement(first_processor=0, processors=3, column=704, columns=64)
    r = MAX78000().report(net_of(*(layers + [conv(64, 64, 8)])))
    assert not r.fits and r.placement[0] is None
    assert [v[:40] for v in r.violations] == ["layer 0: 8-bit kernels need 64 free cons"]


def test_kernel_columns_formula() -> None:
    def col(**kw: Any) -> int:
        return kernel_columns(Layer.from_dict(kw))

    assert col(**conv(128, 128, 4)) == 256  # 2 x 2 passes x 64 kernels, one column each
    assert col(**conv(128, 128, 4, weight_bits=4)) == 128
    assert col(**conv(64, 64, 4, kernel=1, pad=0)) == 8  # 9 one-byte kernels per column
    assert col(**conv(64, 63, 4, kernel=1, pad=0, weight_bits=4)) == 4  # (63*4 + 1*1*1)/72 -> 4
    assert col(op="linear", in_channels=12, out_channels=10, in_dim=[4, 4], flatten=True) == 18
    assert col(op="passthrough", in_channels=8, out_channels=8, in_dim=[4, 4]) == 0


def test_report_to_dict_is_json() -> None:
    report = MAX78000().report(wide(8))
    d = json.loads(json.dumps(report.to_dict()))
    for key in ("fits", "violations", "weight_bytes", "bias_bytes", "layers", "cycles", "latency_ms"):
        assert key in d
    assert d["fits"] is False and d["placement"][0] is None
    assert d["placement"][1] == {"first_processor": 0, "processors": 64, "column": 0, "columns": 256}


def test_layout_for_synthesis_follows_placement_and_ping_pong() -> None:
    """Processor masks are the placed input processors; offsets alternate 0 / 0x4000."""
    net = Network.load(DATA / "mnist.yaml")
    dev = MAX78000()
    rep = dev.report(net)
    lay = dev.layout(net)
    assert len(lay) == len(net.layers)
    for i, (l, p, layer) in enumerate(zip(lay, rep.placement, net.layers)):
        assert l.placement == p
        assert l.processors == ((1 << p.processors) - 1) << p.first_processor
        assert bin(l.processors).count("1") == min(layer.in_channels, 64)
        assert (l.in_offset, l.out_offset) == ((0, 0x4000) if i % 2 == 0 else (0x4000, 0))
        assert l.chw == (i == 0)
        if i:
            assert l.in_offset == lay[i - 1].out_offset
    assert lay[0].processors_hex == f"0x{lay[0].processors:016x}" and len(lay[0].processors_hex) == 18
    bad = net_of(conv(1, 8, 28), conv(8, 8, 200))
    with pytest.raises(ValueError, match="does not fit"):
        dev.layout(bad)


def test_layout_puts_each_chw_input_channel_in_its_own_memory_instance() -> None:
    """ai8x-synthesis rejects a CHW layer whose channels share a data-memory instance (4
    processors each): 3 input channels go to processors 0, 4 and 8; HWC layers stay contiguous."""
    dev = MAX78000()
    lay = dev.layout(net_of(conv(3, 16, 16), conv(16, 8, 16)))
    assert lay[0].chw and lay[0].processors == 0x111
    p = lay[1].placement
    assert not lay[1].chw and lay[1].processors == ((1 << 16) - 1) << p.first_processor
