"""The hardware-layer network description: a list of accelerator layers, and its file format.

A network is what a device sees: one entry per *hardware* layer (pooling and element-wise
operations are fused before the convolution of the layer they belong to, as on the MAX78000).
The same description is written by the search for every result and read by
``nas device check``. Files are YAML (or JSON, a subset of YAML)::

    input: [1, 28, 28]            # C, H, W (Conv1d: [C, L, 1])
    layers:
      - op: conv2d                # conv2d | conv1d | convtranspose2d | linear | passthrough
        in_channels: 1
        out_channels: 60
        in_dim: [28, 28]          # H, W of this layer's input (Conv1d: [L, 1])
        kernel: [3, 3]            # Conv1d: [k, 1]; linear: [1, 1]
        pad: [1, 1]               # Conv1d: [p, 0]
        pool: [1, 1]              # pooling before the conv; pool_type: max | avg
        pool_stride: [1, 1]
        weight_bits: 8            # 1, 2, 4 or 8
        operands: 1               # element-wise inputs (1 = none)
        flatten: false
        streaming: false
        activation: relu          # relu | abs | none

Omitted keys take the defaults shown. This module checks only that a description is
*well formed* (types, known operators, positive sizes); whether a device can run it is the
device's business (``devices``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from ._errors import InputError

__all__ = ["Layer", "Network", "NetworkFormatError", "OPS"]

OPS = ("conv2d", "conv1d", "convtranspose2d", "linear", "passthrough")
POOL_TYPES = ("max", "avg")
ACTIVATIONS = ("relu", "abs", "none")


class NetworkFormatError(InputError):
    """A network description that cannot be read: bad syntax, a wrong type or an unknown key."""


def _pair(value: Any, key: str, where: str) -> tuple[int, int]:
    if isinstance(value, bool):
        raise NetworkFormatError(f"{where}: '{key}' must be an integer or a pair of integers, got {value!r}")
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return (int(value[0]), int(value[1]))
    raise NetworkFormatError(f"{where}: '{key}' must be an integer or a pair of integers, got {value!r}")


def _int(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NetworkFormatError(f"{where}: '{key}' must be an integer, got {value!r}")
    return int(value)


def _bool(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise NetworkFormatError(f"{where}: '{key}' must be true or false, got {value!r}")
    return value


def _choice(value: Any, key: str, where: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise NetworkFormatError(f"{where}: '{key}' must be one of {', '.join(choices)}, got {value!r}")
    return value.lower()


@dataclass(frozen=True)
class Layer:
    """One hardware layer: optional element-wise op and pooling, then the operator.

    Sizes follow the vendor's vocabulary (ai8x-synthesis network files): ``in_dim`` is the
    layer's input before pooling; pooling has no padding; convolutions have stride 1.
    """

    op: str
    in_channels: int
    out_channels: int
    in_dim: tuple[int, int]
    kernel: tuple[int, int] = (3, 3)
    pad: tuple[int, int] = (1, 1)
    pool: tuple[int, int] = (1, 1)
    pool_stride: tuple[int, int] = (1, 1)
    pool_type: str = "max"
    weight_bits: int = 8
    operands: int = 1
    flatten: bool = False
    streaming: bool = False
    activation: str = "relu"
    bias: bool = True
    output_width: int = 8
    name: str | None = None

    # ---------------------------------------------------------------- derived geometry
    @property
    def pooled_dim(self) -> tuple[int, int]:
        """(H, W) after pooling: ``(H - pool) // stride + 1`` per axis (no pooling padding)."""
        (h, w), (ph, pw), (sh, sw) = self.in_dim, self.pool, self.pool_stride
        return ((h - ph) // sh + 1, (w - pw) // sw + 1)

    @property
    def is_pooled(self) -> bool:
        return self.pool != (1, 1)

    @property
    def conv_in_dim(self) -> tuple[int, int]:
        """(H, W) the operator sees: pooled, and doubled for a stride-2 transposed conv."""
        hp, wp = self.pooled_dim
        if self.op == "convtranspose2d":
            return (2 * hp, 2 * wp)
        return (hp, wp)

    @property
    def out_dim(self) -> tuple[int, int]:
        """(H, W) of the layer's output."""
        hp, wp = self.pooled_dim
        if self.op == "passthrough":
            return (hp, wp)
        if self.op == "linear" or self.flatten:
            return (1, 1)
        (kh, kw), (rp, cp) = self.kernel, self.pad
        if self.op == "convtranspose2d":
            # stride 2, padding p and output padding 1: the vendor doubles the input and
            # pads it by k - 1 - p (ai8x-synthesis).
            rp, cp = kh - 1 - rp, kw - 1 - cp
            hp, wp = 2 * hp, 2 * wp
        return (hp + 2 * rp - kh + 1, wp + 2 * cp - kw + 1)

    @property
    def kernel_size(self) -> int:
        """Weights per (input, output) channel pair: kh * kw (1 for linear and pass-through)."""
        if self.op in ("linear", "passthrough"):
            return 1
        kh, kw = self.kernel
        return kh * kw

    @property
    def n_weights(self) -> int:
        """Number of weights (a flatten layer sees C * H * W inputs)."""
        if self.op == "passthrough":
            return 0
        if self.flatten:
            hp, wp = self.pooled_dim
            return self.in_channels * hp * wp * self.out_channels
        return self.in_channels * self.out_channels * self.kernel_size

    @property
    def weight_bytes(self) -> int:
        """Weights x bits / 8, rounded up (the vendor's "Weight memory" figure)."""
        return math.ceil(self.n_weights * self.weight_bits / 8)

    @property
    def bias_bytes(self) -> int:
        return self.out_channels if (self.bias and self.op != "passthrough") else 0

    @property
    def macs(self) -> int:
        if self.op == "passthrough":
            return 0
        ho, wo = self.out_dim
        return self.n_weights * (1 if self.flatten else ho * wo)

    def label(self, index: int) -> str:
        return f"layer {index}" + (f" ({self.name})" if self.name else "")

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self, *, full: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {}
        defaults = {f.name: f.default for f in fields(Layer)}
        for k, v in asdict(self).items():
            if isinstance(v, tuple):
                v = list(v)
            if not full and k not in ("op", "in_channels", "out_channels", "in_dim"):
                dv = defaults[k]
                if (list(dv) if isinstance(dv, tuple) else dv) == v:
                    continue
            if k == "name" and v is None:
                continue
            d[k] = v
        return d

    @classmethod
    def from_dict(cls, data: Any, index: int = 0) -> Layer:
        where = f"layer {index}"
        if not isinstance(data, dict):
            raise NetworkFormatError(f"{where}: expected a mapping of layer keys, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise NetworkFormatError(
                f"{where}: unknown key(s) {', '.join(map(str, unknown))}; known keys: {', '.join(sorted(known))}"
            )
        for key in ("op", "in_channels", "out_channels", "in_dim"):
            if key not in data:
                raise NetworkFormatError(f"{where}: missing required key '{key}'")
        op = _choice(data["op"], "op", where, OPS)
        kw: dict[str, Any] = {
            "op": op,
            "in_channels": _int(data["in_channels"], "in_channels", where),
            "out_channels": _int(data["out_channels"], "out_channels", where),
            "in_dim": _pair(data["in_dim"], "in_dim", where),
        }
        if op == "linear":
            kw["kernel"], kw["pad"] = (1, 1), (0, 0)
        if op == "passthrough":
            kw["kernel"], kw["pad"] = (1, 1), (0, 0)
        for key in ("kernel", "pad", "pool", "pool_stride"):
            if key in data:
                kw[key] = _pair(data[key], key, where)
        if "pool" in kw and "pool_stride" not in data:
            kw["pool_stride"] = kw["pool"]
        for key in ("weight_bits", "operands", "output_width"):
            if key in data:
                kw[key] = _int(data[key], key, where)
        for key in ("flatten", "streaming", "bias"):
            if key in data:
                kw[key] = _bool(data[key], key, where)
        if "pool_type" in data:
            kw["pool_type"] = _choice(data["pool_type"], "pool_type", where, POOL_TYPES)
        if "activation" in data:
            kw["activation"] = _choice(data["activation"], "activation", where, ACTIVATIONS)
        if "name" in data and data["name"] is not None:
            kw["name"] = str(data["name"])
        layer = cls(**kw)
        for key in ("in_channels", "out_channels"):
            if getattr(layer, key) < 1:
                raise NetworkFormatError(f"{where}: '{key}' must be at least 1, got {getattr(layer, key)}")
        for key in ("in_dim", "kernel", "pool", "pool_stride"):
            if min(getattr(layer, key)) < 1:
                raise NetworkFormatError(f"{where}: '{key}' must be at least 1, got {list(getattr(layer, key))}")
        if min(layer.pad) < 0:
            raise NetworkFormatError(f"{where}: 'pad' must not be negative, got {list(layer.pad)}")
        if layer.operands < 1:
            raise NetworkFormatError(f"{where}: 'operands' must be at least 1, got {layer.operands}")
        if layer.pool[0] > layer.in_dim[0] or layer.pool[1] > layer.in_dim[1]:
            raise NetworkFormatError(
                f"{where}: pool {list(layer.pool)} is larger than the input {list(layer.in_dim)}"
            )
        if min(layer.out_dim) < 1:
            raise NetworkFormatError(
                f"{where}: kernel {list(layer.kernel)} with pad {list(layer.pad)} leaves no output "
                f"from a {list(layer.pooled_dim)} input"
            )
        return layer


@dataclass(frozen=True)
class Network:
    """A sequence of hardware layers with the model input shape (C, H, W)."""

    input: tuple[int, int, int]
    layers: tuple[Layer, ...]
    name: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", tuple(self.input))
        object.__setattr__(self, "layers", tuple(self.layers))

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def bit_widths(self) -> list[int]:
        return [layer.weight_bits for layer in self.layers if layer.op != "passthrough"]

    def shape_errors(self) -> list[str]:
        """Sentences for every place where consecutive shapes disagree (empty if consistent)."""
        errors: list[str] = []
        if not self.layers:
            return ["the network has no layers"]
        c, h, w = self.input
        first = self.layers[0]
        if first.in_channels != c or tuple(first.in_dim) != (h, w):
            errors.append(
                f"layer 0: input is {c}x{h}x{w} but the layer expects "
                f"{first.in_channels}x{first.in_dim[0]}x{first.in_dim[1]}"
            )
        for i in range(1, len(self.layers)):
            prev, cur = self.layers[i - 1], self.layers[i]
            ho, wo = prev.out_dim
            if cur.in_channels != prev.out_channels or tuple(cur.in_dim) != (ho, wo):
                errors.append(
                    f"{cur.label(i)}: expects {cur.in_channels}x{cur.in_dim[0]}x{cur.in_dim[1]} but "
                    f"{prev.label(i - 1)} produces {prev.out_channels}x{ho}x{wo}"
                )
        return errors

    def with_bits(self, bits: list[int]) -> Network:
        """A copy with the given weight bit width per layer."""
        if len(bits) != len(self.layers):
            raise ValueError(f"need {len(self.layers)} bit widths, got {len(bits)}")
        return replace(self, layers=tuple(replace(l, weight_bits=int(b)) for l, b in zip(self.layers, bits)))

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.name:
            d["name"] = self.name
        d["input"] = list(self.input)
        d["layers"] = [layer.to_dict(full=full) for layer in self.layers]
        return d

    @classmethod
    def from_dict(cls, data: Any) -> Network:
        if not isinstance(data, dict):
            raise NetworkFormatError("a network description must be a mapping with 'input' and 'layers'")
        unknown = sorted(set(data) - {"input", "layers", "name", "meta"})
        if unknown:
            raise NetworkFormatError(
                f"unknown top-level key(s) {', '.join(map(str, unknown))}; expected input, layers (and name)"
            )
        if "layers" not in data or not isinstance(data["layers"], list) or not data["layers"]:
            raise NetworkFormatError("'layers' must be a non-empty list of layers")
        layers = tuple(Layer.from_dict(ld, i) for i, ld in enumerate(data["layers"]))
        if "input" in data:
            inp = data["input"]
            if (
                not isinstance(inp, (list, tuple))
                or len(inp) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in inp)
            ):
                raise NetworkFormatError(f"'input' must be three positive integers [C, H, W], got {inp!r}")
            input_shape = (int(inp[0]), int(inp[1]), int(inp[2]))
        else:
            f = layers[0]
            input_shape = (f.in_channels, f.in_dim[0], f.in_dim[1])
        meta = data.get("meta") or {}
        if not isinstance(meta, dict):
            raise NetworkFormatError("'meta' must be a mapping")
        name = data.get("name")
        return cls(input=input_shape, layers=layers, name=str(name) if name else None, meta=meta)

    def to_yaml(self, *, full: bool = False) -> str:
        return yaml.safe_dump(self.to_dict(full=full), sort_keys=False, default_flow_style=None)

    def save(self, path: str | Path, *, full: bool = False) -> Path:
        """Write the description (JSON if the suffix is .json, else YAML)."""
        path = Path(path)
        text = (
            json.dumps(self.to_dict(full=full), indent=2)
            if path.suffix.lower() == ".json"
            else self.to_yaml(full=full)
        )
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Network:
        """Read a YAML or JSON description; raise NetworkFormatError with the reason if malformed."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise NetworkFormatError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise NetworkFormatError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None
        return cls.loads(text, source=str(path))

    @classmethod
    def loads(cls, text: str, source: str = "<text>") -> Network:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise NetworkFormatError(f"{source}: not valid YAML/JSON{at}") from None
        try:
            return cls.from_dict(data)
        except NetworkFormatError as e:
            raise NetworkFormatError(f"{source}: {e}") from None
