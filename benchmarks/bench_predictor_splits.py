"""Latency predictors on cross-kind device splits of the vendored tables (ten samples per device).

HELP's split mixes every kind of device into meta-training. Here the test devices' kind is absent
from meta-training: "no-GPU" meta-trains on the phones, CPUs, FPGA and ASIC (Eyeriss) and tests on
every GPU configuration; "GPU-only" meta-trains on GPUs and tests on every other device. Each
split's meta-valid devices (checkpoint choice) are of the training kinds. A test device gives only
its latencies on the space's 10 reference architectures; metrics on its band-trimmed query rows
(HELP's protocol). Methods: LatencyPredictor meta-trained on the split (``fit(devices=...,
valid_devices=...)``), the 10-sample fit on the analytic cost features alone (AnalyticFit), the
10-sample MACs fit (FlopsProxy), and NearestDevice over the split's meta-train devices.

    python benchmarks/bench_predictor_splits.py                      # both spaces, 1 seed
    python benchmarks/bench_predictor_splits.py --space fbnet --seeds 3

Writes benchmarks/results/predictor_splits.md. ``--cache DIR`` keeps the meta-trained predictors
(keyed by space, split, seed and constructor arguments) so that a rerun only re-adapts them.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import predictors  # noqa: E402
from predictors._metrics import all_metrics  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("LatencyPredictor", "AnalyticFit", "FlopsProxy", "NearestDevice")
_GPU_PREFIXES = ("1080ti", "2080ti", "titan")
_HEAD_KEYS = ("cost_head",)


def is_gpu(device: str) -> bool:
    """Whether a HELP device name is a GPU configuration."""
    return device.startswith(_GPU_PREFIXES)


def splits(space: str) -> dict[str, dict[str, list[str]]]:
    """The cross-kind splits of ``space``'s table: name -> train / valid / test device lists."""
    devs = predictors.load_latency_table(space).devices
    gpus = [d for d in devs if is_gpu(d)]
    other = [d for d in devs if not is_gpu(d)]
    valid_other = [d for d in ("pixel2", "gold_6240") if d in other]
    valid_gpu = [d for d in gpus if d.startswith("titan_rtx")]
    return {
        "no-GPU -> GPU": {"train": [d for d in other if d not in valid_other], "valid": valid_other, "test": gpus},
        "GPU-only -> others": {"train": [d for d in gpus if d not in valid_gpu], "valid": valid_gpu, "test": other},
    }


