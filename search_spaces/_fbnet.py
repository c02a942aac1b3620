"""FBNet space of HW-NAS-Bench (CIFAR-100): 22 searchable layers, 9 candidate blocks each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import ArchitectureError, SearchSpace
from ._registry import register_space

if TYPE_CHECKING:
    import optuna
    import torch

__all__ = ["FBNetSpace", "FBNET_OPS"]

FBNET_OPS: tuple[str, ...] = (
    "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
)
_N_LAYERS = 22
_KERNEL = np.array([3, 3, 3, 3, 5, 5, 5, 5, 0], dtype=np.float64)
_EXPAND = np.array([1, 1, 3, 6, 1, 1, 3, 6, 0], dtype=np.float64)
_GROUPS = np.array([1, 2, 1, 1, 1, 2, 1, 1, 1], dtype=np.float64)


def _layer_shapes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(C_in, C_out, output H*W) of the 22 layers.

    Approximate: the FBNet macro-architecture (stages of 1,4,4,4,4,4,1 layers with 16, 24, 32, 64,
    112, 184, 352 channels) with CIFAR strides 1,1,2,2,1,2,1 on 32x32 inputs. Used only as features.
    """
    chans = (16, 24, 32, 64, 112, 184, 352)
    depth = (1, 4, 4, 4, 4, 4, 1)
    strides = (1, 1, 2, 2, 1, 2, 1)
    cin, cout, hw = [], [], []
    c_prev, side = 16, 32
    for c, d, s in zip(chans, depth, strides):
        for k in range(d):
            if k == 0:
                side //= s
            cin.append(c_prev)
            cout.append(c)
            hw.append(side * side)
            c_prev = c
    return np.array(cin, float), np.array(cout, float), np.array(hw, float)


_CIN, _COUT, _HW = _layer_shapes()


def _macs_params() -> tuple[np.ndarray, np.ndarray]:
    """(22, 9) MACs and parameters of each candidate block in each layer (approximate)."""
    cin, cout, hw = _CIN[:, None], _COUT[:, None], _HW[:, None]
    mid = cin * _EXPAND[None, :]
    g = _GROUPS[None, :]
    k2 = _KERNEL[None, :] ** 2
    macs = hw * (cin * mid / g + mid * k2 + mid * cout / g)
    params = cin * mid / g + mid * k2 + mid * cout / g
    skip_proj = (cin != cout).astype(float)  # a skip between different widths needs a 1x1 conv
    macs[:, 8] = skip_proj[:, 0] * hw[:, 0] * cin[:, 0] * cout[:, 0]
    params[:, 8] = skip_proj[:, 0] * cin[:, 0] * cout[:, 0]
    return macs, params


_MACS, _PARAMS = _macs_params()
_MACS_FLAT = (_MACS / 1e6).reshape(-1).astype(np.float32)
_PARAMS_FLAT = _PARAMS.reshape(-1)
_HELP_MAP = np.array([
    [1, 0, 1, 0, 0, 0], [1, 0, 0, 1, 0, 0], [1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 1],
    [0, 1, 1, 0, 0, 0], [0, 1, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0]], dtype=np.float32)
_N_FEAT = 198 + 132 + 9 + 22 + 5


def _count_into(out: np.ndarray, idx: np.ndarray) -> None:
    for o in range(9):
        out[:, 330 + o] = (idx == o).sum(1)


