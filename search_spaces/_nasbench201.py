"""NAS-Bench-201 cell space (CIFAR, C=16, N=5): parse, format, encode, sample."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import ArchitectureError, SearchSpace
from ._registry import register_space

if TYPE_CHECKING:
    import optuna
    import torch

__all__ = ["NasBench201Space", "NB201_OPS", "NB201_EDGES"]

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Edges (to, from) in string order: node1<-0 | node2<-0, node2<-1 | node3<-0, node3<-1, node3<-2.
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_OP_INDEX = {op: i for i, op in enumerate(NB201_OPS)}
# MACs of one op in one cell; equal in all three stages (C*C*H*W = 16*16*32*32 = 32*32*16*16 = ...).
_CHW = 16 * 16 * 32 * 32
_STAGE_CHW = ((16, 32 * 32), (32, 16 * 16), (64, 8 * 8))  # (channels, H*W)
_CELLS_PER_STAGE = 5


def _op_macs_params() -> tuple[np.ndarray, np.ndarray]:
    """Per-op MACs and parameter count summed over the network's 15 cells."""
    macs = np.zeros(len(NB201_OPS))
    params = np.zeros(len(NB201_OPS))
    for c, hw in _STAGE_CHW:
        n = _CELLS_PER_STAGE
        macs[2] += n * c * c * hw  # 1x1 conv
        macs[3] += n * 9 * c * c * hw  # 3x3 conv
        macs[4] += n * 9 * c * hw  # 3x3 average pool
        params[2] += n * (c * c + 2 * c)
        params[3] += n * (9 * c * c + 2 * c)
    return macs, params


_OP_MACS, _OP_PARAMS = _op_macs_params()
N_FEATURES = 30 + 5 + 5 + 1 + 6 + 4


