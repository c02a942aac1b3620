"""Search-speed benchmark: trials per minute of ``nas search`` and where the time goes.

Runs the library search (the same code as ``nas search``) into a temporary runs directory and
prints: wall time, trials per minute, and per trial the device check (rules, placement, cycles),
the accuracy estimate and the rest (sampling, Optuna journal, outputs). Also prints the machine's
load average before and after, because the shared 2-core machines are often busy.

    python benchmarks/bench_search.py                          # 60 trials, 400KB, NASWOT
    python benchmarks/bench_search.py --trials 20 --estimate short-qat
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from nas import SearchConfig, run_search
from nas.cli._units import parse_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--budget", default="400KB")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--estimate", default="naswot", choices=["naswot", "short-qat"])
    args = ap.parse_args()

    load_before = os.getloadavg()
    per_trial: list[float] = []
    last = [time.perf_counter()]

    def tick(p: object) -> None:
        now = time.perf_counter()
        if getattr(p, "done", 0) > 0:
            per_trial.append(now - last[0])
        last[0] = now

    with tempfile.TemporaryDirectory() as tmp:
        cfg = SearchConfig(device="max78000", budget_bytes=parse_size(args.budget), budget_text=args.budget,
                           trials=args.trials, seed=args.seed, runs_dir=Path(tmp),
                           estimator=args.estimate.replace("-", "_"))
        t0 = time.perf_counter()
        r = run_search(cfg, progress=tick)
        wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    n = r.n_new
    loop = sum(per_trial)
    rest = loop - r.device_seconds - r.estimate_seconds
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {load_before[0]:.2f} before / {load_after[0]:.2f} after")
    print(f"search: {n} trials, budget {args.budget}, estimate {r.metric}, seed {args.seed}")
    print(f"wall time (incl. data load, imports inside, outputs): {wall:.1f} s")
    print(f"trials per minute (whole run): {60 * n / wall:.1f}")
    print(f"trials per minute (trial loop only): {60 * n / loop:.1f}")
    print(f"feasible: {r.n_feasible} of {r.n_complete}; Pareto networks: {len(r.pareto)}")
    print("time per trial (ms):")
    print(f"  device check     {1000 * r.device_seconds / n:9.2f}")
    print(f"  accuracy estimate{1000 * r.estimate_seconds / n:9.1f}")
    print(f"  sampler+journal  {1000 * rest / n:9.1f}")
    print(f"  total            {1000 * loop / n:9.1f}  (median {1000 * statistics.median(per_trial):.1f}, "
          f"max {1000 * max(per_trial):.1f})")
    print(f"outputs + setup: {wall - loop:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
