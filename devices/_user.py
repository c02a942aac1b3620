"""User devices: the registry directory, registered devices, and registering one from samples.

Layout (``$NAS_HOME``, default ``$XDG_DATA_HOME/hw-nas`` or ``~/.local/share/hw-nas``)::

    $NAS_HOME/devices/<name>.json            the device: metadata, samples, leave-one-out error
    $NAS_HOME/devices/<name>-<sha256:12>.npz the adapted predictor (predictors' .npz format)

A device exists exactly when its JSON file does. Registration writes the predictor file first
(under a content hash, so it never replaces another device's), then the JSON through a temporary
file and ``os.replace`` (atomic), then removes the files it replaced. Read-only operations never
create the directory.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import ArchitectureError, InputError, Network, get_space

from ._base import Device
from ._max78000 import MAX78000, Max78000Report
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


def _read_record(name: str) -> dict[str, Any] | None:
    path = _record_path(name)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RegistryError(f"device file {path} cannot be read ({e}); remove it or register the device again "
                            "with --force") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise RegistryError(f"{path} is not a device file of hw-nas")
    version = record.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RegistryError(f"{path} was written by {record.get('written_by', 'a newer hw-nas')} (device format "
                            f"{version}); this version reads <= {FORMAT_VERSION}: upgrade hw-nas")
    return record


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
    from ._registry import builtin_devices

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


def _store(name: str, record: dict[str, Any], predictor: Any | None, force: bool) -> Path:
    """Write a device (predictor first, then the JSON atomically), replacing it only with ``force``."""
    check_free(name, force)
    d = devices_dir()
    d.mkdir(parents=True, exist_ok=True)
    old = _read_record(name) if force else None
    new_files: list[Path] = []
    try:
        if predictor is not None:
            fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{name}.", suffix=".npz")
            os.close(fd)
            predictor.save(tmp)
            digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()[:12]
            final = d / f"{name}-{digest}.npz"
            os.replace(tmp, final)
            new_files.append(final)
            record["predictor_file"] = final.name
        record.update({"format": FORMAT, "format_version": FORMAT_VERSION, "name": name,
                       "written_by": f"hw-nas {_package_version()}"})
        path = _record_path(name)
        if path.exists() and not force:  # appeared meanwhile
            raise RegistryError(f"device {name!r} already exists ({path}); pass --force to replace it")
        _atomic_write(path, (json.dumps(record, indent=2) + "\n").encode())
    except BaseException:
        for f in new_files:
            if f.exists() and (old is None or old.get("predictor_file") != f.name):
                f.unlink()
        raise
    if old and old.get("predictor_file") and old["predictor_file"] != record.get("predictor_file"):
        (d / old["predictor_file"]).unlink(missing_ok=True)
    return path


def remove_user_device(name: str) -> None:
    """Delete a registered device (its JSON first, then its predictor file).

    Raises:
        RegistryError: if there is no such registered device.
    """
    record = _read_record(name) if _NAME.match(name) else None
    if record is None:
        raise RegistryError(f"no registered device {name!r} in {devices_dir()}")
    _record_path(name).unlink()
    if record.get("predictor_file"):
        (devices_dir() / record["predictor_file"]).unlink(missing_ok=True)


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

            path = devices_dir() / self.record["predictor_file"]
            self._predictor = predictors.load_file(path)
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
