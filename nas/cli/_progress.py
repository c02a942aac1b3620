"""The command line's one progress bar (rich), shared by ``nas search``, ``nas qat`` and
``nas predictor train``: what runs, a bar, done / total, a line of figures, the time elapsed and
the estimated time left (rich's estimate from the recent speed of the task)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["progress_bar", "bar_shown", "step_listener"]


def bar_shown(console: Any) -> bool:
    """Whether a bar is drawn: stdout and ``console`` (stderr, where the bar goes) are terminals.
    Piped, redirected or captured output (scripts, CI, tests) gets no bar; the lines printed
    through the bar's console appear either way."""
    return bool(console.is_terminal and sys.stdout.isatty())


def progress_bar(console: Any, *, show: bool | None = None) -> Any:
    """A rich ``Progress`` on ``console`` with the columns of every bar of the command line.

    Add tasks with ``bar.add_task(description, total=N, info="")`` and update ``completed`` and
    ``info``; print lines with ``bar.console.print``. ``show`` (None: :func:`bar_shown`) draws it.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console,
                    disable=not (bar_shown(console) if show is None else show))


def step_listener(bar: Any) -> Callable[[str, int, int], None]:
    """A listener for :func:`nas.train.progress_to`: each task it reports (``supernet``: the
    training steps of all its phases) gets its own line on ``bar``."""
    tasks: dict[str, Any] = {}

    def on_step(task: str, done: int, total: int) -> None:
        if task not in tasks:
            tasks[task] = bar.add_task(f"{task} training steps", total=total, info="")
        bar.update(tasks[task], completed=done, total=total)

    return on_step
