"""The MAX78002 as a search target: ``nas search --device max78002 --budget 1MB`` then ``nas qat``
on the run, export included, through the command line (the quick estimate, 8x8 digits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import devices
from nas.cli import main
from nas.targets import get_target, target_for_device

pytestmark = pytest.mark.skipif("max78002" not in devices.list_devices(), reason="no max78002 device registered")


def _digits(tmp_path: Path) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    p = tmp_path / "digits.npz"
    np.savez(p, x=(d.images[:240] * 16).clip(0, 255).astype(np.uint8), y=d.target[:240])
    return p


def test_the_max78002_has_its_own_target() -> None:
    t = target_for_device(devices.get_device("max78002"))
    assert t.name == "max78002" and get_target("max78000").weight_capacity < t.weight_capacity
    assert t.part == "MAX78002" and t.hardware.max_layers == 128


def test_search_then_qat_with_export_on_the_max78002(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    assert main(["search", "--device", "max78002", "--budget", "1MB", "--trials", "4", "--accuracy", "proxy",
                 "--data", str(_digits(tmp_path)), "--runs-dir", str(runs), "--name", "m2", "--no-qat"]) == 0
    report = (runs / "m2" / "report.md").read_text()
    assert "weight bytes (of 2,396,160)" in report and "layers - 128" in report and "extrapolation" in report
    assert main(["qat", "m2", "--runs-dir", str(runs), "--top", "1", "--epochs", "1", "--qat-epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "pass" in out or "FAIL" in out
    (export,) = (runs / "m2" / "export").iterdir()
    card = (export / "model_card.md").read_text()
    assert "## MAX78002 figures" in card and "at 200 MHz" in card and "of 2,396,160" in card
    assert "--device MAX78002" in card and "nas search --device max78002 --budget 1000000B" in card
    assert (export / "ai8x-synthesis.yaml").read_text().startswith("---")
    qat_md = (runs / "m2" / "qat" / "qat.md").read_text()
    assert "device max78002" in qat_md and "MAX78002 QAT" in qat_md and "200 MHz" in qat_md
