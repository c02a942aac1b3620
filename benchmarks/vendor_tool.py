"""Run Analog Devices' ai8x-synthesis (``../shared/vendor/ai8x-synthesis``) on MAX78000 or MAX78002 networks.

Used by the cross-check tests (``tests/nas/test_vendor_crosscheck.py``,
``tests/devices/test_max78002_vendor.py``) and ``benchmarks/bench_vendor.py`` /
``benchmarks/bench_max78002.py``; never by the product. Each network runs in its own subprocess
(``sys.executable`` with the vendor folder as working directory, as its README asks), which calls
``quantize.py``'s and ``ai8xize.py``'s ``main()`` in turn, so torch is imported once per network;
up to ``workers`` networks run at a time.

    python benchmarks/vendor_tool.py JOB.json     # (internal) one job, run in the vendor folder
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

VENDOR_DEPS = ("numpy", "torch", "yaml", "rich", "xxhash", "onnx", "git", "github")
"""Modules ai8x-synthesis imports (PyYAML, rich, xxhash, onnx, GitPython, PyGithub): the ``dev`` extras."""

SYNTH_FLAGS = ["--device", "MAX78000", "--compact-data", "--mexpress", "--timer", "0", "--softmax",
               "--yamllint", "none", "--verbose"]
"""ai8xize.py flags of our model cards (beyond paths and prefix)."""


def synth_flags(device: str = "MAX78000") -> list[str]:
    """:data:`SYNTH_FLAGS` for ``device`` (the vendor's part number, ``MAX78000`` or ``MAX78002``)."""
    return ["--device", device, *SYNTH_FLAGS[2:]]


def vendor_dir(repo: Path | None = None) -> Path:
    """``<repo>/../shared/vendor/ai8x-synthesis`` (``repo``: by default this file's repository)."""
    repo = (repo or Path(__file__).resolve().parents[1]).resolve()
    return repo.parent / "shared" / "vendor" / "ai8x-synthesis"


def unavailable(vendor: Path) -> str | None:
    """Why the vendor tool cannot run here (None when it can)."""
    if not (vendor / "ai8xize.py").is_file() or not (vendor / "quantize.py").is_file():
        return f"no ai8x-synthesis at {vendor}"
    missing = [m for m in VENDOR_DEPS if importlib.util.find_spec(m) is None]
    if missing:
        return f"ai8x-synthesis needs {', '.join(missing)} (pip install -e '.[dev]')"
    return None


def parse_log(text: str) -> dict[str, Any]:
    """Cycles per layer, total cycles, weight and bias bytes (used and the chip's total), kernel
    offsets and lengths (columns) from ai8xize's ``log.txt``; no cycle keys when the log has no
    ``ESTIMATED LATENCY`` (the tool prints none for the MAX78002 unless asked, see :func:`run_vendor`)."""
    out: dict[str, Any] = {}
    if "ESTIMATED LATENCY" in text:
        lat = text[text.index("ESTIMATED LATENCY"):]
        out["layer_cycles"] = [int(v.replace(",", "")) for v in re.findall(r"^Layer \d+(?: \([^)]*\))?\s+([\d,]+)\s*$", lat.split("Total")[0], re.M)]
        out["cycles"] = int(re.search(r"Total\s+([\d,]+) cycles", lat)[1].replace(",", ""))
    w = re.search(r"Weight memory:\s+([\d,]+) bytes out of ([\d,]+) bytes", text)
    b = re.search(r"Bias memory:\s+([\d,]+) bytes out of ([\d,]+) bytes", text)
    out["weight_bytes"], out["weight_capacity_bytes"] = (int(v.replace(",", "")) for v in w.groups())
    out["bias_bytes"], out["bias_capacity_bytes"] = (int(v.replace(",", "")) for v in b.groups())
    for key, name in (("kernel_offsets", "Kernel offset"), ("kernel_lengths", "Kernel length")):
        m = re.search(rf"^{name}\s+= \[([^\]]*)\]", text, re.M)
        if m:
            out[key] = [int(v) for v in m[1].split(",") if v.strip()]
    return out


def _run_job(vendor: Path, job: dict[str, Any], timeout: float) -> dict[str, Any]:
    out = Path(job["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "job.json"
    spec.write_text(json.dumps(job))
    env = dict(os.environ)
    if job.get("trusted_pickle"):  # the vendor's own checkpoints pickle an optimizer (torch >= 2.6 refuses)
        env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        p = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(spec)], cwd=vendor, env=env,
                           capture_output=True, text=True, timeout=timeout)
        rc, output = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, output = -1, f"timed out after {timeout:.0f} s: {e}"
    res: dict[str, Any] = {"name": job["name"], "rc": rc, "output": output}
    test_dir = out / job["name"]
    if rc == 0 and (test_dir / "log.txt").is_file():
        res.update(parse_log((test_dir / "log.txt").read_text()))
        import numpy as np

        res["expected"] = np.load(test_dir / "expected.npy")
    return res


def run_vendor(vendor: Path, jobs: list[dict[str, Any]], *, workers: int = 2,
               timeout: float = 300.0) -> list[dict[str, Any]]:
    """Quantise (unless ``quantize`` is False) and synthesise each job; returns per job ``rc``,
    the tool's ``output``, and when accepted ``layer_cycles``, ``cycles``, ``weight_bytes``,
    ``bias_bytes`` and ``expected`` (the simulated output for the sample input).

    A job: ``name`` (the prefix), ``checkpoint``, ``yaml``, ``sample_input``, ``out_dir`` (the
    quantised checkpoint and ``<out_dir>/<name>/`` go there), optional ``quantize`` (default
    True), ``trusted_pickle``, ``device`` (``MAX78000`` by default, or ``MAX78002``) and
    ``latency_calc``: have the tool print its ``ESTIMATED LATENCY`` for a device whose
    description leaves it off (the MAX78002: ``DevAI87.SUPPORT_LATENCY_CALC`` is False), i.e.
    run the vendor's ``izer/latency.py`` formula on the vendor's per-layer parameters with that
    device's description. ``sample_input`` may be None (the tool's ``tests/sample_<dataset>.npy``).
    """
    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        return list(ex.map(lambda j: _run_job(vendor, j, timeout), jobs))


def _main(spec: str) -> int:
    """Inside the vendor folder: quantize.py then ai8xize.py for one job (exit status of the first failure)."""
    job = json.loads(Path(spec).read_text())
    sys.path.insert(0, os.getcwd())
    out = Path(job["out_dir"])
    ck = job["checkpoint"]
    device = job.get("device", "MAX78000")
    if job.get("latency_calc"):
        from izer import tornadocnn

        tornadocnn.DevAI87.SUPPORT_LATENCY_CALC = True
    if job.get("quantize", True):
        q = str(out / f"{job['name']}_q.pth.tar")
        sys.argv = ["quantize.py", ck, q, "--device", device]
        from izer import quantize

        try:
            quantize.main()
        except SystemExit as e:
            if e.code not in (0, None):
                return int(e.code) if isinstance(e.code, int) else 1
        ck = q
    sample = ["--sample-input", job["sample_input"]] if job.get("sample_input") else []
    sys.argv = ["ai8xize.py", "--test-dir", str(out), "--prefix", job["name"], "--checkpoint-file", ck,
                "--config-file", job["yaml"], *synth_flags(device), *sample,
                "--sample-numpy-filename", "expected"]
    from izer.izer import main

    try:
        main()
    except SystemExit as e:
        return 0 if e.code in (0, None) else (int(e.code) if isinstance(e.code, int) else 1)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))


