"""Parsing of sizes (``400KB``) and times (``2ms``) given on the command line."""

from __future__ import annotations

import math
import re

from search_spaces import InputError

__all__ = ["parse_size", "parse_time_ms", "parse_duration_s", "format_size"]

_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}
_TIME_UNITS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0}
_DURATION_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_NUM = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def parse_size(text: str, *, what: str = "size") -> int:
    """Bytes from a size such as ``400KB``, ``432KiB``, ``4MB``, ``1.5MiB`` or ``71148B``.

    KB/MB are powers of 1000, KiB/MiB powers of 1024; a bare number is bytes.
    """
    m = re.fullmatch(_NUM + r"\s*([a-zA-Z]*)", str(text).strip())
    unit = (m.group(2) or "b").lower() if m else None
    if m is None or unit not in _SIZE_UNITS:
        raise InputError(
            f"invalid {what} {text!r}: use a positive number with B, KB, KiB, MB or MiB (e.g. 400KB)"
        )
    value = float(m.group(1)) * _SIZE_UNITS[unit]
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"invalid {what} {text!r}: it must be greater than zero")
    return int(round(value))


def _parse_unit(text: str, units: dict[str, float], default: str, what: str, hint: str) -> float:
    """``number * units[unit]`` from ``text`` (a bare number takes ``default``), positive and finite."""
    m = re.fullmatch(_NUM + r"\s*([a-zA-Zµ]*)", str(text).strip())
    unit = (m.group(2) or default).lower() if m else None
    if m is None or unit not in units:
        raise InputError(f"invalid {what} {text!r}: use a positive number with {hint}")
    value = float(m.group(1)) * units[unit]
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"invalid {what} {text!r}: it must be greater than zero")
    return value


def parse_time_ms(text: str, *, what: str = "time") -> float:
    """Milliseconds from a time such as ``2ms``, ``1500us`` or ``0.02s`` (a bare number is ms)."""
    return _parse_unit(text, _TIME_UNITS, "ms", what, "us, ms or s (e.g. 2ms)")


def parse_duration_s(text: str, *, what: str = "duration") -> float:
    """Seconds from a wall-clock duration such as ``90s``, ``30min`` (or ``30m``) or ``1.5h``
    (a bare number is seconds)."""
    return _parse_unit(text, _DURATION_UNITS, "s", what, "s, min or h (e.g. 30min)")


def format_size(n: int) -> str:
    """``71,148 B`` style, exact bytes (what the vendor tool prints)."""
    return f"{n:,} B"
