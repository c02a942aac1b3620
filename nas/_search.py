"""``nas search``: a constrained multi-objective Optuna study over a device's search space.

One trial: sample an architecture (``ai8x`` space), build its hardware network description,
run the device check (memory, kernel placement, layer count, cycle latency), set the limits as
Optuna constraints (``Trial.set_constraint``, <= 0 feasible), compute the accuracy estimate
(``nas._accuracy``), and tell the study ``[estimate, latency_ms]`` (maximise, minimise).

The study lives in ``runs/<name>/study.journal`` (Optuna ``JournalStorage`` with a
``JournalFileBackend``; optuna-dashboard opens it). Every finished trial is appended and
fsync'ed, so a search killed with SIGKILL loses at most the trial in flight; running the same
settings with the same name resumes the study (``--trials`` counts all completed trials).
``nas._journal`` makes the journal survive kills and damage: a lock left by a killed process is
broken, a journal damaged at its end is recovered into a fresh one (the damaged file kept beside
it), and damage inside it stops the search before anything is written. A shared ``--storage``
holds ``--trials`` for every process together, and each process draws its own networks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import socket
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search_spaces import InputError, get_space

from ._accuracy import ESTIMATE_ALIASES, Estimator, make_estimator
from ._data import Dataset, load_dataset

__all__ = ["SearchConfig", "SearchResult", "SearchProgress", "run_search", "validate", "default_run_name",
           "resolve_estimator", "prepare_estimator"]

JOURNAL = "study.journal"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
_RDB_RE = re.compile(r"^(sqlite|postgresql|mysql)(\+[A-Za-z0-9_]+)?://")


class RunInUseError(InputError):
    """The run directory is locked by another ``nas search`` process."""


class SettingsMismatchError(InputError):
    """A run of that name exists with different settings."""


class SearchTerminated(KeyboardInterrupt):
    """SIGTERM arrived (``nas search`` turns it into this): stop like Ctrl-C, the trial in flight
    told FAIL."""


SEED_MAX = 2**32 - 1
"""Largest ``--seed`` (the seeds of NumPy's legacy generators, used by Optuna's samplers, are 32-bit)."""

_clock = time.monotonic  # the --timeout clock (tests replace it)


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
            (validation accuracy of the weight-sharing supernet's sub-network: ``nas._supernet`` on
            MAX78000 devices, ``nas._supernet_fbnet`` on the others, with
            :data:`~nas._supernet_fbnet.FBNET_SUPERNET_DEFAULTS` under ``estimator_options``),
            ``naswot`` (also ``proxy``: the training-free score) or ``short_qat`` (short training
            from scratch).
        estimator_options: keyword settings of the estimator (e.g. ``{"epochs": 1}``).
        space_options: extra keyword options of the ``ai8x`` space (e.g. ``{"max_units": 4}``); MAX78000
            searches default ``bits`` by :func:`auto_bits` (8 only when the largest network the
            search can propose fits the budget at 8 bits, else :data:`MAX78000_DEFAULT_BITS`).
        sampler: ``tpe`` (multi-objective TPE with constraints) or ``nsga2``.
        budget_text: how the budget was written (for the run name), e.g. ``400KB``.
        latency_text: how the latency limit was written, e.g. ``2ms``.
        max_train_images: cap on training images the estimators see (None: all).
        backend: ``local`` (trials one after another in this process) or ``ray`` (Ray Tune trials
            driven by Optuna's sampler through ``OptunaSearch``, same study; see ``nas._ray``).
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


MOBILE_SPACES = ("fbnet",)
_CLI_ESTIMATE = {"supernet": "supernet", "naswot": "proxy", "short_qat": "short-qat"}


def resolve_estimator(name: str) -> str:
    """The estimator key ``name`` means: ``auto`` is ``supernet`` (the ai8x supernet on MAX78000
    devices, the fbnet supernet on phones, host-cpu and registered devices: it ranked better than
    NASWOT on 8x8 digits and within seed noise of it on MNIST 5k, benchmarks/results/supernet_fbnet_*.md).

    Raises:
        InputError: an unknown name.
    """
    low = name.replace("-", "_").lower()
    if low == "auto":
        return "supernet"
    key = ESTIMATE_ALIASES.get(low)
    if key is None:
        raise InputError(f"unknown accuracy estimate {name!r}; use supernet, proxy or short-qat")
    return key


FBNET_NASWOT_BATCH = 32
DEFAULT_LATENCY_MARGIN = 1.645
MAX78000_DEFAULT_BITS = (2, 4, 8)
"""Hidden-layer weight bit widths a MAX78000 search offers unless ``space_options["bits"]`` says otherwise."""


def auto_bits(space: Any, device: Any, budget: int) -> tuple[tuple[int, ...], str]:
    """The default hidden-layer bit widths of a MAX78000 search and a sentence saying why.

    The MAX78000's latency does not depend on weight bits (only kernel memory does), so lower
    bits can only lose accuracy unless memory demands them: when the largest network the search
    can propose (every unit at full depth, widest, largest kernel) fits ``budget`` and the
    device's memory rules at 8 bits, only 8-bit weights are searched; otherwise the bits of
    :data:`MAX78000_DEFAULT_BITS`.
    """
    w, k = space.widths[-1], space.kernels[-1]
    arch = {"units": [[{"width": w, "kernel": k, "bits": 8}] * space.max_depth] * space.max_units, "fc_bits": 8}
    rep = device.report(space.network(arch))
    if rep.fits and rep.weight_bytes <= budget:
        return (8,), (f"8 only (auto): the largest network the search can propose ({space.max_units} units x "
                      f"{space.max_depth} layers of {w} channels, {k}x{k}) fits at 8 bits ({rep.weight_bytes:,} B of "
                      f"the {budget:,} B budget), and lower bits save only weight memory on the MAX78000, never "
                      "latency; --bits 2,4,8 searches them anyway")
    why = "it breaks a memory rule" if not rep.fits else f"its {rep.weight_bytes:,} B exceed the {budget:,} B budget"
    bits = ", ".join(map(str, MAX78000_DEFAULT_BITS))
    return MAX78000_DEFAULT_BITS, (f"{bits} (auto): the largest network the search can propose does not fit at 8 "
                                   f"bits ({why}), so lower bits are searched to fit more into memory")


def _front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
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
    files: dict[str, Path] = field(default_factory=dict)
    timed_out: bool = False


@dataclass
class _Prepared:
    cfg: SearchConfig
    name: str
    run_dir: Path
    device: Any
    budget: int
    data: Dataset
    space: Any
    estimator: Estimator
    settings: dict[str, Any]
    resumed: bool
    mobile: bool = False
    """A latency-predicting device (phone, host-cpu, registered) searching ``space_name``."""
    space_name: str = "ai8x"
    ram: int | None = None
    journal_scan: Any = None
    """The journal's :class:`nas._journal.JournalScan` when it was damaged at its end (recovered
    when the study is opened), else None."""
    notes: list[str] = field(default_factory=list)
    """One-line notes for the user found while validating (an empty journal)."""


def _fmt_num(x: float) -> str:
    return f"{x:g}"


def default_run_name(cfg: SearchConfig, mobile: bool = False) -> str:
    """``<device>-<budget>[-<latency>][-<data>][-<estimate>]``, e.g. ``max78000-400KB``; the estimate
    is named (``proxy``, ``short-qat``, ``supernet``) when it is not the device's default."""
    parts = [cfg.device]
    if cfg.budget_bytes is not None:
        parts.append(cfg.budget_text or f"{cfg.budget_bytes}B")
    if cfg.latency_ms is not None:
        parts.append(cfg.latency_text or f"{_fmt_num(cfg.latency_ms)}ms")
    if cfg.ram_bytes is not None:
        parts.append("ram" + (cfg.ram_text or f"{cfg.ram_bytes}B"))
    if cfg.space is not None and cfg.space != "ai8x":
        parts.insert(1, cfg.space)
    if cfg.data is not None:
        parts.append(Path(str(cfg.data).rstrip("/")).stem)
    low = cfg.estimator.replace("-", "_").lower()
    if low != "auto":
        key = ESTIMATE_ALIASES.get(low, low)
        if key != "supernet":
            parts.append(_CLI_ESTIMATE.get(key, key.replace("_", "-")))
    name = "-".join(parts)
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", name)
    return name[:100]


