"""Analytic cost features of architectures: per-operation-type MACs, parameters, activation memory
traffic and operation counts, computed from the architecture encoding with the space's shapes.

Everything is vectorised: one table lookup or small matrix product per call, no per-architecture
Python loop. The features are in natural units (MACs and parameters in millions, activation traffic
in millions of tensor elements read plus written, counts as counts); several are collinear by
construction (in NAS-Bench-201 every cell has the same shape, so an op type's MACs are proportional
to its count), which a regularised fit handles. Parts of the network that every architecture
shares (stem, head, NAS-Bench-201's reduction blocks) are left out: they are a constant.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from search_spaces import get_space, ofa_mbv3_layer_geometry

from ._errors import UnknownSpaceError

__all__ = ["cost_features", "cost_features_encoded", "cost_feature_names", "COST_FEATURE_NAMES"]

# ------------------------------------------------------------------ NAS-Bench-201
# Cells: 5 per stage, stages (C, H*W) = (16, 32*32), (32, 16*16), (64, 8*8): C*H*W and C*C*H*W
# summed over the 15 cells.
_NB_STAGES = ((16, 32 * 32), (32, 16 * 16), (64, 8 * 8))
_NB_CHW = 5.0 * sum(c * hw for c, hw in _NB_STAGES)  # elements of one edge's output, all cells
_NB_CCHW = 5.0 * sum(c * c * hw for c, hw in _NB_STAGES)
_NB_CC = 5.0 * sum(c * c for c, _ in _NB_STAGES)
_NB_C = 5.0 * sum(c for c, _ in _NB_STAGES)
_NB_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), string order

_NB_NAMES = (
    "macs_conv1x1", "macs_conv3x3", "macs_avg_pool", "params_conv1x1", "params_conv3x3",
    "act_conv1x1", "act_conv3x3", "act_avg_pool", "act_add",
    "n_skip", "n_conv1x1", "n_conv3x3", "n_avg_pool", "n_add", "n_dead", "n_none", "depth",
    "macs", "params", "act",
)


def _nb201_from_idx(idx: np.ndarray) -> np.ndarray:
    """(N, 20) NAS-Bench-201 cost features of (N, 6) op indices (0 none, 1 skip, 2 conv1x1,
    3 conv3x3, 4 avg_pool).

    Only edges on an input-to-output path count for compute (the others are ``n_dead``: a
    framework that runs every edge still pays for them). Conv edges are ReLU-conv-BN (three
    passes over the tensor, each read + write); a pooling edge one pass; a skip edge none;
    ``act_add`` / ``n_add``: the sums where a node has more than one effective input.
    """
    n = idx.shape[0]
    live = idx != 0
    r1 = live[:, 0]
    r2 = live[:, 1] | (r1 & live[:, 2])
    from_in = (np.ones(n, bool), r1, r2)
    t2 = live[:, 5]
    t1 = live[:, 4] | (live[:, 2] & t2)
    t0 = live[:, 3] | (live[:, 0] & t1) | (live[:, 1] & t2)
    to_out = (t0, t1, t2, np.ones(n, bool))
    eff = np.stack([live[:, e] & from_in[i] & to_out[j] for e, (j, i) in enumerate(_NB_EDGES)], 1)
    cnt = [((idx == k) & eff).sum(1).astype(np.float64) for k in range(5)]
    n_dead = (live & ~eff).sum(1).astype(np.float64)
    n_none = (idx == 0).sum(1).astype(np.float64)
    fan_in = np.stack([eff[:, [0]].sum(1), eff[:, [1, 2]].sum(1), eff[:, [3, 4, 5]].sum(1)], 1)
    n_add = np.maximum(fan_in - 1, 0).sum(1).astype(np.float64)
    d1 = np.where(eff[:, 0], 1, -99)
    d2 = np.maximum(np.where(eff[:, 1], 1, -99), np.where(eff[:, 2], d1 + 1, -99))
    d3 = np.maximum.reduce([np.where(eff[:, 3], 1, -99), np.where(eff[:, 4], d1 + 1, -99),
                            np.where(eff[:, 5], d2 + 1, -99)])
    depth = np.clip(d3, 0, None).astype(np.float64)
    m = 1e-6
    macs = np.stack([cnt[2] * _NB_CCHW, cnt[3] * 9 * _NB_CCHW, cnt[4] * 9 * _NB_CHW], 1) * m
    params = np.stack([cnt[2] * (_NB_CC + 2 * _NB_C), cnt[3] * (9 * _NB_CC + 2 * _NB_C)], 1) * m
    act = np.stack([cnt[2] * 6 * _NB_CHW, cnt[3] * 6 * _NB_CHW, cnt[4] * 2 * _NB_CHW, n_add * 3 * _NB_CHW], 1) * m
    counts = np.stack([cnt[1], cnt[2], cnt[3], cnt[4], n_add, n_dead, n_none, depth], 1)
    tot = np.stack([macs.sum(1), params.sum(1), act.sum(1)], 1)
    return np.concatenate([macs, params, act, counts, tot], 1)


@functools.lru_cache(maxsize=1)
def _nb201_table() -> np.ndarray:
    """Cost features of all 15,625 cells, row = cell code (base-5 number of the op indices)."""
    pow5 = 5 ** np.arange(5, -1, -1)
    idx = (np.arange(5**6)[:, None] // pow5[None, :]) % 5
    tab = _nb201_from_idx(idx)
    tab.setflags(write=False)
    return tab


# ------------------------------------------------------------------ FBNet
_FB_STAGES = ((16, 1, 1), (24, 4, 1), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))
_FB_BLOCKS = ((3, 1, 1), (3, 1, 2), (3, 3, 1), (3, 6, 1), (5, 1, 1), (5, 1, 2), (5, 3, 1), (5, 6, 1))
_FB_NAMES = (
    "macs_pointwise", "macs_pointwise_g2", "macs_dw3x3", "macs_dw5x5", "macs_skip_proj",
    "params", "act_conv", "act_expanded", "act_shuffle", "act_add",
    "n_k3", "n_k5", "n_g2", "n_e1", "n_e3", "n_e6", "n_skip", "n_add", "n_convs",
    "macs",
)


@functools.lru_cache(maxsize=1)
def _fbnet_per_layer() -> np.ndarray:
    """(22 * 9, 20) contribution of op ``o`` at layer ``l`` (row ``9 * l + o``) to each feature.

    Shapes of HW-NAS-Bench's CIFAR-100 FBNet network (``search_spaces._fbnet_torch``): the 1x1
    expansion runs at the layer's input resolution, the depthwise conv carries the stride.
    ``act_conv``: elements read + written by the three convs; ``act_expanded``: elements of the
    expanded (``e * C_in``) tensors; ``act_shuffle``: the channel-shuffle copy of grouped blocks;
    ``act_add``: the residual add (read two, write one).
    """
    out = np.zeros((22, 9, len(_FB_NAMES)))
    col = {k: i for i, k in enumerate(_FB_NAMES)}
    cin, side, layer = 16, 32, 0
    for cout, depth, stride in _FB_STAGES:
        for j in range(depth):
            s = stride if j == 0 else 1
            so = -(-side // s)
            hi, ho = side * side, so * so
            for o, (k, e, g) in enumerate(_FB_BLOCKS):
                f = out[layer, o]
                mid = cin * e
                pw = hi * cin * mid / g + ho * mid * cout / g
                f[col["macs_pointwise_g2" if g > 1 else "macs_pointwise"]] = pw
                f[col["macs_dw3x3" if k == 3 else "macs_dw5x5"]] = ho * mid * k * k
                f[col["params"]] = cin * mid / g + mid * k * k + mid * cout / g
                f[col["act_conv"]] = (hi * cin + hi * mid) + (hi * mid + ho * mid) + (ho * mid + ho * cout)
                f[col["act_expanded"]] = hi * mid + ho * mid
                f[col["act_shuffle"]] = 2 * hi * mid if g > 1 else 0.0
                res = s == 1 and cin == cout
                f[col["act_add"]] = 3 * ho * cout if res else 0.0
                f[col["n_k3" if k == 3 else "n_k5"]] = 1
                f[col["n_g2"]] = float(g > 1)
                f[col[f"n_e{e}"]] = 1
                f[col["n_add"]] = float(res)
                f[col["n_convs"]] = 3
            f = out[layer, 8]  # skip: identity, or a 1x1 conv when the shape changes
            f[col["n_skip"]] = 1
            if s != 1 or cin != cout:
                f[col["macs_skip_proj"]] = ho * cin * cout
                f[col["params"]] = cin * cout
                f[col["act_conv"]] = hi * cin + ho * cout
                f[col["n_convs"]] = 1
            cin, side, layer = cout, so, layer + 1
    macs_cols = [col[k] for k in _FB_NAMES if k.startswith("macs_")]
    out[:, :, col["macs"]] = out[:, :, macs_cols].sum(-1)
    scale = np.array([1.0 if k.startswith("n_") else 1e-6 for k in _FB_NAMES])
    tab = (out * scale).reshape(22 * 9, -1)
    tab.setflags(write=False)
    return tab


def _fbnet_from_idx(idx: np.ndarray) -> np.ndarray:
    tab = _fbnet_per_layer().reshape(22, 9, -1)
    out = tab[0][idx[:, 0]].copy()
    for layer in range(1, 22):  # 22 row gathers: no (N, 22, F) temporary
        out += tab[layer][idx[:, layer]]
    return out


# ------------------------------------------------------------------ OFA MobileNetV3


_OFA_NAMES = (
    "macs_pointwise", "macs_dw3x3", "macs_dw5x5", "macs_dw7x7", "params", "act_conv", "act_expanded",
    "act_add", "n_k3", "n_k5", "n_k7", "n_layers", "n_add", "resolution_sq", "macs",
)


def _ofa_from_encoding(x: np.ndarray) -> np.ndarray:
    """OFA-MobileNetV3 cost features of the raw encoding (masked one-hot ks/e, r/224 in column 160)."""
    n = x.shape[0]
    ks1 = x[:, 0:60].reshape(n, 20, 3).astype(np.float64)
    e1 = x[:, 60:120].reshape(n, 20, 3).astype(np.float64)
    active = ks1.sum(2)
    ks = ks1 @ np.array([3.0, 5.0, 7.0])
    e = e1 @ np.array([3.0, 4.0, 6.0])
    r = np.round(x[:, 160].astype(np.float64) * 224)[:, None]
    cin, cout, din, dout = ofa_mbv3_layer_geometry()
    hin = (r / din) ** 2
    hout = np.ceil(r / dout) ** 2
    mid = cin * e
    m = 1e-6
    pw = (hin * cin * mid + hout * mid * cout) * active
    dw = hout * mid * ks**2 * active
    res = ((din == dout) & (cin == cout)).astype(np.float64) * active
    feats = [
        pw.sum(1) * m,
        (dw * ks1[:, :, 0]).sum(1) * m, (dw * ks1[:, :, 1]).sum(1) * m, (dw * ks1[:, :, 2]).sum(1) * m,
        ((cin * mid + mid * ks**2 + mid * cout) * active).sum(1) * m,
        ((hin * cin + 2 * hin * mid + 2 * hout * mid + hout * cout) * active).sum(1) * m,
        ((hin * mid + hout * mid) * active).sum(1) * m,
        (3 * hout * cout * res).sum(1) * m,
        ks1[:, :, 0].sum(1), ks1[:, :, 1].sum(1), ks1[:, :, 2].sum(1), active.sum(1), res.sum(1),
        (r[:, 0] / 224) ** 2,
    ]
    out = np.stack(feats, 1)
    return np.concatenate([out, (out[:, 0] + out[:, 1:4].sum(1))[:, None]], 1)


# ------------------------------------------------------------------ public
COST_FEATURE_NAMES: dict[str, tuple[str, ...]] = {
    "nasbench201": _NB_NAMES, "fbnet": _FB_NAMES, "ofa_mbv3": _OFA_NAMES,
}


def cost_feature_names(space: str) -> tuple[str, ...]:
    """Names of the columns of :func:`cost_features` for ``space``."""
    try:
        return COST_FEATURE_NAMES[space]
    except KeyError:
        raise UnknownSpaceError(
            f"no cost features for search space {space!r}; available: {', '.join(COST_FEATURE_NAMES)}"
        ) from None


def cost_features_encoded(space: str, x: np.ndarray) -> np.ndarray:
    """(N, F) float64 cost features from a raw feature matrix (``get_space(space).encode_many``)."""
    cost_feature_names(space)
    x = np.asarray(x)
    if space == "nasbench201":
        idx = x[:, 0:30].reshape(-1, 6, 5).argmax(2)
        return _nb201_table()[idx @ (5 ** np.arange(5, -1, -1))]
    if space == "fbnet":  # linear in the per-layer one-hot: one matrix product
        dt = np.float32 if x.dtype == np.float32 else np.float64
        return (x[:, 0:198] @ _fbnet_per_layer().astype(dt)).astype(np.float64)
    return _ofa_from_encoding(x)


def cost_features(space: str, archs: Sequence[Any] | np.ndarray) -> np.ndarray:
    """(N, F) analytic cost features of architectures (columns: :func:`cost_feature_names`).

    ``archs``: architectures in any form the space accepts, or an already encoded float feature
    matrix (``get_space(space).encode_many(archs)``). Vectorised: the 15,625 NAS-Bench-201 cells or
    100,000 FBNet architectures take a few tens of milliseconds.

    Raises:
        UnknownSpaceError: a space without cost features.
        search_spaces.ArchitectureError: an invalid architecture.
    """
    cost_feature_names(space)
    if isinstance(archs, np.ndarray) and archs.dtype.kind == "f" and archs.ndim == 2:
        return cost_features_encoded(space, archs)
    sp = get_space(space)
    archs = list(archs)
    if space == "nasbench201":
        return _nb201_table()[sp.codes(archs)]  # type: ignore[attr-defined]
    if space == "fbnet":
        return _fbnet_from_idx(sp.op_index_array(archs))  # type: ignore[attr-defined]
    return _ofa_from_encoding(sp.encode_many(archs, dtype=np.float32))  # type: ignore[call-arg]