@register_space("fbnet")
class FBNetSpace(SearchSpace):
    """FBNet (HW-NAS-Bench CIFAR-100 variant): 22 layers, each one of :data:`FBNET_OPS`.

    An architecture is the string of 22 op-index digits (as in the latency data), e.g.
    ``"7818488874147327324245"``; a list of 22 integers is accepted too.
    """

    n_layers = _N_LAYERS
    ops = FBNET_OPS

    def __init__(self, in_channels: int = 3, num_classes: int = 100, input_size: int = 32) -> None:
        """Defaults: the CIFAR-100 network of the latency tables; other values adapt :meth:`build`
        (and :func:`search_spaces._fbnet_cost.fbnet_cost`) to other data."""
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.input_size = int(input_size)

    def op_indices(self, arch: Any) -> np.ndarray:
        """The 22 op indices of an architecture (digit string or integer sequence)."""
        if isinstance(arch, str):
            s = arch.strip()
            if len(s) != _N_LAYERS or not s.isdigit():
                raise ArchitectureError(
                    f"fbnet architecture string must be {_N_LAYERS} digits 0-8, got {arch!r}"
                )
            idx = np.frombuffer(s.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
        else:
            try:
                idx = np.asarray(arch)
            except (TypeError, ValueError):
                idx = np.asarray([])
            if idx.ndim != 1 or idx.shape[0] != _N_LAYERS:
                raise ArchitectureError(
                    f"fbnet architecture must be {_N_LAYERS} op indices 0-8 (list or digit string), "
                    f"got {arch!r}"
                )
            if idx.dtype.kind not in "iu":
                if idx.dtype.kind == "f" and np.all(np.isfinite(idx)) and np.all(idx == np.round(idx)):
                    idx = idx.astype(np.int64)
                else:
                    raise ArchitectureError(f"fbnet op indices must be integers 0-8, got {arch!r}")
        if idx.min() < 0 or idx.max() > 8:
            raise ArchitectureError(f"fbnet op indices must be in 0..8, got {arch!r}")
        return idx.astype(np.int64)

    def parse(self, arch: Any) -> str:
        """Validate and return the canonical 22-digit string."""
        return self.format(arch)

    def format(self, arch: Any) -> str:
        """The 22-digit string form."""
        return "".join(str(int(k)) for k in self.op_indices(arch))

    def op_index_array(self, archs: list[Any]) -> np.ndarray:
        """(N, 22) op indices of many architectures (fast path for digit strings)."""
        archs = list(archs)
        if archs and all(isinstance(a, str) and len(a) == _N_LAYERS for a in archs):
            buf = np.frombuffer("".join(archs).encode("ascii", "replace"), dtype=np.uint8)
            idx = buf.reshape(len(archs), _N_LAYERS).astype(np.int64) - 48
            bad = np.nonzero((idx < 0).any(1) | (idx > 8).any(1))[0]
            if bad.size:
                self.op_indices(archs[int(bad[0])])  # raises with the message
            return idx
        if not archs:
            return np.zeros((0, _N_LAYERS), dtype=np.int64)
        return np.stack([self.op_indices(a) for a in archs])

    def encode(self, arch: Any) -> np.ndarray:
        """Feature vector: see :meth:`features`."""
        return self.features(self.op_index_array([arch]))[0]

    def encode_many(self, archs: list[Any]) -> np.ndarray:
        """Feature matrix of many architectures."""
        return self.features(self.op_index_array(archs))

    @staticmethod
    def features(idx: np.ndarray) -> np.ndarray:
        """Features of (N, 22) op indices.

        Columns: per-layer op one-hot (198), HELP's per-layer [k3, k5, e1, e1_g2, e3, e6] (132),
        op counts (9), per-layer MACs in M (22), total MACs and params and their logs (4), 1.
        MACs use an approximate channel plan (see :func:`_layer_shapes`).
        """
        n = idx.shape[0]
        flat = idx + 9 * np.arange(_N_LAYERS)[None, :]  # (N, 22) token ids in 0..197
        out = np.zeros((n, _N_FEAT), dtype=np.float32)
        rows = np.arange(n)[:, None]
        out[rows, flat] = 1.0  # per-layer one-hot
        out[:, 198:330] = _HELP_MAP[idx].reshape(n, -1)
        _count_into(out, idx)  # op counts
        layer_macs = _MACS_FLAT[flat]
        out[:, 339:361] = layer_macs
        tot_m = layer_macs.sum(1, dtype=np.float64)
        tot_p = _PARAMS_FLAT[flat].sum(1, dtype=np.float64) / 1e6
        out[:, 361] = tot_m / 10.0
        out[:, 362] = tot_p
        out[:, 363] = np.log(tot_m + 1)
        out[:, 364] = np.log(tot_p + 0.01)
        out[:, 365] = 1.0
        return out

    def random_arch(self, rng: np.random.Generator) -> str:
        """A uniformly drawn architecture."""
        return self.format(rng.integers(0, 9, size=_N_LAYERS))

    def sample(self, trial: optuna.Trial) -> str:
        """One ``suggest_categorical`` per layer, named ``layer_<i>``."""
        ops = [trial.suggest_categorical(f"layer_{i}", list(FBNET_OPS)) for i in range(_N_LAYERS)]
        return "".join(str(FBNET_OPS.index(o)) for o in ops)

    def build(self, arch: Any, **kwargs: Any) -> torch.nn.Module:
        """HW-NAS-Bench's CIFAR-100 FBNet network of ``arch`` (see ``_fbnet_torch``).

        Keyword options: ``num_classes`` and ``in_channels`` (default: the space's, 100 and 3),
        ``quantize`` (int8 weights, 8-bit activations; default False).
        """
        from ._fbnet_torch import build_fbnet

        kwargs.setdefault("num_classes", self.num_classes)
        kwargs.setdefault("in_channels", self.in_channels)
        return build_fbnet(self.op_indices(arch), **kwargs)

    init_description = "PyTorch default initialisation, residual blocks zero-initialised"

    def build_for_training(self, arch: Any, **kwargs: Any) -> torch.nn.Module:
        """:meth:`build` with ``zero_init_residual=True`` (see ``_fbnet_torch.FBNet``)."""
        kwargs.setdefault("zero_init_residual", True)
        return self.build(arch, **kwargs)
