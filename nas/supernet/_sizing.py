"""Sizing the ai8x supernet's covered widths from a training-time budget (``--supernet-budget``).

The supernet's training cost grows with its widest width. Given the time a user can afford, the
covered widths are the widest whose training (the ``largest`` phase and the elastic phase, every
epoch over the training images at the configured batch size) is *predicted* to fit it; the
prediction is measured on the machine and torch device that train it:

* per candidate width (the space's widths in order, those whose first unit's output fits the
  data-memory half instance, as the MAC cap also requires), a few training steps of the largest
  sub-networks (forward, cross entropy, backward, Adam step; the unit counts cycled as the
  ``largest`` phase does) are timed on a batch of real training images, a first (warm-up) step
  excluded; the smallest sub-network's step is timed once;
* an elastic step costs the largest network's step plus ``random_subnets`` sub-network steps
  (plus the smallest one under ``sandwich``); a sub-network's step is interpolated between the
  smallest's and the largest's by its MACs, averaged over a fixed (seeded) sample of the stage's
  sub-networks;
* predicted seconds = steps per epoch x (``epochs_largest`` x largest step + the elastic epochs x
  elastic step). Not counted: the per-epoch validation of the largest and smallest networks and
  the one channel sort (small next to the steps).

Timing is not deterministic, so the sizing is done once: :func:`size_widths` returns a
:class:`Sizing` whose ``width`` becomes :attr:`SupernetSettings.budget_width`; the search records
both in its run and reuses them on resume and in ``nas qat`` (never re-measured). Before the run's
study exists (a search killed while its supernet trains), a memo under
``<runs_dir>/supernets/.sizing-<key>.json`` (keyed by the space, the training settings, the
number of training images, the budget, the torch device and the host) gives the same answer;
delete it to measure again. The supernet cache is keyed by the covered widths, never by timings.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import Ai8xSpace, InputError

from ..train import torch_session
from ._ai8x import (
    HALF_INSTANCE_BYTES,
    _largest_arch,
    _make_module,
    _restrict,
    _smallest_arch,
    _space_dict,
    covered_space,
    first_unit_bytes,
    format_duration,
)
from ._common import PROGRESSIVE_STAGES, SupernetSettings, _phases, cache_root

__all__ = [
    "DEFAULT_TIME_BUDGETS", "MAX_MEASURE_S", "Sizing", "StepTimer", "default_time_budget", "measure_step_seconds",
    "predict_train_seconds", "read_sizing_memo", "size_widths", "sizing_memo_path", "write_sizing_memo",
]

StepTimer = Callable[[Ai8xSpace, Sequence[dict[str, Any]]], float]
"""``(covered space, archs) -> seconds``: the mean time of one supernet training step of the
archs in turn, at the configured batch size on the torch device (what :func:`size_widths`
calls; tests inject fake ones)."""

DEFAULT_TIME_BUDGETS: dict[str, float] = {"cuda": 30 * 60.0}
"""Default ``--supernet-budget`` per torch device type. None for ``cpu``: there the MAC cap of
:class:`SupernetSettings` (``macs_budget``) sizes the space, without measuring, as before."""

MAX_MEASURE_S = 30.0
"""Sizing stops measuring wider widths once it has spent this long (each candidate's steps
take longer than the last's); the widths measured so far decide."""

_SUB_SAMPLES = 64


def default_time_budget(device: Any) -> float | None:
    """The default supernet time budget (seconds) of a torch device (``cpu``, ``cuda``, a
    ``torch.device``), or None (the MAC cap)."""
    kind = str(device).split(":", 1)[0]
    return DEFAULT_TIME_BUDGETS.get(kind)


@dataclass(frozen=True)
class Sizing:
    """What sizing measured and chose (recorded in the run's ``supernet.sizing``).

    Attributes:
        budget_s: the time budget, seconds.
        device: the torch device measured on (``cpu``, ``cuda``, ``cuda:0``).
        width: the widest covered width chosen.
        step_s: seconds per ``largest``-phase training step at ``width`` (measured).
        small_step_s: seconds per training step of the smallest sub-network (measured).
        predicted_s: predicted training seconds at ``width``.
        steps_per_epoch: training steps per epoch (training images // batch size).
        epochs_largest, epochs_elastic, batch_size, train_images: what the prediction assumed.
        candidates: (width, step seconds, predicted seconds) of every width measured.
        stop: why no wider width is covered.
        measure_s: seconds the measurement took.
        measured_at: when (UTC).
    """

    budget_s: float
    device: str
    width: int
    step_s: float
    small_step_s: float
    predicted_s: float
    steps_per_epoch: int
    epochs_largest: int
    epochs_elastic: int
    batch_size: int
    train_images: int
    candidates: tuple[tuple[int, float, float], ...]
    stop: str
    measure_s: float
    measured_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"budget_s": self.budget_s, "device": self.device, "width": self.width, "step_s": self.step_s,
                "small_step_s": self.small_step_s, "predicted_s": self.predicted_s,
                "steps_per_epoch": self.steps_per_epoch, "epochs_largest": self.epochs_largest,
                "epochs_elastic": self.epochs_elastic, "batch_size": self.batch_size,
                "train_images": self.train_images, "candidates": [list(c) for c in self.candidates],
                "stop": self.stop, "measure_s": self.measure_s, "measured_at": self.measured_at}

    @classmethod
    def from_dict(cls, d: Any) -> Sizing:
        """Raises ValueError (or KeyError, TypeError) on a dict that is not one."""
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        cands = tuple((int(w), float(s), float(p)) for w, s, p in d["candidates"])
        return cls(budget_s=float(d["budget_s"]), device=str(d["device"]), width=int(d["width"]),
                   step_s=float(d["step_s"]), small_step_s=float(d["small_step_s"]),
                   predicted_s=float(d["predicted_s"]), steps_per_epoch=int(d["steps_per_epoch"]),
                   epochs_largest=int(d["epochs_largest"]), epochs_elastic=int(d["epochs_elastic"]),
                   batch_size=int(d["batch_size"]), train_images=int(d["train_images"]), candidates=cands,
                   stop=str(d["stop"]), measure_s=float(d["measure_s"]), measured_at=str(d["measured_at"]))

    def describe(self) -> str:
        """One line: the budget, the measured step, the prediction, what stopped a wider width."""
        return (f"budget {format_duration(self.budget_s)} on {self.device}: {self.step_s:.3g} s per training "
                f"step of the largest sub-network at width {self.width} (measured, batch {self.batch_size}), "
                f"training predicted {format_duration(self.predicted_s)} ({self.epochs_largest} + "
                f"{self.epochs_elastic} epochs x {self.steps_per_epoch} steps); {self.stop}")


