"""Cross-check of the MAX78002 model against Analog Devices' own tool (``ai8xize.py --device MAX78002``).

On the vendor's networks with its trained checkpoints (ai85net5 / MNIST, ai85nascifarnet /
CIFAR-10) and on networks of our ``ai8x`` space with 1-, 2-, 4- and 8-bit layers (exported with
``nas.export``, their YAML laid out by the MAX78002 model), the tool must accept the network and
agree with ``devices.get_device("max78002").report``: cycles per layer and in total, weight and
bias bytes and the chip's totals of both; for our exports also the kernel offset and length of
every layer and the simulated output for the sample input, bit for bit.

The tool prints no latency estimate for the MAX78002 (``DevAI87.SUPPORT_LATENCY_CALC`` is False),
so the cycle figures here come from the vendor's ``izer/latency.py`` formula that the tool runs
with the MAX78002's description when that flag is set (``benchmarks/vendor_tool.py``,
``latency_calc``): the check is that our model computes that formula on the same per-layer
parameters, not that the chip takes that many cycles.

Skipped without ``../shared/vendor/ai8x-synthesis`` (next to the repository) or its Python
dependencies (the ``dev`` extras).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devices import get_device
from search_spaces import get_space

_TOOL = Path(__file__).resolve().parents[2] / "benchmarks" / "vendor_tool.py"
_spec = importlib.util.spec_from_file_location("vendor_tool", _TOOL)
vendor_tool: Any = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(vendor_tool)  # type: ignore[union-attr]

VENDOR = vendor_tool.vendor_dir(Path(__file__).resolve().parents[2])
_WHY = vendor_tool.unavailable(VENDOR)
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"vendor cross-check skipped: {_WHY}")

OURS = vendor_tool.MAX78002_NETWORKS


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every network through the vendor tool for the MAX78002 (two at a time)."""
    return vendor_tool.max78002_runs(VENDOR, tmp_path_factory.mktemp("vendor87"))


NAMES = [*vendor_tool.VENDOR_NETWORKS, *(n[0] for n in OURS)]


@pytest.mark.parametrize("name", NAMES)
def test_vendor_max78002_agrees(runs: dict[str, dict[str, Any]], name: str) -> None:
    run = runs[name]
    res, network = run["vendor"], run["network"]
    assert res["rc"] == 0, res["output"][-3000:]
    assert "Configuring device: MAX78002" in res["output"]
    rep = get_device("max78002").report(network)
    assert rep.fits, rep.violations
    assert res["layer_cycles"] == rep.layer_cycles
    assert res["cycles"] == rep.cycles
    assert res["weight_bytes"] == rep.weight_bytes
    assert res["bias_bytes"] == rep.bias_bytes - run["zero_bias"]
    assert (res["weight_capacity_bytes"], res["bias_capacity_bytes"]) == (rep.weight_capacity_bytes, rep.bias_capacity_bytes)
    if run["ours"]:  # the YAML carries our processors, so the tool's kernel placement must be ours
        assert res["kernel_offsets"][: len(network.layers)] == [p.column for p in rep.placement]
        assert res["kernel_lengths"][: len(network.layers)] == [p.columns for p in rep.placement]
        ours = np.load(run["files"]["sample_output"])
        assert np.array_equal(ours, res["expected"]), (ours.ravel(), res["expected"].ravel())


def test_our_networks_need_the_max78002() -> None:
    """Each of our networks but the first two breaks a MAX78000 limit (so the check above covers
    the MAX78002's larger figures), and together they use every weight width."""
    bits = set()
    for name, shape, arch, opts in OURS:
        net = get_space("ai8x", input_shape=shape, num_classes=10, hardware="max78002", **opts).network(arch)
        bits |= {layer.weight_bits for layer in net.layers}
        assert get_device("max78002").report(net).fits
        if name not in ("b8241", "one_ch"):
            assert not get_device("max78000").report(net).fits, name
    assert bits == {1, 2, 4, 8}


def test_first_layer_uses_extended_kernel_memory() -> None:
    net = get_space("ai8x", input_shape=(1, 16, 16), num_classes=10, first_last_8bit=False).network(OURS[0][2])
    p = get_device("max78002").report(net).placement[0]
    assert (p.first_processor, p.processors) == (0, 1)
    assert p.end_column <= 5120 and p.column >= 4096
    r = get_device("max78002").report(get_space("ai8x", input_shape=(1, 8, 8), widths=(1, 8)).network(OURS[1][2]))
    assert [(p.first_processor, p.column) for p in r.placement] == [(0, 5116), (16, 5116), (0, 5104), (0, 0)]
