"""Registered devices: samples validation, adaptation, leave-one-out, atomic storage, MAX78000 calibration."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import devices
import predictors
from devices import RegisteredDevice, RegistryError, SamplesError, get_device, list_devices
from search_spaces import InputError, Network

DATA = Path(__file__).parent / "data"
SPACE = "nasbench201"


pytestmark = pytest.mark.usefixtures("home")


def table_rows(device: str = "gold_6226", extra: int = 3) -> tuple[list[str], np.ndarray]:
    t = predictors.load_latency_table(SPACE)
    idx = list(t.ref_index) + [i for i in range(200, 200 + extra)]
    return [t.archs[i] for i in idx], t.device(device)[idx]


def write_csv(path: Path, archs: list[str], ms: list[float] | np.ndarray, header: bool = True) -> Path:
    lines = (["arch,latency_ms"] if header else []) + [f"{a},{v}" for a, v in zip(archs, ms)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_register_adapt_store_and_load(tmp_path: Path, home: Path) -> None:
    archs, ms = table_rows()
    s = devices.read_samples(write_csv(tmp_path / "s.csv", archs, ms), SPACE)
    assert s.lines == list(range(2, 2 + len(archs)))
    dev = devices.register_space_device("my-board", s, source="s.csv")
    files = sorted(p.name for p in (home / "devices").iterdir() if p.name != ".lock")  # .lock: the writers' lock
    assert files[0] == "my-board-" + files[0][9:] and files[0].endswith(".npz") and files[1] == "my-board.json"
    record = json.loads((home / "devices" / "my-board.json").read_text())
    assert record["format"] == "hw-nas/device" and record["space"] == SPACE and record["source"] == "s.csv"
    assert len(record["samples"]) == 13 and record["loo"]["n"] == 13
    assert 0 <= record["loo"]["median_abs_error"] <= record["loo"]["max_abs_error"]

    again = get_device("my-board")
    assert isinstance(again, RegisteredDevice) and again.kind == "registered" and again.spaces == [SPACE]
    assert "my-board" in list_devices() and "my-board" in devices.user_device_names()
    t = predictors.load_latency_table(SPACE)
    query = t.archs[5000:5010]
    q = predictors.load(SPACE).adapt(archs, ms)
    y, sd = again.predict(SPACE, query, return_std=True)
    np.testing.assert_allclose(y, q.predict(query), rtol=1e-5)
    assert np.all(sd > 0)
    est = dev.estimate(SPACE, query)
    assert est.source == ["predicted"] * 10
    info = again.info()
    assert info["samples"] == 13 and info["loo"]["n"] == 13 and "samples" not in info["loo"]
    _, sd_raw = q.predict(query, return_std=True)
    np.testing.assert_allclose(sd, again.std_scale * sd_raw, rtol=1e-5)
    loo = devices.leave_one_out(predictors.load(SPACE), SPACE, archs, ms)
    z = np.log(loo.predicted_ms / loo.measured_ms) / (loo.std_ms / loo.predicted_ms)
    assert again.std_scale == pytest.approx(max(1.0, float(np.sqrt(np.mean(z**2)))))


def test_leave_one_out_never_uses_the_left_out_latency() -> None:
    archs, ms = table_rows(extra=2)
    base = predictors.load(SPACE)
    r1 = devices.leave_one_out(base, SPACE, archs, ms)
    for i in (0, 11):  # a reference and an extra sample
        ms2 = ms.copy()
        ms2[i] *= 3.0
        r2 = devices.leave_one_out(base, SPACE, archs, ms2)
        assert r2.predicted_ms[i] == pytest.approx(r1.predicted_ms[i], rel=1e-3)
    assert r1.summary()["n"] == 12


def test_existing_name_needs_force_and_force_replaces(tmp_path: Path, home: Path, snapshot: Callable[[], dict[str, bytes]]) -> None:
    archs, ms = table_rows()
    s = devices.read_samples(write_csv(tmp_path / "s.csv", archs, ms), SPACE)
    devices.register_space_device("dev1", s, source="a")
    before = snapshot()
    with pytest.raises(RegistryError, match="already exists.*--force"):
        devices.register_space_device("dev1", s, source="b")
    assert snapshot() == before
    s2 = devices.check_samples(SPACE, archs, ms * 2)
    devices.register_space_device("dev1", s2, source="b", force=True)
    names = sorted(p.name for p in (home / "devices").iterdir() if p.name != ".lock")
    assert len(names) == 2  # the old predictor file is gone
    assert get_device("dev1").record["source"] == "b"
    devices.remove_user_device("dev1")
    assert [p.name for p in (home / "devices").iterdir()] == [".lock"]
    with pytest.raises(RegistryError, match="no registered device"):
        devices.remove_user_device("dev1")


@pytest.mark.parametrize("name, match", [
    ("max78000", "built-in"), ("pixel3", "built-in"), ("host-cpu", "built-in"),
    ("bad name", "invalid device name"), ("-x", "invalid device name"), ("", "invalid device name"),
    ("a/b", "invalid device name"),
])
def test_bad_names(name: str, match: str, tmp_path: Path, home: Path) -> None:
    archs, ms = table_rows()
    s = devices.check_samples(SPACE, archs, ms)
    with pytest.raises(RegistryError, match=match):
        devices.register_space_device(name, s, source="x")
    assert not home.exists()


REF = predictors.load(SPACE).ref_archs_


@pytest.mark.parametrize("edit, match", [
    (lambda L: L[:5] + L[6:], r"1 of the 10 reference architectures .* missing"),
    (lambda L: L + [L[3]], r"line 12: duplicate architecture .* \(first on line 4\)"),
    (lambda L: L[:4] + [L[4].split(",")[0] + ",-1.5"] + L[5:], r"line 5: latency '-1.5' must be a positive"),
    (lambda L: L[:4] + [L[4].split(",")[0] + ",0"] + L[5:], r"line 5: latency '0' must be a positive"),
    (lambda L: L[:2] + [L[2].split(",")[0] + ",nan"] + L[3:], r"line 3: latency 'nan' must be a positive finite"),
    (lambda L: L[:2] + [L[2].split(",")[0] + ",inf"] + L[3:], r"line 3: latency 'inf' must be a positive finite"),
    (lambda L: L[:2] + [L[2].split(",")[0] + ",12ms"] + L[3:], r"line 3: latency '12ms' is not a number"),
    (lambda L: L[:2] + [L[2].split(",")[0]] + L[3:], r"line 3: expected 'arch,latency_ms'"),
    (lambda L: L + ["|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|,3.0"], r"line 12: not a nasbench201 architecture"),
    (lambda L: L[:1], r"no samples"),
])
def test_bad_samples_name_the_line_and_leave_registry_alone(edit, match: str, tmp_path: Path, home: Path, snapshot: Callable[[], dict[str, bytes]]) -> None:
    archs, ms = table_rows(extra=0)
    lines = ["arch,latency_ms"] + [f"{a},{v}" for a, v in zip(archs, ms)]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(edit(lines)) + "\n")
    devices.register_space_device("keep", devices.check_samples(SPACE, archs, ms), source="ok")
    before = snapshot()
    with pytest.raises(SamplesError, match=match) as err:
        devices.read_samples(path, SPACE)
    assert isinstance(err.value, InputError) and "\n" not in str(err.value)
    assert str(path) in str(err.value)
    assert snapshot() == before


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SamplesError, match="no such file"):
        devices.read_samples(tmp_path / "missing.csv", SPACE)
    b = tmp_path / "bin.csv"
    b.write_bytes(b"\xff\xfe\x00garbage\x81")
    with pytest.raises(SamplesError, match="not a UTF-8"):
        devices.read_samples(b, SPACE)


def test_headerless_and_extra_columns_and_comments(tmp_path: Path) -> None:
    archs, ms = table_rows(extra=1)
    path = tmp_path / "s.csv"
    path.write_text("# measured on my board\n" + "\n".join(f"{a},{v},extra" for a, v in zip(archs, ms)) + "\n\n")
    s = devices.read_samples(path, SPACE)
    assert s.archs == archs and s.lines[0] == 2


def test_failed_write_leaves_registry_as_it_was(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, snapshot: Callable[[], dict[str, bytes]]) -> None:
    archs, ms = table_rows()
    s = devices.check_samples(SPACE, archs, ms)
    devices.register_space_device("dev1", s, source="a")
    before = snapshot()
    import devices._user as user

    def boom(path: Path, data: bytes) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(user, "_atomic_write", boom)
    with pytest.raises(OSError, match="disk full"):
        devices.register_space_device("dev1", s, source="b", force=True)
    with pytest.raises(OSError, match="disk full"):
        devices.register_space_device("dev2", s, source="b")
    assert snapshot() == before


def test_read_only_operations_do_not_create_the_registry(home: Path) -> None:
    assert devices.user_device_names() == []
    list_devices()
    with pytest.raises(devices.UnknownDeviceError, match="register yours"):
        get_device("nope")
    assert not home.exists()


def test_default_home_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NAS_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert devices.nas_home() == tmp_path / "xdg" / "hw-nas"


def test_corrupt_or_newer_device_file_is_one_line_error(home: Path) -> None:
    d = home / "devices"
    d.mkdir(parents=True)
    (d / "x.json").write_text("{not json")
    with pytest.raises(RegistryError, match="cannot be read"):
        get_device("x")
    (d / "x.json").write_text(json.dumps({"format": "hw-nas/device", "format_version": 99, "written_by": "hw-nas 9"}))
    with pytest.raises(RegistryError, match="upgrade hw-nas"):
        get_device("x")


# ---------------------------------------------------------------------------- MAX78000
def test_max78000_calibration_recovers_a_stated_model(tmp_path: Path, home: Path) -> None:
    nets = sorted(DATA.glob("*.yaml"))
    base = devices.MAX78000()
    a, b, c = 1.2, 4e-5, 0.3

    def words(n: Network) -> int:
        ch, h, w = n.input
        return h * w * -(-ch // 4)

    rows = ["network,measured_ms"]
    for p in nets:
        n = Network.load(p)
        rows.append(f"{p},{a * base.latency_ms(n) + b * words(n) + c}")
    csv_path = tmp_path / "board.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    dev = devices.register_max78000_device("my-board", csv_path)
    np.testing.assert_allclose(dev.coef, (a, b, c), rtol=1e-4, atol=1e-9)
    assert max(abs(r) for r in dev.record["residuals_ms"]) < 1e-6
    again = get_device("my-board")
    assert isinstance(again, devices.CalibratedMAX78000) and again.kind == "registered"
    n0 = Network.load(nets[0])
    assert again.latency_ms(n0) == pytest.approx(a * base.latency_ms(n0) + b * words(n0) + c)
    rep = again.report(n0)
    assert rep.latency_ms == pytest.approx(again.latency_ms(n0)) and "calibrated" in rep.assumptions[-1]
    assert again.spaces == ["ai8x"]


def test_max78000_bad_timings(tmp_path: Path, home: Path) -> None:
    nets = sorted(DATA.glob("*.yaml"))
    p = tmp_path / "board.csv"
    p.write_text(f"{nets[0]},1.5\n{tmp_path / 'nope.yaml'},2\n")
    with pytest.raises(SamplesError, match="line 2: network file .* not found"):
        devices.register_max78000_device("b", p)
    p.write_text(f"{nets[0]},1.5\n{nets[1]},-2\n")
    with pytest.raises(SamplesError, match="line 2: latency '-2' must be a positive"):
        devices.register_max78000_device("b", p)
    p.write_text(f"{nets[0]},1.5\n{nets[0]},2\n{nets[1]},2\n")
    with pytest.raises(SamplesError, match="line 2: duplicate network"):
        devices.register_max78000_device("b", p)
    p.write_text(f"{nets[0]},1.5\n")
    with pytest.raises(SamplesError, match="at least 3"):
        devices.register_max78000_device("b", p)
    assert not home.exists()


# ---------------------------------------------------------------------------- robustness (issue 16)
def _race_store(args: tuple) -> str:  # a child process: wait for the others, then write the device
    barrier, name, record, predictor, force = args
    import devices._user as user

    barrier.wait(timeout=60)
    try:
        user._store(name, dict(record), predictor, force)
    except RegistryError as e:
        return f"refused: {e}"
    return "stored"


def _race(name: str, record: dict, predictor: object, force: bool, n: int = 2) -> list[str]:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    barrier = ctx.Manager().Barrier(n)
    with ctx.Pool(n) as pool:
        res = pool.map_async(_race_store, [(barrier, name, record, predictor, force)] * n)
        return res.get(timeout=120)


def test_concurrent_registrations_never_delete_the_winners_files(home: Path) -> None:
    """Issue 16 case 3: two 'register NAME' at once; the loser's clean-up deleted the winner's .npz."""
    archs, ms = table_rows()
    s = devices.check_samples(SPACE, archs, ms)
    base = predictors.load(SPACE)
    adapted = base.adapt(s.archs, s.latency_ms)
    record = {"kind": "registered", "base": "predictor", "space": SPACE, "created": "2024-01-01T00:00:00+00:00",
              "source": "race", "samples": [[a, float(v)] for a, v in zip(s.archs, s.latency_ms)],
              "loo": devices.leave_one_out(base, SPACE, s.archs, s.latency_ms).to_dict()}
    d = home / "devices"
    for round_ in range(4):
        name = f"race{round_}"
        outcome = sorted(_race(name, record, adapted, force=False))
        assert outcome[-1] == "stored" and outcome[0].startswith("refused") and "already exists" in outcome[0], outcome
        dev = get_device(name)
        assert (d / dev.record["predictor_file"]).is_file()
        assert dev.predict(SPACE, archs[:2]).shape == (2,)
        # with --force both win in turn; the device left points at a file that exists, nothing else is left
        assert _race(name, record, adapted, force=True) == ["stored", "stored"]
        dev = get_device(name)
        assert dev.predict(SPACE, archs[:2]).shape == (2,)
        assert sorted(p.name for p in d.iterdir() if p.name.startswith(name)) == \
            sorted([f"{name}.json", dev.record["predictor_file"]])
    assert not [p.name for p in d.iterdir() if p.name.startswith(".") and p.name != ".lock"]  # no temp files


def test_a_losing_writer_removes_only_what_it_wrote(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The device appears while this writer saves its predictor: the writer fails and the other's
    files (the same content, so the same predictor file name) stay."""
    import devices._user as user

    archs, ms = table_rows()
    s = devices.check_samples(SPACE, archs, ms)
    devices.register_space_device("dev", s, source="first")
    files = {p.name: p.read_bytes() for p in (home / "devices").iterdir() if not p.name.startswith(".")}
    monkeypatch.setattr(user, "check_free", lambda name, force: None)  # as if the check had run before the other wrote
    with pytest.raises(RegistryError, match="already exists"):
        devices.register_space_device("dev", s, source="second")
    assert {p.name: p.read_bytes() for p in (home / "devices").iterdir() if not p.name.startswith(".")} == files
    assert get_device("dev").predict(SPACE, archs[:1]).shape == (1,)


