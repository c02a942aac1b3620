"""The command line's one progress bar (nas.cli._progress): ETA column, nothing drawn off a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from nas.cli._progress import bar_shown, progress_bar, step_listener
from nas.train import progress, progress_to


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=120), buf


def test_quiet_off_a_terminal_but_lines_still_print() -> None:
    con, buf = _console(False)
    assert not bar_shown(con)
    with progress_bar(con) as bar:
        t = bar.add_task("trials", total=4, info="")
        bar.update(t, completed=2)
        bar.console.print("a line")
    assert buf.getvalue() == "a line\n"


def test_shown_bar_has_eta_and_supernet_steps() -> None:
    con, buf = _console(True)
    with progress_bar(con, show=True) as bar, progress_to(step_listener(bar)):
        for i in range(5):
            progress("supernet", i, 4)
        assert [t.description for t in bar.tasks] == ["supernet training steps"]
        assert bar.tasks[0].completed == 4 and bar.tasks[0].total == 4
    out = buf.getvalue()
    assert "ETA" in out and "supernet training steps" in out and "4/4" in out
