"""``nas search --device host-cpu --space fbnet``: in-search latency vs a fresh re-measurement.

    .venv/bin/python benchmarks/bench_search_host.py [--trials 8] [--latency 5ms] [--runs DIR]

Runs the CLI search (latency measured per trial with onnxruntime, one thread, the default timing
settings), then times every Pareto network again in this process with
``devices.measure_archs`` (a fresh export and session, same settings) and prints, per network,
the latency the search saw (median, std = IQR / 1.349, the bound mean + 1.645 std), the fresh
value and their ratio. The ratio is the figure that carries over: absolute times depend on this
machine and its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--latency", default="5ms")
    ap.add_argument("--runs", help="runs directory (default: a temporary one)")
    args = ap.parse_args(argv)
    runs = Path(args.runs) if args.runs else Path(tempfile.mkdtemp(prefix="bench-host-"))
    cmd = [sys.executable, "-m", "nas", "search", "--device", "host-cpu", "--space", "fbnet", "--latency",
           args.latency, "--trials", str(args.trials), "--runs-dir", str(runs), "--name", "host",
           "--accuracy", "proxy"]  # the latencies are what this measures: the quick estimate
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return out.returncode
    rows = json.loads((runs / "host" / "pareto.json").read_text())["pareto"]
    print(f"search: {args.trials} trials in {wall:.1f} s (CLI wall time, start-up included); "
          f"{len(rows)} Pareto networks under {args.latency}")
    if not rows:
        return 0
    from devices import measure_archs

    fresh = {t.name: t for t in measure_archs("fbnet", [r["arch"] for r in rows], threads=1)}
    print(f"{'arch':24} {'search ms':>10} {'std ms':>7} {'bound ms':>9} {'fresh ms':>9} {'fresh/search':>12}")
    ratios = []
    for r in rows:
        f = fresh[r["arch"]].latency_ms
        ratios.append(f / r["latency_ms"])
        print(f"{r['arch']:24} {r['latency_ms']:10.3f} {r['std_ms']:7.3f} {r['latency_bound_ms']:9.3f} "
              f"{f:9.3f} {ratios[-1]:12.3f}")
    print(f"fresh/search ratio: median {statistics.median(ratios):.3f}, min {min(ratios):.3f}, max {max(ratios):.3f}; "
          f"fresh above the search's bound: {sum(fresh[r['arch']].latency_ms > r['latency_bound_ms'] for r in rows)}"
          f" of {len(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
