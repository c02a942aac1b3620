"""Recorded devices: the phones, boards and GPUs of the vendored HELP / HW-NAS-Bench latency tables.

An architecture in a device's table gets its recorded latency (std 0). Any other architecture
gets the prediction of the space's meta-learned predictor adapted to the device on the space's
10 reference architectures, whose latencies the table holds (adapted once per process).
"""

from __future__ import annotations

import csv
import functools
import gzip
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._space import Estimate, SpaceDevice

__all__ = ["RecordedDevice", "recorded_devices", "PHONES"]

_TABLE_FILES = {
    "nasbench201": "nasbench201_latency_ms.csv.gz",
    "fbnet": "fbnet_latency_ms.csv.gz",
    "ofa_mbv3": "ofa_mbv3_latency_ms.csv.gz",
}
_KEY_COLUMNS = {"index", "arch_str", "ops", "op_idx_list", "ks", "e", "d", "r"}

PHONES: tuple[str, ...] = ("pixel2", "pixel3", "samsung_a50", "samsung_s7", "essential_ph_1")

_SOURCE_HELP = "HELP latency table"
_SOURCE_HWNB = "HW-NAS-Bench via HELP"
_NAMED: dict[str, str] = {
    "pixel2": f"Google Pixel 2 phone CPU (integer ms; {_SOURCE_HELP})",
    "pixel3": f"Google Pixel 3 phone CPU, TFLite ({_SOURCE_HWNB})",
    "samsung_a50": f"Samsung Galaxy A50 phone CPU (integer ms; {_SOURCE_HELP})",
    "samsung_s7": f"Samsung Galaxy S7 phone CPU (integer ms; {_SOURCE_HELP})",
    "essential_ph_1": f"Essential PH-1 phone CPU (integer ms; {_SOURCE_HELP})",
    "raspi4": f"Raspberry Pi 4 CPU ({_SOURCE_HWNB})",
    "eyeriss": f"Eyeriss ASIC, simulated ({_SOURCE_HWNB})",
    "fpga": f"FPGA accelerator, simulated ({_SOURCE_HWNB})",
    "silver_4114": f"Intel Xeon Silver 4114 server CPU ({_SOURCE_HELP})",
    "silver_4210r": f"Intel Xeon Silver 4210R server CPU ({_SOURCE_HELP})",
    "gold_6226": f"Intel Xeon Gold 6226 server CPU ({_SOURCE_HELP})",
    "gold_6240": f"Intel Xeon Gold 6240 server CPU ({_SOURCE_HELP})",
}
_GPUS = {
    "1080ti": "NVIDIA GTX 1080 Ti", "2080ti": "NVIDIA RTX 2080 Ti", "titanx": "NVIDIA Titan X",
    "titanxp": "NVIDIA Titan Xp", "titan_xp": "NVIDIA Titan Xp", "titan_rtx": "NVIDIA Titan RTX",
    "v100": "NVIDIA V100",
}


def _description(name: str) -> str:
    if name in _NAMED:
        return _NAMED[name]
    base, _, batch = name.rpartition("_")
    if base in _GPUS and batch.isdigit():
        return f"{_GPUS[base]} GPU, batch {batch} ({_SOURCE_HELP})"
    return f"{name} ({_SOURCE_HELP})"


def _rank(name: str) -> tuple[int, int, str]:
    """Listing order: phones first (in :data:`PHONES` order), then boards, CPUs, the rest."""
    if name in PHONES:
        return (0, PHONES.index(name), name)
    order = ("raspi4", "eyeriss", "fpga", "silver_4114", "silver_4210r", "gold_6226", "gold_6240")
    if name in order:
        return (1, order.index(name), name)
    return (2, 0, name)


@functools.lru_cache(maxsize=1)
def _columns() -> dict[str, list[str]]:
    """Device columns of each space's table (read from the gzip header only)."""
    out: dict[str, list[str]] = {}
    spec = importlib.util.find_spec("predictors")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return {}
    root = Path(list(spec.submodule_search_locations)[0]) / "data"
    for space, fname in _TABLE_FILES.items():
        with gzip.open(root / fname, "rt", newline="") as f:
            header = next(csv.reader(f))
        out[space] = [c for c in header if c not in _KEY_COLUMNS]
    return out


def recorded_devices() -> list[str]:
    """Names of all recorded devices, phones first."""
    names = {d for cols in _columns().values() for d in cols}
    return sorted(names, key=_rank)


@functools.lru_cache(maxsize=3)
def _row_index(space: str) -> dict[str, int]:
    """Canonical architecture string -> row of the space's latency table."""
    import predictors
    from search_spaces import get_space

    table = predictors.load_latency_table(space)
    sp = get_space(space)
    return {sp.format(a): i for i, a in enumerate(table.archs)}


_ADAPTED: dict[tuple[str, str], Any] = {}


def adapted_predictor(device: str, space: str) -> Any:
    """The space's predictor adapted to ``device`` on the table's 10 reference rows (cached)."""
    key = (device, space)
    if key not in _ADAPTED:
        import predictors

        table = predictors.load_latency_table(space)
        y = table.device(device)
        _ADAPTED[key] = predictors.load(space).adapt(table.ref_archs, y[table.ref_index])
    return _ADAPTED[key]


class RecordedDevice(SpaceDevice):
    """A device of the vendored latency tables (see the module docstring).

    Args:
        name: the table column, e.g. ``"pixel3"``.
    """

    kind = "recorded"

    def __init__(self, name: str) -> None:
        spaces = [s for s, cols in _columns().items() if name in cols]
        if not spaces:
            raise ValueError(f"no latency table has a column {name!r}")
        super().__init__(name, _description(name), spaces)

    def limits(self) -> dict[str, str]:
        """None recorded (the tables hold latency only)."""
        return {}

    def recorded(self, space: str, archs: Sequence[Any]) -> np.ndarray:
        """Whether each architecture is in the device's table, (N,) bool."""
        keys = self.canonical(space, archs)
        index = _row_index(space)
        return np.array([k in index for k in keys], dtype=bool)

    def estimate(self, space: str, archs: Sequence[Any]) -> Estimate:
        """Recorded latency for architectures in the table, adapted prediction for the others."""
        import predictors

        keys = self.canonical(space, archs)
        index = _row_index(space)
        rows = np.array([index.get(k, -1) for k in keys], dtype=np.int64)
        y = np.zeros(len(keys))
        std = np.zeros(len(keys))
        hit = rows >= 0
        if hit.any():
            y[hit] = predictors.load_latency_table(space).device(self.name)[rows[hit]]
        miss = np.nonzero(~hit)[0]
        if miss.size:
            q = adapted_predictor(self.name, space)
            pm, ps = q.predict([keys[i] for i in miss], return_std=True)
            y[miss] = pm
            std[miss] = ps
        source = ["recorded" if h else "predicted" for h in hit]
        return Estimate(space, keys, y, std, source)


def _register_all() -> None:
    from ._registry import register_device

    for name in recorded_devices():
        factory = functools.partial(RecordedDevice, name)
        factory.kind = "recorded"  # type: ignore[attr-defined]  (listing order without instantiating)
        register_device(name)(factory)


_register_all()
