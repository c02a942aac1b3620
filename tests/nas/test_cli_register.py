"""``nas device kit / register / show / remove``: outputs, exit codes, registry left alone on failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import predictors
from nas.cli import main

SPACE = "nasbench201"
DATA = Path(__file__).resolve().parents[1] / "devices" / "data"


pytestmark = pytest.mark.usefixtures("home")


def samples_csv(tmp_path: Path, device: str = "raspi4") -> Path:
    t = predictors.load_latency_table(SPACE)
    y = t.device(device)
    idx = list(t.ref_index) + [300, 301]
    path = tmp_path / "samples.csv"
    path.write_text("arch,latency_ms\n" + "".join(f"{t.archs[i]},{y[i]}\n" for i in idx))
    return path


def test_register_prints_leave_one_out_and_show_lists_it(tmp_path: Path, home: Path,
                                                          capsys: pytest.CaptureFixture[str], snapshot: Callable[[], dict[str, bytes]]) -> None:
    path = samples_csv(tmp_path)
    assert main(["device", "register", "my-pi", "--space", SPACE, "--samples", str(path)]) == 0
    out = capsys.readouterr().out
    assert "registered my-pi" in out and "12 samples" in out
    assert "leave-one-out error: median" in out and "within +-10%" in out and "fit:" in out
    assert "nas predict --device my-pi" in out
    assert (home / "devices" / "my-pi.json").is_file()

    assert main(["device", "list"]) == 0
    out = capsys.readouterr().out
    assert "my-pi" in out and "registered" in out
    assert main(["device", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in rows]
    assert names.index("max78000") < names.index("my-pi") < names.index("pixel2")

    assert main(["device", "show", "my-pi"]) == 0
    out = capsys.readouterr().out
    assert "registered" in out and "leave-one-out" in out and str(path.resolve()) in out
    assert main(["device", "show", "my-pi", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "registered" and info["loo"]["n"] == 12

    before = snapshot()
    assert main(["device", "register", "my-pi", "--space", SPACE, "--samples", str(path)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert snapshot() == before
    assert main(["device", "register", "my-pi", "--space", SPACE, "--samples", str(path), "--force"]) == 0
    capsys.readouterr()
    assert main(["device", "remove", "my-pi"]) == 0
    assert main(["device", "show", "my-pi"]) == 2


@pytest.mark.parametrize("mutate, fragment", [
    (lambda L: L[:3] + L[4:], "reference architectures of nasbench201 are missing"),
    (lambda L: L + [L[2]], "line 14: duplicate architecture"),
    (lambda L: L[:6] + [L[6].split(",")[0] + ",-3"] + L[7:], "line 7: latency '-3' must be a positive"),
    (lambda L: L[:6] + [L[6].split(",")[0] + ",NaN"] + L[7:], "line 7: latency 'NaN' must be a positive finite"),
    (lambda L: L[:6] + [L[6].split(",")[0] + ",fast"] + L[7:], "line 7: latency 'fast' is not a number"),
    (lambda L: L[:6] + ["|nor_conv_3x3~0|+|none~0|,1.0"] + L[7:], "line 7: not a nasbench201 architecture"),
    (lambda L: L[:6] + ["only-one-column"] + L[7:], "line 7: expected 'arch,latency_ms'"),
])
def test_bad_samples_exit_2_with_one_line_and_registry_unchanged(
        mutate, fragment: str, tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str], snapshot: Callable[[], dict[str, bytes]]) -> None:
    good = samples_csv(tmp_path)
    assert main(["device", "register", "existing", "--space", SPACE, "--samples", str(good)]) == 0
    capsys.readouterr()
    before = snapshot()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(mutate(good.read_text().splitlines())) + "\n")
    for name in ("existing", "newdev"):
        args = ["device", "register", name, "--space", SPACE, "--samples", str(bad)]
        assert main(args + (["--force"] if name == "existing" else [])) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and fragment in err and str(bad) in err, err
        assert snapshot() == before


def test_other_bad_inputs(tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = samples_csv(tmp_path)
    cases = [
        (["device", "register", "x", "--space", SPACE, "--samples", str(tmp_path / "none.csv")], "no such file"),
        (["device", "register", "pixel3", "--space", SPACE, "--samples", str(good)], "built-in device"),
        (["device", "register", "a b", "--space", SPACE, "--samples", str(good)], "invalid device name"),
        (["device", "register", "x", "--space", "nope", "--samples", str(good)], "unknown search space"),
        (["device", "register", "x", "--space", "fbnet", "--samples", str(good)], "not a fbnet architecture"),
        (["device", "register", "x", "--space", "ofa_mbv3", "--measure", "onnxruntime"], "ofa_mbv3"),
        (["device", "kit", "--space", "ofa_mbv3", "--out", str(tmp_path / "k")], "no torch modules"),
        (["device", "show", "nope"], "unknown device"),
    ]
    for args, fragment in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert fragment in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not home.exists()


def test_register_by_measuring_on_this_machine(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["device", "register", "this-pc", "--space", SPACE, "--measure", "onnxruntime",
            "--warmup", "1", "--number", "1", "--min-rounds", "2", "--max-rounds", "2", "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    assert info["name"] == "this-pc" and info["samples"] == 10 and "onnxruntime" in info["source"]
    assert "measuring the 10 reference architectures" in captured.err
    record = json.loads((home / "devices" / "this-pc.json").read_text())
    assert len(record["measurement"]) == 10 and all(m["latency_ms"] > 0 for m in record["measurement"])


def test_register_max78000_board(tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import devices
    from search_spaces import Network

    base = devices.MAX78000()
    nets = sorted(DATA.glob("*.yaml"))
    rows = ["network,measured_ms"] + [f"{p.name},{1.1 * base.latency_ms(Network.load(p)) + 0.2}" for p in nets]
    csv_path = tmp_path / "board.csv"
    for p in nets:  # paths relative to the CSV's folder
        (tmp_path / p.name).write_text(p.read_text())
    csv_path.write_text("\n".join(rows) + "\n")
    assert main(["device", "register", "my-max", "--base", "max78000", "--samples", str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "calibrated" in out and "residual" in out and "rms" in out
    assert main(["device", "check", "my-max", str(DATA / "mnist.yaml"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["latency_ms"] == pytest.approx(1.1 * base.latency_ms(Network.load(DATA / "mnist.yaml")) + 0.2, rel=1e-3)
    assert main(["device", "register", "b2", "--base", "max78000", "--measure", "onnxruntime"]) == 2


def test_kit_extra_lists_references_then_chosen_archs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--extra K: the 10 references then K distinct other architectures, the same for a seed."""
    import csv

    assert main(["device", "kit", "--space", SPACE, "--out", str(tmp_path / "a"), "--extra", "4"]) == 0
    rows = list(csv.reader((tmp_path / "a" / "archs.csv").open()))[1:]
    refs = predictors.load(SPACE).ref_archs_
    archs = [r[1] for r in rows]
    assert len(archs) == 14 and len(set(archs)) == 14 and archs[:10] == refs
    assert [r[0] for r in rows[10:]] == [f"extra_{i:02d}.onnx" for i in range(4)]
    assert all((tmp_path / "a" / r[0]).is_file() for r in rows)
    assert "extra_*.onnx" in (tmp_path / "a" / "README.md").read_text()
    assert archs[10:] == predictors.select_extra(predictors.load(SPACE), 4, seed=0)
    assert predictors.select_extra(predictors.load(SPACE), 6, seed=0)[:4] == archs[10:]  # greedy: nested
    assert predictors.select_extra(predictors.load(SPACE), 4, seed=1) != archs[10:]


