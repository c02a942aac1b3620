"""The run record: the settings of a search, saved in its study (``user_attrs["settings"]``) and
in ``pareto.json`` (``settings``), read back by ``nas qat``, the export and a resumed search.

It is a frozen dataclass with :meth:`RunRecord.to_dict` / :meth:`RunRecord.from_dict` and a
format version (:data:`RECORD_VERSION`, the key ``format``). Runs written before the record had
a version (no ``format``) are read through one migration, :func:`migrate_unversioned`; a record
of a newer version than this nas reads, or one whose entries have the wrong types, raises
:class:`RunRecordError` with one line naming the entry (callers add the file and the fix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from search_spaces import InputError

__all__ = ["RECORD_VERSION", "RunRecord", "DataRecord", "SupernetRecord", "RunRecordError", "migrate_unversioned"]

RECORD_VERSION = 2
"""Format of the run record. 1: runs written before the record had a version (no ``format``
key; read through :func:`migrate_unversioned`); 2: the same entries with ``format``."""


class RunRecordError(InputError):
    """A run record that cannot be read (the message names the entry, or the version)."""


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v: Any, least: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


@dataclass(frozen=True)
class DataRecord:
    """The data set a search ran on (``Dataset.summary()``): enough to load it again and check it
    is the same (``fingerprint``)."""

    name: str | None
    source: str | None
    input_shape: tuple[int, int, int]
    num_classes: int
    licence: str | None = None
    train: int | None = None
    val: int | None = None
    test: int | None = None
    conv1d: bool = False
    fingerprint: str | None = None
    path: str | None = None
    image_size: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Entries this version does not know (kept, written back unchanged)."""

    _ORDER = ("name", "source", "licence", "input_shape", "num_classes", "train", "val", "test", "conv1d",
              "fingerprint", "path", "image_size")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k in self._ORDER:
            v = getattr(self, k)
            d[k] = list(v) if isinstance(v, tuple) else v
        return {**d, **self.extra}

    @classmethod
    def from_dict(cls, data: Any) -> DataRecord:
        if not isinstance(data, dict):
            raise RunRecordError(f"settings 'data' {data!r} is not an object")
        shape = data.get("input_shape")
        if not (isinstance(shape, list) and len(shape) == 3 and all(_is_count(v, 1) for v in shape)):
            raise RunRecordError(f"settings 'data.input_shape' {shape!r} is not [channels, height, width]")
        if not _is_count(data.get("num_classes"), 2):
            raise RunRecordError(f"settings 'data.num_classes' {data.get('num_classes')!r} is not a number of classes "
                                 "(>= 2)")
        for k in ("name", "source", "path", "fingerprint", "licence"):
            if data.get(k) is not None and not isinstance(data[k], str):
                raise RunRecordError(f"settings 'data.{k}' {data[k]!r} is not text")
        size = data.get("image_size")
        if size is not None and not (isinstance(size, list) and len(size) == 2 and all(_is_count(v, 1) for v in size)):
            raise RunRecordError(f"settings 'data.image_size' {size!r} is not [height, width]")
        if "conv1d" in data and not isinstance(data["conv1d"], bool):
            raise RunRecordError(f"settings 'data.conv1d' {data['conv1d']!r} is not true or false")
        for k in ("train", "val", "test"):
            if data.get(k) is not None and not _is_count(data[k]):
                raise RunRecordError(f"settings 'data.{k}' {data[k]!r} is not a count")
        return cls(name=data.get("name"), source=data.get("source"), licence=data.get("licence"),
                   input_shape=(shape[0], shape[1], shape[2]), num_classes=data["num_classes"],
                   train=data.get("train"), val=data.get("val"), test=data.get("test"),
                   conv1d=bool(data.get("conv1d", False)), fingerprint=data.get("fingerprint"),
                   path=data.get("path"), image_size=None if size is None else (size[0], size[1]),
                   extra={k: v for k, v in data.items() if k not in cls._ORDER})


@dataclass(frozen=True)
class SupernetRecord:
    """The supernet a search's estimate used: its cache folder and, for the ai8x supernet, the
    widths it covers and why; when a time budget sized them, what was measured (``sizing``:
    :meth:`nas.supernet.Sizing.to_dict`, recorded once and reused on resume)."""

    cache: str
    searched_widths: tuple[int, ...] | None = None
    width_cap: str | None = None
    sizing: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"cache": self.cache}
        if self.searched_widths is not None:
            d["searched_widths"] = list(self.searched_widths)
            d["width_cap"] = self.width_cap
        if self.sizing is not None:
            d["sizing"] = dict(self.sizing)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> SupernetRecord:
        if not isinstance(d, dict) or not isinstance(d.get("cache"), str):
            raise RunRecordError(f"settings 'supernet' {d!r} does not name its cache folder")
        widths = d.get("searched_widths")
        if widths is not None and not (isinstance(widths, list) and all(_is_count(w, 1) for w in widths)):
            raise RunRecordError(f"settings 'supernet.searched_widths' {widths!r} is not a list of widths")
        sizing = d.get("sizing")
        if sizing is not None and not (isinstance(sizing, dict) and _is_count(sizing.get("width"), 1)):
            raise RunRecordError(f"settings 'supernet.sizing' {sizing!r} does not name the width it chose")
        return cls(cache=d["cache"], searched_widths=None if widths is None else tuple(widths),
                   width_cap=d.get("width_cap"), sizing=sizing)