def ai85net5(pool_type: str = "avg") -> Any:
    """The vendor's MNIST ai85net5, layer by layer (ai8x-synthesis ``networks/mnist-chw-ai85.yaml``:
    conv4 has a 2x2 average pool; ``pool_type="max"`` gives the variant ``bench_qat.py`` was measured with)."""
    from search_spaces import Network

    return Network.from_dict({"name": "ai85net5", "input": [1, 28, 28], "layers": [
        {"op": "conv2d", "in_channels": 1, "out_channels": 60, "in_dim": [28, 28], "pad": 1, "name": "conv1"},
        {"op": "conv2d", "in_channels": 60, "out_channels": 60, "in_dim": [28, 28], "pad": 2, "pool": 2,
         "name": "conv2"},
        {"op": "conv2d", "in_channels": 60, "out_channels": 56, "in_dim": [16, 16], "pad": 1, "pool": 2,
         "name": "conv3"},
        {"op": "conv2d", "in_channels": 56, "out_channels": 12, "in_dim": [8, 8], "pad": 1, "pool": 2,
         "pool_type": pool_type, "name": "conv4"},
        {"op": "linear", "in_channels": 12, "out_channels": 10, "in_dim": [4, 4], "flatten": True,
         "activation": "none", "output_width": 32, "name": "fc"},
    ]})