def _cache_path(cache: str | None, space: str, split: str, seed: int, params: dict) -> Path | None:
    if not cache:
        return None
    # the analytic head's settings act at adaptation only: a cached network serves them all
    net = {k: v for k, v in params.items() if k not in _HEAD_KEYS}
    key = hashlib.sha1(json.dumps([space, split, seed, net], sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache) / f"{space}_{key}.npz"


def meta_trained(space: str, split: str, devs: dict[str, list[str]], seed: int, cache: str | None):  # noqa: ANN201
    """LatencyPredictor meta-trained on the split's devices (from the cache when there)."""
    p = predictors.LatencyPredictor(space, seed=seed)
    path = _cache_path(cache, space, split, seed, {**p.get_params(), "train": devs["train"], "valid": devs["valid"]})
    if path is not None and path.exists():
        q = predictors.load_file(str(path))
        if p.cost_head and not q.has_cost_prior:  # a network saved without the head: add what fit() adds
            table = predictors.load_latency_table(space)
            q.cost_head = True
            q.fit_cost_prior(table, devs["train"])
            q.calibrate_std(table, devs["valid"])
        return q
    p.fit(devices=devs["train"], valid_devices=devs["valid"])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        p.save(str(path))
    return p


def run(space: str, seeds: list[int], cache: str | None, methods: list[str], only_cached: bool = False) -> dict:
    table = predictors.load_latency_table(space)
    table.features()
    ref = table.ref_index
    out: dict = {}
    for name, devs in splits(space).items():
        params = {**predictors.LatencyPredictor(space, seed=0).get_params(), "train": devs["train"],
                  "valid": devs["valid"]}
        if only_cached and "LatencyPredictor" in methods and not all(
                (p := _cache_path(cache, space, name, s, {**params, "seed": s})) is not None and p.exists()
                for s in seeds):
            print(f"{space} [{name}]: no cached meta-trained predictor; skipped (--only-cached)", flush=True)
            continue
        res: dict = {m: {d: [] for d in devs["test"]} for m in methods}
        for seed in seeds:
            for method in methods:
                t0 = time.perf_counter()
                if method == "LatencyPredictor":
                    p = meta_trained(space, name, devs, seed, cache)
                elif method == "AnalyticFit":
                    p = predictors.AnalyticFit(space)
                elif method == "FlopsProxy":
                    p = predictors.FlopsProxy(space)
                else:
                    p = predictors.NearestDevice(space).fit(table, devices=devs["train"])
                fit_s = time.perf_counter() - t0
                for d in devs["test"]:
                    y = table.device(d)
                    _, q = predictors.protocol_split(table, d)
                    pred = p.adapt(table.ref_archs, y[ref]).predict([table.archs[i] for i in q])
                    res[method][d].append(all_metrics(y[q], pred))
                mean = np.mean([res[method][d][-1]["spearman"] for d in devs["test"]])
                print(f"{space} [{name}] {method} seed {seed}: fit {fit_s:.0f} s, mean Spearman {mean:.4f}",
                      flush=True)
        out[name] = {"devices": devs, "results": res}
    return out


def _fmt(vals: list[float], digits: int) -> str:
    return f"{np.mean(vals):.{digits}f}" + (f" ± {np.std(vals):.{digits}f}" if len(vals) > 1 else "")


def report(all_out: dict, seeds: list[int], note: str) -> str:
    lines = ["# Latency predictors on cross-kind device splits (ten samples per device)", "",
             "Generated by `python benchmarks/bench_predictor_splits.py` "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}).",
             "", (__doc__ or "").split("\n\n")[1].replace("\n", " "), "",
             f"Seeds {seeds} (meta-training seeds of LatencyPredictor; the other methods are deterministic). "
             "Nothing was tuned on HELP's meta-test devices; the predictor's settings are the shipped defaults. "
             "'best analytic' = the better of AnalyticFit and FlopsProxy on that device. " + note, ""]
    for space, out in all_out.items():
        for name, block in out.items():
            devs, res = block["devices"], block["results"]
            lines += [f"## {space}: {name}", "",
                      f"Meta-train: {', '.join(devs['train'])}; meta-valid: {', '.join(devs['valid'])}.", ""]
            for metric, title, digits in (("spearman", "Spearman ρ", 3), ("within10", "within ±10% (%)", 1)):
                lines += [f"{title}:", "", "| device | " + " | ".join(res) + " |", "|---" * (len(res) + 1) + "|"]
                for d in devs["test"]:
                    lines.append(f"| {d} | " + " | ".join(_fmt([r[metric] for r in res[m][d]], digits)
                                                            for m in res) + " |")
                means = {m: [np.mean([res[m][d][s][metric] for d in devs["test"]])
                             for s in range(len(res[m][devs["test"][0]]))] for m in res}
                lines.append("| **mean** | " + " | ".join(f"**{_fmt(means[m], digits)}**" for m in res) + " |")
                lines.append("")
            if "LatencyPredictor" in res and "AnalyticFit" in res and "FlopsProxy" in res:
                worst = []
                for d in devs["test"]:
                    ours = np.mean([r["spearman"] for r in res["LatencyPredictor"][d]])
                    best = max(np.mean([r["spearman"] for r in res[m][d]]) for m in ("AnalyticFit", "FlopsProxy"))
                    worst.append((ours - best, d))
                gap, dev = min(worst)
                below = [d for g, d in worst if g < 0]
                lines += [f"LatencyPredictor minus the best analytic fit, per device: smallest {gap:+.3f} ({dev}); "
                          f"mean {np.mean([g for g, _ in worst]):+.3f}; devices below it: "
                          f"{', '.join(below) if below else 'none'}.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", choices=["nasbench201", "fbnet"], action="append")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--cache", default=None, help="folder keeping the meta-trained predictors")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--only-cached", action="store_true",
                    help="skip a split whose meta-trained predictor is not in --cache (no training)")
    ap.add_argument("--json", help="also dump raw results to this file")
    ap.add_argument("--note", default="", help="a sentence added to the report's header")
    ap.add_argument("--no-report", action="store_true", help="print only; do not write the results file")
    ap.add_argument("--report-only", metavar="JSON", help="rewrite the report from raw results (--json) only")
    args = ap.parse_args()
    seeds = list(range(args.seeds))
    methods = [m for m in args.methods.split(",") if m]
    if args.report_only:
        all_out = json.loads(Path(args.report_only).read_text())
    else:
        all_out = {s: run(s, seeds, args.cache, methods, args.only_cached)
                   for s in args.space or ["nasbench201", "fbnet"]}
    for space, out in all_out.items():
        for name, block in out.items():
            for m, r in block["results"].items():
                sp = np.mean([np.mean([x["spearman"] for x in r[d]]) for d in block["devices"]["test"]])
                print(f"  {space} [{name}] {m:20s} mean Spearman {sp:.4f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(all_out, default=float))
    if not args.no_report:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "predictor_splits.md").write_text(report(all_out, seeds, args.note))


if __name__ == "__main__":
    main()