@dataclass(frozen=True)
class RunRecord:
    """The settings of one search (see the module docstring).

    Attributes:
        device: the device searched for.
        space: the search space (``ai8x``, ``fbnet``).
        data: the data set.
        estimator: the accuracy estimate's settings (``Estimator.to_dict()``: ``estimator`` names it).
        metric: the estimate's name as reported.
        data_seed: the seed of the data split (and of the search).
        budget_bytes: the weight (or int8 size) limit in bytes; None: none.
        latency_ms: the latency limit; None: none.
        space_options: keyword options of the space.
        supernet: the supernet the estimate used (None: another estimate).
        bits_auto: why the searched weight bits were chosen (MAX78000, bits not given).
        ram_bytes, latency_margin, device_kind: latency-predicting devices (phones, host-cpu,
            registered): the RAM limit, k of the latency bound, the device's kind. ``device_kind``
            is None on accelerators, and then none of the three is written.
        torch_device: the torch device the estimates ran on (``cpu``, ``cuda:0 (NVIDIA H100)``) in
            the call that wrote the record; None: not recorded (runs from before it was). It is
            not a setting: a run resumes on another device (results differ by float noise).
    """

    device: str
    space: str
    data: DataRecord
    estimator: dict[str, Any]
    metric: str | None
    data_seed: int
    budget_bytes: int | None = None
    latency_ms: float | None = None
    space_options: dict[str, Any] = field(default_factory=dict)
    supernet: SupernetRecord | None = None
    bits_auto: str | None = None
    ram_bytes: int | None = None
    latency_margin: float | None = None
    device_kind: str | None = None
    torch_device: str | None = None

    @property
    def estimator_key(self) -> str:
        """The estimate's key (``supernet``, ``naswot``, ``short_qat``)."""
        return str(self.estimator.get("estimator", ""))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the entries of version 1 in their order, then ``format``)."""
        d: dict[str, Any] = {
            "device": self.device,
            "budget_bytes": self.budget_bytes,
            "latency_ms": self.latency_ms,
            "space": self.space,
            "space_options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.space_options.items()},
            "data": self.data.to_dict(),
            "estimator": dict(self.estimator),
            "metric": self.metric,
            "data_seed": self.data_seed,
        }
        if self.supernet is not None:
            d["supernet"] = self.supernet.to_dict()
        if self.bits_auto is not None:
            d["bits_auto"] = self.bits_auto
        if self.device_kind is not None:
            d["ram_bytes"] = self.ram_bytes
            d["latency_margin"] = self.latency_margin
            d["device_kind"] = self.device_kind
        if self.torch_device is not None:
            d["torch_device"] = self.torch_device
        d["format"] = RECORD_VERSION
        return d

    @classmethod
    def from_dict(cls, d: Any) -> RunRecord:
        """Read a run record (any version this nas knows).

        Raises:
            RunRecordError: a newer version, or an entry of the wrong type (the message names it).
        """
        if not isinstance(d, dict):
            raise RunRecordError(f"settings {d!r} are not an object")
        version = d.get("format")
        if version is None:
            d = migrate_unversioned(d)
        elif not _is_count(version, 1):
            raise RunRecordError(f"settings 'format' {version!r} is not a run record version")
        elif version > RECORD_VERSION:
            raise RunRecordError(f"the run record is version {version}; this nas reads versions <= {RECORD_VERSION}: "
                                 "upgrade hw-nas to read it")
        for key in ("device", "space", "data"):
            if key not in d:
                raise RunRecordError(f"settings lack {key!r}")
        if not isinstance(d["device"], str):
            raise RunRecordError(f"settings 'device' {d['device']!r} is not a device name")
        if not isinstance(d["space"], str):
            raise RunRecordError(f"settings 'space' {d['space']!r} is not a space name")
        data = DataRecord.from_dict(d["data"])
        opts = d.get("space_options")
        if opts is not None and not isinstance(opts, dict):
            raise RunRecordError(f"settings 'space_options' {opts!r} is not an object")
        seed = d.get("data_seed", 0)
        if not _is_count(seed):
            raise RunRecordError(f"settings 'data_seed' {seed!r} is not a seed (an integer >= 0)")
        est = d.get("estimator")
        if est is not None and not isinstance(est, dict):
            raise RunRecordError(f"settings 'estimator' {est!r} is not an object")
        for k in ("budget_bytes", "ram_bytes", "latency_ms", "latency_margin"):
            if d.get(k) is not None and not (_is_real(d[k]) and d[k] >= 0):
                raise RunRecordError(f"settings {k!r} {d[k]!r} is not a non-negative number")
        for k in ("metric", "bits_auto", "device_kind", "torch_device"):
            if d.get(k) is not None and not isinstance(d[k], str):
                raise RunRecordError(f"settings {k!r} {d[k]!r} is not text")
        return cls(
            device=d["device"], space=d["space"], data=data, estimator=dict(est or {}), metric=d.get("metric"),
            data_seed=seed, budget_bytes=d.get("budget_bytes"), latency_ms=d.get("latency_ms"),
            space_options=dict(opts or {}),
            supernet=None if d.get("supernet") is None else SupernetRecord.from_dict(d["supernet"]),
            bits_auto=d.get("bits_auto"), ram_bytes=d.get("ram_bytes"), latency_margin=d.get("latency_margin"),
            device_kind=d.get("device_kind"), torch_device=d.get("torch_device"),
        )

    def replace(self, **changes: Any) -> RunRecord:
        """A copy with ``changes``."""
        from dataclasses import replace

        return replace(self, **changes)




def migrate_unversioned(d: dict[str, Any]) -> dict[str, Any]:
    """A run record written before the record had a version (``format`` 1, no ``format`` key) in
    the form of version 2: runs from before phones were searched name no ``space`` (they
    searched ``ai8x``) and no ``data_seed`` (0); everything else reads unchanged."""
    out = dict(d)
    out.setdefault("space", "ai8x")
    out.setdefault("data_seed", 0)
    out["format"] = RECORD_VERSION
    return out
