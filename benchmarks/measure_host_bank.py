"""Measure a bank of real "devices" on this machine: one network set, several runtimes.

The product's own torch builds (``search_spaces``) of NAS-Bench-201 and FBNet networks are timed
under configurations that behave like different hardware (``CONFIGS``): onnxruntime fp32 at 1
and 2 threads, a larger batch, int8 QDQ models, PyTorch eager, another input resolution. The
architectures of a space are its 10 reference architectures (the predictor's hardware
embedding) and a seeded sample of the other rows of the vendored HELP table, so every one has a
HELP index (NearestDevice and the HELP devices can be compared on the same rows).

Method (the ``host-cpu`` device's, ``devices._measure.time_models``): every model is exported
once with ``devices.export_onnx`` (legacy exporter, opset 17, fixed shapes; int8 models by
onnxruntime's static QDQ quantisation, calibrated on random inputs) and kept on disk without its
large weight tensors (their shape, dtype, mean and spread are kept; they are redrawn when the
model is loaded: latency does not depend on weight values, and 2,000 full models would take
tens of GB). Then rounds: each round times every (architecture, configuration) once, the
architectures in a new seeded random order (the configurations of one architecture in a random
order too): a fresh session, ``--warmup`` untimed runs, ``--number`` timed runs whose median is
the round value. A bank latency is the median of an architecture's round values. Rounds of both
spaces are interleaved, and a subset (``--repeat``) is timed a second, independent time in the
same rounds: the Spearman between the two timings is the repeat-measurement ceiling.

Resumable: every (architecture, round) is appended as one JSON line to a work file under
``OUT/.work/`` as soon as it is timed; a killed run loses at most the unit in progress (a
half-written last line is cut off on the next start) and a re-run with the same options skips
what is done (``--rounds`` may be raised later to add rounds). The tables (``OUT/<space>.csv.gz``,
``OUT/<space>_repeat.csv.gz``, read by ``benchmarks/host_bank.py``) and ``OUT/README.md`` are
written when every round is complete.

    python benchmarks/measure_host_bank.py                     # the full bank (see --estimate)
    python benchmarks/measure_host_bank.py --estimate 6        # time 6 archs per space, extrapolate
    python benchmarks/measure_host_bank.py --quick             # a small trial into runs/host_bank_quick
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import functools
import gzip
import io
import json
import logging
import os
import platform
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host_bank import KEY_COLUMNS, N_REFS, repeat_path, spearman, table_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "data" / "host_bank"
QUICK_OUT = ROOT / "runs" / "host_bank_quick"
SPACES: tuple[str, ...] = ("nasbench201", "fbnet")
STRIP_MIN = 2048
"""Initializers with more elements than this are stored as (shape, dtype, statistics) only."""
_META_KEY = "hwnas_bank_stripped"
FORMAT = 2


class BankError(Exception):
    """Bad options or a work folder that does not fit them (one line, exit 2)."""


@dataclass(frozen=True)
class BankConfig:
    """One bank device: a runtime, precision, thread count, batch and input side."""

    runtime: str  # "ort" or "torch"
    dtype: str  # "fp32" or "int8"
    threads: int
    batch: int
    hw: int  # input side (square)
    description: str

    @property
    def variant(self) -> str:
        """The ONNX model this configuration runs (shared by configurations that differ in threads)."""
        return f"{self.dtype}_b{self.batch}_r{self.hw}"


CONFIGS: dict[str, BankConfig] = {
    "ort_fp32_1t": BankConfig("ort", "fp32", 1, 1, 32, "onnxruntime fp32, 1 thread, batch 1, 32x32"),
    "ort_fp32_2t": BankConfig("ort", "fp32", 2, 1, 32, "onnxruntime fp32, 2 threads, batch 1, 32x32"),
    "ort_fp32_2t_b8": BankConfig("ort", "fp32", 2, 8, 32, "onnxruntime fp32, 2 threads, batch 8, 32x32"),
    "ort_int8_1t": BankConfig("ort", "int8", 1, 1, 32, "onnxruntime int8 QDQ (static, per-tensor, uint8 "
                              "activations, 7-bit reduce_range weights), 1 thread, batch 1, 32x32"),
    "torch_1t": BankConfig("torch", "fp32", 1, 1, 32, "PyTorch eager fp32 (BatchNorm unfolded), 1 thread, "
                           "batch 1, 32x32"),
    "ort_fp32_1t_r64": BankConfig("ort", "fp32", 1, 1, 64, "onnxruntime fp32, 1 thread, batch 1, 64x64 input"),
}


@dataclass(frozen=True)
class Settings:
    """What a bank's numbers depend on (a work folder is only resumed with equal settings)."""

    spaces: tuple[str, ...]
    n_archs: int
    n_repeat: int
    configs: tuple[str, ...]
    warmup: int
    number: int
    seed: int


# ---------------------------------------------------------------------------------------- architectures
@functools.cache
def _reference_archs(space: str) -> tuple[str, ...]:
    """The shipped predictor's reference architectures (its hardware embedding), canonical."""
    import predictors
    from search_spaces import get_space

    sp = get_space(space)
    return tuple(sp.format(a) for a in predictors.load(space).ref_archs_)


