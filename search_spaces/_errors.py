"""The one error type for bad user input, shared by every package.

Each package raises a subclass of :class:`InputError` with a one-line message naming the
problem and the fix; the CLI prints that line and exits with code 2.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input from a user: a malformed file, an unknown name, an out-of-range value."""
