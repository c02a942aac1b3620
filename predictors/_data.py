"""The vendored HELP latency tables (see ``predictors/data/LICENSE.md``) and HELP's protocol."""

from __future__ import annotations

import csv
import functools
import gzip
import json
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import numpy as np

from search_spaces import get_space

from ._errors import UnknownSpaceError

__all__ = ["LatencyTable", "load_latency_table", "SPACES", "help_meta", "protocol_split", "flops_params",
           "select_references", "train_rows"]

SPACES: tuple[str, ...] = ("nasbench201", "fbnet", "ofa_mbv3")
_META_KEY = {"nasbench201": "nasbench201", "fbnet": "fbnet", "ofa_mbv3": "ofa"}
_FILES = {
    "nasbench201": "nasbench201_latency_ms.csv.gz",
    "fbnet": "fbnet_latency_ms.csv.gz",
    "ofa_mbv3": "ofa_mbv3_latency_ms.csv.gz",
}


def _check_space(space: str) -> str:
    if space not in SPACES:
        raise UnknownSpaceError(
            f"no latency data for search space {space!r}; available: {', '.join(SPACES)}"
        )
    return space


@functools.lru_cache(maxsize=1)
def help_meta() -> dict[str, Any]:
    """The parsed ``help_meta.json`` (HELP's device splits and reference architectures)."""
    text = resources.files("predictors").joinpath("data", "help_meta.json").read_text()
    return json.loads(text)


@dataclass(frozen=True)
class LatencyTable:
    """Latencies of one search space's architectures on the HELP devices.

    Attributes:
        space: search-space name.
        archs: canonical architectures, row order of the source (``index`` column).
        devices: device names (columns of ``latency_ms``' first axis).
        latency_ms: (n_devices, n_archs) milliseconds per forward pass.
        ref_index: row indices of the 10 reference architectures (hardware embedding).
        splits: ``meta_train`` / ``meta_valid`` / ``meta_test`` device lists (HELP's).
        n_train_pool: rows [0, n_train_pool) form each device's train pool.
        n_query: rows [n_train_pool, n_train_pool + n_query) are the query set.
    """

    space: str
    archs: list[Any]
    devices: list[str]
    latency_ms: np.ndarray
    ref_index: np.ndarray
    splits: dict[str, list[str]]
    n_train_pool: int
    n_query: int
    _features: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def device(self, name: str) -> np.ndarray:
        """Latencies (ms) of all architectures on device ``name``."""
        try:
            return self.latency_ms[self.devices.index(name)]
        except ValueError:
            raise UnknownSpaceError(
                f"no device {name!r} in the {self.space} table; available: {', '.join(self.devices)}"
            ) from None

    @property
    def ref_archs(self) -> list[Any]:
        """The 10 reference architectures."""
        return [self.archs[i] for i in self.ref_index]

    def features(self) -> np.ndarray:
        """Encoded features of all architectures (computed once)."""
        if "x" not in self._features:
            self._features["x"] = get_space(self.space).encode_many(self.archs)
        return self._features["x"]


