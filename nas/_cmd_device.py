"""``nas device``: list devices, and check a network description against one.

    nas device list
    nas device check max78000 NET.yaml [--json]

``check`` exits 0 when the network fits the device, 1 when it breaks a rule, and 2 when the
file or the device name is unusable (one line on stderr, from :class:`search_spaces.InputError`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``nas device`` with its ``list`` and ``check`` sub-commands."""
    p = subparsers.add_parser("device", help="devices: list them, check a network against one")
    sub = p.add_subparsers(dest="device_command", metavar="ACTION", parser_class=type(p))
    sub.required = True

    ls = sub.add_parser("list", help="list the known devices", description="List the known devices.")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=_list)

    ck = sub.add_parser(
        "check",
        help="check a network description against a device's rules and estimate its latency",
        description=(
            "Check the network description NET (YAML or JSON, the format written by 'nas search') "
            "against DEVICE: every hardware rule it breaks, kernel and bias placement, data memory, "
            "and the latency from the vendor's cycle model. Exit 0 if it fits, 1 if not, 2 if the "
            "input cannot be used."
        ),
    )
    ck.add_argument("device", metavar="DEVICE", help="device name (see 'nas device list')")
    ck.add_argument("network", metavar="NET", help="network description file (.yaml or .json)")
    ck.add_argument("--json", action="store_true", help="print the report as JSON")
    ck.set_defaults(func=_check)


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or captured: don't squeeze the table to 80 columns
        console = Console(width=200)
    return console


def _list(args: argparse.Namespace) -> int:
    import devices

    infos = [devices.get_device(name).info() for name in devices.list_devices()]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="devices")
    for col in ("name", "kind", "spaces", "description"):
        table.add_column(col)
    for info in infos:
        table.add_row(info["name"], info["kind"], ", ".join(info["spaces"]), info["description"])
    _console().print(table)
    return 0


def _check(args: argparse.Namespace) -> int:
    import devices
    from search_spaces import Network

    device = devices.get_device(args.device)  # UnknownDeviceError -> exit 2
    network = Network.load(args.network)  # NetworkFormatError -> exit 2
    if not hasattr(device, "report"):
        ms = device.latency_ms(network)
        if args.json:
            print(json.dumps({"device": device.name, "network": args.network, "latency_ms": ms}, indent=2))
        else:
            print(f"{device.name}: {ms:.3f} ms")
        return 0
    report = device.report(network)
    if args.json:
        print(json.dumps({"device": device.name, "network": args.network, **report.to_dict()}, indent=2))
    else:
        _print_report(device, network, report, args.network)
    return 0 if report.fits else 1


def _dim(d: tuple[int, int]) -> str:
    return f"{d[0]}x{d[1]}"


def _print_report(device: Any, network: Any, report: Any, path: str) -> None:
    from rich.table import Table

    console = _console()
    table = Table(title=f"{device.name}: {network.name or path}")
    for col, justify in (
        ("#", "right"), ("op", "left"), ("channels", "right"), ("in dim", "right"),
        ("kernel", "right"), ("pad", "right"), ("pool/stride", "right"), ("bits", "right"),
        ("columns", "right"), ("placement", "left"), ("bias bank", "right"), ("cycles", "right"),
        ("data in/out B", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for i, layer in enumerate(network.layers):
        place = report.placement[i]
        op = layer.op + (" flatten" if layer.flatten else "") + (" stream" if layer.streaming else "")
        if layer.operands > 1:
            op += f" x{layer.operands}"
        table.add_row(
            str(i),
            op,
            f"{layer.in_channels}->{layer.out_channels}",
            _dim(layer.in_dim),
            "-" if layer.op == "passthrough" else _dim(layer.kernel),
            "-" if layer.op == "passthrough" else f"{layer.pad[0]},{layer.pad[1]}",
            f"{_dim(layer.pool)}/{layer.pool_stride[0]}" if layer.is_pooled else "-",
            "-" if layer.op == "passthrough" else str(layer.weight_bits),
            str(report.kernel_columns[i]) if report.kernel_columns[i] else "-",
            str(place) if place is not None else ("-" if not report.kernel_columns[i] else "[red]not placed[/]"),
            "-" if report.bias_banks[i] is None else str(report.bias_banks[i]),
            f"{report.layer_cycles[i]:,}",
            f"{report.data_in_bytes[i]:,}/{report.data_out_bytes[i]:,}",
        )
    console.print(table)

    totals = Table(show_header=False, box=None, padding=(0, 2))
    totals.add_column(justify="left")
    totals.add_column(justify="right")
    pct = 100 * report.weight_bytes / report.weight_capacity_bytes
    totals.add_row("weight bytes", f"{report.weight_bytes:,} of {report.weight_capacity_bytes:,} ({pct:.1f}%)")
    totals.add_row("bias bytes", f"{report.bias_bytes:,} of 2,048")
    totals.add_row("layers", f"{report.layers} of {report.max_layers}")
    totals.add_row("max column", f"{report.max_column} of {report.total_columns}")
    totals.add_row("kernel memory used", f"{report.kernel_processor_columns:,} of {64 * report.total_columns:,} processor-columns")
    totals.add_row("data memory", f"{report.data_memory_bytes:,} of {report.data_budget_bytes:,} B per instance")
    totals.add_row("cycles", f"{report.cycles:,}")
    totals.add_row(f"latency at {report.clock_hz / 1e6:g} MHz", f"{report.latency_ms:.3f} ms")
    totals.add_row("input load (CPU, stated model)", f"{report.input_load_ms:.3f} ms ({report.input_load_words:,} words)")
    console.print(totals)
    for note in report.assumptions:
        console.print(f"[dim]assumed: {note}[/]", highlight=False, soft_wrap=True)
    if report.fits:
        console.print("[bold green]fits[/]")
    else:
        console.print(f"[bold red]does not fit: {len(report.violations)} rule(s) broken[/]")
        for v in report.violations:
            console.print(f"  - {v}", highlight=False, markup=False, soft_wrap=True)
