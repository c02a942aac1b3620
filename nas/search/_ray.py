"""``nas search --backend ray``: the same search as Ray Tune trials, in the same Optuna study.

Design: Ray Tune runs the trials and Optuna's sampler proposes them through Tune's
``OptunaSearch``, constructed over the run's own study (``runs/<name>/study.journal`` or the
storage given): ``OptunaSearch`` loads the study by name (``load_if_exists``) and calls
``study.ask()`` / ``study.tell()`` on it, so Ray trials are ordinary trials of that study and a
study can be started locally and continued on a cluster (or back). What ``OptunaSearch`` does not
do is filled in by a small subclass, :class:`_StudySearch`:

* its define-by-run space function samples the architecture and runs the device check on the
  driver (:func:`nas.search.check_trial`: milliseconds), which sets the constraints and the
  ``arch``/``feasible``/``device`` user_attrs exactly as the local backend does;
* the Tune trial (on a reused Ray actor, one CPU) runs the costly part, the accuracy estimate of
  the sub-network (:func:`nas.search.estimate_arch`), and reports ``estimate`` and ``latency_ms``;
* ``on_trial_complete`` sets the ``estimate`` user_attrs before ``OptunaSearch`` tells the study;
* a trial whose worker died (or which raised) is told FAIL and retried once as a new trial with
  the same parameters (``enqueue_trial``); the search goes on. A retry that fails again stops
  the search with an error (a failure that repeats is not a lost worker);
* it stops when the study holds ``trials`` completed trials, counted like the local backend
  (on a shared ``--storage``: the trials every process completed or is running), or when
  ``timeout_s`` has passed (the trials in flight finish).

Tune keeps its files in ``$TMPDIR/nas-tune-<driver pid>-*``, removed when the search ends; a
driver killed with SIGKILL cannot remove its own, so the next search removes those whose driver
is gone (:func:`clean_stale_tune_dirs`).

Supernet training (``nas.supernet``) runs once on the driver before the first trial
(:func:`nas.search.prepare_estimator`); the estimator shipped to the workers holds no weights
and each worker loads the cached supernet (``runs/supernets/<key>/``, so workers on other
machines need that folder on a shared file system). Other per-network jobs (QAT of the winners,
host measurements) are functions ``(prep, config) -> metrics`` in :data:`JOBS`, run the same way.

``ray`` is imported only here, and only when the Ray backend runs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search_spaces import InputError

from .. import _thirdparty as tp
from . import _study
from ._config import SearchProgress, SearchResult
from ._report import finish
from ._study import (
    Prepared,
    Tally,
    check_trial,
    counted_trials,
    estimate_arch,
    open_study,
    prepare_estimator,
    record_estimate,
    run_dir_locked,
    trial_values,
    worker_id,
)

__all__ = ["RayUnreachableError", "TrialFailedTwiceError", "connect", "run_ray_search", "JOBS", "KILL_TRIAL_ENV",
           "clean_stale_tune_dirs"]

_TUNE_PREFIX = "nas-tune-"
_TUNE_RE = re.compile(r"^nas-tune-(\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def clean_stale_tune_dirs() -> int:
    """Remove ``$TMPDIR/nas-tune-<pid>-*`` folders whose driver process is gone (a driver killed
    by SIGKILL leaves its own); returns how many were removed. Folders without a driver pid in
    their name (older versions) are left alone."""
    n = 0
    for p in Path(tempfile.gettempdir()).glob(f"{_TUNE_PREFIX}*"):
        m = _TUNE_RE.match(p.name)
        if m is None or not p.is_dir() or p.is_symlink() or _alive(int(m.group(1))):
            continue
        try:
            if p.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(p, ignore_errors=True)
        n += not p.exists()
    return n

KILL_TRIAL_ENV = "NAS_RAY_TEST_KILL_TRIAL"
"""Test hook: the study trial number whose first attempt kills its own Ray worker (SIGKILL);
with a trailing ``*`` its retry dies as well."""


class RayUnreachableError(InputError):
    """No Ray cluster answers at ``--ray-address``."""


class TrialFailedTwiceError(RuntimeError):
    """A trial failed, and its retry failed as well."""


def _estimate_job(prep: Prepared, config: dict[str, Any]) -> dict[str, Any]:
    """The sub-network evaluation of one trial: the accuracy estimate (or the cached one)."""
    lat = float(config["nas_latency_ms"])
    value: float | None = None
    details: dict[str, Any] = {}
    raw: dict[str, Any] | None = None
    seconds = 0.0
    if config["nas_cached"] is not None:
        value, cached = config["nas_cached"]
        details = {**cached, "cached": True}
    elif config["nas_needs_estimate"]:
        res = estimate_arch(prep, config["nas_arch"])
        value, raw, seconds = res.value, res.details, res.seconds
        details = {**res.details, "seconds": round(res.seconds, 4)}
    return {
        "estimate": trial_values(value, lat)[0],
        "latency_ms": lat,
        "nas_estimated": value is not None,
        "nas_details": json.dumps(details),
        "nas_raw_details": json.dumps(raw),
        "nas_seconds": seconds,
    }


JOBS: dict[str, Callable[[Prepared, dict[str, Any]], dict[str, Any]]] = {"estimate": _estimate_job}
"""Per-network jobs a Tune trial can run, by name (only the sub-network estimate exists today)."""


def _trainable(config: dict[str, Any], prep: Prepared) -> None:
    """One Tune trial: run the job named in ``config`` and report its metrics."""
    from ray import tune

    if config.get("nas_kill"):  # test hook: this worker dies mid-trial
        os.kill(os.getpid(), signal.SIGKILL)
    tune.report(JOBS[config["nas_job"]](prep, config))


def _probe(address: str) -> None:
    """Fail fast when nothing listens at ``HOST:PORT`` (``auto`` is checked by Ray itself)."""
    hostport = address.removeprefix("ray://")
    if hostport == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return
    except (OSError, ValueError) as e:
        raise RayUnreachableError(f"Ray not reachable at {address}: {e}; start it with 'ray start --head' "
                                  "or pass the address it prints") from None


def connect(address: str | None, workers: int | None) -> bool:
    """Join the cluster at ``address`` or start a local Ray; True when this call started Ray."""
    if address is not None:
        _probe(address)
    import ray

    if ray.is_initialized():
        return False
    kw: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    if address is None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        temp = Path(tempfile.gettempdir()) / "nas-ray"  # short: Ray's socket paths have a length limit
        kw.update(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, _temp_dir=str(temp))
    try:
        ray.init(address=address, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise RayUnreachableError(f"Ray not reachable at {address}: {first}") from None
    return True


def _make_searcher(prep: Prepared, study: Any, tally: Tally, cache: dict[str, tuple[float, dict[str, Any]]],
                   progress: Callable[[SearchProgress], None] | None) -> Any:
    from optuna.trial import TrialState
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    cfg = prep.cfg
    metric = prep.estimator.metric_name()
    kill = os.environ.get(KILL_TRIAL_ENV)
    shared = cfg.storage is not None
    deadline = None if cfg.timeout_s is None else _study.clock() + float(cfg.timeout_s)
    device_seconds = [0.0]

    def space(trial: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        chk = check_trial(prep, trial)
        device_seconds[0] += time.perf_counter() - t0
        retry_of = trial.user_attrs.get("retry_of")
        if shared:
            trial.set_user_attr("worker", worker_id())
        return {
            "nas_job": "estimate",
            "nas_number": trial.number,
            "nas_arch": chk.arch_s,
            "nas_latency_ms": chk.latency_ms,
            "nas_feasible": chk.feasible,
            "nas_needs_estimate": chk.needs_estimate,
            "nas_cached": cache.get(chk.arch_s) if chk.needs_estimate else None,
            "nas_kill": kill is not None and (
                (retry_of is None and str(trial.number) == kill.rstrip("*"))
                or (kill.endswith("*") and str(retry_of) == kill.rstrip("*"))),
        }

    class _StudySearch(OptunaSearch):
        """``OptunaSearch`` over the run's study: user_attrs, one retry, the trial count."""

        def __init__(self, progress: Callable[[SearchProgress], None] | None) -> None:
            super().__init__(space=space, metric=["estimate", "latency_ms"], mode=["max", "min"],
                             sampler=study.sampler, study_name=study.study_name, storage=tp.study_storage(study))
            self.live: set[str] = set()
            self.failed_twice: tuple[int, int] | None = None
            self.finished = False
            self.n_new = 0
            self.estimate_seconds = 0.0
            self.failures: list[int] = []
            self.device_seconds = device_seconds
            self.progress = progress
            self.timed_out = False

        def __getstate__(self) -> dict[str, Any]:
            # Tune pickles the searcher (for Tuner.restore, unused: the study is the state);
            # a progress callback may hold locks (rich's progress bar).
            return {**self.__dict__, "progress": None}

        def _full(self) -> bool:
            if self.failed_twice is not None:
                return True
            if deadline is not None and _study.clock() >= deadline:
                self.timed_out = True
                return True
            if shared:  # every process's trials count, this one's live ones are RUNNING
                return counted_trials(study) >= cfg.trials
            return tally.done + len(self.live) >= cfg.trials

        def suggest(self, trial_id: str) -> Any:
            if self._full():
                if self.live:
                    return None
                self.finished = True
                return Searcher.FINISHED
            out = super().suggest(trial_id)
            self.live.add(trial_id)
            return out

        def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                              error: bool = False) -> None:
            self.live.discard(trial_id)
            ot = tp.searcher_trials(self)[trial_id]
            ok = bool(result) and not error and result.get("estimate") is not None  # type: ignore[union-attr]
            if not ok and not error:  # stopped by Ctrl-C before it reported
                ot.set_user_attr("note", "interrupted (search stopped)")
                tp.searcher_study(self).tell(ot, state=TrialState.FAIL)
                tp.mark_searcher_completed(self, trial_id)
                return
            if not ok:
                retry_of = ot.user_attrs.get("retry_of")
                self.failures.append(ot.number)
                if retry_of is None:
                    ot.set_user_attr("note", "failed on a Ray worker (the worker died or the trial raised); "
                                     "retried once as a new trial with the same parameters")
                    tp.searcher_study(self).enqueue_trial(ot.params, user_attrs={"retry_of": ot.number})
                else:
                    ot.set_user_attr("note", f"retry of trial {retry_of} failed too; search stopped")
                    self.failed_twice = (retry_of, ot.number)
                tp.searcher_study(self).tell(ot, state=TrialState.FAIL)
                tp.mark_searcher_completed(self, trial_id)
                return
            assert result is not None
            value = float(result["estimate"]) if result["nas_estimated"] else None
            record_estimate(ot, value, json.loads(result["nas_details"]))
            raw = json.loads(result["nas_raw_details"])
            if value is not None and raw is not None:
                cache[ot.user_attrs["arch"]] = (value, raw)
            self.estimate_seconds += float(result.get("nas_seconds", 0.0))
            super().on_trial_complete(trial_id, result=result, error=error)
            feasible = bool(ot.user_attrs.get("feasible"))
            tally.add(feasible, value, float(result["latency_ms"]))
            self.n_new += 1
            if self.progress:
                self.progress(tally.progress(cfg.trials, metric, float(result["latency_ms"]), feasible))

        def save_to_dir(self, *args: Any, **kwargs: Any) -> None:
            """Nothing to save: the study is the search's state."""

    return _StudySearch(progress)


