"""Checking a search's settings (:func:`validate`): everything is checked and the data loaded
before anything is written."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from search_spaces import InputError

from ..data import load_dataset
from ..estimators import cli_name, list_estimators, make_estimator
from ..record import DataRecord, RunRecord, RunRecordError, SupernetRecord
from ..supernet import (
    Sizing,
    default_time_budget,
    format_duration,
    read_sizing_memo,
    size_widths,
    sizing_memo_path,
)
from ..targets import target_for_device
from ..train import resolve_torch_device, torch_device_name
from ._config import (
    JOURNAL,
    NAME_RE,
    RDB_RE,
    SEED_MAX,
    SearchConfig,
    SettingsMismatchError,
    default_run_name,
    resolve_estimator,
)
from ._study import Prepared, inspect_study

__all__ = ["validate"]


def validate(cfg: SearchConfig) -> Prepared:
    """Check every setting and load the data; create nothing on disk.

    Raises:
        InputError: a one-line reason for the first bad setting.
    """
    from devices import get_device

    try:
        device = get_device(cfg.device, **cfg.device_options)  # UnknownDeviceError is an InputError
    except TypeError as e:
        raise InputError(f"device {cfg.device!r} does not take the options {sorted(cfg.device_options)}: {e}") from None
    target = target_for_device(device)
    space_name, margin = target.check_options(cfg, device)
    if cfg.budget_bytes is not None and (isinstance(cfg.budget_bytes, bool) or int(cfg.budget_bytes) <= 0):
        raise InputError(f"invalid --budget {cfg.budget_bytes}: it must be greater than zero (e.g. 400KB)")
    if cfg.ram_bytes is not None and (isinstance(cfg.ram_bytes, bool) or int(cfg.ram_bytes) <= 0):
        raise InputError(f"invalid --ram {cfg.ram_bytes}: it must be greater than zero (e.g. 2MB)")
    budget = target.budget(cfg, device)
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
    if cfg.storage is not None and not RDB_RE.match(cfg.storage):
        raise InputError(f"invalid --storage {cfg.storage!r}: give an RDB URL such as "
                         "postgresql://user:pass@host/db or sqlite:///path.db")
    if cfg.max_train_images is not None and cfg.max_train_images < 2:
        raise InputError("max_train_images must be at least 2")
    if cfg.max_val_images is not None and cfg.max_val_images < 1:
        raise InputError("max_val_images must be at least 1")
    est_key = resolve_estimator(cfg.estimator)
    est_opts = dict(cfg.estimator_options)
    for opt, flag in (("max_width", "--supernet-max-width"), ("epochs_elastic", "--supernet-epochs"),
                      ("time_budget_s", "--supernet-budget")):
        if est_key != "supernet" and est_opts.get(opt) is not None:
            raise InputError(f"{flag} applies to --accuracy supernet only (this search uses {est_key})")
    est_opts = target.estimator_options(est_key, est_opts)
    estimator = make_estimator(est_key, **est_opts)
    torch_device = resolve_torch_device(cfg.torch_device)  # cuda without CUDA: one line naming the fix
    estimator.use_torch_device(cfg.torch_device)
    name = cfg.name if cfg.name is not None else default_run_name(cfg)
    if not NAME_RE.match(name):
        raise InputError(
            f"invalid --name {name!r}: use up to 100 letters, digits, '.', '_', '+' or '-' (no '/')"
        )
    runs_dir = Path(cfg.runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise InputError(f"{runs_dir} exists and is not a directory; remove it or choose another runs directory")
    space_options, choose_bits = target.space_options(cfg)
    data = load_dataset(cfg.data, seed=cfg.seed, image_size=cfg.image_size)
    if cfg.max_train_images is not None and cfg.max_train_images < len(data.y_train):
        data.x_train = data.x_train[: cfg.max_train_images]
        data.y_train = data.y_train[: cfg.max_train_images]
    if cfg.max_val_images is not None and cfg.max_val_images < len(data.y_val):
        data.x_val = data.x_val[: cfg.max_val_images]
        data.y_val = data.y_val[: cfg.max_val_images]
    space = target.make_space(space_name, data, space_options)
    run_dir = runs_dir / name
    _check_run_dir(run_dir)
    old, scan, notes = inspect_study(run_dir, name, cfg.storage)
    sizing, sizing_memo = None, None
    if est_key == "supernet" and target.sizes_supernet:
        # What the supernet covers: sized from a time budget once (measured here, or the run's own
        # record when it resumes), before the bit choice, which looks at the covered widths.
        estimator, sizing, sizing_memo = _supernet_sizing(cfg, name, estimator, space, data, runs_dir, old)
    bits_note = None
    if choose_bits:
        probe = target.probe_space(space, estimator) if est_key == "supernet" else space  # type: ignore[attr-defined]
        space, bits_note = target.choose_bits(space, device, budget, probe, space_options, data)
    supernet: SupernetRecord | None = None
    if est_key == "supernet":
        # The search draws only the widths the supernet covers (its width cap, see nas.supernet).
        estimator.bind(space, data, runs_dir, seed=cfg.seed)  # type: ignore[attr-defined]
        space = estimator.covered  # type: ignore[attr-defined]
        supernet = target.supernet_record(estimator, space)
        if sizing is not None:
            supernet = replace(supernet, sizing=sizing.to_dict())
    record = RunRecord(
        device=cfg.device,
        latency_ms=cfg.latency_ms,
        space=space_name,
        space_options={k: (list(v) if isinstance(v, tuple) else v) for k, v in space_options.items()},
        data=DataRecord.from_dict(data.summary()),
        estimator=estimator.to_dict(),
        metric=estimator.metric_name(),
        data_seed=cfg.seed,
        supernet=supernet,
        bits_auto=bits_note,
        torch_device=torch_device_name(torch_device),
        **target.record_fields(cfg, device, budget, margin),
    )
    settings = record.to_dict()
    if old is not None:
        try:
            old = RunRecord.from_dict(old).to_dict()  # an unversioned run migrated; a newer one refused
        except RunRecordError as e:
            raise InputError(f"run {name!r} cannot be resumed: {e}") from None
        for key, label in (("device", "--device"), ("budget_bytes", "--budget"), ("latency_ms", "--latency"),
                           ("space", "--space"), ("ram_bytes", "--ram"), ("latency_margin", "--latency-margin"),
                           ("space_options", "space options"), ("estimator", "accuracy estimate"),
                           ("data_seed", "--seed (it fixes the data split)")):
            if _comparable(key, old.get(key, settings.get(key) if key in ("space", "ram_bytes", "latency_margin")
                                         else None)) != _comparable(key, settings.get(key)):
                raise SettingsMismatchError(_mismatch(name, key, label, old.get(key), settings[key]))
        was = old.get("torch_device")
        if was and was != record.torch_device:  # not a setting: resumes, and says so
            notes = [*notes, f"run {name!r} was started on torch device {was}; it resumes on {record.torch_device} "
                     "(estimates differ by float noise)"]
        if old.get("data", {}).get("fingerprint") != data.fingerprint:
            raise SettingsMismatchError(
                f"run {name!r} was started on different data ({old.get('data', {}).get('name')}); "
                "use the same --data to resume it, or pass --name NEW"
            )
    elif run_dir.exists() and any(p.name != ".lock" for p in run_dir.iterdir()):
        if not (run_dir / JOURNAL).exists() and cfg.storage is None:
            raise InputError(f"{run_dir} exists and holds no study; choose another --name or remove it")
    return Prepared(cfg=cfg, name=name, run_dir=run_dir, device=device, budget=budget, data=data, space=space,
                     estimator=estimator, record=record, resumed=old is not None, target=target,
                     space_name=space_name, ram=cfg.ram_bytes, journal_scan=scan, notes=notes,
                     sizing_memo=sizing_memo)


def _supernet_sizing(cfg: SearchConfig, name: str, estimator: Any, space: Any, data: Any, runs_dir: Path,
                     old: dict[str, Any] | None) -> tuple[Any, Sizing | None, tuple[Path, Sizing] | None]:
    """The ai8x supernet estimate with its covered widths sized from a time budget, the sizing,
    and the memo to write before training (path, sizing) when it was measured now.

    ``--supernet-max-width`` overrides (nothing measured). A resumed run takes its record's
    budget and width (never measured again; a different ``--supernet-budget`` is refused). A new
    run measures on its torch device (``--supernet-budget``, else the device type's default; on
    CPU none: the MAC cap), unless a memo of the same sizing exists (a run killed before its
    study was written, or another run with the same data and settings).
    """
    st = estimator.settings
    if st.max_width is not None:
        return estimator, None, None
    given = st.time_budget_s
    if old is not None:
        old_est = old.get("estimator") or {}
        was, width = old_est.get("time_budget_s"), old_est.get("budget_width")
        if given is not None and given != was:
            before = f"--supernet-budget {format_duration(was)}" if was is not None else "no --supernet-budget"
            raise SettingsMismatchError(f"run {name!r} was started with {before}, not --supernet-budget "
                                        f"{format_duration(given)}; repeat its settings to resume it, or pass "
                                        "--name NEW for a new study")
        if was is None:
            return estimator, None, None
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise InputError(f"run {name!r} cannot be resumed: its record has a supernet budget but no sized width "
                             f"(budget_width {width!r}); pass --name NEW for a new study")
        rec = (old.get("supernet") or {}).get("sizing")
        try:
            sizing = None if rec is None else Sizing.from_dict(rec)
        except (ValueError, KeyError, TypeError):
            sizing = None
        return estimator.with_settings(time_budget_s=float(was), budget_width=width), sizing, None
    device = resolve_torch_device(cfg.torch_device)
    budget = given if given is not None else default_time_budget(device)
    if budget is None:
        return estimator, None, None
    st = replace(st, time_budget_s=float(budget))
    n_train = len(data.y_train) if st.train_images == 0 else min(st.train_images, len(data.y_train))
    memo = sizing_memo_path(runs_dir, space, st, n_train, device)
    sizing = read_sizing_memo(memo)
    pending = None
    if sizing is None:
        sizing = size_widths(space, st, data.x_train, data.y_train, device=device)
        pending = (memo, sizing)
    return estimator.with_settings(time_budget_s=float(budget), budget_width=sizing.width), sizing, pending


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
        if est_was != est_now and est_was in list_estimators():
            # e.g. a phone run from before the supernet became the phones' default (NASWOT)
            return (f"run {name!r} was started with the accuracy estimate {est_was}, not {est_now}; resume it with "
                    f"--accuracy {cli_name(est_was)} --name {name}, or pass --name NEW for a new study")
    return (f"run {name!r} was started with {label} = {was!r}, not {now!r}; "
            "repeat its settings to resume it, or pass --name NEW for a new study")


def _comparable(key: str, value: Any) -> Any:
    """A run setting as resuming compares it: NASWOT's ``note`` (why it was the phones' default,
    written by earlier versions) is prose, not a setting."""
    if key == "estimator" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "note"}
    return value
