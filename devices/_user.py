"""User devices: the registry directory, registered devices, and registering one from samples.

Layout (``$NAS_HOME``, default ``$XDG_DATA_HOME/hw-nas`` or ``~/.local/share/hw-nas``)::

    $NAS_HOME/devices/<name>.json            the device: metadata, samples, leave-one-out error
    $NAS_HOME/devices/<name>-<sha256:12>.npz the adapted predictor (predictors' .npz format)

A device exists exactly when its JSON file does. Writers (register, remove) hold an exclusive
``flock`` on ``$NAS_HOME/devices/.lock`` (released by the kernel when a writer dies, so a kill
never leaves it stale): under it a registration checks the name is free, writes the predictor
file (through a unique temporary file and ``os.replace``, under a content hash), then the JSON
(the same way), then removes the files it replaced; a writer that fails removes only files it
created. Temporary files left by a killed writer are removed by the next writer. Every read
validates the record (types, ranges, version) and a bad one is a :class:`RegistryError` naming
the file and the fix: ``nas device remove NAME`` or registering again with ``--force``, both
of which work on a damaged entry. Read-only operations never create the directory.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import fcntl
import hashlib
import io
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import ArchitectureError, InputError, Network, get_space

from ._base import Device
from ._max78000 import MAX78000, Max78000Report
from ._registry import builtin_devices
from ._space import Estimate, SpaceDevice

__all__ = [
    "RegistryError",
    "SamplesError",
    "RegisteredDevice",
    "CalibratedMAX78000",
    "Samples",
    "nas_home",
    "devices_dir",
    "user_device_names",
    "load_user_device",
    "read_samples",
    "check_samples",
    "register_space_device",
    "register_max78000_device",
    "remove_user_device",
    "check_free",
    "check_name",
]

FORMAT = "hw-nas/device"
FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class RegistryError(InputError):
    """A device name that cannot be used, or a registry file that cannot be read."""


class SamplesError(InputError):
    """A samples file that cannot be used (the message names the line and the reason)."""


# ---------------------------------------------------------------------------- the directory
def nas_home() -> Path:
    """The user's data directory: ``$NAS_HOME``, else ``$XDG_DATA_HOME/hw-nas``, else ``~/.local/share/hw-nas``."""
    env = os.environ.get("NAS_HOME")
    if env:
        return Path(env).expanduser()
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):  # pragma: no cover - Windows
        return Path(os.environ["LOCALAPPDATA"]) / "hw-nas"
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "hw-nas"


def devices_dir() -> Path:
    """``$NAS_HOME/devices`` (not created here)."""
    return nas_home() / "devices"


def user_device_names() -> list[str]:
    """Names of the registered devices, sorted (empty when the directory does not exist)."""
    d = devices_dir()
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.json") if _NAME.match(p.stem))


def _record_path(name: str) -> Path:
    return devices_dir() / f"{name}.json"


_LOCK = ".lock"
LOCK_TIMEOUT_S = 60.0
"""How long a writer waits for another writer to finish before giving up with one line."""
_PREDICTOR_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}\.npz$")


@contextlib.contextmanager
def _registry_lock() -> Iterator[None]:
    """Hold the registry's writer lock (creates the directory). Waits up to :data:`LOCK_TIMEOUT_S`."""
    d = devices_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / _LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RegistryError(f"the device registry {d} is busy: another hw-nas process has held {path} "
                                        f"for over {LOCK_TIMEOUT_S:g} s; let it finish (or stop it) and try again") from None
                time.sleep(0.05)
        _remove_stale_temporaries(d)  # left by a writer that was killed (none can be in use: we hold the lock)
        yield
    finally:
        os.close(fd)  # releases the lock


def _remove_stale_temporaries(d: Path) -> None:
    for p in d.glob(".*"):
        if p.name != _LOCK and p.is_file() and (p.name.endswith(".tmp") or p.name.endswith(".npz")):
            p.unlink(missing_ok=True)


def _fix(name: str) -> str:
    return f"remove it with 'nas device remove {name}' or register the device again with --force"


def _real(v: Any) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_pairs(value: Any, key: str) -> str | None:
    if not isinstance(value, list) or not all(
            isinstance(r, list) and len(r) == 2 and isinstance(r[0], str) and _real(r[1]) and r[1] > 0 for r in value):
        return f"{key!r} must be a list of [name, positive latency in ms] pairs"
    return None


