"""Read the bank of real devices measured on this machine (``benchmarks/data/host_bank/``).

The bank (made by ``benchmarks/measure_host_bank.py``; its README says how) holds, per search
space, one gzip CSV table with one row per architecture and one column per bank device
(latency in ms, the median over interleaved rounds), and a repeat table: a second, independent
timing of a subset, whose agreement with the first is the repeat-measurement ceiling::

    from host_bank import load_host_bank          # with benchmarks/ on sys.path
    bank = load_host_bank("fbnet")
    y = bank.device("ort_fp32_1t")                 # (n_archs,) ms, row order of bank.archs
    refs = bank.ref_archs                          # the predictor's 10 reference architectures
    bank.ceiling("ort_fp32_1t")                    # Spearman of the two timings of the subset

Columns: ``arch`` (the predictor's architecture string: a NAS-Bench-201 cell string or an FBNet
22-digit string, fed to ``LatencyPredictor`` as is), ``help_index`` (row in the vendored HELP
table, -1 where none), ``ref`` (position 0-9 among the reference architectures, -1 otherwise),
then one column per bank device. Damage gives :class:`HostBankError` with a one-line message.
Run as a script to print a summary: ``python benchmarks/host_bank.py [FOLDER]``.
"""

from __future__ import annotations

import csv
import gzip
import math
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["HostBank", "HostBankError", "load_host_bank", "spearman", "DEFAULT_DIR", "KEY_COLUMNS",
           "table_path", "repeat_path"]

DEFAULT_DIR = Path(__file__).resolve().parent / "data" / "host_bank"
KEY_COLUMNS: tuple[str, ...] = ("arch", "help_index", "ref")
N_REFS = 10


class HostBankError(ValueError):
    """A missing or damaged bank table (the message says which file and what is wrong)."""


def table_path(folder: str | Path, space: str) -> Path:
    """The main table of ``space`` in ``folder``."""
    return Path(folder) / f"{space}.csv.gz"


def repeat_path(folder: str | Path, space: str) -> Path:
    """The repeat table of ``space`` in ``folder``."""
    return Path(folder) / f"{space}_repeat.csv.gz"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    def ranks(x: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="mergesort")
        r = np.empty(len(x))
        r[order] = np.arange(len(x), dtype=np.float64)
        _, inv, cnt = np.unique(x, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=r)
        return sums[inv] / cnt[inv]

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


@dataclass(frozen=True)
class HostBank:
    """The bank of one search space.

    Attributes:
        space: search-space name.
        archs: architecture strings (the predictor's encoding), row order of the table.
        help_index: (n_archs,) row in the vendored HELP table, -1 where none.
        ref: (n_archs,) position among the 10 reference architectures, -1 otherwise.
        devices: bank device names.
        latency_ms: (n_devices, n_archs) milliseconds (as ``predictors.LatencyTable``).
        repeat_rows: (n_repeat,) rows of ``archs`` timed a second time.
        repeat_ms: (n_devices, n_repeat) the second timing.
    """

    space: str
    archs: list[str]
    help_index: np.ndarray
    ref: np.ndarray
    devices: list[str]
    latency_ms: np.ndarray
    repeat_rows: np.ndarray
    repeat_ms: np.ndarray

    def device(self, name: str) -> np.ndarray:
        """Latencies (ms) of all architectures on bank device ``name``."""
        if name not in self.devices:
            raise HostBankError(f"no bank device {name!r} for {self.space}; available: {', '.join(self.devices)}")
        return self.latency_ms[self.devices.index(name)]

    @property
    def ref_rows(self) -> np.ndarray:
        """Rows of the 10 reference architectures, in reference order."""
        rows = np.nonzero(self.ref >= 0)[0]
        return rows[np.argsort(self.ref[rows])]

    @property
    def ref_archs(self) -> list[str]:
        """The 10 reference architectures, in reference order."""
        return [self.archs[i] for i in self.ref_rows]

    def ceiling(self, name: str) -> float:
        """Spearman between the two timings of the repeat subset on device ``name``."""
        self.device(name)  # unknown name: HostBankError
        k = self.devices.index(name)
        return spearman(self.latency_ms[k, self.repeat_rows], self.repeat_ms[k])


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise HostBankError(f"{path}: no such bank table; make it with benchmarks/measure_host_bank.py "
                            "or pass the folder that holds it")
    try:
        with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, EOFError, UnicodeDecodeError, zlib.error, csv.Error) as e:
        raise HostBankError(f"{path}: not a readable gzip CSV ({type(e).__name__}: {e}); "
                            "re-make the bank or restore the file") from None
    if not rows:
        raise HostBankError(f"{path}: empty table; re-make the bank")
    return rows[0], rows[1:]


