"""benchmarks/measure_host_bank.py (the bank of real devices) and its loader benchmarks/host_bank.py."""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


mhb = _load("measure_host_bank")
hb = _load("host_bank")

TINY = {  # small networks: few convolutions
    "nasbench201": "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    "fbnet": "8888888888888888888888",
}


# ---------------------------------------------------------------------------------------- real timing
@pytest.mark.parametrize("space", ["nasbench201", "fbnet"])
def test_prepare_and_time_one_tiny_architecture(space: str, tmp_path: Path) -> None:
    """Every configuration runs for real: fp32 at 3 shapes, int8 QDQ, PyTorch eager."""
    import onnx

    configs = tuple(mhb.CONFIGS)
    mhb.prepare_arch(space, TINY[space], 0, configs, tmp_path)
    variants = {mhb.CONFIGS[c].variant for c in configs if mhb.CONFIGS[c].runtime == "ort"}
    assert {p.name for p in (tmp_path / space / "models").iterdir()} == {f"00000_{v}.onnx" for v in variants}
    ms = mhb.time_unit(space, TINY[space], 0, configs, tmp_path, warmup=0, number=1, seed=0)
    assert list(ms) == list(configs)
    assert all(np.isfinite(v) and v > 0 for v in ms.values())
    # the int8 model really is quantised (QDQ nodes), the batch-8 and 64x64 models have those inputs
    q = onnx.load(mhb.model_path(tmp_path, space, 0, mhb.CONFIGS["ort_int8_1t"].variant))
    assert Counter(n.op_type for n in q.graph.node)["QuantizeLinear"] > 0
    for c, shape in (("ort_fp32_2t_b8", [8, 3, 32, 32]), ("ort_fp32_1t_r64", [1, 3, 64, 64])):
        m = onnx.load(mhb.model_path(tmp_path, space, 0, mhb.CONFIGS[c].variant))
        assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == shape


@pytest.mark.parametrize("space", ["nasbench201", "fbnet"])
def test_stripped_model_is_small_and_refilled_with_the_same_shapes(space: str, tmp_path: Path) -> None:
    """Weights and large constants (NAS-Bench-201's zero nodes at batch 8) are stored as statistics
    and redrawn: same shapes and dtypes, same spread, zeros stay zeros."""
    import onnx
    from onnx import numpy_helper

    from devices import export_onnx

    def tensors(m: Any) -> dict[str, np.ndarray]:
        return {k: numpy_helper.to_array(t) for k, t in mhb._tensors(m)}

    arch = {"nasbench201": "|none~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
            "fbnet": TINY["fbnet"]}[space]  # node 1 of the cell is zero and used
    src = export_onnx(space, arch, tmp_path / "m.onnx", batch=8)
    full = tensors(onnx.load(src))
    stripped = mhb.strip_weights(onnx.load(src)).SerializeToString()
    assert len(stripped) < 0.1 * (tmp_path / "m.onnx").stat().st_size
    back = tensors(onnx.load_from_string(mhb.fill_weights(stripped, seed=1)))
    assert {k: (v.shape, v.dtype) for k, v in full.items()} == {k: (v.shape, v.dtype) for k, v in back.items()}
    big = max(full, key=lambda k: full[k].size if full[k].std() > 0 else 0)
    assert not np.array_equal(full[big], back[big])  # redrawn ...
    assert abs(back[big].std() / full[big].std() - 1) < 0.1  # ... with the same spread
    zeros = [k for k, v in full.items() if v.size > mhb.STRIP_MIN and not v.any()]
    assert (space == "nasbench201") == bool(zeros)
    assert all(not back[k].any() for k in zeros)


# ---------------------------------------------------------------------------------------- resume
class _Killed(Exception):
    pass


def _fake_timer(monkeypatch: pytest.MonkeyPatch, calls: list[tuple[str, int]], kill_after: int | None = None) -> None:
    """Replace model preparation by nothing and the timer by a counter (deterministic values)."""
    monkeypatch.setattr(mhb, "prepare_arch", lambda *a, **k: None)

    def fake(space: str, arch: str, arch_id: int, configs: Any, work: Path, **kw: Any) -> dict[str, float]:
        if kill_after is not None and len(calls) >= kill_after:
            raise _Killed
        calls.append((space, arch_id))
        n = sum(1 for c in calls if c == (space, arch_id))
        return {c: 1.0 + arch_id + 0.1 * j + 0.01 * n for j, c in enumerate(configs)}

    monkeypatch.setattr(mhb, "time_unit", fake)


