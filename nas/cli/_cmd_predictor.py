"""``nas predictor train``: meta-train a latency predictor on the vendored HELP tables."""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``nas predictor`` and its ``train`` sub-command."""
    p = subparsers.add_parser("predictor", help="meta-learned latency predictor (train)")
    sub = p.add_subparsers(dest="predictor_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    t = sub.add_parser(
        "train",
        help="meta-train a predictor for a search space",
        description=(
            "Meta-train the latency predictor of SPACE on HELP's meta-train devices, choosing the "
            "checkpoint on the meta-valid devices (meta-test devices are never used). With the "
            "default settings and seed 0 this reproduces the shipped weights "
            "(predictors/pretrained/SPACE.npz). Writes ./predictor_SPACE_seedN.npz unless --out is "
            "given; an existing file is never overwritten without --force."
        ),
    )
    t.add_argument("--space", required=True, choices=["nasbench201", "fbnet", "ofa_mbv3"])
    t.add_argument("--seed", type=int, default=0, help="meta-training seed (default 0)")
    t.add_argument("--out", help="output .npz path (default ./predictor_<space>_seed<seed>.npz)")
    t.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    t.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from rich.console import Console

    import predictors
    from predictors import PredictorInputError

    out = args.out or f"predictor_{args.space}_seed{args.seed}.npz"
    if not out.endswith(".npz"):
        out += ".npz"
    if os.path.exists(out) and not args.force:
        raise PredictorInputError(f"{out} exists; pass --force to overwrite it or choose another --out")
    console = Console(stderr=True)
    model = predictors.LatencyPredictor(args.space, seed=args.seed)
    total = model.n_members * model.n_steps
    from ._progress import progress_bar

    with progress_bar(console) as progress:
        task = progress.add_task(f"meta-training {args.space}", total=total, info="")

        def callback(member: int, step: int, score: float) -> None:
            progress.update(task, completed=member * model.n_steps + step,
                            info=f"member {member + 1}/{model.n_members}  meta-valid Spearman {score:.4f}")

        model.fit(callback=callback)
    path = model.save(out)
    console.print(
        f"meta-valid Spearman per member: {', '.join(f'{v:.4f}' for v in model.valid_spearman_)}; "
        f"{model.train_seconds_:.0f} s"
    )
    print(path)
    return 0
