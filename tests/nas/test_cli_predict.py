"""``nas predict``: recorded, registered and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import predictors
from nas.cli import main

OUTSIDE = "0" * 22


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "nashome"
    monkeypatch.setenv("NAS_HOME", str(h))
    return h


def test_recorded_device_says_which_values_are_recorded(capsys: pytest.CaptureFixture[str]) -> None:
    t = predictors.load_latency_table("fbnet")
    arch = t.archs[42]
    assert main(["predict", "--device", "pixel3", "--space", "fbnet", arch, OUTSIDE]) == 0
    out = capsys.readouterr().out
    assert arch in out and OUTSIDE in out and "recorded" in out and "predicted" in out
    assert "1 of 2 recorded in pixel3's latency table (std 0)" in out
    assert main(["predict", "--device", "pixel3", "--space", "fbnet", OUTSIDE, arch, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["arch"] for r in rows] == [OUTSIDE, arch]
    assert rows[1]["latency_ms"] == t.device("pixel3")[42] and rows[1]["std_ms"] == 0
    assert rows[1]["source"] == "recorded" and rows[0]["std_ms"] > 0


def test_archs_file_and_registered_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = predictors.load_latency_table("fbnet")
    y = t.device("samsung_s7")
    s = tmp_path / "s.csv"
    s.write_text("".join(f"{t.archs[i]},{y[i]}\n" for i in t.ref_index))
    assert main(["device", "register", "phone", "--space", "fbnet", "--samples", str(s)]) == 0
    capsys.readouterr()
    f = tmp_path / "archs.txt"
    f.write_text(f"# candidates\n{t.archs[4000]}\n\n{OUTSIDE}\n")
    assert main(["predict", "--device", "phone", "--archs", str(f), "--json"]) == 0  # its only space
    rows = json.loads(capsys.readouterr().out)
    q = predictors.load("fbnet").adapt([t.archs[i] for i in t.ref_index], y[t.ref_index])
    pm, ps = q.predict([t.archs[4000], OUTSIDE], return_std=True)
    assert [r["arch"] for r in rows] == [t.archs[4000], OUTSIDE]
    assert [r["latency_ms"] for r in rows] == pytest.approx(list(pm), rel=1e-5)
    import devices

    k = devices.get_device("phone").std_scale
    assert k >= 1.0
    assert [r["std_ms"] for r in rows] == pytest.approx(list(k * ps), rel=1e-5)
    f.write_text(f"{OUTSIDE}\n12345\n")
    assert main(["predict", "--device", "phone", "--archs", str(f)]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and len(err.strip().splitlines()) == 1


def test_bad_inputs_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cases = [
        (["predict", "--device", "nope", OUTSIDE], "unknown device"),
        (["predict", "--device", "pixel3", OUTSIDE], "choose one with --space"),
        (["predict", "--device", "pixel3", "--space", "ofa_mbv3", OUTSIDE], "no latency for search space"),
        (["predict", "--device", "pixel3", "--space", "fbnet", OUTSIDE, "9x"], "argument 2"),
        (["predict", "--device", "pixel3", "--space", "fbnet"], "no architectures"),
        (["predict", "--device", "max78000", "--space", "fbnet", OUTSIDE], "no latency for search space"),
        (["predict", "--device", "pixel3", "--space", "fbnet", "--archs", str(tmp_path / "x")], "no such file"),
    ]
    for args, fragment in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert fragment in err and len(err.strip().splitlines()) == 1, (args, err)


def test_accelerator_and_host_cpu(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    import devices
    from search_spaces import get_space

    sp = get_space("ai8x")
    arch = sp.format(sp.random_arch(np.random.default_rng(0)))
    assert main(["predict", "--device", "max78000", arch, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["latency_ms"] == pytest.approx(devices.MAX78000().latency_ms(sp.network(arch)))
    assert row["std_ms"] == 0 and row["source"] == "model"

    devices.HostCPU._cache.clear()
    import devices._registry

    fast = dict(warmup=1, number=1, min_rounds=2, max_rounds=2)  # tiny repetition counts
    monkeypatch.setitem(devices._registry._DEVICES, "host-cpu", lambda **k: devices.HostCPU(**fast))
    ref = predictors.load("nasbench201").ref_archs_[0]
    assert main(["predict", "--device", "host-cpu", "--space", "nasbench201", ref, "--json"]) == 0
    captured = capsys.readouterr()
    (row,) = json.loads(captured.out)
    assert row["source"] == "measured" and row["latency_ms"] > 0
    assert "measuring 1 architecture(s)" in captured.err


def test_archs_file_that_is_binary_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Issue 16 case 10: --archs on a binary file gave a traceback."""
    for data in (bytes(range(256)) * 4, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", b"ab\x00cd\n"):
        f = tmp_path / "archs.bin"
        f.write_bytes(data)
        assert main(["predict", "--device", "pixel3", "--space", "fbnet", "--archs", str(f)]) == 2
        err = capsys.readouterr().err
        assert str(f) in err and "text" in err and len(err.strip().splitlines()) == 1, err
