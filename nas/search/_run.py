"""``run_search``: the local backend's trial loop (trials one after another in this process), or
the Ray backend (``nas.search._ray``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from . import _study
from ._config import SearchConfig, SearchProgress, SearchResult
from ._ray import run_ray_search
from ._report import finish
from ._study import (
    check_trial,
    counted_trials,
    estimate_arch,
    fail_stale_trials,
    heartbeat,
    open_study,
    prepare_estimator,
    record_estimate,
    run_dir_locked,
    stop_note,
    trial_values,
    within_total,
    worker_id,
)
from ._validate import validate

__all__ = ["run_search"]


def run_search(cfg: SearchConfig, progress: Callable[[SearchProgress], None] | None = None,
               log: Callable[[str], None] | None = None) -> SearchResult:
    """Run (or resume) a search and write its outputs under ``runs_dir/<name>/``.

    Args:
        cfg: the settings.
        progress: called after every trial (and once at the start) with a :class:`SearchProgress`.
        log: called with one-line messages (supernet training progress).

    Raises:
        InputError: bad settings, found before anything is written.
    """
    from optuna.trial import TrialState

    prep = validate(cfg)
    if cfg.backend == "ray":
        return run_ray_search(prep, progress, log)
    t_start = time.perf_counter()
    prepare_estimator(prep, log)
    shared = cfg.storage is not None
    with run_dir_locked(prep.run_dir, shared):
        study, tally, cache = open_study(prep, log)
        n_done = tally.done
        metric = prep.estimator.metric_name()
        if progress:
            progress(tally.progress(cfg.trials, metric, None, False))
        t_dev = t_est = 0.0
        n_new = 0
        deadline = None if cfg.timeout_s is None else _study.clock() + float(cfg.timeout_s)
        timed_out = False
        while True:
            if shared:
                fail_stale_trials(study)
                if counted_trials(study) >= cfg.trials:
                    break
            elif n_done >= cfg.trials:
                break
            if deadline is not None and _study.clock() >= deadline:
                timed_out = True
                break
            trial = study.ask()
            try:
                if shared:
                    trial.set_user_attr("worker", worker_id())
                    if not within_total(study, trial, cfg.trials):
                        trial.set_user_attr("note", "not run: other processes on this --storage filled --trials")
                        study.tell(trial, state=TrialState.FAIL)
                        break
                with heartbeat(study, trial, shared):
                    t0 = time.perf_counter()
                    chk = check_trial(prep, trial)
                    t_dev += time.perf_counter() - t0
                    value: float | None = None
                    details: dict[str, Any] = {}
                    if chk.needs_estimate:
                        if chk.arch_s in cache:
                            value, details = cache[chk.arch_s]
                            details = {**details, "cached": True}
                        else:
                            res = estimate_arch(prep, chk.arch_s)
                            t_est += res.seconds
                            value, details = res.value, {**res.details, "seconds": round(res.seconds, 4)}
                            cache[chk.arch_s] = (value, res.details)
                    record_estimate(trial, value, details)
                    study.tell(trial, trial_values(value, chk.latency_ms))
            except BaseException as e:
                with contextlib.suppress(Exception):
                    trial.set_user_attr("note", stop_note(e))
                study.tell(trial, state=TrialState.FAIL)
                raise
            n_done += 1
            n_new += 1
            tally.add(chk.feasible, value, chk.latency_ms)
            if progress:
                progress(tally.progress(cfg.trials, metric, chk.latency_ms, chk.feasible))
        result = finish(study, prep, tally, n_new=n_new, seconds=time.perf_counter() - t_start,
                         device_seconds=t_dev, estimate_seconds=t_est)
        result.timed_out = timed_out
        return result
