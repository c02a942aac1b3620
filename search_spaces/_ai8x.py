"""The ``ai8x`` space: sequential fused (pool ->) conv -> BN -> ReLU units for the MAX78000.

The macro-structure follows the vendor's own networks and NAS (Analog Devices ai8x-training:
``ai85net5``, the once-for-all ``ai85nasnet`` supernet and its ``FusedMaxPoolConv2dBNReLU``
units): the first unit works at the input resolution, every later unit starts with a 2x2 max
pool (stride 2) fused into its first convolution, and a flattening linear classifier follows
the last unit. Every layer uses an operator the accelerator runs (MAX78000 data sheet and
ai8x-synthesis README, "Operators"): stride-1 convolutions with kernel 1x1 (pad 0) or 3x3
(pad 1), max pooling fused before the convolution, ReLU, and a ``linear`` layer with
``flatten``. Whether a network *fits* (weights, placement, data memory, 32 layers, flatten
limits) is decided by the device check (``devices``), never assumed here.

An architecture is a JSON-able dict::

    {"units": [[{"width": 32, "kernel": 3, "bits": 8}, {"width": 64, "kernel": 3, "bits": 4}],
               [{"width": 96, "kernel": 1, "bits": 4}]],
     "fc_bits": 8}

and its one-line string form is ``"32k3b8,64k3b4|96k1b4|fcb8"`` (units separated by ``|``,
layers by ``,``; ``<width>k<kernel>b<bits>``; ``fcb<bits>`` is the classifier).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import ArchitectureError, SearchSpace
from ._errors import InputError
from ._hardware import MAX78000_HW, Ai8xHardware, ai8x_hardware
from ._network import Layer, Network
from ._registry import register_space

if TYPE_CHECKING:
    import optuna
    import torch

__all__ = [
    "Ai8xSpace", "AI8X_WIDTHS", "AI8X_BITS", "SHIFT_QUANTILE", "LOW_BIT_SHIFT_QUANTILE", "build_module", "fold_bn",
    "output_shift", "shift_range", "shift_quantile", "quantize_weight", "quantize_bias", "round_clamp", "vendor_integers",
    "integer_forward", "vendor_arithmetic",
]

AI8X_WIDTHS: tuple[int, ...] = (16, 24, 32, 48, 64, 96, 128, 192, 256)
AI8X_BITS: tuple[int, ...] = (1, 2, 4, 8)
_LAYER_RE = re.compile(r"^(\d+)k(\d+)b(\d+)$")
_FC_RE = re.compile(r"^fcb(\d+)$")


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise ArchitectureError(f"ai8x {what} must be an integer, got {value!r}")
    if float(value) != int(value):
        raise ArchitectureError(f"ai8x {what} must be an integer, got {value!r}")
    return int(value)


@register_space("ai8x")
class Ai8xSpace(SearchSpace):
    """Vendor-style sequential CNNs for the MAX78000 family (2-D images, or 1-D sequences).

    Args:
        input_shape: (C, H, W) of the model input; for 1-D data (``conv1d=True``) ``(C, L, 1)``.
        num_classes: outputs of the linear classifier.
        conv1d: build Conv1d units over the length axis instead of Conv2d.
        widths: channel choices per layer (at most 256, the first-layer processors permitting).
        kernels: kernel sizes; 1 (pad 0) and 3 (pad 1) are the MAX78000's Conv2d kernels.
        bits: weight bit widths per layer, from {1, 2, 4, 8}.
        max_units: most units (each later unit halves the resolution); capped by the input size.
        min_units: fewest units.
        max_depth: most conv layers per unit (at least 1).
        first_last_8bit: keep the first conv and the classifier at 8 bits, as the vendor
            recommends (ai8x-training QAT policy); the other layers choose from ``bits``.
        hardware: the accelerator the space is for (an :class:`~search_spaces.Ai8xHardware` or
            its name, ``"max78000"`` by default, or ``"max78002"``): it bounds ``widths`` (its
            channel limit) and ``bits`` (its weight widths). The layer list is the same on every
            chip of the family; whether a network fits (its layer count, memories) is the
            device check's business.
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, int, int] | list[int] = (1, 28, 28),
        num_classes: int = 10,
        conv1d: bool = False,
        widths: tuple[int, ...] | list[int] = AI8X_WIDTHS,
        kernels: tuple[int, ...] | list[int] = (1, 3),
        bits: tuple[int, ...] | list[int] = AI8X_BITS,
        max_units: int = 5,
        min_units: int = 2,
        max_depth: int = 3,
        first_last_8bit: bool = True,
        hardware: Ai8xHardware | str = MAX78000_HW,
    ) -> None:
        try:
            hw = ai8x_hardware(hardware)
        except InputError as e:
            raise ArchitectureError(f"ai8x hardware: {e}") from None
        shape = tuple(int(v) for v in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ArchitectureError(f"ai8x input_shape must be three positive integers (C, H, W), got {input_shape!r}")
        if conv1d and shape[2] != 1:
            raise ArchitectureError(f"ai8x conv1d input_shape must be (C, L, 1), got {list(shape)}")
        if num_classes < 2:
            raise ArchitectureError(f"ai8x num_classes must be at least 2, got {num_classes}")
        bad_bits = [b for b in bits if b not in hw.weight_bits]
        if bad_bits or not bits:
            raise ArchitectureError(f"ai8x weight bits must be from {hw.weight_bits}, got {list(bits)}")
        if not widths or min(widths) < 1 or max(widths) > hw.max_channels:
            raise ArchitectureError(f"ai8x widths must be in 1..{hw.max_channels}, got {list(widths)}")
        if not kernels or any(k not in (1, 3) for k in kernels):
            raise ArchitectureError(f"ai8x kernels must be 1 and/or 3, got {list(kernels)}")
        self.hardware = hw
        self.input_shape: tuple[int, int, int] = shape  # type: ignore[assignment]
        self.num_classes = int(num_classes)
        self.conv1d = bool(conv1d)
        self.widths = tuple(sorted(int(w) for w in widths))
        self.kernels = tuple(sorted(int(k) for k in kernels))
        self.bits = tuple(sorted(int(b) for b in bits))
        self.first_last_8bit = bool(first_last_8bit)
        side = shape[1] if conv1d else min(shape[1], shape[2])
        self.max_units = max(1, min(int(max_units), 1 + int(math.floor(math.log2(side)))))
        self.min_units = max(1, min(int(min_units), self.max_units))
        self.max_depth = max(1, int(max_depth))

    # ------------------------------------------------------------------ parse / format
    def parse(self, arch: Any) -> dict[str, Any]:
        """Validate ``arch`` (dict or string form) and return the canonical dict.

        Raises:
            ArchitectureError: naming the first thing that is wrong.
        """
        if isinstance(arch, str):
            arch = self._parse_string(arch)
        if not isinstance(arch, dict):
            raise ArchitectureError(
                f"ai8x architecture must be a dict with 'units' and 'fc_bits' or a string like "
                f"'32k3b8,64k3b4|96k1b4|fcb8', got {type(arch).__name__}"
            )
        missing = [k for k in ("units", "fc_bits") if k not in arch]
        if missing:
            raise ArchitectureError(f"ai8x architecture is missing {', '.join(missing)}")
        extra = sorted(set(arch) - {"units", "fc_bits"})
        if extra:
            raise ArchitectureError(f"ai8x architecture has unknown key(s) {', '.join(map(str, extra))}")
        units = arch["units"]
        if not isinstance(units, (list, tuple)) or not (self.min_units <= len(units) <= self.max_units):
            raise ArchitectureError(
                f"ai8x architecture needs {self.min_units}..{self.max_units} units for input "
                f"{list(self.input_shape)}, got {units!r}"
            )
        out_units: list[list[dict[str, int]]] = []
        for u, unit in enumerate(units):
            if not isinstance(unit, (list, tuple)) or not (1 <= len(unit) <= self.max_depth):
                raise ArchitectureError(f"ai8x unit {u} must be a list of 1..{self.max_depth} layers, got {unit!r}")
            layers = []
            for i, layer in enumerate(unit):
                where = f"unit {u} layer {i}"
                if not isinstance(layer, dict) or set(layer) != {"width", "kernel", "bits"}:
                    raise ArchitectureError(f"ai8x {where} must be a dict with width, kernel and bits, got {layer!r}")
                width = _as_int(layer["width"], f"{where} width")
                kernel = _as_int(layer["kernel"], f"{where} kernel")
                bits = _as_int(layer["bits"], f"{where} bits")
                if width not in self.widths:
                    raise ArchitectureError(f"ai8x {where} width {width} is not one of {list(self.widths)}")
                if kernel not in self.kernels:
                    raise ArchitectureError(f"ai8x {where} kernel {kernel} is not one of {list(self.kernels)}")
                self._check_bits(bits, where, first=(u == 0 and i == 0))
                layers.append({"width": width, "kernel": kernel, "bits": bits})
            out_units.append(layers)
        fc_bits = _as_int(arch["fc_bits"], "fc_bits")
        self._check_bits(fc_bits, "classifier", first=True)
        return {"units": out_units, "fc_bits": fc_bits}

    def _check_bits(self, bits: int, where: str, *, first: bool) -> None:
        if first and self.first_last_8bit:
            if bits != 8:
                raise ArchitectureError(
                    f"ai8x {where} must use 8-bit weights in this space (first_last_8bit=True), got {bits}"
                )
        elif bits not in self.bits:
            raise ArchitectureError(f"ai8x {where} bits {bits} is not one of {list(self.bits)}")

    def _parse_string(self, text: str) -> dict[str, Any]:
        parts = [p.strip() for p in text.strip().split("|")]
        if len(parts) < 2:
            raise ArchitectureError(
                f"ai8x architecture string must look like '32k3b8,64k3b4|96k1b4|fcb8', got {text!r}"
            )
        m = _FC_RE.match(parts[-1])
        if m is None:
            raise ArchitectureError(f"ai8x architecture string must end with the classifier '|fcb<bits>', got {text!r}")
        units = []
        for part in parts[:-1]:
            layers = []
            for tok in part.split(","):
                lm = _LAYER_RE.match(tok.strip())
                if lm is None:
                    raise ArchitectureError(f"ai8x layer {tok!r} must look like '<width>k<kernel>b<bits>', e.g. 32k3b8")
                layers.append({"width": int(lm[1]), "kernel": int(lm[2]), "bits": int(lm[3])})
            units.append(layers)
        return {"units": units, "fc_bits": int(m[1])}

    def format(self, arch: Any) -> str:
        """The one-line string form, e.g. ``"32k3b8,64k3b4|96k1b4|fcb8"``."""
        a = self.parse(arch)
        units = "|".join(",".join(f"{l['width']}k{l['kernel']}b{l['bits']}" for l in unit) for unit in a["units"])
        return f"{units}|fcb{a['fc_bits']}"

    # ------------------------------------------------------------------ encode
    @property
    def encoding_length(self) -> int:
        """Length of :meth:`encode`'s vector: 4 per layer slot, plus 3."""
        return 4 * self.max_units * self.max_depth + 3

    def encode(self, arch: Any) -> np.ndarray:
        """Fixed-length vector: per (unit, layer) slot [active, width/256, kernel is 3x3,
        log2(bits)/3] (zeros when the slot is unused), then units/max_units,
        layers/(max_units*max_depth) and log2(fc_bits)/3."""
        a = self.parse(arch)
        v = np.zeros(self.encoding_length, dtype=np.float64)
        n_layers = 0
        for u, unit in enumerate(a["units"]):
            for i, layer in enumerate(unit):
                j = 4 * (u * self.max_depth + i)
                v[j : j + 4] = (1.0, layer["width"] / 256.0, float(layer["kernel"] == 3), math.log2(layer["bits"]) / 3.0)
                n_layers += 1
        v[-3] = len(a["units"]) / self.max_units
        v[-2] = n_layers / (self.max_units * self.max_depth)
        v[-1] = math.log2(a["fc_bits"]) / 3.0
        return v

    # ------------------------------------------------------------------ sampling
    def random_arch(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw each choice uniformly (the same choices as :meth:`sample`)."""
        n_units = int(rng.integers(self.min_units, self.max_units + 1))
        units = []
        for u in range(n_units):
            depth = int(rng.integers(1, self.max_depth + 1))
            unit = []
            for i in range(depth):
                fixed8 = self.first_last_8bit and u == 0 and i == 0
                unit.append({
                    "width": int(rng.choice(self.widths)),
                    "kernel": int(rng.choice(self.kernels)),
                    "bits": 8 if fixed8 else int(rng.choice(self.bits)),
                })
            units.append(unit)
        fc_bits = 8 if self.first_last_8bit else int(rng.choice(self.bits))
        return {"units": units, "fc_bits": fc_bits}

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest every slot's parameters (a fixed set of names per trial), then keep the
        active ones: ``n_units``, ``u<u>_depth``, ``u<u>_l<i>_width|kernel|bits`` and
        ``fc_bits`` (bits of the first layer and the classifier are not suggested when fixed)."""
        n_units = trial.suggest_int("n_units", self.min_units, self.max_units)
        units = []
        for u in range(self.max_units):
            depth = trial.suggest_int(f"u{u}_depth", 1, self.max_depth)
            unit = []
            for i in range(self.max_depth):
                width = trial.suggest_categorical(f"u{u}_l{i}_width", list(self.widths))
                kernel = trial.suggest_categorical(f"u{u}_l{i}_kernel", list(self.kernels))
                if self.first_last_8bit and u == 0 and i == 0:
                    bits = 8
                else:
                    bits = trial.suggest_categorical(f"u{u}_l{i}_bits", list(self.bits))
                if i < depth:
                    unit.append({"width": int(width), "kernel": int(kernel), "bits": int(bits)})
            if u < n_units:
                units.append(unit)
        fc_bits = 8 if self.first_last_8bit else int(trial.suggest_categorical("fc_bits", list(self.bits)))
        return self.parse({"units": units, "fc_bits": fc_bits})

    # ------------------------------------------------------------------ hardware description
    def network(self, arch: Any) -> Network:
        """The MAX78000 layer list: one hardware layer per conv (pooling fused), then the
        flattening linear classifier (8-bit data in, 32-bit wide output as in the vendor's
        ``ai85net5`` network file)."""
        a = self.parse(arch)
        c, h, w = self.input_shape
        layers: list[Layer] = []
        op = "conv1d" if self.conv1d else "conv2d"
        for u, unit in enumerate(a["units"]):
            for i, spec in enumerate(unit):
                k, pad = spec["kernel"], (1 if spec["kernel"] == 3 else 0)
                pooled = u > 0 and i == 0
                if self.conv1d:
                    kernel, padding, pool = (k, 1), (pad, 0), ((2, 1) if pooled else (1, 1))
                else:
                    kernel, padding, pool = (k, k), (pad, pad), ((2, 2) if pooled else (1, 1))
                layer = Layer(
                    op=op, in_channels=c, out_channels=spec["width"], in_dim=(h, w), kernel=kernel,
                    pad=padding, pool=pool, pool_stride=pool, weight_bits=spec["bits"],
                    activation="relu", name=f"u{u}l{i}",
                )
                layers.append(layer)
                c = spec["width"]
                h, w = layer.out_dim
        layers.append(Layer(
            op="linear", in_channels=c, out_channels=self.num_classes, in_dim=(h, w), kernel=(1, 1),
            pad=(0, 0), weight_bits=a["fc_bits"], flatten=True, activation="none", output_width=32,
            name="fc",
        ))
        return Network(input=self.input_shape, layers=tuple(layers), name=self.format(a),
                       meta={"space": "ai8x", "arch": self.format(a)})

    # ------------------------------------------------------------------ torch module
    def build(self, arch: Any, **kwargs: Any) -> torch.nn.Module:
        """A :class:`Ai8xNet` whose layers match :meth:`network` one to one.

        Keyword Args:
            quantize: fake-quantise weights to each layer's bit width and activations to 8 bits
                (straight-through gradients) in ``forward``; default True.
        """
        return build_module(self.network(arch), quantize=bool(kwargs.get("quantize", True)))


# ---------------------------------------------------------------------- torch (imported lazily)
# The vendor's quantisation-aware training (ai8x-training ``ai8x.py``: ``OutputShift``,
# ``quantize_clamp_parameters``, ``QuantizationFunction``; ai8x-synthesis ``izer/quantize.py``),
# restated from shared/specs/max78000.md "QAT as the vendor does it".

SHIFT_QUANTILE = 1.0
"""Quantile of ``|w, b|`` that sets the output shift of 8-bit layers: 1.0, the largest magnitude,
the vendor's default (``shift_quantile=1.0`` in ai8x-training and ai8x-synthesis): nothing is
clipped."""

LOW_BIT_SHIFT_QUANTILE = 0.99
"""Quantile for 4-, 2- and 1-bit layers. With 1.0 the BatchNorm-folded bias (``-mean/std``, O(1))
sets the shift while the folded weights of a wide layer are small (``w/std``, std growing with
the fan-in): in our MNIST runs every weight of a 2-bit 24->24 layer and of a 4-bit 128->96 3x3
layer rounded to 0, the layer output a constant and QAT stayed at chance. With 0.99 the few
largest values (mostly biases) are clipped instead, and the 2-bit network kept its float
validation accuracy. The vendor supports per-layer quantiles
(``<layer>.shift_quantile`` in the checkpoint, read by ai8x-synthesis ``quantize.py``); our
export writes it."""


def shift_quantile(bits: int) -> float:
    """The quantile every caller (estimates, supernet, QAT, export) uses for a layer of ``bits``."""
    return SHIFT_QUANTILE if bits >= 8 else LOW_BIT_SHIFT_QUANTILE


def round_clamp(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``floor(x * 2^(b-1) + 0.5) / 2^(b-1)`` clamped to ``[-1, (2^(b-1)-1)/2^(b-1)]``.

    Forward values only (no straight-through gradient). For ``bits = 1`` this is the vendor's
    formula unchanged: ``floor(x + 0.5)`` clamped to ``[-1, 0]``, i.e. the two values of a 1-bit
    two's-complement weight, {-1, 0}. We follow it (instead of a {-1, +1} binary reading)
    because the checkpoint we export is quantised again by the vendor's own tool
    (ai8x-synthesis ``quantize.py`` clamps 1-bit weights to [-1, 0]): training with any other
    1-bit grid would not match what the device runs.
    """
    import torch

    if bits not in AI8X_BITS:
        raise ArchitectureError(f"ai8x weight bits must be from {AI8X_BITS}, got {bits}")
    f = float(2 ** (bits - 1))
    return torch.clamp(torch.floor(x * f + 0.5) / f, -1.0, (f - 1.0) / f)


def shift_range(bits: int) -> tuple[int, int]:
    """The output shifts ai8x-synthesis ``quantize.py`` allows a layer of ``bits``:
    ``[bits - 23, bits + 7]`` (its ``get_max_bit_shift`` clamps ``floor(log2(1/limit))`` to
    ``[-7 - bits, 23 - bits]``); ``ai8xize.py`` adds ``8 - bits``, so the hardware shift lies in
    [-15, 15] for every bit width."""
    return bits - 23, bits + 7


def output_shift(w: torch.Tensor, bias: torch.Tensor | None = None, quantile: float = SHIFT_QUANTILE,
                 bits: int = 8) -> torch.Tensor:
    """The layer's output shift ``-floor(log2(1 / quantile(|w, b|)))`` clamped to
    :func:`shift_range` of ``bits`` ([-15, 15] at 8 bits), as ai8x-synthesis ``quantize.py``.

    ``w`` and ``bias`` (when given) are pooled, as ai8x-training does after BatchNorm folding;
    before folding the bias is not quantised and only ``w`` counts. Returns a 0-d float tensor
    holding an integer (no gradient).
    """
    import torch

    params = w.detach().reshape(-1)
    if bias is not None:
        params = torch.cat([params, bias.detach().reshape(-1)])
    a = params.abs()
    limit = a.max() if quantile >= 1.0 else torch.quantile(a.to(torch.float32), float(quantile))
    limit = limit.clamp_min(2.0**-30)  # all-zero weights: the vendor's 1/0 = inf is clamped below too
    lo, hi = shift_range(bits)
    return -torch.clamp(torch.floor(torch.log2(1.0 / limit)), float(-hi), float(-lo))


def quantize_weight(w: torch.Tensor, bits: int, *, bias: torch.Tensor | None = None,
                    quantile: float | None = None, shift: torch.Tensor | float | None = None) -> torch.Tensor:
    """The vendor's weight quantisation (ai8x-training QAT), forward values only.

    ``shift = output_shift(w, bias, quantile, bits)`` (unless given; ``quantile`` defaults to
    :func:`shift_quantile` of ``bits``); ``w * 2^-shift`` goes through
    :func:`round_clamp` at ``bits`` and is scaled back by ``2^shift``, so the result is the
    weight the accelerator effectively applies (its integer is ``result * 2^-shift * 2^(b-1)``).
    """
    import torch

    q = shift_quantile(bits) if quantile is None else quantile
    s = output_shift(w, bias, q, bits) if shift is None else torch.as_tensor(shift, dtype=w.dtype)
    scale = torch.pow(2.0, s).to(w.dtype)
    return round_clamp(w / scale, bits) * scale


def quantize_bias(b: torch.Tensor, shift: torch.Tensor | float, bits: int) -> torch.Tensor:
    """The bias the accelerator effectively adds (forward values only): rounded and clamped at the
    layer's *weight* bits and shift, like the weights (:func:`round_clamp` of ``b * 2^-shift``).

    This is ai8x-synthesis ``quantize.py``: ``floor(b * 2^-shift * 2^(bits-1) + 0.5)`` clamped to
    ``bits`` (its ``clamp_bits``), stored times ``2^(bits-8) * 128``; ``ai8xize.py`` reads the
    integer back (divides by ``2^(bits-1)``), adds it times 128 to the accumulator and shifts the
    sum by ``shift + 8 - bits``. A 1-bit layer's bias is therefore ``-2^shift`` or 0, a 2-bit
    layer's one of ``{-2, -1, 0, 1} * 2^shift / 2``.
    """
    import torch

    scale = torch.pow(2.0, torch.as_tensor(shift, dtype=b.dtype))
    return round_clamp(b / scale, bits) * scale


def vendor_integers(w: torch.Tensor, bits: int, shift: torch.Tensor | float) -> torch.Tensor:
    """The integers the vendor's tool stores for ``w`` (ai8x-synthesis ``quantize.py``):
    ``floor(w * 2^-shift * 2^(b-1) + 0.5)`` clamped to ``[-2^(b-1), 2^(b-1)-1]``; for a bias pass
    the layer's weight ``bits`` too (:func:`quantize_bias`)."""
    import torch

    scale = torch.pow(2.0, torch.as_tensor(shift, dtype=w.dtype))
    return torch.round(round_clamp(w / scale, bits) * 2 ** (bits - 1))


def integer_forward(network: Network, params: list[dict[str, Any]], x: Any) -> np.ndarray:
    """The MAX78000's integer arithmetic, as ai8x-synthesis simulates it (``izer/simulate.py``,
    ``izer/compute.py``): the reference for what an export computes on the chip.

    Args:
        network: the layers (conv2d / conv1d with fused max or average pool, ReLU / Abs / none,
            and a flattening ``linear`` classifier).
        params: per layer ``{"weight": int array, "bias": int array or None, "shift": int,
            "bits": int}``: the integers ``quantize.py`` stores (bias at the weight bits, not yet
            times ``2^(bits-8) * 128``) and its ``output_shift`` (see :meth:`Ai8xNet.vendor_params`).
        x: input integers ``[N, C, H, W]`` (Conv1d: ``[N, C, L]`` or ``[N, C, L, 1]``), -128..127.

    Returns:
        int64 ``[N, ...]``: the last layer's output as the vendor writes it (``expected.npy``):
        a 32-bit wide layer's raw accumulator, else its 8-bit activations.

    Per layer: pool (max; average truncated toward zero, the vendor's default without
    ``--avg-pool-rounding``), flatten, ``acc = sum(data * w) + 128 * bias``; a wide
    (``output_width: 32``) layer outputs ``acc``; others ``floor(0.5 + acc * 2^(shift+8-bits) / 128)``
    clamped to [-128, 127], then ReLU (clamp at 0) or Abs. The sums run in float64 on integers
    below 2^53, so they are exact in any order.
    """
    import torch
    from torch.nn import functional as F

    t = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    conv1d = any(l.op == "conv1d" for l in network.layers)
    if conv1d and t.dim() == 4:
        t = t.squeeze(-1)
    out = t
    for layer, p in zip(network.layers, params):
        if layer.is_pooled:
            if layer.pool_type == "avg":
                pool = F.avg_pool1d if conv1d else F.avg_pool2d
                k = layer.pool[0] if conv1d else layer.pool
                s = layer.pool_stride[0] if conv1d else layer.pool_stride
                n = math.prod(layer.pool[:1] if conv1d else layer.pool)
                sums = torch.round(pool(out, k, s) * n)  # exact integer window sums
                out = torch.div(sums, n, rounding_mode="trunc")
            elif conv1d:
                out = F.max_pool1d(out, layer.pool[0], layer.pool_stride[0])
            else:
                out = F.max_pool2d(out, layer.pool, layer.pool_stride)
        w = torch.as_tensor(np.asarray(p["weight"]), dtype=torch.float64)
        b = None if p.get("bias") is None else 128.0 * torch.as_tensor(np.asarray(p["bias"]), dtype=torch.float64)
        if layer.op == "linear":
            out = F.linear(torch.flatten(out, 1), w.reshape(w.shape[0], -1), b)
        elif layer.op == "conv1d":
            out = F.conv1d(out, w, b, padding=layer.pad[0])
        else:
            out = F.conv2d(out, w, b, padding=layer.pad)
        if layer.output_width != 32:
            os_ = int(p["shift"]) + 8 - int(p["bits"])
            out = torch.clamp(torch.floor(0.5 + out / (128.0 / 2.0**os_)), -128.0, 127.0)
        if layer.activation == "relu":
            out = torch.clamp(out, min=0.0) if layer.output_width == 32 else torch.clamp(out, 0.0, 127.0)
        elif layer.activation == "abs":
            out = torch.abs(out) if layer.output_width == 32 else torch.clamp(torch.abs(out), 0.0, 127.0)
    return out.numpy().astype(np.int64)


def build_module(network: Network, *, quantize: bool = True) -> torch.nn.Module:
    """A trainable module with one block per hardware layer of ``network``.

    Conv layers are (max/avg pool ->) conv (bias) -> BatchNorm (no affine, as in ai8x-training)
    -> activation (the layer's ReLU/Abs/none) -> clamp to [-1, 127/128]; a ``flatten`` linear
    layer is the classifier (no activation, wide output). With ``quantize`` the forward pass
    uses :func:`quantize_weight` at each layer's ``weight_bits`` and rounds activations to 8 bits
    (average pools truncate to the 1/128 grid as the accelerator does), both with
    straight-through gradients. After :func:`fold_bn` the vendor's QAT arithmetic applies:
    BatchNorm folded into weights and bias, one output shift per layer from ``|w, b|``, weights
    and bias quantised at that shift and at the layer's weight bits (:func:`quantize_weight`,
    :func:`quantize_bias`). In eval mode a folded, quantised network computes in float64, where
    every sum is exact: its outputs are then the accelerator's integers (:func:`integer_forward`)
    times a power of two per layer, so its predictions are the chip's.

    The state_dict keys are ``layers.<i>.op.weight``, ``layers.<i>.op.bias`` and the BatchNorm
    buffers ``layers.<i>.bn.*`` (kept after folding, at mean 0 / variance 1).
    """
    return _torch_classes()["Ai8xNet"](network, quantize=quantize)


def fold_bn(module: torch.nn.Module) -> torch.nn.Module:
    """Fold every un-folded BatchNorm of an :class:`Ai8xNet` into its conv (in place).

    ``w' = w * g / sqrt(var + eps)``, ``b' = (b - mean) * g / sqrt(var + eps) + beta`` with the
    running statistics (``g = 1, beta = 0`` for the space's affine-free BN); the BN buffers are
    reset to mean 0 / variance 1 and the layer switches to the folded (QAT) arithmetic.
    Returns ``module``.
    """
    module.fold_bn()  # type: ignore[operator]
    return module


def vendor_arithmetic(module: torch.nn.Module) -> torch.nn.Module:
    """An :class:`Ai8xNet` switched (in place) to the chip's arithmetic for scoring, as ``nas qat``
    evaluates and exports it: BatchNorm folded with its running statistics (:func:`fold_bn`),
    weights and bias quantised at each layer's bits (bias at the weight bits, vendor output
    shift), 8-bit activations, no soft-quantisation aid; eval mode. Its forward pass then runs
    in float64 and its outputs are :func:`integer_forward`'s integers times a power of two per
    layer, so its predictions are the chip's. Returns ``module``."""
    fold_bn(module)
    module.set_quantize(True)  # type: ignore[operator]
    module.set_soft(0.0)  # type: ignore[operator]
    return module.eval()


_CLASSES: dict[str, Any] = {}


def _torch_classes() -> dict[str, Any]:
    if _CLASSES:
        return _CLASSES
    import torch
    from torch import nn
    from torch.nn import functional as F

    def ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return x + (q - x).detach()

    def act_quant(x: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(x, -1.0, 127.0 / 128.0)
        return ste(x, torch.floor(x * 128.0 + 0.5) / 128.0)

    class _QuantLayer(nn.Module):
        """Shared weight handling of conv and classifier layers."""

        op: nn.Module
        weight_bits: int
        quantize: bool
        folded: bool
        shift_quantile: float
        soft: float = 0.0

        def __init__(self, layer: Layer, quantize: bool) -> None:
            super().__init__()
            self.hw = layer
            self.quantize = quantize
            self.folded = False
            self.shift_quantile = shift_quantile(layer.weight_bits)
            self.weight_bits = layer.weight_bits

        def output_shift(self) -> int:
            """The layer's current output shift (from ``|w, b|`` once folded, else ``|w|``)."""
            b = self.op.bias if self.folded else None
            return int(output_shift(self.op.weight, b, self.shift_quantile, self.weight_bits))

        @torch.no_grad()
        def vendor_params(self) -> dict[str, Any]:
            """The integers ai8x-synthesis ``quantize.py`` makes of this folded layer:
            ``{"weight", "bias" (None without one), "shift", "bits"}`` (numpy int64; the bias
            at the weight bits, before ``quantize.py`` multiplies it by ``2^(bits-8) * 128``)."""
            if not self.folded:
                raise ValueError("vendor_params needs a folded layer (search_spaces._ai8x.fold_bn)")
            s = self.output_shift()  # float32 arithmetic, as quantize.py on the float32 checkpoint
            w = vendor_integers(self.op.weight.detach().float(), self.weight_bits, s)
            b = self.op.bias
            bi = None if b is None else vendor_integers(b.detach().float(), self.weight_bits, s).numpy().astype(np.int64)
            return {"weight": w.numpy().astype(np.int64), "bias": bi, "shift": s, "bits": self.weight_bits}

        def effective_params(self) -> tuple[torch.Tensor, torch.Tensor | None]:
            """Weight and bias as the forward pass applies them (with STE gradients).

            With ``soft = lam > 0`` (a training aid only, see :meth:`Ai8xNet.set_soft`) the
            folded layer applies ``q + lam * (w - q)`` instead of the quantised ``q``.
            """
            w, b = self.op.weight, self.op.bias
            if not self.quantize:
                return w, b
            if self.folded:
                s = output_shift(w, b, self.shift_quantile, self.weight_bits)
                qw = quantize_weight(w, self.weight_bits, shift=s)
                wq = ste(w, qw)
                if self.soft > 0:
                    wq = wq + self.soft * (w - qw.detach())
                if b is not None:
                    qb = quantize_bias(b, s, self.weight_bits)
                    bq = ste(b, qb)
                    b = bq + self.soft * (b - qb.detach()) if self.soft > 0 else bq
                return wq, b
            return ste(w, quantize_weight(w, self.weight_bits, quantile=self.shift_quantile)), b

    class FusedLayer(_QuantLayer):
        """One hardware conv layer: optional fused pool, conv, BN (until folded), activation."""

        def __init__(self, layer: Layer, quantize: bool) -> None:
            super().__init__(layer, quantize)
            self.conv1d = layer.op == "conv1d"
            self.activation = layer.activation
            if self.conv1d:
                if layer.is_pooled and layer.pool_type == "avg":
                    self.pool = nn.AvgPool1d(layer.pool[0], layer.pool_stride[0])
                elif layer.is_pooled:
                    self.pool = nn.MaxPool1d(layer.pool[0], layer.pool_stride[0])
                else:
                    self.pool = None
                self.op = nn.Conv1d(layer.in_channels, layer.out_channels, layer.kernel[0],
                                    padding=layer.pad[0], bias=layer.bias)
                self.bn = nn.BatchNorm1d(layer.out_channels, affine=False)
            else:
                if layer.is_pooled and layer.pool_type == "avg":
                    self.pool = nn.AvgPool2d(layer.pool, layer.pool_stride)
                elif layer.is_pooled:
                    self.pool = nn.MaxPool2d(layer.pool, layer.pool_stride)
                else:
                    self.pool = None
                self.op = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel,
                                    padding=layer.pad, bias=layer.bias)
                self.bn = nn.BatchNorm2d(layer.out_channels, affine=False)
            self._pool_n = float(layer.pool[0] if self.conv1d else layer.pool[0] * layer.pool[1])

        @torch.no_grad()
        def fold_bn(self) -> None:
            """Fold the BN statistics into the conv (see :func:`fold_bn`)."""
            if self.folded:
                return
            bn = self.bn
            inv = 1.0 / torch.sqrt(bn.running_var + bn.eps)
            gamma = bn.weight if bn.affine else torch.ones_like(inv)
            beta = bn.bias if bn.affine else torch.zeros_like(inv)
            scale = inv * gamma
            if self.op.bias is None:
                self.op.bias = nn.Parameter(torch.zeros_like(inv))
            self.op.weight.mul_(scale.reshape(-1, *([1] * (self.op.weight.dim() - 1))))
            self.op.bias.copy_((self.op.bias - bn.running_mean) * scale + beta)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            self.folded = True

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.pool is not None:
                x = self.pool(x)
                if self.quantize and isinstance(self.pool, (nn.AvgPool1d, nn.AvgPool2d)):
                    x = ste(x, torch.trunc(torch.round(x * 128.0 * self._pool_n) / self._pool_n) / 128.0)
            w, b = self.effective_params()
            if x.dtype != w.dtype:
                w = w.to(x.dtype)
                b = None if b is None else b.to(x.dtype)
            if self.conv1d:
                x = F.conv1d(x, w, b, padding=self.op.padding)
            else:
                x = F.conv2d(x, w, b, padding=self.op.padding)
            if not self.folded:
                x = self.bn(x)
            # the accelerator rounds and clamps to 8 bits, then applies ReLU / Abs: the same values as
            # ReLU first (kept for its gradient at 0), not for Abs (-2.5 -> -2 -> 2, not 3)
            if self.activation == "relu":
                x = F.relu(x)
            elif self.activation == "abs":
                x = torch.abs(act_quant(x) if self.quantize else x)
            return act_quant(x) if self.quantize else torch.clamp(x, -1.0, 127.0 / 128.0)

    class Classifier(_QuantLayer):
        """The flattening linear layer (no activation, 32-bit output, no BN to fold)."""

        def __init__(self, layer: Layer, quantize: bool) -> None:
            super().__init__(layer, quantize)
            hp, wp = layer.pooled_dim
            self.op = nn.Linear(layer.in_channels * hp * wp, layer.out_channels, bias=layer.bias)

        def fold_bn(self) -> None:
            """No BN here: switch to the folded arithmetic (bias quantised with the weights)."""
            self.folded = True

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.flatten(x, 1)
            w, b = self.effective_params()
            if x.dtype != w.dtype:
                w = w.to(x.dtype)
                b = None if b is None else b.to(x.dtype)
            return F.linear(x, w, b)

    class Ai8xNet(nn.Module):
        """Sequential MAX78000 network built from a :class:`~search_spaces.Network`.

        Takes ``[N, C, H, W]`` input (Conv1d networks: ``[N, C, L, 1]`` or ``[N, C, L]``),
        returns ``[N, classes]`` logits (float64 in eval mode once folded and quantised: the
        chip's exact arithmetic, see :func:`build_module`).
        """

        def __init__(self, network: Network, quantize: bool = True) -> None:
            super().__init__()
            self.network = network
            self.conv1d = any(l.op == "conv1d" for l in network.layers)
            blocks: list[nn.Module] = []
            for layer in network.layers:
                if layer.op in ("conv2d", "conv1d"):
                    blocks.append(FusedLayer(layer, quantize))
                elif layer.op == "linear" and layer.flatten:
                    blocks.append(Classifier(layer, quantize))
                else:
                    raise ArchitectureError(f"ai8x modules support conv2d, conv1d and a flatten linear layer, not {layer.op}")
            self.layers = nn.ModuleList(blocks)

        def set_quantize(self, on: bool) -> None:
            """Switch weight/activation fake quantisation on or off."""
            for b in self.layers:
                b.quantize = on

        def set_soft(self, lam: float) -> None:
            """Training aid of ``nas qat``: folded layers apply ``q + lam * (w - q)`` (``lam`` in
            [0, 1]; 0, the default, is the vendor arithmetic exactly). Annealing ``lam`` from 1
            to 0 lets layers whose weights would all round to zero at the start of QAT (low
            bit widths next to a large folded bias) still receive a useful gradient."""
            for b in self.layers:
                b.soft = float(lam)

        def fold_bn(self) -> None:
            """Fold every layer's BN (see :func:`fold_bn`)."""
            for b in self.layers:
                b.fold_bn()

        @property
        def folded(self) -> bool:
            return all(b.folded for b in self.layers)

        def output_shifts(self) -> list[int]:
            """Each layer's current output shift."""
            return [b.output_shift() for b in self.layers]

        def vendor_params(self) -> list[dict[str, Any]]:
            """Each layer's integers as ai8x-synthesis ``quantize.py`` stores them (for
            :func:`integer_forward`); needs a folded network."""
            return [b.vendor_params() for b in self.layers]

        def integer_forward(self, x_int: Any) -> np.ndarray:
            """:func:`integer_forward` of this (folded) network on input integers (-128..127)."""
            return integer_forward(self.network, self.vendor_params(), x_int)

        @property
        def exact(self) -> bool:
            """Whether the eval-mode forward pass is the chip's exact arithmetic (float64 sums of
            integers: folded, quantised, no soft-quantisation aid)."""
            return self.folded and all(b.quantize and b.soft == 0 for b in self.layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.conv1d and x.dim() == 4:
                x = x.squeeze(-1)
            if not self.training and self.exact:
                x = x.to(torch.float64)  # exact sums: the chip's integers (see build_module)
            for b in self.layers:
                x = b(x)
            return x

    _CLASSES.update(FusedLayer=FusedLayer, Classifier=Classifier, Ai8xNet=Ai8xNet)
    return _CLASSES
