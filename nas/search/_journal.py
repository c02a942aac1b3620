"""The run's Optuna journal (``runs/<name>/study.journal``): a lock that survives kills, damage
checks and recovery.

* **Lock.** Optuna's default ``JournalFileSymlinkLock`` links ``study.journal.lock`` to the journal
  path *as given*; a relative path makes a link that dangles whenever it is looked at from the
  run directory, so its stale-lock check (``os.stat``, which follows the link) never starts and
  a lock left by a killed process is waited on forever. :class:`JournalLock` keeps Optuna's
  protocol (the lock is the existence of ``study.journal.lock``, so optuna-dashboard and other
  Optuna clients still exclude each other with it) but links to the absolute path and judges
  staleness by the link's own age (``os.lstat``): a lock is held for the milliseconds of one
  append, so one older than :data:`LOCK_GRACE_S` belongs to a dead process and is broken.
  :func:`break_stale_lock` removes a leftover lock before a search opens the journal (the
  search holds the run lock then, so no other search can be writing).
* **Damage.** :func:`scan_journal` reads the journal line by line: every line must end with a
  newline and hold one JSON journal record. Damage at the end (a line cut by a full disk or a
  power loss, garbage appended) is recovered by :func:`recover`: the intact records, byte for
  byte, go into a fresh journal and the damaged file is kept beside it as
  ``study.journal.damaged-<UTC time>``. Damage followed by intact records is not guessed at
  (a lost record would shift the trial numbers of every later one): the search stops with one
  line and leaves the file as it was.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optuna.storages.journal import BaseJournalBackend

from search_spaces import InputError

from .._thirdparty import journal_file_lock_base

__all__ = ["JournalLock", "JournalScan", "LOCK_GRACE_S", "break_stale_lock", "scan_journal", "recover",
           "RecordsBackend", "lock_path"]

LOCK_GRACE_S = 10.0
"""Age (s) after which a journal lock is taken to belong to a dead process (one append holds it
for milliseconds)."""

_OP_CODES = range(0, 16)  # optuna's JournalOperation values (0-10 today, some room for new ones)


def lock_path(journal: Path) -> Path:
    """The Optuna lock file of ``journal`` (``study.journal.lock``)."""
    return journal.with_name(journal.name + ".lock")


def _remove(path: Path) -> bool:
    """Remove the lock ``path`` the way Optuna releases it (rename, then unlink); False if gone."""
    tmp = path.with_name(f"{path.name}{uuid.uuid4()}.rename")
    try:
        os.rename(path, tmp)
    except FileNotFoundError:
        return False
    os.unlink(tmp)
    return True


class JournalLock(journal_file_lock_base()):  # type: ignore[misc]
    """Optuna's symlink lock on ``study.journal.lock``, with an absolute link target and a
    staleness check by the lock's own age (see the module docstring)."""

    def __init__(self, journal: Path, grace_s: float = LOCK_GRACE_S) -> None:
        self._target = os.path.abspath(journal)
        self._lock = Path(self._target + ".lock")
        self.grace_s = grace_s

    def acquire(self) -> bool:
        """Create the lock link, breaking one older than ``grace_s``; True once held."""
        sleep = 0.001
        while True:
            try:
                os.symlink(self._target, self._lock)
                return True
            except FileExistsError:
                try:
                    age = time.time() - os.lstat(self._lock).st_mtime
                except FileNotFoundError:
                    continue  # released meanwhile
                if age > self.grace_s:
                    try:
                        _remove(self._lock)
                    except OSError:
                        pass  # another process broke it first
                    continue
                time.sleep(sleep)
                sleep = min(sleep * 2, 0.1)

    def release(self) -> None:
        """Remove the lock link."""
        try:
            if not _remove(self._lock):
                raise RuntimeError("Error: did not possess lock")
        except OSError:
            raise RuntimeError("Error: did not possess lock") from None