@register_space("nasbench201")
class NasBench201Space(SearchSpace):
    """NAS-Bench-201: a 4-node cell with 6 edges, each one of 5 ops.

    An architecture is the NAS-Bench-201 string
    ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``. The network (stem, 3 stages of 5 cells with
    16/32/64 channels on 32x32 CIFAR inputs, residual reductions) is fixed; only the cell varies.
    """

    n_edges = 6
    ops = NB201_OPS

    # ------------------------------------------------------------------ parse / format
    def parse(self, arch: Any) -> str:
        """Validate a cell string and return it unchanged (canonical form)."""
        return self.format(self.op_indices(arch))

    def op_indices(self, arch: Any) -> np.ndarray:
        """The 6 op indices (into :data:`NB201_OPS`) of a cell string, in string order."""
        if not isinstance(arch, str):
            raise ArchitectureError(
                f"nasbench201 architecture must be a cell string like "
                f"'|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|', got {type(arch).__name__}"
            )
        nodes = arch.strip().split("+")
        if len(nodes) != 3:
            raise ArchitectureError(
                f"nasbench201 cell string must have 3 nodes separated by '+', got {len(nodes)} in {arch!r}"
            )
        out: list[int] = []
        for j, node in enumerate(nodes, start=1):
            parts = node.strip()
            if not (parts.startswith("|") and parts.endswith("|")):
                raise ArchitectureError(f"nasbench201 node {j} must be wrapped in '|...|', got {parts!r}")
            edges = [e for e in parts[1:-1].split("|")]
            if len(edges) != j:
                raise ArchitectureError(
                    f"nasbench201 node {j} needs {j} edge(s) 'op~input', got {len(edges)} in {parts!r}"
                )
            for i, edge in enumerate(edges):
                op, sep, src = edge.partition("~")
                if not sep or src != str(i):
                    raise ArchitectureError(
                        f"nasbench201 edge {edge!r} of node {j} must read 'op~{i}'"
                    )
                if op not in _OP_INDEX:
                    raise ArchitectureError(
                        f"nasbench201 unknown op {op!r}; use one of {', '.join(NB201_OPS)}"
                    )
                out.append(_OP_INDEX[op])
        return np.asarray(out, dtype=np.int64)

    def format(self, arch: Any) -> str:
        """The cell string of a cell string or a sequence of 6 op indices."""
        if isinstance(arch, str):
            return self.parse(arch)
        idx = np.asarray(arch)
        if idx.shape != (6,) or not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() > 4:
            raise ArchitectureError("nasbench201 op indices must be 6 integers in 0..4")
        o = [NB201_OPS[int(k)] for k in idx]
        return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"

    def codes(self, archs: list[Any]) -> np.ndarray:
        """(N,) integer codes (base-5 number of the 6 op indices) of many cell strings."""
        cache = _CODE_CACHE
        get = cache.get
        out = np.fromiter((get(a, -1) if isinstance(a, str) else -1 for a in archs), dtype=np.int64,
                          count=len(archs))
        for n in np.nonzero(out < 0)[0]:
            code = int(self.op_indices(archs[n]) @ _POW5)
            if isinstance(archs[n], str) and len(cache) < 100_000:
                cache[archs[n]] = code
            out[n] = code
        return out

    def op_index_array(self, archs: list[Any]) -> np.ndarray:
        """(N, 6) op indices of many cell strings."""
        return _ALL_IDX[self.codes(list(archs))]

    # ------------------------------------------------------------------ encode
    def encode(self, arch: Any) -> np.ndarray:
        """Feature vector: see :meth:`features`."""
        return self.encode_many([arch])[0]

    def encode_many(self, archs: list[Any]) -> np.ndarray:
        """Feature matrix (N, 51) of many cell strings (looked up in a table of all 15,625 cells)."""
        global _FEATURE_TABLE
        if _FEATURE_TABLE is None:
            _FEATURE_TABLE = self.features(_ALL_IDX)
        return _FEATURE_TABLE[self.codes(list(archs))]

    @staticmethod
    def features(idx: np.ndarray) -> np.ndarray:
        """Features of (N, 6) op indices.

        Columns: edge-op one-hot (30), op counts (5), op counts on edges that lie on an
        input-to-output path ("effective", 5), output connected (1), MACs / params of all and of
        effective ops and their logs (6), number of effective edges, of parameter-free effective
        edges, cell depth (longest effective path), and 1 (4).
        """
        n = idx.shape[0]
        onehot = np.zeros((n, 6, 5), dtype=np.float64)
        onehot[np.arange(n)[:, None], np.arange(6)[None, :], idx] = 1.0
        counts = onehot.sum(1)
        live = idx != 0  # edge carries data
        # reachability from the input (node 0)
        r1 = live[:, 0]
        r2 = live[:, 1] | (r1 & live[:, 2])
        from_in = np.stack([np.ones(n, bool), r1, r2], 1)  # node 0,1,2 reachable from input
        # reaches the output (node 3)
        t2 = live[:, 5]
        t1 = live[:, 4] | (live[:, 2] & t2)
        t0 = live[:, 3] | (live[:, 0] & t1) | (live[:, 1] & t2)
        to_out = np.stack([t0, t1, t2, np.ones(n, bool)], 1)  # node 0..3 reach the output
        eff = np.zeros((n, 6), bool)
        for e, (j, i) in enumerate(NB201_EDGES):
            eff[:, e] = live[:, e] & from_in[:, i] & to_out[:, j]
        eff_onehot = onehot * eff[:, :, None]
        eff_counts = eff_onehot.sum(1)
        connected = t0.astype(np.float64)
        macs_all = counts @ _OP_MACS
        macs_eff = eff_counts @ _OP_MACS
        par_all = counts @ _OP_PARAMS
        par_eff = eff_counts @ _OP_PARAMS
        # longest effective path 0 -> 3 (in edges)
        d1 = np.where(eff[:, 0], 1, -99)
        d2 = np.maximum(np.where(eff[:, 1], 1, -99), np.where(eff[:, 2], d1 + 1, -99))
        d3 = np.maximum.reduce([np.where(eff[:, 3], 1, -99), np.where(eff[:, 4], d1 + 1, -99),
                                np.where(eff[:, 5], d2 + 1, -99)])
        depth = np.clip(d3, 0, None)
        scale = 1e6
        feats = [
            onehot.reshape(n, 30),
            counts,
            eff_counts,
            connected[:, None],
            np.stack([macs_all / (10 * scale), macs_eff / (10 * scale), par_all / scale, par_eff / scale,
                      np.log1p(macs_eff / scale), np.log1p(par_eff / 1e4)], 1),
            np.stack([eff.sum(1), (eff_onehot[:, :, [1, 4]].sum((1, 2))), depth, np.ones(n)], 1),
        ]
        return np.concatenate(feats, 1)

    # ------------------------------------------------------------------ sampling
    def random_arch(self, rng: np.random.Generator) -> str:
        """A uniformly drawn cell string."""
        return self.format(rng.integers(0, 5, size=6))

    def sample(self, trial: optuna.Trial) -> str:
        """One ``suggest_categorical`` per edge, named ``edge_<to>_<from>``."""
        ops = [trial.suggest_categorical(f"edge_{j}_{i}", list(NB201_OPS)) for j, i in NB201_EDGES]
        return self.format(np.asarray([_OP_INDEX[o] for o in ops]))

    def build(self, arch: Any, **kwargs: Any) -> torch.nn.Module:
        """The NAS-Bench-201 CIFAR network (C=16, N=5) of cell ``arch`` (see ``_nasbench201_torch``).

        Keyword options: ``num_classes`` (default 10).
        """
        from ._nasbench201_torch import build_nasbench201

        return build_nasbench201(self.op_indices(arch), **kwargs)


_POW5 = 5 ** np.arange(5, -1, -1)
_ALL_IDX = (np.arange(5**6)[:, None] // _POW5[None, :]) % 5  # (15625, 6), row = code
_CODE_CACHE: dict[str, int] = {}
_FEATURE_TABLE: np.ndarray | None = None


def nasbench201_feature_table() -> np.ndarray:
    """Raw features of all 15,625 NAS-Bench-201 cells, row = cell code (built once, then kept)."""
    global _FEATURE_TABLE
    if _FEATURE_TABLE is None:
        _FEATURE_TABLE = NasBench201Space().features(_ALL_IDX)
    return _FEATURE_TABLE
