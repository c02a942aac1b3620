"""Checking a search's settings (:func:`validate`): everything is checked and the data loaded
before anything is written."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from search_spaces import InputError, get_space

from ..data import load_dataset
from ..estimators import cli_name, list_estimators, make_estimator
from ..record import DataRecord, RunRecord, RunRecordError, SupernetRecord
from ..supernet import FBNET_SUPERNET_DEFAULTS, covered_space
from ._config import (
    DEFAULT_LATENCY_MARGIN,
    FBNET_NASWOT_BATCH,
    JOURNAL,
    MAX78000_DEFAULT_BITS,
    MOBILE_SPACES,
    NAME_RE,
    RDB_RE,
    SEED_MAX,
    SearchConfig,
    SettingsMismatchError,
    default_run_name,
    resolve_estimator,
)
from ._study import Prepared, inspect_study

__all__ = ["validate", "auto_bits"]


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
    if cfg.storage is not None and not RDB_RE.match(cfg.storage):
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
        if est_opts.get("max_width") is not None:
            raise InputError("--supernet-max-width applies to the MAX78000 ai8x space; the fbnet supernet covers "
                             "every op of every layer")
        est_opts = {**FBNET_SUPERNET_DEFAULTS, **est_opts}
    if mobile and est_key == "naswot":
        est_opts.setdefault("batch", FBNET_NASWOT_BATCH)  # keeps a trial near 1-2 s on one thread
    estimator = make_estimator(est_key, **est_opts)
    name = cfg.name if cfg.name is not None else default_run_name(cfg, mobile)
    if not NAME_RE.match(name):
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
            probe = covered_space(space, estimator.supernet_settings())  # type: ignore[attr-defined]
        bits, bits_note = auto_bits(probe, device, budget)
        if bits != space.bits:
            space_options["bits"] = bits
            space = get_space("ai8x", input_shape=data.input_shape, num_classes=data.num_classes,
                              conv1d=data.conv1d, **space_options)
    supernet: SupernetRecord | None = None
    if est_key == "supernet":
        # The search draws only the widths the supernet covers (its width cap, see nas.supernet).
        estimator.bind(space, data, runs_dir, seed=cfg.seed)  # type: ignore[attr-defined]
        space = estimator.covered  # type: ignore[attr-defined]
        supernet = SupernetRecord(cache=str(estimator.cache_path))  # type: ignore[attr-defined]
        if not mobile:
            supernet = SupernetRecord(cache=supernet.cache, searched_widths=tuple(space.widths),
                                      width_cap=estimator.cap_reason)  # type: ignore[attr-defined]
    record = RunRecord(
        device=cfg.device,
        budget_bytes=(None if budget < 0 else budget) if mobile else budget,
        latency_ms=cfg.latency_ms,
        space=space_name,
        space_options={k: (list(v) if isinstance(v, tuple) else v) for k, v in space_options.items()},
        data=DataRecord.from_dict(data.summary()),
        estimator=estimator.to_dict(),
        metric=estimator.metric_name(),
        data_seed=cfg.seed,
        supernet=supernet,
        bits_auto=bits_note,
        ram_bytes=cfg.ram_bytes if mobile else None,
        latency_margin=margin if mobile else None,
        device_kind=str(getattr(device, "kind", "")) if mobile else None,
    )
    settings = record.to_dict()
    run_dir = runs_dir / name
    _check_run_dir(run_dir)
    old, scan, notes = inspect_study(run_dir, name, cfg.storage)
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
        if old.get("data", {}).get("fingerprint") != data.fingerprint:
            raise SettingsMismatchError(
                f"run {name!r} was started on different data ({old.get('data', {}).get('name')}); "
                "use the same --data to resume it, or pass --name NEW"
            )
    elif run_dir.exists() and any(p.name != ".lock" for p in run_dir.iterdir()):
        if not (run_dir / JOURNAL).exists() and cfg.storage is None:
            raise InputError(f"{run_dir} exists and holds no study; choose another --name or remove it")
    return Prepared(cfg=cfg, name=name, run_dir=run_dir, device=device, budget=budget, data=data, space=space,
                     estimator=estimator, record=record, resumed=old is not None, mobile=mobile,
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
