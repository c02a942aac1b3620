"""Phone int8 arithmetic: 7-bit weights (|w| <= 63, what ``nas qat`` trains and exports) vs full int8.

For each FBNet architecture (MNIST 5k, the split of ``nas qat``): float training from scratch,
then for each weight range the same int8 QAT as ``nas qat`` (BatchNorm folded, per-channel
weights, per-tensor int8 activations calibrated on training images, int32 biases) from a copy of
the same float weights, then the ONNX export and its onnxruntime check (``nas.export``) on the
test images. Prints and writes a markdown table: PyTorch int8 test accuracy, onnxruntime test
accuracy, argmax agreement, equal-logit share, SQNR, max |diff|, largest weight integer and its
worst int16 pair sum (2 x 255 x max|w|; VPMADDUBSW, x86 without VNNI, saturates above 32,767).

    python benchmarks/bench_onnx_int8.py --out benchmarks/results/qat_fbnet_weight_bits.md
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ARCHS = ("7818488874147327324245", "0888888838888858888888")
"""The test suite's int8 network (residual and plain blocks, grouped convs, a skip) and a shallow one."""


def _cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    have = set(flags.split(":", 1)[1].split())
    names = ["avx2", "avx512f", "avx512_vnni", "avx_vnni"]
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{model}; " + ", ".join(f"{n} {'yes' if n in have else 'no'}" for n in names)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; see the module docstring."""
    import onnxruntime
    import torch

    import search_spaces._fbnet_torch as fbt
    from nas.data._data import load_dataset
    from nas.export import export_onnx_int8, onnx_agreement
    from nas.train import accuracy as _accuracy
    from nas.train import fit as _fit
    from nas.train import tensors as _tensors
    from search_spaces import get_space

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=list(ARCHS))
    ap.add_argument("--epochs", type=int, default=3, help="float epochs")
    ap.add_argument("--qat-epochs", type=int, default=2)
    ap.add_argument("--weight-max", type=int, nargs="+", default=[63, 127], help="largest |weight integer|")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    t_start = time.perf_counter()
    load0 = os.getloadavg()[0]
    data = load_dataset(None, seed=args.seed)
    xs = _tensors(data, None)
    space = get_space("fbnet", in_channels=1, num_classes=10, input_size=28)
    rows: list[str] = []
    default_max = fbt.INT8_WEIGHT_MAX
    for arch in args.archs:
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        model = space.build_for_training(arch)
        fv, _ = _fit(model, xs[:4], args.epochs, 2e-3, 64, args.seed, None)
        ft = _accuracy(model, xs[4], xs[5])
        print(f"{arch}: float val {fv:.4f} test {ft:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for wmax in args.weight_max:
            t1 = time.perf_counter()
            fbt.INT8_WEIGHT_MAX = wmax
            try:
                q = fbt.calibrate_int8(fbt.prepare_int8_qat(copy.deepcopy(model)), xs[0], 64)
                _fit(q, xs[:4], args.qat_epochs, 1e-3, 64, args.seed + 1, None)
                qt = _accuracy(q, xs[4], xs[5])
                with tempfile.TemporaryDirectory() as tmp:
                    path = export_onnx_int8(q, Path(tmp) / "m.onnx", data.input_shape)
                    o = onnx_agreement(q, path, data.x_test, data.y_test)
            finally:
                fbt.INT8_WEIGHT_MAX = default_max
            sqnr = f"{o['sqnr_db']:.1f}" if o["sqnr_db"] is not None else "inf"
            row = (f"| `{arch}` | {wmax} | {100 * ft:.2f}% | {100 * qt:.2f}% | {100 * o['onnx_test_acc']:.2f}% | "
                   f"{100 * o['argmax_agreement']:.1f}% | {100 * o['equal']:.1f}% | {sqnr} | {o['max_abs_diff']:.3g} | "
                   f"{o['weight_int_max']} | {o['int16_pair_max']:,} |")
            rows.append(row)
            print(row, f"({time.perf_counter() - t1:.0f} s)", flush=True)
    total = time.perf_counter() - t_start
    cmd = "python benchmarks/bench_onnx_int8.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Phone int8: 7-bit weights (|w| <= 63) vs full-range int8 weights, PyTorch vs onnxruntime",
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC with `{cmd.strip()}` on "
        f"{_cpu_flags()} ({os.cpu_count()} CPUs, 1 torch thread, onnxruntime {onnxruntime.__version__} "
        f"CPUExecutionProvider, 1 thread, default optimisations; load average {load0:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end, the machine shared with other jobs); total {total:.0f} s.",
        "",
        f"- data: {data.name}: {len(data.y_train)} train / {len(data.y_val)} validation / {len(data.y_test)} test, "
        f"split seed {args.seed}; accuracies on the whole test split",
        f"- training: {args.epochs} float epochs from scratch (Adam 0.002, cosine, batch 64, best validation epoch), "
        f"then for each weight range, from a copy of those float weights, `nas qat`'s int8 QAT: BatchNorm folded, "
        f"activation ranges calibrated on training images, {args.qat_epochs} QAT epochs (Adam 0.001), best validation "
        "epoch; weights per output channel, symmetric, scale max|w_c| / (largest |weight integer|)",
        "- ONNX: `nas.export.export_onnx_int8` (int8 QDQ, weight integers as int8 initializers) and "
        "`onnx_agreement`: onnxruntime vs the PyTorch int8 model on every test image; equal: |diff| <= 1e-3 on "
        "every logit of the image; worst int16 pair: 2 x 255 x max|w| (onnxruntime's x86 kernels read int8 "
        "activations shifted to uint8 0..255; VPMADDUBSW, used without VNNI, saturates each pair's sum above 32,767)",
        "",
        "| arch | max weight integer (setting) | float test acc | PyTorch int8 test acc | onnxruntime test acc | "
        "argmax agreement | logits equal | SQNR dB | max abs diff | max weight integer (file) | worst int16 pair |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