def run_ray_search(prep: Prepared, progress: Callable[[SearchProgress], None] | None = None,
                   log: Callable[[str], None] | None = None) -> SearchResult:
    """Run (or resume) the search of ``prep`` on Ray; see the module docstring.

    Raises:
        RayUnreachableError: no Ray at ``--ray-address`` (nothing is written then).
        TrialFailedTwiceError: a trial and its retry both failed (the study keeps what was done).
        KeyboardInterrupt: Ctrl-C; trials in flight are marked failed, Ray work is stopped.
    """
    import ray
    from optuna.trial import TrialState
    from ray import tune

    cfg = prep.cfg
    t_start = time.perf_counter()
    # The supernet is trained (or loaded) here on the driver; the estimator shipped to the workers
    # carries no weights and loads this cache (it never trains: SupernetAccuracy.evaluate).
    prepare_estimator(prep, log)
    started = connect(cfg.ray_address, cfg.workers)
    clean_stale_tune_dirs()
    tune_dir = Path(tempfile.mkdtemp(prefix=f"{_TUNE_PREFIX}{os.getpid()}-"))
    study = searcher = None
    try:
        workers = cfg.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        with run_dir_locked(prep.run_dir, cfg.storage is not None):
            study, tally, cache = open_study(prep, log)
            if progress:
                progress(tally.progress(cfg.trials, prep.estimator.metric_name(), None, False))
            searcher = _make_searcher(prep, study, tally, cache, progress)
            os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
            tuner = tune.Tuner(
                tune.with_resources(tune.with_parameters(_trainable, prep=prep), {"cpu": 1}),
                tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, max_concurrent_trials=workers,
                                            reuse_actors=True),
                run_config=tune.RunConfig(name="nas", storage_path=str(tune_dir), verbose=0,
                                          failure_config=tune.FailureConfig(max_failures=0)),
            )
            # Ctrl-C: Tune's own handler stops the trials and their actors, then fit() returns.
            sigint = signal.getsignal(signal.SIGINT)
            tune_log = logging.getLogger("ray.tune.tune")
            level = tune_log.level
            tune_log.setLevel(logging.CRITICAL)  # its "resume with Tuner.restore" hints: we resume the study
            try:
                grid = tuner.fit()
            finally:
                tune_log.setLevel(level)
                if threading.current_thread() is threading.main_thread():
                    signal.signal(signal.SIGINT, sigint)
            if not searcher.finished and searcher.failed_twice is None:
                raise KeyboardInterrupt  # Tune returned before the study was full: it was stopped
            if searcher.failed_twice is not None:
                first, second = searcher.failed_twice
                errs = [str(e).strip().splitlines()[-1] for e in grid.errors if str(e).strip()]
                raise TrialFailedTwiceError(
                    f"trial {first} failed on Ray and its retry (trial {second}) failed too"
                    + (f": {errs[-1]}" if errs else "") + "; the study keeps the finished trials")
            result = finish(study, prep, tally, n_new=searcher.n_new, seconds=time.perf_counter() - t_start,
                             device_seconds=searcher.device_seconds[0], estimate_seconds=searcher.estimate_seconds)
            result.timed_out = searcher.timed_out
            return result
    finally:
        if searcher is not None and study is not None:  # Ctrl-C or an error: trials in flight never finished
            trials = study.get_trials(deepcopy=False)
            for ot in tp.searcher_trials(searcher).values():  # this search's trials only (an RDB may be shared)
                t = trials[ot.number]
                if t.state == TrialState.RUNNING:
                    tp.fail_in_storage(study, t, "interrupted (search stopped)")
        if started:
            ray.shutdown()
        shutil.rmtree(tune_dir, ignore_errors=True)
