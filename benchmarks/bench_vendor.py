"""Round trip of MAX78000 exports through Analog Devices' ai8x-synthesis (issue 15, part 5).

For every exported network of a run (``RUN/export/<network>/``, written by ``nas qat``) and for
the vendor's own ``ai85net5`` (``trained/ai85-mnist-qat8-q.pth.tar``, already quantised: it goes
straight to ``ai8xize.py`` with ``networks/mnist-chw-ai85.yaml``), prints and writes per
network: accepted by the tool, cycles ours/vendor, weight bytes ours/vendor, whether the
vendor's simulated output for ``sample_input.npy`` equals ours, and the test accuracy on the
first ``--images`` test images of the run's split in our arithmetic (our integer forward pass,
``search_spaces._ai8x.integer_forward``, of our own quantised weights) and in the vendor's (the
vendor's own simulation functions ``izer.simulate.pooling_layer`` / ``conv2d_layer``, called per
image on the integers that the vendor's ``quantize.py`` wrote; validated here against the
``expected.npy`` that ``ai8xize.py`` writes for the sample input).

    python benchmarks/bench_vendor.py [RUN_DIR] [--images 200] [--out benchmarks/results/vendor_roundtrip.md]

RUN_DIR defaults to ``runs/max78000-400KB`` (``make run``); it needs ``export/`` from ``nas qat``
(``nas qat max78000-400KB`` makes it). Needs ``../shared/vendor/ai8x-synthesis`` and the ``dev``
extras.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vendor_tool  # noqa: E402

from search_spaces import Network  # noqa: E402

AI85NET5_CKPT = "trained/ai85-mnist-qat8-q.pth.tar"
AI85NET5_YAML = "networks/mnist-chw-ai85.yaml"


def ai85net5() -> Network:
    """The vendor's MNIST ai85net5 as ``networks/mnist-chw-ai85.yaml`` describes it (conv4: 2x2 average pool)."""
    return vendor_tool.ai85net5("avg")


def quantised_params(path: Path, network: Network, names: list[str]) -> list[dict[str, Any]]:
    """The integers of a quantised (``quantize.py`` output) checkpoint as ``ai8xize.py`` reads them
    (``izer/checkpoint.py``): weights, bias ``floor(b / 2^(bits-1))``, output shift, bits."""
    import torch

    sd = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    out = []
    for name in names:
        bits = int(sd[f"{name}.weight_bits"].reshape(-1)[0]) if f"{name}.weight_bits" in sd else 8
        b = sd.get(f"{name}.op.bias")
        out.append({"weight": sd[f"{name}.op.weight"].numpy().astype(np.int64),
                    "bias": None if b is None else np.floor(b.numpy() / 2 ** (bits - 1)).astype(np.int64),
                    "shift": int(sd[f"{name}.output_shift"].reshape(-1)[0]), "bits": bits})
    return out


class VendorSim:
    """The vendor's own layer simulation (``izer.simulate``), driven layer by layer as
    ``izer/backend/max7800x.py`` does for the networks here (sequential, one operand)."""

    def __init__(self, vendor: Path) -> None:
        sys.path.insert(0, str(vendor))
        from izer import op, simulate, state
        from izer import tornadocnn as tc
        from izer.devices import device

        tc.dev = tc.get_device(device("MAX78000"))
        state.verbose = state.verbose_all = False
        state.output_layer = [False] * 64
        self.op, self.simulate = op, simulate

    def forward(self, network: Network, params: list[dict[str, Any]], x: np.ndarray) -> np.ndarray:
        data = np.asarray(x, dtype=np.int64)
        act = {"relu": self.op.ACT_RELU, "abs": self.op.ACT_ABS, "none": None}
        for ll, (layer, p) in enumerate(zip(network.layers, params)):
            pooled, _ = self.simulate.pooling_layer(
                ll, data.shape, list(layer.pool), list(layer.pool_stride), layer.pool_type == "avg", data[None],
                operation=self.op.CONV2D, operands=1, rounding=False)
            data = pooled[0]
            w = np.asarray(p["weight"])
            if layer.op == "linear":
                data = data.reshape(-1, 1, 1)
                k = w.reshape(w.shape[0], -1, 1, 1)
                ks, pad = [1, 1], [0, 0]
            else:
                k, ks, pad = w, list(layer.kernel), list(layer.pad)
            data, _ = self.simulate.conv2d_layer(
                ll, data.shape, ks, p["shift"] + 8 - abs(p["bits"]), k.shape[0], pad, [1, 1], [1, 1],
                act[layer.activation], k, p["bias"], data, output_width=layer.output_width)
        return data


