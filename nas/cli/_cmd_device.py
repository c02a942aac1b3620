"""``nas device``: list, show, check devices; write a measuring kit; register a device.

    nas device list [--json]
    nas device show NAME [--json]
    nas device check max78000 NET.yaml [--json]
    nas device kit --space SPACE --out DIR [--extra K [--seed S]] [--force]
    nas device register NAME --space SPACE (--samples FILE.csv | --measure onnxruntime) [--force]
    nas device register NAME --base max78000 --samples FILE.csv [--force]
    nas device remove NAME

``check`` exits 0 when the network fits the device, 1 when it breaks a rule, and 2 when the
file or the device name is unusable (one line on stderr, from :class:`search_spaces.InputError`).
Every other bad input also exits 2 with one line; a failed registration leaves the registry as
it was.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``nas device`` with its ``list`` and ``check`` sub-commands."""
    p = subparsers.add_parser("device", help="devices: list, show, check a network, kit, register your own")
    sub = p.add_subparsers(dest="device_command", metavar="ACTION", parser_class=type(p))
    sub.required = True

    ls = sub.add_parser("list", help="list the known devices", description=(
        "List the built-in devices (accelerators, host-cpu), your registered devices and the "
        "recorded devices of the latency tables (phones first)."))
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=_list)

    sh = sub.add_parser("show", help="details of one device", description=(
        "Details of device NAME: kind, spaces with latency, limits; for a recorded device its "
        "table coverage, for a registered one its samples and leave-one-out error."))
    sh.add_argument("name", metavar="NAME")
    sh.add_argument("--json", action="store_true", help="print JSON")
    sh.set_defaults(func=_show)

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

    kit = sub.add_parser("kit", help="write a kit to time a space's 10 reference models on your device",
                         description=(
                             "Write the 10 reference architectures of SPACE as ONNX models, archs.csv, a "
                             "standalone measure.py (needs only numpy and onnxruntime) and a README into DIR. "
                             "Run 'python measure.py > samples.csv' on the device, then 'nas device register'. "
                             "With --extra K, K more architectures follow the references, chosen before any "
                             "measurement by the shipped predictor's uncertainty: greedily, the candidate (of "
                             "2,000 random ones drawn with --seed) whose prediction the closed-form head is least "
                             "sure of given the references and the extras already chosen, averaged over the "
                             "meta-training devices (that uncertainty does not depend on the latencies, so "
                             "one round of measuring suffices). 'register' uses every line measured. Measured "
                             "effect: benchmarks/results/active_samples.md."))
    kit.add_argument("--space", required=True, help="search space (fbnet, nasbench201)")
    kit.add_argument("--out", required=True, metavar="DIR", help="folder to write (created if needed)")
    kit.add_argument("--extra", type=_count, default=0, metavar="K",
                     help="also K architectures chosen by the predictor's uncertainty (default 0)")
    kit.add_argument("--seed", type=int, default=0, help="seed of the candidates of --extra (default 0)")
    kit.add_argument("--force", action="store_true", help="overwrite an existing kit in DIR")
    kit.set_defaults(func=_kit)

    rg = sub.add_parser("register", help="register your device from measured samples", description=(
        "Register device NAME. With --space: from samples 'arch,latency_ms' (the 10 reference "
        "architectures of the space at least; see 'nas device kit'), or measured on this machine "
        "with --measure onnxruntime; the space's predictor is adapted to them and the "
        "leave-one-out error is printed. With --base max78000: from board timings "
        "'network_yaml,measured_ms' (--timer output of the vendor tools), fitting "
        "time = a * cycle-model ms + b * input words + c (least squares, a, b, c >= 0). "
        "The device is stored in $NAS_HOME/devices; an existing one is replaced only with --force. "
        "Any problem: one line, exit 2, registry unchanged."))
    rg.add_argument("name", metavar="NAME", help="device name: letters, digits, '_', '.', '-'")
    what = rg.add_mutually_exclusive_group(required=True)
    what.add_argument("--space", help="search space of the samples (fbnet, nasbench201, ofa_mbv3)")
    what.add_argument("--base", choices=["max78000"], help="calibrate a built-in accelerator's model")
    src = rg.add_mutually_exclusive_group(required=True)
    src.add_argument("--samples", metavar="FILE.csv", help="CSV of samples (see above)")
    src.add_argument("--measure", choices=["onnxruntime"], help="measure the space's 10 reference "
                     "architectures on this machine instead of reading a file")
    rg.add_argument("--force", action="store_true", help="replace an existing device of that name")
    rg.add_argument("--max-seconds", type=float, default=120.0, help="--measure: time cap (default 120)")
    rg.add_argument("--min-rounds", type=int, default=5, help="--measure: rounds before the stability check")
    rg.add_argument("--max-rounds", type=int, default=50, help="--measure: rounds at most")
    rg.add_argument("--number", type=int, default=10, help="--measure: runs per model per round")
    rg.add_argument("--warmup", type=int, default=10, help="--measure: warm-up runs per model")
    rg.add_argument("--json", action="store_true", help="print the stored device as JSON")
    rg.set_defaults(func=_register)

    rm = sub.add_parser("remove", help="delete a registered device", description="Delete registered device NAME.")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=_remove)


