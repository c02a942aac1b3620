"""Sizing the ai8x supernet's covered widths from a time budget (nas.supernet._sizing) and what the
search records and reports of it. Step times are injected (fake), never asserted."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import nas.supernet._sizing as sizing_mod
from nas import SearchConfig, load_npz
from nas.cli import main
from nas.estimators import SupernetAccuracy, settings_from_run
from nas.search import prepare_estimator, validate
from nas.supernet import (
    Sizing,
    SupernetSettings,
    covered_space,
    predict_train_seconds,
    size_widths,
    supernet_key,
    width_cap,
)
from search_spaces import InputError, get_space

STEP = {16: 1.0, 24: 1.5, 32: 2.0, 48: 3.0, 64: 4.0, 96: 6.0, 128: 8.0, 192: 12.0, 256: 16.0}
SMALL = 0.1


class FakeTimer:
    """A step timer with fixed, width-dependent seconds; records the widths it was asked about."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, cov, archs, *args, **kwargs) -> float:
        self.calls.append((cov.widths[-1], len(archs)))
        smallest = archs[0]["units"][0][0]["kernel"] == 1  # the largest sub-networks are 3x3
        return SMALL if smallest else STEP[cov.widths[-1]]


def _tiny(tmp: Path, n: int = 60) -> Path:
    rng = np.random.default_rng(0)
    path = tmp / "tiny.npz"
    np.savez(path, x=rng.integers(0, 256, (n, 8, 8), dtype=np.uint8), y=np.arange(n) % 3)
    return path


def _predicted(space, settings: SupernetSettings, n_train: int, width: int) -> float:
    cov = covered_space(space, replace(settings, time_budget_s=None, max_width=width))
    return predict_train_seconds(cov, settings, n_train, STEP[width], SMALL)


# ---------------------------------------------------------------------- the sizing function
def test_size_widths_takes_the_widest_predicted_to_fit() -> None:
    sp = get_space("ai8x", input_shape=(1, 28, 28), num_classes=10)
    x = np.zeros((3200, 1, 28, 28), np.float32)
    y = np.zeros(3200, np.int64)
    base = SupernetSettings(time_budget_s=1.0)
    p32, p48 = _predicted(sp, base, 3200, 32), _predicted(sp, base, 3200, 48)
    assert p32 < p48
    settings = replace(base, time_budget_s=(p32 + p48) / 2)
    timer = FakeTimer()
    s = size_widths(sp, settings, x, y, step_time=timer)
    assert s.width == 32 and s.step_s == STEP[32] and s.small_step_s == SMALL
    assert s.predicted_s == pytest.approx(p32, abs=0.1) and s.steps_per_epoch == 100 and s.batch_size == 32
    assert [c[0] for c in s.candidates] == [16, 24, 32, 48] and "width 48" in s.stop
    # measured in order, the smallest sub-network once, nothing past the first width over the budget
    assert timer.calls == [(16, 1), (16, 3), (24, 3), (32, 3), (48, 3)]  # 4 units at 28x28: units 2, 3, 4
    # the covered space follows the recorded width, not a new measurement
    settled = replace(settings, budget_width=s.width)
    assert width_cap(sp, settled)[0] == 32 and covered_space(sp, settled).widths == (16, 24, 32)
    assert Sizing.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_size_widths_keeps_the_data_memory_rule_and_refuses_a_budget_too_small() -> None:
    big = get_space("ai8x", input_shape=(1, 64, 64), num_classes=10)
    x, y = np.zeros((64, 1, 64, 64), np.float32), np.zeros(64, np.int64)
    timer = FakeTimer()
    s = size_widths(big, SupernetSettings(time_budget_s=1e9), x, y, step_time=timer)
    assert s.width == 64 and "data memory" in s.stop  # 64x64x(2 words) > 16 KiB above 64, as the MAC cap
    assert max(w for w, _ in timer.calls) == 64
    with pytest.raises(InputError, match="--supernet-budget") as e:
        size_widths(big, SupernetSettings(time_budget_s=0.5), x, y, step_time=FakeTimer())
    assert "narrowest width 16" in str(e.value) and "\n" not in str(e.value)