def _check_predictor_record(record: dict[str, Any]) -> str | None:
    from predictors import SPACES

    if record.get("space") not in SPACES:
        return f"'space' must be one of {', '.join(SPACES)}, not {record.get('space')!r}"
    pf = record.get("predictor_file")
    if not isinstance(pf, str) or not _PREDICTOR_FILE.match(pf):
        return f"'predictor_file' must name an .npz file in the registry folder, not {pf!r}"
    if (problem := _check_pairs(record.get("samples"), "samples")) is not None:
        return problem
    loo = record.get("loo")
    if not isinstance(loo, dict):
        return "'loo' (the leave-one-out errors) must be an object"
    for k in ("median_abs_error", "max_abs_error", "within_10pct"):
        if not (_real(loo.get(k)) and loo[k] >= 0):
            return f"'loo.{k}' must be a non-negative number, not {loo.get(k)!r}"
    if not (isinstance(loo.get("n"), int) and not isinstance(loo["n"], bool) and loo["n"] >= 0):
        return f"'loo.n' must be a count, not {loo.get('n')!r}"
    scale = loo.get("std_scale", 1.0)
    if not (_real(scale) and scale >= 1.0):
        return f"'loo.std_scale' must be a finite number >= 1, not {scale!r}"
    rows = loo.get("samples", [])
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("arch"), str) and _real(r.get("measured_ms"))
            and _real(r.get("predicted_ms")) and r["measured_ms"] > 0 and r["predicted_ms"] > 0 for r in rows):
        return "'loo.samples' must be a list of {arch, measured_ms, predicted_ms} with positive latencies"
    return None


def _check_coefficients(coef: Any) -> str | None:
    """Why ``coef`` is not a usable calibration ``[a, b, c]`` (None if it is)."""
    if not (isinstance(coef, (list, tuple)) and len(coef) == 3 and all(_real(v) for v in coef)):
        return f"'coefficients' must be 3 finite numbers [a, b, c], not {coef!r}"
    if min(coef) < 0:
        return f"'coefficients' {list(coef)} must not be negative (a negative latency term is not physical)"
    if max(coef) <= 0:
        return "'coefficients' are all zero (every latency would be 0 ms)"
    return None


def _check_max78000_record(record: dict[str, Any]) -> str | None:
    opts = record.get("base_options", {})
    if not isinstance(opts, dict) or not all(isinstance(k, str) and (_real(v) or isinstance(v, bool))
                                             for k, v in opts.items()):
        return f"'base_options' must be an object of finite numbers, not {opts!r}"
    try:
        MAX78000(**opts)
    except (TypeError, ValueError) as e:
        return f"'base_options' {opts} are not options of the MAX78000 ({e})"
    if (problem := _check_coefficients(record.get("coefficients"))) is not None:
        return problem
    if (problem := _check_pairs(record.get("samples"), "samples")) is not None:
        return problem
    n = len(record["samples"])
    for k in ("residuals_ms", "fitted_ms", "cnn_ms", "input_words"):
        v = record.get(k)
        if not (isinstance(v, list) and len(v) == n and all(_real(x) for x in v)):
            return f"{k!r} must be a list of {n} finite numbers (one per sample)"
    return None