def _count(text: str) -> int:
    """A whole number >= 0 (argparse type)."""
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}") from None
    if k < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return k


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or captured: don't squeeze the table to 80 columns
        console = Console(width=200)
    return console


def _list(args: argparse.Namespace) -> int:
    import devices

    infos = []
    for name in devices.list_devices():
        try:
            infos.append(devices.get_device(name).info())
        except devices.RegistryError as e:  # a damaged registered device: listed, with the error and its fix
            infos.append({"name": name, "kind": "unreadable", "spaces": [], "limits": {}, "description": str(e)})
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="devices")
    for col in ("name", "kind", "spaces", "limits", "description"):
        table.add_column(col)
    for info in infos:
        limits = ", ".join(f"{k} {v}" for k, v in info.get("limits", {}).items()) or "-"
        table.add_row(info["name"], info["kind"], ", ".join(info["spaces"]), limits, info["description"])
    _console().print(table)
    return 0


def _show(args: argparse.Namespace) -> int:
    import devices

    dev = devices.get_device(args.name)
    info = dev.info()
    if isinstance(dev, devices.RecordedDevice):
        import predictors

        cover = {}
        for space in dev.spaces:
            t = predictors.load_latency_table(space)
            y = t.device(dev.name)
            cover[space] = {"archs": int(y.size), "min_ms": float(y.min()), "median_ms": float(np.median(y)),
                            "max_ms": float(y.max())}
        info["table"] = cover
        info["other_archs"] = "predictor adapted on the space's 10 reference architectures"
    elif isinstance(dev, devices.HostCPU):
        info["method"] = ("ONNX export, onnxruntime InferenceSession, 1 intra-op thread, warm-up, interleaved "
                          "rounds, median of per-round medians, until 1% relative standard error or 120 s")
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    console = _console()
    console.print(f"[bold]{info['name']}[/] ({info['kind']}): {info['description']}", highlight=False)
    console.print(f"spaces: {', '.join(info['spaces']) or '-'}", highlight=False)
    limits = ", ".join(f"{k} {v}" for k, v in info.get("limits", {}).items()) or "-"
    console.print(f"limits: {limits}", highlight=False)
    for space, c in info.get("table", {}).items():
        console.print(f"{space}: {c['archs']:,} architectures recorded, {c['min_ms']:.4g} / {c['median_ms']:.4g} / "
                      f"{c['max_ms']:.4g} ms (min / median / max); others: {info['other_archs']}", highlight=False)
    if "method" in info:
        console.print(f"method: {info['method']}", highlight=False)
    if isinstance(dev, devices.RegisteredDevice):
        console.print(f"created {info['created']} from {info['source']}, {info['samples']} samples", highlight=False)
        _print_loo(console, dev.record["loo"])
    if isinstance(dev, devices.CalibratedMAX78000):
        console.print(dev.model_sentence(), highlight=False)
        _print_residuals(console, dev.record)
    return 0


def _print_loo(console: Any, loo: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="leave-one-out: each sample predicted from the others")
    for col, j in (("arch", "left"), ("measured ms", "right"), ("predicted ms", "right"), ("error", "right")):
        table.add_column(col, justify=j)  # type: ignore[arg-type]
    for row in loo["samples"]:
        err = row["predicted_ms"] / row["measured_ms"] - 1
        table.add_row(row["arch"], f"{row['measured_ms']:.4g}", f"{row['predicted_ms']:.4g}", f"{100 * err:+.1f}%")
    console.print(table)
    med, mx = 100 * loo["median_abs_error"], 100 * loo["max_abs_error"]
    within = round(loo["within_10pct"] * loo["n"])
    console.print(f"leave-one-out error: median {med:.1f}%, max {mx:.1f}%, {within} of {loo['n']} within +-10%",
                  highlight=False)
    if loo.get("std_scale", 1.0) > 1.0:
        console.print(f"predicted std scaled by {loo['std_scale']:.2f} to match these errors", highlight=False)
    if med <= 5 and mx <= 15:
        verdict = "good: expect most predictions within about +-10%"
    elif med <= 10:
        verdict = "fair: rankings are usable, absolute values less so; more samples will help"
    else:
        verdict = ("poor: do not trust absolute values; check the timings (noise, thermal throttling) "
                   "or add more samples (extra lines arch,latency_ms)")
    console.print(f"fit: {verdict}", highlight=False)


