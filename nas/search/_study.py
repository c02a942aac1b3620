"""``nas search``: a constrained multi-objective Optuna study over a device's search space.

One trial: sample an architecture (``ai8x`` space), build its hardware network description,
run the device check (memory, kernel placement, layer count, cycle latency), set the limits as
Optuna constraints (``Trial.set_constraint``, <= 0 feasible), compute the accuracy estimate
(``nas.estimators``), and tell the study ``[estimate, latency_ms]`` (maximise, minimise).

The study lives in ``runs/<name>/study.journal`` (Optuna ``JournalStorage`` with a
``JournalFileBackend``; optuna-dashboard opens it). Every finished trial is appended and
fsync'ed, so a search killed with SIGKILL loses at most the trial in flight; running the same
settings with the same name resumes the study (``--trials`` counts all completed trials).
``nas.search._journal`` makes the journal survive kills and damage: a lock left by a killed process is
broken, a journal damaged at its end is recovered into a fresh one (the damaged file kept beside
it), and damage inside it stops the search before anything is written. A shared ``--storage``
holds ``--trials`` for every process together, and each process draws its own networks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_spaces import InputError

from .. import _thirdparty as tp
from ..data import Dataset
from ..estimators import Estimator
from ..record import RunRecord
from ..targets import Target, TrialCheck
from ._config import (
    JOURNAL,
    RunInUseError,
    SearchConfig,
    SearchProgress,
    SearchTerminated,
    pareto_front,
)

__all__ = ["Prepared", "Tally", "TrialCheck", "open_study", "run_dir_locked", "inspect_study", "check_trial",
           "estimate_arch", "record_estimate", "trial_values", "prepare_estimator", "sampler_seed", "worker_id",
           "counted_trials", "within_total", "fail_stale_trials", "heartbeat", "stop_note", "say_to", "clock",
           "HEARTBEAT_S", "HEARTBEAT_GRACE_S"]


def clock() -> float:
    """The --timeout clock (tests replace it)."""
    return time.monotonic()


@dataclass
class Prepared:
    cfg: SearchConfig
    name: str
    run_dir: Path
    device: Any
    budget: int
    data: Dataset
    space: Any
    estimator: Estimator
    record: RunRecord
    """The run record (saved in the study as ``user_attrs["settings"]`` and in ``pareto.json``)."""
    resumed: bool
    target: Target
    """The search target of the device."""
    space_name: str = ""
    ram: int | None = None
    journal_scan: Any = None
    """The journal's :class:`nas.search._journal.JournalScan` when it was damaged at its end (recovered
    when the study is opened), else None."""
    notes: list[str] = field(default_factory=list)
    """One-line notes for the user found while validating (an empty journal)."""
    sizing_memo: tuple[Path, Any] | None = None
    """(path, :class:`nas.supernet.Sizing`) of a supernet sizing measured while validating, written
    before the supernet trains (:func:`prepare_estimator`) so that a run killed meanwhile resumes
    with the same covered widths."""


def _journal_storage(path: Path, records: list[dict[str, Any]] | None = None) -> Any:
    """The journal at ``path`` with a lock that survives kills (``nas.search._journal.JournalLock``);
    with ``records``: a read-only storage over those records instead (a damaged journal)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from ._journal import JournalLock, RecordsBackend

    backend = (RecordsBackend(records) if records is not None
               else JournalFileBackend(str(path), lock_obj=JournalLock(path)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return JournalStorage(backend)


HEARTBEAT_S = 30
"""Shared ``--storage``: a running trial records a heartbeat this often (s); one silent for
:data:`HEARTBEAT_GRACE_S` belongs to a killed process and is failed by the next search."""
HEARTBEAT_GRACE_S = 120


def _rdb_storage(url: str) -> Any:
    """Optuna's RDB storage at ``url`` (with heartbeats); an :class:`InputError` when it cannot be opened."""
    import optuna

    # study.ask() warns that heartbeats are meant for Study.optimize; this search (and Ray's
    # OptunaSearch) asks and tells, recording the heartbeats itself (heartbeat()).
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used", category=UserWarning)
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=HEARTBEAT_GRACE_S)
        except Exception as e:  # driver missing, server down, bad credentials
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            if attempt < 4 and any(w in first for w in ("already exists", "UNIQUE constraint", "database is locked")):
                time.sleep(0.2 * (attempt + 1))  # another process is creating the tables right now
                continue
            raise InputError(f"cannot open --storage {url}: {first}") from None
    raise AssertionError("unreachable")


def _study_storage(run_dir: Path, url: str | None) -> Any:
    """The study's storage: the RDB at ``url``, else the run's journal file."""
    return _rdb_storage(url) if url is not None else _journal_storage(run_dir / JOURNAL)


def inspect_study(run_dir: Path, name: str, url: str | None = None) -> tuple[dict[str, Any] | None, Any, list[str]]:
    """Read an existing run's study without writing anything.

    Returns:
        its settings (None: no study yet), the journal's scan when it is damaged at its end
        (recovered later, under the run lock), and one-line notes for the user.

    Raises:
        InputError: the journal is not a readable file, is damaged inside, or holds another
            run's study (a renamed run directory).
    """
    import optuna

    if url is not None:
        if url.startswith("sqlite"):
            db = Path(url.split(":///", 1)[-1])
            if not db.is_file():
                if not db.parent.is_dir():
                    raise InputError(f"cannot open --storage {url}: the directory {db.parent} does not exist; "
                                     "create it or give another path")
                return None, None, []  # opening would create the file
        try:
            study = optuna.load_study(study_name=name, storage=_rdb_storage(url))
        except KeyError:
            return None, None, []
        return dict(study.user_attrs.get("settings", {})), None, []
    from ._journal import scan_journal

    journal = run_dir / JOURNAL
    if not os.path.lexists(journal):
        return None, None, []
    scan = scan_journal(journal)  # InputError: a directory, unreadable
    if scan.size == 0:
        return None, None, [f"{journal} is empty (a search killed before it wrote anything): starting the study"]
    if scan.damaged and not scan.recoverable:
        raise InputError(
            f"{journal} is damaged: {scan.describe()}, followed by {scan.intact_after} intact record(s) that may "
            "depend on it; nothing was changed: restore it from a backup, or move it away and run again for a "
            "new study")
    storage = _journal_storage(journal, scan.records if scan.damaged else None)
    names = [s.study_name for s in storage.get_all_studies()]
    if names and name not in names:
        runs_dir = run_dir.parent
        first = names[0]
        back = (f"rename the directory back ({run_dir} -> {runs_dir / first}) and pass --name {first} to resume it"
                if not os.path.lexists(runs_dir / first) else
                f"move {journal} away for a new study named {name!r}")
        raise InputError(f"{journal} holds the study {first!r}, not {name!r}: was the run directory renamed? "
                         f"{back}")
    if name not in names:
        return None, scan if scan.damaged else None, []
    study = optuna.load_study(study_name=name, storage=storage)
    settings = study.user_attrs.get("settings")
    if not settings and not study.trials:  # killed between creating the study and writing its settings
        return None, scan if scan.damaged else None, [
            f"{journal} holds the study {name!r} without settings or trials (a search killed while creating it): "
            "starting it"]
    return dict(settings or {}), scan if scan.damaged else None, []


@contextlib.contextmanager
def _locked(run_dir: Path, shared: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on the run (``flock``: the OS releases it when its holder dies, even
    by SIGKILL, so a lock file left behind never blocks). The holder writes ``HOST PID`` into it
    for the message a second search gets."""
    try:
        fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise InputError(f"cannot lock {run_dir}: {e.strerror or e}; is it writable? Fix its permissions or pass "
                         "--name NEW") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                owner = os.pread(fd, 200, 0).decode(errors="replace").strip()
            except OSError:
                owner = ""
            raise RunInUseError(
                f"run {run_dir} is in use by another nas search{f' ({owner})' if owner else ''}; "
                + ("wait for it, or give this one another --runs-dir to join the same --storage study" if shared
                   else "wait for it or pass --name NEW")
            ) from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def run_dir_locked(run_dir: Path, shared: bool = False) -> Iterator[None]:
    """Make the run directory and hold its lock; a directory this call made is removed again when
    the call fails before writing anything into it (a bad --storage), so the name stays free."""
    made = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create {run_dir}: {e.strerror or e}; choose another --runs-dir or --name") from None
    try:
        with _locked(run_dir, shared):
            yield
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                if [p.name for p in run_dir.iterdir()] == [".lock"]:
                    (run_dir / ".lock").unlink()
                    run_dir.rmdir()
        raise


def sampler_seed(seed: int, n_done: int, shared: bool) -> int:
    """The sampler's seed for a search that starts with ``n_done`` completed trials.

    A run of its own: ``(seed * 1,000,003 + n_done) mod 2**32`` (reproducible; the same value as
    before for every seed that worked then). A shared ``--storage``: the same mixed with this
    process's id, host and start time (NumPy ``SeedSequence``), so identically seeded processes
    on one study draw different networks (a shared study's order is not reproducible anyway).
    """
    if not shared:
        return (seed * 1_000_003 + n_done) % 2**32
    import numpy as np

    entropy = [seed, n_done, os.getpid(), zlib.crc32(socket.gethostname().encode()), time.time_ns() % 2**32]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def worker_id() -> str:
    """``HOST:PID`` of this process (the ``worker`` user_attr of trials in a shared study)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def counted_trials(study: Any) -> int:
    """Trials that count toward a shared study's ``--trials``: completed, and running anywhere."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)))


def within_total(study: Any, trial: Any, total: int) -> bool:
    """A trial just asked of a shared study may run: fewer than ``total`` trials are complete or
    were started before it (trial numbers are handed out in order by the storage, so of two
    processes racing for the last place exactly one gets it)."""
    from optuna.trial import TrialState

    ahead = sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
                if t.state == TrialState.COMPLETE or t.number < trial.number)
    return ahead < total


def fail_stale_trials(study: Any) -> None:
    """Shared ``--storage``: fail trials whose process stopped sending heartbeats (killed)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


@contextlib.contextmanager
def heartbeat(study: Any, trial: Any, shared: bool) -> Iterator[None]:
    """Shared ``--storage``: record the trial's heartbeat every :data:`HEARTBEAT_S` while it runs."""
    if not shared or not tp.has_heartbeat(study):
        yield
        return
    import threading

    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):
                tp.record_heartbeat(study, trial)
            if stop.wait(HEARTBEAT_S):
                return

    th = threading.Thread(target=beat, name="nas-heartbeat", daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join(timeout=5)


def stop_note(e: BaseException) -> str:
    if isinstance(e, SearchTerminated):
        return "interrupted (SIGTERM: search stopped)"
    if isinstance(e, KeyboardInterrupt):
        return "interrupted (Ctrl-C: search stopped)"
    return f"failed: {type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}"


def _make_sampler(kind: str, seed: int) -> Any:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "nsga2":
            return optuna.samplers.NSGAIISampler(population_size=20, seed=seed)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=10)


def prepare_estimator(prep: Prepared, log: Callable[[str], None] | None = None) -> None:
    """Train or load what the estimate needs before the first trial (the supernet; nothing for
    the other estimates). Runs on the driver, so Ray workers only load the cache. A supernet
    sizing measured by :func:`validate` is remembered first (``Prepared.sizing_memo``)."""
    if prep.sizing_memo is not None:
        from ..supernet import write_sizing_memo

        write_sizing_memo(*prep.sizing_memo)
    if hasattr(prep.estimator, "prepare"):
        prep.estimator.prepare(log)


def check_trial(prep: Prepared, trial: Any) -> TrialCheck:
    """Sample an architecture on ``trial``, check it on the device, set constraints and user_attrs.

    Sets the constraints and the user_attrs ``arch``, ``feasible`` and ``device``; used by every
    backend so that trials look the same in the study. What the check is: the target's.
    """
    return prep.target.check_trial(prep, trial)


def estimate_arch(prep: Prepared, arch_s: str) -> Any:
    """The accuracy estimate of one architecture (an ``AccuracyResult``); the costly part of a trial."""
    return prep.estimator.evaluate(prep.space, prep.space.parse(arch_s), prep.data, seed=prep.cfg.seed)


def record_estimate(trial: Any, value: float | None, details: dict[str, Any]) -> None:
    """Set the user_attrs ``estimate``, ``estimate_details`` (when estimated) and ``estimated``."""
    if value is not None:
        trial.set_user_attr("estimate", value)
        trial.set_user_attr("estimate_details", details)
    trial.set_user_attr("estimated", value is not None)


def trial_values(value: float | None, latency_ms: float) -> list[float]:
    """The values told to the study: ``[estimate, latency_ms]``.

    Not estimated (infeasible, short training skipped): Optuna needs a number; 0.0 is never
    reported as an estimate, and constrained samplers rank infeasible trials by their violations,
    not by this value.
    """
    return [value if value is not None else 0.0, latency_ms]


@dataclass
class Tally:
    """Running counts for progress reports."""

    done: int = 0
    feasible: int = 0
    best: float | None = None
    points: list[tuple[float, float]] = field(default_factory=list)

    def add(self, feasible: bool, value: float | None, latency_ms: float) -> None:
        self.done += 1
        if feasible and value is not None:
            self.feasible += 1
            self.best = value if self.best is None else max(self.best, value)
            self.points.append((latency_ms, float(value)))
        elif feasible:
            self.feasible += 1

    def progress(self, total: int, metric: str, last_latency: float | None, last_ok: bool) -> SearchProgress:
        return SearchProgress(self.done, total, self.feasible, self.best, metric, last_latency, last_ok,
                              pareto_front(self.points))


def say_to(log: Callable[[str], None] | None) -> Callable[[str], None]:
    if log is not None:
        return log
    import sys

    return lambda line: print(f"nas search: {line}", file=sys.stderr)


def _repair_journal(prep: Prepared, log: Callable[[str], None] | None) -> None:
    """Under the run lock, before the journal is opened for writing: break a lock a killed
    process left, and recover a journal damaged at its end (see ``nas.search._journal``)."""
    from ._journal import break_stale_lock, lock_path, recover, scan_journal

    say = say_to(log)
    journal = prep.run_dir / JOURNAL
    if break_stale_lock(journal):
        say(f"removed a stale journal lock {lock_path(journal)} (left by a killed search)")
    if not os.path.lexists(journal):
        return
    scan = scan_journal(journal)  # again, under the lock: what validate() saw may have changed
    if not scan.damaged:
        return
    if not scan.recoverable:
        raise InputError(f"{journal} is damaged: {scan.describe()}, followed by {scan.intact_after} intact record(s); "
                         "nothing was changed: restore it from a backup, or move it away and run again")
    kept = recover(journal, scan)
    say(f"{journal} was damaged at its end: {scan.describe()}; its {len(scan.records)} intact record(s) now make "
        f"a fresh {journal.name}, the damaged file is kept as {kept}")


def _check_same_sizing(prep: Prepared, stored: Any) -> None:
    """A supernet sized by time on this machine must cover what the study's own record says: two
    processes that started one study at once (a shared ``--storage``) may have measured
    different widths; the later one stops before its first trial."""
    mine = prep.record.estimator.get("budget_width")
    theirs = (stored.get("estimator") or {}).get("budget_width") if isinstance(stored, dict) else None
    if mine is not None and theirs != mine:
        raise InputError(f"run {prep.name!r} was started meanwhile by another process whose supernet covers widths up "
                         f"to {theirs} (sized on its machine), not {mine}; run the same command again to join it "
                         "with its widths")


def open_study(prep: Prepared, log: Callable[[str], None] | None = None,
                ) -> tuple[Any, Tally, dict[str, tuple[float, dict[str, Any]]]]:
    """Create or load the run's study (journal file), fail trials a killed search left RUNNING.

    Call it holding the run lock. A journal lock left by a killed process is broken and a
    journal damaged at its end is recovered first; notes go to ``log`` (stderr when None).

    Returns:
        the study (sampler set), the tally of completed trials, and the estimate cache by arch.
    """
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for note in prep.notes:
        say_to(log)(note)
    if prep.cfg.storage is None:
        _repair_journal(prep, log)
    storage = _study_storage(prep.run_dir, prep.cfg.storage)
    study = optuna.create_study(
        study_name=prep.name, storage=storage, directions=["maximize", "minimize"], load_if_exists=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([prep.estimator.metric_name(), "latency_ms"])
    if "settings" not in study.user_attrs:
        study.set_user_attr("settings", prep.record.to_dict())
    else:
        _check_same_sizing(prep, study.user_attrs["settings"])
    # Trials left RUNNING by a killed search: they never finished, mark them failed. (Not in a
    # shared RDB: another machine's search may be running them; there the trials whose process
    # stopped sending heartbeats are failed instead.)
    left = () if prep.cfg.storage is not None else (TrialState.RUNNING, TrialState.WAITING)
    for t in study.get_trials(deepcopy=False, states=left):
        tp.fail_in_storage(study, t, "interrupted (left RUNNING by a killed search)")
    if prep.cfg.storage is not None:
        fail_stale_trials(study)
    done_trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    study.sampler = _make_sampler(prep.cfg.sampler,
                                  sampler_seed(prep.cfg.seed, len(done_trials), prep.cfg.storage is not None))
    cache: dict[str, tuple[float, dict[str, Any]]] = {}
    tally = Tally()
    for t in done_trials:
        if "estimate" in t.user_attrs and t.user_attrs.get("estimated"):
            cache[t.user_attrs["arch"]] = (t.user_attrs["estimate"], t.user_attrs.get("estimate_details", {}))
        tally.add(bool(t.user_attrs.get("feasible")), t.values[0], t.values[1])
    return study, tally, cache


