"""``nas search``: settings and their check, the Optuna study and its journal, the local and Ray
backends, and the run's outputs (report)."""

from __future__ import annotations

from ..targets import (
    CSV_COLUMNS,
    DEFAULT_LATENCY_MARGIN,
    MAX78000_DEFAULT_BITS,
    MOBILE_CSV_COLUMNS,
    TrialCheck,
    auto_bits,
)
from ._config import (
    JOURNAL,
    SEED_MAX,
    RunInUseError,
    SearchConfig,
    SearchProgress,
    SearchResult,
    SearchTerminated,
    SettingsMismatchError,
    default_run_name,
    resolve_estimator,
    settings_dict,
)
from ._ray import (
    JOBS,
    KILL_TRIAL_ENV,
    RayUnreachableError,
    TrialFailedTwiceError,
    clean_stale_tune_dirs,
    connect,
)
from ._report import write_outputs
from ._run import run_search
from ._study import Prepared, check_trial, estimate_arch, prepare_estimator, sampler_seed
from ._validate import validate

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_LATENCY_MARGIN",
    "JOBS",
    "JOURNAL",
    "KILL_TRIAL_ENV",
    "MAX78000_DEFAULT_BITS",
    "MOBILE_CSV_COLUMNS",
    "SEED_MAX",
    "Prepared",
    "RayUnreachableError",
    "RunInUseError",
    "SearchConfig",
    "SearchProgress",
    "SearchResult",
    "SearchTerminated",
    "SettingsMismatchError",
    "TrialCheck",
    "TrialFailedTwiceError",
    "auto_bits",
    "check_trial",
    "clean_stale_tune_dirs",
    "connect",
    "default_run_name",
    "estimate_arch",
    "prepare_estimator",
    "resolve_estimator",
    "run_search",
    "sampler_seed",
    "settings_dict",
    "validate",
    "write_outputs",
]