def _journal_storage(path: Path, records: list[dict[str, Any]] | None = None) -> Any:
    """The journal at ``path`` with a lock that survives kills (``nas._journal.JournalLock``);
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


def _inspect_study(run_dir: Path, name: str, url: str | None = None) -> tuple[dict[str, Any] | None, Any, list[str]]:
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


def validate(cfg: SearchConfig) -> _Prepared:
    """Check every setting and load the data; create nothing on disk.

    Raises:
        InputError: a one-line reason for the first bad setting.
    """
    from devices import get_device

    try:
        device = get_device(cfg.device, **cfg.device_options)  # UnknownDeviceError is an InputError
    except TypeError as e:
        raise InputError(f"device {cfg.device!r} does not take the options {sorted(cfg.device_options)}: {e}") from None
    mobile = not hasattr(device, "report")
    if mobile:
        spaces = list(getattr(device, "spaces", []))
        usable = [s for s in spaces if s in MOBILE_SPACES]
        if cfg.space is None:
            if len(usable) != 1:
                raise InputError(
                    f"give --space for device {cfg.device!r}: nas search supports {', '.join(MOBILE_SPACES)}; "
                    f"the device has latency for {', '.join(spaces) or 'no space'}"
                )
            space_name = usable[0]
        else:
            space_name = cfg.space
        if space_name not in spaces or space_name not in MOBILE_SPACES:
            raise InputError(
                f"nas search cannot search space {space_name!r} on device {cfg.device!r}: "
                f"it searches {', '.join(usable) or 'none of its spaces'} there"
                + (f" (the device has latency for {', '.join(spaces)})" if spaces else "")
            )
        margin = DEFAULT_LATENCY_MARGIN if cfg.latency_margin is None else float(cfg.latency_margin)
        if not (math.isfinite(margin) and margin >= 0):
            raise InputError(f"invalid --latency-margin {cfg.latency_margin}: it must be a number >= 0 (e.g. 1.645)")
    else:
        space_name = cfg.space if cfg.space is not None else "ai8x"
        if space_name != "ai8x":
            raise InputError(f"nas search cannot search space {space_name!r} on device {cfg.device!r}: "
                             "MAX78000 devices search the ai8x space")
        margin = 0.0
        if cfg.latency_margin is not None:
            raise InputError(f"--latency-margin applies to phones, host-cpu and registered latency devices, not to "
                             f"{cfg.device!r} (its cycle model has no uncertainty)")
        if cfg.ram_bytes is not None:
            raise InputError("--ram applies to phones, host-cpu and registered latency devices, not to "
                             f"{cfg.device!r} (its data memory is checked by the device rules)")
    import devices

    # The device's whole weight memory (442,368 B on the MAX78000), from its report type.
    capacity = int(devices.Max78000Report.weight_capacity_bytes)
    if cfg.budget_bytes is not None and (isinstance(cfg.budget_bytes, bool) or int(cfg.budget_bytes) <= 0):
        raise InputError(f"invalid --budget {cfg.budget_bytes}: it must be greater than zero (e.g. 400KB)")
    if cfg.ram_bytes is not None and (isinstance(cfg.ram_bytes, bool) or int(cfg.ram_bytes) <= 0):
        raise InputError(f"invalid --ram {cfg.ram_bytes}: it must be greater than zero (e.g. 2MB)")
    if mobile:
        budget = -1 if cfg.budget_bytes is None else int(cfg.budget_bytes)  # -1: no size limit
    else:
        budget = capacity if cfg.budget_bytes is None else int(cfg.budget_bytes)
    if cfg.latency_ms is not None and not (math.isfinite(cfg.latency_ms) and cfg.latency_ms > 0):
        raise InputError(f"invalid --latency {cfg.latency_ms}: it must be greater than zero (e.g. 2ms)")
    if isinstance(cfg.trials, bool) or int(cfg.trials) < 1:
        raise InputError(f"invalid --trials {cfg.trials}: it must be at least 1")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed <= SEED_MAX:
        raise InputError(f"invalid --seed {cfg.seed}: give a whole number from 0 to {SEED_MAX}")
    if cfg.timeout_s is not None and (isinstance(cfg.timeout_s, bool) or not math.isfinite(float(cfg.timeout_s))
                                      or float(cfg.timeout_s) <= 0):
        raise InputError(f"invalid --timeout {cfg.timeout_s}: it must be greater than zero (e.g. 30min)")
    if cfg.sampler not in ("tpe", "nsga2"):
        raise InputError(f"unknown sampler {cfg.sampler!r}; use tpe or nsga2")
    if cfg.backend not in ("local", "ray"):
        raise InputError(f"unknown backend {cfg.backend!r}; use local or ray")
    if cfg.backend != "ray" and (cfg.ray_address is not None or cfg.workers is not None):
        raise InputError("--ray-address and --workers apply to --backend ray only")
    if cfg.workers is not None and (isinstance(cfg.workers, bool) or int(cfg.workers) < 1):
        raise InputError(f"invalid --workers {cfg.workers}: it must be at least 1")
    if cfg.ray_address is not None and not cfg.ray_address.strip():
        raise InputError("invalid --ray-address '': give auto, HOST:PORT or ray://HOST:PORT")
    if cfg.storage is not None and not _RDB_RE.match(cfg.storage):
        raise InputError(f"invalid --storage {cfg.storage!r}: give an RDB URL such as "
                         "postgresql://user:pass@host/db or sqlite:///path.db")
    if cfg.max_train_images is not None and cfg.max_train_images < 2:
        raise InputError("max_train_images must be at least 2")
    est_key = resolve_estimator(cfg.estimator)
    est_opts = dict(cfg.estimator_options)
    for opt, flag in (("max_width", "--supernet-max-width"), ("epochs_elastic", "--supernet-epochs")):
        if est_key != "supernet" and est_opts.get(opt) is not None:
            raise InputError(f"{flag} applies to --accuracy supernet only (this search uses {est_key})")
    if mobile and est_key == "supernet":
        from ._supernet_fbnet import FBNET_SUPERNET_DEFAULTS

        if est_opts.get("max_width") is not None:
            raise InputError("--supernet-max-width applies to the MAX78000 ai8x space; the fbnet supernet covers "
                             "every op of every layer")
        est_opts = {**FBNET_SUPERNET_DEFAULTS, **est_opts}
    if mobile and est_key == "naswot":
        est_opts.setdefault("batch", FBNET_NASWOT_BATCH)  # keeps a NASWOT trial quick on one thread
    estimator = make_estimator(est_key, **est_opts)
    name = cfg.name if cfg.name is not None else default_run_name(cfg, mobile)
    if not _NAME_RE.match(name):
        raise InputError(
            f"invalid --name {name!r}: use up to 100 letters, digits, '.', '_', '+' or '-' (no '/')"
        )
    runs_dir = Path(cfg.runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise InputError(f"{runs_dir} exists and is not a directory; remove it or choose another runs directory")
    space_options = dict(cfg.space_options)
    if mobile and "bits" in space_options:
        raise InputError(f"--bits applies to MAX78000 devices; {cfg.device!r} searches int8 {space_name} networks")
    choose_bits = not mobile and "bits" not in space_options
    if not mobile:
        # 1-bit weights are {-1, 0} on the MAX78000 (two's complement) and so is the bias (rounded at
        # the weight bits, as the vendor's quantize.py does). Every hidden layer of the ai8x space
        # reads the output of a ReLU (>= 0), so a 1-bit hidden layer's sums are never positive and it
        # outputs 0 for every input (benchmarks/results/vendor_roundtrip.md): the search refuses it.
        if 1 in space_options.get("bits", ()):
            raise InputError("--bits 1 cannot be searched: a 1-bit hidden layer outputs 0 for every input on the "
                             "MAX78000 (its weights and bias are in {-1, 0} and it reads a ReLU's output); use 2, 4 or 8, "
                             "e.g. --bits 2,4,8")
        space_options.setdefault("bits", MAX78000_DEFAULT_BITS)
    data = load_dataset(cfg.data, seed=cfg.seed, image_size=cfg.image_size)
    if cfg.max_train_images is not None and cfg.max_train_images < len(data.y_train):
        data.x_train = data.x_train[: cfg.max_train_images]
        data.y_train = data.y_train[: cfg.max_train_images]
    if mobile:
        shape = tuple(int(v) for v in data.input_shape)
        if data.conv1d or len(shape) != 3 or shape[1] != shape[2] or shape[1] < 8:
            raise InputError(f"the fbnet space needs square images of at least 8x8 pixels, got input shape {shape}")
        space = get_space(space_name, in_channels=shape[0], num_classes=data.num_classes, input_size=shape[1],
                          **cfg.space_options)
    else:
        space = get_space("ai8x", input_shape=data.input_shape, num_classes=data.num_classes, conv1d=data.conv1d,
                          **space_options)
    bits_note = None
    if choose_bits:
        probe = space
        if est_key == "supernet":
            from ._supernet import covered_space

            probe = covered_space(space, estimator.supernet_settings())  # type: ignore[attr-defined]
        bits, bits_note = auto_bits(probe, device, budget)
        if bits != space.bits:
            space_options["bits"] = bits
            space = get_space("ai8x", input_shape=data.input_shape, num_classes=data.num_classes,
                              conv1d=data.conv1d, **space_options)
    supernet_info: dict[str, Any] | None = None
    if est_key == "supernet":
        # The search draws only the widths the supernet covers (its width cap, see nas._supernet).
        estimator.bind(space, data, runs_dir, seed=cfg.seed)  # type: ignore[attr-defined]
        space = estimator.covered  # type: ignore[attr-defined]
        supernet_info = {"cache": str(estimator.cache_path)}  # type: ignore[attr-defined]
        if not mobile:
            supernet_info.update(searched_widths=list(space.widths), width_cap=estimator.cap_reason)  # type: ignore[attr-defined]
    settings = {
        "device": cfg.device,
        "budget_bytes": budget,
        "latency_ms": cfg.latency_ms,
        "space": space_name,
        "space_options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in space_options.items()},
        "data": data.summary(),
        "estimator": estimator.to_dict(),
        "metric": estimator.metric_name(),
        "data_seed": cfg.seed,
    }
    if supernet_info is not None:
        settings["supernet"] = supernet_info
    if bits_note is not None:
        settings["bits_auto"] = bits_note
    if mobile:
        settings["budget_bytes"] = None if budget < 0 else budget
        settings["ram_bytes"] = cfg.ram_bytes
        settings["latency_margin"] = margin
        settings["device_kind"] = str(getattr(device, "kind", ""))
    run_dir = runs_dir / name
    _check_run_dir(run_dir)
    old, scan, notes = _inspect_study(run_dir, name, cfg.storage)
    if old is not None:
        for key, label in (("device", "--device"), ("budget_bytes", "--budget"), ("latency_ms", "--latency"),
                           ("space", "--space"), ("ram_bytes", "--ram"), ("latency_margin", "--latency-margin"),
                           ("space_options", "space options"), ("estimator", "accuracy estimate"),
                           ("data_seed", "--seed (it fixes the data split)")):
            if _comparable(key, old.get(key, settings.get(key) if key in ("space", "ram_bytes", "latency_margin")
                                         else None)) != _comparable(key, settings.get(key)):
                raise SettingsMismatchError(_mismatch(name, key, label, old.get(key), settings[key]))
        if old.get("data", {}).get("fingerprint") != data.fingerprint:
            raise SettingsMismatchError(
                f"run {name!r} was started on different data ({old.get('data', {}).get('name')}); "
                "use the same --data to resume it, or pass --name NEW"
            )
    elif run_dir.exists() and any(p.name != ".lock" for p in run_dir.iterdir()):
        if not (run_dir / JOURNAL).exists() and cfg.storage is None:
            raise InputError(f"{run_dir} exists and holds no study; choose another --name or remove it")
    return _Prepared(cfg=cfg, name=name, run_dir=run_dir, device=device, budget=budget, data=data, space=space,
                     estimator=estimator, settings=settings, resumed=old is not None, mobile=mobile,
                     space_name=space_name, ram=cfg.ram_bytes, journal_scan=scan, notes=notes)


def _check_run_dir(run_dir: Path) -> None:
    """The run directory is a writable directory, or can be made (one-line :class:`InputError` if not)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"{run_dir} exists and is not a directory; remove it or pass --name NEW")
    probe = run_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{probe} is not a directory, so {run_dir} cannot be made; choose another --runs-dir")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{probe} is not writable; fix its permissions or choose another --runs-dir / --name")


