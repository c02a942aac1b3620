"""nas search on phones, registered devices and host-cpu over the fbnet space."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nas.search import SearchConfig, run_search
from search_spaces import InputError, get_space
from search_spaces._fbnet_cost import fbnet_cost

REPO = Path(__file__).resolve().parents[2]
SMALL = dict(max_train_images=64, estimator="proxy", estimator_options={"batch": 16})
TINY_SUPERNET = {"epochs_largest": 1, "epochs_elastic": 1, "random_subnets": 1, "recal_images": 16, "val_images": 32,
                 "finetune_steps": 2}


def _check_front(run: Path, latency: float, budget: int | None, ram: int | None, k: float = 1.645) -> list[dict]:
    for f in ("pareto.csv", "pareto.json", "report.md", "pareto.png", "trials.csv", "study.journal"):
        assert (run / f).is_file(), f
    rows = json.loads((run / "pareto.json").read_text())["pareto"]
    assert rows
    for r in rows:
        assert r["latency_ms"] + k * r["std_ms"] == pytest.approx(r["latency_bound_ms"])
        assert r["latency_bound_ms"] <= latency
        if budget is not None:
            assert r["size_bytes"] <= budget
        if ram is not None:
            assert r["peak_ram_bytes"] <= ram
        net = json.loads((run / r["network_file"]).read_text())
        assert net["arch"] == r["arch"] and net["space"] == "fbnet" and net["size_bytes"] == r["size_bytes"]
    return rows


def test_cost_matches_torch_module() -> None:
    sp = get_space("fbnet", in_channels=1, num_classes=10, input_size=28)
    for arch in ("0" * 22, "8" * 22, "7818488874147327324245"):
        m = sp.build(arch, quantize=True)
        c = fbnet_cost(sp.op_indices(arch), in_channels=1, num_classes=10, input_size=28)
        assert c.weights == sum(p.numel() for p in m.parameters() if p.dim() > 1)
        assert c.size_bytes == c.weights + 4 * c.biases
    # all-skip: only 1x1 projections; the largest live pair is the head at 4x4 (352 + 1504 channels)
    c = fbnet_cost([8] * 22)
    assert c.peak_ram_bytes == max(3 * 32 * 32 + 16 * 32 * 32, 352 * 4 * 4 + 1504 * 4 * 4, 16 * 32 * 32 + 24 * 32 * 32)


def test_pixel3_search_meets_every_limit(tmp_path: Path) -> None:
    cfg = SearchConfig(device="pixel3", space="fbnet", latency_ms=20.0, budget_bytes=2_000_000, ram_bytes=200_000,
                       trials=8, runs_dir=tmp_path, name="p3", **SMALL)
    res = run_search(cfg)
    assert res.n_complete == 8
    rows = _check_front(res.run_dir, 20.0, 2_000_000, 200_000)
    assert {"std_ms", "latency_bound_ms", "peak_ram_bytes"} <= set(rows[0])
    text = (res.run_dir / "report.md").read_text()
    assert "mean + 1.645 x std <= limit" in text and "pixel3" in text
    assert res.metric.startswith("naswot_logdet_KH") and "supernet" not in res.settings
    assert "`--accuracy supernet` scores sub-networks of the fbnet supernet" in text


def _digits(tmp_path: Path, n: int = 240) -> Path:
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()  # 8x8 digits: the fbnet supernet costs ~130 M MACs per 28x28 image
    data = tmp_path / "digits.npz"
    np.savez(data, x=(d.images[:n] * 16).clip(0, 255).astype(np.uint8), y=d.target[:n])
    return data


def test_phone_default_estimate_is_the_fbnet_supernet(tmp_path: Path) -> None:
    tiny = {k: v for k, v in TINY_SUPERNET.items() if k != "finetune_steps"}  # the default's 30 steps
    cfg = SearchConfig(device="pixel3", space="fbnet", latency_ms=30.0, trials=2, runs_dir=tmp_path,
                       data=_digits(tmp_path, 160), estimator_options=tiny)
    res = run_search(cfg)
    assert res.metric == "val_acc_supernet" and res.run_dir.name == "pixel3-fbnet-30ms-digits"
    est = res.settings["estimator"]
    assert est["estimator"] == "supernet" and est["finetune_steps"] == 30 and est["epochs_elastic"] == 1
    assert "covers every op of every layer" in (res.run_dir / "report.md").read_text()
    # --accuracy proxy is the quick estimate, and its run is named so
    quick = run_search(SearchConfig(device="pixel3", space="fbnet", latency_ms=30.0, trials=1, runs_dir=tmp_path,
                                    data=_digits(tmp_path, 160), estimator="proxy", estimator_options={"batch": 16}))
    assert quick.metric.startswith("naswot_logdet_KH") and quick.run_dir.name == "pixel3-fbnet-30ms-digits-proxy"
    assert "the default `--accuracy supernet`" in (quick.run_dir / "report.md").read_text()


def test_phone_search_with_the_fbnet_supernet_and_qat_starts_from_it(tmp_path: Path) -> None:
    from nas.qat import QatConfig, run_qat

    cfg = SearchConfig(device="pixel3", space="fbnet", latency_ms=30.0, trials=3, runs_dir=tmp_path,
                       data=_digits(tmp_path), estimator="supernet", estimator_options=TINY_SUPERNET)
    res = run_search(cfg)
    assert res.metric == "val_acc_supernet" and res.n_complete == 3
    est = res.settings["estimator"]
    assert est["estimator"] == "supernet" and est["finetune_steps"] == 2 and est["random_subnets"] == 1
    cache = Path(res.settings["supernet"]["cache"])
    assert (cache / "weights.safetensors").is_file() and "searched_widths" not in res.settings["supernet"]
    rows = _check_front(res.run_dir, 30.0, None, None)
    assert all(0.0 <= r["estimate"] <= 1.0 for r in rows)
    text = (res.run_dir / "report.md").read_text()
    assert "int8 per-channel weights" in text and "covers every op of every layer" in text and str(cache) in text
    assert res.run_dir.name == "pixel3-fbnet-30ms-digits"
    q = run_qat(res.run_dir.name, QatConfig(top=1, epochs=1, qat_epochs=1, max_train_images=64, max_eval_images=64,
                                batch_size=32), runs_dir=tmp_path)
    (n,) = q.networks
    # init auto after a supernet search: fine-tuned from the supernet's weights and from scratch, the better kept
    assert set(n.extra["float_val_acc_by_init"]) == {"supernet", "scratch"}
    assert n.init.startswith(("supernet", "scratch")) and "from the supernet's weights" in n.init
    assert all(r["estimate_metric"] == res.metric for r in rows)


def test_cli_pixel3(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nas", "search", "--device", "pixel3", "--space", "fbnet", "--latency", "20ms",
         "--budget", "4MB", "--ram", "2MB", "--trials", "3", "--runs-dir", str(tmp_path), "--name", "cli", "--no-qat",
         "--accuracy", "proxy"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    _check_front(tmp_path / "cli", 20.0, 4_000_000, 2_000_000)


@pytest.mark.parametrize("args", [
    ["--device", "pixel3", "--space", "ai8x"],
    ["--device", "pixel3", "--space", "nasbench201"],
    ["--device", "pixel3", "--space", "nope"],
    ["--device", "max78000", "--space", "fbnet"],
    ["--device", "max78000", "--ram", "2MB"],
    ["--device", "max78000", "--latency-margin", "2"],
    ["--device", "pixel3", "--space", "fbnet", "--latency-margin", "-1"],
    ["--device", "pixel3", "--space", "fbnet", "--ram", "0"],
    ["--device", "no-such-phone", "--space", "fbnet"],
])
def test_bad_space_device_combos_exit_2(tmp_path: Path, args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "nas", "search", *args, "--trials", "2", "--runs-dir",
                          str(tmp_path / "runs")], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_bad_combo_raises_before_writing(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        run_search(SearchConfig(device="pixel3", space="ai8x", trials=1, runs_dir=tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_registered_device(home: Path, tmp_path: Path) -> None:
    import devices
    import predictors

    table = predictors.load_latency_table("fbnet")
    y = table.device("pixel3")
    idx = list(table.ref_index) + [i for i in range(12) if i not in set(table.ref_index)][:2]
    samples = devices.check_samples("fbnet", [table.archs[i] for i in idx], [float(y[i]) for i in idx])
    devices.register_space_device("my-phone", samples, source="pixel3 table rows")
    res = run_search(SearchConfig(device="my-phone", latency_ms=25.0, budget_bytes=3_000_000, trials=5,
                                  runs_dir=tmp_path, name="mine", **SMALL))
    assert res.settings["space"] == "fbnet" and res.settings["device_kind"] == "registered"
    _check_front(res.run_dir, 25.0, 3_000_000, None)


def test_host_cpu_measures(tmp_path: Path) -> None:
    res = run_search(SearchConfig(device="host-cpu", space="fbnet", latency_ms=1000.0, trials=2, runs_dir=tmp_path,
                                  name="host", device_options=dict(warmup=1, number=1, min_rounds=3, max_rounds=3),
                                  **SMALL))
    rows = _check_front(res.run_dir, 1000.0, None, None)
    assert res.settings["device_kind"] == "measured"
    assert all(r["latency_ms"] > 0 for r in rows)


def test_a_phone_run_from_the_naswot_default_says_how_to_resume_it(tmp_path: Path) -> None:
    from nas.search import SettingsMismatchError

    run_search(SearchConfig(device="pixel3", space="fbnet", latency_ms=20.0, trials=1, runs_dir=tmp_path,
                            name="pixel3-fbnet-20ms", **SMALL))  # what the default made before
    with pytest.raises(SettingsMismatchError, match="resume it with --accuracy proxy --name pixel3-fbnet-20ms"):
        run_search(SearchConfig(device="pixel3", space="fbnet", latency_ms=20.0, trials=2, runs_dir=tmp_path,
                                max_train_images=64, estimator_options=TINY_SUPERNET))
    res = run_search(SearchConfig(device="pixel3", space="fbnet", latency_ms=20.0, trials=2, runs_dir=tmp_path,
                                  name="pixel3-fbnet-20ms", **SMALL))
    assert res.n_complete == 2  # resumed: one trial was there
