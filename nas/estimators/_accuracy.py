"""The search's accuracy estimates (none is the accuracy of a fully trained network).

Three estimators, each reported under its real name:

* :class:`SupernetAccuracy` (the default of ``nas search``): validation accuracy
  of the sub-network of a once-for-all style weight-sharing supernet (``nas.supernet``; on the
  phones' ``fbnet`` space ``nas.supernet._fbnet``) with inherited weights, BatchNorm recalibrated
  on training images, then scored in the device's arithmetic as ``nas qat`` scores it (MAX78000:
  BatchNorm folded, the vendor's bias and shift rules, exact integers; phones: int8):
  ``val_acc_supernet``.
* :class:`Naswot` (``--accuracy proxy``, for quick runs): the training-free score of Mellor et al.,
  "Neural Architecture Search without Training", ICML 2021: ``log|K_H|`` with
  ``K_H[i, j] = sum over ReLU units of [c_i == c_j]`` for the binary activation codes ``c`` of a
  batch of real training images through the untrained network. Here the forward pass is the
  quantised one (weights at each layer's bit width, 8-bit activations), so the codes are those
  the accelerator would produce. About one forward pass per candidate.
* :class:`ShortTraining`: a short quantisation-aware training run from scratch (a few epochs on
  a subset of the training split; weights fake-quantised with the vendor's rounding and
  straight-through gradients, BatchNorm live; 8-bit activations), then, on the MAX78000,
  BatchNorm folded and scored in the chip's exact integer arithmetic as ``nas qat`` scores it,
  as accuracy on the held-out validation split: ``val_acc_short_qat (E epochs on N images)``.

"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import InputError, SearchSpace, vendor_arithmetic

from ..data import Dataset
from ..record import RunRecord
from ..supernet import (
    CALIBRATION_IMAGES,
    SupernetSettings,
    accuracy,
    cache_dir,
    covered_space,
    finetune,
    get_supernet,
    width_cap,
)
from ..train import backward_step, batch_to, mixed_precision, on_device, top1, torch_session
from ._base import AccuracyResult, Estimator, register_estimator

__all__ = ["Naswot", "ShortTraining", "SupernetAccuracy", "estimate_accuracy", "settings_from_run"]


@register_estimator("naswot", cli_name="proxy", aliases=("proxy",))
@dataclass(frozen=True)
class Naswot(Estimator):
    """NASWOT score (Mellor et al., ICML 2021) of the quantised, untrained network.

    Attributes:
        batch: real training images in the batch (the paper uses 128).
        quantize: use the fake-quantised forward pass.
        threads: torch intra-op threads (0 leaves torch's default). Default one: on our shared
            2-core machine two threads were several times slower per estimate when the other
            core was busy, so one thread is the robust default.
    """

    key = "naswot"
    batch: int = 128
    quantize: bool = True
    threads: int = 1
    note: str = ""
    """Appended to :meth:`describe` (e.g. why NASWOT is the default on a device)."""

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
        ) + (f" {self.note}" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if not self.note:
            d.pop("note")  # settings of runs started before the note existed stay equal
        return d

    def evaluate(self, space: SearchSpace, arch: Any, data: Dataset, seed: int = 0) -> AccuracyResult:
        import torch

        t0 = time.perf_counter()
        torch_session(self.threads, seed)
        dev = self.torch_device
        n = min(self.batch, len(data.y_train))
        x = batch_to(on_device(data.x_train, dev)[:n], dev)
        model = space.build(arch, quantize=self.quantize).to(dev)  # initialised on the CPU: the same on every device
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
        k = torch.zeros(n, n, dtype=torch.float64, device=dev)
        for c in codes:
            k += ((c @ c.T).to(torch.float64) + c.shape[1]) / 2.0
        sign, logdet = torch.linalg.slogdet(k)
        value = float(logdet) if float(sign) > 0 else float("-inf")
        if not np.isfinite(value):
            value = -1e6  # singular K_H: identical codes for two images (the worst possible score)
        return AccuracyResult(value=value, seconds=time.perf_counter() - t0,
                              details={"batch": n, "relu_units": int(sum(c.shape[1] for c in codes))})


@register_estimator("short_qat", cli_name="short-qat", aliases=("short_train",))
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
        q = ("trained with weights fake-quantised to each layer's bit width with the vendor's rounding and "
             "straight-through gradients and 8-bit activations (BatchNorm live), then scored in the "
             "device's arithmetic (MAX78000: BatchNorm folded, weights and bias at each layer's bits with the "
             "vendor's output shift, bias rounded and clamped at the weight bits, computed exactly as the "
             "chip's integers, as nas qat scores it)") if self.quantize else "float"
        return (
            f"validation accuracy after a short training from scratch: {self.epochs} epoch(s) on the "
            f"first {self.train_images} images of the training split, batch {self.batch_size}, Adam "
            f"lr {self.lr:g} with cosine decay, {q}. Far below fully trained accuracy; used to rank."
        )

    def evaluate(self, space: SearchSpace, arch: Any, data: Dataset, seed: int = 0) -> AccuracyResult:
        return estimate_accuracy(space, arch, data, self, seed, device=self.torch_device)


FINETUNE_STEPS = 60
"""Default fine-tuning steps of a sub-network before it is scored (benchmarks/bench_supernet.py)."""


_SETTINGS_FIELDS = tuple(f.name for f in fields(SupernetSettings) if f.name != "torch_device")
_FLAT_NAMES = {"threads": "train_threads"}
"""A :class:`SupernetSettings` field's name in the estimator's flat form (its keyword and its
entry in the run record), where it differs: the estimator's own ``threads`` are per trial."""


@register_estimator("supernet", cli_name="supernet")
@dataclass(frozen=True, init=False)
class SupernetAccuracy(Estimator):
    """Validation accuracy of a sub-network of the weight-sharing supernet (``nas.supernet``).

    Call :meth:`bind` (the search does, in ``validate``) and :meth:`prepare` (trains the supernet
    or loads it from ``<runs_dir>/supernets/<key>/``) before :meth:`evaluate`; a Ray worker
    loads the cache written by the driver and never trains.

    Built from flat keywords, as the run record stores it: the estimate's own (``val_images``,
    ``threads``, ``finetune_steps``, ``finetune_lr``) and those of its
    :class:`nas.supernet.SupernetSettings` (``recal_images``, ``max_width``, ``time_budget_s``, ...;
    ``train_threads`` is the settings' ``threads``), or from ``settings=SupernetSettings(...)``.

    Attributes:
        val_images: validation images scored (0: the whole validation split).
        threads: torch intra-op threads of the per-trial evaluation.
        finetune_steps: Adam steps (batch 64, lr ``finetune_lr``) each sub-network takes from its
            inherited weights before it is scored (0: scored as inherited); not part of the cache.
        finetune_lr: their learning rate.
        settings: the supernet's settings (its ``recal_images`` also recalibrate each scored
            sub-network's BatchNorm).
    """

    key = "supernet"
    val_images: int
    threads: int
    finetune_steps: int
    finetune_lr: float
    settings: SupernetSettings

    def __init__(self, *, val_images: int = 0, threads: int = 1, finetune_steps: int = FINETUNE_STEPS,
                 finetune_lr: float = 1e-3, settings: SupernetSettings | None = None, **flat: Any) -> None:
        if settings is not None and flat:
            raise TypeError(f"give settings or its fields ({', '.join(sorted(flat))}), not both")
        if settings is None:
            names = {_FLAT_NAMES.get(f, f): f for f in _SETTINGS_FIELDS}
            unknown = sorted(k for k in flat if k not in names)
            if unknown:
                raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)}")
            settings = SupernetSettings(**{names[k]: v for k, v in flat.items()})  # checks them
        if val_images < 0 or settings.recal_images < 2:
            raise InputError("supernet estimate: val_images must be >= 0 and recal_images >= 2")
        if finetune_steps < 0 or not finetune_lr > 0:
            raise InputError("supernet estimate: finetune_steps must be >= 0 and finetune_lr positive")
        for k, v in (("val_images", val_images), ("threads", threads), ("finetune_steps", finetune_steps),
                     ("finetune_lr", finetune_lr), ("settings", settings), ("_bound", None), ("_loaded", None)):
            object.__setattr__(self, k, v)

    @property
    def recal_images(self) -> int:
        """Training images that recalibrate BatchNorm (the first ones of the split)."""
        return self.settings.recal_images

    def supernet_settings(self) -> SupernetSettings:
        # The torch device is per process (use_torch_device), not a setting of the estimate.
        return replace(self.settings, torch_device=getattr(self, "_torch_device", "auto"))

    def with_settings(self, **changes: Any) -> SupernetAccuracy:
        """A copy (unbound) with these :class:`SupernetSettings` fields changed."""
        out = SupernetAccuracy(val_images=self.val_images, threads=self.threads, finetune_steps=self.finetune_steps,
                               finetune_lr=self.finetune_lr, settings=replace(self.settings, **changes))
        if hasattr(self, "_torch_device"):
            out.use_torch_device(self._torch_device)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The flat form the run record stores (``SupernetAccuracy(**d)`` rebuilds it, less
        ``estimator``); the time budget's entries only when one is set, so that records of runs
        without one are unchanged."""
        d: dict[str, Any] = {"estimator": self.key, "val_images": self.val_images,
                             "recal_images": self.settings.recal_images, "threads": self.threads,
                             "finetune_steps": self.finetune_steps, "finetune_lr": self.finetune_lr}
        for f in _SETTINGS_FIELDS:
            if f == "recal_images" or (f in ("time_budget_s", "budget_width") and getattr(self.settings, f) is None):
                continue
            d[_FLAT_NAMES.get(f, f)] = getattr(self.settings, f)
        return d

    def bind(self, space: SearchSpace, data: Dataset, runs_dir: str | Path, seed: int = 0) -> None:
        """Fix the space, data, cache folder and seed (computes the cache path; trains nothing)."""
        settings = self.supernet_settings()
        fbnet = space.name == "fbnet"
        if fbnet:  # every op of every layer is covered
            cap, why, covered = None, "", space
        else:
            cap, why = width_cap(space, settings)  # type: ignore[arg-type]
            covered = covered_space(space, settings)  # type: ignore[arg-type]
        path = cache_dir(space, data, runs_dir=Path(runs_dir).absolute(), seed=seed,  # type: ignore[arg-type]
                         settings=settings)
        n_val = len(data.y_val) if self.val_images == 0 else min(self.val_images, len(data.y_val))
        object.__setattr__(self, "_bound", {
            "space": space, "covered": covered, "data": data, "fbnet": fbnet,
            "runs_dir": Path(runs_dir).absolute(),  # Ray Tune workers run in their own folders
            "seed": int(seed), "path": path, "cap": cap, "cap_reason": why, "n_val": n_val,
            "n_recal": min(self.recal_images, len(data.y_train)),
        })
        object.__setattr__(self, "_loaded", None)

    @property
    def cache_path(self) -> Path | None:
        """The supernet's cache folder once bound."""
        return None if self._bound is None else self._bound["path"]  # type: ignore[attr-defined]

    @property
    def covered(self) -> Any:
        """The searched space restricted to the widths the supernet covers (once bound)."""
        return None if self._bound is None else self._bound["covered"]  # type: ignore[attr-defined]

    @property
    def cap_reason(self) -> str:
        return "" if self._bound is None else self._bound["cap_reason"]  # type: ignore[attr-defined]

    def prepare(self, progress: Callable[[str], None] | None = None, *, train: bool = True) -> Any:
        """Train the supernet or load it from the cache (once per process); returns it."""
        if self._loaded is not None:  # type: ignore[attr-defined]
            return self._loaded  # type: ignore[attr-defined]
        b = self._bound  # type: ignore[attr-defined]
        if b is None:
            raise RuntimeError("SupernetAccuracy.bind(space, data, runs_dir) must be called first")
        sn = get_supernet(b["space"], b["data"], runs_dir=b["runs_dir"], seed=b["seed"],
                          settings=self.supernet_settings(), progress=progress, train=train)
        object.__setattr__(self, "_loaded", sn)
        return sn

    def __getstate__(self) -> dict[str, Any]:
        # Shipped to Ray workers without the trained weights: each worker loads the cache.
        state = dict(self.__dict__)
        state["_loaded"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)

    def metric_name(self) -> str:
        return "val_acc_supernet"

    def describe(self) -> str:
        b = self._bound  # type: ignore[attr-defined]
        n_recal = self.recal_images if b is None else b["n_recal"]
        n_val = ("the whole validation split" if b is None
                 else f"the validation split ({b['n_val']} images)")
        return (
            "validation accuracy of the sub-network of a once-for-all style weight-sharing supernet "
            "(trained once on the training split, then cached): weights inherited from the supernet"
            + (f", then {self.finetune_steps} Adam steps (lr {self.finetune_lr:g}, batch 64) on the training split"
               if self.finetune_steps else "")
            + f", BatchNorm statistics recalibrated on {n_recal} training images, "
            + ("then in the phones' int8 arithmetic of nas qat (BatchNorm folded, int8 per-channel weights on the 7-bit range [-63, 63], int8 "
               f"per-tensor activations with ranges calibrated on {_calibration_images()} training images, int32 "
               "biases)"
               if b is not None and b["fbnet"] else
               "then in the MAX78000's arithmetic as nas qat scores and exports it (BatchNorm folded, weights and "
               "bias at the sub-network's per-layer bit widths with the vendor's output shift and rounding, bias "
               "rounded and clamped at the layer's weight bits, 8-bit activations; computed exactly as the chip's "
               "integers)")
            + f", scored on {n_val}. It ranks candidates; it is not the accuracy of the network trained on its own "
            f"(nas qat trains the winners)."
        )

    def evaluate(self, space: SearchSpace, arch: Any, data: Dataset, seed: int = 0) -> AccuracyResult:
        import torch

        t0 = time.perf_counter()
        torch_session(self.threads)
        if self._bound is None:  # type: ignore[attr-defined]
            raise RuntimeError("SupernetAccuracy.bind(space, data, runs_dir) must be called first")
        sn = self.prepare(train=False) if self._loaded is None else self._loaded  # type: ignore[attr-defined]
        net = sn.inherited_module(arch, data, recal_images=self.recal_images)
        if self.finetune_steps:
            torch.manual_seed(seed)
            finetune(net, data, self.finetune_steps, lr=self.finetune_lr, seed=seed, recal_images=self.recal_images)
        acc, n = accuracy(sn.quantised(net, data), data.x_val, data.y_val, self.val_images)
        return AccuracyResult(value=acc, seconds=time.perf_counter() - t0,
                              details={"n_val": n, "recal_images": min(self.recal_images, len(data.y_train)),
                                       "finetune_steps": self.finetune_steps, "supernet": sn.path.name})


