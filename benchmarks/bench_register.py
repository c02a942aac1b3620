"""Journey 2 end to end on this machine, scored against fresh measurements.

Steps, as a new user takes them (the CLI in subprocesses, a private $NAS_HOME):

1. ``nas device kit --space SPACE --out KIT``;
2. ``python KIT/measure.py > samples.csv`` (the kit's standalone timing script);
3. ``nas device register bench-host --space SPACE --samples samples.csv``;
4. ``nas predict --device bench-host --space SPACE --archs other.txt --json`` on N other random
   architectures of the space;
5. fresh measurements of those N on this machine (``devices.measure_archs``: the method of
   ``host-cpu`` and of measure.py, ONNX + onnxruntime, 1 thread).

Prints the Spearman rank correlation of predicted vs fresh latency, the share of predictions
within +-10% of the fresh value, the median absolute error and the median ratio (a level offset
between the two measuring sessions shows there), plus two references computed on the same
architectures: the total-MACs proxy's Spearman, and the predictor's uncertainty calibration
(share of fresh values within the predicted +-1 std). The 10 reference architectures are
timed again in the fresh session: their fresh/kit ratio is the drift of this machine's speed
between the two sessions, and the +-10% share is also given with that level removed.

    python benchmarks/bench_register.py [--space fbnet] [--n 200] [--seed 0] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr


def _run(cmd: list[str], env: dict[str, str], stdout: Path | None = None) -> str:
    t0 = time.perf_counter()
    if stdout is None:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        out = res.stdout
    else:
        with open(stdout, "w") as f:
            res = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.PIPE, text=True)
        out = ""
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    print(f"  $ {' '.join(Path(c).name if os.sep in c else c for c in cmd)}   "
          f"[{time.perf_counter() - t0:.1f} s]", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="fbnet", choices=["fbnet", "nasbench201"])
    p.add_argument("--n", type=int, default=200, help="other architectures to predict and measure")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=60.0, help="time cap per timing session / chunk")
    p.add_argument("--json-out", help="write the figures as JSON to this file")
    args = p.parse_args(argv)

    import devices
    import predictors
    from search_spaces import get_space

    space = get_space(args.space)
    refs = {space.format(a) for a in predictors.load(args.space).ref_archs_}
    rng = np.random.default_rng(args.seed)
    others: list[str] = []
    while len(others) < args.n:
        a = space.random_arch(rng)
        if a not in refs and a not in others:
            others.append(a)

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-register-") as tmp:
        tmpd = Path(tmp)
        env = {**os.environ, "NAS_HOME": str(tmpd / "home")}
        nas = [sys.executable, "-m", "nas"]
        print(f"journey 2 on this machine ({devices.cpu_name()}), space {args.space}, {args.n} other archs")
        _run(nas + ["device", "kit", "--space", args.space, "--out", str(tmpd / "kit")], env)
        _run([sys.executable, str(tmpd / "kit" / "measure.py"), "--max-seconds", str(args.max_seconds)],
             env, stdout=tmpd / "samples.csv")
        reg = _run(nas + ["device", "register", "bench-host", "--space", args.space,
                          "--samples", str(tmpd / "samples.csv"), "--json"], env)
        loo = json.loads(reg)["loo"]
        (tmpd / "other.txt").write_text("\n".join(others) + "\n")
        rows = json.loads(_run(nas + ["predict", "--device", "bench-host", "--space", args.space,
                                      "--archs", str(tmpd / "other.txt"), "--json"], env))
        t_user = time.perf_counter() - t_start
        pred = np.array([r["latency_ms"] for r in rows])
        std = np.array([r["std_ms"] for r in rows])
        assert [r["arch"] for r in rows] == others

        kit_refs = dict(csv.reader((tmpd / "samples.csv").read_text().splitlines()[1:]))
        print(f"  fresh measurement of the 10 references and the {args.n} architectures on this machine ...",
              flush=True)
        t0 = time.perf_counter()
        ref_list = list(kit_refs)
        timings = devices.measure_archs(
            args.space, ref_list + others, max_seconds=args.max_seconds,
            log=lambda line: print(f"    {line}", flush=True) if line.startswith("timing") else None)
        t_meas = time.perf_counter() - t0
    ref_fresh = np.array([t.latency_ms for t in timings[:len(ref_list)]])
    drift = float(np.exp(np.median(np.log(ref_fresh / np.array([float(kit_refs[a]) for a in ref_list])))))
    timings = timings[len(ref_list):]
    fresh = np.array([t.latency_ms for t in timings])
    spread = np.array([t.iqr_ms / t.latency_ms for t in timings])

    rel = pred / fresh - 1
    macs = space.encode_many(others)[:, 361] if args.space == "fbnet" else space.encode_many(others)[:, 42]
    figures = {
        "space": args.space,
        "n": args.n,
        "seed": args.seed,
        "cpu": devices.cpu_name(),
        "spearman": float(spearmanr(pred, fresh)[0]),
        "kendall": float(kendalltau(pred, fresh)[0]),
        "within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
        "median_abs_error": float(np.median(np.abs(rel))),
        "median_ratio_pred_over_fresh": float(np.median(pred / fresh)),
        "within_1std": float(np.mean(np.abs(pred - fresh) <= std)),
        "macs_proxy_spearman": float(spearmanr(macs, fresh)[0]),
        "session_drift_fresh_over_kit": drift,
        "within_10pct_drift_removed": float(np.mean(np.abs(pred * drift / fresh - 1) <= 0.10)),
        "loo_median_abs_error": loo["median_abs_error"],
        "loo_max_abs_error": loo["max_abs_error"],
        "fresh_median_iqr_over_median": float(np.median(spread)),
        "user_seconds": t_user,
        "fresh_measure_seconds": t_meas,
    }
    print()
    print(f"registration: leave-one-out error median {100 * loo['median_abs_error']:.1f}%, "
          f"max {100 * loo['max_abs_error']:.1f}% (over {loo['n']} samples)")
    print(f"prediction vs fresh measurement of {args.n} other {args.space} architectures:")
    print(f"  Spearman {figures['spearman']:.3f}   Kendall {figures['kendall']:.3f}")
    print(f"  within +-10%: {100 * figures['within_10pct']:.1f}%   median |error| "
          f"{100 * figures['median_abs_error']:.1f}%   median predicted/fresh {figures['median_ratio_pred_over_fresh']:.3f}")
    print(f"  fresh within predicted +-1 std: {100 * figures['within_1std']:.1f}%")
    print(f"  session drift: the 10 references re-timed with the {args.n} others at {drift:.3f} x their kit timings; "
          f"with that level removed, within +-10%: {100 * figures['within_10pct_drift_removed']:.1f}%")
    print(f"  reference: total-MACs proxy Spearman {figures['macs_proxy_spearman']:.3f}")
    print(f"  fresh timings: median round-to-round IQR {100 * figures['fresh_median_iqr_over_median']:.1f}% "
          f"of the value; user steps {t_user:.0f} s, fresh measuring {t_meas:.0f} s")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
