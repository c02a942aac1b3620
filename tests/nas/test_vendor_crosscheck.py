"""Cross-check of MAX78000 exports against Analog Devices' own tool (ai8x-synthesis).

Exports small folded, quantised networks (8-bit, and 1-, 2- and 4-bit layers) with
``nas.export.export_max78000``, runs the vendor's ``quantize.py`` + ``ai8xize.py`` on them in a
subprocess, and asserts that the tool accepts them, that its cycle and memory estimate is our
device model's, and that its simulated output for ``sample_input.npy`` is our
``sample_output.npy`` bit for bit. Skipped without ``../shared/vendor/ai8x-synthesis`` (next to
the repository) or its Python dependencies (the ``dev`` extras).
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

VENDOR = vendor_tool.vendor_dir(Path(__file__).resolve().parents[2])  # <repo>/../shared/vendor/ai8x-synthesis
_WHY = vendor_tool.unavailable(VENDOR)
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"vendor cross-check skipped: {_WHY}")

# (name, input shape, architecture, first/last 8-bit)
NETWORKS = [
    ("all8", (1, 16, 16), "16k3b8|24k3b8,16k1b8|fcb8", True),
    # a 1-bit first layer (signed input), 2-bit hidden, 4-bit classifier
    ("b1b2b4", (1, 16, 16), "16k3b1|24k3b2|fcb4", False),
    # 2/4-bit layers, and a hidden 1-bit layer: its weights and bias are {-1, 0} x 2^shift, so after a
    # ReLU it only ever outputs 0 (the vendor's arithmetic) and the classifier gives its bias
    ("hidden1", (1, 16, 16), "24k3b8,16k1b4|32k3b2,16k1b1|fcb8", True),
    # the classifier sees a 1x1 input (no `flatten` in the YAML), 3 input channels
    ("flat1x1", (3, 8, 8), "16k3b8|16k3b4|16k3b8|16k1b2|fcb8", True),
]


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, dict[str, Any], dict[str, Any]]]:
    from nas.export import export_max78000

    root = tmp_path_factory.mktemp("vendor")
    jobs, exported = [], []
    for i, (name, shape, arch, fl8) in enumerate(NETWORKS):
        space = get_space("ai8x", input_shape=shape, num_classes=10, first_last_8bit=fl8)
        network = space.network(arch)
        model = vendor_tool.random_model(space, arch, i)
        sample = np.random.default_rng(i).integers(-128, 128, shape) / 128.0
        files = export_max78000(model, network, root / name, name=name, dataset="TEST", epoch=1, sample=sample)
        exported.append((network, files, model.vendor_params()))
        jobs.append({"name": name, "checkpoint": str(files["checkpoint"]), "yaml": str(files["synthesis_yaml"]),
                     "sample_input": str(files["sample_input"]), "out_dir": str(root / name / "synthesis")})
    results = vendor_tool.run_vendor(VENDOR, jobs, workers=2)
    return [(*e, res) for e, res in zip(exported, results)]


@pytest.mark.parametrize("index", range(len(NETWORKS)), ids=[n[0] for n in NETWORKS])
def test_vendor_accepts_and_agrees(roundtrip: list, index: int) -> None:
    network, files, params, res = roundtrip[index]
    assert res["rc"] == 0, res["output"][-3000:]
    # the YAML warnings the vendor used to print
    for warning in ("document start", "`flatten` is not needed", "activate", "No `extras`"):
        assert warning not in res["output"], res["output"][-3000:]
    rep = get_device("max78000").report(network)
    assert res["layer_cycles"] == list(rep.layer_cycles)
    assert res["cycles"] == rep.cycles
    # the tool leaves a bias whose integers are all 0 out of bias memory ("All bias values are zero"),
    # which our device model cannot know before training: it counts every bias
    zero = sum(layer.out_channels for layer, p in zip(network.layers, params) if not np.any(p["bias"]))
    assert (res["weight_bytes"], res["bias_bytes"]) == (rep.weight_bytes, rep.bias_bytes - zero)
    ours = np.load(files["sample_output"])
    x = np.load(files["sample_input"])
    assert x.dtype == np.int64 and x.shape == tuple(network.input) and -128 <= x.min() <= x.max() <= 127
    assert ours.dtype == res["expected"].dtype == np.int64
    assert ours.shape == res["expected"].shape == (10, 1, 1)
    assert np.array_equal(ours, res["expected"]), (ours.ravel(), res["expected"].ravel())


def test_networks_cover_every_bit_width() -> None:
    bits = set()
    for _, shape, arch, fl8 in NETWORKS:
        net = get_space("ai8x", input_shape=shape, num_classes=10, first_last_8bit=fl8).network(arch)
        bits |= {layer.weight_bits for layer in net.layers}
    assert bits == {1, 2, 4, 8}
