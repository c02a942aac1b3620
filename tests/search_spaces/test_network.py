from __future__ import annotations

import json
from pathlib import Path

import pytest

from search_spaces import Layer, Network, NetworkFormatError

MNIST_YAML = """
input: [1, 28, 28]
layers:
  - {op: conv2d, in_channels: 1, out_channels: 60, in_dim: [28, 28]}
  - {op: conv2d, in_channels: 60, out_channels: 60, in_dim: [28, 28], pad: 2, pool: 2}
  - {op: conv2d, in_channels: 60, out_channels: 56, in_dim: [16, 16], pool: [2, 2], pool_stride: [2, 2]}
  - {op: conv2d, in_channels: 56, out_channels: 12, in_dim: [8, 8], pool: 2}
  - {op: linear, in_channels: 12, out_channels: 10, in_dim: [4, 4], flatten: true}
"""


def test_defaults_and_geometry() -> None:
    net = Network.loads(MNIST_YAML)
    first = net.layers[0]
    assert first.kernel == (3, 3) and first.pad == (1, 1) and first.weight_bits == 8
    assert first.activation == "relu" and first.operands == 1 and not first.flatten
    assert [l.out_dim for l in net] == [(28, 28), (16, 16), (8, 8), (4, 4), (1, 1)]
    # pool given alone implies stride = pool
    assert net.layers[1].pool_stride == (2, 2)
    assert net.shape_errors() == []
    # the vendor's "Weight memory" for ai85net5 (MNIST): 71,148 bytes
    assert net.weight_bytes == 71_148
    assert net.layers[4].n_weights == 12 * 4 * 4 * 10


def test_round_trip_yaml_and_json(tmp_path: Path) -> None:
    net = Network.loads(MNIST_YAML)
    for name in ("net.yaml", "net.json"):
        path = net.save(tmp_path / name)
        again = Network.load(path)
        assert again == net
    assert json.loads((tmp_path / "net.json").read_text())["input"] == [1, 28, 28]


def test_conv1d_and_transpose_geometry() -> None:
    c1 = Layer.from_dict({"op": "conv1d", "in_channels": 96, "out_channels": 64, "in_dim": [126, 1],
                          "kernel": [3, 1], "pad": [1, 0], "pool": [2, 1], "pool_stride": [2, 1]})
    assert c1.pooled_dim == (63, 1) and c1.out_dim == (63, 1)
    ct = Layer.from_dict({"op": "convtranspose2d", "in_channels": 3, "out_channels": 64, "in_dim": [7, 9]})
    assert ct.out_dim == (14, 18)


def test_shape_errors_name_layers() -> None:
    net = Network.loads(MNIST_YAML.replace("in_channels: 56, out_channels: 12", "in_channels: 50, out_channels: 12"))
    errors = net.shape_errors()
    assert len(errors) == 1 and errors[0].startswith("layer 3:") and "56x8x8" in errors[0]


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("input: [1, 28, 28]\nlayers: []", "non-empty list"),
        ("layers:\n  - {op: conv5d, in_channels: 1, out_channels: 2, in_dim: [4, 4]}", "'op' must be one of"),
        ("layers:\n  - {op: conv2d, in_channels: 1, out_channels: 2}", "missing required key 'in_dim'"),
        ("layers:\n  - {op: conv2d, in_channels: x, out_channels: 2, in_dim: [4, 4]}", "'in_channels' must be an integer"),
        ("layers:\n  - {op: conv2d, in_channels: 1, out_channels: 2, in_dim: [4, 4], colour: red}", "unknown key"),
        ("layers:\n  - {op: conv2d, in_channels: 1, out_channels: 2, in_dim: [4, 4], pad: -1}", "must not be negative"),
        ("layers:\n  - {op: conv2d, in_channels: 1, out_channels: 2, in_dim: [2, 2], pad: 0}", "leaves no output"),
        ("input: [1, 28]\nlayers:\n  - {op: conv2d, in_channels: 1, out_channels: 2, in_dim: [4, 4]}", "'input' must be three"),
        ("layers: [unclosed", "not valid YAML"),
        ("- just\n- a list", "must be a mapping"),
    ],
)
def test_malformed_descriptions(text: str, fragment: str) -> None:
    with pytest.raises(NetworkFormatError) as info:
        Network.loads(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NetworkFormatError, match="no such file"):
        Network.load(tmp_path / "nope.yaml")


def test_with_bits() -> None:
    net = Network.loads(MNIST_YAML).with_bits([8, 4, 4, 2, 8])
    assert net.bit_widths == [8, 4, 4, 2, 8]
    assert net.weight_bytes < 71_148
