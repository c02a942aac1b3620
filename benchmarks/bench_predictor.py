"""Latency-predictor benchmark: HELP's splits and query protocol with TEN samples per device.

For each meta-test device the only measurements given to a predictor are the latencies of the
space's 10 reference architectures (they form the hardware embedding *and* the adaptation set;
HELP uses 10 more). Metrics on the device's band-trimmed 800 query architectures: Spearman,
Kendall tau, MAPE and the share within +-10% of the measured latency. Seeds 0..4 are the
meta-training seeds of the learned methods (the samples are fixed: the 10 references) and the
optimiser-restart seed of the GP baseline; seed 0 of LatencyPredictor is the shipped predictor
(reproduced by ``nas predictor train --space <space>``), seeds 1..4 are trained here.

    python benchmarks/bench_predictor.py                  # all spaces, meta-test, 5 seeds
    python benchmarks/bench_predictor.py --space fbnet --split valid --seeds 1   # development

Writes benchmarks/results/predictor_<space>.md (only for --split test).
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
from search_spaces import get_space  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("LatencyPredictor", "MetaSGD", "MAML", "NearestDevice", "SampleGP", "AnalyticFit", "FlopsProxy")
CACHE: str | None = None  # --cache: folder keeping meta-trained LatencyPredictors of seeds > 0
# HELP's published Spearman (HELP README; 10 reference + 10 adaptation samples = 20).
HELP_ROW = {
    "nasbench201": {"titan_rtx_256": 0.987, "gold_6226": 0.989, "pixel2": 0.802, "raspi4": 0.890,
                    "eyeriss": 0.940, "fpga": 0.985, "mean": 0.932},
    "fbnet": {"raspi4": 0.887, "eyeriss": 0.943, "fpga": 0.892, "mean": 0.910},
    "ofa_mbv3": {},
}


def cache_path(space: str, seed: int, params: dict) -> Path | None:
    """Where ``--cache`` keeps a meta-trained predictor (the analytic head's switch is not part of
    the key: it acts at adaptation, and its prior is fitted without training)."""
    if not CACHE:
        return None
    net = {k: v for k, v in params.items() if k != "cost_head"}
    key = hashlib.sha1(json.dumps([space, "help", seed, net], sort_keys=True).encode()).hexdigest()[:12]
    return Path(CACHE) / f"{space}_{key}.npz"


def make(method: str, space: str, seed: int):  # noqa: ANN201
    """A fitted (meta-trained) predictor of ``method``."""
    if method == "LatencyPredictor":
        default = predictors.LatencyPredictor(space, seed=seed).get_params()
        if seed == 0 and space in predictors.list_pretrained():
            shipped = predictors.load(space)  # `nas predictor train --space <space>` (seed 0) made it
            if shipped.get_params() == default:
                return shipped
        path = cache_path(space, seed, default)
        if path is not None and path.exists():
            p = predictors.load_file(str(path))
            if default.get("cost_head") and not p.cost_head:  # a network saved before the analytic head
                table = predictors.load_latency_table(space)
                p.cost_head = True
                p.fit_cost_prior(table, p.meta_train_devices_)
                p.calibrate_std(table, p.meta_valid_devices_)
            return p
        p = predictors.LatencyPredictor(space, seed=seed).fit()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            p.save(str(path))
        return p
    if method == "LatencyPredictor (no GP head)":
        return predictors.LatencyPredictor(space, seed=seed, adapt_head="none").fit()
    if method == "MetaSGD":
        return predictors.MetaSGD(space, seed=seed).fit()
    if method == "MAML":
        return predictors.MetaSGD(space, seed=seed, learn_lr=False).fit()
    if method == "NearestDevice":
        return predictors.NearestDevice(space).fit()
    if method == "SampleGP":
        return predictors.SampleGP(space, seed=seed)
    if method == "FlopsProxy":
        return predictors.FlopsProxy(space)
    if method == "AnalyticFit":
        return predictors.AnalyticFit(space)
    raise ValueError(method)


def run(space: str, split: str, seeds: list[int], methods: list[str]) -> dict:
    table = predictors.load_latency_table(space)
    devices = table.splits["meta_test" if split == "test" else "meta_valid"]
    table.features()  # encode once up front
    ref = table.ref_index
    res: dict = {m: {d: [] for d in devices} for m in methods}
    times: dict = {}
    chosen: dict = {}
    for method in methods:
        for seed in seeds:
            t0 = time.perf_counter()
            p = make(method, space, seed)
            fit_s = time.perf_counter() - t0
            for d in devices:
                y = table.device(d)
                _, q = predictors.protocol_split(table, d)
                qd = p.adapt(table.ref_archs, y[ref])
                pred = qd.predict([table.archs[i] for i in q])
                weights = getattr(qd, "cost_weights_", None)
                if method == "LatencyPredictor" and seed == seeds[0] and weights is not None:
                    chosen[d] = ", ".join(f"{k} {v:.2f}" for k, v in weights.items())
                res[method][d].append(all_metrics(y[q], pred))
            if fit_s > 1.0 or method not in times:
                times.setdefault(method, {})["fit_s"] = fit_s
            print(f"{space} {method} seed {seed}: fit {fit_s:.1f}s, mean Spearman "
                  f"{np.mean([res[method][d][-1]['spearman'] for d in devices]):.4f}", flush=True)
    return {"results": res, "times": times, "devices": devices, "chosen": chosen}


def timing(space: str, n: int = 100_000) -> dict:
    """Seconds to adapt (median of 5) and to predict ``n`` random architectures (best of 5: on a
    shared machine the fastest run is the one least slowed by other jobs)."""
    table = predictors.load_latency_table(space)
    p = predictors.load(space)
    y = table.device(table.splits["meta_test"][0])[table.ref_index]
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        q = p.adapt(table.ref_archs, y)
        ts.append(time.perf_counter() - t0)
    sp = get_space(space)
    rng = np.random.default_rng(0)
    archs = [sp.random_arch(rng) for _ in range(n)]
    if space == "nasbench201":
        archs = [table.archs[i] for i in rng.integers(0, len(table.archs), n)]  # all 15,625 exist
    tp, cp, tps, cps = [], [], [], []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        out = q.predict(archs)
        tp.append(time.perf_counter() - t0)
        cp.append(time.process_time() - c0)
    assert out.shape == (n,)
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        q.predict(archs, return_std=True)
        tps.append(time.perf_counter() - t0)
        cps.append(time.process_time() - c0)
    from threadpoolctl import threadpool_limits

    one, one_std = [], []
    with threadpool_limits(1):  # one thread: robust to other jobs on the shared cores
        for _ in range(5):
            t0 = time.perf_counter()
            q.predict(archs)
            one.append(time.perf_counter() - t0)
        for _ in range(5):
            t0 = time.perf_counter()
            q.predict(archs, return_std=True)
            one_std.append(time.perf_counter() - t0)
    return {"load_avg_1min": os.getloadavg()[0], "cpus": os.cpu_count(),
            "predict_1t_s": float(np.min(one)), "predict_std_1t_s": float(np.min(one_std)),
            "adapt_s": float(np.median(ts)), "predict_s": float(np.min(tp)),
            "predict_std_s": float(np.min(tps)), "predict_cpu_s": float(cp[int(np.argmin(tp))]),
            "predict_std_cpu_s": float(cps[int(np.argmin(tps))]), "n": n}


def fmt(vals: list[float], digits: int = 3) -> str:
    return f"{np.mean(vals):.{digits}f} ± {np.std(vals):.{digits}f}"


def report(space: str, out: dict, tm: dict, seeds: list[int]) -> str:
    devices = out["devices"]
    res = out["results"]
    lines = [f"# Latency predictor benchmark: {space}", "",
             "Generated by `python benchmarks/bench_predictor.py` "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}).", "",
             "Protocol: HELP's device splits; query = each meta-test device's rows "
             f"[{predictors.load_latency_table(space).n_train_pool}, +1000) trimmed to its 10-90% latency band "
             "(800 archs). **Ten samples per device in total**: the 10 reference architectures give both the "
             "hardware embedding and the adaptation (HELP's published row used 20); every method gets the same "
             "ten (HELP's reference architectures). "
             f"Mean ± std over seeds {seeds} (meta-training seeds of the learned methods; GP restarts seed). "
             "Nothing was tuned on these devices (model selection used the meta-valid devices).", "",
             "Data seen by each method: LatencyPredictor meta-trains on the meta-train devices' rows except "
             "HELP's query rows (NAS-Bench-201: 14,625 architectures per device; FBNet/OFA: the 4,000-row train "
             "pool); MetaSGD and MAML (HELP-style, no hardware embedding, 2 inner steps) use the train pool as "
             "HELP did; NearestDevice looks up the chosen meta-train device's measured latencies of the query "
             "architectures; SampleGP, AnalyticFit (the analytic cost features alone) and FlopsProxy see only the 10 "
             "samples.", ""]
    params = predictors.LatencyPredictor(space).get_params()
    lines += ["LatencyPredictor settings for this space (`predictors._model.SPACE_DEFAULTS`, chosen on the "
              f"meta-valid devices): closed-form head features `{params['gp_features']}` "
              "(`h`: last hidden layer; `hc`: plus standardised log-MACs and log-params), "
              f"share of synthetic mixture devices per meta-training batch {params['mix_devices']}, "
              + _basis_text(params) + " " + _cost_text(params, out), ""]
    if out.get("note"):
        lines += [out["note"], ""]
    help_row = HELP_ROW.get(space, {})
    for metric, title, digits in (("spearman", "Spearman ρ", 3), ("kendall", "Kendall τ", 3),
                                  ("mape", "MAPE (%)", 1), ("within10", "within ±10% (%)", 1)):
        lines += [f"## {title}", "", "| method | " + " | ".join(devices) + " | mean |",
                  "|---" * (len(devices) + 2) + "|"]
        for m in res:
            cells = []
            per_seed_mean = np.mean([[r[metric] for r in res[m][d]] for d in devices], 0)
            for d in devices:
                cells.append(fmt([r[metric] for r in res[m][d]], digits))
            cells.append(f"**{fmt(list(per_seed_mean), digits)}**")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        if metric == "spearman" and help_row:
            lines.append("| HELP (published, 20 samples) | " + " | ".join(
                f"{help_row[d]:.3f}" if d in help_row else "–" for d in devices) + f" | {help_row['mean']:.3f} |")
        lines.append("")
    table = predictors.load_latency_table(space)
    fine = [d for d in devices if not np.all(table.device(d) == np.round(table.device(d)))]
    if fine:
        lines += [f"Devices whose latencies are not whole milliseconds: {', '.join(fine)}. "
                  "Mean share within ±10% on them: " + "; ".join(
                      f"{m} {np.mean([np.mean([r['within10'] for r in res[m][d]]) for d in fine]):.1f}%"
                      for m in res) + ".", ""]
    lines += timing_lines(tm) + ["- meta-training time per seed: " + ", ".join(
        f"{m} {out['times'][m]['fit_s']:.0f} s" for m in res), ""]
    return "\n".join(lines)


def timing_lines(tm: dict) -> list[str]:
    """The report's timing section (without the meta-training times)."""
    return ["## Time (shipped predictor, this machine)", "",
            f"Machine: {tm['cpus']} CPU cores shared with other jobs; 1-minute load average "
            f"{tm['load_avg_1min']:.1f} when timed (a load above the core count slows these figures); "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}.", "",
            f"- adapt to a device from 10 samples: {tm['adapt_s'] * 1000:.1f} ms (median of 5)",
            f"- predict {tm['n']:,} architectures (from their arch values, encoding included): "
            f"{tm['predict_s']:.3f} s; with return_std: {tm['predict_std_s']:.3f} s (best of 5, wall clock; "
            f"process CPU time of those runs {tm.get('predict_cpu_s', float('nan')):.3f} s and "
            f"{tm.get('predict_std_cpu_s', float('nan')):.3f} s)",
            f"- the same on one thread (best of 5): {tm.get('predict_1t_s', float('nan')):.3f} s; with return_std: "
            f"{tm.get('predict_std_1t_s', float('nan')):.3f} s"]


