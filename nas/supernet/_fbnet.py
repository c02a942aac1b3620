"""A once-for-all style weight-sharing supernet over the phone ``fbnet`` space.

What it is (Cai et al., "Once-for-All", ICLR 2020; FBNet's blocks, Wu et al., CVPR 2019):

* Every one of the 22 searchable layers keeps one shared inverted-bottleneck block at the largest
  choice (``k5_e6``): a 1x1 expansion to ``6 * C_in`` channels, a 5x5 depthwise conv and a 1x1
  projection, each with its BatchNorm's affine parameters. A block op ``k{3,5}_e{1,3,6}`` takes
  the first ``e * C_in`` expansion channels (*elastic width*) and, for ``k3``, the centre 3x3 of
  the 5x5 depthwise kernel (*elastic kernel*; OFA's kernel transform matrix is the identity
  here). The grouped ops ``k{3,5}_e1_g2`` take the two diagonal blocks of the shared 1x1 weights,
  and their depthwise and projection weights are indexed through the channel shuffle, so that
  each of their channels keeps the weights of the same expansion channel as ``k{3,5}_e1``.
  ``skip`` (*elastic depth*) is the identity, or, where the layer changes width or stride, its
  own 1x1 conv + BN + ReLU. Stem, head and classifier are shared by all sub-networks.
* The shared weights train in float (scoring is in the phones' int8 arithmetic after
  calibration, see below); BatchNorm uses batch statistics while training.
  Residual blocks start as the identity (the scale of the shared block's last BatchNorm is 0
  where the layer keeps its shape; Goyal et al., 2017): with a scale of 1, sub-networks that mix
  the nine ops stayed at chance level through the default training (large gradient norms at the
  start, on 8x8 digits), while each op trained alone.
* Training (:func:`get_fbnet_supernet`, the loop of ``nas.supernet``): ``epochs_largest``
  epochs of the largest network (every layer ``k5_e6``); the expansion channels of each layer are
  re-ordered by importance (L1 norm of their projection weights; the largest network's function
  is unchanged); then progressive shrinking over the stages ``kernel`` (ops ``k3_e6``,
  ``k5_e6``), ``depth`` (and ``skip``) and ``expand`` (all nine ops), each step the largest
  network and ``random_subnets`` random sub-networks of the stage, distilled in place from the
  largest network's output. Where ``skip`` is unlocked, a sub-network draws its skip probability
  uniformly from [0, 1] (:func:`_sample`), so that shallow networks are trained as often as deep
  ones.

A sub-network's estimate (:meth:`LoadedFBNetSupernet.evaluate`, ``nas.estimators``): the inherited
weights copied into ``space.build(arch)`` (its ``state_dict`` keys are those of
:func:`search_spaces._fbnet_torch.build_fbnet`), BatchNorm recalibrated on training images, a few
fine-tuning steps (``FBNET_SUPERNET_DEFAULTS``: 30), then the phones' int8 arithmetic of ``nas
qat`` (BatchNorm folded, int8 per-channel weights on the 7-bit range [-63, 63], int8 per-tensor
activations with ranges calibrated on training images, int32 biases), scored on the validation split.

The cache (``<runs_dir>/supernets/<key>/``, atomic, locked, corrupted files named) is the one of
``nas.supernet``; the key hashes the space (input channels, size, classes), the data, the
training settings that apply here and the seed.

How well it ranks against networks trained from scratch (Kendall tau, NASWOT, MACs and
seed-vs-seed for comparison) is measured by ``benchmarks/bench_supernet_fbnet.py``, written to
``benchmarks/results/supernet_fbnet_*.md`` (listed in docs/benchmarks.md). Before the
zero-initialised residuals it ranked at chance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from search_spaces import FBNetSpace

from ..data import Dataset
from ..train import batch_to, on_device
from ._ai8x import LoadedSupernet
from ._common import (
    FORMAT_VERSION,
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

__all__ = ["LoadedFBNetSupernet", "get_fbnet_supernet", "fbnet_supernet_key", "FBNET_STAGES", "FBNET_SUPERNET_DEFAULTS",
           "LARGEST", "SMALLEST"]

TRAINING = "fbnet:largest+sort+{schedule}(kd,skip-spread,zero-init-residual)/v3"
"""Names the training procedure in the cache key: a change of procedure must change the key."""
FBNET_STAGES = ("kernel", "depth", "expand")
"""The stages of the ``progressive`` schedule (each samples from every op unlocked so far)."""
_STAGE_OPS: dict[str, tuple[int, ...]] = {"kernel": (3, 7), "depth": (3, 7, 8), "expand": tuple(range(9)),
                                          "all": tuple(range(9))}
LARGEST = "7" * 22
"""Every layer ``k5_e6``."""
SMALLEST = "8" * 22
"""Every layer ``skip``."""
CALIBRATION_IMAGES = 256
"""Training images that set the int8 activation ranges of a scored sub-network."""
_TRAINING_FIELDS = ("epochs_largest", "epochs_elastic", "batch_size", "lr", "random_subnets", "distill",
                    "train_images", "schedule")
FBNET_SUPERNET_DEFAULTS: dict[str, Any] = {
    "epochs_largest": 1, "epochs_elastic": 3, "random_subnets": 2, "finetune_steps": 30, "recal_images": 256,
}
"""Settings of the ``supernet`` estimate (the default) that ``nas search`` uses on the fbnet space
unless told otherwise: a largest fbnet network costs ~130 M MACs at 28x28, 5x the MAX78000
supernet's cap, so fewer epochs and sub-networks per step. Training and per-estimate times are in
``benchmarks/results/supernet_fbnet_mnist5k.md``; what the 30 fine-tuning steps do to the ranking
is in ``supernet_fbnet_*_ft0.md`` against ``supernet_fbnet_*.md``."""


def _training_dict(settings: SupernetSettings) -> dict[str, Any]:
    return {k: getattr(settings, k) for k in _TRAINING_FIELDS}


def fbnet_supernet_key(space: FBNetSpace, data: Dataset, settings: SupernetSettings,
                       seed: int) -> tuple[str, dict[str, Any]]:
    """The cache key and the JSON it hashes (space, data, training settings, seed)."""
    ident = {"format": FORMAT_VERSION, "training": TRAINING.format(schedule=settings.schedule),
             "space": {"name": "fbnet", "in_channels": space.in_channels, "num_classes": space.num_classes,
                       "input_size": space.input_size},
             "data": data_dict(data, settings), "settings": _training_dict(settings), "seed": int(seed)}
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return key, ident


class _Spec(NamedTuple):
    """One conv + BN (+ ReLU) of a sub-network layer, with its (sliced) shared weights."""

    weight: Any
    gamma: Any
    beta: Any
    stride: int
    groups: int
    relu: bool
    shuffle: int  # channel shuffle over this many groups after the conv (1: none)


def _shuffle_source(c: int, g: int) -> Any:
    """Position p after a channel shuffle over ``g`` groups holds input channel ``perm[p]``."""
    import torch

    p = torch.arange(c)
    return (p % g) * (c // g) + p // g


def _sample(rng: np.random.Generator, stage: str, n_layers: int = 22) -> list[int]:
    """A random sub-network of ``stage``: the blocks it unlocks drawn uniformly per layer; where it
    unlocks ``skip``, each layer skips with a probability drawn uniformly from [0, 1] for the
    whole network. Per-layer uniform draws over the nine ops would give ~2.4 skips in 22 layers
    (binomial), so the shared weights would never serve the shallow networks the search proposes."""
    from search_spaces import SKIP_OP  # (search_spaces' fbnet torch module: imports torch)

    blocks = tuple(o for o in _STAGE_OPS[stage] if o != SKIP_OP)
    p_skip = float(rng.random()) if SKIP_OP in _STAGE_OPS[stage] else 0.0
    skips = rng.random(n_layers) < p_skip
    picks = rng.integers(0, len(blocks), size=n_layers)
    return [SKIP_OP if sk else blocks[j] for sk, j in zip(skips, picks, strict=True)]


def _make_module(in_channels: int, num_classes: int) -> Any:
    import torch
    from torch import nn
    from torch.nn import functional as F

    from search_spaces import FBNET_BLOCKS, HEAD_CHANNELS, SKIP_OP, STEM_CHANNELS, layer_geometry

    class FBNetSupernet(nn.Module):
        """Shared weights of every sub-network of the fbnet space (see the module docstring)."""

        def __init__(self) -> None:
            super().__init__()
            self.geometry = layer_geometry()
            self.weights = nn.ParameterDict()

            def conv(name: str, cout: int, cin: int, k: int, groups: int = 1) -> None:
                c = nn.Conv2d(cin, cout, k, groups=groups, bias=False)  # PyTorch's default init
                self.weights[name] = nn.Parameter(c.weight.detach().clone())

            def bn(name: str, c: int, gamma: float = 1.0) -> None:
                self.weights[f"{name}_gamma"] = nn.Parameter(torch.full((c,), gamma))
                self.weights[f"{name}_beta"] = nn.Parameter(torch.zeros(c))

            conv("stem", STEM_CHANNELS, in_channels, 3)
            bn("stem_bn", STEM_CHANNELS)
            for i, (cin, cout, stride) in enumerate(self.geometry):
                mid = 6 * cin
                conv(f"l{i}_expand", mid, cin, 1)
                bn(f"l{i}_bn1", mid)
                conv(f"l{i}_dw", mid, mid, 5, groups=mid)
                bn(f"l{i}_bn2", mid)
                conv(f"l{i}_project", cout, mid, 1)
                # zero-init residual: a residual block starts as the identity (Goyal et al., 2017)
                bn(f"l{i}_bn3", cout, 0.0 if stride == 1 and cin == cout else 1.0)
                if stride != 1 or cin != cout:
                    conv(f"l{i}_skip", cout, cin, 1)
                    bn(f"l{i}_skip_bn", cout)
            conv("head", HEAD_CHANNELS, self.geometry[-1][1], 1)
            bn("head_bn", HEAD_CHANNELS)
            lin = nn.Linear(HEAD_CHANNELS, num_classes)
            self.weights["fc_weight"] = nn.Parameter(lin.weight.detach().clone())
            self.weights["fc_bias"] = nn.Parameter(lin.bias.detach().clone())

        def _bn(self, name: str, sl: Any = slice(None)) -> tuple[Any, Any]:
            return self.weights[f"{name}_gamma"][sl], self.weights[f"{name}_beta"][sl]

        def stem_spec(self) -> _Spec:
            return _Spec(self.weights["stem"], *self._bn("stem_bn"), 1, 1, True, 1)

        def head_spec(self) -> _Spec:
            return _Spec(self.weights["head"], *self._bn("head_bn"), 1, 1, True, 1)

        def layer_specs(self, i: int, op: int) -> list[_Spec]:
            """The conv + BN steps of layer ``i`` running ``op`` (empty: the identity)."""
            cin, cout, stride = self.geometry[i]
            w = self.weights
            if op == SKIP_OP:
                if stride == 1 and cin == cout:
                    return []
                return [_Spec(w[f"l{i}_skip"], *self._bn(f"l{i}_skip_bn"), stride, 1, True, 1)]
            k, e, g = FBNET_BLOCKS[op]
            mid = e * cin
            w1 = w[f"l{i}_expand"][:mid]
            g1, b1 = self._bn(f"l{i}_bn1", slice(0, mid))
            dw = w[f"l{i}_dw"][:mid]
            if k < 5:
                c = (5 - k) // 2
                dw = dw[:, :, c : c + k, c : c + k]
            g2, b2 = self._bn(f"l{i}_bn2", slice(0, mid))
            wp = w[f"l{i}_project"][:, :mid]
            if g > 1:  # grouped 1x1 convs: the diagonal blocks; depthwise + projection follow the shuffle
                hi, hm, ho = cin // g, mid // g, cout // g
                w1 = torch.cat([w1[j * hm : (j + 1) * hm, j * hi : (j + 1) * hi] for j in range(g)])
                perm = _shuffle_source(mid, g)
                dw, g2, b2 = dw[perm], g2[perm], b2[perm]
                wp = torch.cat([wp[j * ho : (j + 1) * ho][:, perm[j * hm : (j + 1) * hm]] for j in range(g)])
            g3, b3 = self._bn(f"l{i}_bn3")
            return [_Spec(w1, g1, b1, 1, g, True, g), _Spec(dw, g2, b2, stride, mid, True, 1),
                    _Spec(wp, g3, b3, 1, g, False, 1)]

        @staticmethod
        def _conv_bn(x: torch.Tensor, sp: _Spec) -> torch.Tensor:
            # (not named ``_apply``: that is nn.Module's, which ``.to(device)`` calls)
            # channels-last tensors make PyTorch's CPU depthwise convs faster
            cl = torch.channels_last
            x = F.conv2d(x.contiguous(memory_format=cl), sp.weight.contiguous(memory_format=cl), None, sp.stride,
                         sp.weight.shape[-1] // 2, 1, sp.groups)
            x = F.batch_norm(x, None, None, sp.gamma, sp.beta, training=True)
            if sp.relu:
                x = F.relu(x)
            if sp.shuffle > 1:
                n, c, h, wd = x.shape
                x = x.view(n, sp.shuffle, c // sp.shuffle, h, wd).transpose(1, 2).reshape(n, c, h, wd)
            return x

        def forward(self, x: torch.Tensor, ops: Sequence[int]) -> torch.Tensor:
            x = self._conv_bn(x, self.stem_spec())
            for i, op in enumerate(ops):
                y = x
                for sp in self.layer_specs(i, op):
                    y = self._conv_bn(y, sp)
                cin, cout, stride = self.geometry[i]
                x = y + x if (op != SKIP_OP and cin == cout and stride == 1) else y
            x = self._conv_bn(x, self.head_spec())
            return F.linear(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1), self.weights["fc_weight"],
                            self.weights["fc_bias"])

        @torch.no_grad()
        def sort_channels(self) -> None:
            """Re-order each layer's expansion channels by importance (L1 norm of their projection
            weights), so that smaller expansions keep the most important ones; the largest
            network's function is unchanged."""
            w = self.weights
            for i in range(len(self.geometry)):
                perm = torch.argsort(w[f"l{i}_project"].abs().sum((0, 2, 3)), descending=True, stable=True)
                for name in (f"l{i}_expand", f"l{i}_bn1_gamma", f"l{i}_bn1_beta", f"l{i}_dw", f"l{i}_bn2_gamma",
                             f"l{i}_bn2_beta"):
                    w[name].copy_(w[name][perm])
                w[f"l{i}_project"].copy_(w[f"l{i}_project"][:, perm])

    return FBNetSupernet()