def _ours(model_params: list[dict[str, Any]], network: Network, x_int: np.ndarray) -> np.ndarray:
    from search_spaces._ai8x import integer_forward

    return integer_forward(network, model_params, x_int)


def bench(run_dir: Path, images: int, work: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from devices import get_device
    from nas.export import load_checkpoint, vendor_layer_names
    from nas.qat import load_run, run_data

    vendor = vendor_tool.vendor_dir()
    why = vendor_tool.unavailable(vendor)
    if why:
        raise SystemExit(f"bench_vendor: {why}")
    export = run_dir / "export"
    dirs = sorted(d for d in export.glob("*") if (d / "ai8x-synthesis.yaml").is_file()) if export.is_dir() else []
    if not dirs:
        raise SystemExit(f"bench_vendor: no MAX78000 export under {export}; make one with "
                         f"`nas qat {run_dir.name} --runs-dir {run_dir.parent}` (after `nas search --device max78000 ...`)")
    r = load_run(run_dir)
    data = run_data(r.record, r.record.data_seed)
    x_test = np.clip(np.round(data.x_test[:images].astype(np.float64) * 128), -128, 127).astype(np.int64)
    y_test = data.y_test[:images]
    info = {"run": str(run_dir), "data": data.name, "images": int(len(y_test))}

    import torch
    from safetensors.torch import load_file

    entries: list[dict[str, Any]] = []
    jobs = []
    for d in dirs:
        net = Network.load(d / "network.yaml")
        ck = next(d.glob("*_qat.pth.tar"))
        model = load_checkpoint(load_file(str(d / "weights.safetensors")), net)
        entries.append({"name": d.name, "arch": net.name, "network": net, "ours": model.vendor_params(),
                        "names": vendor_layer_names(net), "sample_output": np.load(d / "sample_output.npy"),
                        "bits": sorted({l.weight_bits for l in net.layers})})
        jobs.append({"name": d.name.replace("-", "_"), "checkpoint": str(ck), "yaml": str(d / "ai8x-synthesis.yaml"),
                     "sample_input": str(d / "sample_input.npy"), "out_dir": str(work / d.name)})
    # the vendor's ai85net5 (already quantised): our integer pass of its own integers
    a5 = ai85net5()
    a5_names = ["conv1", "conv2", "conv3", "conv4", "fc"]
    a5_params = quantised_params(vendor / AI85NET5_CKPT, a5, a5_names)
    a5_in = work / "ai85net5_sample_input.npy"
    work.mkdir(parents=True, exist_ok=True)
    np.save(a5_in, x_test[0], allow_pickle=False)
    entries.append({"name": "ai85net5 (vendor checkpoint)", "arch": "ai85net5", "network": a5, "ours": a5_params,
                    "names": a5_names, "sample_output": _ours(a5_params, a5, x_test[:1])[0].reshape(-1, 1, 1),
                    "bits": [8], "vendor_quantised": True})
    jobs.append({"name": "ai85net5", "checkpoint": str(vendor / AI85NET5_CKPT), "yaml": str(vendor / AI85NET5_YAML),
                 "sample_input": str(a5_in), "out_dir": str(work / "ai85net5"), "quantize": False,
                 "trusted_pickle": True})
    t0 = time.perf_counter()
    results = vendor_tool.run_vendor(vendor, jobs, workers=2, timeout=600)
    info["vendor_seconds"] = time.perf_counter() - t0
    sim = VendorSim(vendor)
    dev = get_device("max78000")
    rows = []
    for e, job, res in zip(entries, jobs, results):
        rep = dev.report(e["network"])
        row: dict[str, Any] = {"name": e["name"], "arch": e["arch"], "bits": e["bits"], "accepted": res["rc"] == 0,
                               "cycles_ours": rep.cycles, "weight_ours": rep.weight_bytes}
        if res["rc"] == 0:
            row.update(cycles_vendor=res["cycles"], weight_vendor=res["weight_bytes"],
                       identical=bool(np.array_equal(e["sample_output"], res["expected"])))
            q = Path(job["checkpoint"]) if not job.get("quantize", True) else Path(job["out_dir"]) / f"{job['name']}_q.pth.tar"
            vparams = quantised_params(q, e["network"], e["names"])
            t1 = time.perf_counter()
            sim_sample = sim.forward(e["network"], vparams, np.load(job["sample_input"]))
            row["sim_matches_expected"] = bool(np.array_equal(sim_sample, res["expected"]))
            vend = np.array([sim.forward(e["network"], vparams, x).reshape(-1) for x in x_test])
            row["sim_seconds"] = time.perf_counter() - t1
            ours = _ours(e["ours"], e["network"], x_test).reshape(len(x_test), -1)
            row["acc_ours"] = float((ours.argmax(1) == y_test).mean())
            row["acc_vendor"] = float((vend.argmax(1) == y_test).mean())
            row["outputs_identical"] = int((ours == vend).all(1).sum())
            if e["arch"] != "ai85net5":
                with torch.no_grad():  # the float64 eval path that nas qat scores with
                    m = load_checkpoint(load_file(str(Path(dirs[len(rows)]) / "weights.safetensors")), e["network"])
                    logits = m(torch.from_numpy(x_test.astype(np.float32) / 128))
                row["acc_eval"] = float((logits.argmax(1).numpy() == y_test).mean())
        else:
            row["error"] = [ln for ln in res["output"].splitlines() if "ERROR" in ln][:2]
        rows.append(row)
    return rows, info


def markdown(rows: list[dict[str, Any]], info: dict[str, Any], cmd: str) -> str:
    n = info["images"]
    lines = [
        "# MAX78000 exports through the vendor's ai8x-synthesis (round trip)", "",
        f"Measured {dt.date.today().isoformat()} on {platform.machine()} ({platform.python_version()}), "
        f"`{cmd}`; run `{info['run']}` ({info['data']}); vendor tool time {info['vendor_seconds']:.0f} s for "
        f"{len(rows)} networks.", "",
        f"Accuracy on the first {n} test images of the run's split: *ours* is our integer forward pass "
        "(`search_spaces._ai8x.integer_forward`) on our quantised weights (for ai85net5: on the vendor's integers); "
        "*vendor* is the vendor's own simulation functions (`izer.simulate.pooling_layer` / `conv2d_layer`) "
        "on the integers the vendor's `quantize.py` wrote, called per image (`sim = expected` says they reproduce "
        "`ai8xize.py`'s `expected.npy` for the sample input). *eval* is the float64 eval-mode forward pass that "
        "`nas qat` reports accuracies with. *identical* counts images with the same output vector.", "",
        "| network | arch | bits | accepted | cycles ours / vendor | weight bytes ours / vendor | sample output identical "
        "| sim = expected | test acc ours / vendor (/ eval) | identical outputs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["accepted"]:
            lines.append(f"| {r['name']} | `{r['arch']}` | {'/'.join(map(str, r['bits']))} | no: {'; '.join(r['error'])} "
                         "| | | | | | |")
            continue
        ev = f" / {100 * r['acc_eval']:.1f}%" if "acc_eval" in r else ""
        lines.append(
            f"| {r['name']} | `{r['arch']}` | {'/'.join(map(str, r['bits']))} | yes | {r['cycles_ours']:,} / "
            f"{r['cycles_vendor']:,} | {r['weight_ours']:,} / {r['weight_vendor']:,} | "
            f"{'yes' if r['identical'] else 'NO'} | {'yes' if r['sim_matches_expected'] else 'NO'} | "
            f"{100 * r['acc_ours']:.1f}% / {100 * r['acc_vendor']:.1f}%{ev} | {r['outputs_identical']}/{n} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", nargs="?", default="runs/max78000-400KB", help="a run directory with export/")
    ap.add_argument("--images", type=int, default=200, help="test images for the accuracies (default 200)")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args()
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise SystemExit(f"bench_vendor: no run directory {run_dir}; run `nas search --device max78000 --budget 400KB` "
                         "(then `nas qat`) first, or pass a run directory")
    with tempfile.TemporaryDirectory(prefix="bench_vendor_") as tmp:
        rows, info = bench(run_dir, args.images, Path(tmp))
    md = markdown(rows, info, "python benchmarks/bench_vendor.py " + " ".join(sys.argv[1:]))
    print(md)
    if args.out:
        Path(args.out).write_text(md)


if __name__ == "__main__":
    main()