def _parse(path: Path, header: list[str], rows: list[list[str]]
           ) -> tuple[list[str], np.ndarray, np.ndarray, list[str], np.ndarray]:
    if tuple(header[:3]) != KEY_COLUMNS or len(header) < 4:
        raise HostBankError(f"{path}: header must start with {','.join(KEY_COLUMNS)} and name at least one "
                            f"device, got {','.join(header)!r}")
    devices = header[3:]
    if len(set(devices)) != len(devices):
        raise HostBankError(f"{path}: a device column appears twice in the header")
    archs, hidx, ref = [], [], []
    lat = np.empty((len(devices), len(rows)))
    for n, r in enumerate(rows, start=2):
        if len(r) != len(header):
            raise HostBankError(f"{path}: line {n} has {len(r)} fields, the header {len(header)}")
        try:
            hidx.append(int(r[1]))
            ref.append(int(r[2]))
            vals = [float(v) for v in r[3:]]
        except ValueError:
            raise HostBankError(f"{path}: line {n} has a value that is not a number") from None
        bad = [d for d, v in zip(devices, vals) if not (math.isfinite(v) and v > 0)]
        if bad:
            raise HostBankError(f"{path}: line {n}: latency of {bad[0]} must be a finite number of ms > 0")
        archs.append(r[0])
        lat[:, n - 2] = vals
    if len(set(archs)) != len(archs):
        raise HostBankError(f"{path}: an architecture appears twice")
    return archs, np.asarray(hidx, np.int64), np.asarray(ref, np.int64), devices, lat


def load_host_bank(space: str, folder: str | Path = DEFAULT_DIR, *, check_archs: bool = True) -> HostBank:
    """Read the bank tables of ``space`` from ``folder`` (default ``benchmarks/data/host_bank``).

    Args:
        space: "nasbench201" or "fbnet".
        folder: the folder holding ``<space>.csv.gz`` and ``<space>_repeat.csv.gz``.
        check_archs: parse every architecture with the space (``search_spaces``).

    Raises:
        HostBankError: a missing or damaged table (one line naming the file and the problem).
    """
    main_p, rep_p = table_path(folder, space), repeat_path(folder, space)
    archs, hidx, ref, devices, lat = _parse(main_p, *_read(main_p))
    if not archs:
        raise HostBankError(f"{main_p}: no architectures; re-make the bank")
    refs = sorted(int(x) for x in ref if x >= 0)
    if refs != list(range(N_REFS)):
        raise HostBankError(f"{main_p}: the ref column must mark the {N_REFS} reference architectures 0-{N_REFS - 1} "
                            f"once each, got {refs}")
    if check_archs:
        from search_spaces import InputError, get_space

        sp = get_space(space)
        for n, a in enumerate(archs, start=2):
            try:
                if sp.format(a) != a:
                    raise HostBankError(f"{main_p}: line {n}: architecture {a!r} is not in canonical form")
            except InputError as e:
                raise HostBankError(f"{main_p}: line {n}: {e}") from None
    r_archs, _, _, r_devices, r_lat = _parse(rep_p, *_read(rep_p))
    if r_devices != devices:
        raise HostBankError(f"{rep_p}: device columns {r_devices} differ from {main_p.name}'s {devices}")
    where = {a: i for i, a in enumerate(archs)}
    missing = [a for a in r_archs if a not in where]
    if missing:
        raise HostBankError(f"{rep_p}: architecture {missing[0]!r} is not in {main_p.name}")
    return HostBank(space, archs, hidx, ref, devices, lat, np.asarray([where[a] for a in r_archs], np.int64), r_lat)


def main(argv: list[str] | None = None) -> int:
    """Print a summary of the bank in a folder (exit 2 with one line on damage)."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else DEFAULT_DIR
    try:
        for space in ("nasbench201", "fbnet"):
            if not table_path(folder, space).exists():
                continue
            b = load_host_bank(space, folder)
            print(f"{space}: {len(b.archs)} architectures, repeat subset {len(b.repeat_rows)}")
            for d in b.devices:
                y = b.device(d)
                print(f"  {d:18s} median {np.median(y):8.3f} ms  range {y.min():.3f}-{y.max():.3f}  "
                      f"repeat Spearman {b.ceiling(d):.4f}")
    except HostBankError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