def choose_archs(space: str, n_archs: int, seed: int) -> tuple[list[str], list[int], list[int]]:
    """(architectures, HELP indices, reference positions): the 10 references first, then a seeded
    sample of the other rows of the vendored HELP table."""
    import predictors
    from search_spaces import get_space

    sp = get_space(space)
    table = predictors.load_latency_table(space)
    index = {sp.format(a): i for i, a in enumerate(table.archs)}
    refs = list(_reference_archs(space))
    if len(refs) != N_REFS or len(set(refs)) != N_REFS:
        raise BankError(f"{space}: expected {N_REFS} distinct reference architectures, got {len(set(refs))}")
    ref_rows = {index[a] for a in refs if a in index}
    rest = [i for i in range(len(table.archs)) if i not in ref_rows]
    n_rest = n_archs - N_REFS
    if n_rest < 0 or n_rest > len(rest):
        raise BankError(f"--n-archs must be between {N_REFS} and {N_REFS + len(rest)} for {space}, got {n_archs}")
    rng = np.random.default_rng([seed, SPACES.index(space) if space in SPACES else 99])
    pick = sorted(rng.choice(len(rest), size=n_rest, replace=False).tolist())
    others = [sp.format(table.archs[rest[i]]) for i in pick]
    archs = refs + others
    return archs, [index.get(a, -1) for a in archs], list(range(N_REFS)) + [-1] * n_rest


def repeat_ids(n_archs: int, n_repeat: int, seed: int) -> list[int]:
    """The bank rows timed a second time (the references and a seeded sample)."""
    n_repeat = min(n_repeat, n_archs)
    rng = np.random.default_rng([seed, 7])
    rest = rng.permutation(np.arange(N_REFS, n_archs))[: max(n_repeat - N_REFS, 0)].tolist()
    return sorted(list(range(min(N_REFS, n_repeat))) + [int(i) for i in rest])


# ---------------------------------------------------------------------------------------- models
def _tensors(model: Any) -> Iterator[tuple[str, Any]]:
    """(key, TensorProto) of the initializers and of the Constant nodes' values (editable in place)."""
    for t in model.graph.initializer:
        yield "init:" + t.name, t
    for node in model.graph.node:
        if node.op_type == "Constant":
            for att in node.attribute:
                if att.name == "value":
                    yield "const:" + node.output[0], att.t


def strip_weights(model: Any) -> Any:
    """The ONNX model with its large tensors (initializers, constants) emptied; their shape, dtype
    and value statistics go to a metadata entry so :func:`fill_weights` can redraw them."""
    from onnx import TensorProto, numpy_helper

    stats: dict[str, list[Any]] = {}
    for key, t in _tensors(model):
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        if n <= STRIP_MIN:
            continue
        a = numpy_helper.to_array(t)
        if a.dtype.kind == "f":
            stats[key] = ["f", float(a.mean()), float(a.std())]
        else:
            stats[key] = ["i", int(a.min()), int(a.max())]
        t.CopyFrom(TensorProto(name=t.name, data_type=t.data_type, dims=list(t.dims)))
    model.metadata_props.add(key=_META_KEY, value=json.dumps(stats))
    return model


