"""What every data source shares: the :class:`Dataset` record, :class:`DataError`, the vendor input
range, the stratified split and the memory probe (no loader here, so that every loader can import it)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search_spaces import InputError

__all__ = ["DataError", "Dataset", "U8_TO_VENDOR", "to_vendor_range"]


class DataError(InputError):
    """A dataset file that cannot be used: unreadable, missing arrays, bad shapes or labels."""


@dataclass
class Dataset:
    """Images in the vendor's input range with integer labels, split three ways.

    Attributes:
        name: short name (``mnist5k``, the file or folder name, or an IDX set's prefix).
        source: where the data comes from (one line).
        licence: the data's licence (one line).
        x_train, y_train, x_val, y_val, x_test, y_test: float32 ``[N, C, H, W]`` in
            [-1, 127/128] and int64 labels ``0..num_classes-1``.
        conv1d: the data are sequences ``[N, C, L, 1]`` (searched with Conv1d units).
        fingerprint: a short hash of the data, to recognise the same data when resuming.
        class_names: the class of each label.
        path: the user's ``.npz`` file, image folder, IDX folder (or ``FOLDER/PREFIX``) or CIFAR
            folder (None for the built-in set); with ``image_size`` (image folders), what
            :func:`load_dataset` needs to load it again.
    """

    name: str
    source: str
    licence: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    conv1d: bool = False
    fingerprint: str = ""
    class_names: list[str] = field(default_factory=list)
    path: str | None = None
    """The user's file or folder (None: built in), as given."""
    image_size: list[int] | None = None
    """Image folders: the ``[H, W]`` every image was resized to."""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_val.max(), self.y_test.max()) + 1)

    def describe(self) -> str:
        """One line: name, sizes, shape, classes."""
        c, h, w = self.input_shape
        return (
            f"{self.name}: {len(self.y_train)} train / {len(self.y_val)} validation / "
            f"{len(self.y_test)} test, input {c}x{h}x{w}, {self.num_classes} classes"
        )

    def summary(self) -> dict[str, Any]:
        """JSON-able description for reports."""
        return {
            "name": self.name, "source": self.source, "licence": self.licence,
            "input_shape": list(self.input_shape), "num_classes": self.num_classes,
            "train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test),
            "conv1d": self.conv1d, "fingerprint": self.fingerprint, "path": self.path,
            "image_size": self.image_size,
        }


def to_vendor_range(x01: np.ndarray) -> np.ndarray:
    """Map [0, 1] data to the MAX78000 input range [-1, 127/128] (ai8x ``normalize``)."""
    q = np.clip(np.round((x01.astype(np.float64) - 0.5) * 256.0), -128, 127)
    return (q / 128.0).astype(np.float32)


U8_TO_VENDOR = to_vendor_range(np.arange(256, dtype=np.float64) / 255.0)
"""Vendor-range value of each byte 0..255: ``U8_TO_VENDOR[x]`` equals ``to_vendor_range(x / 255)`` for
uint8 ``x``, without its float64 copies."""
U8_TO_VENDOR.setflags(write=False)


def _split(y: np.ndarray, fractions: tuple[float, float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train / val / test index arrays; ``fractions`` = (val, test)."""
    rng = np.random.default_rng(seed)
    tr, va, te = [], [], []
    for c in np.unique(y):
        idx = rng.permutation(np.nonzero(y == c)[0])
        n_va = int(round(len(idx) * fractions[0]))
        n_te = int(round(len(idx) * fractions[1]))
        if len(idx) - n_va - n_te < 1:
            n_va = n_te = 0
        va.append(idx[:n_va])
        te.append(idx[n_va : n_va + n_te])
        tr.append(idx[n_va + n_te :])
    out = []
    for parts in (tr, va, te):
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        out.append(rng.permutation(ids))
    return out[0], out[1], out[2]


def _available_memory() -> int:
    """Bytes of memory available now (Linux ``MemAvailable``, else free physical pages; 1 TiB if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 40


def _gb(n: int) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB" if n >= 1e5 else f"{n:,} bytes"
