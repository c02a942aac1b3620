"""A once-for-all style weight-sharing supernet over the MAX78000 ``ai8x`` space.

What it is (Cai et al., "Once-for-All", ICLR 2020; Yu et al., "BigNAS", ECCV 2020; the vendor's
own ai8x-training NAS follows OFA):

* One shared conv weight tensor (and bias) per layer slot ``(unit u, layer i)`` at the largest
  width and kernel. A sub-network's layer takes the first ``width`` output channels and the
  first ``c_in`` input channels; a 1x1 kernel is the plain *centre* of the shared 3x3 kernel
  (no OFA kernel transform matrix: ours is the identity). Depth: a unit of depth ``d`` runs
  the first ``d`` layer slots of that unit. One classifier per number of units (the flattened
  size depends on the resolution); its inputs are sliced to the sub-network's last width.
* Every layer is fake-quantised at the sub-network's weight bits with
  :func:`search_spaces._ai8x.quantize_weight` (imported, so it follows any refinement of the
  vendor scheme) with a straight-through gradient, activations clamped to [-1, 127/128] and
  rounded to 8 bits, exactly as :class:`search_spaces._ai8x.Ai8xNet` does; BatchNorm has no
  affine parameters (as in ai8x-training) and uses batch statistics while training.
* Training (:func:`get_supernet`): phase ``largest`` trains the largest sub-network (full
  depth, widest, 3x3, 8-bit; the number of units cycles over its choices step by step, since
  each unit count has its own classifier and the deepest plain network trains slowest) for
  ``epochs_largest`` epochs; then the output channels of every unit are re-ordered by
  importance (L1 norm of the unit's weights, one permutation per unit since every layer of a
  unit can feed the next unit; the largest network's function is unchanged). Then, by default
  (``schedule="progressive"``), OFA's progressive shrinking: the elastic epochs are split over
  the stages ``kernel+depth``, ``width`` and ``bits``; each stage samples sub-networks from every
  choice unlocked so far (the others at the largest: widest, 8-bit). Per step the largest
  network at that step's unit count (cross entropy) and ``random_subnets`` random sub-networks,
  the latter with in-place distillation from the largest network's output. Adam, cosine
  learning rate per stage. ``schedule="sandwich"`` (the first version) samples every choice at
  once and adds the smallest sub-network each step; it over-trained the smallest networks
  (their estimates beat larger ones that train better on their own), so the search preferred
  tiny networks (benchmarks/results/supernet_mnist5k.md, bench_qat.md).
* Units: a plain chain pooled down to 1x1 (5 units at 28x28) trains poorly on its own and
  drags the shared weights; the supernet covers (and the search draws) unit counts whose last
  unit runs at >= ``min_side`` pixels per side (:func:`unit_cap`; 28x28: 4 units, 3x3).
* Width cap: the space's widths go to 256, but training cost on a CPU grows with the largest
  sub-network. The supernet covers the space's widths up to a cap: the largest width whose
  largest sub-network (all units at full depth, 3x3) needs at most ``macs_budget`` MACs per
  image, and whose widest layer's output fits the 16 KiB half of a MAX78000 data-memory
  instance (``H*W*ceil(C/64)*4`` bytes, the usual ping-pong layout). ``nas search`` searches
  the covered widths only (the report says so); ``max_width`` overrides the cap.

Cache: trained once per (covered space, data fingerprint and split sizes, settings, seed) under
``<runs_dir>/supernets/<key>/``: ``weights.safetensors`` (no pickle), ``config.json`` (format
version, settings, space, dataset fingerprint) and ``train_log.csv`` (epoch, phase, loss,
validation accuracy of the largest and smallest sub-network, seconds). It is written to a
temporary folder renamed into place, so a killed training leaves no half cache. A corrupted
cache, or one missing some of its files (an empty folder is trained into), raises
:class:`SupernetCacheError` naming the file and the fix (delete the folder), before any
training; it is not rebuilt silently.

Sub-network evaluation (the search's estimate, :class:`nas._accuracy.SupernetAccuracy`): the
inherited weights, then ``finetune_steps`` Adam steps (:func:`finetune`; default 60, batch 64),
BatchNorm recalibrated, then folded and the network scored on the validation split in the
MAX78000's arithmetic as ``nas qat`` scores it (:meth:`LoadedSupernet.quantised`: the vendor's
bias and shift rules, exact integers). Inherited weights alone rank deep
sub-networks too low; the few steps raised Kendall tau vs stand-alone training on 15 networks
(benchmarks/results/supernet_mnist5k.md). :meth:`LoadedSupernet.inherited_module` builds the stand-alone
``space.build(arch)`` (an ``Ai8xNet``), copies the inherited weights into it, recalibrates the
BatchNorm statistics on the first ``recal_images`` training images, and returns it in eval
mode; :func:`inherited_module` does the same from the cache (training it if missing). Its
``state_dict`` has the keys of ``space.build(arch)``. To find the supernet a search used, pass
``settings=settings_from_run(pareto_json["settings"])``, ``seed=settings["data_seed"]`` and the
search's ``runs_dir`` (``settings["supernet"]["cache"]`` names the folder).
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
from search_spaces._ai8x import Ai8xSpace, quantize_weight

from ._data import Dataset

__all__ = [
    "SupernetSettings", "LoadedSupernet", "SupernetCacheError", "get_supernet", "inherited_module",
    "covered_space", "width_cap", "unit_cap", "supernet_key", "settings_from_run", "finetune", "FORMAT_VERSION",
]

FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
CONFIG = "config.json"
TRAIN_LOG = "train_log.csv"
HALF_INSTANCE_BYTES = 16 * 1024
TRAINING = "largest(cycled units)+sort+{schedule}(kd)/v2"
"""Names the training procedure in the cache key: a change of procedure must change the key."""


SCHEDULES = ("progressive", "sandwich")
PROGRESSIVE_STAGES = ("kernel+depth", "width", "bits")
"""Choices each stage of the ``progressive`` schedule unlocks (units are elastic throughout:
the largest network cycles over them and every unit count has its own classifier)."""


class SupernetCacheError(InputError):
    """A supernet cache folder that cannot be read."""


@dataclass(frozen=True)
class SupernetSettings:
    """How the supernet is sized and trained (part of the cache key).

    Attributes:
        max_width: widest channel count covered (None: :func:`width_cap` from ``macs_budget``).
        macs_budget: most MACs per image of the largest sub-network (training cost cap).
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
    """

    max_width: int | None = None
    macs_budget: float = 25e6
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
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown supernet schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}")
        if self.min_side < 1:
            raise InputError(f"supernet min_side must be at least 1, got {self.min_side}")

    def training_dict(self) -> dict[str, Any]:
        """The settings that change the trained weights (the cache key's part)."""
        d = asdict(self)
        d.pop("threads")
        d.pop("recal_images")
        return d


# ---------------------------------------------------------------------- sizing
def _unit_dims(space: Ai8xSpace) -> list[tuple[int, int]]:
    """(H, W) at which each unit's convolutions run (each later unit pools 2x2 first)."""
    _, h, w = space.input_shape
    dims = []
    for u in range(space.max_units):
        if u > 0:
            h, w = (h // 2, w) if space.conv1d else (h // 2, w // 2)
        dims.append((h, w))
    return dims


def largest_macs(space: Ai8xSpace, width: int) -> int:
    """MACs per image of the largest sub-network at ``width`` (all units, full depth, 3x3)."""
    k = max(space.kernels)
    ksize = k if space.conv1d else k * k
    c = space.input_shape[0]
    total = 0
    dims = _unit_dims(space)
    for u in range(space.max_units):
        h, w = dims[u]
        for _ in range(space.max_depth):
            total += h * w * ksize * c * width
            c = width
    h, w = dims[-1]
    return total + c * h * w * space.num_classes


def width_cap(space: Ai8xSpace, settings: SupernetSettings) -> tuple[int, str]:
    """The widest covered width and why (one line for the log)."""
    if settings.max_width is not None:
        ok = [w for w in space.widths if w <= settings.max_width]
        if not ok:
            raise InputError(f"supernet max_width {settings.max_width} is below the space's smallest width "
                             f"{space.widths[0]}")
        return ok[-1], f"widths capped at {ok[-1]}: max_width {settings.max_width} given"
    h0, w0 = _unit_dims(space)[0]
    best = space.widths[0]
    for w in space.widths:
        mem = h0 * w0 * math.ceil(w / 64) * 4
        if largest_macs(space, w) <= settings.macs_budget and mem <= HALF_INSTANCE_BYTES:
            best = w
    macs = largest_macs(space, best)
    return best, (f"widths capped at {best}: largest sub-network {macs / 1e6:.1f} M MACs per image <= budget "
                  f"{settings.macs_budget / 1e6:g} M (training cost on CPU), first-unit output "
                  f"{h0 * w0 * math.ceil(best / 64) * 4} B <= {HALF_INSTANCE_BYTES} B of data memory")


def unit_cap(space: Ai8xSpace, settings: SupernetSettings) -> int:
    """Most units covered: the last unit runs at >= ``min_side`` per side (never below the
    space's ``min_units``). A plain chain pooled to 1x1 scores near chance in the supernet and
    trains poorly on its own (benchmarks/results/supernet_mnist5k.md)."""
    dims = _unit_dims(space)
    ok = [u + 1 for u, (h, w) in enumerate(dims) if min(h, w) >= settings.min_side or (space.conv1d and h >= settings.min_side)]
    return max(space.min_units, max(ok, default=space.min_units))


def covered_space(space: Ai8xSpace, settings: SupernetSettings | None = None) -> Ai8xSpace:
    """``space`` restricted to the widths and unit counts the supernet covers."""
    settings = settings or SupernetSettings()
    cap, _ = width_cap(space, settings)
    return Ai8xSpace(
        input_shape=space.input_shape, num_classes=space.num_classes, conv1d=space.conv1d,
        widths=[w for w in space.widths if w <= cap], kernels=space.kernels, bits=space.bits,
        max_units=unit_cap(space, settings), min_units=space.min_units, max_depth=space.max_depth,
        first_last_8bit=space.first_last_8bit,
    )


def _space_dict(space: Ai8xSpace) -> dict[str, Any]:
    return {
        "input_shape": list(space.input_shape), "num_classes": space.num_classes, "conv1d": space.conv1d,
        "widths": list(space.widths), "kernels": list(space.kernels), "bits": list(space.bits),
        "max_units": space.max_units, "min_units": space.min_units, "max_depth": space.max_depth,
        "first_last_8bit": space.first_last_8bit,
    }


def _data_dict(data: Dataset, settings: SupernetSettings) -> dict[str, Any]:
    n_train = len(data.y_train) if settings.train_images == 0 else min(settings.train_images, len(data.y_train))
    # The fingerprint names the whole data set; the split (seeded) and the images used are hashed too.
    h = hashlib.sha256(np.ascontiguousarray(data.y_train[:n_train]).tobytes()
                       + np.ascontiguousarray(data.x_train[:n_train]).tobytes()).hexdigest()[:16]
    return {"name": data.name, "fingerprint": data.fingerprint, "train_images": n_train, "train_hash": h}


def supernet_key(space: Ai8xSpace, data: Dataset, settings: SupernetSettings, seed: int) -> tuple[str, dict[str, Any]]:
    """The cache key and the JSON it hashes (covered space, data, training settings, seed)."""
    cov = covered_space(space, settings)
    ident = {"format": FORMAT_VERSION, "training": TRAINING.format(schedule=settings.schedule), "space": _space_dict(cov), "data": _data_dict(data, settings),
             "settings": settings.training_dict(), "seed": int(seed)}
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return key, ident


# ---------------------------------------------------------------------- torch parts
def _largest_arch(space: Ai8xSpace) -> dict[str, Any]:
    w, k = space.widths[-1], space.kernels[-1]
    units = [[{"width": w, "kernel": k, "bits": 8 if (space.first_last_8bit and u == 0 and i == 0) else max(space.bits)}
              for i in range(space.max_depth)] for u in range(space.max_units)]
    return space.parse({"units": units, "fc_bits": 8 if space.first_last_8bit else max(space.bits)})


def _smallest_arch(space: Ai8xSpace) -> dict[str, Any]:
    w, k = space.widths[0], space.kernels[0]
    units = [[{"width": w, "kernel": k, "bits": 8 if (space.first_last_8bit and u == 0) else min(space.bits)}]
             for u in range(space.min_units)]
    return space.parse({"units": units, "fc_bits": 8 if space.first_last_8bit else min(space.bits)})


def _ste(x: Any, q: Any) -> Any:
    return x + (q - x).detach()


def _act_quant(x: Any) -> Any:
    import torch

    x = torch.clamp(x, -1.0, 127.0 / 128.0)
    return _ste(x, torch.floor(x * 128.0 + 0.5) / 128.0)


def _make_module(space: Ai8xSpace) -> Any:
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Supernet(nn.Module):
        """Shared weights of every sub-network of a covered ai8x space (see the module docstring)."""

        def __init__(self, space: Ai8xSpace) -> None:
            super().__init__()
            self.space = space
            self.k = max(space.kernels)
            wmax = space.widths[-1]
            c = space.input_shape[0]
            self.weights = nn.ParameterDict()
            for u in range(space.max_units):
                for i in range(space.max_depth):
                    cin = c if (u == 0 and i == 0) else wmax
                    shape = (wmax, cin, self.k) if space.conv1d else (wmax, cin, self.k, self.k)
                    conv = (nn.Conv1d if space.conv1d else nn.Conv2d)(cin, wmax, self.k)  # default init
                    self.weights[f"u{u}_l{i}_weight"] = nn.Parameter(conv.weight.detach().clone().reshape(shape))
                    self.weights[f"u{u}_l{i}_bias"] = nn.Parameter(conv.bias.detach().clone())
            dims = _unit_dims(space)
            self.fc_dims: dict[int, tuple[int, int]] = {}
            for n in range(space.min_units, space.max_units + 1):
                h, w = dims[n - 1]
                self.fc_dims[n] = (h, w)  # the last unit's output size (stride 1, "same" padding)
                lin = nn.Linear(wmax * h * w, space.num_classes)
                self.weights[f"fc{n}_weight"] = nn.Parameter(lin.weight.detach().clone())
                self.weights[f"fc{n}_bias"] = nn.Parameter(lin.bias.detach().clone())

        def layer_weights(self, u: int, i: int, cin: int, spec: dict[str, int]) -> tuple[Any, Any]:
            """The sub-network's (weight, bias) of slot (u, i), before quantisation."""
            w = self.weights[f"u{u}_l{i}_weight"][: spec["width"], :cin]
            if spec["kernel"] != self.k:  # 1x1 (or 1-tap) = the centre of the shared kernel
                c = self.k // 2
                w = w[..., c : c + 1] if self.space.conv1d else w[..., c : c + 1, c : c + 1]
            return w, self.weights[f"u{u}_l{i}_bias"][: spec["width"]]

        def fc_weights(self, n: int, cin: int) -> tuple[Any, Any]:
            h, w = self.fc_dims[n]
            full = self.weights[f"fc{n}_weight"]
            wmax = self.space.widths[-1]
            sl = full.reshape(full.shape[0], wmax, h * w)[:, :cin].reshape(full.shape[0], cin * h * w)
            return sl, self.weights[f"fc{n}_bias"]

        def forward(self, x: torch.Tensor, arch: dict[str, Any], quantize: bool = True) -> torch.Tensor:
            if self.space.conv1d and x.dim() == 4:
                x = x.squeeze(-1)
            c = self.space.input_shape[0]
            for u, unit in enumerate(arch["units"]):
                for i, spec in enumerate(unit):
                    if u > 0 and i == 0:
                        x = F.max_pool1d(x, 2, 2) if self.space.conv1d else F.max_pool2d(x, 2, 2)
                    w, b = self.layer_weights(u, i, c, spec)
                    if quantize:
                        w = _ste(w, quantize_weight(w, spec["bits"]))
                    pad = 1 if spec["kernel"] == 3 else 0
                    x = F.conv1d(x, w, b, padding=pad) if self.space.conv1d else F.conv2d(x, w, b, padding=pad)
                    x = F.relu(F.batch_norm(x, None, None, training=True))
                    x = _act_quant(x) if quantize else torch.clamp(x, -1.0, 127.0 / 128.0)
                    c = spec["width"]
            w, b = self.fc_weights(len(arch["units"]), c)
            if quantize:
                w = _ste(w, quantize_weight(w, arch["fc_bits"]))
            return F.linear(torch.flatten(x, 1), w, b)

        @torch.no_grad()
        def sort_channels(self) -> None:
            """Re-order each unit's output channels by importance (L1 norm over the unit's layers).

            One permutation per unit: every layer of unit u may feed unit u+1 (or the
            classifier), so all of them share one channel order. The largest network's
            function is unchanged; narrower sub-networks then keep the most important channels.
            """
            sp = self.space
            wmax = sp.widths[-1]
            for u in range(sp.max_units):
                imp = sum(self.weights[f"u{u}_l{i}_weight"].abs().reshape(wmax, -1).sum(1)
                          for i in range(sp.max_depth))
                perm = torch.argsort(imp, descending=True, stable=True)
                for i in range(sp.max_depth):
                    wt = self.weights[f"u{u}_l{i}_weight"]
                    wt.copy_(wt[perm])
                    bt = self.weights[f"u{u}_l{i}_bias"]
                    bt.copy_(bt[perm])
                    if i > 0:
                        wt.copy_(wt[:, perm])
                if u + 1 < sp.max_units:
                    for_next = self.weights[f"u{u + 1}_l0_weight"]
                    for_next.copy_(for_next[:, perm])
                if u + 1 in self.fc_dims:
                    h, w = self.fc_dims[u + 1]
                    fc = self.weights[f"fc{u + 1}_weight"]
                    v = fc.reshape(fc.shape[0], wmax, h * w)
                    fc.copy_(v[:, perm].reshape(fc.shape))

    return Supernet(space)


# ---------------------------------------------------------------------- loaded supernet
class LoadedSupernet:
    """A trained supernet with its cache folder.

    Attributes:
        space: the covered space (widths up to the cap).
        model: the torch module holding the shared weights.
        path: the cache folder (``weights.safetensors``, ``config.json``, ``train_log.csv``).
        config: the parsed ``config.json``.
        settings: the supernet settings.
        trained: True when this process trained it (False: loaded from the cache).
    """

    def __init__(self, space: Ai8xSpace, model: Any, path: Path, config: dict[str, Any],
                 settings: SupernetSettings, trained: bool) -> None:
        self.space = space
        self.model = model
        self.path = path
        self.config = config
        self.settings = settings
        self.trained = trained

    @property
    def train_log(self) -> Path:
        return self.path / TRAIN_LOG

    def covers(self, arch: Any) -> None:
        """Raise :class:`InputError` when ``arch`` uses a width the supernet does not cover."""
        self.space.parse(arch)

    def inherited_module(self, arch: Any, data: Dataset, *, recal_images: int | None = None) -> Any:
        """``space.build(arch)`` with the inherited weights and BatchNorm recalibrated (eval mode).

        ``recal_images`` (default: the settings') first training images, in batches of 250,
        give each BatchNorm its cumulative mean and variance.
        """
        import torch

        a = self.space.parse(arch)
        net = self.space.build(a, quantize=True)
        blocks = list(net.layers)
        c = self.space.input_shape[0]
        j = 0
        with torch.no_grad():
            for u, unit in enumerate(a["units"]):
                for i, spec in enumerate(unit):
                    w, b = self.model.layer_weights(u, i, c, spec)
                    blocks[j].op.weight.copy_(w.reshape(blocks[j].op.weight.shape))
                    blocks[j].op.bias.copy_(b)
                    c = spec["width"]
                    j += 1
            w, b = self.model.fc_weights(len(a["units"]), c)
            blocks[j].op.weight.copy_(w)
            blocks[j].op.bias.copy_(b)
        recalibrate_bn(net, data, recal_images or self.settings.recal_images)
        return net

    def quantised(self, net: Any, data: Dataset) -> Any:
        """A copy of ``net`` (BatchNorm statistics set) in the MAX78000's arithmetic, as ``nas qat``
        scores and exports it (:func:`search_spaces._ai8x.vendor_arithmetic`): BatchNorm folded,
        weights and bias at each layer's bits with the vendor's output shift and bias rounding,
        8-bit activations; eval mode, where its forward pass is the chip's exact integer
        arithmetic (``integer_forward``). ``data`` is unused (no calibration needed)."""
        import copy

        from search_spaces._ai8x import vendor_arithmetic

        return vendor_arithmetic(copy.deepcopy(net))

    def evaluate(self, arch: Any, data: Dataset, *, val_images: int = 0) -> tuple[float, int]:
        """(validation accuracy in the chip's arithmetic, images scored) of the sub-network with
        inherited weights."""
        net = self.quantised(self.inherited_module(arch, data), data)
        return accuracy(net, data.x_val, data.y_val, val_images)


def recalibrate_bn(net: Any, data: Dataset, n_images: int, batch: int = 250) -> None:
    """Reset every BatchNorm's statistics and re-estimate them on the first ``n_images`` training
    images (cumulative average, train-mode forward without gradients); leaves ``net`` in eval mode."""
    import torch

    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    n = min(n_images, len(data.y_train))
    x = torch.from_numpy(np.ascontiguousarray(data.x_train[:n]))
    net.train()
    with torch.no_grad():
        for s in range(0, n, batch):
            if n - s >= 2:
                net(x[s : s + batch])
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
    x = torch.from_numpy(np.ascontiguousarray(data.x_train))
    y = torch.from_numpy(np.ascontiguousarray(data.y_train))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(steps):
        idx = torch.randperm(n, generator=gen)[: min(batch, n)]
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    recalibrate_bn(net, data, recal_images)


def accuracy(net: Any, x: np.ndarray, y: np.ndarray, n: int = 0) -> tuple[float, int]:
    """Top-1 accuracy of ``net`` (eval mode) on the first ``n`` samples (0: all)."""
    import torch

    n = len(y) if n == 0 else min(n, len(y))
    xt = torch.from_numpy(np.ascontiguousarray(x[:n]))
    yt = torch.from_numpy(np.ascontiguousarray(y[:n]))
    correct = 0
    net.eval()
    with torch.no_grad():
        for s in range(0, n, 500):
            correct += int((net(xt[s : s + 500]).argmax(1) == yt[s : s + 500]).sum())
    return correct / max(1, n), n


# ---------------------------------------------------------------------- cache
def _cache_root(runs_dir: str | Path) -> Path:
    return Path(runs_dir) / "supernets"


def cache_dir(space: Ai8xSpace, data: Dataset, *, runs_dir: str | Path, seed: int = 0,
              settings: SupernetSettings | None = None) -> Path:
    """Where the supernet for these settings is (or would be) cached."""
    from search_spaces._fbnet import FBNetSpace

    settings = settings or SupernetSettings()
    if isinstance(space, FBNetSpace):
        from ._supernet_fbnet import fbnet_supernet_key

        return _cache_root(runs_dir) / fbnet_supernet_key(space, data, settings, seed)[0]
    key, _ = supernet_key(space, data, settings, seed)
    return _cache_root(runs_dir) / key


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a second process waits for the first one's training
        yield
    finally:
        os.close(fd)


def _read_cache(path: Path, ident: dict[str, Any], model: Any) -> dict[str, Any]:
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
        tensors = load_file(str(wfile))
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


def _write_cache(path: Path, model: Any, log_rows: list[dict[str, Any]], config: dict[str, Any]) -> None:
    """Write weights, train log and config to a temporary folder renamed to ``path`` (atomic)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))  # unique per writer
    try:
        save_file({k: v.detach().contiguous() for k, v in model.weights.items()}, str(tmp / WEIGHTS),
                  metadata={"format": str(FORMAT_VERSION)})
        with (tmp / TRAIN_LOG).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["epoch", "phase", "loss", "val_acc_largest", "val_acc_smallest", "seconds"])
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


def _load(path: Path, space: Ai8xSpace, ident: dict[str, Any], settings: SupernetSettings) -> LoadedSupernet:
    cov = covered_space(space, settings)
    model = _make_module(cov)
    config = _read_cache(path, ident, model)
    return LoadedSupernet(cov, model, path, config, settings, trained=False)


def _check_not_incomplete(path: Path) -> None:
    """Refuse a cache path that exists without a config (a file, or a folder missing files): the
    cache is written whole by a rename, so someone edited it; training cannot replace it."""
    fix = f"delete {path} to retrain it"
    if path.exists() and not path.is_dir():
        raise SupernetCacheError(f"supernet cache {path} is not a folder; {fix}")
    if path.is_dir() and not (path / CONFIG).exists():
        missing = [n for n in (CONFIG, WEIGHTS, TRAIN_LOG) if not (path / n).exists()]
        raise SupernetCacheError(f"supernet cache {path} is incomplete (no {', '.join(missing)}); {fix}")


def _cached_or_trained(path: Path, key: str, runs_dir: str | Path, load: Callable[[], Any],
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
    with _lock(_cache_root(runs_dir) / f".{key}.lock"):
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


def get_supernet(space: Ai8xSpace, data: Dataset, *, runs_dir: str | Path, seed: int = 0,
                 settings: SupernetSettings | None = None, progress: Callable[[str], None] | None = None,
                 train: bool = True) -> LoadedSupernet:
    """The cached supernet for (space, data, settings, seed), trained first when missing.

    Args:
        space: an ``ai8x`` space (its widths above the cap are not covered) or the ``fbnet``
            space (``nas._supernet_fbnet``, every op covered).
        data: the data set (the training split trains, the validation split is logged).
        runs_dir: the runs folder; the cache is ``<runs_dir>/supernets/<key>/``.
        seed: torch / sampling seed of the training.
        settings: sizing and training settings (default :class:`SupernetSettings`).
        progress: called with one-line progress messages.
        train: False raises :class:`SupernetCacheError` instead of training (Ray workers).

    Raises:
        SupernetCacheError: an unreadable cache (names the file; delete the folder to retrain),
            or no cache with ``train=False``.
    """
    from search_spaces._fbnet import FBNetSpace

    settings = settings or SupernetSettings()
    say = progress or (lambda _s: None)
    if isinstance(space, FBNetSpace):
        from ._supernet_fbnet import get_fbnet_supernet

        return get_fbnet_supernet(space, data, runs_dir=runs_dir, seed=seed, settings=settings, say=say, train=train)
    if not isinstance(space, Ai8xSpace):
        raise InputError(f"the supernet covers the ai8x and fbnet spaces only, not {type(space).__name__}")
    key, ident = supernet_key(space, data, settings, seed)
    path = _cache_root(runs_dir) / key
    return _cached_or_trained(path, key, runs_dir, lambda: _load(path, space, ident, settings),
                              lambda: _train(space, data, settings, seed, path, ident, say), say, train)


def settings_from_run(run_settings: dict[str, Any]) -> SupernetSettings:
    """The supernet settings a search used, from its ``settings`` (``pareto.json`` or the study's
    user_attrs), so that ``nas qat`` finds the same cache; the defaults when the search used
    another estimate."""
    from ._accuracy import SupernetAccuracy

    est = dict(run_settings.get("estimator") or {})
    if est.pop("estimator", None) != "supernet":
        return SupernetSettings()
    return SupernetAccuracy(**est).supernet_settings()


def inherited_module(space: Ai8xSpace, arch: Any, data: Dataset, *, runs_dir: str | Path, seed: int = 0,
                     settings: SupernetSettings | None = None) -> Any:
    """``space.build(arch)`` initialised from the cached supernet (trained if missing), BatchNorm
    recalibrated on the first ``recal_images`` training images; eval mode. Its ``state_dict``
    has the keys and shapes of ``space.build(arch)``."""
    sn = get_supernet(space, data, runs_dir=runs_dir, seed=seed, settings=settings)
    return sn.inherited_module(space.parse(arch), data)


def _restrict(space: Ai8xSpace, arch: dict[str, Any], stage: str) -> dict[str, Any]:
    """``arch`` with the choices a ``progressive`` stage has not unlocked yet set to the largest
    (widest, 8 or the space's most bits); ``all``, ``bits``: unchanged."""
    if stage in ("all", "bits"):
        return arch
    wmax, bmax = space.widths[-1], max(space.bits)
    units = [[{"width": wmax if stage == "kernel+depth" else l["width"], "kernel": l["kernel"],
               "bits": 8 if (space.first_last_8bit and u == 0 and i == 0) else bmax}
              for i, l in enumerate(unit)] for u, unit in enumerate(arch["units"])]
    return {"units": units, "fc_bits": 8 if space.first_last_8bit else bmax}


def _train(space: Ai8xSpace, data: Dataset, settings: SupernetSettings, seed: int, path: Path,
           ident: dict[str, Any], say: Callable[[str], None]) -> LoadedSupernet:
    t_start, rng, x, y = _training_start(data, settings, seed)
    n = len(y)
    cov = covered_space(space, settings)
    _, why = width_cap(space, settings)
    model = _make_module(cov)
    big, small = _largest_arch(cov), _smallest_arch(cov)
    say(f"supernet: training on {n} images of {data.name} ({why}); "
        f"{settings.epochs_largest} + {settings.epochs_elastic} epochs; cache {path}")
    log_rows: list[dict[str, Any]] = []
    sn = LoadedSupernet(cov, model, path, {}, settings, trained=True)
    log = _epoch_logger(model, lambda a: sn.evaluate(a, data)[0], big, small, t_start, say, log_rows)

    # The widest, deepest network at each number of units in turn: a deep plain network that pools
    # down to 1x1 (the literal largest) trains much more slowly than one with fewer units
    # (measured stand-alone, one epoch on MNIST 5k: 5 units 0.51, 3 units 0.91 validation accuracy),
    # and every classifier (one per unit count) needs training.
    bigs = [cov.parse({"units": big["units"][:u], "fc_bits": big["fc_bits"]})
            for u in range(cov.min_units, cov.max_units + 1)]
    _train_loop(model, x, y, settings, rng, PROGRESSIVE_STAGES, bigs, small,
                lambda r, stage: cov.parse(_restrict(cov, cov.random_arch(r), stage)), log)
    return _training_end(sn, log_rows, {"ident": ident, "cap": why, "largest": cov.format(big),
                                         "smallest": cov.format(small)}, t_start, say)


def _training_start(data: Dataset, settings: SupernetSettings, seed: int) -> tuple[float, np.random.Generator, Any, Any]:
    """Start a supernet training: torch threads and seed set, denormals flushed; returns (start
    time, sampling generator, training images, labels)."""
    import torch

    t_start = time.perf_counter()
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    torch.set_flush_denormal(True)  # denormals slow fake-quantised training on x86 (see nas._accuracy)
    torch.manual_seed(seed)
    n = len(data.y_train) if settings.train_images == 0 else min(settings.train_images, len(data.y_train))
    x = torch.from_numpy(np.ascontiguousarray(data.x_train[:n]))
    y = torch.from_numpy(np.ascontiguousarray(data.y_train[:n]))
    return t_start, np.random.default_rng(seed), x, y


def _training_end(sn: Any, log_rows: list[dict[str, Any]], config: dict[str, Any], t_start: float,
                  say: Callable[[str], None]) -> Any:
    """Finish a supernet training: ``config`` (ident, what was trained) completed with the format,
    time and threads, the cache written (atomic), ``sn`` returned in eval mode."""
    sn.model.eval()
    config = {"format": FORMAT_VERSION, **config, "train_seconds": round(time.perf_counter() - t_start, 1),
              "threads": sn.settings.threads, "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    _write_cache(sn.path, sn.model, log_rows, config)
    sn.config = config
    say(f"supernet: trained in {config['train_seconds']:.0f} s, cached at {sn.path}")
    return sn


def _epoch_logger(model: Any, evaluate: Callable[[Any], float], big: Any, small: Any, t_start: float,
                  say: Callable[[str], None], rows: list[dict[str, Any]]) -> Callable[[int, str, float], None]:
    """The per-epoch log of a training: validation accuracy of the largest and smallest networks
    (``evaluate``) appended to ``rows`` (the cache's ``train_log.csv``) and said."""

    def log(epoch: int, phase: str, loss: float) -> None:
        model.eval()
        acc_big, acc_small = evaluate(big), evaluate(small)
        row = {"epoch": epoch, "phase": phase, "loss": round(loss, 5), "val_acc_largest": round(acc_big, 4),
               "val_acc_smallest": round(acc_small, 4), "seconds": round(time.perf_counter() - t_start, 1)}
        rows.append(row)
        say(f"supernet: epoch {epoch} ({phase}) loss {loss:.4f}, val acc largest {acc_big:.4f} / smallest "
            f"{acc_small:.4f}, {row['seconds']:.0f} s")

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


def _train_loop(model: Any, x: Any, y: Any, settings: SupernetSettings, rng: np.random.Generator,
                stages: tuple[str, ...], bigs: list[Any], small: Any,
                sample: Callable[[np.random.Generator, str], Any], log: Callable[[int, str, float], None]) -> None:
    """Train the shared weights of ``model`` (called as ``model(x, arch)``; has ``sort_channels``).

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
    gstep = 0
    epoch = 0
    sorted_once = False
    for phase, n_epochs, stage in _phases(settings, stages):
        if n_epochs == 0:
            continue
        if phase != "largest" and settings.epochs_largest > 0 and not sorted_once:
            model.sort_channels()
            sorted_once = True
        opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_epochs * steps)
        for _ in range(n_epochs):
            model.train()
            order = torch.from_numpy(rng.permutation(n))
            loss_sum = 0.0
            for s in range(steps):
                idx = order[s * bs : (s + 1) * bs]
                xb, yb = x[idx], y[idx]
                opt.zero_grad(set_to_none=True)
                top = bigs[gstep % len(bigs)]
                gstep += 1
                out = model(xb, top)
                loss = F.cross_entropy(out, yb)
                loss.backward()
                loss_sum += float(loss.detach())
                if stage:
                    soft = out.detach().softmax(1)
                    subs = [sample(rng, stage) for _ in range(settings.random_subnets)]
                    if stage == "all":
                        subs.insert(0, small)
                    for sub in subs:
                        o = model(xb, sub)
                        sl = F.cross_entropy(o, yb)
                        if settings.distill:
                            sl = 0.5 * sl + 0.5 * F.kl_div(o.log_softmax(1), soft, reduction="batchmean")
                        sl.backward()
                opt.step()
                sched.step()
            epoch += 1
            log(epoch, phase, loss_sum / steps)
