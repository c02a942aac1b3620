"""Progress of long loops (supernet training steps), sent to whoever listens.

The training code calls :func:`progress` (cheap when nobody listens); the command line listens
with :func:`progress_to` around a call and draws the events with its one progress bar
(``nas.cli._progress``). A context variable carries the listener, so the deep training loops
need no callback argument.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

__all__ = ["progress", "progress_to"]

_LISTENER: ContextVar[Callable[[str, int, int], None] | None] = ContextVar("nas_progress", default=None)


def progress(task: str, done: int, total: int) -> None:
    """Say that ``task`` (e.g. ``supernet``) has done ``done`` of ``total`` steps."""
    fn = _LISTENER.get()
    if fn is not None:
        fn(task, done, total)


@contextlib.contextmanager
def progress_to(listener: Callable[[str, int, int], None] | None) -> Iterator[None]:
    """Send :func:`progress` events of this block (this thread) to ``listener`` (None: nobody)."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)
