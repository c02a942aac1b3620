"""``nas device list`` and ``nas device check``: outputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.cli import main

DATA = Path(__file__).resolve().parents[1] / "devices" / "data"

WIDE_8BIT = """
input: [3, 8, 8]
layers:
  - {op: conv2d, in_channels: 3, out_channels: 128, in_dim: [8, 8]}
  - {op: conv2d, in_channels: 128, out_channels: 128, in_dim: [8, 8]}
  - {op: conv2d, in_channels: 128, out_channels: 128, in_dim: [8, 8]}
  - {op: conv2d, in_channels: 128, out_channels: 128, in_dim: [8, 8]}
"""


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "list"]) == 0
    out = capsys.readouterr().out
    assert "max78000" in out and "accelerator" in out and "ai8x" in out
    assert main(["device", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name": "max78000", "kind": "accelerator"}.items() <= rows[0].items()


def test_check_fitting_network_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "check", "max78000", str(DATA / "mnist.yaml")]) == 0
    out = capsys.readouterr().out
    for text in ("48,956", "70,157", "71,148 of 442,368", "5 of 32", "1.403 ms", "50 MHz",
                 "146 of 768", "input load", "fits"):
        assert text in out, text


def test_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "check", "max78000", str(DATA / "kws20_v3.yaml"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["fits"] is True and d["violations"] == []
    assert d["cycles"] == 71_782 and d["weight_bytes"] == 169_472 and d["layers"] == 9
    assert d["latency_ms"] == pytest.approx(1.43564)
    assert {"bias_bytes", "layer_cycles", "placement", "input_load_ms"} <= d.keys()


def test_check_not_fitting_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = tmp_path / "wide.yaml"
    net.write_text(WIDE_8BIT)
    assert main(["device", "check", "max78000", str(net)]) == 1
    out = capsys.readouterr().out
    assert "does not fit" in out and "layer 0: 8-bit kernels need 128 free consecutive columns" in out
    assert "kernel memory exhausted" in out and "not placed" in out
    assert main(["device", "check", "max78000", str(net), "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["fits"] is False and len(d["violations"]) == 1
    net.write_text(WIDE_8BIT.replace("in_dim: [8, 8]}", "in_dim: [8, 8], weight_bits: 4}"))
    assert main(["device", "check", "max78000", str(net)]) == 0


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["device", "check", "max78000", "{missing}"], "no such file"),
        (["device", "check", "max78000", "{bad_yaml}"], "not valid YAML"),
        (["device", "check", "max78000", "{bad_key}"], "unknown key(s) kernal"),
        (["device", "check", "nope", "{good}"], "unknown device 'nope'; available: max78000"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("input: [1, 28, 28]\nlayers: [ {op: conv2d\n")
    bad_key = tmp_path / "key.yaml"
    bad_key.write_text("layers:\n  - {op: conv2d, in_channels: 1, out_channels: 8, in_dim: [8, 8], kernal: 3}\n")
    paths = {"missing": tmp_path / "missing.yaml", "bad_yaml": bad_yaml, "bad_key": bad_key,
             "good": DATA / "mnist.yaml"}
    argv = [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nas device: error:") and fragment in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


@pytest.mark.parametrize("chip", ["max78000", "max78002"])
def test_check_totals_are_the_chips_capacities(chip: str, capsys: pytest.CaptureFixture[str]) -> None:
    from devices import get_device
    from search_spaces import Network

    report = get_device(chip).report(Network.load(DATA / "mnist.yaml"))
    assert main(["device", "check", chip, str(DATA / "mnist.yaml")]) == 0
    out = capsys.readouterr().out
    assert f"{report.bias_bytes:,} of {report.bias_capacity_bytes:,}" in out
    assert f"of {report.kernel_capacity_columns:,} processor-columns" in out
    assert f"of {report.weight_capacity_bytes:,}" in out