def _mismatch(name: str, key: str, label: str, was: Any, now: Any) -> str:
    """Why run ``name`` cannot resume with setting ``key`` = ``now`` (it was ``was``), and how to."""
    if key == "estimator":
        est_was, est_now = (was or {}).get("estimator"), now.get("estimator")
        if est_was != est_now and est_was in _CLI_ESTIMATE:
            # e.g. a phone run from before the supernet became the phones' default (NASWOT)
            return (f"run {name!r} was started with the accuracy estimate {est_was}, not {est_now}; resume it with "
                    f"--accuracy {_CLI_ESTIMATE[est_was]} --name {name}, or pass --name NEW for a new study")
    return (f"run {name!r} was started with {label} = {was!r}, not {now!r}; "
            "repeat its settings to resume it, or pass --name NEW for a new study")


def _comparable(key: str, value: Any) -> Any:
    """A run setting as resuming compares it: NASWOT's ``note`` (why it was the phones' default,
    written by earlier versions) is prose, not a setting."""
    if key == "estimator" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "note"}
    return value


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
def _run_dir_locked(run_dir: Path, shared: bool = False) -> Iterator[None]:
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
    if not shared or not hasattr(study._storage, "record_heartbeat"):
        yield
        return
    import threading

    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):
                study._storage.record_heartbeat(trial._trial_id)
            if stop.wait(HEARTBEAT_S):
                return

    th = threading.Thread(target=beat, name="nas-heartbeat", daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join(timeout=5)


def _stop_note(e: BaseException) -> str:
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


def _constraints(report: Any, budget: int, latency_limit: float | None) -> dict[str, float]:
    c = {
        "weight_bytes_over_budget": float(report.weight_bytes - budget),
        "device_violations": float(len(report.violations)),
        "layers_over_limit": float(report.layers - report.max_layers),
    }
    if latency_limit is not None:
        c["latency_over_limit_ms"] = float(report.latency_ms - latency_limit)
    return c


def prepare_estimator(prep: _Prepared, log: Callable[[str], None] | None = None) -> None:
    """Train or load what the estimate needs before the first trial (the supernet; nothing for
    the other estimates). Runs on the driver, so Ray workers only load the cache."""
    if hasattr(prep.estimator, "prepare"):
        prep.estimator.prepare(log)


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
        from ._ray import run_ray_search

        return run_ray_search(prep, progress, log)
    t_start = time.perf_counter()
    prepare_estimator(prep, log)
    shared = cfg.storage is not None
    with _run_dir_locked(prep.run_dir, shared):
        study, tally, cache = _open_study(prep, log)
        n_done = tally.done
        metric = prep.estimator.metric_name()
        if progress:
            progress(tally.progress(cfg.trials, metric, None, False))
        t_dev = t_est = 0.0
        n_new = 0
        deadline = None if cfg.timeout_s is None else _clock() + float(cfg.timeout_s)
        timed_out = False
        while True:
            if shared:
                fail_stale_trials(study)
                if counted_trials(study) >= cfg.trials:
                    break
            elif n_done >= cfg.trials:
                break
            if deadline is not None and _clock() >= deadline:
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
                    trial.set_user_attr("note", _stop_note(e))
                study.tell(trial, state=TrialState.FAIL)
                raise
            n_done += 1
            n_new += 1
            tally.add(chk.feasible, value, chk.latency_ms)
            if progress:
                progress(tally.progress(cfg.trials, metric, chk.latency_ms, chk.feasible))
        result = _finish(study, prep, tally, n_new=n_new, seconds=time.perf_counter() - t_start,
                         device_seconds=t_dev, estimate_seconds=t_est)
        result.timed_out = timed_out
        return result


@dataclass
class TrialCheck:
    """What the device check of one sampled architecture found (already set on the trial).

    Attributes:
        arch_s: the architecture as text (``space.format``; ``space.parse`` reads it back).
        latency_ms: the device's latency estimate.
        feasible: every constraint <= 0.
        needs_estimate: the accuracy estimate should run (feasible, or a cheap estimator).
        constraints: the values given to ``Trial.set_constraint``.
    """

    arch_s: str
    latency_ms: float
    feasible: bool
    needs_estimate: bool
    constraints: dict[str, float]


def check_trial(prep: _Prepared, trial: Any) -> TrialCheck:
    """Sample an architecture on ``trial``, check it on the device, set constraints and user_attrs.

    Sets the constraints and the user_attrs ``arch``, ``feasible`` and ``device``; used by every
    backend so that trials look the same in the study.
    """
    if prep.mobile:
        return _check_mobile(prep, trial)
    arch = prep.space.sample(trial)
    arch_s = prep.space.format(arch)
    rep = prep.device.report(prep.space.network(arch))
    cons = _constraints(rep, prep.budget, prep.cfg.latency_ms)
    return _record_check(prep, trial, arch_s, float(rep.latency_ms), cons, _compact_report(rep))


def _record_check(prep: _Prepared, trial: Any, arch_s: str, latency_ms: float, cons: dict[str, float],
                  figures: dict[str, Any]) -> TrialCheck:
    """Set a checked trial's constraints and its ``arch``/``feasible``/``device`` user_attrs."""
    for k, v in cons.items():
        trial.set_constraint(k, v)
    ok = all(v <= 0 for v in cons.values())
    trial.set_user_attr("arch", arch_s)
    trial.set_user_attr("feasible", ok)
    trial.set_user_attr("device", figures)
    # naswot is cheap: score infeasible candidates too; short training and the supernet estimate
    # (about a second each) are skipped for them.
    needs = ok or prep.estimator.key == "naswot"
    return TrialCheck(arch_s=arch_s, latency_ms=latency_ms, feasible=ok, needs_estimate=needs, constraints=cons)


def mobile_figures(prep: _Prepared, arch_s: str) -> dict[str, Any]:
    """Latency (mean, std, bound = mean + k*std), int8 size and peak RAM of one fbnet architecture."""
    from search_spaces._fbnet_cost import fbnet_cost

    ms, std = prep.device.predict(prep.space_name, [arch_s], return_std=True)
    mean, sd = float(ms[0]), float(std[0])
    cost = fbnet_cost(prep.space.op_indices(arch_s), in_channels=prep.space.in_channels,
                      input_size=prep.space.input_size, num_classes=prep.space.num_classes)
    return {
        "latency_ms": mean,
        "std_ms": sd,
        "latency_bound_ms": mean + float(prep.settings["latency_margin"]) * sd,
        "latency_margin": float(prep.settings["latency_margin"]),
        **cost.to_dict(),
    }


def _check_mobile(prep: _Prepared, trial: Any) -> TrialCheck:
    """:func:`check_trial` for latency-predicting devices: predicted/measured latency, analytic size and RAM."""
    arch_s = prep.space.format(prep.space.sample(trial))
    fig = mobile_figures(prep, arch_s)
    cons: dict[str, float] = {}
    if prep.budget >= 0:
        cons["size_bytes_over_budget"] = float(fig["size_bytes"] - prep.budget)
    if prep.ram is not None:
        cons["ram_bytes_over_limit"] = float(fig["peak_ram_bytes"] - prep.ram)
    if prep.cfg.latency_ms is not None:
        cons["latency_bound_over_limit_ms"] = float(fig["latency_bound_ms"] - prep.cfg.latency_ms)
    if not cons:
        cons["none"] = 0.0  # a study whose trials all carry constraints
    return _record_check(prep, trial, arch_s, fig["latency_ms"], cons, fig)


def estimate_arch(prep: _Prepared, arch_s: str) -> Any:
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
class _Tally:
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
                              _front(self.points))


