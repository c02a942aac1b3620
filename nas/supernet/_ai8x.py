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
  tiny networks (benchmarks/results/supernet_mnist5k.md, Notes).
* Units: a plain chain pooled down to 1x1 (5 units at 28x28) trains poorly on its own and
  drags the shared weights; the supernet covers (and the search draws) unit counts whose last
  unit runs at >= ``min_side`` pixels per side (:func:`unit_cap`; 28x28: 4 units, 3x3).
* Width cap: the space's widths go to 256, but training cost grows with the largest
  sub-network. The supernet covers the space's widths up to a cap, and only widths whose first
  unit's output fits the 16 KiB half of a MAX78000 data-memory instance (``H*W*ceil(C/64)*4``
  bytes, the usual ping-pong layout). The cap: ``max_width`` when given; else, with a time
  budget (``--supernet-budget``), the widest whose training is predicted to fit it, measured
  once on the training machine (``nas.supernet._sizing``) and recorded as ``budget_width``;
  else (the CPU default) the widest whose largest sub-network (all units at full depth, 3x3)
  needs at most ``macs_budget`` MACs per image. ``nas search`` searches the covered widths only
  (the report says so).

Cache: trained once per (covered space, data fingerprint and split sizes, settings, seed) under
``<runs_dir>/supernets/<key>/``: ``weights.safetensors`` (no pickle), ``config.json`` (format
version, settings, space, dataset fingerprint) and ``train_log.csv`` (epoch, phase, loss,
validation accuracy of the largest and smallest sub-network, seconds). It is written to a
temporary folder renamed into place, so a killed training leaves no half cache. A corrupted
cache, or one missing some of its files (an empty folder is trained into), raises
:class:`SupernetCacheError` naming the file and the fix (delete the folder), before any
training; it is not rebuilt silently.

Sub-network evaluation (the search's estimate, :class:`nas.estimators.SupernetAccuracy`): the
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

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search_spaces import Ai8xSpace, InputError, quantize_weight, vendor_arithmetic

from ..data import Dataset
from ..train import resolve_torch_device
from ._common import (
    FORMAT_VERSION,
    PROGRESSIVE_STAGES,
    TRAIN_LOG,
    SupernetSettings,
    accuracy,
    cache_root,
    cached_or_trained,
    data_dict,
    epoch_logger,
    read_cache,
    recalibrate_bn,
    train_loop,
    training_end,
    training_start,
)

__all__ = [
    "LoadedSupernet", "get_ai8x_supernet", "covered_space", "width_cap", "unit_cap", "supernet_key",
    "ai8x_cache_key", "first_unit_bytes", "format_duration", "HALF_INSTANCE_BYTES",
]

HALF_INSTANCE_BYTES = 16 * 1024
TRAINING = "largest(cycled units)+sort+{schedule}(kd)/v2"
"""Names the training procedure in the cache key: a change of procedure must change the key."""


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


def first_unit_bytes(space: Ai8xSpace, width: int) -> int:
    """Bytes of data memory the first unit's output takes at ``width`` (``H*W*ceil(C/64)*4``: the
    usual ping-pong layout); a width is covered only when it fits :data:`HALF_INSTANCE_BYTES`."""
    h0, w0 = _unit_dims(space)[0]
    return h0 * w0 * math.ceil(width / 64) * 4


def width_cap(space: Ai8xSpace, settings: SupernetSettings) -> tuple[int, str]:
    """The widest covered width and why (one line for the log).

    ``max_width`` overrides; else ``budget_width`` (the width the time budget was sized to, see
    :func:`nas.supernet.size_widths`); else the widest within ``macs_budget`` and data memory.

    Raises:
        RuntimeError: a time budget that was not sized yet (``budget_width`` None).
    """
    if settings.max_width is not None:
        ok = [w for w in space.widths if w <= settings.max_width]
        if not ok:
            raise InputError(f"supernet max_width {settings.max_width} is below the space's smallest width "
                             f"{space.widths[0]}")
        return ok[-1], f"widths capped at {ok[-1]}: max_width {settings.max_width} given"
    if settings.time_budget_s is not None:
        if settings.budget_width is None:
            raise RuntimeError("the supernet's time budget is not sized yet: size it with nas.supernet.size_widths")
        ok = [w for w in space.widths if w <= settings.budget_width] or [space.widths[0]]
        return ok[-1], (f"widths capped at {ok[-1]}: the widest whose supernet training was predicted, by "
                        f"measuring training steps when the run started, to fit the supernet budget of "
                        f"{format_duration(settings.time_budget_s)}")
    h0, w0 = _unit_dims(space)[0]
    best = space.widths[0]
    for w in space.widths:
        if largest_macs(space, w) <= settings.macs_budget and first_unit_bytes(space, w) <= HALF_INSTANCE_BYTES:
            best = w
    macs = largest_macs(space, best)
    return best, (f"widths capped at {best}: largest sub-network {macs / 1e6:.1f} M MACs per image <= budget "
                  f"{settings.macs_budget / 1e6:g} M (training cost on CPU), first-unit output "
                  f"{first_unit_bytes(space, best)} B <= {HALF_INSTANCE_BYTES} B of data memory")


def format_duration(seconds: float) -> str:
    """``90 s``, ``30 min``, ``2 h`` or ``1.5 h`` (how reports write a duration)."""
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


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
        first_last_8bit=space.first_last_8bit, hardware=space.hardware,
    )