# ---------------------------------------------------------------------- measuring
def measure_step_seconds(space: Ai8xSpace, archs: Sequence[dict[str, Any]], x: np.ndarray, y: np.ndarray, *,
                         device: Any = "cpu", threads: int = 1, steps: int = 0) -> float:
    """Mean seconds of one supernet training step (forward, cross entropy, backward, Adam step)
    of ``archs`` in turn, on the batch ``x``, ``y`` on the torch ``device``.

    One warm-up step of the last (deepest) arch (allocation, kernel selection) is not timed; then
    ``max(steps, len(archs), 2)`` steps are, cycling the archs as the ``largest`` phase cycles its
    unit counts. On CUDA the device is synchronised around the timed steps.

    Args:
        space: the covered space (its widest width is the supernet's).
        archs: parsed architectures of ``space``.
        x, y: one training batch (images as the data set holds them, labels).
        device: a ``torch.device`` or its name (``cpu``, ``cuda``, ``cuda:0``).
        threads: torch intra-op threads, as the training uses (0: torch's default).
        steps: timed steps (at least one per arch, at least two).
    """
    import torch
    from torch.nn import functional as F

    torch_session(threads)
    dev = torch.device(device)
    model = _make_module(space).to(dev)
    xb = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
    yb = torch.from_numpy(np.ascontiguousarray(y)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sync: Callable[[], None] = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)

    def step(arch: dict[str, Any]) -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb, arch), yb).backward()
        opt.step()

    model.train()
    step(archs[-1])  # warm-up, not timed
    sync()
    n = max(steps, len(archs), 2)
    t0 = time.perf_counter()
    for i in range(n):
        step(archs[i % len(archs)])
    sync()
    return (time.perf_counter() - t0) / n


def _bigs(cov: Ai8xSpace) -> list[dict[str, Any]]:
    """The largest sub-network at each covered unit count (what the ``largest`` phase cycles)."""
    big = _largest_arch(cov)
    return [cov.parse({"units": big["units"][:u], "fc_bits": big["fc_bits"]})
            for u in range(cov.min_units, cov.max_units + 1)]