def _check_record(record: Any) -> str | None:
    """Why ``record`` is not a usable device record (None if it is); a newer version raises."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return "it is not a device file of hw-nas"
    version = record.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"its format version {version!r} is not a version of the device format (1..{FORMAT_VERSION})"
    if version > FORMAT_VERSION:
        return None  # the caller says: upgrade
    if not isinstance(record.get("name"), str):
        return f"'name' must be a string, not {record.get('name')!r}"
    for k in ("created", "source", "description"):
        if record.get(k) is not None and not isinstance(record[k], str):
            return f"{k!r} must be a string, not {record[k]!r}"
    base = record.get("base", "predictor")
    if base == "predictor":
        return _check_predictor_record(record)
    if base == "max78000":
        return _check_max78000_record(record)
    return f"'base' must be 'predictor' or 'max78000', not {base!r}"


def _read_record(name: str) -> dict[str, Any] | None:
    """The validated record of ``name`` (None if there is no such file).

    Raises:
        RegistryError: an unreadable or invalid file (naming it and the fix), or a newer format.
    """
    path = _record_path(name)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        raise RegistryError(f"device file {path} cannot be read ({reason}); {_fix(name)}") from None
    problem = _check_record(record)
    if problem is not None:
        raise RegistryError(f"device file {path} is damaged: {problem}; {_fix(name)}")
    if record["format_version"] > FORMAT_VERSION:
        raise RegistryError(f"{path} was written by {record.get('written_by', 'a newer hw-nas')} (device format "
                            f"{record['format_version']}); this version reads <= {FORMAT_VERSION}: upgrade hw-nas, "
                            f"or {_fix(name)}")
    record["name"] = name  # the device is named after its file
    return record


def _owned_files(name: str, record: dict[str, Any] | None) -> set[str]:
    """Predictor files of device ``name``: its record's, and any ``NAME-<hash>.npz`` (a record that
    cannot be read, or a writer killed between its two files)."""
    own = re.compile(rf"^{re.escape(name)}-[0-9a-f]{{12}}\.npz$")
    files = {p.name for p in devices_dir().glob(f"{name}-*.npz") if own.match(p.name)}
    pf = (record or {}).get("predictor_file")
    if isinstance(pf, str) and _PREDICTOR_FILE.match(pf):
        files.add(pf)
    return files


def load_user_device(name: str) -> Device | None:
    """The registered device ``name``, or None if there is none."""
    if not _NAME.match(name):
        return None
    record = _read_record(name)
    if record is None:
        return None
    if record.get("base") == "max78000":
        return CalibratedMAX78000(record)
    return RegisteredDevice(record)


def check_name(name: str) -> str:
    """``name`` if it can name a new device (a built-in name cannot).

    Raises:
        RegistryError: with the rule it breaks.
    """
    if not _NAME.match(name or ""):
        raise RegistryError(f"invalid device name {name!r}: use 1-63 letters, digits, '_', '.' or '-', "
                            "starting with a letter or digit")
    if name in builtin_devices():
        raise RegistryError(f"{name!r} is a built-in device; choose another name")
    return name


def check_free(name: str, force: bool) -> None:
    """Refuse an existing device unless ``force``."""
    check_name(name)
    path = _record_path(name)
    if path.exists() and not force:
        raise RegistryError(f"device {name!r} already exists ({path}); pass --force to replace it")


def _package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("hw-nas")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_predictor(d: Path, name: str, predictor: Any) -> tuple[Path, bool]:
    """Save ``predictor`` as ``NAME-<sha256:12>.npz``; returns (path, whether this call created it)."""
    fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{name}.", suffix=".npz")
    os.close(fd)
    try:
        predictor.save(tmp)
        digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()[:12]
        final = d / f"{name}-{digest}.npz"
        existed = final.exists()  # the same content, kept by the device being replaced (we hold the lock)
        os.replace(tmp, final)
        return final, not existed
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _store(name: str, record: dict[str, Any], predictor: Any | None, force: bool) -> Path:
    """Write a device under the registry lock (predictor first, then the JSON atomically),
    replacing it only with ``force``; a failed write removes only the files it created."""
    check_name(name)
    d = devices_dir()
    path = _record_path(name)
    with _registry_lock():
        if path.exists() and not force:  # checked under the lock: exactly one of two racing writers wins
            raise RegistryError(f"device {name!r} already exists ({path}); pass --force to replace it")
        try:
            old = _read_record(name) if force else None
        except RegistryError:  # a damaged entry: --force replaces it
            old = None
        old_files = _owned_files(name, old) if force else set()
        created: Path | None = None
        try:
            if predictor is not None:
                final, new = _write_predictor(d, name, predictor)
                created = final if new else None
                record["predictor_file"] = final.name
            record.update({"format": FORMAT, "format_version": FORMAT_VERSION, "name": name,
                           "written_by": f"hw-nas {_package_version()}"})
            _atomic_write(path, (json.dumps(record, indent=2) + "\n").encode())
        except BaseException:
            if created is not None:
                created.unlink(missing_ok=True)
            raise
        for f in old_files - {record.get("predictor_file")}:
            (d / f).unlink(missing_ok=True)
    return path


def remove_user_device(name: str) -> None:
    """Delete a registered device (its JSON first, then its predictor file), even a damaged one.

    Raises:
        RegistryError: if there is no such registered device.
    """
    if not _NAME.match(name or "") or not _record_path(name).is_file():
        raise RegistryError(f"no registered device {name!r} in {devices_dir()}")
    with _registry_lock():
        path = _record_path(name)
        if not path.is_file():  # removed meanwhile
            raise RegistryError(f"no registered device {name!r} in {devices_dir()}")
        try:
            record = _read_record(name)
        except RegistryError:  # damaged: remove it all the same, with the predictor files named after it
            record = None
        files = _owned_files(name, record)
        path.unlink()
        for f in files:
            (devices_dir() / f).unlink(missing_ok=True)


# ---------------------------------------------------------------------------- devices
class RegisteredDevice(SpaceDevice):
    """A user's device: the space's predictor adapted to the user's samples.

    Args:
        record: the device's JSON record (see the module docstring).
    """

    kind = "registered"

    def __init__(self, record: dict[str, Any]) -> None:
        space = record["space"]
        super().__init__(record["name"], record.get("description") or
                         f"registered {record.get('created', '')[:10]} from {record.get('source', 'samples')}",
                         [space])
        self.record = record
        self._predictor: Any = None

    @property
    def predictor(self) -> Any:
        """The adapted predictor (loaded on first use)."""
        if self._predictor is None:
            import predictors

            name = self.record["name"]
            path = devices_dir() / self.record["predictor_file"]
            if not path.is_file():
                raise RegistryError(f"device {name!r}: its predictor file {path} is missing; register the device "
                                    f"again with --force, or remove it with 'nas device remove {name}'")
            try:
                pred = predictors.load_file(path)
            except predictors.ArtefactError as e:
                raise RegistryError(f"device {name!r}: its predictor file cannot be loaded ({e}); register the "
                                    f"device again with --force, or remove it with 'nas device remove {name}'") from None
            if pred.space != self.record["space"]:
                raise RegistryError(f"device {name!r}: its predictor file {path} is for {pred.space}, not "
                                    f"{self.record['space']}; register the device again with --force")
            self._predictor = pred
        return self._predictor

    @property
    def std_scale(self) -> float:
        """Factor (>= 1) applied to the predictor's std, from the leave-one-out errors at registration."""
        return float((self.record.get("loo") or {}).get("std_scale", 1.0))

    def estimate(self, space: str, archs: Sequence[Any]) -> Estimate:
        """Predicted latency and std of every architecture.

        The std is the adapted predictor's, times :attr:`std_scale` so that it matches the
        leave-one-out errors of the device's own samples when those are larger.
        """
        keys = self.canonical(space, archs)
        y, s = self.predictor.predict(keys, return_std=True)
        return Estimate(space, keys, np.asarray(y, float), self.std_scale * np.asarray(s, float),
                        ["predicted"] * len(keys))

    def info(self) -> dict[str, Any]:
        """Base info plus creation time, source and leave-one-out summary."""
        d = super().info()
        loo = self.record.get("loo") or {}
        d.update({"created": self.record.get("created"), "source": self.record.get("source"),
                  "samples": len(self.record.get("samples", [])),
                  "loo": {k: v for k, v in loo.items() if k != "samples"}})
        return d


