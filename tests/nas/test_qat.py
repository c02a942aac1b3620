"""nas qat: a tiny QAT run on a few hundred images from a tiny search run; bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from devices import get_device
from nas.cli import main
from nas.qat import QatConfig, choose_rows, run_qat
from nas.search import SearchConfig, run_search
from search_spaces import InputError, get_space

SPACE = {"max_units": 3, "widths": [16, 24], "max_depth": 1, "bits": [2, 4, 8]}  # low-bit QAT is tested here
TINY = QatConfig(top=2, epochs=2, qat_epochs=3, anneal_epochs=1, max_train_images=400, init="scratch",
                 torch_device="cpu")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 6-trial MAX78000 search (NASWOT on 64 images) with its QAT done once."""
    runs = tmp_path_factory.mktemp("runs")
    cfg = SearchConfig(device="max78000", budget_bytes=400_000, trials=6, runs_dir=runs, name="tiny",
                       max_train_images=64, estimator="naswot", estimator_options={"batch": 16}, space_options=SPACE)
    res = run_search(cfg)
    assert len(res.pareto) >= 2
    run_qat("tiny", TINY, runs_dir=runs)
    return runs / "tiny"


def test_qat_outputs_name_the_torch_device(tiny_run: Path) -> None:
    s = json.loads((tiny_run / "qat" / "summary.json").read_text())
    assert s["torch_device"] == "cpu" and s["qat"]["torch_device"] == "cpu"
    assert all(n["extra"]["torch_device"] == "cpu" for n in s["networks"])
    assert "- torch device: cpu\n" in (tiny_run / "qat" / "qat.md").read_text()
    card = (tiny_run / s["networks"][0]["export_dir"] / "model_card.md").read_text()
    assert "QAT trained and scored on torch device cpu" in card


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_tiny_qat_records_float_and_quantised_accuracy(tiny_run: Path) -> None:
    s = json.loads((tiny_run / "qat" / "summary.json").read_text())
    pareto = json.loads((tiny_run / "pareto.json").read_text())["pareto"]
    chosen = choose_rows(pareto, 2)
    assert [n["arch"] for n in s["networks"]] == [r["arch"] for r in chosen]
    space = get_space("ai8x", input_shape=(1, 28, 28), num_classes=10, **SPACE)
    for n in s["networks"]:
        for k in ("float_val_acc", "float_test_acc", "quant_val_acc", "quant_test_acc"):
            assert 0.0 <= n[k] <= 1.0
        # 400 images, 2 + 3 epochs: above chance (0.1) even with a 1-bit layer
        assert n["quant_test_acc"] > 0.2 and n["float_test_acc"] > 0.3
        assert n["delta_test_acc"] == pytest.approx(n["quant_test_acc"] - n["float_test_acc"])
        assert n["init"].startswith("scratch") and n["extra"]["n_train"] == 400
        assert n["epochs"] == 2 and n["qat_epochs"] == 3 and n["best_qat_epoch"] >= 1  # annealed epoch 1 excluded
        rep = get_device("max78000").report(space.network(n["arch"]))
        assert n["device"]["latency_ms"] == rep.latency_ms and n["device"]["weight_bytes"] == rep.weight_bytes
        assert n["device"]["fits"] is True
    assert max(n["quant_test_acc"] for n in s["networks"]) > 0.6
    assert s["data"]["name"] == "mnist5k" and s["split_seed"] == 0
    report = (tiny_run / "report.md").read_text()
    assert report.count("## Quantisation-aware training") == 1 and "qat/qat.md" in report
    assert (tiny_run / "qat" / "qat.md").read_text().count("| trial-") == 2


def test_qat_is_deterministic_and_rewrites_its_section(tiny_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_run, copy, ignore=shutil.ignore_patterns("qat", "export"))
    assert (copy / "report.md").read_text().count("## Quantisation-aware training") == 1  # copied with it
    run_qat(copy, QatConfig(**{**TINY.__dict__, "top": 1}), runs_dir=tmp_path)
    a = json.loads((tiny_run / "qat" / "summary.json").read_text())["networks"][0]
    b = json.loads((copy / "qat" / "summary.json").read_text())["networks"][0]
    for k in ("arch", "float_test_acc", "quant_test_acc", "quant_val_acc", "best_qat_epoch"):
        assert a[k] == b[k], k
    assert (copy / "report.md").read_text().count("## Quantisation-aware training") == 1


