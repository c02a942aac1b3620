"""The device kit: ONNX models of the reference architectures, standalone measure.py, README."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import devices
import predictors
from devices import KitError, write_kit
from search_spaces import get_space


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kit") / "nb201"
    write_kit("nasbench201", out)
    return out


def test_kit_holds_the_ten_references_as_onnx(kit: Path) -> None:
    refs = predictors.load("nasbench201").ref_archs_
    rows = list(csv.reader((kit / "archs.csv").open()))
    assert rows[0] == ["file", "arch"] and [r[1] for r in rows[1:]] == refs
    assert sorted(p.name for p in kit.iterdir()) == sorted(
        [f"ref_{i:02d}.onnx" for i in range(10)] + ["archs.csv", "measure.py", "README.md"])
    readme = (kit / "README.md").read_text()
    assert "python measure.py > samples.csv" in readme and "onnxruntime_perf_test" in readme


def test_onnx_model_matches_the_torch_module(kit: Path) -> None:
    arch = predictors.load("nasbench201").ref_archs_[3]
    torch.manual_seed(0)
    module = get_space("nasbench201").build(arch).eval()
    sess = ort.InferenceSession(str(kit / "ref_03.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "input" and list(inp.shape) == [1, 3, 32, 32]
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], ref, rtol=1e-4, atol=1e-4)


def test_measure_py_runs_without_the_package(kit: Path) -> None:
    # block torch and every hw-nas package: measure.py must need only numpy and onnxruntime
    code = (
        "import sys, runpy\n"
        "for m in ('torch', 'devices', 'predictors', 'search_spaces', 'nas'):\n"
        "    sys.modules[m] = None\n"
        f"sys.argv = ['measure.py', '--warmup', '1', '--number', '1', '--min-rounds', '2', '--max-rounds', '2']\n"
        f"runpy.run_path({str(kit / 'measure.py')!r}, run_name='__main__')\n"
    )
    res = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader(res.stdout.splitlines()))
    assert rows[0] == ["arch", "latency_ms"] and len(rows) == 11
    assert [r[0] for r in rows[1:]] == predictors.load("nasbench201").ref_archs_
    assert all(float(r[1]) > 0 for r in rows[1:])
    assert "ref_00.onnx" in res.stderr and "IQR" in res.stderr
    # its output is a valid samples file
    (kit.parent / "samples.csv").write_text(res.stdout)
    s = devices.read_samples(kit.parent / "samples.csv", "nasbench201")
    assert len(s.archs) == 10


def test_existing_kit_needs_force(kit: Path) -> None:
    with pytest.raises(KitError, match="already holds a kit.*--force"):
        write_kit("nasbench201", kit)


def test_force_rewrites_and_file_target_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import devices._kit

    def fake_export(space: str, arch: str, path: Path) -> str:  # the real export is tested above
        Path(path).write_text(arch)
        return str(path)

    monkeypatch.setattr(devices._kit, "export_onnx", fake_export)
    out = tmp_path / "k"
    out.mkdir()
    (out / "measure.py").write_text("old")
    (out / "ref_00.onnx").write_text("old")
    write_kit("nasbench201", out, force=True)
    assert (out / "ref_00.onnx").read_text() == predictors.load("nasbench201").ref_archs_[0]
    assert (out / "measure.py").read_text() != "old"
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(KitError, match="not a folder"):
        write_kit("nasbench201", f)


def test_space_without_modules_says_which_spaces_work(tmp_path: Path) -> None:
    with pytest.raises(KitError, match="ofa_mbv3.*fbnet, nasbench201"):
        write_kit("ofa_mbv3", tmp_path / "k")
    assert not (tmp_path / "k").exists()


def test_time_models_statistics() -> None:
    calls = {"a": 0, "b": 0}

    def run(name: str) -> None:
        calls[name] += 1

    timings = devices.time_models([("a", lambda: run("a")), ("b", lambda: run("b"))], warmup=2, number=3,
                                  min_rounds=4, max_rounds=4, tol=0.0)
    assert [t.name for t in timings] == ["a", "b"]
    assert calls == {"a": 2 + 3 * 4, "b": 2 + 3 * 4}
    assert all(len(t.rounds) == 4 and t.latency_ms > 0 and t.iqr_ms >= 0 for t in timings)
    with pytest.raises(ValueError):
        devices.time_models([("a", lambda: None)], stat="mean")
