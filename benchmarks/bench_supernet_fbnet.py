"""Does the fbnet supernet rank phone sub-networks as stand-alone training does? (issue 5)

Draws ``--n`` fbnet networks (fixed seed) for MNIST 5k: network ``i`` makes each layer ``skip``
with probability ``i / (n - 1)`` and otherwise one of the 8 blocks uniformly, so the set spans
small to large networks. Trains each from scratch (``space.build_for_training``: residual blocks
start as the identity), with training seeds 0 and 1 (how well one seed predicts the other; the
target is their mean, which an estimate can predict better than one seed does), in a second
process while this one trains (or loads) the supernet: float, ``--epochs`` epochs (Adam 3e-3,
cosine, batch 32),
then the phones' int8 arithmetic of ``nas qat`` (BatchNorm folded, int8 per-channel weights,
int8 activations calibrated on 256 training images, no QAT epochs), scored on the validation
split. Compares with the ``supernet`` estimate of ``nas search`` on the fbnet space (its default
settings, ``nas.supernet._fbnet.FBNET_SUPERNET_DEFAULTS``) and with NASWOT (the quick
estimate) and MACs by Kendall tau and Spearman rho (``scipy.stats``, with p-values); with
fine-tuning steps, also the control: the same steps from scratch instead of the supernet's
weights (does the supernet add anything over a short training?). Prints the table
and writes ``benchmarks/results/supernet_fbnet_<data>.md``. ``--data digits`` runs the same on
scikit-learn's 8x8 digits (1,797 images; seconds per network), where more networks are affordable.

    .venv/bin/python benchmarks/bench_supernet_fbnet.py [--n 10] [--epochs 3] [--data mnist5k|digits]
        [--runs-dir runs] [--standalone-only] [--supernet-epochs E] [--finetune-steps S]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

STANDALONE_INIT = "zero-init-residual"
"""Names the initialisation of the stand-alone networks in their cache key: ``build_for_training``
(residual blocks zero-initialised) since 2026-12-01; earlier results used PyTorch's default."""


def _load(name: str, split_seed: int = 0):
    """``mnist5k`` (the built-in data) or ``digits`` (scikit-learn's 1,797 8x8 digits, through the
    ``.npz`` path a user's data takes)."""
    from nas.data._data import load_mnist5k, load_npz

    if name == "mnist5k":
        return load_mnist5k(seed=split_seed)
    from sklearn.datasets import load_digits

    d = load_digits()
    with tempfile.TemporaryDirectory() as tmp:  # one per process: the stand-alone worker loads it too
        path = Path(tmp) / "digits.npz"
        np.savez(path, x=(d.images * 16).clip(0, 255).astype(np.uint8), y=d.target)
        return load_npz(path, seed=split_seed)


def _standalone(arch: str, epochs: int, seed: int, split_seed: int = 0,
                data_name: str = "mnist5k") -> tuple[float, float, float]:
    """Train ``arch`` from scratch (float, torch seed ``seed``) on the data split of ``split_seed``,
    then score it int8; (int8 val acc, float val acc, seconds)."""
    import torch
    from torch.nn import functional as F

    from nas.supernet import accuracy
    from search_spaces import get_space
    from search_spaces._fbnet_torch import calibrate_int8, prepare_int8_qat

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    data = _load(data_name, split_seed)
    space = get_space("fbnet", in_channels=1, num_classes=10, input_size=data.input_shape[1])
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = space.build_for_training(arch).to(memory_format=torch.channels_last)  # ~1.8x faster depthwise convs on CPU
    x = torch.from_numpy(np.ascontiguousarray(data.x_train))
    y = torch.from_numpy(np.ascontiguousarray(data.y_train))
    n, bs = len(y), 32
    steps = n // bs
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    for _ in range(epochs):
        net.train()
        order = torch.from_numpy(rng.permutation(n))
        for s in range(steps):
            idx = order[s * bs : (s + 1) * bs]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    fl, _ = accuracy(net, data.x_val, data.y_val)
    q = calibrate_int8(prepare_int8_qat(net), x[:256])
    acc, _ = accuracy(q, data.x_val, data.y_val)
    return acc, fl, time.perf_counter() - t0


def _scratch_control(space, arch: str, data, est, sn, seed: int) -> float:
    """The estimate's fine-tuning and scoring from scratch (``build_for_training``) instead of the
    supernet's weights: validation accuracy, in the estimate's int8 arithmetic (``sn.quantised``)."""
    import torch

    from nas.supernet import accuracy, finetune

    torch.manual_seed(seed)
    net = space.build_for_training(arch).to(memory_format=torch.channels_last)
    finetune(net, data, est.finetune_steps, lr=est.finetune_lr, seed=seed, recal_images=est.recal_images)
    return accuracy(sn.quantised(net, data), data.x_val, data.y_val)[0]