VENDOR_NETWORKS: dict[str, tuple[str, str, tuple[int, int, int], str]] = {
    "ai85net5": ("trained/ai85-mnist-qat8-q.pth.tar", "networks/mnist-chw-ai85.yaml", (1, 28, 28),
                 "tests/sample_mnist.npy"),
    "ai85nascifarnet": ("trained/ai85-cifar10-qat8-q.pth.tar", "networks/cifar10-nas.yaml", (3, 32, 32),
                        "tests/sample_cifar-10.npy"),
}
"""The vendor's own networks with the trained, quantised checkpoints its copy here keeps: name ->
(checkpoint, network YAML, input shape, sample input), paths relative to the vendor folder. The
checkpoints are already quantised (``quantize.py`` output); ``quantize.py`` does the same for
either chip (it reads only ``DEFAULT_WEIGHT_BITS`` and ``ACTIVATION_BITS``, 8 on both), so they
go straight to ``ai8xize.py`` for the MAX78002 too."""


def vendor_network(vendor: Path, name: str) -> tuple[Any, int]:
    """Our :class:`~search_spaces.Network` of one of :data:`VENDOR_NETWORKS`, read from the vendor's
    YAML (operator, kernel, padding, pooling, flatten, output width, activation) and checkpoint
    (channels, weight bits, which layers have a bias), and the bias bytes the tool leaves out of
    bias memory (layers whose bias integers are all 0: "All bias values are zero").

    Sequential networks only (one checkpoint layer per YAML layer, in order)."""
    import torch
    import yaml

    from search_spaces import Layer, Network

    ckpt, net_yaml, shape, _ = VENDOR_NETWORKS[name]
    cfg = yaml.safe_load((vendor / net_yaml).read_text())
    sd = torch.load(vendor / ckpt, map_location="cpu", weights_only=False)["state_dict"]
    names = [k[: -len(".op.weight")] for k in sd if k.endswith(".op.weight")]
    layers, zero = [], 0
    c, h, w = shape
    for i, (spec, lname) in enumerate(zip(cfg["layers"], names)):
        wt = sd[f"{lname}.op.weight"]
        op = str(spec.get("operation", spec.get("op", "conv2d"))).lower()
        op = "linear" if op in ("mlp", "linear", "fc") else op
        k = str(spec.get("kernel_size", "1x1" if op == "linear" else "3x3")).split("x")
        pool = int(spec.get("max_pool", spec.get("avg_pool", 1)))
        stride = int(spec.get("pool_stride", pool))
        pad = int(spec.get("pad", 0 if op == "linear" else 1))
        bits = int(sd[f"{lname}.weight_bits"].reshape(-1)[0]) if f"{lname}.weight_bits" in sd else 8
        b = sd.get(f"{lname}.op.bias")
        act = str(spec.get("activate", "none")).lower()
        layer = Layer(
            op=op, in_channels=c, out_channels=int(wt.shape[0]), in_dim=(h, w),
            kernel=(1, 1) if op == "linear" else (int(k[0]), int(k[-1])), pad=(0, 0) if op == "linear" else (pad, pad),
            pool=(pool, pool), pool_stride=(stride, stride), pool_type="avg" if "avg_pool" in spec else "max",
            weight_bits=bits, flatten=bool(spec.get("flatten", False)),
            activation=act if act in ("relu", "abs") else "none", bias=b is not None,
            output_width=int(spec.get("output_width", 8)), name=lname,
        )
        if b is not None and not torch.any(b != 0):
            zero += layer.out_channels
        layers.append(layer)
        c, (h, w) = layer.out_channels, layer.out_dim
        assert i < len(names)
    return Network(input=shape, layers=tuple(layers), name=name), zero


MAX78002_NETWORKS: list[tuple[str, tuple[int, int, int], str, dict[str, Any]]] = [
    # one input channel: layer 0 sits on processor 0, at the top of its extended kernel memory
    ("b8241", (1, 16, 16), "16k3b8|24k3b2,32k1b4|fcb1", {"first_last_8bit": False}),
    # three one-channel layers on quadrant heads: the second cannot share processor 0 (the tool's
    # top-down search would put it over the first), the third fits below the first
    ("one_ch", (1, 8, 8), "1k1b8,1k1b8|8k3b8|fcb8", {"widths": (1, 8)}),
    # 41 hardware layers: over the MAX78000's 32, within the MAX78002's 128
    ("deep41", (1, 16, 16), ",".join(["16k3b8"] + ["16k3b4"] * 19) + "|" + ",".join(["16k1b2"] * 20) + "|fcb8",
     {"max_depth": 20}),
    # 1 -> 1024 channels, 3x3, 8 bits: 1,024 kernel columns on processor 0 (over the MAX78000's
    # 768: exactly its extended memory) and 1,024 bias bytes (over the MAX78000's 512-byte bank)
    ("tall1024", (1, 8, 8), "1024k3b8|16k1b4|fcb8", {"widths": (16, 1024)}),
    # layer 0 writes 72x72 x 4 bytes = 20,736 per instance: over the MAX78000's 16 KiB budget
    ("big72", (1, 72, 72), "16k3b8|16k3b4|16k3b2|16k1b8|fcb8", {"max_units": 4}),
]
"""Networks of our ``ai8x`` space (``hardware="max78002"``, 10 classes) checked against the tool for
the MAX78002: (name, input shape, architecture, space options); 1-, 2-, 4- and 8-bit layers."""


