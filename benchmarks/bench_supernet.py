"""Does the supernet rank sub-networks as stand-alone training does? (issue 5)

Draws ~10 diverse ai8x networks (fixed seed) that fit the MAX78000 at a 400 KB weight budget,
spanning weight bit widths, within the widths the default supernet covers; trains each from
scratch (float, then BatchNorm folded and QAT in the vendor's arithmetic as ``nas qat``: same
data, same epochs, same seed for all) and scores its validation accuracy in the chip's integer
arithmetic; compares with the supernet estimate ``val_acc_supernet`` (the
default of ``nas search``, trained or loaded from ``--runs-dir``) by Kendall tau and Spearman
rho (``scipy.stats``, with p-values), on the drawn networks and with 5 fixed deeper/wider ones
added (``EXTRA``: 3-4 units, up to 7 layers, 32 wide, so depth is represented), both for the
default estimate (inherited weights + ``finetune_steps`` Adam steps) and for the inherited
weights alone (``finetune_steps=0``). Also scores one architecture at 8/4/2/1-bit hidden layers
both ways. Prints the tables and writes ``benchmarks/results/supernet_mnist5k.md``.

    .venv/bin/python benchmarks/bench_supernet.py [--n 10] [--float-epochs 2] [--qat-epochs 1]
        [--runs-dir runs] [--threads 1] [--out benchmarks/results/supernet_mnist5k.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np


def _train_standalone(space, arch, data, float_epochs: int, qat_epochs: int, seed: int) -> tuple[float, float]:
    """Train ``space.build(arch)`` from scratch: float epochs, then BatchNorm folded and QAT
    epochs in the vendor's arithmetic as ``nas qat`` does (Adam, cosine over all epochs, batch
    32); returns (validation accuracy in the chip's integer arithmetic, seconds)."""
    import torch
    from torch.nn import functional as F

    from nas.supernet import accuracy
    from search_spaces import fold_bn, vendor_arithmetic

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = space.build(arch, quantize=True)
    x = torch.from_numpy(np.ascontiguousarray(data.x_train))
    y = torch.from_numpy(np.ascontiguousarray(data.y_train))
    n, bs = len(y), 32
    steps = n // bs
    epochs = float_epochs + qat_epochs
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    net.set_quantize(False)
    for e in range(epochs):
        if e == float_epochs:
            fold_bn(net)
            net.set_quantize(True)
        net.train()
        order = torch.from_numpy(rng.permutation(n))
        for s in range(steps):
            idx = order[s * bs : (s + 1) * bs]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    acc, _ = accuracy(vendor_arithmetic(net), data.x_val, data.y_val)
    return acc, time.perf_counter() - t0


EXTRA = ["32k3b8,32k3b8|32k3b8,32k3b8|32k3b8|fcb8", "32k3b8|32k3b8|32k3b8|32k3b8|fcb8", "16k1b8|16k1b8|fcb8",
         "16k3b8,16k3b8|16k3b8|fcb8", "32k3b8,32k3b8,32k3b8|32k3b8,32k3b8|32k3b8,32k3b8|24k3b8|fcb8"]
"""Fixed networks added to the drawn ones: deep and wide (3-4 units) next to two small ones."""


def _cell(text: str) -> str:
    """``|`` escaped for a Markdown table cell."""
    return text.replace("|", "\\|")


def _draw(space, device, budget: int, n: int, seed: int) -> list[str]:
    """``n`` feasible architectures, at most ``ceil(n/4)`` per lowest hidden bit width."""
    rng = np.random.default_rng(seed)
    per = -(-n // len(space.bits))
    counts: dict[int, int] = {}
    out: list[str] = []
    for _ in range(20000):
        a = space.random_arch(rng)
        rep = device.report(space.network(a))
        if not rep.fits or rep.violations or rep.weight_bytes > budget:
            continue
        hidden = [l["bits"] for u in a["units"] for l in u][1:] or [8]
        low = min(hidden)
        if counts.get(low, 0) >= per or space.format(a) in out:
            continue
        counts[low] = counts.get(low, 0) + 1
        out.append(space.format(a))
        if len(out) == n:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--float-epochs", type=int, default=2)
    ap.add_argument("--qat-epochs", type=int, default=1)
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bits", type=int, nargs="+", choices=[1, 2, 4, 8],
                    help="weight bit widths of the space (default 1 2 4 8; `nas search` on the default data offers "
                    "8 only, see nas.search.auto_bits)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "supernet_mnist5k.md"))
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    from scipy.stats import kendalltau, spearmanr

    from devices import get_device
    from nas.data._data import load_mnist5k
    from nas.estimators import Naswot, SupernetAccuracy
    from search_spaces import get_space

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    load0 = os.getloadavg()
    t_all = time.perf_counter()
    data = load_mnist5k(seed=args.seed)
    bits_opt = {} if args.bits is None else {"bits": tuple(sorted(set(args.bits)))}
    full = get_space("ai8x", input_shape=data.input_shape, num_classes=data.num_classes, **bits_opt)
    est = SupernetAccuracy(threads=args.threads)
    est.bind(full, data, args.runs_dir, seed=args.seed)
    inh = SupernetAccuracy(threads=args.threads, finetune_steps=0)
    inh.bind(full, data, args.runs_dir, seed=args.seed)
    space = est.covered
    t0 = time.perf_counter()
    sn = est.prepare(print)
    sn_seconds = time.perf_counter() - t0
    device = get_device("max78000")
    archs = _draw(space, device, 400_000, args.n, args.seed)
    n_drawn = len(archs)
    archs += [a for a in EXTRA if a not in archs]
    base = "32k3b8,32k3b{b}|32k3b{b},32k3b{b}|32k3b{b}|fcb8"
    sweep = [base.format(b=b) for b in (8, 4, 2, 1) if b in space.bits] if len(space.bits) > 1 else []
    rows = []
    for i, a in enumerate(archs + sweep):
        r = est.evaluate(space, space.parse(a), data, seed=args.seed)
        r0 = inh.evaluate(space, space.parse(a), data, seed=args.seed)
        nw = Naswot(threads=args.threads).evaluate(space, space.parse(a), data, seed=args.seed)
        acc, secs = _train_standalone(space, space.parse(a), data, args.float_epochs, args.qat_epochs, args.seed)
        rep = device.report(space.network(a))
        rows.append({"arch": a, "supernet": r.value, "est_s": r.seconds, "standalone": acc, "train_s": secs,
                     "inherited": r0.value, "inh_s": r0.seconds, "drawn": i < n_drawn,
                     "naswot": nw.value,
                     "weight_bytes": rep.weight_bytes, "latency_ms": rep.latency_ms, "sweep": i >= len(archs)})
        print(f"{a:60s} supernet {r.value:.4f} ({r.seconds:.2f} s) inherited {r0.value:.4f}  naswot {nw.value:.1f}  stand-alone {acc:.4f} "
              f"({secs:.0f} s)", flush=True)
    main_rows = [r for r in rows if not r["sweep"]]

    def agree(col: str, sel: list[dict]) -> str:
        a, b = [r[col] for r in sel], [r["standalone"] for r in sel]
        kt, sp = kendalltau(a, b), spearmanr(a, b)
        return (f"Kendall tau = {kt.statistic:.3f} (p = {kt.pvalue:.3g}), Spearman rho = {sp.statistic:.3f} "
                f"(p = {sp.pvalue:.3g})")

    drawn = [r for r in main_rows if r["drawn"]]
    total = time.perf_counter() - t_all
    load1 = os.getloadavg()
    origin = "trained in this run" if sn.trained else "loaded from the cache"
    lines = [
        "# Supernet estimate vs stand-alone training (MNIST 5k, MAX78000 ai8x space)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_supernet.py --n {args.n} --float-epochs {args.float_epochs} "
        f"--qat-epochs {args.qat_epochs} --threads {args.threads}"
        + ("" if args.bits is None else " --bits " + " ".join(map(str, sorted(set(args.bits))))) + "`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}; load average "
        f"{load0[0]:.1f} at start, {load1[0]:.1f} at end (other jobs shared the machine). "
        f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"- data: {data.describe()}",
        f"- supernet: {origin} ({sn_seconds:.0f} s here; its own training took "
        f"{sn.config.get('train_seconds')} s), cache `{sn.path.name}`; {sn.config.get('cap')}",
        f"- estimate: {est.describe()}",
        f"- stand-alone: each network from scratch on the same {len(data.y_train)} training images, "
        f"{args.float_epochs} float epoch(s), then BatchNorm folded and {args.qat_epochs} epoch(s) of the vendor's "
        "QAT as `nas qat` runs it (Adam 3e-3, cosine, batch 32, seed 0), validation accuracy in the chip's integer "
        "arithmetic (BN folded, bias at the weight bits, vendor output shift)",
        f"- networks: {len(drawn)} drawn with seed {args.seed} from the searched space "
        f"(widths {list(space.widths)}, weight bits {list(space.bits)}), each fits the MAX78000 with <= 400,000 "
        f"weight bytes; at most {-(-args.n // len(space.bits))} per lowest hidden bit width; plus "
        f"{len(main_rows) - len(drawn)} fixed ones (`EXTRA`)",
        "",
        "## Ranking agreement",
        "",
        f"- default estimate (`val_acc_supernet`, {est.finetune_steps} fine-tuning steps), {len(drawn)} drawn "
        f"networks: {agree('supernet', drawn)}",
        f"- the same, all {len(main_rows)} networks (drawn + fixed deep/wide): {agree('supernet', main_rows)}",
        f"- inherited weights only (`finetune_steps=0`), drawn: {agree('inherited', drawn)}; all: "
        f"{agree('inherited', main_rows)}",
        f"- NASWOT proxy (`--accuracy proxy`), drawn: {agree('naswot', drawn)}; all: {agree('naswot', main_rows)}",
        f"- mean time per supernet estimate {np.mean([r['est_s'] for r in rows]):.2f} s (inherited only "
        f"{np.mean([r['inh_s'] for r in rows]):.2f} s); per stand-alone "
        f"training {np.mean([r['train_s'] for r in rows]):.0f} s; whole benchmark {total / 60:.1f} min",
        "",
        "| # | architecture | weight bytes | latency ms | val_acc_supernet | inherited only | NASWOT | "
        "stand-alone val acc |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(main_rows):
        tag = str(i) if r["drawn"] else f"{i} (fixed)"
        lines.append(f"| {tag} | `{_cell(r['arch'])}` | {r['weight_bytes']:,} | {r['latency_ms']:.3f} | "
                     f"{r['supernet']:.4f} | {r['inherited']:.4f} | {r['naswot']:.1f} | {r['standalone']:.4f} |")
    lines += [] if not sweep else [
        "",
        "## Weight bit widths (same architecture, hidden layers at 8/4/2/1 bits)",
        "",
        "| architecture | weight bytes | val_acc_supernet | NASWOT | stand-alone val acc |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows if sweep else []:
        if r["sweep"]:
            lines.append(f"| `{_cell(r['arch'])}` | {r['weight_bytes']:,} | {r['supernet']:.4f} | {r['naswot']:.1f} | "
                         f"{r['standalone']:.4f} |")
    lines += ["", f"## Supernet training log (`{sn.train_log.name}`)", "", "```", sn.train_log.read_text().strip(), "```"]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