def _say(log: Callable[[str], None] | None) -> Callable[[str], None]:
    if log is not None:
        return log
    import sys

    return lambda line: print(f"nas search: {line}", file=sys.stderr)


def _repair_journal(prep: _Prepared, log: Callable[[str], None] | None) -> None:
    """Under the run lock, before the journal is opened for writing: break a lock a killed
    process left, and recover a journal damaged at its end (see ``nas._journal``)."""
    from ._journal import break_stale_lock, lock_path, recover, scan_journal

    say = _say(log)
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


def _open_study(prep: _Prepared, log: Callable[[str], None] | None = None,
                ) -> tuple[Any, _Tally, dict[str, tuple[float, dict[str, Any]]]]:
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
        _say(log)(note)
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
        study.set_user_attr("settings", prep.settings)
    # Trials left RUNNING by a killed search: they never finished, mark them failed. (Not in a
    # shared RDB: another machine's search may be running them; there the trials whose process
    # stopped sending heartbeats are failed instead.)
    left = () if prep.cfg.storage is not None else (TrialState.RUNNING, TrialState.WAITING)
    for t in study.get_trials(deepcopy=False, states=left):
        study._storage.set_trial_user_attr(t._trial_id, "note", "interrupted (left RUNNING by a killed search)")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    if prep.cfg.storage is not None:
        fail_stale_trials(study)
    done_trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    study.sampler = _make_sampler(prep.cfg.sampler,
                                  sampler_seed(prep.cfg.seed, len(done_trials), prep.cfg.storage is not None))
    cache: dict[str, tuple[float, dict[str, Any]]] = {}
    tally = _Tally()
    for t in done_trials:
        if "estimate" in t.user_attrs and t.user_attrs.get("estimated"):
            cache[t.user_attrs["arch"]] = (t.user_attrs["estimate"], t.user_attrs.get("estimate_details", {}))
        tally.add(bool(t.user_attrs.get("feasible")), t.values[0], t.values[1])
    return study, tally, cache