def test_vendor_augmentation_changes_training_and_is_recorded(tiny_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_run, copy, ignore=shutil.ignore_patterns("qat", "export"))
    run_qat(copy, QatConfig(**{**TINY.__dict__, "top": 1, "augment": "vendor", "export": False}), runs_dir=tmp_path)
    s = json.loads((copy / "qat" / "summary.json").read_text())
    assert s["qat"]["augment"] == "vendor"
    assert "random crop with 4-pixel padding" in (copy / "qat" / "qat.md").read_text()
    a = json.loads((tiny_run / "qat" / "summary.json").read_text())["networks"][0]
    b = s["networks"][0]
    assert a["arch"] == b["arch"]
    # same seed and data, different training images: the weights (hence validation accuracy) differ
    assert (a["float_val_acc"], a["quant_val_acc"]) != (b["float_val_acc"], b["quant_val_acc"])
    assert b["float_test_acc"] > 0.3


def test_choice_rule() -> None:
    rows = [{"arch": "a", "estimate": 1.0, "latency_ms": 2.0, "trial": 3},
            {"arch": "b", "estimate": 3.0, "latency_ms": 5.0, "trial": 1},
            {"arch": "c", "estimate": 1.0, "latency_ms": 1.0, "trial": 7},
            {"arch": "d", "estimate": 2.0, "latency_ms": 4.0, "trial": 2},
            {"arch": "b", "estimate": 3.0, "latency_ms": 5.0, "trial": 0}]  # the same network from another trial
    assert [(r["arch"], r["trial"]) for r in choose_rows(rows, 3)] == [("b", 0), ("d", 2), ("c", 7)]
    assert [r["arch"] for r in choose_rows(rows, 10)] == ["b", "d", "c", "a"]


def _cli_bad(capsys: pytest.CaptureFixture[str], runs: Path, *args: str) -> str:
    before = _snapshot(runs)
    rc = main(["qat", *args, "--runs-dir", str(runs)])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("nas qat: error:")
    assert _snapshot(runs) == before  # nothing written
    return err


def test_bad_inputs_exit_2_and_write_nothing(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "ok", ignore=shutil.ignore_patterns("qat", "export"))
    assert "no such run" in _cli_bad(capsys, runs, "nope")
    assert "--top" in _cli_bad(capsys, runs, "ok", "--top", "0")
    assert "--epochs" in _cli_bad(capsys, runs, "ok", "--epochs", "0")
    assert "--augment" in _cli_bad(capsys, runs, "ok", "--augment", "flip")
    shutil.copytree(runs / "ok", runs / "broken")
    (runs / "broken" / "pareto.json").write_text('{"pareto": [')
    assert "not readable JSON" in _cli_bad(capsys, runs, "broken")
    shutil.copytree(runs / "ok", runs / "empty")
    p = json.loads((runs / "ok" / "pareto.json").read_text())
    (runs / "empty" / "pareto.json").write_text(json.dumps({**p, "pareto": []}))
    assert "no feasible Pareto network" in _cli_bad(capsys, runs, "empty")
    (runs / "empty" / "pareto.json").write_text(json.dumps({**p, "pareto": [{**p["pareto"][0], "fits": False}]}))
    assert "no feasible Pareto network" in _cli_bad(capsys, runs, "empty")
    (runs / "empty" / "pareto.json").write_text(json.dumps({"pareto": [{"arch": 5}], "settings": p["settings"]}))
    assert "arch" in _cli_bad(capsys, runs, "empty")
    (runs / "nojson").mkdir()
    assert "pareto.json" in _cli_bad(capsys, runs, "nojson")
    with pytest.raises(InputError, match="anneal"):
        run_qat(runs / "ok", QatConfig(anneal_epochs=-1), runs_dir=runs)


