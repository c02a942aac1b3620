"""The ``nas`` command: a thin layer over the library.

Each sub-command lives in a private module ``nas/cli/_cmd_*.py`` exposing ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int`` as the handler. Bad input raised as
:class:`search_spaces.InputError` is printed as one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from search_spaces import InputError

from ._progress import progress_bar

__all__ = ["main", "build_parser", "progress_bar"]

# Sub-command modules, in the order they appear in ``nas --help``.
_COMMAND_MODULES = (
    "nas.cli._cmd_search", "nas.cli._cmd_device", "nas.cli._cmd_predict", "nas.cli._cmd_predictor",
    "nas.cli._cmd_qat",
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2, no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nas",
        description="Hardware-aware search for small quantized networks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:  # a command module not written yet
            if e.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nas`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as e:
        print(f"nas {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nas {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
