"""The MAX78002 model against Analog Devices' ``ai8xize.py --device MAX78002`` (issue 17, part 5).

Runs the vendor's own networks (ai85net5 with its MNIST checkpoint, ai85nascifarnet with its
CIFAR-10 checkpoint; both already quantised) and the networks of our ``ai8x`` space in
``vendor_tool.MAX78002_NETWORKS`` (random folded, quantised weights at 1/2/4/8 bits, exported
with the YAML laid out by the MAX78002 model) through the tool for the MAX78002, and prints and
writes per network: cycles ours / vendor, weight and bias bytes ours / vendor, kernel
placement and the sample output ours = vendor (our networks), whether the MAX78000 model
accepts it, and the latency at the MAX78002's CNN clock.

The tool prints no latency estimate for the MAX78002 (``DevAI87.SUPPORT_LATENCY_CALC`` is
False); the vendor cycles here are its ``izer/latency.py`` formula run by the tool with that flag
set (``vendor_tool.run_vendor``, ``latency_calc``).

    python benchmarks/bench_max78002.py [--out benchmarks/results/max78002_vendor.md]

Needs ``../shared/vendor/ai8x-synthesis`` and the ``dev`` extras.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vendor_tool  # noqa: E402


def rows(info: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per network: our report next to the tool's figures."""
    from devices import get_device

    dev, small = get_device("max78002"), get_device("max78000")
    out = []
    for name, run in info.items():
        net, res = run["network"], run["vendor"]
        rep = dev.report(net)
        row: dict[str, Any] = {
            "name": name, "ours": run["ours"], "layers": len(net.layers), "rc": res["rc"],
            "bits": "/".join(str(b) for b in sorted({layer.weight_bits for layer in net.layers})),
            "fits": rep.fits, "fits_max78000": small.report(net).fits, "cycles": rep.cycles,
            "weight": rep.weight_bytes, "bias": rep.bias_bytes - run["zero_bias"], "latency_ms": rep.latency_ms,
            "clock_hz": rep.clock_hz, "layer_cycles_equal": None, "placement_equal": None, "output_equal": None,
        }
        if res["rc"] == 0:
            row.update(cycles_vendor=res["cycles"], weight_vendor=res["weight_bytes"], bias_vendor=res["bias_bytes"],
                       layer_cycles_equal=res["layer_cycles"] == rep.layer_cycles)
            if run["ours"]:
                n = len(net.layers)
                row["placement_equal"] = (res["kernel_offsets"][:n] == [p.column for p in rep.placement]
                                          and res["kernel_lengths"][:n] == [p.columns for p in rep.placement])
                row["output_equal"] = bool(np.array_equal(np.load(run["files"]["sample_output"]), res["expected"]))
        out.append(row)
    return out


def markdown(table: list[dict[str, Any]], seconds: float, cmd: str) -> str:
    def yes(v: Any) -> str:
        return "-" if v is None else ("yes" if v else "**no**")

    def pair(a: Any, b: Any) -> str:
        return f"{a:,} / {b:,}" if b is not None else f"{a:,} / -"

    archs = {n: a for n, _, a, _ in vendor_tool.MAX78002_NETWORKS}
    clock = table[0]["clock_hz"] / 1e6
    lines = [
        "# The MAX78002 model against the vendor's ai8xize.py --device MAX78002", "",
        f"Measured {dt.date.today().isoformat()} on {platform.machine()} ({platform.python_version()}), `{cmd}`; "
        f"vendor tool time {seconds:.0f} s for {len(table)} networks (2 at a time).", "",
        "*ours* is `devices.get_device(\"max78002\").report(network)`; *vendor* is ai8x-synthesis (commit ab4f4c0) "
        "run with `--device MAX78002` and our model cards' other flags. Bias bytes: the tool leaves a bias whose "
        "integers are all 0 out of bias memory, so ours are counted the same way. *placement*: every layer's kernel "
        "offset and length in the tool's log equal ours (our networks only: their YAML carries our processors; the "
        "vendor's YAML picks its own). *output*: the tool's simulated output for the sample input equals our integer "
        "forward pass bit for bit.", "",
        f"Latency is ours: cycles at the MAX78002's default CNN clock, {clock:g} MHz: the PLL "
        "(`izer/tornadocnn.py`, `DevAI87.PLL_SPEED = 200`) with divider 1, which the tool picks by default (PLL and "
        "pipeline on, `izer/backend/max7800x.py`; the generated `main.c` says \"CNN clock: PLL (200 MHz) div 1\" "
        "before `cnn_start()`; README: \"On MAX78002, by default the MDLL is enabled and the accelerator runs at "
        "200 MHz\"). CNN only, like the MAX78000's figures.", "",
        "**Cycles are not a vendor estimate for this chip.** The tool prints no `ESTIMATED LATENCY` for the MAX78002 "
        "(`DevAI87` leaves `SUPPORT_LATENCY_CALC` False); *vendor* cycles are its `izer/latency.py` formula run by "
        "the tool with that flag set (`benchmarks/vendor_tool.py`, `latency_calc`), i.e. the MAX78000's estimate "
        "with the MAX78002's device description. Agreement shows our model computes that formula on the tool's "
        "per-layer parameters; how close it is to a MAX78002 board (pipelined CNN) is not measured here.", "",
        "| network | arch | layers | bits | fits MAX78000 | cycles ours / vendor | per-layer cycles equal "
        "| weight bytes ours / vendor | bias bytes ours / vendor | placement | output | latency at "
        f"{clock:g} MHz |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        arch = f"`{archs[r['name']]}`" if r["ours"] else "vendor checkpoint"
        if len(arch) > 60:
            arch = arch[:57] + "...`"
        lines.append(
            f"| {r['name']} | {arch} | {r['layers']} | {r['bits']} | {'yes' if r['fits_max78000'] else 'no'} | "
            f"{pair(r['cycles'], r.get('cycles_vendor'))} | {yes(r['layer_cycles_equal'])} | "
            f"{pair(r['weight'], r.get('weight_vendor'))} | {pair(r['bias'], r.get('bias_vendor'))} | "
            f"{yes(r['placement_equal'])} | {yes(r['output_equal'])} | {r['latency_ms']:.3f} ms |"
        )
    lines += ["", "The same checks run as `tests/devices/test_max78002_vendor.py`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args()
    vendor = vendor_tool.vendor_dir()
    why = vendor_tool.unavailable(vendor)
    if why:
        raise SystemExit(f"bench_max78002: {why}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        info = vendor_tool.max78002_runs(vendor, Path(tmp))
        seconds = time.perf_counter() - t0
        table = rows(info)
    for r in table:
        if r["rc"] != 0:
            print(f"{r['name']}: the vendor tool failed (rc {r['rc']})", file=sys.stderr)
    md = markdown(table, seconds, "python benchmarks/bench_max78002.py " + " ".join(sys.argv[1:]))
    print(md)
    if args.out:
        Path(args.out).write_text(md)


if __name__ == "__main__":
    main()
