#!/usr/bin/env python3
"""Time ONNX models with onnxruntime and print ``arch,latency_ms`` as CSV.

This file is the ``measure.py`` of a device kit (``nas device kit``); it needs only Python 3.8+,
``numpy`` and ``onnxruntime``, so it runs on a phone (Termux), a Raspberry Pi or any board::

    python measure.py > samples.csv            # in the kit folder (it reads archs.csv)

Method: one ``InferenceSession`` per model, fixed thread count (1 by default), batch 1, random
input; ``--warmup`` runs per model; then rounds in which every model, in a new random order each
round, is run ``--number`` times and the median of those run times is that round's value (models
are interleaved so a slow period of the machine hits them all). The latency is the median (or
``--stat p25``: the lower quartile) of a model's round values. Rounds continue until, for every
model, the estimate's relative standard error (1.2533 * IQR / 1.349 / sqrt(rounds) / estimate)
is at most ``--tol``, or ``--max-seconds`` have passed (then it says so on stderr). The spread
(IQR / median of the round values, and their coefficient of variation) goes to stderr.
The ``hw-nas`` package imports the same functions for ``host-cpu`` and ``--measure onnxruntime``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Timing", "make_session", "random_feed", "time_models", "main"]


@dataclass
class Timing:
    """Timing of one model: the estimate and the spread of its round values (ms)."""

    name: str
    latency_ms: float
    rounds: list[float] = field(default_factory=list)
    stable: bool = False

    @property
    def iqr_ms(self) -> float:
        """Interquartile range of the round values."""
        return _quantile(self.rounds, 0.75) - _quantile(self.rounds, 0.25)

    @property
    def cv(self) -> float:
        """Coefficient of variation of the round values."""
        if len(self.rounds) < 2:
            return 0.0
        return statistics.stdev(self.rounds) / statistics.mean(self.rounds)

    @property
    def rel_se(self) -> float:
        """Relative standard error of the median estimate (from the IQR)."""
        return _rel_se(self.rounds)


def _quantile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    pos = q * (len(s) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _rel_se(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return float("inf")
    med = statistics.median(xs)
    iqr = _quantile(xs, 0.75) - _quantile(xs, 0.25)
    return 1.2533 * (iqr / 1.349) / math.sqrt(len(xs)) / med if med > 0 else float("inf")


def make_session(path: str, threads: int = 1) -> Any:
    """An onnxruntime CPU session with ``threads`` intra-op threads, sequential execution."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def random_feed(session: Any, seed: int = 0) -> dict:
    """Random float32 inputs for a session (symbolic dimensions set to 1: batch 1)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    feed = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        feed[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return feed


def time_models(
    runners: Sequence[tuple[str, Callable[[], Any]]],
    *,
    warmup: int = 10,
    number: int = 10,
    min_rounds: int = 5,
    max_rounds: int = 50,
    tol: float = 0.01,
    max_seconds: float = 120.0,
    stat: str = "median",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> list[Timing]:
    """Time callables (one inference each), interleaved; see the module docstring.

    Args:
        runners: (name, run-once callable) per model.
        warmup: untimed runs per model before timing.
        number: timed runs per model per round (the round value is their median).
        min_rounds: rounds before the stopping rule is checked.
        max_rounds: rounds at most.
        tol: target relative standard error of every estimate.
        max_seconds: time cap for the rounds.
        stat: "median" (median of round values) or "p25" (their lower quartile).
        seed: seed of the round orders.
        log: called with a progress line after each round (optional).
    """
    if stat not in ("median", "p25"):
        raise ValueError("stat must be 'median' or 'p25'")
    if min(warmup, 0) < 0 or number < 1 or min_rounds < 1 or max_rounds < min_rounds:
        raise ValueError("need warmup >= 0, number >= 1 and 1 <= min_rounds <= max_rounds")
    for _, run in runners:
        for _ in range(warmup):
            run()
    rounds: list[list[float]] = [[] for _ in runners]
    order = list(range(len(runners)))
    rng = random.Random(seed)
    clock = time.perf_counter
    t0 = clock()
    stable = False
    for r in range(max_rounds):
        rng.shuffle(order)
        for m in order:
            run = runners[m][1]
            times = []
            for _ in range(number):
                a = clock()
                run()
                times.append(clock() - a)
            rounds[m].append(statistics.median(times) * 1e3)
        worst = max(_rel_se(x) for x in rounds)
        if log is not None:
            log(f"round {r + 1}: worst relative standard error {100 * worst:.2f}% (target {100 * tol:g}%)")
        if r + 1 >= min_rounds and worst <= tol:
            stable = True
            break
        if clock() - t0 > max_seconds and r + 1 >= min_rounds:
            break
    out = []
    for (name, _), xs in zip(runners, rounds):
        est = statistics.median(xs) if stat == "median" else _quantile(xs, 0.25)
        out.append(Timing(name, est, xs, stable or _rel_se(xs) <= tol))
    return out


def _read_archs(folder: str) -> list[tuple[str, str]]:
    path = os.path.join(folder, "archs.csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:2] != ["file", "arch"]:
        raise SystemExit(f"{path}: expected a header 'file,arch'")
    return [(os.path.join(folder, r[0]), r[1]) for r in rows[1:] if r]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: time the kit's models, CSV on stdout, spread on stderr."""
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description="Time the kit's ONNX models with onnxruntime; prints arch,latency_ms.")
    p.add_argument("--dir", default=here, help="kit folder holding archs.csv and the .onnx files")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs per model (default 10)")
    p.add_argument("--number", type=int, default=10, help="timed runs per model per round (default 10)")
    p.add_argument("--min-rounds", type=int, default=5, help="rounds before checking stability (default 5)")
    p.add_argument("--max-rounds", type=int, default=50, help="rounds at most (default 50)")
    p.add_argument("--tol", type=float, default=0.01, help="target relative standard error (default 0.01)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="time cap of the rounds (default 120)")
    p.add_argument("--stat", choices=["median", "p25"], default="median", help="statistic of the round values")
    args = p.parse_args(argv)

    models = _read_archs(args.dir)
    runners = []
    for path, arch in models:
        sess = make_session(path, args.threads)
        feed = random_feed(sess)
        runners.append((arch, (lambda s=sess, f=feed: s.run(None, f))))

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    timings = time_models(runners, warmup=args.warmup, number=args.number, min_rounds=args.min_rounds,
                          max_rounds=args.max_rounds, tol=args.tol, max_seconds=args.max_seconds,
                          stat=args.stat, log=log)
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["arch", "latency_ms"])
    for t in timings:
        w.writerow([t.name, f"{t.latency_ms:.6g}"])
    for (path, _), t in zip(models, timings):
        print(f"{os.path.basename(path)}: {t.latency_ms:.4g} ms, IQR {100 * t.iqr_ms / t.latency_ms:.1f}%, "
              f"CV {100 * t.cv:.1f}%, {len(t.rounds)} rounds", file=sys.stderr)
    if not all(t.stable for t in timings):
        print(f"warning: not stable to {100 * args.tol:g}% within {args.max_seconds:g} s; "
              "the machine is noisy: close other programs, or raise --max-seconds", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