class LoadedFBNetSupernet(LoadedSupernet):
    """A trained fbnet supernet with its cache folder (attributes of :class:`LoadedSupernet`;
    ``space`` is the whole fbnet space: every op of every layer is covered)."""

    def inherited_module(self, arch: Any, data: Dataset, *, recal_images: int | None = None) -> Any:
        """``space.build(arch)`` (float) with the inherited weights, BatchNorm recalibrated on the
        first ``recal_images`` (default: the settings') training images; eval mode."""
        import torch
        from torch import nn

        ops = [int(o) for o in self.space.op_indices(arch)]
        # channels-last: faster depthwise convs on CPU (the state_dict is the same)
        dev = next(self.model.parameters()).device
        net = self.space.build(ops, quantize=False).to(dev, memory_format=torch.channels_last)
        m = self.model

        def put(conv: Any, bn: Any, sp: _Spec) -> None:
            if tuple(conv.weight.shape) != tuple(sp.weight.shape):
                raise RuntimeError(f"supernet slice {tuple(sp.weight.shape)} does not fit {tuple(conv.weight.shape)}")
            conv.weight.copy_(sp.weight)
            bn.weight.copy_(sp.gamma)
            bn.bias.copy_(sp.beta)

        with torch.no_grad():
            put(net.stem[0], net.stem[1], m.stem_spec())
            for i, op in enumerate(ops):
                layer = net.layers[i]
                convs = [c for c in layer.modules() if isinstance(c, nn.Conv2d)]
                bns = [b for b in layer.modules() if isinstance(b, nn.BatchNorm2d)]
                specs = m.layer_specs(i, op)
                if len(convs) != len(specs) or len(bns) != len(specs):
                    raise RuntimeError(f"layer {i} op {op}: {len(convs)} convs in the network, {len(specs)} in the supernet")
                for conv, bn, sp in zip(convs, bns, specs, strict=True):
                    put(conv, bn, sp)
            put(net.head[0], net.head[1], m.head_spec())
            net.classifier.weight.copy_(m.weights["fc_weight"])
            net.classifier.bias.copy_(m.weights["fc_bias"])
        recalibrate_bn(net, data, recal_images or self.settings.recal_images)
        return net

    def quantised(self, net: Any, data: Dataset) -> Any:
        """``net`` (float, BatchNorm statistics set) in the phones' int8 arithmetic: BatchNorm
        folded, int8 per-channel weights on the 7-bit range [-63, 63], int8 activations with ranges
        calibrated on the first :data:`CALIBRATION_IMAGES` training images, int32 biases; eval mode."""
        import torch

        from search_spaces import calibrate_int8, prepare_int8_qat

        dev = next(net.parameters()).device
        x = batch_to(on_device(data.x_train, dev)[:CALIBRATION_IMAGES], dev)
        q = prepare_int8_qat(net).to(dev)  # its new quantisation parameters are made on the CPU
        # channels-last: PyTorch's CPU depthwise convs run faster on it
        return calibrate_int8(q, x).to(memory_format=torch.channels_last)

    def evaluate(self, arch: Any, data: Dataset, *, val_images: int = 0) -> tuple[float, int]:
        """(validation accuracy, images scored) of the int8 sub-network with inherited weights."""
        net = self.quantised(self.inherited_module(arch, data), data)
        return accuracy(net, data.x_val, data.y_val, val_images)