def break_stale_lock(journal: Path, wait_s: float = 2.0) -> bool:
    """Remove a journal lock left by a killed process; True when one was removed.

    Call it while holding the run lock: no search writes the journal then, and another Optuna
    client (optuna-dashboard) holds the lock for milliseconds, so a lock that outlives ``wait_s``
    is stale.
    """
    lock = lock_path(journal)
    deadline = time.monotonic() + wait_s
    while os.path.lexists(lock):
        if time.monotonic() >= deadline:
            try:
                return _remove(lock)
            except OSError:
                return False
        time.sleep(0.05)
    return False


@dataclass
class JournalScan:
    """What :func:`scan_journal` found.

    Attributes:
        size: bytes in the file.
        records: the intact records before the first damaged line.
        good_bytes: bytes those records take (the file's intact prefix).
        n_lines: lines in the file (a cut last line counts).
        damaged_line: 1-based number of the first damaged line (None: intact).
        reason: what is wrong with it.
        n_damaged: damaged lines; intact_after: intact records after the first damaged line.
    """

    size: int
    records: list[dict[str, Any]] = field(default_factory=list)
    good_bytes: int = 0
    n_lines: int = 0
    damaged_line: int | None = None
    reason: str | None = None
    n_damaged: int = 0
    intact_after: int = 0

    @property
    def damaged(self) -> bool:
        return self.damaged_line is not None

    @property
    def recoverable(self) -> bool:
        """The damage is at the end only: dropping it loses no intact record."""
        return self.damaged and self.intact_after == 0

    def describe(self) -> str:
        """``line 12 of 40 is cut short (...)`` style."""
        tail = f" and {self.n_damaged - 1} more damaged line(s)" if self.n_damaged > 1 else ""
        return f"line {self.damaged_line} of {self.n_lines} {self.reason}{tail}"


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("op_code"), int) or rec["op_code"] not in _OP_CODES:
        return None
    return rec


def scan_journal(journal: Path) -> JournalScan:
    """Check ``journal`` line by line (read only).

    Raises:
        InputError: it is not a readable file.
    """
    if journal.is_symlink() or not journal.is_file():
        raise InputError(f"{journal} is not a journal file (a directory or a link?); move it away to resume "
                         "nothing, or pass --name NEW for a new study")
    try:
        data = journal.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {journal}: {e.strerror or e}; fix its permissions or pass --name NEW") from None
    scan = JournalScan(size=len(data))
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        line = data[pos:] if end < 0 else data[pos:end + 1]
        scan.n_lines += 1
        rec = _record(line) if end >= 0 else None
        if rec is None:
            scan.n_damaged += 1
            if scan.damaged_line is None:
                scan.damaged_line = scan.n_lines
                scan.reason = ("is cut short (no line end: a write cut by a full disk, a power loss or a kill)"
                               if end < 0 else "is not a journal record")
        elif scan.damaged_line is None:
            scan.records.append(rec)
            scan.good_bytes = end + 1
        else:
            scan.intact_after += 1
        pos = len(data) if end < 0 else end + 1
    return scan


class RecordsBackend(BaseJournalBackend):
    """A read-only journal backend over records already read (to look into a damaged journal
    without writing to it)."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self._records = records

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        yield from self._records[log_number_from:]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        raise RuntimeError("a damaged journal is never written to")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def recover(journal: Path, scan: JournalScan) -> Path:
    """Put the intact records of a journal damaged at its end into a fresh ``journal``; the
    damaged file, byte for byte, is kept beside it. Returns the damaged file's new path.

    The steps are ordered so that a kill between any two loses nothing: the damaged file gets
    its second name (a hard link, or a copy) before the fresh journal replaces it atomically.
    """
    assert scan.recoverable
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kept = journal.with_name(f"{journal.name}.damaged-{stamp}")
    n = 1
    while os.path.lexists(kept):
        n += 1
        kept = journal.with_name(f"{journal.name}.damaged-{stamp}-{n}")
    data = journal.read_bytes()
    if len(data) != scan.size:
        raise InputError(f"{journal} changed while it was checked; is another program writing it? Run again")
    tmp = journal.with_name(f".{journal.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data[: scan.good_bytes])
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(journal, kept)
        except OSError:  # no hard links here: copy
            with open(kept, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, journal)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(journal.parent)
    return kept