class CalibratedMAX78000(MAX78000):
    """A MAX78000 board whose latency model is fitted to the user's board timings.

    Model (least squares, non-negative coefficients)::

        time_ms = a * cnn_ms + b * input_words + c

    with ``cnn_ms`` the vendor cycle model at the configured CNN clock (``MAX78000.latency_ms``)
    and ``input_words`` the 32-bit words the CPU loads into data memory.
    """

    kind = "registered"

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(**record.get("base_options", {}))
        self.name = record["name"]  # type: ignore[misc]
        self.description = (f"MAX78000 board calibrated {record.get('created', '')[:10]} on "  # type: ignore[misc]
                            f"{len(record.get('samples', []))} timings")
        self.record = record
        problem = _check_coefficients(record.get("coefficients"))
        if problem is not None:
            raise RegistryError(f"device {self.name!r}: {problem}; {_fix(self.name)}")
        self.coef = tuple(float(v) for v in record["coefficients"])

    def latency_ms(self, network: Network) -> float:
        """Calibrated board time in ms (see the class docstring)."""
        a, b, c = self.coef
        return a * super().latency_ms(network) + b * _input_words(network) + c

    def report(self, network: Network) -> Max78000Report:
        """The MAX78000 report with ``latency_ms`` from the calibrated model."""
        from dataclasses import replace

        rep = super().report(network)
        return replace(rep, latency_ms=self.latency_ms(network),
                       assumptions=[*rep.assumptions, self.model_sentence()])

    def model_sentence(self) -> str:
        """The fitted model as one sentence."""
        a, b, c = self.coef
        return (f"latency calibrated on board timings: {a:.4g} x CNN cycle-model ms + "
                f"{b * 1e3:.4g} us per input word + {c:.4g} ms")

    def info(self) -> dict[str, Any]:
        """Base info plus the coefficients and residuals."""
        d = super().info()
        d.update({"created": self.record.get("created"), "coefficients": list(self.coef),
                  "residuals_ms": self.record.get("residuals_ms")})
        return d


