"""Done-when comparison of issue 5: searched + QAT'd MAX78000 networks vs the vendor's ai85net5.

1. Builds the vendor's MNIST ``ai85net5`` from shared/specs/max78000.md (1->60, 60->60 pad 2 with
   a 2x2 max pool, 60->56, 56->12, flattening 12x4x4->10 linear; 8-bit; 70,157 cycles by the
   vendor's estimate, 1,410 us measured on the board) as a ``Network`` and trains it with exactly
   the QAT pipeline of ``nas qat`` (same data split, epochs, optimiser, seed; from scratch, as the
   vendor trains it).
2. Runs ``nas search --device max78000 --budget 400KB`` with the search's default accuracy
   estimate (recorded in the output) and, so that every winner is comparable, a latency limit
   equal to ai85net5's modelled latency (``--latency 1.40314ms``; ``--no-latency-limit`` drops it).
3. Runs ``nas qat`` on the run (top 3 by the search estimate) with the same settings.
4. Prints and writes ``benchmarks/results/qat_mnist5k.md``: float and quantised test accuracy,
   modelled latency, weights and the device check of each network, and the done-when verdicts.

    python benchmarks/bench_qat.py                  # ~10 min on one thread of a busy 2-core machine
    python benchmarks/bench_qat.py --also-proxy     # and a NASWOT-estimate search for comparison
    python benchmarks/bench_qat.py --trials 30 --epochs 6 --qat-epochs 4   # quicker
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import vendor_tool  # benchmarks/ (this script's folder)

from devices import get_device
from nas.data._data import load_dataset
from nas.qat import DEFAULT_EPOCHS, DEFAULT_QAT_EPOCHS, QatConfig, run_qat, train_network
from nas.search import SearchConfig, run_search
from search_spaces import Network

AI85NET5_BOARD_US = 1410  # MSDK mnist example README, --timer, CNN only (spec table)
AI85NET5_CYCLES = 70_157  # the vendor tool's ESTIMATED LATENCY (spec table)


def ai85net5() -> Network:
    """The vendor's MNIST ai85net5 as this benchmark's figures were measured: conv4 with a 2x2 *max*
    pool, where the vendor's network file has an average pool (benchmarks/vendor_tool.ai85net5)."""
    return vendor_tool.ai85net5("max")


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _repeat(best, res, ref, cfg, data, seeds, args, say) -> list[str]:  # noqa: ANN001
    """ai85net5 and ``best`` trained again with other QAT seeds (same split and initialisation
    source); markdown lines with per-seed and mean +- std quantised test accuracy."""
    import dataclasses

    import numpy as np

    from nas.qat import _space, _supernet_settings, used_supernet_estimate

    space = _space(res.settings)
    used = used_supernet_estimate(res.settings)
    ref_acc, win_acc = [ref["quant_test_acc"]], [best.quant_test_acc]
    for s in seeds:
        c = dataclasses.replace(cfg, seed=s)
        _, f = train_network(ai85net5(), data, c, space=None, seed=s, name="ai85net5")
        ref_acc.append(f["quant_test_acc"])
        _, f = train_network(best.arch, data, c, space=space, seed=s, runs_dir=res.run_dir.parent, name=best.name,
                             search_used_supernet=used, supernet_seed=args.seed,
                             supernet_settings=_supernet_settings(res.settings) if used else None)
        win_acc.append(f["quant_test_acc"])
        say(f"seed {s}: ai85net5 {_pct(ref_acc[-1])}, {best.name} {_pct(win_acc[-1])}")
    all_seeds = [args.seed, *seeds]
    ra, wa = np.array(ref_acc), np.array(win_acc)
    lines = [
        f"Seed-to-seed spread (QAT seeds {all_seeds}: initialisation and batch order; same data split, same "
        f"settings): ai85net5 and {best.name}, the winner with the best quantised validation accuracy "
        f"({_pct(best.quant_val_acc)}), trained again:",
        "",
        "| QAT seed | ai85net5 quantised test acc | " + best.name + " quantised test acc |",
        "|---|---|---|",
    ]
    lines += [f"| {s} | {_pct(a)} | {_pct(b)} |" for s, a, b in zip(all_seeds, ref_acc, win_acc)]
    lines += [f"| mean ± std | {_pct(ra.mean())} ± {100 * ra.std(ddof=1):.2f} | {_pct(wa.mean())} ± "
              f"{100 * wa.std(ddof=1):.2f} |", "",
              f"- on the mean over {len(all_seeds)} seeds, {best.name} ({best.device['latency_ms']:.3f} ms) "
              f"{'matches or beats' if wa.mean() >= ra.mean() else 'is below'} ai85net5 "
              f"({100 * (wa.mean() - ra.mean()):+.2f} points); one seed's test accuracy moves by "
              f"{100 * max(ra.max() - ra.min(), wa.max() - wa.min()):.1f} points between seeds here", ""]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    ap.add_argument("--qat-epochs", type=int, default=DEFAULT_QAT_EPOCHS)
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-dir", default="/tmp/nas-bench-qat", help="runs directory (the supernet cache goes there)")
    ap.add_argument("--no-latency-limit", action="store_true", help="search at 400KB without ai85net5's latency")
    ap.add_argument("--accuracy", default=None, choices=["supernet", "proxy", "short-qat"],
                    help="the search's accuracy estimate (default: nas search's default)")
    ap.add_argument("--bits", type=int, nargs="+", choices=[1, 2, 4, 8],
                    help="restrict the searched weight bit widths (ai8x space option; default: nas search's auto rule)")
    ap.add_argument("--augment", default="none", choices=["none", "vendor"],
                    help="training-image augmentation of every network's QAT (nas qat --augment; default none)")
    ap.add_argument("--repeat-seeds", default="1,2",
                    help="QAT seeds (comma-separated; '' for none) with which ai85net5 and the winner with the best "
                    "quantised validation accuracy are trained again, to report the seed-to-seed spread (default 1,2)")
    ap.add_argument("--also-proxy", action="store_true",
                    help="also search with --accuracy proxy (NASWOT) and QAT its winners, for comparison")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "qat_mnist5k.md"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    try:
        repeat_seeds = [int(t) for t in args.repeat_seeds.split(",") if t.strip()]
    except ValueError:
        ap.error(f"--repeat-seeds {args.repeat_seeds!r}: give integers separated by commas")
    seeds_lines: list[str] = []
    t_all = time.perf_counter()
    load0 = os.getloadavg()
    data = load_dataset(None, seed=args.seed)
    dev = get_device("max78000")
    ref_net = ai85net5()
    ref_rep = dev.report(ref_net)
    assert ref_rep.cycles == AI85NET5_CYCLES, ref_rep.cycles
    cfg = QatConfig(top=args.top, epochs=args.epochs, qat_epochs=args.qat_epochs, seed=args.seed, augment=args.augment)

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t_all:7.1f} s] {msg}", flush=True)

    say(f"ai85net5: {ref_rep.cycles:,} cycles = {ref_rep.latency_ms:.3f} ms, {ref_rep.weight_bytes:,} B; training")
    _, ref = train_network(ref_net, data, cfg, space=None, seed=args.seed, name="ai85net5")
    say(f"ai85net5: float {_pct(ref['float_test_acc'])}, quantised {_pct(ref['quant_test_acc'])} "
        f"({ref['seconds']:.0f} s)")

    latency = None if args.no_latency_limit else ref_rep.latency_ms
    ref_row = ("ai85net5 (vendor, trained here)", "vendor layer table", ref["float_test_acc"], ref["quant_test_acc"],
               ref_rep.latency_ms, ref_rep.weight_bytes, ref_rep.fits, "scratch")
    sections: list[str] = []
    verdicts: list[str] = []
    for acc in [args.accuracy] + (["proxy"] if args.also_proxy and args.accuracy != "proxy" else []):
        name = "bench-qat-400KB" + ("" if latency is None else "-ai85net5-latency") + (f"-{acc}" if acc else "") \
            + ("-bits" + "".join(map(str, args.bits)) if args.bits else "")
        extra: dict = {} if acc is None else {"estimator": acc.replace("-", "_")}
        if args.bits:
            extra["space_options"] = {"bits": sorted(args.bits)}
        scfg = SearchConfig(device="max78000", budget_bytes=400_000, budget_text="400KB", latency_ms=latency,
                            trials=args.trials, seed=args.seed, runs_dir=Path(args.runs_dir), name=name, **extra)
        t0 = time.perf_counter()
        res = run_search(scfg)
        t_search = time.perf_counter() - t0
        est = res.settings["estimator"]
        say(f"search {res.name}: {res.n_complete} trials ({res.n_new} new, {t_search:.0f} s), {res.n_feasible} "
            f"feasible, front {len(res.pareto)}; estimate {res.metric} ({est.get('estimator')})")
        t0 = time.perf_counter()
        q = run_qat(res.run_dir, cfg, runs_dir=args.runs_dir,
                    progress=lambda p: p.epoch == p.epochs and say(
                        f"  {p.network} {p.phase} done, val {_pct(p.val_acc or 0)}"))
        t_qat = time.perf_counter() - t0
        say(f"qat: {len(q.networks)} networks in {t_qat:.0f} s")
        if acc == args.accuracy and repeat_seeds:
            best = max(q.networks, key=lambda n: (n.quant_val_acc, -n.device["latency_ms"]))
            seeds_lines = _repeat(best, res, ref, cfg, data, repeat_seeds, args, say)
        rows = [ref_row]
        for n in q.networks:
            rows.append((n.name, n.arch, n.float_test_acc, n.quant_test_acc, n.device["latency_ms"],
                         n.device["weight_bytes"], n.device["fits"], n.init.split(" (")[0]))
        within = all(abs(r[3] - r[2]) <= 0.01 for r in rows[1:])
        all_pass = all(r[6] for r in rows[1:])
        beats = [r for r in rows[1:] if r[3] >= ref["quant_test_acc"] and r[4] <= ref_rep.latency_ms]
        label = "the default accuracy estimate" if acc is None else f"--accuracy {acc}"
        cover = ""
        if res.settings.get("bits_auto"):
            cover += f"; weight bits searched: {res.settings['bits_auto']}"
        if est.get("estimator") == "supernet":
            sp = res.settings.get("supernet") or {}
            cover += f" (supernet cache `{sp}`)" if sp else ""
        lines = [
            f"## Search with {label}: {res.metric}",
            "",
            "- `nas search --device max78000 --budget 400KB" + (f" --latency {latency:.5f}ms" if latency else "")
            + f" --trials {args.trials} --seed {args.seed}" + (f" --accuracy {acc}" if acc else "") + "`"
            + (f" over the ai8x space restricted to {'/'.join(map(str, sorted(args.bits)))}-bit weights (space option "
               "`bits`)" if args.bits else "") + ": "
            f"estimate **{res.metric}** (`{est.get('estimator')}`){cover}; {res.n_complete} trials, {res.n_feasible} "
            f"feasible, {len(res.pareto)} on the front ({len({r['arch'] for r in res.pareto})} distinct); search "
            f"{t_search:.0f} s" + (f" ({res.n_new} new trials; the others resumed from an earlier run of this command "
                                   "in the same runs directory)" if res.n_new < res.n_complete else "")
            + f", QAT {t_qat:.0f} s",
            "",
            "| network | arch | float test acc | quantised test acc | delta (points) | latency ms (model) | weights B "
            "| device check | init |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lat = f"{r[4]:.3f}" + (f" (board {AI85NET5_BOARD_US / 1000:.2f})" if r is ref_row else "")
            lines.append(f"| {r[0]} | `{r[1]}` | {_pct(r[2])} | {_pct(r[3])} | {100 * (r[3] - r[2]):+.2f} | {lat} | "
                         f"{r[5]:,} | {'pass' if r[6] else 'FAIL'} | {r[7]} |")
        lines += [
            "",
            f"Done-when with {label}:",
            f"- quantised within 1 point of float for every winner: **{'yes' if within else 'no'}** "
            f"({', '.join(f'{100 * (r[3] - r[2]):+.2f}' for r in rows[1:])})",
            f"- every winner passes the device check: **{'yes' if all_pass else 'no'}**",
            f"- a winner matches or beats ai85net5's quantised accuracy ({_pct(ref['quant_test_acc'])}) at equal or "
            f"lower latency: **{'yes: ' + ', '.join(r[0] for r in beats) if beats else 'no'}**",
            "",
        ]
        sections += lines
        if acc == args.accuracy and repeat_seeds:
            sections += seeds_lines
        verdicts.append(f"{label}: {'beats' if beats else 'does not beat'} ai85net5")
    lines = [
        "# QAT of MAX78000 search winners vs the vendor's ai85net5 (MNIST, 5k subset)",
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC with `python benchmarks/bench_qat.py"
        + "".join(f" {a}" for a in sys.argv[1:]) + f"` on {platform.machine()} ({os.cpu_count()} CPUs, 1 torch "
        f"thread; load average {load0[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end, the machine shared "
        f"with other jobs); total {time.perf_counter() - t_all:.0f} s.",
        "",
        f"- data: {data.describe()}, split seed {args.seed}; accuracy is on the 1,000-image test split, scored once "
        "after training; every choice (best epoch) is made on the validation split",
        f"- ai85net5: built from the vendor's layer table (shared/specs/max78000.md), trained here from scratch "
        f"({ref['seconds']:.0f} s) with the same pipeline as the winners",
        f"- QAT (the same for every network, `nas qat` defaults): {cfg.epochs} float epochs (Adam {cfg.lr:g}, cosine), "
        f"BatchNorm folded, {cfg.qat_epochs} QAT epochs (Adam {cfg.qat_lr:g}; the first "
        f"{min(cfg.anneal_epochs, cfg.qat_epochs - 1)} anneal float -> quantised weights) in the vendor's arithmetic; "
        f"batch {cfg.batch_size}; best validation epoch kept per phase; training-image augmentation "
        + ("ai8x-training's MNIST recipe (`--augment vendor`)" if cfg.augment == "vendor" else "none")
        + f"; winners: the top {args.top} distinct feasible Pareto architectures by the search estimate, each "
        "fine-tuned from the supernet's weights and from scratch, the start with the higher float validation "
        "accuracy kept (`nas qat` init auto)",
        "- latency: the vendor's cycle model at 50 MHz (ai85net5: "
        f"{ref_rep.cycles:,} cycles = {ref_rep.latency_ms:.3f} ms modelled, {AI85NET5_BOARD_US / 1000:.2f} ms measured "
        "on the board)"
        + ("; the search's latency limit is ai85net5's modelled latency, so every winner runs at equal or lower "
           "latency" if latency else ""),
        "- verdict: " + "; ".join(verdicts),
        "",
        *sections,
    ]
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
