"""The MAX78002's own rules and figures (ai8x-synthesis izer/tornadocnn.py DevAI87; README
"Limitations of MAX78002 Networks"): where they differ from the MAX78000, both chips are asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devices import MAX78000, MAX78002, get_device, list_devices
from search_spaces import (
    MAX78000_HW,
    MAX78002_HW,
    ArchitectureError,
    Layer,
    Network,
    ai8x_hardware,
    get_space,
)

DATA = Path(__file__).parent / "data"


def net_of(*layers: dict[str, Any]) -> Network:
    built = tuple(Layer.from_dict(d, i) for i, d in enumerate(layers))
    first = built[0]
    return Network(input=(first.in_channels, *first.in_dim), layers=built)


def conv(cin: int, cout: int, dim: int | list[int], **kw: Any) -> dict[str, Any]:
    d = [dim, dim] if isinstance(dim, int) else dim
    return {"op": "conv2d", "in_channels": cin, "out_channels": cout, "in_dim": d, **kw}


def conv1d(cin: int, cout: int, length: int, pad: int, **kw: Any) -> dict[str, Any]:
    return {"op": "conv1d", "in_channels": cin, "out_channels": cout, "in_dim": [length, 1], "kernel": [3, 1],
            "pad": [pad, 0], **kw}


def hits(net: Network, layer: int, *fragments: str, device: Any) -> list[str]:
    r = device.report(net)
    return [v for v in r.violations if v.startswith(f"layer {layer}") and all(f in v for f in fragments)]


def test_registered_with_its_figures() -> None:
    dev = get_device("max78002")
    assert isinstance(dev, MAX78002) and dev.kind == "accelerator" and dev.spaces == ["ai8x"]
    assert list_devices()[:2] == ["max78000", "max78002"]
    assert dev.hardware is MAX78002_HW and ai8x_hardware("MAX78002") is MAX78002_HW
    assert dev.limits() == {"weights": "2,396,160 B", "layers": "128", "channels": "1024",
                            "data": "40,960 B per instance"}
    assert (dev.clock_hz, dev.cpu_clock_hz, dev.data_budget_bytes) == (200e6, 120e6, 40_960)
    # the vendor's resource totals: 60 x 4096 + 4 x 5120 columns of 9 bytes; 4 x 2048 bias bytes
    assert MAX78002_HW.weight_memory_bytes == 2_396_160 and MAX78002_HW.bias_memory_bytes == 8_192
    assert MAX78000_HW.weight_memory_bytes == 442_368 and MAX78000_HW.bias_memory_bytes == 2_048
    assert [MAX78002_HW.columns(p) for p in (0, 1, 15, 16, 17, 32, 48, 63)] == [5120, 4096, 4096, 5120, 4096, 5120, 5120, 4096]


def test_report_carries_the_chips_capacities() -> None:
    net = Network.load(DATA / "mnist.yaml")
    r2, r0 = MAX78002().report(net), MAX78000().report(net)
    assert (r2.weight_capacity_bytes, r2.bias_capacity_bytes, r2.max_layers, r2.total_columns, r2.kernel_capacity_columns) \
        == (2_396_160, 8_192, 128, 5_120, 266_240)
    assert (r0.weight_capacity_bytes, r0.bias_capacity_bytes, r0.max_layers, r0.total_columns, r0.kernel_capacity_columns) \
        == (442_368, 2_048, 32, 768, 49_152)
    # same cycles, a 4x faster clock
    assert r2.cycles == r0.cycles == 70_157
    assert r2.latency_ms == pytest.approx(70_157 / 200e6 * 1e3)
    assert r2.input_load_ms == pytest.approx(28 * 28 * 5 / 120e6 * 1e3)
    assert any("does not estimate MAX78002 latency" in a for a in r2.assumptions)
    assert any("200 MHz" in a and "PLL" in a for a in r2.assumptions)


def test_128_layers() -> None:
    layers = [conv(4, 4, 4, kernel=1, pad=0) for _ in range(129)]
    r = MAX78002().report(net_of(*layers))
    assert r.violations == ["layer 128: the network has 129 hardware layers, but at most 128 are available "
                            "(layers 128-128 are over the limit)"]
    assert MAX78002().report(net_of(*layers[:128])).fits
    assert not MAX78000().report(net_of(*layers[:33])).fits and MAX78002().report(net_of(*layers[:33])).fits


def test_rows_and_columns_up_to_2047() -> None:
    ok = net_of(conv1d(1, 4, 2047, 1))
    assert MAX78002().report(ok).fits and not MAX78000().report(ok).fits
    assert hits(net_of(conv1d(1, 4, 2100, 1)), 0, "2100x1", "2047 rows", device=MAX78002())


def test_kernel_memory_4096_columns_and_5120_on_quadrant_heads() -> None:
    # 512 -> 1024 3x3 at 8 bits: 8 passes x 16 x 64 = 8192 columns on every input processor
    assert hits(net_of(conv(3, 512, 4, kernel=1, pad=0), conv(512, 1024, 4)), 1,
                "8-bit kernels need 8192 columns on processors 0-63", "only 4096 exist", device=MAX78002())
    # 1 -> 1024 3x3 at 8 bits: 1024 columns on processor 0, exactly its extended memory
    r = MAX78002().report(net_of(conv(1, 1024, 4, bias=False)))
    assert r.fits and r.placement[0].first_processor == 0 and (r.placement[0].column, r.placement[0].end_column) == (4096, 5120)
    assert not MAX78000().report(net_of(conv(1, 1024, 4, bias=False))).fits
    # 128 -> 128 x 4 at 8 bits: does not fit the MAX78000 (max78000.md example), fits here
    wide = net_of(conv(3, 128, 8), *[conv(128, 128, 8) for _ in range(3)])
    assert MAX78002().report(wide).fits and not MAX78000().report(wide).fits


def test_one_processor_layers_go_top_down_as_the_vendor_places_them() -> None:
    # ai85net5's first layer (1 -> 60, 60 columns) goes to the top of processor 0: the vendor's
    # log says "Kernel offset = [5060, 0, 60, 116, 128]"
    r = MAX78002().report(Network.load(DATA / "mnist.yaml"))
    assert [p.column for p in r.placement] == [5060, 0, 60, 116, 128]
    # two 1-column layers: the tool's top-down search would put the second over the first on
    # processor 0 (it checks column 5119 and then starts at 5116), so it goes to processor 16
    net = net_of(conv(1, 1, 8, kernel=1, pad=0), conv(1, 1, 8, kernel=1, pad=0), conv(1, 8, 8))
    r = MAX78002().report(net)
    assert r.fits, r.violations
    assert [(p.first_processor, p.column) for p in r.placement[:2]] == [(0, 5116), (16, 5116)]
    placed = [p for p in r.placement if p is not None]
    assert not any(a.overlaps(b) for i, a in enumerate(placed) for b in placed[i + 1:])


def test_bias_banks_of_2048() -> None:
    # 1000 bias bytes per layer: two per 2048-byte bank, so 8 fit and the 9th does not
    layers = [conv(3, 1000, 1, kernel=1, pad=0, weight_bits=1)]
    layers += [conv(1000, 1000, 1, kernel=1, pad=0, weight_bits=1) for _ in range(8)]
    r = MAX78002().report(net_of(*layers))
    assert sorted(b for b in r.bias_banks if b is not None) == [0, 0, 1, 1, 2, 2, 3, 3] and r.bias_banks[8] is None
    assert [v for v in r.violations if "bias" in v] == [
        "layer 8: its 1000 bias bytes fit in none of the 4 bias banks of 2048 bytes (free: 48, 48, 48, 48; bias memory exhausted)"
    ]
    # 600 bias bytes: over a MAX78000 bank, within a MAX78002 one
    one = net_of(conv(8, 600, 2, kernel=1, pad=0))
    assert MAX78002().report(one).fits and not MAX78000().report(one).fits


def test_data_memory_80_kib_instances() -> None:
    # 64 x 100 x 100 HWC: 40,000 bytes per instance, within the inferred half of 81,920
    ok = net_of(conv(64, 64, 100, kernel=1, pad=0), conv(64, 8, 100, kernel=1, pad=0))
    assert MAX78002().report(ok).fits and not MAX78000().report(ok).fits
    big = net_of(conv(64, 64, 104, kernel=1, pad=0), conv(64, 8, 104, kernel=1, pad=0))
    assert hits(big, 0, "input needs 43,264 bytes", "40,960", device=MAX78002())
    assert MAX78002(data_budget_bytes=81_920).report(big).fits
    with pytest.raises(ValueError, match="1..81920"):
        MAX78002(data_budget_bytes=81_921)


def test_layout_ping_pongs_at_0xa000() -> None:
    lay = MAX78002().layout(Network.load(DATA / "mnist.yaml"))
    assert [(l.in_offset, l.out_offset) for l in lay[:2]] == [(0, 0xA000), (0xA000, 0)]
    assert lay[0].processors == 1 and lay[0].placement.column == 5060


def test_padded_conv1d_above_64_channels() -> None:
    dev = MAX78002()
    assert hits(net_of(conv1d(96, 16, 64, 1)), 0, "padded conv1d with 96 input channels", "MAX78002", device=dev)
    assert dev.report(net_of(conv1d(96, 16, 64, 0))).fits
    assert dev.report(net_of(conv1d(64, 16, 64, 1))).fits
    assert MAX78000().report(net_of(conv1d(96, 16, 64, 1))).fits


def test_streaming_rules() -> None:
    # the last streaming layer may be unpadded on the MAX78002
    unpadded = net_of(conv(3, 8, 8, streaming=True), conv(8, 8, 8, streaming=True, pad=0), conv(8, 8, 6))
    assert MAX78002().report(unpadded).fits and not MAX78000().report(unpadded).fits
    # but no pass-through layer streams
    through = net_of(conv(3, 8, 8, streaming=True),
                     {"op": "passthrough", "in_channels": 8, "out_channels": 8, "in_dim": [8, 8], "streaming": True},
                     conv(8, 8, 8))
    assert hits(through, 1, "pass-through layer cannot stream", device=MAX78002())
    assert MAX78000().report(through).fits


def test_pass_through_pools_more_than_64_channels() -> None:
    net = net_of(conv(3, 128, 8), {"op": "passthrough", "in_channels": 128, "out_channels": 128, "in_dim": [8, 8], "pool": 2})
    assert MAX78002().report(net).fits
    assert not MAX78000().report(net).fits


def test_ai8x_space_takes_the_hardware() -> None:
    sp = get_space("ai8x", hardware="max78002", widths=(16, 1024))
    assert sp.hardware is MAX78002_HW
    assert get_space("ai8x").hardware is MAX78000_HW
    with pytest.raises(ArchitectureError, match="1..1024"):
        get_space("ai8x", hardware=MAX78002_HW, widths=(16, 2048))
    with pytest.raises(ArchitectureError, match="unknown accelerator 'max99999'"):
        get_space("ai8x", hardware="max99999")
    # the layer list is the same on both chips
    arch = "16k3b8|1024k1b4|fcb8"
    assert sp.network(arch) == get_space("ai8x", widths=(16, 1024)).network(arch)
