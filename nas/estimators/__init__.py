"""The search's accuracy estimates (a registry: each estimate's key and ``--accuracy`` name)."""

from __future__ import annotations

from ._accuracy import Naswot, ShortTraining, SupernetAccuracy, estimate_accuracy, settings_from_run
from ._base import (
    ESTIMATE_ALIASES,
    AccuracyResult,
    Estimator,
    cli_name,
    estimator_key,
    list_estimators,
    make_estimator,
    register_estimator,
)

__all__ = [
    "ESTIMATE_ALIASES",
    "AccuracyResult",
    "Estimator",
    "Naswot",
    "ShortTraining",
    "SupernetAccuracy",
    "cli_name",
    "estimate_accuracy",
    "estimator_key",
    "list_estimators",
    "make_estimator",
    "register_estimator",
    "settings_from_run",
]
