"""Loading real data sets from disk with ``nas.data.load_dataset`` (what ``--data`` does): time and memory.

Sets: the installed Fashion-MNIST (IDX, gzip; ``apt-get install dataset-fashion-mnist`` puts it in
``/usr/share/datasets/fashion-mnist/``; skipped, saying so, when missing) and, since CIFAR-10 is not
installed here and nothing is downloaded, a CIFAR-10-sized stand-in written to a temporary folder in
the original layout (``cifar-10-batches-py/``, five 10,000-image batches, a test batch and
``batches.meta``, pickled at protocol 2 with 8-bit strings as Python 2 wrote the originals; random
pixels). Each load runs in a fresh process (``--repeats`` times; the first one after writing or
installing may read from disk, the others from the page cache): wall time of ``load_dataset`` and
the process's peak resident memory (``ru_maxrss``) minus its resident memory just before the call, set against what
the loader's memory check assumes (IDX and CIFAR: ``BYTES_PER_PIXEL`` x pixels; uint8 ``.npz``: ``x``,
``PREPARE_BYTES_UINT8`` per element and ``y``) and the float32 arrays it returns. A CIFAR-10-sized
uint8 ``.npz`` is measured too.

    python benchmarks/bench_data.py --out benchmarks/results/data_load.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

FASHION = Path("/usr/share/datasets/fashion-mnist")

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from nas.data import load_dataset
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
before = rss()
t = time.perf_counter()
d = load_dataset(sys.argv[1])
sec = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out = sum(a.nbytes for a in (d.x_train, d.y_train, d.x_val, d.y_val, d.x_test, d.y_test))
print(json.dumps({"seconds": sec, "peak_added": peak - before, "arrays": out, "describe": d.describe(),
                  "classes": d.class_names, "pixels": int(sum(a.size for a in (d.x_train, d.x_val, d.x_test)))}))
"""


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Protocol 2 with bytes and str as 8-bit strings, as Python 2's cPickle wrote the CIFAR files."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def _save_str8(self, obj: bytes | str) -> None:
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw if len(raw) < 256
                   else pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = _save_str8
    dispatch[str] = _save_str8


def write_cifar10_standin(folder: Path, per_batch: int = 10_000) -> None:
    """A CIFAR-10-sized folder of random images in the original file layout."""
    import numpy as np

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
                 b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"filenames": [b"img_%05d.png" % i for i in range(per_batch)]}
        with open(folder / name, "wb") as f:
            _Py2Pickler(f, protocol=2).dump(batch)
    with open(folder / "batches.meta", "wb") as f:
        _Py2Pickler(f, protocol=2).dump({b"num_cases_per_batch": per_batch, b"label_names": names, b"num_vis": 3072})


def write_npz_standin(path: Path) -> None:
    """A CIFAR-10-sized ``.npz``: uint8 ``x`` [60000, 3, 32, 32], int64 ``y``."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 256, (60_000, 3, 32, 32), dtype=np.uint8), y=rng.integers(0, 10, 60_000))


def measure(path: Path, repeats: int) -> list[dict]:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, env=env,
                             check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def main(argv: list[str] | None = None) -> int:
    """Measure and write the table; see the module docstring."""
    from nas.data._data import PREPARE_BYTES_UINT8
    from nas.data._published import BYTES_PER_PIXEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    rows = []
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        sets: list[tuple[str, Path]] = []
        if (FASHION / "train-images-idx3-ubyte.gz").is_file():
            sets.append(("Fashion-MNIST (IDX, gzip), installed", FASHION))
        else:
            notes.append(f"Fashion-MNIST not measured: {FASHION} is missing (apt-get install dataset-fashion-mnist)")
        cifar = Path(tmp) / "cifar-10-batches-py"
        write_cifar10_standin(cifar)
        sets.append(("CIFAR-10-sized stand-in (python batches, random pixels)", cifar))
        npz = Path(tmp) / "cifar10_uint8.npz"
        write_npz_standin(npz)
        sets.append(("CIFAR-10-sized uint8 .npz (x [60000,3,32,32], random pixels)", npz))
        for label, path in sets:
            runs = measure(path, args.repeats)
            secs = [r["seconds"] for r in runs]
            r0 = runs[0]
            check = ((1 + PREPARE_BYTES_UINT8) * r0["pixels"] + 8 * 60_000 if path.suffix == ".npz"
                     else BYTES_PER_PIXEL * r0["pixels"])
            rows.append((label, r0["describe"], secs, max(r["peak_added"] for r in runs), r0["arrays"], check))
            print(label, r0["describe"], [f"{s:.2f}" for s in secs], file=sys.stderr)
    lines = [
        "# Loading data sets from disk (`--data`)",
        "",
        f"`python benchmarks/bench_data.py` on {dt.date.today().isoformat()}, {_cpu()}, "
        f"{os.cpu_count()} CPUs (shared with other jobs), Python {platform.python_version()}. Each load in a fresh "
        f"process, {args.repeats} times. Peak memory: the process's peak resident size during `load_dataset` "
        "above its resident size just before; memory check: what the loader requires available before reading "
        f"(IDX and CIFAR: `BYTES_PER_PIXEL` = {BYTES_PER_PIXEL} bytes per pixel; uint8 .npz: 1 + "
        f"`PREPARE_BYTES_UINT8` = {1 + PREPARE_BYTES_UINT8} bytes per element, plus y).",
        "",
        "| set | loaded as | seconds per load (each run) | peak memory added | arrays returned | memory check |",
        "|---|---|---|---|---|---|",
    ]
    for label, desc, secs, peak, arrays, check in rows:
        lines.append(f"| {label} | {desc} | {statistics.median(secs):.2f} median ({', '.join(f'{s:.2f}' for s in secs)}) "
                     f"| {_mb(peak)} | {_mb(arrays)} | {_mb(check)} |")
    lines += [""] + [f"- {n}" for n in notes]
    text = "\n".join(lines).rstrip() + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
