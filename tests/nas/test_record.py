"""The run record (``nas.record``): round trip, runs saved before it had a version, bad versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.record import RECORD_VERSION, DataRecord, RunRecord, RunRecordError, SupernetRecord

DATA = {"name": "digits8x8", "source": "user file d.npz", "licence": "BSD", "input_shape": [1, 8, 8],
        "num_classes": 10, "train": 100, "val": 20, "test": 20, "conv1d": False, "fingerprint": "abc",
        "path": None, "image_size": None}


def _ai8x() -> RunRecord:
    return RunRecord(device="max78000", space="ai8x", data=DataRecord.from_dict(DATA),
                     estimator={"estimator": "supernet", "val_images": 0}, metric="val_acc_supernet", data_seed=3,
                     budget_bytes=400_000, latency_ms=2.0, space_options={"bits": [2, 4, 8], "max_units": 3},
                     supernet=SupernetRecord(cache="/r/supernets/k", searched_widths=(16, 32), width_cap="why"),
                     bits_auto="2, 4, 8 (auto)", torch_device="cuda:0 (NVIDIA H100 80GB HBM3)")


def _phone() -> RunRecord:
    return RunRecord(device="pixel3", space="fbnet", data=DataRecord.from_dict(DATA),
                     estimator={"estimator": "naswot", "batch": 32}, metric="naswot", data_seed=0,
                     budget_bytes=None, latency_ms=None, ram_bytes=2_000_000, latency_margin=1.645,
                     device_kind="recorded")


@pytest.mark.parametrize("record", [_ai8x(), _phone()], ids=["ai8x", "phone"])
def test_round_trip_through_json(record: RunRecord) -> None:
    d = json.loads(json.dumps(record.to_dict()))
    assert d["format"] == RECORD_VERSION
    assert RunRecord.from_dict(d) == record
    assert RunRecord.from_dict(d).to_dict() == d


def test_torch_device_is_written_when_known_and_read_back() -> None:
    assert _ai8x().to_dict()["torch_device"] == "cuda:0 (NVIDIA H100 80GB HBM3)"
    assert "torch_device" not in _phone().to_dict()  # not recorded (runs written before it was)
    assert RunRecord.from_dict(_phone().to_dict()).torch_device is None


def test_phone_entries_are_written_only_for_latency_devices() -> None:
    assert "device_kind" not in _ai8x().to_dict() and "ram_bytes" not in _ai8x().to_dict()
    assert _phone().to_dict()["ram_bytes"] == 2_000_000 and "supernet" not in _phone().to_dict()


def test_a_run_saved_before_the_version_loads_through_the_migration() -> None:
    old = _ai8x().to_dict()
    del old["format"]
    assert RunRecord.from_dict(old) == _ai8x()
    older = {k: v for k, v in old.items() if k not in ("space", "data_seed")}  # before phones were searched
    rec = RunRecord.from_dict(older)
    assert rec.space == "ai8x" and rec.data_seed == 0


def test_an_old_run_on_disk_loads(tmp_path: Path) -> None:
    """A pareto.json settings block as nas wrote it before the record (copied from a real run)."""
    settings = {"device": "max78000", "budget_bytes": 442368, "latency_ms": None, "space": "ai8x",
                "space_options": {"max_units": 3, "bits": [2, 4, 8]}, "data": DATA,
                "estimator": {"estimator": "naswot", "batch": 16, "quantize": True, "threads": 1},
                "metric": "naswot_logdet_KH (batch 16)", "data_seed": 0, "bits_auto": "2, 4, 8 (auto): ..."}
    rec = RunRecord.from_dict(json.loads(json.dumps(settings)))
    assert rec.estimator_key == "naswot" and rec.budget_bytes == 442368 and rec.data.input_shape == (1, 8, 8)
    assert {k: v for k, v in rec.to_dict().items() if k != "format"} == settings


@pytest.mark.parametrize("version, words", [
    (RECORD_VERSION + 1, [f"version {RECORD_VERSION + 1}", f"<= {RECORD_VERSION}", "upgrade"]),
    ("2", ["'format'", "'2'"]),
    (0, ["'format'", "0"]),
])
def test_a_bad_or_future_version_is_refused_with_one_line(version: object, words: list[str]) -> None:
    d = {**_ai8x().to_dict(), "format": version}
    with pytest.raises(RunRecordError) as e:
        RunRecord.from_dict(d)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


@pytest.mark.parametrize("key, value, word", [
    ("device", 5, "device"), ("data", "mnist", "data"), ("data_seed", -1, "data_seed"),
    ("estimator", "supernet", "estimator"), ("budget_bytes", "400KB", "budget_bytes"),
    ("space_options", [1], "space_options"), ("torch_device", 0, "torch_device"),
])
def test_wrong_types_name_the_entry(key: str, value: object, word: str) -> None:
    d = {**_ai8x().to_dict(), key: value}
    with pytest.raises(RunRecordError, match=word):
        RunRecord.from_dict(d)


def test_qat_refuses_a_future_run_before_training(tmp_path: Path) -> None:
    from nas.qat import load_run
    from search_spaces import InputError

    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    d = {**_ai8x().to_dict(), "format": RECORD_VERSION + 1}
    (run / "pareto.json").write_text(json.dumps({"name": "r", "settings": d, "pareto": []}))
    with pytest.raises(InputError, match=f"version {RECORD_VERSION + 1}.*upgrade hw-nas"):
        load_run("r", tmp_path / "runs")
