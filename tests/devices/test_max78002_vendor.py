"""Cross-check of the MAX78002 model against Analog Devices' own tool (``ai8xize.py --device MAX78002``).

On the vendor's networks with its trained checkpoints (ai85net5 / MNIST, ai85nascifarnet /
CIFAR-10) and on networks of our ``ai8x`` space with 1-, 2-, 4- and 8-bit layers (exported with
``nas._export``, their YAML laid out by the MAX78002 model), the tool must accept the network and
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

# (name, input shape, architecture, space options): networks of our space, 1/2/4/8-bit layers
OURS = [
    # one input channel: layer 0 sits on processor 0, at the top of its extended kernel memory
    ("b8241", (1, 16, 16), "16k3b8|24k3b2,32k1b4|fcb1", {"first_last_8bit": False}),
    # 41 hardware layers: over the MAX78000's 32, within the MAX78002's 128
    ("deep41", (1, 16, 16), ",".join(["16k3b8"] + ["16k3b4"] * 19) + "|" + ",".join(["16k1b2"] * 20) + "|fcb8",
     {"max_depth": 20}),
    # 1 -> 1024 channels, 3x3, 8 bits: 1,024 kernel columns on processor 0 (over the MAX78000's
    # 768: exactly its extended memory) and 1,024 bias bytes (over the MAX78000's 512-byte bank)
    ("tall1024", (1, 8, 8), "1024k3b8|16k1b4|fcb8", {"widths": (16, 1024)}),
    # layer 0 writes 72x72 x 4 bytes = 20,736 per instance: over the MAX78000's 16 KiB budget
    ("big72", (1, 72, 72), "16k3b8|16k3b4|16k3b2|16k1b8|fcb8", {"max_units": 4}),
]


def _model(space: Any, arch: str, seed: int) -> Any:
    """A folded, quantised network with random weights (as in tests/nas/test_vendor_crosscheck.py)."""
    import torch

    from search_spaces._ai8x import fold_bn

    torch.manual_seed(seed)
    model = space.build(arch, quantize=False)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randint(-128, 128, (32, *space.input_shape)).float() / 128)
        for layer in model.layers:
            if layer.op.bias is not None:
                layer.op.bias.uniform_(-0.05, 0.05)
    fold_bn(model)
    model.set_quantize(True)
    return model.eval()


def _export(model: Any, network: Any, out: Path, name: str, sample: np.ndarray, dev: Any) -> dict[str, Path]:
    """``nas._export.export_max78000``'s vendor files, with the YAML laid out by ``dev`` (that
    function lays it out for the MAX78000, which refuses these networks)."""
    import torch

    from nas._export import checkpoint_state, sample_pair, synthesis_yaml

    out.mkdir(parents=True, exist_ok=True)
    files = {"checkpoint": out / f"{name}_qat.pth.tar", "synthesis_yaml": out / "ai8x-synthesis.yaml",
             "sample_input": out / "sample_input.npy", "sample_output": out / "sample_output.npy"}
    torch.save({"epoch": 1, "arch": f"nas_{name}", "state_dict": checkpoint_state(model, network), "extras": {}},
               files["checkpoint"])
    files["synthesis_yaml"].write_text(synthesis_yaml(network, arch=f"nas_{name}", dataset="TEST", device=dev))
    x, y = sample_pair(model, network, sample)
    np.save(files["sample_input"], x, allow_pickle=False)
    np.save(files["sample_output"], y, allow_pickle=False)
    return files


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every network through the vendor tool for the MAX78002 (two at a time)."""
    root = tmp_path_factory.mktemp("vendor87")
    dev = get_device("max78002")
    jobs: list[dict[str, Any]] = []
    info: dict[str, dict[str, Any]] = {}
    for name, (ckpt, net_yaml, _, sample) in vendor_tool.VENDOR_NETWORKS.items():
        network, zero = vendor_tool.vendor_network(VENDOR, name)
        info[name] = {"network": network, "zero_bias": zero, "ours": False}
        jobs.append({"name": name, "checkpoint": str(VENDOR / ckpt), "yaml": str(VENDOR / net_yaml),
                     "sample_input": sample, "out_dir": str(root / name), "quantize": False,
                     "trusted_pickle": True, "device": "MAX78002", "latency_calc": True})
    for i, (name, shape, arch, opts) in enumerate(OURS):
        space = get_space("ai8x", input_shape=shape, num_classes=10, hardware="max78002", **opts)
        network = space.network(arch)
        model = _model(space, arch, i)
        sample = np.random.default_rng(i).integers(-128, 128, shape) / 128.0
        files = _export(model, network, root / name, name, sample, dev)
        params = model.vendor_params()
        zero = sum(layer.out_channels for layer, p in zip(network.layers, params) if p["bias"] is not None and not np.any(p["bias"]))
        info[name] = {"network": network, "zero_bias": zero, "ours": True, "files": files}
        jobs.append({"name": name, "checkpoint": str(files["checkpoint"]), "yaml": str(files["synthesis_yaml"]),
                     "sample_input": str(files["sample_input"]), "out_dir": str(root / name / "synthesis"),
                     "device": "MAX78002", "latency_calc": True})
    for res in vendor_tool.run_vendor(VENDOR, jobs, workers=2, timeout=600):
        info[res["name"]]["vendor"] = res
    return info


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
    """Each of our networks but the first breaks a MAX78000 limit (so the check above covers the
    MAX78002's larger figures), and together they use every weight width."""
    bits = set()
    for name, shape, arch, opts in OURS:
        net = get_space("ai8x", input_shape=shape, num_classes=10, hardware="max78002", **opts).network(arch)
        bits |= {layer.weight_bits for layer in net.layers}
        assert get_device("max78002").report(net).fits
        if name != "b8241":
            assert not get_device("max78000").report(net).fits, name
    assert bits == {1, 2, 4, 8}


def test_first_layer_uses_extended_kernel_memory() -> None:
    net = get_space("ai8x", input_shape=(1, 16, 16), num_classes=10, first_last_8bit=False).network(OURS[0][2])
    p = get_device("max78002").report(net).placement[0]
    assert (p.first_processor, p.processors) == (0, 1)
    assert p.end_column <= 5120 and p.column >= 4096
