"""``nas predict``: latency of architectures on a device (recorded, registered, measured).

    nas predict --device NAME [--space SPACE] ARCH... | --archs FILE [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from search_spaces import InputError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``nas predict``."""
    p = subparsers.add_parser(
        "predict",
        help="predict the latency of architectures on a device",
        description=(
            "Latency in ms, with its uncertainty (std), of architectures of SPACE on device NAME. "
            "Recorded devices give the recorded value (std 0) for architectures in their table and "
            "an adapted prediction for the others; registered devices give their adapted "
            "predictor's prediction; host-cpu measures them. --json prints a list of "
            '{"arch", "latency_ms", "std_ms", "source"} in input order.'
        ),
    )
    p.add_argument("--device", required=True, help="device name (see 'nas device list')")
    p.add_argument("--space", help="search space (default: the device's only space)")
    p.add_argument("archs", nargs="*", metavar="ARCH", help="architectures (string form of the space)")
    p.add_argument("--archs", dest="archs_file", metavar="FILE", help="file with one architecture per line")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_predict)


def _read_archs(path: str) -> tuple[list[str], list[str]]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = "\0"
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or type(e).__name__}); give a readable text file") from None
    if "\0" in text:
        raise InputError(f"{path}: not a text file (UTF-8); give one architecture per line")
    archs, where = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            archs.append(text)
            where.append(f"{path} line {n}")
    return archs, where


def _predict(args: argparse.Namespace) -> int:
    import devices
    from search_spaces import ArchitectureError, get_space

    dev = devices.get_device(args.device)
    space = args.space
    if space is None:
        if len(dev.spaces) != 1:
            raise InputError(f"device {dev.name!r} has latency for {', '.join(dev.spaces) or 'no space'}: "
                             "choose one with --space")
        space = dev.spaces[0]
    if args.archs and args.archs_file:
        raise InputError("give architectures as arguments or with --archs FILE, not both")
    if args.archs_file:
        archs, where = _read_archs(args.archs_file)
    else:
        archs, where = list(args.archs), [f"argument {i + 1}" for i in range(len(args.archs))]
    if not archs:
        raise InputError("no architectures: give them as arguments or with --archs FILE")
    if space not in dev.spaces:
        dev.predict(space, [])  # raises NoLatencyError naming the device's spaces
    sp = get_space(space)
    keys = []
    for a, w in zip(archs, where):
        try:
            keys.append(sp.format(a))
        except ArchitectureError as e:
            raise InputError(f"{w}: {e}") from None
    if isinstance(dev, devices.HostCPU):
        from rich.console import Console

        err = Console(stderr=True)
        err.print(f"measuring {len(set(keys))} architecture(s) on this machine (onnxruntime, 1 thread)",
                  highlight=False)
        dev.options.setdefault("log", lambda line: err.print(f"  {line}", highlight=False))
    if isinstance(dev, devices.SpaceDevice):
        rows = dev.estimate(space, keys).to_dicts()
    else:  # an accelerator's analytical model
        y, s = dev.predict(space, keys, return_std=True)
        rows = [{"arch": k, "latency_ms": float(v), "std_ms": float(e), "source": "model"}
                for k, v, e in zip(keys, y, s)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    table = Table(title=f"{dev.name}: {space}")
    for col, j in (("arch", "left"), ("latency ms", "right"), ("std ms", "right"), ("source", "left")):
        table.add_column(col, justify=j)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r["arch"], f"{r['latency_ms']:.4g}", f"{r['std_ms']:.2g}", r["source"])
    console.print(table)
    n_rec = sum(r["source"] == "recorded" for r in rows)
    if n_rec:
        console.print(f"{n_rec} of {len(rows)} recorded in {dev.name}'s latency table (std 0); "
                      "the others are predicted", highlight=False)
    return 0