def _space_dict(space: Ai8xSpace) -> dict[str, Any]:
    return {
        "input_shape": list(space.input_shape), "num_classes": space.num_classes, "conv1d": space.conv1d,
        "widths": list(space.widths), "kernels": list(space.kernels), "bits": list(space.bits),
        "max_units": space.max_units, "min_units": space.min_units, "max_depth": space.max_depth,
        "first_last_8bit": space.first_last_8bit,
    }


def supernet_key(space: Ai8xSpace, data: Dataset, settings: SupernetSettings, seed: int) -> tuple[str, dict[str, Any]]:
    """The cache key and the JSON it hashes (covered space, data, training settings, seed)."""
    cov = covered_space(space, settings)
    ident = {"format": FORMAT_VERSION, "training": TRAINING.format(schedule=settings.schedule), "space": _space_dict(cov), "data": data_dict(data, settings),
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
        model: the torch module holding the shared weights, on the settings' torch device.
        path: the cache folder (``weights.safetensors``, ``config.json``, ``train_log.csv``).
        config: the parsed ``config.json``.
        settings: the supernet settings.
        trained: True when this process trained it (False: loaded from the cache).
    """

    def __init__(self, space: Ai8xSpace, model: Any, path: Path, config: dict[str, Any],
                 settings: SupernetSettings, trained: bool) -> None:
        self.space = space
        self.model = model.to(resolve_torch_device(settings.torch_device))  # loaded on the CPU
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
        net = self.space.build(a, quantize=True).to(next(self.model.parameters()).device)
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

        return vendor_arithmetic(copy.deepcopy(net))

    def evaluate(self, arch: Any, data: Dataset, *, val_images: int = 0) -> tuple[float, int]:
        """(validation accuracy in the chip's arithmetic, images scored) of the sub-network with
        inherited weights."""
        net = self.quantised(self.inherited_module(arch, data), data)
        return accuracy(net, data.x_val, data.y_val, val_images)


def ai8x_cache_key(space: Ai8xSpace, data: Dataset, settings: SupernetSettings, seed: int) -> str:
    """The cache key (folder name) of the ai8x supernet for these settings."""
    return supernet_key(space, data, settings, seed)[0]


def get_ai8x_supernet(space: Ai8xSpace, data: Dataset, *, runs_dir: str | Path, seed: int,
                      settings: SupernetSettings, say: Callable[[str], None], train: bool) -> LoadedSupernet:
    """The cached ai8x supernet (trained first when missing); see :func:`nas.supernet.get_supernet`."""
    key, ident = supernet_key(space, data, settings, seed)
    path = cache_root(runs_dir) / key
    return cached_or_trained(path, key, runs_dir, lambda: _load(path, space, ident, settings),
                             lambda: _train(space, data, settings, seed, path, ident, say), say, train)


def _load(path: Path, space: Ai8xSpace, ident: dict[str, Any], settings: SupernetSettings) -> LoadedSupernet:
    cov = covered_space(space, settings)
    model = _make_module(cov)
    config = read_cache(path, ident, model)
    return LoadedSupernet(cov, model, path, config, settings, trained=False)


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
    t_start, rng, x, y = training_start(data, settings, seed)
    n = len(y)
    cov = covered_space(space, settings)
    _, why = width_cap(space, settings)
    model = _make_module(cov)
    big, small = _largest_arch(cov), _smallest_arch(cov)
    say(f"supernet: training on {n} images of {data.name} ({why}); "
        f"{settings.epochs_largest} + {settings.epochs_elastic} epochs; cache {path}")
    log_rows: list[dict[str, Any]] = []
    sn = LoadedSupernet(cov, model, path, {}, settings, trained=True)
    log = epoch_logger(model, lambda a: sn.evaluate(a, data)[0], big, small, t_start, say, log_rows)

    # The widest, deepest network at each number of units in turn: a deep plain network that pools
    # down to 1x1 (the literal largest) trains much more slowly than one with fewer units
    # (trained stand-alone for one epoch on MNIST 5k, 5 units stayed far below 3 units),
    # and every classifier (one per unit count) needs training.
    bigs = [cov.parse({"units": big["units"][:u], "fc_bits": big["fc_bits"]})
            for u in range(cov.min_units, cov.max_units + 1)]
    train_loop(model, x, y, settings, rng, PROGRESSIVE_STAGES, bigs, small,
                lambda r, stage: cov.parse(_restrict(cov, cov.random_arch(r), stage)), log)
    return training_end(sn, log_rows, {"ident": ident, "cap": why, "largest": cov.format(big),
                                         "smallest": cov.format(small)}, t_start, say)