def fill_weights(data: bytes, seed: int) -> bytes:
    """A runnable model (serialised) from a stripped one: emptied tensors redrawn from their
    statistics (normal with their mean and spread; integers uniform in their range; a constant
    tensor, e.g. zeros, stays that constant)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(data)
    meta = next((p.value for p in model.metadata_props if p.key == _META_KEY), None)
    if meta is None:
        return data
    stats = json.loads(meta)
    rng = np.random.default_rng(seed)
    for key, t in _tensors(model):
        if key not in stats:
            continue
        kind, a, b = stats[key]
        dtype = helper.tensor_dtype_to_np_dtype(t.data_type)
        shape = tuple(t.dims)
        if a == b if kind == "i" else b == 0:
            arr = np.full(shape, a, dtype=dtype)
        elif kind == "f":
            arr = rng.normal(a, b, size=shape).astype(dtype)
        else:
            arr = rng.integers(a, b + 1, size=shape).astype(dtype)
        t.CopyFrom(numpy_helper.from_array(arr, t.name))
    return model.SerializeToString()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def model_path(work: Path, space: str, arch_id: int, variant: str) -> Path:
    """Where the stripped model of one architecture and variant is kept."""
    return work / space / "models" / f"{arch_id:05d}_{variant}.onnx"


def prepare_arch(space: str, arch: str, arch_id: int, configs: Sequence[str], work: Path) -> None:
    """Export (and quantise) the ONNX models ``configs`` need for one architecture, if not yet there."""
    import onnx

    from devices import export_onnx

    variants = {CONFIGS[c].variant: CONFIGS[c] for c in configs if CONFIGS[c].runtime == "ort"}
    todo = {v: c for v, c in variants.items() if not model_path(work, space, arch_id, v).exists()}
    if not todo:
        return
    model_path(work, space, arch_id, "x").parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hwnas-bank-") as tmp:
        for v, c in todo.items():
            fp32 = os.path.join(tmp, f"fp32_b{c.batch}_r{c.hw}.onnx")
            if not os.path.exists(fp32):
                export_onnx(space, arch, fp32, seed=arch_id, batch=c.batch, input_hw=c.hw)
            src = fp32
            if c.dtype == "int8":
                src = os.path.join(tmp, f"{v}.onnx")
                quantize_int8(fp32, src, seed=arch_id)
            model = strip_weights(onnx.load(src))
            _atomic_write(model_path(work, space, arch_id, v), model.SerializeToString())


def quantize_int8(src: str, dst: str, *, seed: int = 0, n_calib: int = 4) -> None:
    """onnxruntime static QDQ quantisation of ``src`` (per-tensor int8 weights, uint8 activations,
    ``reduce_range``: the advice for x86 CPUs without VNNI), calibrated on random inputs. Per-tensor:
    onnxruntime's per-channel quantiser loops over channels in Python (seconds per FBNet model)."""
    import warnings

    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from devices._measure import random_feed

    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    feeds = [random_feed(sess, seed=seed * 100 + k) for k in range(n_calib)]
    del sess

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.it, None)

    root = logging.getLogger()
    level = root.level
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="hwnas-calib-") as cache:
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)  # the quantiser logs advice per bias and per model
        cwd = os.getcwd()
        os.chdir(cache)  # the calibrator writes an augmented model into the working folder
        try:
            quantize_static(src, dst, _Reader(), quant_format=QuantFormat.QDQ, per_channel=False,
                            reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        except ValueError as e:
            if "No data is collected" not in str(e):
                raise
            # No tensor depends on the input (e.g. a NAS-Bench-201 cell of only 'none' edges, whose
            # output the exporter folds to a constant): nothing to quantise, the int8 model is the
            # fp32 one.
            shutil.copyfile(src, dst)
        finally:
            os.chdir(cwd)
            root.setLevel(level)


def _prep_job(job: tuple[str, str, int, tuple[str, ...], str]) -> tuple[str, int, float, float]:
    """Worker: :func:`prepare_arch`; returns (space, arch id, wall s, CPU s)."""
    import torch

    torch.set_num_threads(1)
    space, arch, arch_id, configs, work = job
    w0, c0 = time.perf_counter(), time.process_time()
    prepare_arch(space, arch, arch_id, configs, Path(work))
    return space, arch_id, time.perf_counter() - w0, time.process_time() - c0


def prepare_all(jobs: Sequence[tuple[str, str, int, tuple[str, ...], str]], n_jobs: int,
                done: Callable[[str, int, float, float], None]) -> None:
    """Run :func:`_prep_job` for every job, in ``n_jobs`` processes (1: in this one)."""
    if n_jobs <= 1 or len(jobs) <= 1:
        for j in jobs:
            done(*_prep_job(j))
        return
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("spawn")) as pool:
        futs = [pool.submit(_prep_job, j) for j in jobs]
        try:
            for f in cf.as_completed(futs):
                done(*f.result())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


# ---------------------------------------------------------------------------------------- timing
def _torch_runner(space: str, arch: str, c: BankConfig, seed: int) -> Callable[[], Any]:
    import torch

    from search_spaces import get_space

    torch.manual_seed(seed)
    module = get_space(space).build(arch).eval()
    ch = module.input_size[0]
    x = torch.randn(c.batch, ch, c.hw, c.hw)

    def run() -> Any:
        with torch.inference_mode():
            return module(x)

    return run


def _ort_runner(sess: Any, feed: dict) -> Callable[[], Any]:
    def run() -> Any:
        return sess.run(None, feed)

    return run


def time_unit(space: str, arch: str, arch_id: int, configs: Sequence[str], work: Path, *,
              warmup: int, number: int, seed: int) -> dict[str, float]:
    """One round value (ms) per configuration for one architecture: configurations in a seeded
    random order, each a fresh session (or module), ``warmup`` runs, the median of ``number``."""
    import torch

    from devices._measure import make_session, random_feed, time_models

    order = list(configs)
    random.Random(seed).shuffle(order)
    out: dict[str, float] = {}
    threads = torch.get_num_threads()
    for name in order:
        c = CONFIGS[name]
        if c.runtime == "torch":
            torch.set_num_threads(c.threads)
            run = _torch_runner(space, arch, c, arch_id)
        else:
            data = fill_weights(model_path(work, space, arch_id, c.variant).read_bytes(), arch_id)
            sess = make_session(data, c.threads)  # type: ignore[arg-type]  (onnxruntime takes bytes)
            feed = random_feed(sess, seed=arch_id)
            run = _ort_runner(sess, feed)
        try:
            t = time_models([(name, run)], warmup=warmup, number=number, min_rounds=1, max_rounds=1,
                            max_seconds=1e9, seed=seed)[0]
        finally:
            torch.set_num_threads(threads)
        out[name] = t.rounds[0]
        del run
    return {k: out[k] for k in configs}


