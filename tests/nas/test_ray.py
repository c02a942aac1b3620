"""``nas search --backend ray``: a tiny search on a local Ray with 2 CPUs (one Ray session)."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from nas import SearchConfig, run_search
from nas.cli import main
from nas.search import KILL_TRIAL_ENV, TrialFailedTwiceError

SMALL_SPACE = {"widths": (16, 24, 32), "max_units": 3, "max_depth": 2}


@pytest.fixture(scope="module")
def ray_session():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _temp_dir=str(Path(tempfile.gettempdir()) / "nas-ray-test"))
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x=rng.integers(0, 256, (60, 8, 8), dtype=np.uint8), y=np.arange(60) % 3)
    return path


def _cfg(runs: Path, data: Path, **kw) -> SearchConfig:
    base = dict(budget_bytes=20_000, budget_text="20KB", trials=6, seed=0, runs_dir=runs, data=data,
                space_options=SMALL_SPACE, estimator="naswot")
    base.update(kw)
    return SearchConfig(**base)


def _study(r) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(r.run_dir / "study.journal")))
    return optuna.load_study(study_name=r.name, storage=storage)


def _front_of(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Feasible, estimated trials no other such trial dominates (max estimate, min latency)."""
    ok = [t for t in trials if t.user_attrs["feasible"] and t.user_attrs["estimated"]]
    return {t.number for t in ok if not any(
        o.values[0] >= t.values[0] and o.values[1] <= t.values[1] and o.values != t.values for o in ok)}


def test_local_then_ray_same_study(ray_session, tmp_path, data) -> None:
    local = run_search(_cfg(tmp_path, data, trials=2))
    r = run_search(_cfg(tmp_path, data, trials=6, backend="ray", workers=2))
    assert r.resumed and r.run_dir == local.run_dir and r.n_new == 4 and r.n_complete == 6
    trials = _study(r).trials
    assert [t.number for t in trials] == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    dists = {k: v for t in trials[:2] for k, v in t.distributions.items()}
    for t in trials:
        assert set(t.constraints) >= {"weight_bytes_over_budget", "device_violations", "layers_over_limit"}
        assert t.user_attrs["feasible"] == all(v <= 0 for v in t.constraints.values())
        assert t.user_attrs["device"]["weight_bytes"] == t.constraints["weight_bytes_over_budget"] + 20_000
        assert t.user_attrs["device"]["latency_ms"] == t.values[1]
        assert t.user_attrs["estimated"] and t.user_attrs["estimate"] == t.values[0]  # naswot scores all
        assert isinstance(t.user_attrs["arch"], str) and "seconds" in t.user_attrs["estimate_details"]
        for k, v in t.distributions.items():
            assert dists.setdefault(k, v) == v, k  # same distributions as the local trials
    # The Pareto front written (pareto.json, report) is the one the trials say.
    payload = json.loads((r.run_dir / "pareto.json").read_text())
    assert {row["trial"] for row in payload["pareto"]} == _front_of(trials) != set()
    for name in ("pareto.csv", "pareto.png", "report.md", "trials.csv"):
        assert (r.run_dir / name).is_file()
    assert not list(r.run_dir.glob("ray*")) and not Path("ray_results").exists()


def test_ray_workers_load_the_supernet_the_driver_trained(ray_session, tmp_path, data) -> None:
    lines: list[str] = []
    opts = {"epochs_largest": 1, "epochs_elastic": 1, "batch_size": 16, "recal_images": 16}
    r = run_search(_cfg(tmp_path, data, trials=4, backend="ray", workers=2, name="sn", estimator="supernet",
                        estimator_options=opts), log=lines.append)
    assert r.n_complete == 4 and r.metric == "val_acc_supernet"
    caches = [p for p in (tmp_path / "supernets").iterdir() if not p.name.startswith(".")]
    assert len(caches) == 1 and sum("supernet: training on" in line for line in lines) == 1
    done = [t for t in _study(r).trials if t.user_attrs["estimated"]]
    assert done and all(t.user_attrs["estimate_details"]["supernet"] == caches[0].name for t in done)
    assert all(0.0 <= t.values[0] <= 1.0 for t in done)
    # workers never train: without the cache an estimate fails instead of training (train=False)
    from nas.search import validate

    prep = validate(_cfg(tmp_path / "other", data, estimator="supernet", estimator_options=opts))
    with pytest.raises(Exception, match="no trained supernet"):
        prep.estimator.evaluate(prep.space, prep.space.parse("16k3b8|16k3b8|fcb8"), prep.data)


def test_rdb_storage_shared_by_both_backends(ray_session, tmp_path, data) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    run_search(_cfg(tmp_path, data, trials=2, storage=url, name="rdb"))
    r = run_search(_cfg(tmp_path, data, trials=4, storage=url, name="rdb", backend="ray", workers=2))
    assert r.resumed and r.n_new == 2 and r.n_complete == 4
    study = optuna.load_study(study_name="rdb", storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert all("device" in t.user_attrs and t.constraints for t in study.trials)
    assert not (r.run_dir / "study.journal").exists() and (r.run_dir / "pareto.json").is_file()


def test_killed_worker_fails_the_trial_and_retries_it(ray_session, tmp_path, data, monkeypatch) -> None:
    monkeypatch.setenv(KILL_TRIAL_ENV, "1")
    r = run_search(_cfg(tmp_path, data, trials=4, backend="ray", workers=2, name="killed"))
    assert r.n_complete == 4
    trials = _study(r).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [1] and "retried once" in failed[0].user_attrs["note"]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and retry[0].params == failed[0].params
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4 and len(trials) == 5


def test_trial_failing_twice_stops_the_search(ray_session, tmp_path, data, monkeypatch) -> None:
    monkeypatch.setenv(KILL_TRIAL_ENV, "0*")
    with pytest.raises(TrialFailedTwiceError, match="trial 0 failed on Ray and its retry"):
        run_search(_cfg(tmp_path, data, trials=4, backend="ray", workers=1, name="twice"))
    study = optuna.load_study(study_name="twice", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "twice" / "study.journal"))))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    assert study.trials[1].user_attrs["retry_of"] == 0 and "failed too" in study.trials[1].user_attrs["note"]


def test_ctrl_c_stops_cleanly(ray_session, tmp_path, data) -> None:
    def interrupt(p) -> None:
        if p.done == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        run_search(_cfg(tmp_path, data, trials=6, backend="ray", workers=2, name="stopped"), progress=interrupt)
    study = optuna.load_study(study_name="stopped", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "stopped" / "study.journal"))))
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 1
    deadline = time.time() + 20  # the trial actors are gone: their CPUs come back
    while ray_session.available_resources().get("CPU", 0) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert ray_session.available_resources().get("CPU", 0) == 2
    r = run_search(_cfg(tmp_path, data, trials=2, name="stopped"))  # resumes locally
    assert r.resumed and r.n_complete == 2


@pytest.mark.parametrize(
    "args,word",
    [
        (["--backend", "ray", "--ray-address", "127.0.0.1:1"], "Ray not reachable at 127.0.0.1:1"),
        (["--workers", "2"], "--backend ray"),
        (["--backend", "ray", "--workers", "0"], "--workers"),
        (["--storage", "runs/x.db"], "--storage"),
    ],
)
def test_bad_ray_input_exits_2_and_writes_nothing(tmp_path, capsys, args: list[str], word: str) -> None:
    runs = tmp_path / "runs"
    code = main(["search", "--device", "max78000", "--budget", "20KB", "--trials", "1", "--runs-dir", str(runs),
                 *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and word in err and len(err.splitlines()) == 1, err
    assert not runs.exists()
