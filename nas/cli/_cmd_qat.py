"""``nas qat``: quantisation-aware fine-tuning and export of a search's winners (over ``nas.qat``).

    nas qat RUN [--top K] [--epochs E] [--qat-epochs Q] [--seed S] [--init auto|supernet|scratch]
                [--augment none|vendor] [--torch-device auto|cpu|cuda] [--runs-dir DIR]
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``nas qat``."""
    from ..qat import DEFAULT_EPOCHS, DEFAULT_QAT_EPOCHS

    p = subparsers.add_parser(
        "qat",
        help="fine-tune a search's best networks with quantisation-aware training and export them",
        description=(
            "For the --top K distinct feasible Pareto networks of RUN with the highest search estimate: "
            "fine-tune in float from the supernet's weights and from scratch when the search used the supernet (the "
            "higher float validation accuracy is kept; else from scratch), fold "
            "BatchNorm and train in the target's arithmetic (MAX78000: the vendor's QAT, per-layer "
            "output shift and 1/2/4/8-bit weights; phones: int8 weights and activations). Prints float "
            "and quantised test accuracy with the device's figures; writes RUN/qat/summary.json, "
            "RUN/qat/qat.md (linked from report.md) and RUN/export/<network>/ (MAX78000: the vendor's "
            "checkpoint and synthesis YAML; phones: an int8 QDQ ONNX model; both: network description "
            "and model_card.md)."
        ),
    )
    p.add_argument("run", metavar="RUN", help="a run name under --runs-dir, or a run directory")
    p.add_argument("--top", type=int, default=3, help="networks to fine-tune (default 3)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help=f"float fine-tuning epochs (default {DEFAULT_EPOCHS})")
    p.add_argument("--qat-epochs", type=int, default=DEFAULT_QAT_EPOCHS,
                   help=f"quantisation-aware epochs after them (default {DEFAULT_QAT_EPOCHS})")
    p.add_argument("--seed", type=int, help="seed of initialisation and batch order (default: the run's seed)")
    p.add_argument("--init", default="auto", choices=["auto", "supernet", "scratch"],
                   help="initialisation: auto (default: when the search used the supernet, fine-tune from its weights and "
                   "from scratch and keep the higher float validation accuracy; else scratch), supernet (only the "
                   "supernet's weights; trains and caches one when missing), scratch")
    p.add_argument("--augment", default="none", metavar="none|vendor",
                   help="training-image augmentation: none (default) or vendor (ai8x-training's MNIST recipe: random "
                   "crop with 4-pixel padding, rotation up to 20 degrees, 10%% translation, 5-degree shear). The vendor "
                   "trains far longer with it; at the default 10 + 6 epochs it lowered MNIST 5k accuracy here "
                   "(benchmarks/results/qat_mnist5k_augment.md)")
    p.add_argument("--torch-device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the networks train and are scored: auto (default: CUDA when torch finds a GPU, else "
                   "the CPU), cpu or cuda. On CUDA the float epochs use mixed precision; the QAT epochs and every "
                   "score do not (the MAX78000's arithmetic is computed exactly). qat.md, summary.json and each "
                   "model card name the device")
    p.add_argument("--runs-dir", default="runs", help="directory holding the runs (default runs)")
    p.set_defaults(func=_qat)


def _qat(args: argparse.Namespace) -> int:
    from ..qat import QatConfig, validate_qat_config

    cfg = QatConfig(top=args.top, epochs=args.epochs, qat_epochs=args.qat_epochs, seed=args.seed, init=args.init,
                    augment=args.augment, torch_device=args.torch_device)
    validate_qat_config(cfg)  # input errors before anything is written (the run is checked next, also before)
    run_and_print(args.run, cfg, runs_dir=args.runs_dir)
    return 0


def run_and_print(run: Any, cfg: Any, *, runs_dir: Any = "runs", command: str = "nas qat") -> Any:
    """Run :func:`nas.qat.run_qat` with a rich progress bar and print its table (also used at the
    end of ``nas search``); returns the ``QatResult``."""
    from rich.console import Console
    from rich.table import Table

    from ..export import onnx_summary
    from ..qat import (
        TABLE_HEADER,
        load_run,
        network_dict,
        run_qat,
        table_rows,
        used_supernet_estimate,
    )
    from ..train import progress_to, resolve_torch_device, torch_device_name
    from ._progress import progress_bar, step_listener

    loaded = load_run(run, runs_dir)
    err = Console(stderr=True)
    n = min(cfg.top, len({r["arch"] for r in loaded.rows}))
    both = cfg.init == "auto" and used_supernet_estimate(loaded.record)  # both starts under auto
    float_epochs = cfg.epochs * (2 if both else 1)
    per_net = float_epochs + cfg.qat_epochs
    twice = " (twice: from the supernet's weights and from scratch)" if float_epochs > cfg.epochs else ""
    err.print(f"[bold]{command}[/] {loaded.name}: {n} network(s), {cfg.epochs} float{twice} + {cfg.qat_epochs} QAT "
              f"epochs each on torch device {torch_device_name(resolve_torch_device(cfg.torch_device))}",
              highlight=False)
    with progress_bar(err) as bar, progress_to(step_listener(bar)):  # (a supernet trained for --init supernet)
        task = bar.add_task("qat epochs", total=n * per_net, info="")

        def on_progress(p: Any) -> None:
            done = p.index * per_net + p.epoch + {"float": 0, "float-scratch": cfg.epochs}.get(p.phase, float_epochs)
            acc = "" if p.val_acc is None else f"  val acc {100 * p.val_acc:.2f}%"
            bar.update(task, completed=done, info=f"{p.network} ({p.index + 1}/{p.count}) {p.phase} epoch "
                                                  f"{p.epoch}/{p.epochs}{acc}")

        result = run_qat(loaded.run_dir, cfg, runs_dir=runs_dir, progress=on_progress)
    out = Console() if Console().is_terminal else Console(width=160)
    table = Table(title=f"QAT of {loaded.name} (test split)", title_justify="left")
    for h in TABLE_HEADER:
        table.add_column(h, justify="left" if h in ("network", "device check", "weights") else "right")
    payload = {**result.settings, "networks": [network_dict(x) for x in result.networks]}
    for row in table_rows(payload):
        table.add_row(*row)
    out.print(table)
    for x in result.networks:
        onnx = f"; {onnx_summary(x.extra['onnx'])}" if "onnx" in x.extra else ""
        out.print(f"{x.name}: {x.arch}; initialisation: {x.init}" + (f"; exported to {x.export_dir}/" if x.export_dir else "")
                  + onnx)
    print(f"{result.summary_path}")
    return result