# ---------------------------------------------------------------------------------------- work files
class WorkFile:
    """Append-only JSON-lines record of one space's timed units (header line first)."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.done: dict[tuple[str, int, int], dict[str, float]] = {}
        self.loads: list[float] = []
        self.recovered = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > 0:
            self._load()
        else:
            self._append(header)

    def _load(self) -> None:
        raw = self.path.read_bytes()
        end = raw.rfind(b"\n") + 1
        if end < len(raw):  # a half-written last line (killed mid-write): cut it off
            self.recovered = len(raw) - end
            with open(self.path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
            raw = raw[:end]
        lines = raw.decode("utf-8", "replace").splitlines()
        try:
            head = json.loads(lines[0]) if lines else None
        except json.JSONDecodeError:
            head = None
        if not isinstance(head, dict) or head.get("kind") != "header":
            raise BankError(f"{self.path}: not a bank work file (bad first line); delete it or use another --out")
        want = {k: v for k, v in self.header.items() if k != "started"}
        have = {k: v for k, v in head.items() if k != "started"}
        if want != have:
            diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
            raise BankError(f"{self.path} was made with other settings ({', '.join(diff)} differ); "
                            "re-run with the same options or use another --out")
        self.header = head
        for n, line in enumerate(lines[1:], start=2):
            try:
                rec = json.loads(line)
                key = (str(rec["pass"]), int(rec["round"]), int(rec["arch"]))
                ms = {str(k): float(v) for k, v in rec["ms"].items()}
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise BankError(f"{self.path}: line {n} is damaged; delete the file to start this space over") from None
            self.done[key] = ms
            if "load" in rec:
                self.loads.append(float(rec["load"]))

    def _append(self, rec: dict[str, Any]) -> None:
        line = (json.dumps(rec, separators=(",", ":")) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def add(self, pass_: str, round_: int, arch_id: int, ms: dict[str, float]) -> None:
        """Record one timed unit (durably, before returning)."""
        load = os.getloadavg()[0]
        self._append({"pass": pass_, "round": round_, "arch": arch_id, "ms": ms, "load": round(load, 2),
                      "t": round(time.time(), 1)})
        self.done[(pass_, round_, arch_id)] = ms
        self.loads.append(load)


@contextlib.contextmanager
def _locked(work: Path) -> Iterator[None]:
    work.mkdir(parents=True, exist_ok=True)
    fd = os.open(work / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BankError(f"another measure_host_bank run is using {work.parent}; wait for it or use another --out") from None
        yield
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------- the run
def machine() -> dict[str, Any]:
    """The machine and library versions (recorded with the bank)."""
    import onnx
    import onnxruntime
    import torch

    from devices import cpu_name

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
            "onnx": onnx.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "torch_threads_default": torch.get_num_threads()}


@dataclass
class Space:
    """One space's architectures, repeat subset and work file."""

    name: str
    archs: list[str]
    help_index: list[int]
    ref: list[int]
    repeat: list[int]
    work: WorkFile


def _units(spaces: Sequence[Space], round_: int, seed: int) -> list[tuple[Space, str, int]]:
    units = [(s, "main", i) for s in spaces for i in range(len(s.archs))]
    units += [(s, "repeat", i) for s in spaces for i in s.repeat]
    random.Random(f"{seed}-{round_}").shuffle(units)
    return units


class _LineProgress:
    """The progress bar's interface for a log file: a plain line at most every ``every`` seconds."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self.tasks: dict[int, list[Any]] = {}

    def __enter__(self) -> _LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: int, info: str = "") -> int:
        self.tasks[len(self.tasks)] = [description, total, 0, time.perf_counter(), 0.0]
        return len(self.tasks) - 1

    def update(self, task: int, description: str) -> None:
        self.tasks[task][0] = description

    def advance(self, task: int) -> None:
        t = self.tasks[task]
        t[2] += 1
        now = time.perf_counter()
        if now - t[4] >= self.every or t[2] == t[1]:
            t[4] = now
            el = now - t[3]
            eta = el / t[2] * (t[1] - t[2])
            print(f"{t[0]}: {t[2]}/{t[1]}, {el / 60:.1f} min elapsed, ETA {eta / 60:.1f} min", flush=True)


def _progress() -> Any:
    """The command line's progress bar (``nas.cli.progress_bar``) on a terminal, else plain lines."""
    if not sys.stdout.isatty():
        return _LineProgress()
    from rich.console import Console

    from nas.cli import progress_bar

    return progress_bar(Console(stderr=True), show=True)


def _new_costs() -> dict[str, float]:
    return {"prep_s": 0.0, "prep_cpu_s": 0.0, "prep_n": 0, "unit_s": 0.0, "unit_cpu_s": 0.0, "unit_n": 0}