def _print_residuals(console: Any, record: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="calibration: board timing vs fitted model")
    for col in ("network", "cycle model ms", "input words", "measured ms", "fitted ms", "residual ms"):
        table.add_column(col, justify="left" if col == "network" else "right")
    for (name, ms), cnn, words, fit, res in zip(record["samples"], record["cnn_ms"], record["input_words"],
                                                record["fitted_ms"], record["residuals_ms"]):
        table.add_row(name, f"{cnn:.4f}", f"{words:,}", f"{ms:.4f}", f"{fit:.4f}", f"{res:+.4f}")
    console.print(table)
    rms = float(np.sqrt(np.mean(np.square(record["residuals_ms"]))))
    console.print(f"residuals: rms {rms:.4f} ms, max |{max(abs(r) for r in record['residuals_ms']):.4f}| ms",
                  highlight=False)


def _kit(args: argparse.Namespace) -> int:
    import devices

    files = devices.write_kit(args.space, args.out, force=args.force, extra=args.extra, seed=args.seed)
    print(f"wrote {len(files)} files to {args.out}: " + ", ".join(f.name for f in files))
    print(f"next: copy {args.out} to the device, run 'python measure.py > samples.csv' there, then "
          f"'nas device register NAME --space {args.space} --samples samples.csv'")
    return 0


def _register(args: argparse.Namespace) -> int:
    from rich.console import Console

    import devices

    console = _console()
    err = Console(stderr=True)
    if args.base:
        if args.measure:
            raise devices.RegistryError("--base max78000 takes board timings from --samples, not --measure")
        dev = devices.register_max78000_device(args.name, args.samples, force=args.force)
        if args.json:
            print(json.dumps(dev.info(), indent=2, default=str))
            return 0
        console.print(f"registered {dev.name} (MAX78000 calibrated on {len(dev.record['samples'])} board timings) "
                      f"in {devices.devices_dir()}", highlight=False)
        console.print(dev.model_sentence(), highlight=False)
        _print_residuals(console, dev.record)
        return 0
    devices.check_free(args.name, args.force)  # before any measuring
    extra: dict[str, Any] = {}
    if args.measure:
        import predictors

        devices.check_buildable(args.space)
        refs = predictors.load(args.space).ref_archs_
        err.print(f"measuring the {len(refs)} reference architectures of {args.space} on this machine "
                  f"(onnxruntime, 1 thread, up to {args.max_seconds:g} s)", highlight=False)
        timings = devices.measure_archs(args.space, refs, warmup=args.warmup, number=args.number,
                                        min_rounds=args.min_rounds, max_rounds=args.max_rounds,
                                        max_seconds=args.max_seconds)
        samples = devices.check_samples(args.space, [t.name for t in timings], [t.latency_ms for t in timings],
                                        path="measurement")
        source = f"onnxruntime on this machine ({devices.cpu_name()}, 1 thread)"
        extra["measurement"] = [{"arch": t.name, "latency_ms": t.latency_ms, "iqr_ms": t.iqr_ms, "cv": t.cv,
                                 "rounds": len(t.rounds), "stable": t.stable} for t in timings]
        for t in timings:
            err.print(f"  {t.latency_ms:.4g} ms, IQR {100 * t.iqr_ms / t.latency_ms:.1f}%, {len(t.rounds)} rounds"
                      + ("" if t.stable else " (not settled)"), highlight=False)
    else:
        samples = devices.read_samples(args.samples, args.space)
        source = os.path.abspath(args.samples)
    dev = devices.register_space_device(args.name, samples, source=source, force=args.force, extra=extra)
    if args.json:
        print(json.dumps(dev.info(), indent=2, default=str))
        return 0
    console.print(f"registered {dev.name} ({samples.space}, {len(samples.archs)} samples from {source}) "
                  f"in {devices.devices_dir()}", highlight=False)
    _print_loo(console, dev.record["loo"])
    console.print(f"next: nas predict --device {dev.name} --space {samples.space} ARCH...", highlight=False)
    return 0


def _remove(args: argparse.Namespace) -> int:
    import devices

    devices.remove_user_device(args.name)
    print(f"removed {args.name}")
    return 0


def _check(args: argparse.Namespace) -> int:
    import devices
    from search_spaces import Network

    from ..targets import target_for_device

    device = devices.get_device(args.device)  # UnknownDeviceError -> exit 2
    network = Network.load(args.network)  # NetworkFormatError -> exit 2
    report = target_for_device(device).rule_report(device, network)
    if report is None:
        ms = device.latency_ms(network)
        if args.json:
            print(json.dumps({"device": device.name, "network": args.network, "latency_ms": ms}, indent=2))
        else:
            print(f"{device.name}: {ms:.3f} ms")
        return 0
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
    totals.add_row("bias bytes", f"{report.bias_bytes:,} of {report.bias_capacity_bytes:,}")
    totals.add_row("layers", f"{report.layers} of {report.max_layers}")
    totals.add_row("max column", f"{report.max_column} of {report.total_columns}")
    totals.add_row("kernel memory used", f"{report.kernel_processor_columns:,} of {report.kernel_capacity_columns:,} processor-columns")
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