def _calibration_images() -> int:
    return CALIBRATION_IMAGES


_SCORING_ARITHMETIC = {"ai8x": vendor_arithmetic}
"""Space name -> what switches a trained module of that space to its device's arithmetic for
scoring (spaces not named here are scored as trained)."""


def estimate_accuracy(space: SearchSpace, arch: Any, data: Dataset, cfg: ShortTraining, seed: int = 0, *,
                      device: str = "cpu") -> AccuracyResult:
    """Train ``space.build(arch)`` briefly on ``data`` and return validation accuracy.

    On torch ``device`` (the data copied there once; float training, ``cfg.quantize`` False,
    in mixed precision on CUDA; fake-quantised training and the score never).

    With ``cfg.quantize`` an ``ai8x`` network is scored in the MAX78000's arithmetic as ``nas qat``
    scores it (:func:`search_spaces._ai8x.vendor_arithmetic`: BatchNorm folded with the running
    statistics, vendor bias and shift rules, exact integers). Deterministic for a given seed,
    data and settings (single process, fixed torch seed).
    """
    import torch
    from torch.nn import functional as F

    t0 = time.perf_counter()
    torch_session(cfg.threads, seed)
    gen = np.random.default_rng(seed)
    n_train = min(cfg.train_images, len(data.y_train))
    x_tr, y_tr = on_device(data.x_train, device)[:n_train], on_device(data.y_train, device)[:n_train]
    n_val = len(data.y_val) if cfg.val_images == 0 else min(cfg.val_images, len(data.y_val))
    x_va, y_va = on_device(data.x_val, device)[:n_val], on_device(data.y_val, device)[:n_val]

    model = space.build_for_training(arch, quantize=cfg.quantize).to(device)  # initialised on the CPU
    autocast, scaler = mixed_precision(device, not cfg.quantize)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = max(1, -(-n_train // cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    model.train()
    loss_sum, loss_n = 0.0, 0
    for epoch in range(cfg.epochs):
        order = torch.from_numpy(gen.permutation(n_train)).to(x_tr.device)
        for s in range(steps_per_epoch):
            idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            opt.zero_grad(set_to_none=True)
            with autocast():
                out = model(batch_to(x_tr[idx], device))
                loss = F.cross_entropy(out, batch_to(y_tr[idx], device))
            backward_step(loss, opt, scaler)
            sched.step()
            if epoch == cfg.epochs - 1:
                loss_sum += float(loss.detach()) * len(idx)
                loss_n += len(idx)
    to_device = _SCORING_ARITHMETIC.get(getattr(space, "name", ""))
    if cfg.quantize and to_device is not None:
        model = to_device(model)  # scored as the chip computes it (BN folded, exact integers)
    acc, _ = top1(model, x_va, y_va, batch=256)
    return AccuracyResult(
        value=acc,
        seconds=time.perf_counter() - t0,
        details={"train_loss": loss_sum / max(1, loss_n), "n_train": n_train, "n_val": n_val},
    )


def settings_from_run(run: RunRecord | dict[str, Any]) -> SupernetSettings:
    """The supernet settings a search used, from its run record (or a dict with its ``estimator``
    entry), so that ``nas qat`` finds the same cache; the defaults when the search used another
    estimate."""
    est = dict(run.estimator if isinstance(run, RunRecord) else (run.get("estimator") or {}))
    if est.pop("estimator", None) != "supernet":
        return SupernetSettings()
    return SupernetAccuracy(**est).supernet_settings()
