"""Does the supernet's predicted training time (``--supernet-budget``) match the real training? (issue 19)

Sizes the MAX78000 ai8x supernet's covered widths on MNIST 5k (the default data, 1x28x28) from a
time budget, measured on this machine's torch device as ``nas search --supernet-budget`` does
(``nas.supernet.size_widths``), then trains that supernet (in a fresh temporary runs folder) and
compares the predicted seconds with the real training: its total (``train_seconds``, per-epoch
validation included) and the epochs' own time (the log's seconds less the validation, which is
timed here separately). Also lists how much of the chip the covered space can use (the largest
covered network's weight bytes at 8 bits). Writes ``benchmarks/results/supernet_sizing_cpu.md``.

    .venv/bin/python benchmarks/bench_sizing.py [--budget 600] [--epochs-elastic 2] [--threads 1]
        [--device cpu] [--out benchmarks/results/supernet_sizing_cpu.md]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=600.0, help="supernet time budget, seconds (default 600)")
    ap.add_argument("--epochs-elastic", type=int, default=2, help="elastic epochs (default 2; the search's is 7)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device to measure and train on (default cpu)")
    ap.add_argument("--out", default="benchmarks/results/supernet_sizing_cpu.md")
    args = ap.parse_args()

    from devices import get_device
    from nas import load_dataset
    from nas.supernet import (
        SupernetSettings,
        covered_space,
        format_duration,
        get_supernet,
        size_widths,
    )
    from search_spaces import get_space

    data = load_dataset(None, seed=0)
    space = get_space("ai8x", input_shape=data.input_shape, num_classes=data.num_classes, bits=(2, 4, 8))
    settings = SupernetSettings(time_budget_s=args.budget, epochs_elastic=args.epochs_elastic, threads=args.threads)
    load0 = os.getloadavg()
    sizing = size_widths(space, settings, data.x_train, data.y_train, device=args.device)
    print(sizing.describe())
    sized = replace(settings, budget_width=sizing.width)
    cov = covered_space(space, sized)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as runs:
        t0 = time.perf_counter()
        sn = get_supernet(space, data, runs_dir=runs, seed=0, settings=sized, progress=lines.append)
        wall = time.perf_counter() - t0
        with (sn.path / "train_log.csv").open() as f:
            log = list(csv.DictReader(f))
        # the per-epoch validation (largest and smallest sub-network), timed on its own
        t1 = time.perf_counter()
        sn.evaluate(_big(cov), data)
        sn.evaluate(_small(cov), data)
        val_s = time.perf_counter() - t1
    load1 = os.getloadavg()
    epochs = len(log)
    train_s = float(sn.config["train_seconds"])
    steps_only = train_s - epochs * val_s
    dev = get_device("max78000")
    k = cov.kernels[-1]
    arch = {"units": [[{"width": cov.widths[-1], "kernel": k, "bits": 8}] * cov.max_depth] * cov.max_units, "fc_bits": 8}
    rep = dev.report(cov.network(arch))
    largest, capacity = rep.weight_bytes, rep.weight_capacity_bytes
    rows = "\n".join(f"| {w} | {s:.3f} | {format_duration(p)} |" for w, s, p in sizing.candidates)
    text = f"""# Supernet sizing from a time budget: predicted vs real training (MNIST 5k, MAX78000 ai8x space)

Command: `.venv/bin/python benchmarks/bench_sizing.py --budget {args.budget:g} --epochs-elastic {args.epochs_elastic} --threads {args.threads} --device {args.device}`
Machine: {platform.machine()}, {os.cpu_count()} cores, torch device `{args.device}`, torch threads {args.threads}; load average
{load0[0]:.1f} at start, {load1[0]:.1f} at end (other jobs shared the machine). Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.

- data: {data.describe()}
- settings: 1 + {args.epochs_elastic} epochs, batch {sized.batch_size}, {sized.random_subnets} random sub-networks per elastic step, schedule {sized.schedule}
- budget {format_duration(args.budget)}: chose width {sizing.width} ({sizing.stop}); measuring took {sizing.measure_s:.1f} s

| width | measured s per largest-phase step | predicted training |
|---:|---:|---:|
{rows}

smallest sub-network: {sizing.small_step_s:.3f} s per step.

## Predicted vs real (width {sizing.width}, covered widths {list(cov.widths)})

- predicted: {sizing.predicted_s:.0f} s (training steps only)
- real: {train_s:.0f} s in all ({wall:.0f} s wall including the cache write); the {epochs} per-epoch validations took
  about {epochs * val_s:.0f} s ({val_s:.1f} s each, timed separately), so the training steps took about {steps_only:.0f} s
- ratio real steps / predicted: {steps_only / sizing.predicted_s:.2f}; real total / predicted: {train_s / sizing.predicted_s:.2f}
- the largest covered network ({cov.max_units} units x {cov.max_depth} layers of {cov.widths[-1]} channels, 3x3) holds
  {largest:,} B at 8 bits: {largest / 400_000:.0%} of a 400 KB budget, {largest / capacity:.0%} of the chip's
  {capacity:,} B weight memory.
"""
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def _big(cov):
    from nas.supernet._ai8x import _largest_arch

    return _largest_arch(cov)


def _small(cov):
    from nas.supernet._ai8x import _smallest_arch

    return _smallest_arch(cov)


if __name__ == "__main__":
    main()
