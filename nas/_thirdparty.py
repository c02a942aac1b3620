"""Every use of a third-party library's private names (Optuna, Ray Tune), in one place.

nas relies on a few names Optuna and Ray do not promise to keep: the storage behind a study
(``Study._storage``) and a trial's storage id (``Trial._trial_id``) to fail trials left running
and to record heartbeats; the journal file lock base class (``optuna.storages.journal._file``);
and the Optuna study and trials that Ray's ``OptunaSearch`` keeps (``_ot_study``, ``_ot_trials``,
``_completed_trials``). An upgrade that removes one of them makes
:func:`check_private_names` (run by ``tests/test_thirdparty.py``) fail with a message naming it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "check_private_names", "journal_file_lock_base", "study_storage", "storage_id", "fail_in_storage",
    "record_heartbeat", "has_heartbeat", "searcher_study", "searcher_trials", "mark_searcher_completed",
]


def journal_file_lock_base() -> type:
    """Optuna's ``BaseJournalFileLock`` (a documented ``lock_obj`` type, not re-exported)."""
    from optuna.storages.journal._file import BaseJournalFileLock

    return BaseJournalFileLock


def study_storage(study: Any) -> Any:
    """The storage object behind an Optuna study."""
    return study._storage


def storage_id(trial: Any) -> int:
    """The storage's id of an Optuna trial (``FrozenTrial`` or ``Trial``)."""
    return trial._trial_id


def fail_in_storage(study: Any, trial: Any, note: str) -> None:
    """Mark ``trial`` of ``study`` FAIL with the user_attr ``note``, straight in its storage (a
    trial another process left RUNNING cannot be told)."""
    from optuna.trial import TrialState

    storage = study_storage(study)
    storage.set_trial_user_attr(storage_id(trial), "note", note)
    storage.set_trial_state_values(storage_id(trial), TrialState.FAIL)


def has_heartbeat(study: Any) -> bool:
    """The study's storage records heartbeats (RDB storages do)."""
    return hasattr(study_storage(study), "record_heartbeat")


def record_heartbeat(study: Any, trial: Any) -> None:
    """Record a heartbeat of ``trial`` in the study's storage."""
    study_storage(study).record_heartbeat(storage_id(trial))


def searcher_study(searcher: Any) -> Any:
    """The Optuna study a Ray Tune ``OptunaSearch`` drives."""
    return searcher._ot_study


def searcher_trials(searcher: Any) -> dict[str, Any]:
    """Ray Tune trial id -> the Optuna trial of an ``OptunaSearch``."""
    return searcher._ot_trials


def mark_searcher_completed(searcher: Any, trial_id: str) -> None:
    """Tell an ``OptunaSearch`` that the Tune trial ``trial_id`` is done (it was told to Optuna by
    the caller), so it does not tell it again."""
    searcher._completed_trials.add(trial_id)


def check_private_names(*, ray: bool = True) -> None:
    """Fail with a message naming what is missing when an installed Optuna (or Ray) lacks one of
    the private names above.

    Raises:
        RuntimeError: ``optuna X: Study._storage is gone; update nas/_thirdparty.py``.
    """
    import optuna

    missing: list[str] = []
    try:
        journal_file_lock_base()
    except ImportError:
        missing.append(f"optuna {optuna.__version__}: optuna.storages.journal._file.BaseJournalFileLock")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"])
    if not hasattr(study, "_storage"):
        missing.append(f"optuna {optuna.__version__}: Study._storage")
    else:
        for meth in ("set_trial_user_attr", "set_trial_state_values"):
            if not hasattr(study._storage, meth):
                missing.append(f"optuna {optuna.__version__}: the storage's {meth}()")
    trial = study.ask()
    if not hasattr(trial, "_trial_id"):
        missing.append(f"optuna {optuna.__version__}: Trial._trial_id")
    else:
        study.tell(trial, [0.0, 0.0])
        if not hasattr(study.trials[0], "_trial_id"):
            missing.append(f"optuna {optuna.__version__}: FrozenTrial._trial_id")
    if not hasattr(optuna.storages.RDBStorage, "record_heartbeat"):
        missing.append(f"optuna {optuna.__version__}: RDBStorage.record_heartbeat()")
    if ray:
        import ray as ray_mod
        from ray.tune.search.optuna import OptunaSearch

        s = OptunaSearch(space=lambda t: {"x": t.suggest_float("x", 0.0, 1.0)}, metric="m", mode="max")
        for attr in ("_ot_study", "_ot_trials", "_completed_trials"):
            if not hasattr(s, attr):
                missing.append(f"ray {ray_mod.__version__}: OptunaSearch.{attr}")
    if missing:
        raise RuntimeError("private names nas relies on are gone: " + "; ".join(missing)
                           + "; update nas/_thirdparty.py to the new versions")