def run_bank(settings: Settings, rounds: int, out: Path, *, log: Callable[[str], None] = print,
             show_progress: bool = True, trial: bool = False, command: str = "", jobs: int = 1) -> dict[str, Any]:
    """Prepare, time and tabulate (resuming what ``out/.work`` holds); returns the run record."""
    work = out / ".work"
    with _locked(work):
        import torch

        torch.set_num_threads(1)
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        load_start = os.getloadavg()
        spaces: list[Space] = []
        for name in settings.spaces:
            archs, hidx, ref = choose_archs(name, settings.n_archs, settings.seed)
            rep = repeat_ids(len(archs), settings.n_repeat, settings.seed)
            header = {"kind": "header", "format": FORMAT, "space": name, "archs": archs, "repeat": rep,
                      "configs": list(settings.configs), "warmup": settings.warmup, "number": settings.number,
                      "seed": settings.seed, "started": started}
            wf = WorkFile(work / f"{name}.jsonl", header)
            if wf.recovered:
                log(f"{wf.path}: cut off a half-written last line ({wf.recovered} bytes); it is timed again")
            spaces.append(Space(name, archs, hidx, ref, rep, wf))

        costs = {s.name: _new_costs() for s in spaces}
        ctx = _progress() if show_progress else contextlib.nullcontext()
        with ctx as prog:
            # 1. models (in parallel processes: nothing is timed meanwhile)
            todo = [(s.name, s.archs[i], i, settings.configs, str(work)) for s in spaces for i in range(len(s.archs))
                    if any(not model_path(work, s.name, i, CONFIGS[c].variant).exists()
                           for c in settings.configs if CONFIGS[c].runtime == "ort")]
            task = prog.add_task("export + quantise", total=len(todo), info="") if prog else None

            def prepared(space: str, _i: int, wall: float, cpu: float) -> None:
                costs[space]["prep_s"] += wall
                costs[space]["prep_cpu_s"] += cpu
                costs[space]["prep_n"] += 1
                if prog:
                    prog.advance(task)

            t_prep = time.perf_counter()
            prepare_all(todo, jobs, prepared)
            t_prep = time.perf_counter() - t_prep
            # 2. rounds
            remaining = [[u for u in _units(spaces, r, settings.seed) if (u[1], r, u[2]) not in u[0].work.done]
                         for r in range(rounds)]
            total = sum(len(x) for x in remaining)
            task = prog.add_task("timing", total=total, info="") if prog else None
            for r, units in enumerate(remaining):
                if prog:
                    prog.update(task, description=f"timing, round {r + 1}/{rounds}")
                for s, pass_, i in units:
                    t0, c0 = time.perf_counter(), time.process_time()
                    ms = time_unit(s.name, s.archs[i], i, settings.configs, work, warmup=settings.warmup,
                                   number=settings.number, seed=settings.seed * 1_000_003 + r * 10_007 + i)
                    s.work.add(pass_, r, i, ms)
                    costs[s.name]["unit_s"] += time.perf_counter() - t0
                    costs[s.name]["unit_cpu_s"] += time.process_time() - c0
                    costs[s.name]["unit_n"] += 1
                    if prog:
                        prog.advance(task)
        load_end = os.getloadavg()
        record = {"settings": settings.__dict__, "rounds": rounds, "started": started,
                  "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "load_start": load_start, "load_end": load_end, "machine": machine(), "costs": costs,
                  "trial": trial, "command": command, "jobs": jobs, "prep_wall_s": t_prep}
        results = {}
        for s in spaces:
            results[s.name] = write_tables(s, settings.configs, rounds, out)
        record["results"] = results
        if any(c["unit_n"] for c in costs.values()) and any(c["prep_n"] for c in costs.values()):
            record["estimate_full"] = {
                "settings": _default_settings_text(settings),
                "seconds": extrapolate(costs, DEFAULTS["n_archs"], DEFAULTS["repeat"], DEFAULTS["rounds"], jobs),
                "cpu_seconds": extrapolate(costs, DEFAULTS["n_archs"], DEFAULTS["repeat"], DEFAULTS["rounds"], jobs,
                                           cpu=True)}
        runs = work / "runs.jsonl"
        with open(runs, "a") as f:
            f.write(json.dumps(record) + "\n")
        write_readme(out, record, spaces)
        return record


def _medians(s: Space, pass_: str, ids: Sequence[int], configs: Sequence[str], rounds: int) -> np.ndarray:
    out = np.empty((len(ids), len(configs)))
    for k, i in enumerate(ids):
        vals = [s.work.done[(pass_, r, i)] for r in range(rounds)]
        out[k] = [statistics.median(v[c] for v in vals) for c in configs]
    return out


def _write_csv_gz(path: Path, header: Sequence[str], rows: list[list[Any]]) -> None:
    text = io.StringIO()
    text.write(",".join(header) + "\n")
    for r in rows:
        text.write(",".join(str(x) for x in r) + "\n")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
        g.write(text.getvalue().encode("utf-8"))
    _atomic_write(path, buf.getvalue())