@pytest.mark.parametrize("content", [
    "{not json",
    "",
    json.dumps([1, 2]),
    json.dumps({"format": "hw-nas/device", "format_version": 1, "name": "x", "base": "predictor", "space": 7,
                "predictor_file": "x-000000000000.npz"}),
    json.dumps({"format": "hw-nas/device", "format_version": 1, "name": "x", "base": "max78000",
                "coefficients": "fast", "samples": []}),
])
def test_a_corrupted_device_can_be_removed_or_replaced_with_the_tool(content: str, tmp_path: Path, home: Path) -> None:
    """Issue 16 case 6 (and case 10: wrong types): the error names a fix, and the fix works."""
    from nas.cli import main

    d = home / "devices"
    d.mkdir(parents=True)
    (d / "x.json").write_text(content)
    (d / "x-000000000000.npz").write_bytes(b"PK\x03\x04 a predictor that belonged to it")
    with pytest.raises(RegistryError) as e:
        get_device("x")
    msg = str(e.value)
    assert "\n" not in msg and str(d / "x.json") in msg
    assert "nas device remove x" in msg and "--force" in msg
    assert main(["device", "remove", "x"]) == 0
    assert sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) == []
    with pytest.raises(devices.UnknownDeviceError):
        get_device("x")
    # register --force over a corrupted file
    (d / "x.json").write_text(content)
    archs, ms = table_rows()
    csv_path = write_csv(tmp_path / "s.csv", archs, ms)
    assert main(["device", "register", "x", "--space", SPACE, "--samples", str(csv_path)]) == 2  # still needs --force
    assert main(["device", "register", "x", "--space", SPACE, "--samples", str(csv_path), "--force"]) == 0
    dev = get_device("x")
    assert dev.predict(SPACE, archs[:1]).shape == (1,)
    assert sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) == sorted(["x.json", dev.record["predictor_file"]])