def retime(space: str) -> None:
    """Re-measure the timing section of an existing report; the accuracy tables are kept."""
    path = RESULTS / f"predictor_{space}.md"
    text = path.read_text()
    head, tail = text.split("## Time (shipped predictor, this machine)", 1)
    train = [ln for ln in tail.splitlines() if ln.startswith("- meta-training time per seed")]
    tm = timing(space)
    print(f"  timing: {tm}", flush=True)
    note = (f"Timing re-measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (`--retime`) with the "
            "current inference code; the accuracy tables above are from the run named at the top (the code "
            "changes since then do not change this space's predictions beyond float rounding).")
    path.write_text(head + "\n".join(timing_lines(tm) + train + ["", note, ""]))


def _cost_text(params: dict, out: dict) -> str:
    """How the predictor uses the analytic cost head, and its weights per device (seed 0)."""
    if not params.get("cost_head"):
        return "Analytic cost head off."
    text = ("Analytic cost head on: the prediction averages the network and three linear fits on the analytic "
            "features (meta-learned prior, isotropic prior, log-MACs/-params), weighted by the ten samples' "
            "marginal likelihood.")
    chosen = out.get("chosen", {})
    if chosen:
        text += " Weights per device (seed 0): " + "; ".join(f"{d} {c}" for d, c in chosen.items()) + "."
    return text