def test_phone_run_qat_exports_matching_onnx(tmp_path: Path) -> None:
    cfg = SearchConfig(device="pixel3", space="fbnet", latency_ms=50.0, trials=2, runs_dir=tmp_path, name="p3",
                       max_train_images=64, estimator="naswot", estimator_options={"batch": 16})
    run_search(cfg)
    res = run_qat("p3", QatConfig(top=1, epochs=1, qat_epochs=1, max_train_images=64, max_eval_images=64,
                                  batch_size=32, init="scratch"), runs_dir=tmp_path)
    (n,) = res.networks
    assert 0.0 <= n.float_test_acc <= 1.0 and 0.0 <= n.quant_test_acc <= 1.0
    assert n.device["kind"] == "phone" and n.device["size_bytes"] > 0 and n.device["latency_ms"] > 0
    on = n.extra["onnx"]
    assert on["images"] == 64 and n.extra["n_test"] == 64 and on["ok"] and on["argmax_agreement"] >= 0.99
    assert on["onnx_test_acc"] == pytest.approx(on["torch_test_acc"], abs=1 / 64) and on["sqnr_db"] > 30
    assert on["quantize_linear"] > 0 and on["dequantize_linear"] > 0
    assert on["weight_int_max"] == 63 and on["int16_pair_max"] == 2 * 255 * 63 and on["int16_safe"]
    out = res.run_dir / n.export_dir
    assert {p.name for p in out.iterdir()} == {"model.onnx", "network.json", "model_card.md"}
    assert json.loads((out / "network.json").read_text())["arch"] == n.arch
    card = (out / "model_card.md").read_text()
    assert "argmax agreement" in card and "pass" in card and "SQNR" in card
    assert "7-bit range [-63, 63] stored as int8" in card and "2 x 255 x 63 = 32,130 (within 32,767)" in card
    assert "weights |w| <= 63" in (res.run_dir / "qat" / "qat.md").read_text()


@pytest.fixture(scope="module")
def searched_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-trial MAX78000 search (NASWOT on 64 images), no QAT."""
    runs = tmp_path_factory.mktemp("runs")
    cfg = SearchConfig(device="max78000", budget_bytes=400_000, trials=4, runs_dir=runs, name="s",
                       max_train_images=64, estimator="naswot", estimator_options={"batch": 16}, space_options=SPACE)
    run_search(cfg)
    return runs / "s"


def _set(*keys: str, value: object):
    def edit(p: dict) -> None:
        d = p
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


@pytest.mark.parametrize("edit, word", [
    (_set("settings", "data", value="mnist"), "data"),
    (_set("settings", "device", value=5), "device"),
    (_set("settings", "device", value="no-such-device"), "unknown device"),
    (_set("settings", "space_options", value=[1]), "space_options"),
    (_set("settings", "space_options", "widths", value="16"), "space"),
    (_set("settings", "space_options", "nope", value=1), "space_options"),
    (_set("settings", "data_seed", value="x"), "data_seed"),
    (_set("settings", "data_seed", value=-1), "data_seed"),
    (_set("settings", "data_seed", value=None), "data_seed"),
    (_set("settings", "data", "input_shape", value="1x28x28"), "input_shape"),
    (_set("settings", "data", "num_classes", value="10"), "num_classes"),
    (_set("settings", "data", "image_size", value="ab"), "image_size"),
    (_set("settings", "estimator", value="supernet"), "estimator"),
    (_set("settings", "budget_bytes", value="400KB"), "budget_bytes"),
    (_set("pareto", 0, "trial", value="abc"), "trial"),
    (_set("pareto", 0, "latency_ms", value="fast"), "latency_ms"),
    (_set("pareto", 0, "estimate", value=float("nan")), "estimate"),
    (_set("pareto", 0, "estimate", value=True), "estimate"),
    (_set("pareto", 0, "fits", value="no"), "fits"),
    (_set("pareto", 0, "network_file", value=5), "network_file"),
    (_set("name", value=["a"]), "name"),
])
def test_pareto_json_with_edited_types_exit_2_and_write_nothing(searched_run: Path, tmp_path: Path, edit, word: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 16 case 10: pareto.json with edited types gave tracebacks under nas qat (or failed after training)."""
    runs = tmp_path / "runs"
    shutil.copytree(searched_run, runs / "r")
    p = json.loads((runs / "r" / "pareto.json").read_text())
    edit(p)
    (runs / "r" / "pareto.json").write_text(json.dumps(p))
    err = _cli_bad(capsys, runs, "r", "--top", "1", "--epochs", "1", "--qat-epochs", "1")
    assert word in err, err
    if word != "unknown device":
        assert "pareto.json" in err and "re-run the search" in err, err
