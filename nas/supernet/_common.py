"""What the supernets of ``nas.supernet`` share: their settings, the cache folder (atomic,
locked, corrupted files named), the training loop, BatchNorm recalibration, fine-tuning and
scoring of a sub-network.

Cache: trained once per (covered space, data fingerprint and split sizes, settings, seed) under
``<runs_dir>/supernets/<key>/``: ``weights.safetensors`` (no pickle), ``config.json`` (format
version, settings, space, dataset fingerprint) and ``train_log.csv`` (epoch, phase, loss,
validation accuracy of the largest and smallest sub-network, seconds, torch device). The
weights are saved from the CPU and loaded onto the CPU, then moved to the settings' torch
device, so a cache trained on a GPU loads on a CPU and back; the torch device is not part of
the key. It is written to a
temporary folder renamed into place, so a killed training leaves no half cache. A corrupted
cache, or one missing some of its files (an empty folder is trained into), raises
:class:`SupernetCacheError` naming the file and the fix (delete the folder), before any
training; it is not rebuilt silently.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import InputError

from ..data import Dataset
from ..train import (
    batch_to,
    check_torch_device,
    mixed_precision,
    on_device,
    progress,
    resolve_torch_device,
    top1,
    torch_device_name,
    torch_session,
)

__all__ = [
    "FORMAT_VERSION", "SupernetCacheError", "SupernetSettings", "accuracy", "cache_root", "cached_or_trained",
    "data_dict", "epoch_logger", "finetune", "read_cache", "recalibrate_bn", "train_loop", "training_end",
    "write_cache", "PROGRESSIVE_STAGES", "CONFIG", "WEIGHTS", "TRAIN_LOG", "SCHEDULES",
    "training_start",
]

FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
CONFIG = "config.json"
TRAIN_LOG = "train_log.csv"
SCHEDULES = ("progressive", "sandwich")
PROGRESSIVE_STAGES = ("kernel+depth", "width", "bits")
"""Choices each stage of the ai8x supernet's ``progressive`` schedule unlocks (units are elastic
throughout: the largest network cycles over them and every unit count has its own classifier);
:class:`SupernetSettings` checks ``schedule`` against :data:`SCHEDULES`."""

class SupernetCacheError(InputError):
    """A supernet cache folder that cannot be read."""


@dataclass(frozen=True)
class SupernetSettings:
    """How the supernet is sized and trained (part of the cache key).

    Attributes:
        max_width: widest channel count covered (None: :func:`width_cap` from ``budget_width``, else
            from ``macs_budget``); it overrides the time budget.
        macs_budget: most MACs per image of the largest sub-network (the CPU default's training
            cost cap, used when neither ``max_width`` nor ``time_budget_s`` is given).
        time_budget_s: the supernet training time the user can afford (``--supernet-budget``), in
            seconds; the covered widths are sized from it by measuring training steps
            (:func:`nas.supernet.size_widths`), once, and recorded as ``budget_width``.
        budget_width: the widest width that sizing chose for ``time_budget_s`` (recorded in the
            run and reused on resume and by ``nas qat``; never re-measured).
        epochs_largest: epochs of the ``largest`` phase.
        epochs_elastic: epochs of the elastic phase (split over the stages of ``progressive``).
        batch_size: mini-batch size.
        lr: Adam learning rate (cosine-decayed in each phase).
        random_subnets: random sub-networks per step besides the largest and smallest.
        distill: in-place distillation from the largest sub-network's output.
        train_images: training images used (0: the whole training split).
        recal_images: training images used to recalibrate BatchNorm of a sub-network.
        threads: torch intra-op threads while training (0 leaves torch's default).
        schedule: ``progressive`` (OFA-style stages unlocking kernel and depth, then width, then
            bits; each samples from every choice unlocked so far) or ``sandwich`` (all choices
            at once, plus the smallest sub-network every step).
        min_side: fewest pixels (or samples) per side the last unit may run at; units that
            would pool below it are not covered (28x28: 4 units, 3x3; the 5th would be 1x1).
        torch_device: ``auto``, ``cpu`` or ``cuda`` (:mod:`nas.train`): where it trains and its
            sub-networks are scored; not part of the cache key (like ``threads``).
    """

    max_width: int | None = None
    macs_budget: float = 25e6
    time_budget_s: float | None = None
    budget_width: int | None = None
    epochs_largest: int = 1
    epochs_elastic: int = 7
    batch_size: int = 32
    lr: float = 3e-3
    random_subnets: int = 4
    distill: bool = True
    train_images: int = 0
    recal_images: int = 500
    threads: int = 1
    schedule: str = "progressive"
    min_side: int = 3
    torch_device: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs_largest < 0 or self.epochs_elastic < 0 or self.epochs_largest + self.epochs_elastic < 1:
            raise InputError("supernet training needs at least one epoch (epochs_largest + epochs_elastic)")
        if self.batch_size < 2 or self.recal_images < 2 or self.train_images < 0 or self.random_subnets < 0:
            raise InputError("supernet batch_size and recal_images must be at least 2, train_images and "
                             "random_subnets at least 0")
        if not self.lr > 0 or not self.macs_budget > 0:
            raise InputError("supernet lr and macs_budget must be positive")
        if self.max_width is not None and self.max_width < 1:
            raise InputError(f"supernet max_width must be positive, got {self.max_width}")
        if self.time_budget_s is not None and not (math.isfinite(self.time_budget_s) and self.time_budget_s > 0):
            raise InputError(f"supernet time budget must be a positive duration, got {self.time_budget_s!r} s")
        if self.budget_width is not None and (self.time_budget_s is None or self.budget_width < 1):
            raise InputError("supernet budget_width needs a time budget and must be positive")
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown supernet schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}")
        if self.min_side < 1:
            raise InputError(f"supernet min_side must be at least 1, got {self.min_side}")
        check_torch_device(self.torch_device)

    def training_dict(self) -> dict[str, Any]:
        """The settings that change the trained weights (the cache key's part)."""
        d = asdict(self)
        d.pop("threads")
        d.pop("recal_images")
        d.pop("torch_device")
        # The covered widths key the cache (its space); the time budget and the width it chose
        # (a timing) do not, so equal covered spaces share one supernet.
        d.pop("time_budget_s")
        d.pop("budget_width")
        return d


def data_dict(data: Dataset, settings: SupernetSettings) -> dict[str, Any]:
    n_train = len(data.y_train) if settings.train_images == 0 else min(settings.train_images, len(data.y_train))
    # The fingerprint names the whole data set; the split (seeded) and the images used are hashed too.
    h = hashlib.sha256(np.ascontiguousarray(data.y_train[:n_train]).tobytes()
                       + np.ascontiguousarray(data.x_train[:n_train]).tobytes()).hexdigest()[:16]
    return {"name": data.name, "fingerprint": data.fingerprint, "train_images": n_train, "train_hash": h}


def recalibrate_bn(net: Any, data: Dataset, n_images: int, batch: int = 250) -> None:
    """Reset every BatchNorm's statistics and re-estimate them on the first ``n_images`` training
    images (cumulative average, train-mode forward without gradients); leaves ``net`` in eval mode."""
    import torch

    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    n = min(n_images, len(data.y_train))
    dev = _device_of(net)
    x = on_device(data.x_train, dev)[:n]
    net.train()
    with torch.no_grad():
        for s in range(0, n, batch):
            if n - s >= 2:
                net(batch_to(x[s : s + batch], dev))
    net.eval()


def finetune(net: Any, data: Dataset, steps: int, *, lr: float = 1e-3, batch: int = 64, seed: int = 0,
             recal_images: int = 500) -> None:
    """``steps`` Adam steps of ``net`` (inherited weights, fake-quantised) on random mini-batches of
    the training split, then BatchNorm recalibrated on the first ``recal_images`` training
    images; eval mode (nothing when ``steps`` is 0).

    Inherited weights rank deep plain sub-networks too low (the layers after a skipped one see
    other inputs than in the largest network); a few steps let each sub-network adapt
    (measured in benchmarks/results/supernet_mnist5k.md)."""
    import torch
    from torch.nn import functional as F

    if steps <= 0:
        return
    gen = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    dev = _device_of(net)
    x, y = on_device(data.x_train, dev), on_device(data.y_train, dev)  # copied to the device once
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(steps):
        idx = torch.randperm(n, generator=gen)[: min(batch, n)].to(x.device)
        loss = F.cross_entropy(net(batch_to(x[idx], dev)), batch_to(y[idx], dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    recalibrate_bn(net, data, recal_images)


def accuracy(net: Any, x: np.ndarray, y: np.ndarray, n: int = 0) -> tuple[float, int]:
    """Top-1 accuracy of ``net`` (eval mode) on the first ``n`` samples (0: all), on its device
    (the arrays are copied there once)."""
    dev = _device_of(net)
    return top1(net, on_device(x, dev), on_device(y, dev), n=n, batch=500)


def _device_of(net: Any) -> Any:
    """The device of ``net``'s parameters (the CPU when it has none)."""
    p = next(iter(net.parameters()), None)
    return "cpu" if p is None else p.device


# ---------------------------------------------------------------------- cache
def cache_root(runs_dir: str | Path) -> Path:
    return Path(runs_dir) / "supernets"


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a second process waits for the first one's training
        yield
    finally:
        os.close(fd)


def read_cache(path: Path, ident: dict[str, Any], model: Any) -> dict[str, Any]:
    """Check ``path``'s config against ``ident`` and load its weights into ``model.weights``;
    returns the config. Raises :class:`SupernetCacheError` naming the file and the fix."""
    fix = f"delete {path} to retrain it"
    cfg_file = path / CONFIG
    try:
        config = json.loads(cfg_file.read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise SupernetCacheError(f"supernet cache {cfg_file} is unreadable ({type(e).__name__}); {fix}") from None
    fmt = config.get("format")
    if type(fmt) is not int or fmt != FORMAT_VERSION or config.get("ident") != json.loads(json.dumps(ident)):
        raise SupernetCacheError(f"supernet cache {cfg_file} does not match its key (format "
                                 f"{config.get('format')!r}); {fix}")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    wfile = path / WEIGHTS
    try:
        tensors = load_file(str(wfile), device="cpu")  # (map_location) saved from the CPU; moved by LoadedSupernet
    except (OSError, SafetensorError, ValueError, RuntimeError) as e:
        raise SupernetCacheError(f"supernet cache {wfile} is unreadable ({type(e).__name__}); {fix}") from None
    try:
        model.weights.load_state_dict(tensors, strict=True)
    except RuntimeError:
        raise SupernetCacheError(f"supernet cache {wfile} has the wrong tensors for this space; {fix}") from None
    if not (path / TRAIN_LOG).is_file():
        raise SupernetCacheError(f"supernet cache {path / TRAIN_LOG} is missing; {fix}")
    model.eval()
    return config


def write_cache(path: Path, model: Any, log_rows: list[dict[str, Any]], config: dict[str, Any]) -> None:
    """Write weights, train log and config to a temporary folder renamed to ``path`` (atomic)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))  # unique per writer
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.weights.items()}, str(tmp / WEIGHTS),
                  metadata={"format": str(FORMAT_VERSION)})
        with (tmp / TRAIN_LOG).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["epoch", "phase", "loss", "val_acc_largest", "val_acc_smallest", "seconds",
                                              "torch_device"])
            w.writeheader()
            w.writerows(log_rows)
        (tmp / CONFIG).write_text(json.dumps(config, indent=1))
        for p in tmp.iterdir():
            with p.open("rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, path)  # atomic: the cache appears whole or not at all
    except Exception:  # a kill (KeyboardInterrupt) leaves the folder to the next writer, which removes it
        shutil.rmtree(tmp, ignore_errors=True)
        if path.exists() and not (path / CONFIG).exists():  # appeared meanwhile (only by hand: writers hold the lock)
            raise SupernetCacheError(f"supernet cache {path} appeared while training; delete {path} to retrain "
                                     "it") from None
        raise


def _check_not_incomplete(path: Path) -> None:
    """Refuse a cache path that exists without a config (a file, or a folder missing files): the
    cache is written whole by a rename, so someone edited it; training cannot replace it."""
    fix = f"delete {path} to retrain it"
    if path.exists() and not path.is_dir():
        raise SupernetCacheError(f"supernet cache {path} is not a folder; {fix}")
    if path.is_dir() and not (path / CONFIG).exists():
        missing = [n for n in (CONFIG, WEIGHTS, TRAIN_LOG) if not (path / n).exists()]
        raise SupernetCacheError(f"supernet cache {path} is incomplete (no {', '.join(missing)}); {fix}")


def cached_or_trained(path: Path, key: str, runs_dir: str | Path, load: Callable[[], Any],
                       train_fn: Callable[[], Any], say: Callable[[str], None], train: bool) -> Any:
    """Load the cache at ``path``, or train it under a lock (another process may be training it).
    An empty cache folder is trained into; one missing some of its files is refused with one line."""
    if (path / CONFIG).exists():
        sn = load()
        say(f"supernet: loaded from cache {path}")
        return sn
    if path.is_dir() and not any(path.iterdir()):
        if not train:
            raise SupernetCacheError(f"no trained supernet at {path} (an empty folder); train it first "
                                     "(nas search trains it on the driver)")
    else:
        _check_not_incomplete(path)
    if not train:
        raise SupernetCacheError(f"no trained supernet at {path}; train it first (nas search trains it on the driver)")
    with _lock(cache_root(runs_dir) / f".{key}.lock"):
        if (path / CONFIG).exists():  # another process trained it while we waited
            sn = load()
            say(f"supernet: loaded from cache {path}")
            return sn
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()  # nothing in it to lose
        _check_not_incomplete(path)
        for stale in path.parent.glob(f".{key}.tmp-*"):  # left by a killed training (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        return train_fn()


def training_start(data: Dataset, settings: SupernetSettings, seed: int) -> tuple[float, np.random.Generator, Any, Any]:
    """Start a supernet training: torch threads and seed set, denormals flushed; returns (start
    time, sampling generator, training images, labels), the latter on the settings' torch device
    (copied once)."""
    t_start = time.perf_counter()
    torch_session(settings.threads, seed)
    dev = resolve_torch_device(settings.torch_device)
    n = len(data.y_train) if settings.train_images == 0 else min(settings.train_images, len(data.y_train))
    return t_start, np.random.default_rng(seed), on_device(data.x_train, dev)[:n], on_device(data.y_train, dev)[:n]


def training_end(sn: Any, log_rows: list[dict[str, Any]], config: dict[str, Any], t_start: float,
                  say: Callable[[str], None]) -> Any:
    """Finish a supernet training: ``config`` (ident, what was trained) completed with the format,
    time and threads, the cache written (atomic), ``sn`` returned in eval mode."""
    sn.model.eval()
    config = {"format": FORMAT_VERSION, **config, "train_seconds": round(time.perf_counter() - t_start, 1),
              "threads": sn.settings.threads, "torch_device": torch_device_name(str(_device_of(sn.model))),
              "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    write_cache(sn.path, sn.model, log_rows, config)
    sn.config = config
    say(f"supernet: trained in {config['train_seconds']:.0f} s, cached at {sn.path}")
    return sn


def epoch_logger(model: Any, evaluate: Callable[[Any], float], big: Any, small: Any, t_start: float,
                  say: Callable[[str], None], rows: list[dict[str, Any]]) -> Callable[[int, str, float], None]:
    """The per-epoch log of a training: validation accuracy of the largest and smallest networks
    (``evaluate``) appended to ``rows`` (the cache's ``train_log.csv``) and said."""

    device = torch_device_name(str(_device_of(model)))

    def log(epoch: int, phase: str, loss: float) -> None:
        model.eval()
        acc_big, acc_small = evaluate(big), evaluate(small)
        row = {"epoch": epoch, "phase": phase, "loss": round(loss, 5), "val_acc_largest": round(acc_big, 4),
               "val_acc_smallest": round(acc_small, 4), "seconds": round(time.perf_counter() - t_start, 1),
               "torch_device": device}
        rows.append(row)
        say(f"supernet: epoch {epoch} ({phase}) loss {loss:.4f}, val acc largest {acc_big:.4f} / smallest "
            f"{acc_small:.4f}, {row['seconds']:.0f} s on {device}")

    return log


def _phases(settings: SupernetSettings, stages: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """(phase name, epochs, stage) of a training: ``largest``, then the elastic epochs as one
    ``all`` stage (``sandwich``) or split over ``stages`` (``progressive``; later stages get the
    extra epochs)."""
    phases: list[tuple[str, int, str]] = [("largest", settings.epochs_largest, "")]
    if settings.schedule == "sandwich":
        phases.append(("elastic", settings.epochs_elastic, "all"))
    else:
        n_st = len(stages)
        split = [settings.epochs_elastic // n_st + (1 if i >= n_st - settings.epochs_elastic % n_st else 0)
                 for i in range(n_st)]
        phases += [(f"elastic:{st}", e, st) for st, e in zip(stages, split, strict=True)]
    return phases


def train_loop(model: Any, x: Any, y: Any, settings: SupernetSettings, rng: np.random.Generator,
                stages: tuple[str, ...], bigs: list[Any], small: Any,
                sample: Callable[[np.random.Generator, str], Any], log: Callable[[int, str, float], None],
                mixed: bool = False) -> None:
    """Train the shared weights of ``model`` (called as ``model(x, arch)``; has ``sort_channels``).

    On the device of ``model``'s parameters; ``mixed``: the model trains in float (fbnet), so
    it may use mixed precision on CUDA (never the fake-quantised ai8x one). Each step is
    reported to :func:`nas.train.progress` (task ``supernet``) for the command line's bar.

    Per step: the step's largest network (``bigs`` cycled; cross entropy), then in an elastic
    stage ``random_subnets`` sub-networks ``sample(rng, stage)`` (and ``small`` first in the
    ``all`` stage), distilled in place from the largest network's output. Channels are sorted by
    importance once, after the ``largest`` phase. Adam with a cosine learning rate per phase;
    ``log(epoch, phase, mean loss)`` after every epoch.
    """
    import torch
    from torch.nn import functional as F

    n = len(y)
    bs = min(settings.batch_size, n)
    steps = max(1, n // bs)  # drop the last partial batch (BatchNorm needs >= 2 samples)
    dev = _device_of(model)
    autocast, scaler = mixed_precision(dev, mixed)
    phases = _phases(settings, stages)
    total = steps * sum(e for _, e, _ in phases)
    gstep = 0
    epoch = 0
    sorted_once = False
    progress("supernet", 0, total)
    for phase, n_epochs, stage in phases:
        if n_epochs == 0:
            continue
        if phase != "largest" and settings.epochs_largest > 0 and not sorted_once:
            model.sort_channels()
            sorted_once = True
        opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_epochs * steps)
        for _ in range(n_epochs):
            model.train()
            order = torch.from_numpy(rng.permutation(n)).to(x.device)
            loss_sum = torch.zeros((), dtype=torch.float64, device=dev)  # summed on the device: no sync per step
            for s in range(steps):
                idx = order[s * bs : (s + 1) * bs]
                xb, yb = batch_to(x[idx], dev), batch_to(y[idx], dev)
                opt.zero_grad(set_to_none=True)
                top = bigs[gstep % len(bigs)]
                gstep += 1
                with autocast():
                    out = model(xb, top)
                    loss = F.cross_entropy(out, yb)
                _backward(loss, scaler)
                loss_sum += loss.detach().double()
                if stage:
                    soft = out.detach().float().softmax(1)
                    subs = [sample(rng, stage) for _ in range(settings.random_subnets)]
                    if stage == "all":
                        subs.insert(0, small)
                    for sub in subs:
                        with autocast():
                            o = model(xb, sub).float()
                            sl = F.cross_entropy(o, yb)
                            if settings.distill:
                                sl = 0.5 * sl + 0.5 * F.kl_div(o.log_softmax(1), soft, reduction="batchmean")
                        _backward(sl, scaler)
                _step(opt, scaler)
                sched.step()
                progress("supernet", gstep, total)
            epoch += 1
            log(epoch, phase, float(loss_sum) / steps)


def _backward(loss: Any, scaler: Any) -> None:
    (loss if scaler is None else scaler.scale(loss)).backward()


def _step(opt: Any, scaler: Any) -> None:
    if scaler is None:
        opt.step()
    else:
        scaler.step(opt)
        scaler.update()