def get_fbnet_supernet(space: FBNetSpace, data: Dataset, *, runs_dir: str | Path, seed: int,
                       settings: SupernetSettings, say: Callable[[str], None], train: bool) -> LoadedFBNetSupernet:
    """The cached fbnet supernet (trained first when missing); see :func:`nas.supernet.get_supernet`."""
    key, ident = fbnet_supernet_key(space, data, settings, seed)
    path = cache_root(runs_dir) / key

    def load() -> LoadedFBNetSupernet:
        model = _make_module(space.in_channels, space.num_classes)
        config = read_cache(path, ident, model)
        return LoadedFBNetSupernet(space, model, path, config, settings, trained=False)

    return cached_or_trained(path, key, runs_dir, load,
                              lambda: _train(space, data, settings, seed, path, ident, say), say, train)


def _train(space: FBNetSpace, data: Dataset, settings: SupernetSettings, seed: int, path: Path,
           ident: dict[str, Any], say: Callable[[str], None]) -> LoadedFBNetSupernet:
    t_start, rng, x, y = training_start(data, settings, seed)
    n = len(y)
    model = _make_module(space.in_channels, space.num_classes)
    say(f"supernet: training the fbnet supernet on {n} images of {data.name}; {settings.epochs_largest} + "
        f"{settings.epochs_elastic} epochs, {settings.random_subnets} sub-networks per step; cache {path}")
    log_rows: list[dict[str, Any]] = []
    sn = LoadedFBNetSupernet(space, model, path, {}, settings, trained=True)
    log = epoch_logger(model, lambda a: sn.evaluate(a, data)[0], LARGEST, SMALLEST, t_start, say, log_rows)
    big, small = [int(c) for c in LARGEST], [int(c) for c in SMALLEST]
    train_loop(model, x, y, settings, rng, FBNET_STAGES, [big], small, _sample, log, mixed=True)
    return training_end(sn, log_rows, {"ident": ident, "largest": LARGEST, "smallest": SMALLEST}, t_start, say)
