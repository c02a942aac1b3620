"""Property tests of the MAX78000 and MAX78002 models on random, well-formed ai8x-like networks."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import MAX78000, MAX78002, kernel_columns, layer_cycles
from search_spaces import Layer, Network


@st.composite
def ai8x_networks(draw: st.DrawFn) -> Network:
    """Sequential conv2d stacks (kernel 1x1/3x3, pad 0..2, optional 2x2 pooling, any bit width)
    ending, sometimes, in a flatten linear layer. Shapes are consistent; rules may be broken
    (too many columns, too much data memory) and that is part of what is tested."""
    c = draw(st.sampled_from([1, 3, 16, 64]))
    h = w = draw(st.integers(4, 64))
    dims = (c, h, w)
    layers: list[Layer] = []
    for i in range(draw(st.integers(1, 12))):
        cout = draw(st.integers(1, 300))
        k = draw(st.sampled_from([1, 3]))
        pool = 2 if (h >= 4 and draw(st.booleans())) else 1
        hp = (h - pool) // pool + 1
        pad = 0 if k == 1 else draw(st.integers(max(0, -(-(3 - hp) // 2)), 2))
        layer = Layer.from_dict(
            dict(op="conv2d", in_channels=c, out_channels=cout, in_dim=[h, w], kernel=k, pad=pad,
                 pool=pool, weight_bits=draw(st.sampled_from([1, 2, 4, 8]))),
            i,
        )
        layers.append(layer)
        c, (h, w) = cout, layer.out_dim
    if c * h * w <= 16384 and h * w <= 256 and draw(st.booleans()):
        layers.append(Layer.from_dict(dict(op="linear", in_channels=c, out_channels=10, in_dim=[h, w],
                                           flatten=True), len(layers)))
    return Network(input=dims, layers=tuple(layers))


CHIPS = {"max78000": MAX78000, "max78002": MAX78002}


@pytest.mark.parametrize("chip", sorted(CHIPS))
@settings(max_examples=60, deadline=None)
@given(net=ai8x_networks(), clock=st.sampled_from([25e6, 50e6, 100e6]))
def test_cycles_latency_and_placement(chip: str, net: Network, clock: float) -> None:
    dev = CHIPS[chip](clock_hz=clock)
    hw = dev.hardware
    r = dev.report(net)
    assert net.shape_errors() == []
    # cycles: positive per layer, total = 1 + sum, latency = cycles / clock
    assert all(c > 0 for c in r.layer_cycles)
    assert r.cycles == 1 + sum(r.layer_cycles) == 1 + sum(layer_cycles(layer) for layer in net)
    assert abs(r.latency_ms - r.cycles / clock * 1e3) <= 1e-12 * r.latency_ms
    assert abs(dev.latency_ms(net) - r.latency_ms) <= 1e-12 * r.latency_ms
    # the rule of thumb holds roughly: one output channel of one pixel per clock per pass
    # placement: inside the memory, aligned, and never overlapping
    placed = [p for p in r.placement if p is not None]
    for p in placed:
        assert p.first_processor % 4 == 0 and p.column % 4 == 0
        assert 0 <= p.first_processor and p.last_processor < 64
        # a range of 2+ processors holds one without extended memory
        top = hw.columns(p.first_processor) if p.processors == 1 else hw.kernel_columns
        assert 0 <= p.column and p.end_column <= top
    for i, a in enumerate(placed):
        for b in placed[i + 1:]:
            assert not a.overlaps(b)
    assert r.max_column == max((p.end_column for p in placed), default=0)
    # a layer left out of kernel memory is reported, naming the layer
    for i, p in enumerate(r.placement):
        if p is None and r.kernel_columns[i] > 0:
            assert any(v.startswith(f"layer {i}:") and "kernel memory exhausted" in v for v in r.violations)
    assert r.fits == (r.violations == [])
    assert r.kernel_processor_columns <= hw.processor_columns or not r.fits
    assert r.kernel_capacity_columns == hw.processor_columns and r.max_layers == hw.max_layers
    json.dumps(r.to_dict())


@pytest.mark.parametrize("chip", sorted(CHIPS))
@settings(max_examples=40, deadline=None)
@given(net=ai8x_networks())
def test_8_bit_needs_the_most_columns_and_bits_do_not_change_cycles(chip: str, net: Network) -> None:
    # The spec's packing term res = (kc % q) * ksize * (q - 1) makes the column count not
    # monotonic below 8 bits for small kernel counts (2 kernels of 3x3: 2, 1, 2, 2 columns at
    # 8, 4, 2, 1 bits); 8 bits always needs at least as many as any narrower width.
    for layer in net:
        cols = [kernel_columns(replace(layer, weight_bits=b)) for b in (8, 4, 2, 1)]
        assert cols[0] == max(cols)
    low = net.with_bits([1] * len(net))
    dev = CHIPS[chip]()
    assert dev.report(low).cycles == dev.report(net).cycles  # latency ignores bit width