def write_tables(s: Space, configs: Sequence[str], rounds: int, out: Path) -> dict[str, Any]:
    """Write the main and repeat tables of one space; returns its noise figures."""
    n = len(s.archs)
    main = _medians(s, "main", range(n), configs, rounds)
    rep = _medians(s, "repeat", s.repeat, configs, rounds)
    header = [*KEY_COLUMNS, *configs]
    _write_csv_gz(table_path(out, s.name), header,
                  [[s.archs[i], s.help_index[i], s.ref[i], *(f"{v:.6g}" for v in main[i])] for i in range(n)])
    _write_csv_gz(repeat_path(out, s.name), header,
                  [[s.archs[i], s.help_index[i], s.ref[i], *(f"{v:.6g}" for v in rep[k])]
                   for k, i in enumerate(s.repeat)])
    noise: dict[str, Any] = {}
    for j, c in enumerate(configs):
        cvs = []
        for i in range(n):
            vals = [s.work.done[("main", r, i)][c] for r in range(rounds)]
            if len(vals) > 1:
                cvs.append(statistics.stdev(vals) / statistics.mean(vals))
        noise[c] = {
            "median_ms": float(np.median(main[:, j])),
            "min_ms": float(main[:, j].min()),
            "max_ms": float(main[:, j].max()),
            "repeat_spearman": spearman(main[s.repeat, j], rep[:, j]) if len(s.repeat) > 1 else float("nan"),
            "round_cv_median": float(np.median(cvs)) if cvs else float("nan"),
        }
    return {"n_archs": n, "n_repeat": len(s.repeat), "noise": noise,
            "load_min": min(s.work.loads, default=float("nan")), "load_max": max(s.work.loads, default=float("nan"))}


# ---------------------------------------------------------------------------------------- estimate
def extrapolate(costs: dict[str, dict[str, float]], n_archs: int, n_repeat: int, rounds: int, jobs: int = 1,
                *, cpu: bool = False) -> dict[str, float]:
    """Seconds the bank would take (per space and in total) from measured per-architecture costs.

    ``cpu``: from CPU time instead of wall time (on a busy machine, CPU time is close to what a
    quiet one takes; the 2-thread configurations count both threads, so it over-counts those).
    Model preparation runs in ``jobs`` processes.
    """
    out: dict[str, float] = {}
    for space, c in costs.items():
        key = "_cpu_s" if cpu else "_s"
        prep = c["prep" + key] / c["prep_n"] if c["prep_n"] else 0.0
        unit = c["unit" + key] / c["unit_n"] if c["unit_n"] else 0.0
        out[space] = prep * n_archs / max(jobs, 1) + unit * (n_archs + min(n_repeat, n_archs)) * rounds
    out["total"] = sum(out.values())
    return out


def _cost_lines(costs: dict[str, dict[str, float]]) -> list[str]:
    lines = []
    for space, c in costs.items():
        prep = (f"{c['prep_s'] / c['prep_n']:.2f} s wall, {c['prep_cpu_s'] / c['prep_n']:.2f} s CPU per architecture "
                f"({c['prep_n']:.0f})" if c["prep_n"] else "n/a")
        unit = (f"{c['unit_s'] / c['unit_n']:.2f} s wall, {c['unit_cpu_s'] / c['unit_n']:.2f} s CPU per "
                f"architecture-round ({c['unit_n']:.0f})" if c["unit_n"] else "n/a")
        lines.append(f"{space}: export + quantise {prep}; timing all configurations {unit}")
    return lines


# ---------------------------------------------------------------------------------------- README
def _pct(x: float) -> str:
    return "n/a (1 round)" if x != x else f"{100 * x:.1f}%"


def write_readme(out: Path, record: dict[str, Any], spaces: Sequence[Space]) -> None:
    """Write ``out/README.md``: how the tables were made, the machine, the load, the noise."""
    st = record["settings"]
    m = record["machine"]
    L: list[str] = []
    title = "Host bank: real devices measured on this machine"
    if record["trial"]:
        title = "TRIAL host bank (--quick): a check that the script works, NOT the bank"
    L += [f"# {title}", ""]
    if record["trial"]:
        L += ["Made by `--quick` (few architectures, few rounds, on a busy machine): the numbers below say the",
              "tooling works; they are not a measurement to build on.", ""]
    L += ["Made by `benchmarks/measure_host_bank.py` (its docstring gives the method); read with",
          "`benchmarks/host_bank.py` (`load_host_bank(space, folder)`).", "",
          "## How", "",
          f"- Command: `{record['command']}`",
          f"- Started {record['started']}, finished {record['finished']} (UTC; a resumed run gives its last "
          "session's start).",
          f"- Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; Python {m['python']}, onnxruntime "
          f"{m['onnxruntime']}, onnx {m['onnx']}, torch {m['torch']}, numpy {m['numpy']}.",
          f"- Load average (1, 5, 15 min) at start {tuple(round(x, 2) for x in record['load_start'])}, at end "
          f"{tuple(round(x, 2) for x in record['load_end'])}.",
          f"- {st['n_archs']} architectures per space: the predictor's {N_REFS} reference architectures "
          f"(column `ref` 0-9) and a sample (seed {st['seed']}) of the other rows of the vendored HELP table "
          "(column `help_index`).",
          f"- {record['rounds']} interleaved rounds (both spaces, all architectures in a new random order per "
          f"round); per architecture and configuration and round: a fresh session, {st['warmup']} warm-up runs, "
          f"the median of {st['number']} timed runs. Table value: the median over rounds.",
          f"- Repeat tables: {st['n_repeat']} architectures per space (the references and a sample) timed a "
          "second, independent time in the same rounds.", "",
          "## Bank devices (columns)", "", "| column | configuration |", "|---|---|"]
    L += [f"| `{c}` | {CONFIGS[c].description} |" for c in st["configs"]]
    L += ["", "## Noise", "",
          "Repeat Spearman: the two timings of the repeat subset (the ceiling no predictor can beat on it).",
          "Round CV: median over architectures of the coefficient of variation of their round values.", ""]
    for s in spaces:
        res = record["results"][s.name]
        L += [f"### {s.name} ({res['n_archs']} architectures, repeat subset {res['n_repeat']}; load average "
              f"during timing {res['load_min']:.2f}-{res['load_max']:.2f})", "",
              "| device | median ms | range ms | repeat Spearman | round CV |", "|---|---|---|---|---|"]
        for c, v in res["noise"].items():
            L.append(f"| `{c}` | {v['median_ms']:.3f} | {v['min_ms']:.3f}-{v['max_ms']:.3f} | "
                     f"{v['repeat_spearman']:.4f} | {_pct(v['round_cv_median'])} |")
        L.append("")
    L += ["## Cost", "", "Per-architecture costs in this run (the sessions that ran since the last start):", ""]
    L += [f"- {x}" for x in _cost_lines(record["costs"])]
    est = record.get("estimate_full")
    if est:
        L += ["", f"Extrapolated to the full default bank ({est['settings']}, model preparation in "
              f"{record['jobs']} processes): from wall time "
              + ", ".join(f"{k} {v / 60:.0f} min" for k, v in est["seconds"].items())
              + "; from CPU time (near what a quiet machine takes) "
              + ", ".join(f"{k} {v / 60:.0f} min" for k, v in est["cpu_seconds"].items()) + "."]
    others = sorted(sp for sp in SPACES if sp not in record["results"] and table_path(out, sp).exists())
    if others:
        L += ["", f"Tables of {', '.join(others)} in this folder come from an earlier run (this README describes "
              "only the spaces above; run every space in one command to describe them together)."]
    L += ["", "## Files", "",
          "- `<space>.csv.gz`: `arch` (the predictor's architecture string), `help_index`, `ref`, one column per "
          "bank device (ms).",
          "- `<space>_repeat.csv.gz`: the same columns for the repeat subset's second timing.",
          "- `.work/` (not committed): the work files (one JSON line per timed architecture and round) and the "
          "stripped models; delete it once the tables are kept.", ""]
    _atomic_write(out / "README.md", "\n".join(L).encode("utf-8"))