def random_model(space: Any, arch: str, seed: int) -> Any:
    """A folded, quantised network with random weights and BatchNorm statistics from random inputs
    (every layer's activations spread, non-zero biases), as QAT leaves one."""
    import torch

    from search_spaces._ai8x import fold_bn

    torch.manual_seed(seed)
    model = space.build(arch, quantize=False)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randint(-128, 128, (32, *space.input_shape)).float() / 128)
        for layer in model.layers:  # non-zero biases (the affine-free BN folds to -mean/std)
            if layer.op.bias is not None:
                layer.op.bias.uniform_(-0.05, 0.05)
    fold_bn(model)
    model.set_quantize(True)
    return model.eval()


def export_for(model: Any, network: Any, out: Path, name: str, sample: Any, device: Any) -> dict[str, Path]:
    """``nas.export.export_max78000``'s vendor files (checkpoint, known-answer pair) with the
    synthesis YAML laid out by ``device`` (as ``export_max78000(..., device=device)`` writes them, without the
    safetensors and network files)."""
    import numpy as np
    import torch

    from nas.export import checkpoint_state, sample_pair, synthesis_yaml

    out.mkdir(parents=True, exist_ok=True)
    files = {"checkpoint": out / f"{name}_qat.pth.tar", "synthesis_yaml": out / "ai8x-synthesis.yaml",
             "sample_input": out / "sample_input.npy", "sample_output": out / "sample_output.npy"}
    torch.save({"epoch": 1, "arch": f"nas_{name}", "state_dict": checkpoint_state(model, network), "extras": {}},
               files["checkpoint"])
    files["synthesis_yaml"].write_text(synthesis_yaml(network, arch=f"nas_{name}", dataset="TEST", device=device))
    x, y = sample_pair(model, network, sample)
    np.save(files["sample_input"], x, allow_pickle=False)
    np.save(files["sample_output"], y, allow_pickle=False)
    return files


def max78002_runs(vendor: Path, root: Path, *, workers: int = 2) -> dict[str, dict[str, Any]]:
    """The vendor's networks (:data:`VENDOR_NETWORKS`) and ours (:data:`MAX78002_NETWORKS`) through
    ``ai8xize.py --device MAX78002`` with its latency formula on (``latency_calc``). Per name:
    ``network`` (ours), ``zero_bias`` (bias bytes of all-zero biases, which the tool leaves out),
    ``ours`` (a network of our space), ``files`` (ours: the export) and ``vendor`` (the job result)."""
    import numpy as np

    from devices import get_device
    from search_spaces import get_space

    dev = get_device("max78002")
    jobs: list[dict[str, Any]] = []
    info: dict[str, dict[str, Any]] = {}
    for name, (ckpt, net_yaml, _, sample) in VENDOR_NETWORKS.items():
        network, zero = vendor_network(vendor, name)
        info[name] = {"network": network, "zero_bias": zero, "ours": False}
        jobs.append({"name": name, "checkpoint": str(vendor / ckpt), "yaml": str(vendor / net_yaml),
                     "sample_input": sample, "out_dir": str(root / name), "quantize": False,
                     "trusted_pickle": True, "device": "MAX78002", "latency_calc": True})
    for i, (name, shape, arch, opts) in enumerate(MAX78002_NETWORKS):
        space = get_space("ai8x", input_shape=shape, num_classes=10, hardware="max78002", **opts)
        network = space.network(arch)
        model = random_model(space, arch, i)
        files = export_for(model, network, root / name, name, np.random.default_rng(i).integers(-128, 128, shape) / 128.0, dev)
        params = model.vendor_params()
        zero = sum(layer.out_channels for layer, p in zip(network.layers, params)
                   if p["bias"] is not None and not np.any(p["bias"]))
        info[name] = {"network": network, "zero_bias": zero, "ours": True, "files": files}
        jobs.append({"name": name, "checkpoint": str(files["checkpoint"]), "yaml": str(files["synthesis_yaml"]),
                     "sample_input": str(files["sample_input"]), "out_dir": str(root / name / "synthesis"),
                     "device": "MAX78002", "latency_calc": True})
    for res in run_vendor(vendor, jobs, workers=workers, timeout=600):
        info[res["name"]]["vendor"] = res
    return info