def predict_train_seconds(cov: Ai8xSpace, settings: SupernetSettings, n_train: int, step_s: float,
                          small_step_s: float) -> float:
    """Predicted seconds of training the supernet of the covered space ``cov`` (see the module
    docstring): ``step_s`` is a ``largest``-phase step, ``small_step_s`` the smallest
    sub-network's step; deterministic given the two."""
    bs = min(settings.batch_size, n_train)
    steps = max(1, n_train // bs)
    m_big = float(np.mean([cov.network(a).macs for a in _bigs(cov)]))
    m_small = float(cov.network(_smallest_arch(cov)).macs)
    per_epoch = [settings.epochs_largest * step_s]
    rng = np.random.default_rng(0)
    for _, epochs, stage in _phases(settings, PROGRESSIVE_STAGES)[1:]:
        if epochs == 0:
            continue
        macs = [cov.network(cov.parse(_restrict(cov, cov.random_arch(rng), stage))).macs for _ in range(_SUB_SAMPLES)]
        frac = 1.0 if m_big <= m_small else float(np.clip((np.mean(macs) - m_small) / (m_big - m_small), 0.0, 1.0))
        t_sub = small_step_s + (step_s - small_step_s) * frac
        per_step = step_s + settings.random_subnets * t_sub + (small_step_s if stage == "all" else 0.0)
        per_epoch.append(epochs * per_step)
    return steps * float(sum(per_epoch))


def size_widths(space: Ai8xSpace, settings: SupernetSettings, x: np.ndarray, y: np.ndarray, *,
                device: Any = "cpu", step_time: StepTimer | None = None,
                max_measure_s: float = MAX_MEASURE_S) -> Sizing:
    """The widest width of ``space`` whose supernet training is predicted to fit
    ``settings.time_budget_s`` (see the module docstring), measured on ``device``.

    Args:
        space: the full ai8x space (its widths are the candidates).
        settings: the supernet settings (``time_budget_s`` set; epochs, batch size, threads).
        x, y: the training images and labels the supernet trains on (after ``train_images``).
        device: the torch device the supernet trains on (``torch.device`` or its name).
        step_time: what times a step (default :func:`measure_step_seconds` on the first batch
            of ``x``, ``y``); tests inject fake timings.
        max_measure_s: stop measuring wider widths after this many seconds.

    Raises:
        InputError: even the narrowest width is predicted to take longer than the budget.
    """
    if settings.time_budget_s is None:
        raise ValueError("size_widths needs settings.time_budget_s")
    budget = float(settings.time_budget_s)
    n_train = len(y) if settings.train_images == 0 else min(settings.train_images, len(y))
    bs = min(settings.batch_size, n_train)
    if step_time is None:
        xb, yb = x[:bs], y[:bs]

        def step_time(cov: Ai8xSpace, archs: Sequence[dict[str, Any]]) -> float:
            return measure_step_seconds(cov, archs, xb, yb, device=device, threads=settings.threads)

    t0 = time.perf_counter()
    base = replace(settings, time_budget_s=None, budget_width=None)
    candidates = [w for w in space.widths if first_unit_bytes(space, w) <= HALF_INSTANCE_BYTES]
    fits: tuple[int, float, float] | None = None
    rows: list[tuple[int, float, float]] = []
    small_s: float | None = None
    stop = f"width {candidates[-1]} is the space's widest that fits the data memory" if candidates else ""
    for i, w in enumerate(candidates or space.widths[:1]):
        cov = covered_space(space, replace(base, max_width=w))
        if small_s is None:
            small_s = float(step_time(cov, [_smallest_arch(cov)]))
        step_s = float(step_time(cov, _bigs(cov)))
        pred = predict_train_seconds(cov, settings, n_train, step_s, small_s)
        rows.append((w, round(step_s, 6), round(pred, 1)))
        if pred > budget:
            stop = f"width {w} predicted {format_duration(pred)} > the budget"
            break
        fits = (w, step_s, pred)
        spent = time.perf_counter() - t0
        if spent > max_measure_s and i + 1 < len(candidates):
            stop = (f"wider widths not measured: sizing stops measuring after {format_duration(max_measure_s)} "
                    f"(took {format_duration(spent)})")
            break
    if fits is None:
        w, _, pred = rows[0]
        raise InputError(f"--supernet-budget {format_duration(budget)}: even the narrowest width {w} is predicted to "
                         f"take {format_duration(pred)} to train on {device} ({n_train} images, "
                         f"{settings.epochs_largest} + {settings.epochs_elastic} epochs, batch {bs}); give a larger "
                         "--supernet-budget or fewer --supernet-epochs")
    width, step_s, pred = fits
    return Sizing(budget_s=budget, device=str(device), width=width, step_s=round(step_s, 6),
                  small_step_s=round(float(small_s or 0.0), 6), predicted_s=round(pred, 1),
                  steps_per_epoch=max(1, n_train // bs), epochs_largest=settings.epochs_largest,
                  epochs_elastic=settings.epochs_elastic, batch_size=bs, train_images=n_train,
                  candidates=tuple(rows), stop=stop, measure_s=round(time.perf_counter() - t0, 2),
                  measured_at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))


# ---------------------------------------------------------------------- the memo
def sizing_memo_path(runs_dir: str | Path, space: Ai8xSpace, settings: SupernetSettings, n_train: int,
                     device: Any) -> Path:
    """Where a sizing for these inputs is remembered (``<runs_dir>/supernets/.sizing-<key>.json``)."""
    ident = {"space": _space_dict(space), "n_train": int(n_train), "budget_s": settings.time_budget_s,
             "device": str(device), "host": platform.node(),
             "settings": {k: getattr(settings, k) for k in ("epochs_largest", "epochs_elastic", "batch_size",
                                                            "random_subnets", "schedule", "min_side", "threads",
                                                            "train_images")}}
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root(runs_dir) / f".sizing-{key}.json"


def read_sizing_memo(path: Path) -> Sizing | None:
    """The remembered sizing, or None (none, or unreadable: then it is measured again and the
    memo rewritten; it holds nothing that cannot be measured again)."""
    try:
        return Sizing.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_sizing_memo(path: Path, sizing: Sizing) -> None:
    """Write the memo atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(sizing.to_dict(), f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
