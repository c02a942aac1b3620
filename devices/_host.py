"""``host-cpu``: this machine's CPU, measured for real with onnxruntime.

Each architecture is built (``SearchSpace.build``), exported to ONNX (legacy exporter, batch 1,
opset 17) and timed by :func:`devices._measure.time_models` (the kit's ``measure.py``): one
intra-op thread, warm-up, interleaved rounds, median of the per-round medians, rounds until the
relative standard error is under ``tol`` or ``max_seconds`` pass. The reported std is the spread
of the round values (IQR / 1.349), i.e. how much one round of this noisy machine varies.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._measure import Timing, make_session, random_feed, time_models
from ._onnx import BUILDABLE_SPACES, check_buildable, export_onnx
from ._registry import register_device
from ._space import Estimate, SpaceDevice

__all__ = ["HostCPU", "measure_archs", "cpu_name"]


def cpu_name() -> str:
    """The CPU model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def measure_archs(
    space: str,
    archs: Sequence[Any],
    *,
    threads: int = 1,
    warmup: int = 10,
    number: int = 10,
    min_rounds: int = 5,
    max_rounds: int = 50,
    tol: float = 0.01,
    max_seconds: float = 120.0,
    stat: str = "median",
    chunk: int = 50,
    anchors: int = 3,
    log: Callable[[str], None] | None = None,
) -> list[Timing]:
    """Export and time architectures of ``space`` on this machine (see the module docstring).

    Architectures are timed interleaved in chunks of ``chunk`` (bounding memory); ``max_seconds``
    applies per chunk. This machine's speed drifts between chunks, so the first ``anchors``
    architectures are timed again in every later chunk, and that chunk's values are scaled by the
    geometric mean of (first-chunk value / this-chunk value) over the anchors. Returns one
    :class:`Timing` per architecture (``name`` = canonical string), in input order.

    Raises:
        KitError: for a space without torch modules.
    """
    from search_spaces import get_space

    check_buildable(space)
    sp = get_space(space)
    keys = [sp.format(a) for a in archs]
    anchors = min(anchors, chunk - 1, len(keys)) if len(keys) > chunk else 0
    out: list[Timing] = []
    first: dict[str, float] = {}
    opts = dict(warmup=warmup, number=number, min_rounds=min_rounds, max_rounds=max_rounds, tol=tol,
                max_seconds=max_seconds, stat=stat, log=log)
    with tempfile.TemporaryDirectory(prefix="hwnas-measure-") as tmp:
        paths: dict[str, str] = {}

        def runner(k: str) -> tuple[str, Callable[[], Any]]:
            if k not in paths:
                paths[k] = export_onnx(space, k, os.path.join(tmp, f"m{len(paths)}.onnx"))
            sess = make_session(paths[k], threads)
            feed = random_feed(sess)
            return (k, lambda: sess.run(None, feed))

        step = chunk - anchors if anchors else chunk
        lo = 0
        while lo < len(keys):
            part = keys[lo:lo + (chunk if lo == 0 else step)]
            extra = keys[:anchors] if lo > 0 else []
            if log is not None:
                log(f"timing {lo + 1}-{lo + len(part)} of {len(keys)}")
            timed = time_models([runner(k) for k in extra + part], **opts)  # type: ignore[arg-type]
            if lo == 0:
                first = {t.name: t.latency_ms for t in timed[:anchors]}
                scale = 1.0
            else:
                scale = float(np.exp(np.mean([np.log(first[t.name] / t.latency_ms) for t in timed[:anchors]])))
            for t in timed[len(extra):]:
                out.append(Timing(t.name, t.latency_ms * scale, [r * scale for r in t.rounds], t.stable))
            lo += len(part)
    return out


@register_device("host-cpu")
class HostCPU(SpaceDevice):
    """This machine's CPU, one onnxruntime thread, measured on demand (results cached per process).

    Args:
        threads: onnxruntime intra-op threads (1: stable and comparable).
        **options: timing options of :func:`measure_archs` (warmup, number, min_rounds, ...).
    """

    kind = "measured"
    _cache: dict[tuple[str, str, int], tuple[float, float]] = {}

    def __init__(self, threads: int = 1, **options: Any) -> None:
        super().__init__("host-cpu", f"this machine's CPU ({cpu_name()}), onnxruntime, {threads} thread(s), "
                         "measured on demand", BUILDABLE_SPACES)
        self.threads = int(threads)
        self.options = options

    def limits(self) -> dict[str, str]:
        """The thread count the timings use."""
        return {"threads": str(self.threads)}

    def estimate(self, space: str, archs: Sequence[Any]) -> Estimate:
        """Measured latency (ms) and round-to-round spread (IQR / 1.349, ms) of each architecture."""
        keys = self.canonical(space, archs)
        todo = sorted({k for k in keys if (space, k, self.threads) not in self._cache})
        if todo:
            for t in measure_archs(space, todo, threads=self.threads, **self.options):
                self._cache[(space, t.name, self.threads)] = (t.latency_ms, t.iqr_ms / 1.349)
        vals = [self._cache[(space, k, self.threads)] for k in keys]
        y = np.array([v[0] for v in vals])
        s = np.array([v[1] for v in vals])
        return Estimate(space, keys, y, s, ["measured"] * len(keys))
