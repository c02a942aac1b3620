"""The search's accuracy estimates (neither is the network's trained accuracy).

Two estimators, each reported under its real name:

* :class:`Naswot` (the default of ``nas search``): the training-free score of Mellor et al.,
  "Neural Architecture Search without Training", ICML 2021: ``log|K_H|`` with
  ``K_H[i, j] = sum over ReLU units of [c_i == c_j]`` for the binary activation codes ``c`` of a
  batch of real training images through the untrained network. Here the forward pass is the
  quantised one (weights at each layer's bit width, 8-bit activations), so the codes are those
  the accelerator would produce. About one forward pass per candidate.
* :class:`ShortTraining`: a short quantisation-aware training run from scratch (a few epochs on
  a subset of the training split; weights fake-quantised with the vendor's rounding and
  straight-through gradients, BatchNorm not yet folded; 8-bit activations), scored as accuracy
  on the held-out validation split: ``val_acc_short_qat (E epochs on N images)``.

A later issue replaces both with a weight-sharing supernet.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from search_spaces import InputError, SearchSpace

from ._data import Dataset

__all__ = ["Estimator", "Naswot", "ShortTraining", "AccuracyResult", "estimate_accuracy", "make_estimator"]


@dataclass(frozen=True)
class AccuracyResult:
    """One estimate with what it cost.

    Attributes:
        value: the estimate (validation accuracy for short training, ``log|K_H|`` for NASWOT).
        seconds: wall time of the estimate.
        details: estimator-specific figures (training loss, images used, ...).
    """

    value: float
    seconds: float
    details: dict[str, Any]


class Estimator:
    """Interface of an accuracy estimate: a name, a key, and ``evaluate``."""

    key: str = ""

    def metric_name(self) -> str:
        """The estimate's real name as printed in tables and reports."""
        raise NotImplementedError

    def describe(self) -> str:
        """One sentence saying what the estimate is."""
        raise NotImplementedError

    def evaluate(self, space: SearchSpace, arch: Any, data: Dataset, seed: int = 0) -> AccuracyResult:
        """Score one architecture of ``space`` on ``data``."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"estimator": self.key, **asdict(self)}  # type: ignore[call-overload]


def _torch_setup(threads: int, seed: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    # Fake-quantised networks drive some values into the denormal range, which made training
    # steps up to 12x slower on this x86 CPU in our measurements; flushing them avoids that.
    torch.set_flush_denormal(True)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Naswot(Estimator):
    """NASWOT score (Mellor et al., ICML 2021) of the quantised, untrained network.

    Attributes:
        batch: real training images in the batch (the paper uses 128).
        quantize: use the fake-quantised forward pass.
        threads: torch intra-op threads (0 leaves torch's default). Default one: on our shared
            2-core machine two threads were up to 6x slower per estimate when the other core
            was busy (measured), so one thread is the robust default.
    """

    key = "naswot"
    batch: int = 128
    quantize: bool = True
    threads: int = 1

    def __post_init__(self) -> None:
        if self.batch < 2:
            raise InputError(f"the NASWOT batch needs at least 2 images, got {self.batch}")

    def metric_name(self) -> str:
        return f"naswot_logdet_KH (batch {self.batch})"

    def describe(self) -> str:
        q = "quantised (per-layer weight bits, 8-bit activations)" if self.quantize else "float"
        return (
            f"NASWOT training-free score log|K_H| (Mellor et al., 'Neural Architecture Search without "
            f"Training', ICML 2021) of the untrained {q} network on a batch of {self.batch} real "
            f"training images; higher is better. It is a ranking score, not an accuracy."
        )

    def evaluate(self, space: SearchSpace, arch: Any, data: Dataset, seed: int = 0) -> AccuracyResult:
        import torch

        t0 = time.perf_counter()
        _torch_setup(self.threads, seed)
        n = min(self.batch, len(data.y_train))
        x = torch.from_numpy(np.ascontiguousarray(data.x_train[:n]))
        model = space.build(arch, quantize=self.quantize)
        codes: list[torch.Tensor] = []

        def hook(_m: Any, _i: Any, out: torch.Tensor) -> None:
            # +1 for an active ReLU unit, -1 for an inactive one
            codes.append((out.detach().reshape(out.shape[0], -1) > 0).to(torch.float32) * 2.0 - 1.0)

        handles = [b.register_forward_hook(hook) for b in model.layers[:-1]]
        model.train()  # batch statistics, as at initialisation in the paper
        with torch.no_grad():
            model(x)
        for h in handles:
            h.remove()
        # K_H[i, j] = units where codes i and j agree = (s_i . s_j + units) / 2 for s = 2c - 1
        # (exact in float32: every partial sum is an integer below 2^24).
        k = torch.zeros(n, n, dtype=torch.float64)
        for c in codes:
            k += ((c @ c.T).to(torch.float64) + c.shape[1]) / 2.0
        sign, logdet = torch.linalg.slogdet(k)
        value = float(logdet) if float(sign) > 0 else float("-inf")
        if not np.isfinite(value):
            value = -1e6  # singular K_H: identical codes for two images (the worst possible score)
        return AccuracyResult(value=value, seconds=time.perf_counter() - t0,
                              details={"batch": n, "relu_units": int(sum(c.shape[1] for c in codes))})


@dataclass(frozen=True)
class ShortTraining(Estimator):
    """Settings of the short training (fixed for a whole study).

    Attributes:
        epochs: passes over the training subset.
        train_images: training images used (the first ones of the seeded training split).
        val_images: validation images scored (0 = the whole validation split).
        batch_size: mini-batch size.
        lr: Adam learning rate (cosine-decayed to 0 over the run).
        quantize: fake-quantise weights and activations during training and scoring.
        threads: torch intra-op threads (0 leaves torch's default).
    """

    key = "short_qat"
    epochs: int = 2
    train_images: int = 1000
    val_images: int = 0
    batch_size: int = 32
    lr: float = 3e-3
    quantize: bool = True
    threads: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.train_images < 1 or self.batch_size < 1 or self.val_images < 0:
            raise InputError("short training needs epochs, train_images and batch_size of at least 1")
        if not self.lr > 0:
            raise InputError(f"short training learning rate must be positive, got {self.lr}")

    def metric_name(self) -> str:
        kind = "short_qat" if self.quantize else "short_train"
        return f"val_acc_{kind} ({self.epochs} epoch{'s' if self.epochs != 1 else ''} on {self.train_images} images)"

    def describe(self) -> str:
        q = ("weights fake-quantised to each layer's bit width with the vendor's rounding and "
             "straight-through gradients, 8-bit activations, BatchNorm not folded") if self.quantize else "float"
        return (
            f"validation accuracy after a short training from scratch: {self.epochs} epoch(s) on the "
            f"first {self.train_images} images of the training split, batch {self.batch_size}, Adam "
            f"lr {self.lr:g} with cosine decay, {q}. Far below fully trained accuracy; used to rank."
        )

    def evaluate(self, space: SearchSpace, arch: Any, data: Dataset, seed: int = 0) -> AccuracyResult:
        return estimate_accuracy(space, arch, data, self, seed)


def make_estimator(name: str, **kwargs: Any) -> Estimator:
    """``"naswot"`` or ``"short_qat"`` (also ``short-qat``) with its keyword settings."""
    key = name.replace("-", "_").lower()
    if key == "naswot":
        return Naswot(**kwargs)
    if key in ("short_qat", "short_train"):
        return ShortTraining(**kwargs)
    raise InputError(f"unknown accuracy estimate {name!r}; use naswot or short-qat")


def estimate_accuracy(space: SearchSpace, arch: Any, data: Dataset, cfg: ShortTraining, seed: int = 0) -> AccuracyResult:
    """Train ``space.build(arch)`` briefly on ``data`` and return validation accuracy.

    Deterministic for a given seed, data and settings (single process, fixed torch seed).
    """
    import torch
    from torch.nn import functional as F

    t0 = time.perf_counter()
    _torch_setup(cfg.threads, seed)
    gen = np.random.default_rng(seed)
    n_train = min(cfg.train_images, len(data.y_train))
    x_tr = torch.from_numpy(np.ascontiguousarray(data.x_train[:n_train]))
    y_tr = torch.from_numpy(np.ascontiguousarray(data.y_train[:n_train]))
    n_val = len(data.y_val) if cfg.val_images == 0 else min(cfg.val_images, len(data.y_val))
    x_va = torch.from_numpy(np.ascontiguousarray(data.x_val[:n_val]))
    y_va = torch.from_numpy(np.ascontiguousarray(data.y_val[:n_val]))

    model = space.build(arch, quantize=cfg.quantize)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = max(1, -(-n_train // cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    model.train()
    loss_sum, loss_n = 0.0, 0
    for epoch in range(cfg.epochs):
        order = torch.from_numpy(gen.permutation(n_train))
        for s in range(steps_per_epoch):
            idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            out = model(x_tr[idx])
            loss = F.cross_entropy(out, y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if epoch == cfg.epochs - 1:
                loss_sum += float(loss.detach()) * len(idx)
                loss_n += len(idx)
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, n_val, 256):
            correct += int((model(x_va[s : s + 256]).argmax(1) == y_va[s : s + 256]).sum())
    return AccuracyResult(
        value=correct / max(1, n_val),
        seconds=time.perf_counter() - t0,
        details={"train_loss": loss_sum / max(1, loss_n), "n_train": n_train, "n_val": n_val},
    )
