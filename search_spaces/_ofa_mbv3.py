"""Once-for-All MobileNetV3 space (ImageNet): kernel, expansion, depth and resolution."""

from __future__ import annotations

from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import ArchitectureError, SearchSpace
from ._registry import register_space

if TYPE_CHECKING:
    import optuna

__all__ = ["OFAMobileNetV3Space"]

_KS = (3, 5, 7)
_ES = (3, 4, 6)
_DS = (2, 3, 4)
_RS = tuple(range(128, 225, 4))  # 25 resolutions
_WIDTHS = (24, 40, 80, 112, 160)
_STRIDES = (2, 2, 2, 1, 2)
_N_LAYERS = 20  # 5 stages x 4 layers (only the first d of each stage are active)


def ofa_mbv3_layer_geometry() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per OFA-MobileNetV3 layer (20): C_in, C_out, input-side and output-side divisor of the
    input resolution."""
    cin, cout, din, dout = [], [], [], []
    c_prev, div = 16, 2  # after the stem (stride 2) and the first 16-channel block
    for w, s in zip(_WIDTHS, _STRIDES):
        for k in range(4):
            cin.append(c_prev if k == 0 else w)
            cout.append(w)
            din.append(div)
            if k == 0:
                div *= s
            dout.append(div)
        c_prev = w
    return (np.array(cin, float), np.array(cout, float), np.array(din, float), np.array(dout, float))


_CIN, _COUT, _DIN, _DOUT = ofa_mbv3_layer_geometry()
_N_FEAT = 60 + 60 + 25 + 15 + 2 + 20 + 5


def _code(allowed: tuple[int, ...]) -> np.ndarray:
    """Lookup table value -> position in ``allowed`` (validated values only)."""
    lut = np.zeros(max(allowed) + 1, dtype=np.int64)
    lut[list(allowed)] = np.arange(len(allowed))
    return lut


_KS_CODE, _ES_CODE, _DS_CODE, _RS_CODE = _code(_KS), _code(_ES), _code(_DS), _code(_RS)


def _member(values: np.ndarray, allowed: tuple[int, ...]) -> np.ndarray:
    """Elementwise ``values in allowed`` via a lookup table (faster than np.isin)."""
    lut = np.zeros(max(allowed) + 1, dtype=bool)
    lut[list(allowed)] = True
    inside = (values >= 0) & (values < lut.size)
    return inside & lut[np.where(inside, values, 0)]


def _as_int_list(value: Any, n: int, name: str, allowed: tuple[int, ...]) -> list[int]:
    if isinstance(value, str):
        if len(value) != n or not value.isdigit():
            raise ArchitectureError(f"ofa_mbv3 {name!r} must be {n} digits from {allowed}, got {value!r}")
        vals = [int(c) for c in value]
    else:
        try:
            vals = [int(v) for v in value]
            ok = all(float(v) == int(v) for v in value)
        except (TypeError, ValueError):
            raise ArchitectureError(
                f"ofa_mbv3 {name!r} must be a list of {n} integers from {allowed}, got {value!r}"
            ) from None
        if not ok or len(vals) != n:
            raise ArchitectureError(
                f"ofa_mbv3 {name!r} must be a list of {n} integers from {allowed}, got {value!r}"
            )
    bad = [v for v in vals if v not in allowed]
    if bad:
        raise ArchitectureError(f"ofa_mbv3 {name!r} value {bad[0]} not allowed; use one of {allowed}")
    return vals


@register_space("ofa_mbv3")
class OFAMobileNetV3Space(SearchSpace):
    """OFA MobileNetV3: 5 stages of 2-4 MBConv layers, kernel 3/5/7, expand 3/4/6, resolution 128-224.

    An architecture is ``{"ks": [20 ints], "e": [20 ints], "d": [5 ints], "r": int}``; entries of
    inactive layers (beyond a stage's depth) are kept but ignored. The string form is
    ``"ks=<20 digits> e=<20 digits> d=<5 digits> r=<int>"``.
    """

    def parse(self, arch: Any) -> dict[str, Any]:
        """Validate a dict (or its string form) and return the canonical dict."""
        if isinstance(arch, str):
            try:
                arch = dict(part.split("=", 1) for part in arch.split())
            except ValueError:
                raise ArchitectureError(
                    f"ofa_mbv3 string must read 'ks=<20 digits> e=<20 digits> d=<5 digits> r=<int>', got {arch!r}"
                ) from None
        if not isinstance(arch, dict):
            raise ArchitectureError(
                f"ofa_mbv3 architecture must be a dict with keys ks, e, d, r, got {type(arch).__name__}"
            )
        missing = [k for k in ("ks", "e", "d", "r") if k not in arch]
        extra = [k for k in arch if k not in ("ks", "e", "d", "r")]
        if missing or extra:
            what = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(map(str, extra))}"
            raise ArchitectureError(f"ofa_mbv3 architecture keys must be ks, e, d, r ({what})")
        ks = _as_int_list(arch["ks"], _N_LAYERS, "ks", _KS)
        e = _as_int_list(arch["e"], _N_LAYERS, "e", _ES)
        d = _as_int_list(arch["d"], 5, "d", _DS)
        try:
            r = int(arch["r"])
            if isinstance(arch["r"], bool) or float(arch["r"]) != r:
                raise ValueError
        except (TypeError, ValueError):
            raise ArchitectureError(f"ofa_mbv3 'r' must be an integer resolution, got {arch['r']!r}") from None
        if r not in _RS:
            raise ArchitectureError(f"ofa_mbv3 resolution r={r} not allowed; use 128..224 in steps of 4")
        return {"ks": ks, "e": e, "d": d, "r": r}

    def format(self, arch: Any) -> str:
        """The one-line string form."""
        a = self.parse(arch)
        j = "".join
        return f"ks={j(map(str, a['ks']))} e={j(map(str, a['e']))} d={j(map(str, a['d']))} r={a['r']}"

    def arrays(self, archs: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ks (N,20), e (N,20), d (N,5), r (N,)) of many architectures, validated.

        Dicts of integer sequences take a vectorised path (one ``bytes`` buffer per key, no
        per-architecture array); anything else (floats, strings, other types, out-of-range
        values) is parsed one by one, with its precise messages.
        """
        archs = list(archs)
        n = len(archs)
        if n == 0:
            z = np.zeros((0, _N_LAYERS), np.int64)
            return z, z.copy(), np.zeros((0, 5), np.int64), np.zeros(0, np.int64)
        try:
            if not all(type(a) is dict and len(a) == 4 for a in archs):
                raise ValueError
            cols = []
            for key, width in (("ks", _N_LAYERS), ("e", _N_LAYERS), ("d", 5)):
                lists = list(map(itemgetter(key), archs))
                if not all(len(v) == width for v in lists):
                    raise ValueError
                # bytes() takes integers 0-255 only (a float or a string raises TypeError)
                flat = np.frombuffer(bytes(chain.from_iterable(lists)), dtype=np.uint8)
                cols.append(flat.reshape(n, width).astype(np.int64))
            cols.append(np.frombuffer(bytes(map(itemgetter("r"), archs)), dtype=np.uint8).astype(np.int64))
            ks, e, d, r = cols
            valid = (_member(ks, _KS).all(1) & _member(e, _ES).all(1) & _member(d, _DS).all(1)
                     & _member(r, _RS))
            if not valid.all():
                self.parse(archs[int(np.argmin(valid))])  # raises the precise message
            return ks, e, d, r
        except (ValueError, TypeError, KeyError, OverflowError):
            parsed = [self.parse(a) for a in archs]
            return (np.array([a["ks"] for a in parsed], np.int64), np.array([a["e"] for a in parsed], np.int64),
                    np.array([a["d"] for a in parsed], np.int64), np.array([a["r"] for a in parsed], np.int64))

    def encode(self, arch: Any) -> np.ndarray:
        """Feature vector: see :meth:`features`."""
        return self.encode_many([arch])[0]

    def encode_many(self, archs: list[Any], dtype: type = np.float64) -> np.ndarray:
        """Feature matrix of many architectures (``dtype``: float64, or float32 for speed; the
        float32 matrix equals the float64 one rounded to float32)."""
        return self.features(*self.arrays(archs), dtype=dtype)

    @staticmethod
    def features(ks: np.ndarray, e: np.ndarray, d: np.ndarray, r: np.ndarray,
                 dtype: type = np.float64) -> np.ndarray:
        """Features: HELP's masked one-hot ks (60) and e (60) and one-hot r (25), one-hot depth
        per stage (15), r/224 and its square, per-layer MACs (20, zero when inactive), total MACs,
        its log, total block params, number of active layers, 1.

        Written column block by column block into one preallocated ``dtype`` matrix; the numeric
        columns are computed in float64 and rounded once.
        """
        n = ks.shape[0]
        out = np.zeros((n, _N_FEAT), dtype=dtype)
        rows = np.arange(n)[:, None]
        active = (np.arange(4)[None, None, :] < d[:, :, None]).reshape(n, _N_LAYERS)
        layer = np.arange(_N_LAYERS)[None, :]
        # one-hots by scatter: masked ks (cols 0-59) and e (60-119) of active layers only
        ks_col = np.where(active, layer * 3 + _KS_CODE[ks], -1)
        e_col = np.where(active, 60 + layer * 3 + _ES_CODE[e], -1)
        for cols in (ks_col, e_col):
            rr_i, cc_i = np.nonzero(cols >= 0)
            out[rr_i, cols[rr_i, cc_i]] = 1
        out[rows[:, 0], 120 + _RS_CODE[r]] = 1  # one-hot r (120-144)
        out[rows, 145 + np.arange(5)[None, :] * 3 + _DS_CODE[d]] = 1  # one-hot depth (145-159)
        rr = r.astype(np.float64)[:, None]
        out[:, 160] = rr[:, 0] / 224
        out[:, 161] = (rr[:, 0] / 224) ** 2
        mid = _CIN[None, :] * e
        hin = (rr / _DIN[None, :]) ** 2
        hout = np.ceil(rr / _DOUT[None, :]) ** 2
        macs = (hin * _CIN * mid + hout * mid * ks**2 + hout * mid * _COUT) * active / 1e6
        out[:, 162:182] = macs
        params = (_CIN * mid + mid * ks**2 + mid * _COUT) * active / 1e6
        stem = (rr[:, 0] / 2) ** 2 * (3 * 16 * 9 + 16 * 9 + 16 * 16) / 1e6
        head = (np.ceil(rr[:, 0] / 32) ** 2) * (160 * 960) / 1e6 + 960 * 1280 / 1e6
        tot = macs.sum(1) + stem + head
        out[:, 182] = tot / 100
        out[:, 183] = np.log(tot)
        out[:, 184] = params.sum(1)
        out[:, 185] = active.sum(1) / 20
        out[:, 186] = 1
        return out

    def random_arch(self, rng: np.random.Generator) -> dict[str, Any]:
        """A uniformly drawn architecture."""
        return {
            "ks": [int(v) for v in rng.choice(_KS, _N_LAYERS)],
            "e": [int(v) for v in rng.choice(_ES, _N_LAYERS)],
            "d": [int(v) for v in rng.choice(_DS, 5)],
            "r": int(rng.choice(_RS)),
        }

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Optuna draws: ``r``, ``d<stage>``, and ``ks<layer>``/``e<layer>`` of active layers only
        (inactive layers get kernel 3, expand 3)."""
        r = trial.suggest_categorical("r", list(_RS))
        d = [trial.suggest_categorical(f"d{s}", list(_DS)) for s in range(5)]
        ks, e = [], []
        for s in range(5):
            for k in range(4):
                if k < d[s]:
                    ks.append(trial.suggest_categorical(f"ks{4 * s + k}", list(_KS)))
                    e.append(trial.suggest_categorical(f"e{4 * s + k}", list(_ES)))
                else:
                    ks.append(3)
                    e.append(3)
        return {"ks": ks, "e": e, "d": d, "r": r}