@pytest.mark.parametrize("edit, word", [
    (lambda r: r.update(coefficients=[float("nan"), 1e-5, 0.1]), "coefficients"),
    (lambda r: r.update(coefficients=[1.0, -1e-5, 0.1]), "coefficients"),
    (lambda r: r.update(coefficients=[-1.0, 0.0, 0.0]), "coefficients"),
    (lambda r: r.update(coefficients=[0.0, 0.0, 0.0]), "coefficients"),
    (lambda r: r.update(coefficients=[1.0, 2.0]), "coefficients"),
    (lambda r: r.update(coefficients=[1.0, True, 0.0]), "coefficients"),
    (lambda r: r.update(coefficients=[1.0, 0.0, float("inf")]), "coefficients"),
    (lambda r: r.update(base_options={"clock_hz": "fast"}), "base_options"),
    (lambda r: r.update(base_options={"input_cycles_per_word": float("nan")}), "base_options"),
    (lambda r: r.update(base_options={"warp": 9}), "base_options"),
    (lambda r: r.update(residuals_ms="none"), "residuals_ms"),
    (lambda r: r.update(samples=[["a.yaml"]]), "samples"),
])
def test_bad_max78000_calibration_is_refused(edit, word: str, tmp_path: Path, home: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 16 case 7: NaN or negative board-calibration coefficients were accepted (NaN: every
    trial failed while the CLI said feasible; negative: negative latencies)."""
    from nas.cli import main

    nets = sorted(DATA.glob("*.yaml"))
    base = devices.MAX78000()
    rows = [f"{p},{1.1 * base.latency_ms(Network.load(p)) + 0.2}" for p in nets]
    (tmp_path / "board.csv").write_text("\n".join(rows) + "\n")
    devices.register_max78000_device("board", tmp_path / "board.csv")
    path = home / "devices" / "board.json"
    record = json.loads(path.read_text())
    assert all(np.isfinite(record["coefficients"])) and min(record["coefficients"]) >= 0
    edit(record)
    path.write_text(json.dumps(record))
    with pytest.raises(RegistryError, match=word) as e:
        get_device("board")
    assert "nas device remove board" in str(e.value) and "\n" not in str(e.value)
    assert main(["device", "check", "board", str(nets[0])]) == 2  # 2: unusable input, not 1 (does not fit)
    assert main(["device", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["board"]["kind"] == "unreadable" and word in rows["board"]["description"]
    assert rows["max78000"]["kind"] == "accelerator"


def test_calibration_is_checked_where_it_is_set(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.optimize

    nets = sorted(DATA.glob("*.yaml"))
    (tmp_path / "board.csv").write_text("\n".join(f"{p},{1 + i}" for i, p in enumerate(nets)) + "\n")
    monkeypatch.setattr(scipy.optimize, "nnls", lambda a, b: (np.array([np.nan, 0.0, 1.0]), 0.0))
    with pytest.raises(RegistryError, match="coefficients"):
        devices.register_max78000_device("board", tmp_path / "board.csv")
    assert not (home / "devices" / "board.json").exists()
    with pytest.raises(ValueError):
        devices.MAX78000(input_cycles_per_word=float("nan"))
    with pytest.raises(ValueError):
        devices.MAX78000(clock_hz=float("inf"))


@pytest.mark.parametrize("edit", [
    lambda r: r.update(space=7),
    lambda r: r.update(space="nope"),
    lambda r: r.update(predictor_file=["x"]),
    lambda r: r.update(predictor_file="../../etc/passwd"),
    lambda r: r.update(loo="bad"),
    lambda r: r["loo"].update(std_scale="big"),
    lambda r: r["loo"].update(std_scale=float("nan")),
    lambda r: r.update(samples={"a": 1}),
    lambda r: r.update(name=3),
    lambda r: r.update(format_version=True),
    lambda r: r.update(format_version=-3),
    lambda r: r.update(created=5),
])
def test_device_file_with_wrong_types_is_one_line_error(edit, tmp_path: Path, home: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 16 case 10: a device JSON with wrong types gave a traceback."""
    from nas.cli import main

    archs, ms = table_rows()
    devices.register_space_device("dev", devices.check_samples(SPACE, archs, ms), source="a")
    path = home / "devices" / "dev.json"
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    for argv in (["device", "show", "dev"], ["predict", "--device", "dev", archs[0]]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err and "nas device remove dev" in err, err
    assert main(["device", "list"]) == 0  # the other devices are still listed, this one as unreadable
    out = capsys.readouterr().out
    assert "dev" in out and "max78000" in out


def test_a_damaged_predictor_file_names_the_device_fix(home: Path) -> None:
    archs, ms = table_rows()
    dev = devices.register_space_device("dev", devices.check_samples(SPACE, archs, ms), source="a")
    npz = home / "devices" / dev.record["predictor_file"]
    npz.write_bytes(npz.read_bytes()[:200])
    with pytest.raises(RegistryError) as e:
        get_device("dev").predict(SPACE, archs[:1])
    assert str(npz) in str(e.value) and "--force" in str(e.value)
    npz.unlink()
    with pytest.raises(RegistryError, match="--force"):
        get_device("dev").predict(SPACE, archs[:1])