def _finish(study: Any, prep: _Prepared, tally: _Tally, *, n_new: int, seconds: float, device_seconds: float,
            estimate_seconds: float) -> SearchResult:
    """Write the run's outputs and build the result."""
    from optuna.trial import TrialState

    from ._report import write_outputs

    files = write_outputs(study, prep)
    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    pareto = json.loads(files["pareto_json"].read_text())["pareto"]
    return SearchResult(
        run_dir=prep.run_dir, name=prep.name, metric=prep.estimator.metric_name(), pareto=pareto,
        n_complete=n_complete, n_feasible=tally.feasible, n_new=n_new, seconds=seconds,
        device_seconds=device_seconds, estimate_seconds=estimate_seconds, resumed=prep.resumed,
        settings=prep.settings, files=files,
    )


def _compact_report(rep: Any) -> dict[str, Any]:
    """The device figures kept per trial (JSON): the report without per-layer placements."""
    d = rep.to_dict()
    d.pop("placement", None)
    d.pop("assumptions", None)
    return d


def settings_dict(cfg: SearchConfig) -> dict[str, Any]:
    """The config as a JSON-able dict."""
    d = asdict(cfg)
    d["runs_dir"] = str(cfg.runs_dir)
    d["data"] = None if cfg.data is None else str(cfg.data)
    return d