def test_prediction_counts_every_epoch_of_every_step() -> None:
    sp = get_space("ai8x", input_shape=(1, 28, 28), num_classes=10)
    cov = covered_space(sp, SupernetSettings(max_width=32))
    only_largest = SupernetSettings(epochs_largest=3, epochs_elastic=0, batch_size=32)
    assert predict_train_seconds(cov, only_largest, 3200, 2.0, 0.1) == pytest.approx(100 * 3 * 2.0)
    one = SupernetSettings(epochs_largest=0, epochs_elastic=1, random_subnets=4)
    pred = predict_train_seconds(cov, one, 3200, 2.0, 0.1)
    assert 100 * (2.0 + 4 * 0.1) < pred < 100 * (2.0 + 4 * 2.0)  # sub-networks between the smallest and largest
    assert predict_train_seconds(cov, replace(one, random_subnets=8), 3200, 2.0, 0.1) > pred


def test_cache_key_follows_the_covered_widths_not_the_budget(tmp_path) -> None:
    data = load_npz(_tiny(tmp_path))
    sp = get_space("ai8x", input_shape=(1, 28, 28), num_classes=10)
    default = supernet_key(sp, data, SupernetSettings(), 0)[0]  # the MAC cap covers up to 32 at 28x28
    a = supernet_key(sp, data, SupernetSettings(time_budget_s=600, budget_width=32), 0)[0]
    b = supernet_key(sp, data, SupernetSettings(time_budget_s=7200, budget_width=32), 0)[0]
    c = supernet_key(sp, data, SupernetSettings(time_budget_s=7200, budget_width=64), 0)[0]
    assert a == b == default and c != a
    with pytest.raises(RuntimeError, match="not sized"):
        width_cap(sp, SupernetSettings(time_budget_s=600))


def test_supernet_estimate_holds_its_settings_once() -> None:
    est = SupernetAccuracy(max_width=48, epochs_elastic=2, train_threads=2, recal_images=64, finetune_steps=5)
    assert est.settings == SupernetSettings(max_width=48, epochs_elastic=2, threads=2, recal_images=64)
    d = est.to_dict()
    assert d["train_threads"] == 2 and d["recal_images"] == 64 and "settings" not in d
    assert "time_budget_s" not in d and "budget_width" not in d  # records of runs without a budget are unchanged
    assert SupernetAccuracy(**{k: v for k, v in d.items() if k != "estimator"}) == est
    sized = est.with_settings(max_width=None, time_budget_s=1800.0, budget_width=64)
    rec = sized.to_dict()
    assert rec["time_budget_s"] == 1800.0 and rec["budget_width"] == 64
    assert settings_from_run({"estimator": rec}) == sized.settings
    with pytest.raises(TypeError):
        SupernetAccuracy(no_such_setting=1)


