"""The interface of an accuracy estimate and the registry of estimates with their command-line names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from search_spaces import InputError, SearchSpace

from ..data import Dataset

__all__ = ["AccuracyResult", "Estimator", "register_estimator", "make_estimator", "estimator_key", "cli_name",
           "list_estimators", "ESTIMATE_ALIASES"]


@dataclass(frozen=True)
class AccuracyResult:
    """One estimate with what it cost.

    Attributes:
        value: the estimate (validation accuracy for short training, ``log|K_H|`` for NASWOT).
        seconds: wall time of the estimate.
        details: estimator-specific figures (training loss, images used, ...).
    """

    value: float
    seconds: float
    details: dict[str, Any]


class Estimator:
    """Interface of an accuracy estimate: a name, a key, and ``evaluate``."""

    key: str = ""

    def metric_name(self) -> str:
        """The estimate's real name as printed in tables and reports."""
        raise NotImplementedError

    def describe(self) -> str:
        """One sentence saying what the estimate is."""
        raise NotImplementedError

    def evaluate(self, space: SearchSpace, arch: Any, data: Dataset, seed: int = 0) -> AccuracyResult:
        """Score one architecture of ``space`` on ``data``."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"estimator": self.key, **asdict(self)}  # type: ignore[call-overload]

    def use_torch_device(self, choice: str) -> None:
        """Run the estimate on ``choice`` (``auto``, ``cpu``, ``cuda``; default ``auto``). Not a
        setting of the estimate (not in :meth:`to_dict`): each process resolves it
        (:attr:`torch_device`), so a Ray worker without a GPU under ``auto`` uses its CPU."""
        from ..train import check_torch_device

        object.__setattr__(self, "_torch_device", check_torch_device(choice))  # frozen dataclasses too

    @property
    def torch_device(self) -> str:
        """The torch device this process runs the estimate on (``cpu``, ``cuda:0``)."""
        from ..train import resolve_torch_device

        return resolve_torch_device(getattr(self, "_torch_device", "auto"))


T = TypeVar("T", bound=type)
_ESTIMATORS: dict[str, type] = {}
_CLI_NAMES: dict[str, str] = {}
ESTIMATE_ALIASES: dict[str, str] = {}
"""Accepted spellings of the estimates (``-`` read as ``_``) and the estimator key each means
(filled by :func:`register_estimator`)."""


def register_estimator(key: str, *, cli_name: str, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
    """Class decorator registering an estimator under ``key`` (also its ``Estimator.key``), the
    value of ``--accuracy`` that selects it (``cli_name``) and other accepted spellings."""

    def deco(cls: T) -> T:
        if key in _ESTIMATORS:
            raise ValueError(f"estimator {key!r} is already registered")
        _ESTIMATORS[key] = cls
        _CLI_NAMES[key] = cli_name
        for spelling in (key, cli_name, *aliases):
            ESTIMATE_ALIASES[spelling.replace("-", "_").lower()] = key
        return cls

    return deco


def list_estimators() -> list[str]:
    """Keys of the registered estimators, in registration order."""
    return list(_ESTIMATORS)


def estimator_key(name: str) -> str | None:
    """The key of the estimator ``name`` means (any accepted spelling), or None."""
    return ESTIMATE_ALIASES.get(name.replace("-", "_").lower())


def cli_name(key: str) -> str:
    """The ``--accuracy`` value of the estimator ``key`` (``naswot`` -> ``proxy``)."""
    return _CLI_NAMES.get(key, key.replace("_", "-"))


def make_estimator(name: str, **kwargs: Any) -> Estimator:
    """``"supernet"``, ``"naswot"`` (also ``proxy``) or ``"short_qat"`` (also ``short-qat``) with its
    keyword settings."""
    key = estimator_key(name)
    if key is None:
        raise InputError(f"unknown accuracy estimate {name!r}; use one of "
                         f"{', '.join(cli_name(k) for k in list_estimators())}")
    try:
        return _ESTIMATORS[key](**kwargs)
    except TypeError as e:
        raise InputError(f"accuracy estimate {name!r} does not take these options: {e}") from None