def _draw(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = i / max(1, n - 1)
        ops = [8 if rng.random() < p else int(rng.integers(0, 8)) for _ in range(22)]
        out.append("".join(map(str, ops)))
    return out


def _cached_standalone(pool: ProcessPoolExecutor, cache: Path, archs: list[str], epochs: int,
                       seeds: list[int], data_name: str) -> dict[tuple[str, int], tuple[float, float, float]]:
    """Stand-alone results for every (arch, seed), trained in ``pool`` unless ``cache`` (JSON) has them;
    each new result is added to the cache as it arrives."""
    import json

    done = json.loads(cache.read_text()) if cache.is_file() else {}
    prefix = "" if data_name == "mnist5k" else f"{data_name}/"
    key = lambda a, s: f"{prefix}{a}/e{epochs}/s{s}/{STANDALONE_INIT}"  # noqa: E731
    todo = {(a, s): pool.submit(_standalone, a, epochs, s, 0, data_name) for s in seeds for a in archs
            if key(a, s) not in done}
    out = {}
    for a in archs:
        for s in seeds:
            if (a, s) in todo:
                done[key(a, s)] = list(todo[(a, s)].result())
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps(done, indent=1))
            out[(a, s)] = tuple(done[key(a, s)])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--standalone-only", action="store_true", help="train and cache the stand-alone networks only")
    ap.add_argument("--data", choices=["mnist5k", "digits"], default="mnist5k")
    ap.add_argument("--supernet-epochs", type=int, help="elastic epochs of the supernet (default: nas search's)")
    ap.add_argument("--supernet-lr", type=float, help="its learning rate (default: nas search's)")
    ap.add_argument("--finetune-steps", type=int, help="fine-tuning steps per estimate (default: nas search's)")
    ap.add_argument("--out", help="default: benchmarks/results/supernet_fbnet_<data>.md")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from scipy.stats import kendalltau, spearmanr

    from nas.estimators import Naswot, SupernetAccuracy
    from nas.supernet._fbnet import FBNET_SUPERNET_DEFAULTS
    from search_spaces import get_space
    from search_spaces._fbnet_cost import fbnet_cost

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    load0 = os.getloadavg()
    t_all = time.perf_counter()
    data = _load(args.data, args.seed)
    side = data.input_shape[1]
    space = get_space("fbnet", in_channels=1, num_classes=10, input_size=side)
    archs = _draw(args.n, args.seed)
    seeds = [0, 1]
    cache = Path(args.runs_dir) / "bench_supernet_fbnet_standalone.json"
    with ProcessPoolExecutor(max_workers=1) as pool, ThreadPoolExecutor(max_workers=1) as waiter:
        # the second core trains the stand-alone networks (two training seeds each) meanwhile
        sa_future = waiter.submit(_cached_standalone, pool, cache, archs, args.epochs, seeds, args.data)
        if args.standalone_only:
            sa_future.result()
            print(f"stand-alone results cached in {cache}")
            return
        opts = dict(FBNET_SUPERNET_DEFAULTS)
        if args.supernet_epochs is not None:
            opts["epochs_elastic"] = args.supernet_epochs
        if args.supernet_lr is not None:
            opts["lr"] = args.supernet_lr
        if args.finetune_steps is not None:
            opts["finetune_steps"] = args.finetune_steps
        est = SupernetAccuracy(**opts)
        est.bind(space, data, args.runs_dir, seed=args.seed)
        t0 = time.perf_counter()
        sn = est.prepare(print)
        sn_seconds = time.perf_counter() - t0
        scored = []
        for a in archs:
            r = est.evaluate(space, a, data, seed=args.seed)
            nw = Naswot(batch=32).evaluate(space, a, data, seed=args.seed)
            # the control: the same fine-tuning steps from scratch (does the supernet add anything?)
            sc = _scratch_control(space, a, data, est, sn, args.seed) if est.finetune_steps else float("nan")
            scored.append((r, nw, sc))
            print(f"{a} supernet {r.value:.4f} ({r.seconds:.1f} s) naswot {nw.value:.1f} scratch {sc:.4f}", flush=True)
        sa = sa_future.result()
    rows = []
    for a, (r, nw, sc) in zip(archs, scored, strict=True):
        runs = [sa[(a, s)] for s in seeds]
        cost = fbnet_cost(space.op_indices(a), in_channels=1, num_classes=10, input_size=side)
        rows.append({"arch": a, "supernet": r.value, "est_s": r.seconds, "naswot": nw.value, "scratch": sc,
                     "standalone": float(np.mean([x[0] for x in runs])), "seed0": runs[0][0], "seed1": runs[1][0],
                     "float": float(np.mean([x[1] for x in runs])), "train_s": float(np.mean([x[2] for x in runs])),
                     "macs": cost.macs, "skips": a.count("8")})

    def agree(col: str, target: str = "standalone") -> str:
        a, b = [r[col] for r in rows], [r[target] for r in rows]
        kt, sp = kendalltau(a, b), spearmanr(a, b)
        return (f"Kendall tau = {kt.statistic:.3f} (p = {kt.pvalue:.3g}), Spearman rho = {sp.statistic:.3f} "
                f"(p = {sp.pvalue:.3g})")

    total = time.perf_counter() - t_all
    load1 = os.getloadavg()
    origin = "trained in this run" if sn.trained else "loaded from the cache"
    accs = [r["standalone"] for r in rows]
    lines = [
        f"# Supernet estimate vs stand-alone training ({data.name}, phone fbnet space)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_supernet_fbnet.py --n {args.n} --epochs {args.epochs} --data "
        f"{args.data}"
        + (f" --supernet-epochs {args.supernet_epochs}" if args.supernet_epochs is not None else "")
        + (f" --supernet-lr {args.supernet_lr:g}" if args.supernet_lr is not None else "")
        + (f" --finetune-steps {args.finetune_steps}" if args.finetune_steps is not None else "") + "` (the "
        "stand-alone results may come from its cache)",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, one torch thread per process (supernet and "
        f"estimates in one, stand-alone training in the other); load average {load0[0]:.1f} at start, "
        f"{load1[0]:.1f} at end. Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"- data: {data.describe()}",
        f"- supernet: {origin} ({sn_seconds:.0f} s here; its own training took {sn.config.get('train_seconds')} s), "
        f"cache `{sn.path.name}`; settings {opts}"
        + (" (those of `nas search` on the fbnet space)" if opts == FBNET_SUPERNET_DEFAULTS else
           f" (`nas search` uses {FBNET_SUPERNET_DEFAULTS})"),
        f"- estimate: {est.describe()}",
        f"- stand-alone: each network from scratch on the same {len(data.y_train)} training images, {args.epochs} "
        "float epochs (Adam 3e-3, cosine, batch 32), then int8 as in the estimate (no QAT epochs); validation "
        f"accuracy, mean of training seeds {seeds} (results cached in `{cache.name}` under the runs folder)",
        f"- networks: {len(rows)} drawn with seed {args.seed}; network i skips each layer with probability "
        f"i / {max(1, args.n - 1)}, else one of the 8 blocks uniformly; stand-alone int8 accuracy "
        f"{min(accs):.4f}-{max(accs):.4f}",
        "",
        "## Ranking agreement with stand-alone int8 accuracy",
        "",
        f"- the ceiling, stand-alone seed 0 vs seed 1: {agree('seed0', 'seed1')}",
        f"- supernet estimate (`val_acc_supernet`): {agree('supernet')}",
        f"- NASWOT (`--accuracy proxy`, batch 32, the quick estimate): {agree('naswot')}",
        f"- MACs (bigger = better): {agree('macs')}",
        *([f"- the control, the same {est.finetune_steps} fine-tuning steps from scratch (`build_for_training`) "
           f"instead of the supernet's weights: {agree('scratch')}"] if est.finetune_steps else []),
        f"- mean time per supernet estimate {np.mean([r['est_s'] for r in rows]):.1f} s; per stand-alone training "
        f"{np.mean([r['train_s'] for r in rows]):.0f} s; whole benchmark {total / 60:.1f} min",
        "",
        "| # | architecture | skips | M MACs | val_acc_supernet | same steps from scratch | NASWOT | stand-alone float "
        "| stand-alone int8 (seed 0 / 1) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(rows):
        sc = "-" if np.isnan(r["scratch"]) else f"{r['scratch']:.4f}"
        lines.append(f"| {i} | `{r['arch']}` | {r['skips']} | {r['macs'] / 1e6:.1f} | {r['supernet']:.4f} | {sc} | "
                     f"{r['naswot']:.1f} | {r['float']:.4f} | {r['standalone']:.4f} ({r['seed0']:.3f} / "
                     f"{r['seed1']:.3f}) |")
    lines += ["", f"## Supernet training log (`{sn.train_log.name}`)", "", "```", sn.train_log.read_text().strip(), "```"]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out or Path(__file__).parent / "results" / f"supernet_fbnet_{args.data}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