# ---------------------------------------------------------------------- the search
def test_parse_errors_are_one_line(tmp_path, capsys) -> None:
    for args, word in ((["--supernet-budget", "soon"], "--supernet-budget"),
                       (["--supernet-budget", "0s"], "--supernet-budget"),
                       (["--supernet-budget", "30min", "--accuracy", "proxy"], "--accuracy supernet only")):
        assert main(["search", "--device", "max78000", *args, "--runs-dir", str(tmp_path / "runs")]) == 2
        err = capsys.readouterr().err.strip()
        assert word in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_recorded_widths_are_reused_on_resume_and_reported(tmp_path, capsys, monkeypatch) -> None:
    timer = FakeTimer()
    monkeypatch.setattr(sizing_mod, "measure_step_seconds", timer)
    data = _tiny(tmp_path)
    runs = tmp_path / "runs"
    args = ["search", "--device", "max78000", "--budget", "400KB", "--trials", "2", "--data", str(data),
            "--supernet-budget", "10s", "--supernet-epochs", "1", "--runs-dir", str(runs), "--no-qat"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert timer.calls and "supernet sizing: budget 10 s on cpu" in err
    run = runs / "max78000-400KB-tiny"
    settings = json.loads((run / "pareto.json").read_text())["settings"]
    sizing = settings["supernet"]["sizing"]
    width = sizing["width"]
    assert settings["estimator"]["budget_width"] == width and settings["estimator"]["time_budget_s"] == 10.0
    assert settings["supernet"]["searched_widths"] == [w for w in (16, 24, 32, 48, 64) if w <= width]
    assert [c[2] <= 10.0 for c in sizing["candidates"]] == [True] * (len(sizing["candidates"]) - 1) + [False]
    report = (run / "report.md").read_text()
    assert "## Covered space" in report and "--supernet-budget 10 s" in report
    assert f"{STEP[width]:.3g} s per training step of the largest sub-network at width {width}" in report
    assert "training predicted" in report and f"covered widths {settings['supernet']['searched_widths']}" in report
    assert "of the 400,000 B budget" in report and "of the chip's 442,368 B weight memory" in report
    # 2 units of 3 layers at 8x8: width 96 first exceeds 400 KB at 8 bits; the fake's 10 s covers less
    assert "the budget cannot bind on this machine" in report and "needs width 96" in report
    assert "--supernet-max-width 96" in report and "a GPU" in report

    # resuming never measures again, even without the memo: the run's record decides
    for memo in (runs / "supernets").glob(".sizing-*.json"):
        memo.unlink()
    timer.calls.clear()
    at = args.index("--trials") + 1
    assert main([*args[:at], "3", *args[at + 1:]]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and timer.calls == []
    again = json.loads((run / "pareto.json").read_text())["settings"]
    assert again["supernet"] == settings["supernet"] and again["estimator"] == settings["estimator"]
    # nas qat's settings come from the record too
    assert covered_space(get_space("ai8x", input_shape=(1, 8, 8), num_classes=3),
                         settings_from_run(again)).widths == tuple(again["supernet"]["searched_widths"])
    # resuming with another budget is refused in one line, nothing written
    size = (run / "study.journal").stat().st_size
    at = args.index("--supernet-budget") + 1
    assert main([*args[:at], "20s", *args[at + 1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert "--supernet-budget 10 s" in err and len(err.splitlines()) == 1
    assert (run / "study.journal").stat().st_size == size and timer.calls == []


def test_a_run_killed_before_its_study_resumes_with_the_same_widths(tmp_path, monkeypatch) -> None:
    """The sizing is remembered before the supernet trains: a kill during training (no study yet)
    does not measure again."""
    timer = FakeTimer()
    monkeypatch.setattr(sizing_mod, "measure_step_seconds", timer)
    cfg = SearchConfig(device="max78000", budget_bytes=20_000, trials=1, runs_dir=tmp_path / "runs",
                       data=str(_tiny(tmp_path)), estimator="supernet",
                       estimator_options={"time_budget_s": 10.0, "epochs_elastic": 1})
    prep = validate(cfg)
    assert prep.sizing_memo is not None and timer.calls
    prepare_estimator(prep, lambda _line: None)  # writes the memo, then trains; "killed" after it
    assert not (prep.run_dir / "study.journal").exists()
    timer.calls.clear()
    again = validate(cfg)
    assert timer.calls == [] and again.sizing_memo is None
    assert again.space.widths == prep.space.widths and again.record.to_dict() == prep.record.to_dict()


def test_max_width_overrides_the_budget(tmp_path, monkeypatch) -> None:
    timer = FakeTimer()
    monkeypatch.setattr(sizing_mod, "measure_step_seconds", timer)
    cfg = SearchConfig(device="max78000", budget_bytes=20_000, trials=1, runs_dir=tmp_path / "runs",
                       data=str(_tiny(tmp_path)), estimator="supernet",
                       estimator_options={"time_budget_s": 10.0, "max_width": 24})
    prep = validate(cfg)
    assert timer.calls == [] and prep.space.widths == (16, 24) and prep.record.supernet.sizing is None


def test_a_second_process_with_other_widths_does_not_join(tmp_path, monkeypatch) -> None:
    """Two processes starting one study at once may measure different widths: the one that opens
    the study second stops with one line instead of searching another space."""
    from nas.search._study import open_study, run_dir_locked

    cfg = SearchConfig(device="max78000", budget_bytes=20_000, trials=1, runs_dir=tmp_path / "runs",
                       data=str(_tiny(tmp_path)), estimator="supernet",
                       estimator_options={"time_budget_s": 10.0, "epochs_elastic": 1})
    monkeypatch.setattr(sizing_mod, "measure_step_seconds", FakeTimer())
    first = validate(cfg)
    for w in STEP:
        monkeypatch.setitem(STEP, w, 0.5)  # the second process's machine is faster: it covers more
    second = validate(cfg)  # no study yet: it measures (the memo is written only when a run goes on)
    assert second.space.widths[-1] > first.space.widths[-1]
    with run_dir_locked(first.run_dir):
        open_study(first, lambda _line: None)
    with run_dir_locked(second.run_dir), pytest.raises(InputError, match="another process") as e:
        open_study(second, lambda _line: None)
    assert "\n" not in str(e.value)