# ---------------------------------------------------------------------------------------- command line
DEFAULTS = {"n_archs": 500, "rounds": 3, "repeat": 100, "warmup": 2, "number": 5}
QUICK = {"n_archs": 30, "rounds": 2, "repeat": 15, "warmup": 2, "number": 5}


def _default_settings_text(s: Settings) -> str:
    d = DEFAULTS
    return (f"{d['n_archs']} archs/space, {d['rounds']} rounds, repeat {d['repeat']}; this run's "
            f"{len(s.configs)} configurations, warmup {s.warmup}, number {s.number}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="configurations: " + "; ".join(f"{k}: {v.description}" for k, v in CONFIGS.items()))
    p.add_argument("--spaces", default=",".join(SPACES), help="comma list of spaces (default: %(default)s)")
    p.add_argument("--n-archs", type=int, help=f"architectures per space, the {N_REFS} references included "
                   f"(default {DEFAULTS['n_archs']}; --quick {QUICK['n_archs']})")
    p.add_argument("--rounds", type=int, help=f"interleaved rounds (default {DEFAULTS['rounds']}; --quick "
                   f"{QUICK['rounds']}); raise it on a finished bank to add rounds")
    p.add_argument("--repeat", type=int, help=f"architectures per space timed a second time (default "
                   f"{DEFAULTS['repeat']}; --quick {QUICK['repeat']})")
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma list of bank devices (default: all)")
    p.add_argument("--warmup", type=int, help=f"untimed runs per session (default {DEFAULTS['warmup']})")
    p.add_argument("--number", type=int, help=f"timed runs per session, their median is the round value "
                   f"(default {DEFAULTS['number']})")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and the round orders")
    p.add_argument("--out", type=Path, help=f"output folder (default {DEFAULT_OUT.relative_to(ROOT)}; --quick "
                   f"{QUICK_OUT.relative_to(ROOT)})")
    p.add_argument("--quick", action="store_true", help="a small trial (marked as such in its README)")
    p.add_argument("--estimate", type=int, metavar="K", help="time K architectures per space for one round in a "
                   "temporary folder and extrapolate to the bank the other options describe; writes nothing")
    p.add_argument("--jobs", type=int, help="processes that export and quantise the models before any timing "
                   "(default: the number of CPUs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _settings(args: argparse.Namespace) -> tuple[Settings, int, Path]:
    base = QUICK if args.quick else DEFAULTS
    val = {k: getattr(args, k) if getattr(args, k) is not None else base[k] for k in base}
    spaces = tuple(x.strip() for x in args.spaces.split(",") if x.strip())
    bad = [x for x in spaces if x not in SPACES]
    if bad or not spaces or len(set(spaces)) != len(spaces):
        raise BankError(f"--spaces: unknown or repeated space in {args.spaces!r}; use a comma list of {', '.join(SPACES)}")
    configs = tuple(x.strip() for x in args.configs.split(",") if x.strip())
    bad = [x for x in configs if x not in CONFIGS]
    if bad or not configs or len(set(configs)) != len(configs):
        raise BankError(f"--configs: unknown or repeated configuration in {args.configs!r}; choose from {', '.join(CONFIGS)}")
    if val["n_archs"] < N_REFS:
        raise BankError(f"--n-archs must be at least {N_REFS} (the reference architectures), got {val['n_archs']}")
    if val["rounds"] < 1 or val["number"] < 1 or val["warmup"] < 0 or val["repeat"] < 0:
        raise BankError("need --rounds >= 1, --number >= 1, --warmup >= 0 and --repeat >= 0")
    if val["repeat"] > val["n_archs"]:
        raise BankError(f"--repeat ({val['repeat']}) cannot exceed --n-archs ({val['n_archs']})")
    if args.jobs is not None and args.jobs < 1:
        raise BankError("--jobs must be at least 1")
    if args.estimate is not None and args.estimate < 1:
        raise BankError("--estimate needs K >= 1 architectures per space")
    out = args.out if args.out is not None else (QUICK_OUT if args.quick else DEFAULT_OUT)
    s = Settings(spaces, val["n_archs"], val["repeat"], configs, val["warmup"], val["number"], args.seed)
    return s, val["rounds"], out


def estimate(settings: Settings, rounds: int, k: int, *, jobs: int = 1, show_progress: bool = True) -> dict[str, Any]:
    """Prepare and time ``k`` sampled architectures per space (one round, models prepared one at a
    time) in a temporary folder; extrapolate to ``settings``, ``rounds`` and ``jobs``."""
    import torch

    torch.set_num_threads(1)
    costs: dict[str, dict[str, float]] = {}
    load0 = os.getloadavg()[0]
    ctx = _progress() if show_progress else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="hwnas-bank-estimate-") as tmp, ctx as prog:
        work = Path(tmp)
        task = prog.add_task("estimate", total=k * len(settings.spaces), info="") if prog else None
        for space in settings.spaces:
            archs, _, _ = choose_archs(space, N_REFS + k, settings.seed)
            c = costs[space] = _new_costs()
            for i in range(N_REFS, N_REFS + k):  # sampled architectures only (the references are few)
                _, _, wall, cpu = _prep_job((space, archs[i], i, settings.configs, str(work)))
                c["prep_s"] += wall
                c["prep_cpu_s"] += cpu
                c["prep_n"] += 1
                t0, c0 = time.perf_counter(), time.process_time()
                time_unit(space, archs[i], i, settings.configs, work, warmup=settings.warmup, number=settings.number,
                          seed=i)
                c["unit_s"] += time.perf_counter() - t0
                c["unit_cpu_s"] += time.process_time() - c0
                c["unit_n"] += 1
                if prog:
                    prog.advance(task)
    return {"costs": costs, "load": (load0, os.getloadavg()[0]),
            "seconds": extrapolate(costs, settings.n_archs, settings.n_repeat, rounds, jobs),
            "cpu_seconds": extrapolate(costs, settings.n_archs, settings.n_repeat, rounds, jobs, cpu=True),
            "settings": f"{settings.n_archs} archs/space, {rounds} rounds, repeat {settings.n_repeat}, warmup "
                        f"{settings.warmup}, number {settings.number}, {len(settings.configs)} configurations, "
                        f"models prepared in {jobs} processes"}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; see the module docstring."""
    args = _parser().parse_args(argv)
    command = "python benchmarks/measure_host_bank.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        settings, rounds, out = _settings(args)
        jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
        if args.estimate:
            est = estimate(settings, rounds, args.estimate, jobs=jobs, show_progress=not args.no_progress)
            for line in _cost_lines(est["costs"]):
                print(line)
            print(f"load average during the estimate: {est['load'][0]:.2f} -> {est['load'][1]:.2f}")
            print(f"extrapolated ({est['settings']}):")
            print("  from wall time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in est["seconds"].items()))
            print("  from CPU time (near a quiet machine's): "
                  + ", ".join(f"{k} {v / 60:.1f} min" for k, v in est["cpu_seconds"].items()))
            return 0
        rec = run_bank(settings, rounds, out, show_progress=not args.no_progress, trial=args.quick,
                       command=command.strip(), jobs=jobs)
    except BankError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: what was timed is saved; run the same command again to resume", file=sys.stderr)
        return 130
    for space, res in rec["results"].items():
        print(f"{space}: {res['n_archs']} architectures -> {table_path(out, space)}")
        for c, v in res["noise"].items():
            print(f"  {c:18s} median {v['median_ms']:8.3f} ms  repeat Spearman {v['repeat_spearman']:.4f}  "
                  f"round CV {_pct(v['round_cv_median'])}")
    for line in _cost_lines(rec["costs"]):
        print(line)
    est = rec.get("estimate_full")
    if est:
        print(f"full default bank ({est['settings']}): "
              + ", ".join(f"{k} {v / 60:.0f} min" for k, v in est["seconds"].items()) + " from wall time; "
              + ", ".join(f"{k} {v / 60:.0f} min" for k, v in est["cpu_seconds"].items()) + " from CPU time")
    print(f"README: {out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