def _input_words(network: Network) -> int:
    c, h, w = network.input
    return h * w * -(-c // 4)


# ---------------------------------------------------------------------------- samples
@dataclass(frozen=True)
class Samples:
    """Validated samples: canonical architectures, latencies (ms) and their CSV line numbers."""

    space: str
    archs: list[str]
    latency_ms: np.ndarray
    lines: list[int]


def _read_text(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    if not p.is_file():
        raise SamplesError(f"{path}: no such file")
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SamplesError(f"{path}: not a UTF-8 text file") from None


def _latency(text: str, where: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise SamplesError(f"{where}: latency {text!r} is not a number (milliseconds)") from None
    if not math.isfinite(v) or v <= 0:
        raise SamplesError(f"{where}: latency {text!r} must be a positive finite number of milliseconds")
    return v


def read_samples(path: str | os.PathLike[str], space: str) -> Samples:
    """Read and validate a CSV ``arch,latency_ms`` (header optional; extra columns ignored).

    Raises:
        SamplesError: the first problem, as ``FILE line N: reason``.
    """
    text = _read_text(path)
    rows = list(csv.reader(io.StringIO(text)))
    archs: list[Any] = []
    ms: list[float] = []
    lines: list[int] = []
    for n, row in enumerate(rows, start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if n == 1 and row[0].strip().lower() == "arch":
            continue
        where = f"{path} line {n}"
        if len(row) < 2:
            raise SamplesError(f"{where}: expected 'arch,latency_ms', got {','.join(row)!r}")
        archs.append((row[0].strip(), where))
        ms.append(_latency(row[1].strip(), where))
        lines.append(n)
    return check_samples(space, [a for a, _ in archs], ms, where=[w for _, w in archs], lines=lines,
                         path=str(path))


def check_samples(space: str, archs: Sequence[Any], latency_ms: Sequence[float], *,
                  where: Sequence[str] | None = None, lines: Sequence[int] | None = None,
                  path: str = "samples") -> Samples:
    """Validate samples: parseable architectures, positive finite latencies, no duplicates, the
    space's 10 reference architectures present.

    Raises:
        SamplesError: naming the sample (line) and the reason.
    """
    import predictors

    sp = get_space(space)
    where = list(where) if where is not None else [f"{path} sample {i + 1}" for i in range(len(archs))]
    labels = [f"line {n}" for n in lines] if lines is not None else [f"sample {i + 1}" for i in range(len(archs))]
    keys: list[str] = []
    first: dict[str, str] = {}
    y = np.empty(len(archs))
    for i, (a, w) in enumerate(zip(archs, where)):
        try:
            k = sp.format(a)
        except ArchitectureError as e:
            raise SamplesError(f"{w}: not a {space} architecture: {e}") from None
        if k in first:
            raise SamplesError(f"{w}: duplicate architecture {k} (first on {first[k]})")
        first[k] = labels[i]
        try:
            v = float(latency_ms[i])
        except (TypeError, ValueError):
            raise SamplesError(f"{w}: latency {latency_ms[i]!r} is not a number (milliseconds)") from None
        if not math.isfinite(v) or v <= 0:
            raise SamplesError(f"{w}: latency {latency_ms[i]!r} must be a positive finite number of milliseconds")
        keys.append(k)
        y[i] = v
    if not keys:
        raise SamplesError(f"{path}: no samples; expected lines 'arch,latency_ms' (the output of the kit's measure.py)")
    refs = [sp.format(a) for a in predictors.load(space).ref_archs_]
    missing = [r for r in refs if r not in first]
    if missing:
        raise SamplesError(
            f"{path}: {len(missing)} of the {len(refs)} reference architectures of {space} are missing "
            f"(first: {missing[0]}); measure all models of 'nas device kit --space {space}'"
        )
    return Samples(space, keys, y, list(lines) if lines is not None else list(range(1, len(keys) + 1)))


# ---------------------------------------------------------------------------- registering
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def register_space_device(name: str, samples: Samples, *, source: str, force: bool = False,
                          extra: dict[str, Any] | None = None) -> RegisteredDevice:
    """Adapt the space's predictor to ``samples``, compute the leave-one-out error, store the device.

    Args:
        name: device name (new, or an existing registered device with ``force``).
        samples: validated samples (:func:`read_samples` / :func:`check_samples`).
        source: where the samples come from (a file path, "onnxruntime on <host>").
        force: replace an existing device of that name.
        extra: more JSON fields to store (e.g. the measurement's spread).

    Raises:
        RegistryError: a bad or taken name.
    """
    import predictors

    from ._loo import leave_one_out

    check_free(name, force)
    base = predictors.load(samples.space)
    adapted = base.adapt(samples.archs, samples.latency_ms)
    loo = leave_one_out(base, samples.space, samples.archs, samples.latency_ms)
    record: dict[str, Any] = {
        "kind": "registered",
        "base": "predictor",
        "space": samples.space,
        "created": _now(),
        "source": source,
        "samples": [[a, float(v)] for a, v in zip(samples.archs, samples.latency_ms)],
        "loo": loo.to_dict(),
        **(extra or {}),
    }
    _store(name, record, adapted, force)
    dev = RegisteredDevice({**record, "name": name})
    dev._predictor = adapted
    return dev


def read_max78000_samples(path: str | os.PathLike[str]) -> tuple[list[Network], np.ndarray, list[str]]:
    """Read ``network_yaml,measured_ms`` rows (paths relative to the CSV's folder allowed).

    Raises:
        SamplesError: the first problem, as ``FILE line N: reason``.
    """
    from search_spaces import NetworkFormatError

    text = _read_text(path)
    folder = Path(path).resolve().parent
    nets: list[Network] = []
    ms: list[float] = []
    names: list[str] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if n == 1 and row[0].strip().lower() in ("network", "net", "yaml", "path"):
            continue
        where = f"{path} line {n}"
        if len(row) < 2:
            raise SamplesError(f"{where}: expected 'network_yaml,measured_ms', got {','.join(row)!r}")
        ref = row[0].strip()
        p = Path(ref) if Path(ref).is_absolute() else folder / ref
        if not p.is_file():
            raise SamplesError(f"{where}: network file {ref!r} not found")
        key = str(p.resolve())
        if key in seen:
            raise SamplesError(f"{where}: duplicate network {ref} (first on line {seen[key]})")
        seen[key] = n
        try:
            nets.append(Network.load(p))
        except NetworkFormatError as e:
            raise SamplesError(f"{where}: {e}") from None
        ms.append(_latency(row[1].strip(), where))
        names.append(ref)
    if len(nets) < 3:
        raise SamplesError(f"{path}: {len(nets)} timing(s); the 3-coefficient model needs at least 3 "
                           "networks (more, and of different sizes, fit better)")
    return nets, np.asarray(ms), names


def register_max78000_device(name: str, samples_path: str | os.PathLike[str], *, force: bool = False,
                             base_options: dict[str, Any] | None = None) -> CalibratedMAX78000:
    """Fit ``time = a * cnn_ms + b * input_words + c`` (non-negative) to board timings and store it.

    Raises:
        SamplesError: a bad samples file.
        RegistryError: a bad or taken name.
    """
    from scipy.optimize import nnls

    check_free(name, force)
    nets, y, names = read_max78000_samples(samples_path)
    base = MAX78000(**(base_options or {}))
    cnn = np.array([base.latency_ms(n) for n in nets])
    words = np.array([_input_words(n) for n in nets], dtype=float)
    x = np.stack([cnn, words, np.ones_like(cnn)], 1)
    scale = np.maximum(np.abs(x).max(0), 1e-12)  # conditioning; coefficients rescaled below
    coef_s, _ = nnls(x / scale, y)
    coef = coef_s / scale
    problem = _check_coefficients([float(v) for v in coef])
    if problem is not None:
        raise RegistryError(f"{samples_path}: the fit gave unusable calibration {problem}; check the timings "
                            "(more networks, of different sizes)")
    fit = x @ coef
    record: dict[str, Any] = {
        "kind": "registered",
        "base": "max78000",
        "base_options": base_options or {},
        "created": _now(),
        "source": str(samples_path),
        "model": "time_ms = a * cnn_ms + b * input_words + c, least squares with a, b, c >= 0",
        "coefficients": [float(v) for v in coef],
        "samples": [[nm, float(v)] for nm, v in zip(names, y)],
        "residuals_ms": [float(v) for v in (y - fit)],
        "fitted_ms": [float(v) for v in fit],
        "cnn_ms": [float(v) for v in cnn],
        "input_words": [int(v) for v in words],
    }
    _store(name, record, None, force)
    return CalibratedMAX78000({**record, "name": name})
