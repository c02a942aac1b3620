"""Run Analog Devices' ai8x-synthesis (``../shared/vendor/ai8x-synthesis``) on MAX78000 exports.

Used by the cross-check tests (``tests/nas/test_vendor_crosscheck.py``) and
``benchmarks/bench_vendor.py``; never by the product. Each network runs in its own subprocess
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
    """Cycles per layer, total cycles, weight and bias bytes from ai8xize's ``log.txt``."""
    lat = text[text.index("ESTIMATED LATENCY"):]
    layers = [int(v.replace(",", "")) for v in re.findall(r"^Layer \d+(?: \([^)]*\))?\s+([\d,]+)\s*$", lat.split("Total")[0], re.M)]
    total = int(re.search(r"Total\s+([\d,]+) cycles", lat)[1].replace(",", ""))
    weights = int(re.search(r"Weight memory:\s+([\d,]+) bytes", text)[1].replace(",", ""))
    bias = int(re.search(r"Bias memory:\s+([\d,]+) bytes", text)[1].replace(",", ""))
    return {"layer_cycles": layers, "cycles": total, "weight_bytes": weights, "bias_bytes": bias}


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
    True) and ``trusted_pickle``.
    """
    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        return list(ex.map(lambda j: _run_job(vendor, j, timeout), jobs))


def _main(spec: str) -> int:
    """Inside the vendor folder: quantize.py then ai8xize.py for one job (exit status of the first failure)."""
    job = json.loads(Path(spec).read_text())
    sys.path.insert(0, os.getcwd())
    out = Path(job["out_dir"])
    ck = job["checkpoint"]
    if job.get("quantize", True):
        q = str(out / f"{job['name']}_q.pth.tar")
        sys.argv = ["quantize.py", ck, q, "--device", "MAX78000"]
        from izer import quantize

        try:
            quantize.main()
        except SystemExit as e:
            if e.code not in (0, None):
                return int(e.code) if isinstance(e.code, int) else 1
        ck = q
    sys.argv = ["ai8xize.py", "--test-dir", str(out), "--prefix", job["name"], "--checkpoint-file", ck,
                "--config-file", job["yaml"], *SYNTH_FLAGS, "--sample-input", job["sample_input"],
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
