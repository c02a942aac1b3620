"""The settings of a search (:class:`SearchConfig`), what it reports as it runs and when it ends,
its errors and its default run name."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search_spaces import InputError

from ..estimators import cli_name, estimator_key
from ..targets import space_in_run_name

__all__ = ["SearchConfig", "SearchResult", "SearchProgress", "default_run_name", "resolve_estimator",
           "settings_dict", "pareto_front", "RunInUseError", "SettingsMismatchError", "SearchTerminated", "SEED_MAX", "JOURNAL",
           "NAME_RE", "RDB_RE"]

JOURNAL = "study.journal"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
RDB_RE = re.compile(r"^(sqlite|postgresql|mysql)(\+[A-Za-z0-9_]+)?://")


class RunInUseError(InputError):
    """The run directory is locked by another ``nas search`` process."""


class SettingsMismatchError(InputError):
    """A run of that name exists with different settings."""


class SearchTerminated(KeyboardInterrupt):
    """SIGTERM arrived (``nas search`` turns it into this): stop like Ctrl-C, the trial in flight
    told FAIL."""


SEED_MAX = 2**32 - 1
"""Largest ``--seed`` (the seeds of NumPy's legacy generators, used by Optuna's samplers, are 32-bit)."""


@dataclass
class SearchConfig:
    """Settings of one search (every field is checked by :func:`validate`).

    Attributes:
        device: registered device name (``max78000``).
        budget_bytes: weight-memory limit in bytes (None: the device's whole weight memory).
        latency_ms: latency limit in ms (None: no limit).
        trials: completed trials the study should hold when the search ends (resumed runs
            count the trials already done).
        seed: seed of the sampler, the data split and the accuracy estimate.
        name: run name (directory under ``runs_dir``); None derives it from the settings.
        runs_dir: where run directories go.
        data: a ``.npz`` file (arrays x, y), or None for the built-in MNIST subset.
        estimator: ``auto`` (default: ``supernet``), ``supernet``
            (validation accuracy of the weight-sharing supernet's sub-network: ``nas.supernet`` on
            MAX78000 devices, ``nas.supernet._fbnet`` on the others, with
            :data:`~nas.supernet._fbnet.FBNET_SUPERNET_DEFAULTS` under ``estimator_options``),
            ``naswot`` (also ``proxy``: the training-free score) or ``short_qat`` (short training
            from scratch).
        estimator_options: keyword settings of the estimator (e.g. ``{"epochs": 1}``; the MAX78000
            supernet's ``{"time_budget_s": 1800}`` is ``--supernet-budget 30min``: :func:`validate`
            sizes the covered widths from it, measured once, or takes them from the resumed run).
        space_options: extra keyword options of the ``ai8x`` space (e.g. ``{"max_units": 4}``); MAX78000
            searches default ``bits`` by :func:`auto_bits` (8 only when the largest network the
            search can propose fits the budget at 8 bits, else :data:`MAX78000_DEFAULT_BITS`).
        sampler: ``tpe`` (multi-objective TPE with constraints) or ``nsga2``.
        budget_text: how the budget was written (for the run name), e.g. ``400KB``.
        latency_text: how the latency limit was written, e.g. ``2ms``.
        max_train_images: cap on training images the estimators see (None: all).
        max_val_images: cap on validation images the estimates and the supernet's training log score
            (the first N of the seeded validation split; None: all). A cost cap for large data sets
            (benchmarks/bench_fashion.py); the supernet's weights do not depend on it.
        backend: ``local`` (trials one after another in this process) or ``ray`` (Ray Tune trials
            driven by Optuna's sampler through ``OptunaSearch``, same study; see ``nas.search._ray``).
        ray_address: ``ray`` backend: the cluster to join (``auto``, ``HOST:PORT``); None starts
            a local Ray.
        workers: ``ray`` backend: trials run at once (None: one per CPU of the cluster).
        storage: an RDB URL holding the study (``postgresql://...``, ``sqlite:///path.db``) instead
            of ``runs/<name>/study.journal``, for studies several machines open.
        space: search space (None: ``ai8x`` for MAX78000 devices, else the device's only space;
            ``fbnet`` is the space searched on phones, host-cpu and registered devices).
        ram_bytes: non-MAX78000 devices: limit on the peak int8 activation memory of one inference.
        latency_margin: non-MAX78000 devices: k of the latency constraint mean + k * std <= limit
            (None: 1.645, a one-sided 95% bound under a normal error).
        ram_text: how the RAM limit was written, e.g. ``2MB``.
        device_options: keyword options of the device (``host-cpu``: ``warmup``, ``number``,
            ``min_rounds``, ``max_rounds``, ``threads``... of its onnxruntime timing).
        image_size: ``data`` is an image folder: resize to this ``HxW`` (None: the most common size).
    """

    device: str = "max78000"
    budget_bytes: int | None = None
    latency_ms: float | None = None
    trials: int = 60
    seed: int = 0
    name: str | None = None
    runs_dir: str | Path = "runs"
    data: str | Path | None = None
    estimator: str = "auto"
    estimator_options: dict[str, Any] = field(default_factory=dict)
    space_options: dict[str, Any] = field(default_factory=dict)
    sampler: str = "tpe"
    budget_text: str | None = None
    latency_text: str | None = None
    max_train_images: int | None = None
    max_val_images: int | None = None
    backend: str = "local"
    ray_address: str | None = None
    workers: int | None = None
    storage: str | None = None
    space: str | None = None
    ram_bytes: int | None = None
    latency_margin: float | None = None
    ram_text: str | None = None
    device_options: dict[str, Any] = field(default_factory=dict)
    image_size: str | tuple[int, int] | None = None
    timeout_s: float | None = None
    """Wall-clock budget of this call's trials in seconds: no trial starts after it (the one in
    flight finishes); None: none. Whichever of ``trials`` and this comes first ends the search."""
    torch_device: str = "auto"
    """Where the estimates train and score (the supernet, short-QAT, NASWOT): ``auto`` (CUDA when
    available), ``cpu`` or ``cuda`` (:mod:`nas.train`). Not a setting of the run: the record
    names the device of the call that wrote it, and a run resumes on another one."""




def resolve_estimator(name: str) -> str:
    """The estimator key ``name`` means: ``auto`` is ``supernet`` (the ai8x supernet on MAX78000
    devices, the fbnet supernet on phones, host-cpu and registered devices: it ranked better than
    NASWOT on 8x8 digits and within seed noise of it on MNIST 5k, benchmarks/results/supernet_fbnet_*.md).

    Raises:
        InputError: an unknown name.
    """
    if name.replace("-", "_").lower() == "auto":
        return "supernet"
    key = estimator_key(name)
    if key is None:
        raise InputError(f"unknown accuracy estimate {name!r}; use supernet, proxy or short-qat")
    return key




def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated (latency, estimate) pairs (lower latency, higher estimate), by latency."""
    out: list[tuple[float, float]] = []
    for lat, val in sorted(points, key=lambda p: (p[0], -p[1])):
        if not out or val > out[-1][1]:
            out.append((lat, val))
    return out


@dataclass
class SearchProgress:
    """Handed to the progress callback after every trial."""

    done: int
    total: int
    feasible: int
    best: float | None
    metric: str
    last_latency_ms: float | None
    last_feasible: bool
    front: list[tuple[float, float]] = field(default_factory=list)
    """The feasible Pareto front so far: (latency ms, best estimate at or below it), by latency."""


@dataclass
class SearchResult:
    """What a finished search produced.

    Attributes:
        run_dir: the run directory.
        name: the run (and study) name.
        metric: the accuracy estimate's real name.
        pareto: one row per Pareto-optimal feasible network, sorted by latency.
        n_complete: completed trials in the study; n_feasible: those meeting every limit.
        n_new: trials run by this call; seconds: wall time of this call.
        device_seconds, estimate_seconds: time spent in device checks / estimates this call.
        resumed: the study existed before this call.
        timed_out: ``timeout_s`` ended this call before the study held ``trials`` completed trials.
    """

    run_dir: Path
    name: str
    metric: str
    pareto: list[dict[str, Any]]
    n_complete: int
    n_feasible: int
    n_new: int
    seconds: float
    device_seconds: float
    estimate_seconds: float
    resumed: bool
    settings: dict[str, Any]
    """The run record as saved (:meth:`nas.record.RunRecord.to_dict`)."""
    files: dict[str, Path] = field(default_factory=dict)
    timed_out: bool = False
    record: Any = None
    """The run record (:class:`nas.record.RunRecord`)."""


def _fmt_num(x: float) -> str:
    return f"{x:g}"


def default_run_name(cfg: SearchConfig) -> str:
    """``<device>[-<space>]-<budget>[-<latency>][-<data>][-<estimate>]``, e.g. ``max78000-400KB``; the
    space is named when given and not implied by the device (:func:`nas.targets.space_in_run_name`),
    the estimate (``proxy``, ``short-qat``, ``supernet``) when it is not the device's default."""
    parts = [cfg.device]
    if cfg.budget_bytes is not None:
        parts.append(cfg.budget_text or f"{cfg.budget_bytes}B")
    if cfg.latency_ms is not None:
        parts.append(cfg.latency_text or f"{_fmt_num(cfg.latency_ms)}ms")
    if cfg.ram_bytes is not None:
        parts.append("ram" + (cfg.ram_text or f"{cfg.ram_bytes}B"))
    if cfg.space is not None and space_in_run_name(cfg.space):
        parts.insert(1, cfg.space)
    if cfg.data is not None:
        parts.append(Path(str(cfg.data).rstrip("/")).stem)
    low = cfg.estimator.replace("-", "_").lower()
    if low != "auto":
        key = estimator_key(low) or low
        if key != "supernet":
            parts.append(cli_name(key))
    name = "-".join(parts)
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", name)
    return name[:100]


def settings_dict(cfg: SearchConfig) -> dict[str, Any]:
    """The config as a JSON-able dict."""
    d = asdict(cfg)
    d["runs_dir"] = str(cfg.runs_dir)
    d["data"] = None if cfg.data is None else str(cfg.data)
    return d