@functools.lru_cache(maxsize=6)
def load_latency_table(space: str, references: str = "help") -> LatencyTable:
    """Load the vendored latency table of ``space`` ("nasbench201", "fbnet" or "ofa_mbv3").

    ``references``: the 10 reference architectures (``ref_index``): "help" (HELP's, what the
    shipped predictors use) or "max_volume" (:func:`select_references`; measured and not adopted,
    see docs/predictor.md).
    """
    _check_space(space)
    if references not in ("help", "max_volume"):
        raise ValueError(f"references must be 'help' or 'max_volume', got {references!r}")
    meta = help_meta()[_META_KEY[space]]
    splits = help_meta()["help_splits"][_META_KEY[space]]
    path = resources.files("predictors").joinpath("data", _FILES[space])
    with path.open("rb") as raw, gzip.open(raw, "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    if space == "nasbench201":
        first = 3
        archs: list[Any] = [r[1] for r in rows]
    elif space == "fbnet":
        first = 2
        archs = [r[1] for r in rows]
    else:
        first = 5
        archs = [
            {"ks": [int(c) for c in r[1]], "e": [int(c) for c in r[2]], "d": [int(c) for c in r[3]],
             "r": int(r[4])}
            for r in rows
        ]
    index = np.array([int(r[0]) for r in rows])
    order = np.argsort(index)
    devices = header[first:]
    lat = np.array([[float(v) for v in r[first:]] for r in rows], dtype=np.float64).T[:, order]
    archs = [archs[i] for i in order]
    table = LatencyTable(
        space=space,
        archs=archs,
        devices=list(devices),
        latency_ms=lat,
        ref_index=np.asarray(meta["hw_embedding_index"], dtype=np.int64),
        splits={k: list(splits[k]) for k in ("meta_train", "meta_valid", "meta_test")},
        n_train_pool=int(splits["num_meta_train_sample"]),
        n_query=int(splits["num_query"]),
    )
    return table if references == "help" else replace(table, ref_index=select_references(table))


def select_references(table: LatencyTable, k: int = 10) -> np.ndarray:
    """``k`` reference rows by a greedy maximum-volume (D-optimal) design on the meta-train devices.

    Each architecture's profile is its log-latency on every meta-train device, standardised per
    device, plus a constant; each step adds the architecture whose profile is least explained by
    those already chosen (largest ``a' M^-1 a``, ``M`` = a small ridge plus the chosen profiles'
    outer products). Only rows outside HELP's query rows and only the meta-train devices are
    used, so the meta-valid and meta-test devices never influence the choice. Deterministic.
    """
    rows = train_rows(table, "all")
    lat = np.log(np.maximum(np.stack([table.device(d) for d in table.splits["meta_train"]], 1)[rows], 1e-3))
    prof = np.concatenate([(lat - lat.mean(0)) / np.maximum(lat.std(0), 1e-12), np.ones((len(rows), 1))], 1)
    m = 1e-3 * np.eye(prof.shape[1])
    free = np.ones(len(rows), dtype=bool)
    chosen: list[int] = []
    for _ in range(k):
        gain = np.einsum("ij,jk,ik->i", prof, np.linalg.inv(m), prof)
        gain[~free] = -np.inf
        i = int(np.argmax(gain))
        chosen.append(int(rows[i]))
        free[i] = False
        m += np.outer(prof[i], prof[i])
    return np.asarray(chosen, dtype=np.int64)


def train_rows(table: LatencyTable, which: str) -> np.ndarray:
    """Rows of the meta-train devices used as query architectures in meta-training.

    "pool": HELP's train pool ``[0, n_train_pool)``; "all": every row except the query rows
    ``[n_train_pool, n_train_pool + n_query)`` (NAS-Bench-201 has 15,625 rows, FBNet/OFA 5,000).
    """
    if which == "pool":
        return np.arange(table.n_train_pool)
    if which == "all":
        rows = np.arange(len(table.archs))
        return rows[(rows < table.n_train_pool) | (rows >= table.n_train_pool + table.n_query)]
    raise ValueError(f"train_rows must be 'pool' or 'all', got {which!r}")


def _band(idx: np.ndarray, y: np.ndarray) -> np.ndarray:
    lo, hi = np.quantile(y[idx], [0.1, 0.9])
    keep = (y[idx] >= lo) & (y[idx] <= hi)
    return idx[keep]


def protocol_split(table: LatencyTable, device: str) -> tuple[np.ndarray, np.ndarray]:
    """HELP's (train-pool, query) row indices for ``device``, each trimmed to its 10-90% band."""
    y = table.device(device)
    pool = np.arange(table.n_train_pool)
    query = np.arange(table.n_train_pool, table.n_train_pool + table.n_query)
    return _band(pool, y), _band(query, y)


def flops_params(space: str, x: np.ndarray) -> np.ndarray:
    """(N, 2) MACs and parameter counts (arbitrary units) from a space's raw feature matrix."""
    if space == "nasbench201":
        cols = (42, 44)  # effective MACs, effective params
    elif space == "fbnet":
        cols = (x.shape[1] - 5, x.shape[1] - 4)
    else:
        cols = (x.shape[1] - 5, x.shape[1] - 3)
    return np.stack([x[:, cols[0]], x[:, cols[1]]], 1)