@pytest.mark.parametrize("k", ["-1", "2.5", "x", "100000"])
def test_kit_bad_extra_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], k: str) -> None:
    try:
        code = main(["device", "kit", "--space", SPACE, "--out", str(tmp_path / "k"), "--extra", k])
    except SystemExit as e:  # argparse's refusal
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "--extra" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "k").exists()


def test_register_uses_the_extra_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A device registered from the 10 references and 20 chosen extras predicts those extras
    better than one registered from the references alone: every sample enters the fit."""
    import devices

    t = predictors.load_latency_table(SPACE)
    dev = t.splits["meta_test"][0]
    y = dict(zip(t.archs, t.device(dev)))
    extra = predictors.select_extra(predictors.load(SPACE), 20, seed=0)
    refs = list(t.ref_archs)
    for name, archs in (("refs-only", refs), ("with-extra", refs + extra)):
        path = tmp_path / f"{name}.csv"
        path.write_text("arch,latency_ms\n" + "".join(f"{a},{y[a]}\n" for a in archs))
        assert main(["device", "register", name, "--space", SPACE, "--samples", str(path)]) == 0
    assert f"{len(refs) + 20} samples" in capsys.readouterr().out
    truth = np.array([y[a] for a in extra])
    err = {n: np.median(np.abs(devices.get_device(n).predict(SPACE, extra) / truth - 1))
           for n in ("refs-only", "with-extra")}
    assert err["with-extra"] < 0.5 * err["refs-only"]