def _settings(n_archs: int = 12, n_repeat: int = 3, configs: tuple[str, ...] = ("ort_fp32_1t", "torch_1t")) -> Any:
    return mhb.Settings(("nasbench201", "fbnet"), n_archs, n_repeat, configs, 0, 1, 0)


def _run(out: Path, rounds: int = 1, **kw: Any) -> dict[str, Any]:
    return mhb.run_bank(_settings(**kw), rounds, out, show_progress=False, log=lambda s: None, jobs=1)


def test_tables_format_and_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import predictors
    from search_spaces import get_space

    calls: list[tuple[str, int]] = []
    _fake_timer(monkeypatch, calls)
    _run(tmp_path, rounds=1)
    assert len(calls) == 2 * (12 + 3)
    for space in ("nasbench201", "fbnet"):
        with gzip.open(tmp_path / f"{space}.csv.gz", "rt") as f:
            header = f.readline().strip().split(",")
        assert header == ["arch", "help_index", "ref", "ort_fp32_1t", "torch_1t"]
        bank = hb.load_host_bank(space, tmp_path)
        assert len(bank.archs) == 12 and bank.latency_ms.shape == (2, 12)
        assert len(bank.repeat_rows) == 3 and bank.repeat_ms.shape == (2, 3)
        sp = get_space(space)
        assert bank.ref_archs == [sp.format(a) for a in predictors.load(space).ref_archs_]
        table = predictors.load_latency_table(space)
        for a, i in zip(bank.archs, bank.help_index):
            assert sp.format(table.archs[i]) == a
        # the fake round value: 1 + arch id + 0.1 per column + 0.01 per call of that architecture;
        # a repeat-subset architecture is timed twice (main and repeat: 0.01 and 0.02, in either order)
        ids = np.arange(12)
        y = bank.latency_ms - (1 + ids)[None, :] - np.array([[0.0], [0.1]])
        rows = bank.repeat_rows
        assert np.allclose(np.delete(y, rows, axis=1), 0.01)
        assert np.allclose(y[:, rows] + bank.repeat_ms - (1 + ids[rows])[None, :] - [[0.0], [0.1]], 0.03)
    readme = (tmp_path / "README.md").read_text()
    assert "ort_fp32_1t" in readme and "repeat spearman" in readme.lower() and "TRIAL" not in readme


def test_resume_skips_finished_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    total = 2 * (12 + 3) * 2  # spaces x (archs + repeats) x rounds
    calls: list[tuple[str, int]] = []
    _fake_timer(monkeypatch, calls, kill_after=17)
    with pytest.raises(_Killed):
        _run(tmp_path, rounds=2)
    assert not (tmp_path / "nasbench201.csv.gz").exists()  # no tables before every round is done
    saved = sum(len((tmp_path / ".work" / f"{s}.jsonl").read_text().splitlines()) - 1 for s in ("nasbench201", "fbnet"))
    assert saved == 17
    calls2: list[tuple[str, int]] = []
    _fake_timer(monkeypatch, calls2)
    _run(tmp_path, rounds=2)
    assert len(calls2) == total - 17
    calls3: list[tuple[str, int]] = []
    _fake_timer(monkeypatch, calls3)
    _run(tmp_path, rounds=2)
    assert calls3 == []  # all done: nothing timed again
    _run(tmp_path, rounds=3)  # one more round: only that round's units
    assert len(calls3) == total // 2
    assert hb.load_host_bank("fbnet", tmp_path).latency_ms.shape == (2, 12)


def test_truncated_work_file_is_recovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []
    _fake_timer(monkeypatch, calls)
    _run(tmp_path)
    work = tmp_path / ".work" / "fbnet.jsonl"
    lines = work.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    work.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed mid-write
    calls.clear()
    _run(tmp_path)
    assert calls == [("fbnet", last["arch"])]  # only the cut unit is timed again
    text = work.read_text()
    assert text.endswith("\n") and all(json.loads(x) for x in text.splitlines())
    assert hb.load_host_bank("fbnet", tmp_path).latency_ms.shape == (2, 12)