def _basis_text(params: dict) -> str:
    """How the predictor uses its device-mixture basis, one sentence."""
    if not params["device_basis"]:
        return "device-mixture basis off."
    what = ("per meta-train device a ridge model of its log-latency, linear in the architecture features; ")
    if params.get("basis_fit", "gp") == "nnls":
        return ("device-mixture basis on, in the prior mean (" + what + "each member's prior mean is a "
                "non-negative combination of its own prediction and these columns plus a constant, fitted to the "
                "ten samples by non-negative least squares; the closed-form head fits the residuals).")
    return ("device-mixture basis on, in the head (" + what + "prior scale chosen per device by the ten "
            "samples' marginal likelihood).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", choices=list(predictors.SPACES), action="append")
    ap.add_argument("--split", choices=["test", "valid"], default="test")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--cache", help="folder keeping the meta-trained LatencyPredictors of seeds > 0 "
                    "(reused by a rerun)")
    ap.add_argument("--json", help="also dump raw results to this file ({space} is replaced)")
    ap.add_argument("--merge", help="raw results (--json of an earlier run, {space} replaced) whose "
                    "methods not rerun now are added to the report")
    ap.add_argument("--note", default="", help="a paragraph added to the report (e.g. why fewer seeds)")
    ap.add_argument("--retime", action="store_true",
                    help="only re-measure the timing section of the existing reports")
    ap.add_argument("--report-only", metavar="JSON",
                    help="rewrite the report from raw results ({space} replaced) without rerunning "
                         "(timings are measured again)")
    args = ap.parse_args()
    seeds = list(range(args.seeds))
    global CACHE
    CACHE = args.cache
    if args.retime:
        for space in args.space or list(predictors.SPACES):
            retime(space)
        return
    if args.report_only:
        for space in args.space or list(predictors.SPACES):
            out = json.loads(Path(args.report_only.format(space=space)).read_text())
            n = len(next(iter(next(iter(out["results"].values())).values())))
            tm = timing(space)
            print(f"  timing: {tm}", flush=True)
            (RESULTS / f"predictor_{space}.md").write_text(report(space, out, tm, list(range(n))))
        return
    methods = [m for m in args.methods.split(",") if m]
    for space in args.space or list(predictors.SPACES):
        out = run(space, args.split, seeds, methods)
        if args.merge and Path(args.merge.format(space=space)).exists():
            old = json.loads(Path(args.merge.format(space=space)).read_text())
            for m in METHODS:
                if m in old["results"] and m not in out["results"]:
                    out["results"][m] = old["results"][m]
                    out["times"][m] = old["times"][m]
            out["results"] = {m: out["results"][m] for m in METHODS if m in out["results"]}
        for m in out["results"]:
            sp = [np.mean([r["spearman"] for r in out["results"][m][d]]) for d in out["devices"]]
            w = [np.mean([r["within10"] for r in out["results"][m][d]]) for d in out["devices"]]
            print(f"  {space} [{args.split}] {m:32s} spearman " + " ".join(f"{v:.3f}" for v in sp)
                  + f" | mean {np.mean(sp):.4f} | within10 mean {np.mean(w):.1f}", flush=True)
        out["note"] = args.note
        if args.json:
            Path(args.json.format(space=space)).write_text(json.dumps(out, default=float))
        if args.split == "test":
            tm = timing(space)
            print(f"  timing: {tm}", flush=True)
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"predictor_{space}.md").write_text(report(space, out, tm, seeds))


if __name__ == "__main__":
    main()