def test_work_folder_of_other_settings_or_damaged_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []
    _fake_timer(monkeypatch, calls)
    _run(tmp_path)
    before = (tmp_path / ".work" / "nasbench201.jsonl").read_bytes()
    with pytest.raises(mhb.BankError, match="other settings"):
        _run(tmp_path, n_archs=13)
    assert (tmp_path / ".work" / "nasbench201.jsonl").read_bytes() == before
    work = tmp_path / ".work" / "nasbench201.jsonl"
    lines = before.splitlines(keepends=True)
    work.write_bytes(lines[0] + b"{not json}\n" + b"".join(lines[1:]))
    with pytest.raises(mhb.BankError, match="line 2 is damaged"):
        _run(tmp_path)


def test_bad_options_exit_2_with_one_line(tmp_path: Path) -> None:
    for args, words in ((["--configs", "ort_fp32_1t,gpu"], "--configs"), (["--spaces", "ofa_mbv3"], "--spaces"),
                        (["--n-archs", "5"], "--n-archs"), (["--repeat", "50", "--n-archs", "20"], "--repeat")):
        res = subprocess.run([sys.executable, str(BENCH / "measure_host_bank.py"), *args, "--out", str(tmp_path / "o")],
                             capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
        assert res.returncode == 2, res.stderr
        assert res.stderr.startswith("error: ") and words in res.stderr and res.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------- loader errors
def _write(path: Path, text: str) -> None:
    with gzip.open(path, "wt") as f:
        f.write(text)


def _good(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    calls: list[tuple[str, int]] = []
    _fake_timer(monkeypatch, calls)
    mhb.run_bank(mhb.Settings(("nasbench201",), 11, 2, ("ort_fp32_1t",), 0, 1, 0), 1, tmp_path,
                 show_progress=False, jobs=1)
    return tmp_path / "nasbench201.csv.gz"


@pytest.mark.parametrize("damage,words", [
    ("missing", "no such bank table"),
    ("not_gzip", "not a readable gzip CSV"),
    ("header", "header must start with"),
    ("negative", "finite number of ms > 0"),
    ("text", "not a number"),
    ("short", "fields"),
    ("no_refs", "reference architectures"),
    ("bad_arch", "line 2"),
    ("repeat_stranger", "is not in"),
])
def test_loader_damage_gives_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str,
                                            words: str) -> None:
    main = _good(tmp_path, monkeypatch)
    with gzip.open(main, "rt") as f:
        lines = f.read().splitlines()
    row = lines[1].split(",")
    if damage == "missing":
        main.unlink()
    elif damage == "not_gzip":
        main.write_bytes(b"arch,help_index,ref,x\n")
    elif damage == "header":
        _write(main, "\n".join(["cell,idx,ref,ort_fp32_1t", *lines[1:]]) + "\n")
    elif damage in ("negative", "text", "short", "no_refs", "bad_arch"):
        if damage == "negative":
            row[3] = "-1"
        elif damage == "text":
            row[3] = "fast"
        elif damage == "short":
            row = row[:3]
        elif damage == "no_refs":
            row[2] = "-1"
        else:
            row[0] = "|bogus~0|"
        _write(main, "\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    else:
        rep = tmp_path / "nasbench201_repeat.csv.gz"
        with gzip.open(rep, "rt") as f:
            rl = f.read().splitlines()
        other = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|avg_pool_3x3~2|"
        _write(rep, "\n".join([rl[0], ",".join([other, *rl[1].split(",")[1:]]), *rl[2:]]) + "\n")
    with pytest.raises(hb.HostBankError, match=words) as e:
        hb.load_host_bank("nasbench201", tmp_path)
    assert "\n" not in str(e.value)
    assert hb.main([str(tmp_path)]) == (0 if damage == "missing" else 2)  # the script skips absent spaces


def test_spearman_matches_scipy() -> None:
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 40).astype(float)  # ties
    b = a + rng.normal(0, 1, 40)
    assert hb.spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)


def test_int8_of_a_network_whose_output_ignores_its_input(tmp_path: Path) -> None:
    """A NAS-Bench-201 cell of only 'none' edges exports as a constant graph: static calibration
    finds no activation to observe, and the int8 model is the fp32 one (nothing to quantise)."""
    import onnx

    from devices import export_onnx

    arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    src, dst = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    export_onnx("nasbench201", arch, str(src), seed=0)
    mhb.quantize_int8(str(src), str(dst), seed=0)
    assert onnx.load(str(dst)).SerializeToString() == onnx.load(str(src)).SerializeToString()
