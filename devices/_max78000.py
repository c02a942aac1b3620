"""The MAX78000 family of CNN accelerators: hardware rules, kernel placement and the cycle model.

The code is written once for the family and parametrised by a per-chip hardware description
(:class:`search_spaces.Ai8xHardware`: ``MAX78000_HW`` here, ``MAX78002_HW`` in ``_max78002``).
Everything here restates Analog Devices' public documentation for the MAX78000 in our own code:

* the ai8x-synthesis README ("Network Loader": processors, kernel/bias/data memory, supported
  operators, pooling, element-wise operations, flatten, streaming, multi-pass, the 32-layer limit);
* the ai8x-training README (weight bit widths 1/2/4/8, Q7 data, ReLU/Abs activations);
* the synthesis tool's reports: its resource summary ("Weight memory: N bytes", kernel and bias
  placement, "Kernel memory exhausted") and its ``ESTIMATED LATENCY`` (cycles at the CNN clock);
* the MSDK example READMEs (board times measured with ``--timer``, CNN only).

Where the model is our *inference* rather than the vendor's statement (the 16 KiB ping-pong data
budget, the input-load cost per word), the docstring says so and the figure is a constructor
option of :class:`MAX78000`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from search_spaces import MAX78000_HW, Ai8xHardware, Layer, Network

from ._base import Device
from ._registry import register_device

__all__ = [
    "Ai8xAccelerator",
    "Ai8xReport",
    "MAX78000",
    "Max78000Report",
    "LayerLayout",
    "Placement",
    "kernel_columns",
    "layer_cycles",
    "expansion",
]

# ---------------------------------------------------------------------------- resources
# The MAX78000's figures (search_spaces.MAX78000_HW; ai8x-synthesis README, "MAX78000 Hardware"):
# 64 processors in 4 quadrants of 16; one kernel memory bank per processor of 768 x 72-bit words
# (9 bytes); 4 bias banks of 512 bytes; 16 data-memory instances of 32 KiB (each shared by 4
# processors); 32 layers; 1024 channels. Kept as module constants for the MAX78000; the device
# classes read their own ``hardware``. Processors, quadrants, column width, channels, flatten
# and streaming limits are the same on every chip of the family, so the layer-level functions
# below (expansion, kernel_columns, layer_cycles) use them directly.
PROCESSORS = MAX78000_HW.processors
QUADRANT_PROCESSORS = MAX78000_HW.quadrant_processors
KERNEL_COLUMNS = MAX78000_HW.kernel_columns
COLUMN_BITS = MAX78000_HW.column_bits
WEIGHT_MEMORY_BYTES = MAX78000_HW.weight_memory_bytes  # 442,368
BIAS_BANKS = MAX78000_HW.bias_banks
BIAS_BANK_BYTES = MAX78000_HW.bias_bank_bytes
DATA_INSTANCE_BYTES = MAX78000_HW.data_instance_bytes
DATA_INSTANCES = MAX78000_HW.data_instances
MAX_LAYERS = MAX78000_HW.max_layers
MAX_CHANNELS = MAX78000_HW.max_channels
MAX_DIM = MAX78000_HW.max_dim
MAX_STREAMING_LAYERS = MAX78000_HW.max_streaming_layers
MAX_STREAMING_CHANNELS = MAX78000_HW.max_streaming_channels
MAX_FLATTEN_ELEMENTS = MAX78000_HW.max_flatten_elements
MAX_FLATTEN_PIXELS = MAX78000_HW.max_flatten_pixels
WEIGHT_BITS = MAX78000_HW.weight_bits
ACTIVATIONS = ("relu", "abs", "none")  # ai8x-training README: ReLU, Abs or no activation
DEFAULT_CLOCK_HZ = MAX78000_HW.clock_hz
# *Inferred* (max78000.md): the vendor's examples ping-pong a layer's input and output between
# offsets 0 and 0x4000 of each 32 KiB instance, so each tensor gets half an instance.
DEFAULT_DATA_BUDGET = MAX78000_HW.default_data_budget
# *Stated model* for the CPU input load (not a vendor figure): the generated ``load_input()``
# copies the input with a ``memcpy32`` loop, one 32-bit word per iteration (load, store, loop
# overhead) on the Arm Cortex-M4F running at its 100 MHz maximum (MAX78000 datasheet).
DEFAULT_CPU_CLOCK_HZ = MAX78000_HW.cpu_clock_hz
DEFAULT_INPUT_CYCLES_PER_WORD = 5


def _ceil4(x: int) -> int:
    return -(-x // 4) * 4


def expansion(channels: int) -> tuple[int, int]:
    """(passes, processors per pass) for ``channels`` (ai8x-synthesis multi-pass rule).

    passes = ceil(C / 64); processors = ceil(C / passes), rounded up to a multiple of 4 when
    C > 64 (100 channels -> 2 passes x 52 processors).
    """
    passes = -(-channels // PROCESSORS)
    procs = -(-channels // passes)
    if channels > PROCESSORS:
        procs = _ceil4(procs)
    return passes, procs


def _out_span(cout: int) -> tuple[int, int, int]:
    """(out_exp, out_thr, span): output passes, processors per pass, processors per pass used."""
    out_exp, out_thr = expansion(cout)
    span = cout if cout <= PROCESSORS else out_thr
    return out_exp, out_thr, span


def kernel_columns(layer: Layer) -> int:
    """Kernel-memory columns the layer needs on *each* of its input processors.

    The synthesis tool's kernel layout (max78000.md, "Weight memory: the real fit test")::

        kc      = span * out_exp * in_exp          # kernels stored per input processor
        q       = 8 / bits;  ksize = kh*kw (Conv1d: k; Linear: 1)
        res     = (kc % q) * ksize * (q - 1)
        columns = ceil((kc*ksize*bits + res) / 72)

    A flatten layer from C x Hp x Wp stores ``ceil(Cout*in_exp*Hp*Wp/q) + (out_exp*out_thr -
    Cout)`` bytes per processor, i.e. ``ceil(bytes / 9)`` columns (the vendor tool can differ by
    one column here). Pass-through layers and unsupported bit widths need no columns (0).
    """
    if layer.op == "passthrough" or layer.weight_bits not in WEIGHT_BITS:
        return 0
    bits = layer.weight_bits
    q = 8 // bits
    in_exp, _ = expansion(layer.in_channels)
    out_exp, out_thr, span = _out_span(layer.out_channels)
    if layer.flatten:
        hp, wp = layer.pooled_dim
        nbytes = -(-(layer.out_channels * in_exp * hp * wp) // q) + (out_exp * out_thr - layer.out_channels)
        return -(-nbytes // (COLUMN_BITS // 8))
    kc = span * out_exp * in_exp
    if layer.op == "linear":
        ksize = 1
    elif layer.op == "conv1d":
        ksize = layer.kernel[0]
    else:
        ksize = layer.kernel[0] * layer.kernel[1]
    res = (kc % q) * ksize * (q - 1)
    return -(-(kc * ksize * bits + res) // COLUMN_BITS)


def _quadrant_max(first: int, count: int) -> int:
    """Most processors of the range [first, first + count) that fall in one quadrant."""
    best = 0
    for q in range(PROCESSORS // QUADRANT_PROCESSORS):
        lo, hi = q * QUADRANT_PROCESSORS, (q + 1) * QUADRANT_PROCESSORS
        best = max(best, min(hi, first + count) - max(lo, first))
    return best


def layer_cycles(layer: Layer, *, first_processor: int = 0) -> int:
    """CNN clock cycles of one layer, the synthesis tool's ``ESTIMATED LATENCY`` model.

    With M = ceil(Cin/64) passes, E operands, P = pool_h*pool_w, (Hp, Wp) the pooled input,
    (Ho, Wo) the output, (kh, kw) the kernel, (rp, cp) the padding and C = out_exp * span::

        in_pad = 2*M*E ;  in_dat = M*E*(P+1)
        col    = 2*cp*(in_pad+1)
        padrow = col + Wp*(in_pad+1)
        row_nc = col + Wp*(in_dat+1)
        row_c  = cp*(in_pad+1) + (kw-1-cp)*(in_dat+1) + (Wo-cp)*in_dat + in_pad*cp
        row_pb = cp*(in_pad+1) + (kw-1-cp)*(in_pad+1) + (Wo-cp)*in_pad + in_pad*cp
        out    = M*Wo*C + C*[C==1 and M==1]
        cycles = flat_adj + rp*padrow + (kh-1-rp)*row_nc + (row_c+out)*(Hp-(kh-1-rp)) + rp*(row_pb+out)

    Pass-through: ``Hp*Wp*(in_dat + M*ceil(q/4))`` with q the most input processors in one
    quadrant (processors assumed to start at ``first_processor``). Streaming layers take the
    vendor's own 1.5x guess ``(15*cycles + 9)//10``. Conv1d: H = length, W = 1, kw = 1, cp = 0.
    Flatten: (Ho, Wo) = (Hp, Wp), kernel 1, pad 0, C = Cout, flat_adj = 1 when
    ``in_exp*Hp*Wp - 1 >= 16``. ConvTranspose2d: Hp, Wp doubled and pad -> k-1-pad.
    The network's total adds one start cycle (see :meth:`MAX78000.report`).
    """
    m = -(-layer.in_channels // PROCESSORS)
    e = layer.operands
    p = layer.pool[0] * layer.pool[1]
    hp, wp = layer.pooled_dim
    in_pad = 2 * m * e
    in_dat = m * e * (p + 1)
    if layer.op == "passthrough":
        _, procs = expansion(layer.in_channels)
        cycles = hp * wp * (in_dat + m * -(-_quadrant_max(first_processor, procs) // 4))
    else:
        flat_adj = 0
        (kh, kw), (rp, cp) = layer.kernel, layer.pad
        out_exp, _, span = _out_span(layer.out_channels)
        c = out_exp * span
        if layer.flatten:
            ho, wo = hp, wp
            kh = kw = 1
            rp = cp = 0
            c = layer.out_channels
            if m * hp * wp - 1 >= 16:
                flat_adj = 1
        elif layer.op == "linear":
            ho, wo = hp, wp
            kh = kw = 1
            rp = cp = 0
        elif layer.op == "conv1d":
            kw, cp = 1, 0
            ho, wo = layer.out_dim
        elif layer.op == "convtranspose2d":
            hp, wp = 2 * hp, 2 * wp
            rp, cp = kh - 1 - rp, kw - 1 - cp
            ho, wo = layer.out_dim
        else:
            ho, wo = layer.out_dim
        col = 2 * cp * (in_pad + 1)
        padrow = col + wp * (in_pad + 1)
        row_nc = col + wp * (in_dat + 1)
        row_c = cp * (in_pad + 1) + (kw - 1 - cp) * (in_dat + 1) + (wo - cp) * in_dat + in_pad * cp
        row_pb = cp * (in_pad + 1) + (kw - 1 - cp) * (in_pad + 1) + (wo - cp) * in_pad + in_pad * cp
        out = m * wo * c + (c if (c == 1 and m == 1) else 0)
        cycles = (
            flat_adj
            + rp * padrow
            + (kh - 1 - rp) * row_nc
            + (row_c + out) * (hp - (kh - 1 - rp))
            + rp * (row_pb + out)
        )
    if layer.streaming:
        cycles = (15 * cycles + 9) // 10
    # Only a layer that breaks the operator rules (e.g. pad >= kernel) can come out negative.
    return max(int(cycles), 0)


# ---------------------------------------------------------------------------- report
@dataclass(frozen=True)
class Placement:
    """Where a layer's kernels sit: ``processors`` input processors from ``first_processor``,
    columns ``[column, column + columns)`` of each processor's kernel memory (768 columns on the
    MAX78000)."""

    first_processor: int
    processors: int
    column: int
    columns: int

    @property
    def last_processor(self) -> int:
        return self.first_processor + self.processors - 1

    @property
    def end_column(self) -> int:
        return self.column + self.columns

    def overlaps(self, other: Placement) -> bool:
        """True if the two placements share a (processor, column) cell."""
        return (
            self.first_processor <= other.last_processor
            and other.first_processor <= self.last_processor
            and self.column < other.end_column
            and other.column < self.end_column
        )

    def __str__(self) -> str:
        return f"p{self.first_processor}-{self.last_processor} c{self.column}-{self.end_column - 1}"


@dataclass
class Ai8xReport:
    """What the accelerator model (MAX78000, MAX78002) says about one network.

    Attributes:
        fits: True when no rule is broken (``violations`` is empty).
        violations: One full sentence per broken rule, naming the layer and the limit.
        weight_bytes: Sum of weights x bits / 8 (the vendor's "Weight memory", of
            ``weight_capacity_bytes``: 442,368 on the MAX78000).
        bias_bytes: Bias bytes (one byte per output channel of each layer with bias).
        layers: Hardware layer count (pass-through layers included), of at most ``max_layers``.
        layer_cycles: CNN cycles per layer (without the start cycle).
        cycles: Total CNN cycles, ``1 + sum(layer_cycles)`` (the vendor's estimate).
        latency_ms: ``cycles / clock_hz`` in milliseconds (CNN only).
        input_load_ms: CPU time to write the input into data memory (a stated model, see
            :class:`Ai8xAccelerator`), not included in ``latency_ms``.
        input_load_words: 32-bit words of that input load, ``H*W*ceil(C/4)``.
        kernel_columns: Kernel-memory columns per layer on each of its input processors.
        kernel_processors: Input processors holding each layer's kernels (0 for pass-through).
        placement: Per layer its :class:`Placement`, or None (pass-through, or not placed).
        max_column: Highest placed end column, ``max(column + columns)`` over placed layers:
            the kernel-memory height in use, of ``total_columns`` (0 if nothing is placed).
        kernel_processor_columns: ``sum(processors * columns)``, of ``kernel_capacity_columns``.
        bias_banks: Per layer the bias bank (0-3) it was given, or None.
        data_in_bytes: Per layer, bytes of its input per data-memory instance.
        data_out_bytes: Per layer, bytes of its output per data-memory instance.
        data_memory_bytes: Largest of those (the fullest instance use by one tensor).
        data_budget_bytes: The per-tensor budget they were checked against.
        passes: Per layer the input passes ``ceil(Cin/64)``.
        clock_hz: The CNN clock the latency is given at.
        macs: Multiply-accumulates of the network.
        weight_capacity_bytes: The whole kernel memory in bytes.
        max_layers: The chip's hardware-layer limit.
        total_columns: The tallest processor's kernel-memory columns (768 on the MAX78000;
            5,120 on the MAX78002, whose other processors have 4,096).
        bias_capacity_bytes: The whole bias memory in bytes.
        kernel_capacity_columns: Kernel-memory columns of all processors together.
        assumptions: The inferred or stated parts of the model, as sentences.
    """

    fits: bool
    violations: list[str]
    weight_bytes: int
    bias_bytes: int
    layers: int
    layer_cycles: list[int]
    cycles: int
    latency_ms: float
    input_load_ms: float
    input_load_words: int
    kernel_columns: list[int]
    kernel_processors: list[int]
    placement: list[Placement | None]
    max_column: int
    kernel_processor_columns: int
    bias_banks: list[int | None]
    data_in_bytes: list[int]
    data_out_bytes: list[int]
    data_memory_bytes: int
    data_budget_bytes: int
    passes: list[int]
    clock_hz: float
    macs: int
    weight_capacity_bytes: int = WEIGHT_MEMORY_BYTES
    max_layers: int = MAX_LAYERS
    total_columns: int = KERNEL_COLUMNS
    assumptions: list[str] = field(default_factory=list)
    bias_capacity_bytes: int = BIAS_BANKS * BIAS_BANK_BYTES
    kernel_capacity_columns: int = PROCESSORS * KERNEL_COLUMNS

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable mapping of every field (placements as mappings or null)."""
        d = asdict(self)
        d["placement"] = [None if p is None else asdict(p) for p in self.placement]
        return d


Max78000Report = Ai8xReport
"""The report's former name (every chip of the family returns an :class:`Ai8xReport`)."""


@dataclass(frozen=True)
class LayerLayout:
    """Where one layer sits for the vendor's synthesis tool (see :meth:`Ai8xAccelerator.layout`).

    Attributes:
        processors: bit mask of its input processors (bit p = processor p), as in the YAML.
        in_offset, out_offset: data-memory byte offsets of its input and output.
        chw: the layer reads CHW data (``data_format: CHW``, layer 0 only).
        placement: its kernel placement, or None (pass-through).
    """

    processors: int
    in_offset: int
    out_offset: int
    chw: bool
    placement: Placement | None

    @property
    def processors_hex(self) -> str:
        """The mask as the vendor writes it, ``0x`` and 16 hex digits."""
        return f"0x{self.processors:016x}"


# ---------------------------------------------------------------------------- the device
class Ai8xAccelerator(Device):
    """A MAX7800x CNN accelerator: rule checker, kernel placement and cycle model.

    The chip is the subclass's :attr:`hardware` (:class:`search_spaces.Ai8xHardware`); the
    options default to that chip's figures.

    Args:
        clock_hz: CNN clock (the chip's default: 50 MHz APB clock on the MAX78000, which has no
            PLL; 200 MHz PLL on the MAX78002).
        data_budget_bytes: Bytes of one data-memory instance each tensor (a layer's input, its
            output) may use. *Inferred* default half an instance (16 KiB of 32 KiB on the
            MAX78000, 40 KiB of 80 KiB on the MAX78002): the vendor's examples ping-pong input
            and output between offset 0 and half the instance (0x4000, 0xA000). Raise it to the
            whole instance to check only the hard instance limit.
        chw_first_layer: Let layer 0 read CHW data (one channel per instance, one byte per
            pixel) when it has at most 16 input channels, as the vendor's examples do.
        cpu_clock_hz: CPU clock for the input-load model (the chip's: 100 MHz, the MAX78000's
            Cortex-M4F maximum; 120 MHz on the MAX78002).
        input_cycles_per_word: CPU cycles per 32-bit input word (stated model: one iteration
            of the generated ``memcpy32`` loop, load + store + loop overhead).
    """

    kind = "accelerator"
    spaces = ["ai8x"]
    hardware: ClassVar[Ai8xHardware] = MAX78000_HW

    def __init__(
        self,
        *,
        clock_hz: float | None = None,
        data_budget_bytes: int | None = None,
        chw_first_layer: bool = True,
        cpu_clock_hz: float | None = None,
        input_cycles_per_word: float = DEFAULT_INPUT_CYCLES_PER_WORD,
    ) -> None:
        hw = self.hardware
        clock_hz = hw.clock_hz if clock_hz is None else clock_hz
        cpu_clock_hz = hw.cpu_clock_hz if cpu_clock_hz is None else cpu_clock_hz
        data_budget_bytes = hw.default_data_budget if data_budget_bytes is None else data_budget_bytes
        if not (math.isfinite(clock_hz) and clock_hz > 0 and math.isfinite(cpu_clock_hz) and cpu_clock_hz > 0):
            raise ValueError("clock frequencies must be positive finite numbers")
        if not 0 < data_budget_bytes <= hw.data_instance_bytes:
            raise ValueError(f"data_budget_bytes must be in 1..{hw.data_instance_bytes}")
        if not (math.isfinite(input_cycles_per_word) and input_cycles_per_word >= 0):
            raise ValueError("input_cycles_per_word must be a finite number >= 0")
        self.clock_hz = float(clock_hz)
        self.data_budget_bytes = int(data_budget_bytes)
        self.chw_first_layer = bool(chw_first_layer)
        self.cpu_clock_hz = float(cpu_clock_hz)
        self.input_cycles_per_word = float(input_cycles_per_word)

    # ------------------------------------------------------------------ public
    def limits(self) -> dict[str, str]:
        """Weight memory, layers, channels and the data budget (vendor figures, see module doc)."""
        hw = self.hardware
        return {
            "weights": f"{hw.weight_memory_bytes:,} B",
            "layers": str(hw.max_layers),
            "channels": str(hw.max_channels),
            "data": f"{self.data_budget_bytes:,} B per instance",
        }

    def latency_ms(self, network: Network) -> float:
        """CNN latency at ``clock_hz`` in ms: ``(1 + sum(layer cycles)) / clock_hz``."""
        total = 1 + sum(layer_cycles(layer) for layer in network.layers)
        return total / self.clock_hz * 1e3

    def report(self, network: Network) -> Ai8xReport:
        """Check every rule, place kernels and bias, and estimate cycles for ``network``."""
        hw = self.hardware
        layers = list(network.layers)
        n = len(layers)
        issues: list[tuple[int, str]] = []  # (layer index, or -1 for the network, sentence)

        top = hw.max_layers
        if n > top:
            issues.append((
                top,
                f"{layers[top].label(top)}: the network has {n} hardware layers, but at most "
                f"{top} are available (layers {top}-{n - 1} are over the limit)",
            ))
        for msg in network.shape_errors():
            issues.append((_layer_of(msg), msg))

        cycles = [layer_cycles(layer) for layer in layers]
        columns = [kernel_columns(layer) for layer in layers]
        procs = [0 if layer.op == "passthrough" else expansion(layer.in_channels)[1] for layer in layers]
        passes = [expansion(layer.in_channels)[0] for layer in layers]
        data_in, data_out = self._data_memory(network)

        for i, layer in enumerate(layers):
            last_stream = layer.streaming and (i == n - 1 or not layers[i + 1].streaming)
            for msg in self._layer_rules(i, layer, n, data_in[i], data_out[i], last_stream):
                issues.append((i, msg))
        for i, msg in _streaming_rules(layers, hw):
            issues.append((i, msg))

        placement, place_issues = _place_kernels(layers, procs, columns, hw)
        issues.extend(place_issues)
        banks, bias_issues = _place_bias(layers, hw)
        issues.extend(bias_issues)

        issues.sort(key=lambda t: t[0])  # stable: rule order kept within a layer
        violations = [msg for _, msg in issues]
        total = 1 + sum(cycles)
        c, h, w = network.input
        words = h * w * -(-c // 4)
        placed = [p for p in placement if p is not None]
        return Ai8xReport(
            fits=not violations,
            violations=violations,
            weight_bytes=network.weight_bytes,
            bias_bytes=sum(layer.bias_bytes for layer in layers),
            layers=n,
            layer_cycles=cycles,
            cycles=total,
            latency_ms=total / self.clock_hz * 1e3,
            input_load_ms=words * self.input_cycles_per_word / self.cpu_clock_hz * 1e3,
            input_load_words=words,
            kernel_columns=columns,
            kernel_processors=procs,
            placement=placement,
            max_column=max((p.end_column for p in placed), default=0),
            kernel_processor_columns=sum(np_ * nc for np_, nc in zip(procs, columns)),
            bias_banks=banks,
            data_in_bytes=data_in,
            data_out_bytes=data_out,
            data_memory_bytes=max(data_in + data_out, default=0),
            data_budget_bytes=self.data_budget_bytes,
            passes=passes,
            clock_hz=self.clock_hz,
            macs=network.macs,
            weight_capacity_bytes=hw.weight_memory_bytes,
            max_layers=hw.max_layers,
            total_columns=hw.large_kernel_columns,
            assumptions=self.assumptions(),
            bias_capacity_bytes=hw.bias_memory_bytes,
            kernel_capacity_columns=hw.processor_columns,
        )

    def layout(self, network: Network) -> list[LayerLayout]:
        """Per layer the processors and data-memory offsets of the vendor's network YAML.

        ``processors`` is the mask of the layer's input processors, taken from our kernel
        placement (:meth:`report`: ``first_processor`` .. ``first_processor + processors - 1``;
        a CHW first layer with several channels takes every 4th processor from there instead,
        one channel per data-memory instance, as the synthesis tool requires);
        a layer's output goes to the next layer's input processors (the synthesis tool's default
        ``output_processors``), so consecutive masks agree by construction. Offsets ping-pong
        between 0 and half an instance (0x4000 on the MAX78000, 0xA000 on the MAX78002: the
        vendor's examples; the same *inferred* half instance per tensor that :meth:`report`
        checks by default): layer ``i`` reads at ``in_offset`` and writes at ``out_offset``, the
        next layer reads there.

        Raises:
            ValueError: the network does not pass :meth:`report` (no placement to take masks
                from), or a tensor needs more than half an instance (the ping-pong overlaps).
        """
        rep = self.report(network)
        if not rep.fits:
            raise ValueError(f"no layout for a network that does not fit: {rep.violations[0]}")
        half = self.hardware.data_instance_bytes // 2
        over = [i for i, (a, b) in enumerate(zip(rep.data_in_bytes, rep.data_out_bytes)) if max(a, b) > half]
        if over:
            raise ValueError(f"layer {over[0]}: a tensor over {half} bytes per instance does not fit the 0/0x4000 ping-pong")
        out: list[LayerLayout] = []
        for i, (layer, p) in enumerate(zip(network.layers, rep.placement)):
            if p is None:  # pass-through: no kernels; it reads where the previous layer wrote
                first, count = 0, expansion(layer.in_channels)[1]
            else:
                first, count = p.first_processor, p.processors
            chw = i == 0 and self._chw(layer)
            if chw and count > 1:
                # CHW data: one channel per data-memory instance (4 processors share one), as
                # ai8x-synthesis requires ("multiple channels share the same memory instance")
                base = first - first % 4 if first - first % 4 + 4 * (count - 1) < PROCESSORS else 0
                mask = sum(1 << (base + 4 * j) for j in range(count))
            else:
                mask = ((1 << count) - 1) << first
            in_off = 0 if i % 2 == 0 else half
            out.append(LayerLayout(processors=mask, in_offset=in_off, out_offset=half - in_off,
                                   chw=chw, placement=p))
        return out

    def assumptions(self) -> list[str]:
        """The inferred or stated parts of the model, as sentences (printed by the CLI)."""
        hw = self.hardware
        half = hw.data_instance_bytes // 2
        return [
            f"data memory: each tensor may use {self.data_budget_bytes:,} of a {hw.data_instance_bytes:,}-byte instance "
            f"(inferred from the vendor's ping-pong between offsets 0 and 0x{half:X})",
            "layer 0 reads CHW data (one channel per instance) when it has at most 16 channels"
            if self.chw_first_layer
            else "layer 0 reads HWC data",
            f"input load: {self.input_cycles_per_word:g} CPU cycles per 32-bit word at "
            f"{self.cpu_clock_hz / 1e6:g} MHz (stated model of the generated memcpy32 loop)",
            "pass-through layers use processors from 0 (for their cycle count)",
            *self._extra_assumptions(),
        ]

    def _extra_assumptions(self) -> list[str]:
        """Chip-specific sentences appended to :meth:`assumptions` (none on the MAX78000)."""
        return []

    # ------------------------------------------------------------------ rules
    def _data_memory(self, network: Network) -> tuple[list[int], list[int]]:
        """Bytes per data-memory instance of each layer's input and output (ai8x-synthesis)::

        in  = H_in*W_in*ceil(C_in/64)*operands*4      (layer 0 in CHW: H*W*operands)
        out = H_out*W_out*ceil(C_out/64)*4*(output_width/8)
        """
        data_in: list[int] = []
        data_out: list[int] = []
        for i, layer in enumerate(network.layers):
            h, w = layer.in_dim
            if i == 0 and self._chw(layer):
                data_in.append(h * w * layer.operands)
            else:
                data_in.append(h * w * -(-layer.in_channels // PROCESSORS) * layer.operands * 4)
            ho, wo = layer.out_dim
            data_out.append(ho * wo * -(-layer.out_channels // PROCESSORS) * 4 * layer.output_width // 8)
        return data_in, data_out

    def _chw(self, layer: Layer) -> bool:
        return self.chw_first_layer and layer.in_channels <= self.hardware.data_instances and not layer.streaming

    def _layer_rules(
        self, i: int, layer: Layer, n: int, d_in: int, d_out: int, last_streaming: bool
    ) -> list[str]:
        """Sentences for every per-layer rule ``layer`` (index ``i`` of ``n``) breaks."""
        v: list[str] = []
        hw = self.hardware
        at = layer.label(i)
        op = layer.op
        (kh, kw), (rp, cp) = layer.kernel, layer.pad
        # operators (ai8x-synthesis README, "Supported operators")
        if op == "conv2d":
            if layer.kernel not in ((1, 1), (3, 3)):
                v.append(f"{at}: conv2d kernel {kh}x{kw} is not supported (1x1 or 3x3 only; stack 3x3 kernels instead)")
            if not (0 <= rp <= 2 and 0 <= cp <= 2 and rp < kh and cp < kw):
                v.append(f"{at}: conv2d pad {rp},{cp} with a {kh}x{kw} kernel is not supported (pad 0..2 and smaller than the kernel)")
        elif op == "conv1d":
            if not 1 <= kh <= 9 or kw != 1:
                v.append(f"{at}: conv1d kernel {kh}x{kw} is not supported (length 1..9, width 1)")
            if not 0 <= rp <= 2 or cp != 0:
                v.append(f"{at}: conv1d pad {rp},{cp} is not supported (0..2 along the length, 0 across)")
            if layer.in_dim[1] != 1:
                v.append(f"{at}: conv1d input must be [length, 1], got {layer.in_dim[0]}x{layer.in_dim[1]}")
            if not hw.multipass_padded_conv1d and rp > 0 and layer.in_channels > hw.processors:
                v.append(
                    f"{at}: a padded conv1d with {layer.in_channels} input channels is not supported on the "
                    f"{hw.part} (pad 0 above {hw.processors} input channels)"
                )
        elif op == "convtranspose2d":
            if layer.kernel != (3, 3):
                v.append(f"{at}: convtranspose2d kernel {kh}x{kw} is not supported (3x3, stride 2 only)")
            if not (0 <= rp <= 2 and 0 <= cp <= 2 and rp < kh and cp < kw):
                v.append(f"{at}: convtranspose2d pad {rp},{cp} is not supported (pad 0..2 and smaller than the kernel)")
        elif op == "linear":
            if not layer.flatten and layer.pooled_dim != (1, 1):
                hp, wp = layer.pooled_dim
                v.append(f"{at}: linear layer on {hp}x{wp} data needs 'flatten: true' (a linear layer is a 1x1 conv on 1x1 data)")
        elif op == "passthrough":
            if layer.in_channels != layer.out_channels:
                v.append(f"{at}: a pass-through layer must keep its channels, got {layer.in_channels} -> {layer.out_channels}")
        if layer.activation not in ACTIVATIONS:
            v.append(f"{at}: activation {layer.activation!r} is not supported (ReLU, Abs or none)")
        # channels, rows and columns
        for what, ch in (("input", layer.in_channels), ("output", layer.out_channels)):
            if ch > hw.max_channels:
                v.append(f"{at}: {ch} {what} channels exceed the limit of {hw.max_channels} (16 passes x 64 processors)")
        for what, (hh, ww) in (("input", layer.in_dim), ("output", layer.out_dim)):
            if hh > hw.max_dim or ww > hw.max_dim:
                v.append(f"{at}: {what} of {hh}x{ww} exceeds the limit of {hw.max_dim} rows and columns")
        # pooling (fused before the operator; no padding)
        ph, pw = layer.pool
        sh, sw = layer.pool_stride
        if not (1 <= ph <= 16 and 1 <= pw <= 16):
            v.append(f"{at}: pool {ph}x{pw} is not supported (1..16 per axis)")
        if not (1 <= sh <= 16 and 1 <= sw <= 16):
            v.append(f"{at}: pool stride {sh}x{sw} is not supported (1..16 per axis)")
        if (op == "passthrough" and layer.is_pooled and layer.in_channels > PROCESSORS and layer.pooled_dim != (1, 1)
                and not hw.multipass_pool_passthrough):
            v.append(
                f"{at}: pooling {layer.in_channels} channels without a convolution is not supported "
                f"(more than {PROCESSORS} channels can be pooled only with a fused conv, or to a 1x1 output)"
            )
        # element-wise operands
        if not 1 <= layer.operands <= 16:
            v.append(f"{at}: {layer.operands} element-wise operands are not supported (2..16, or 1 for none)")
        # flatten
        if layer.flatten:
            hp, wp = layer.pooled_dim
            if op != "linear":
                v.append(f"{at}: flatten is only available on a linear layer, not {op}")
            if layer.in_channels * hp * wp > hw.max_flatten_elements:
                v.append(
                    f"{at}: flatten of {layer.in_channels}x{hp}x{wp} = {layer.in_channels * hp * wp:,} inputs "
                    f"exceeds the limit of {hw.max_flatten_elements:,}"
                )
            if hp * wp > hw.max_flatten_pixels:
                v.append(f"{at}: flatten of {hp}x{wp} = {hp * wp} pixels exceeds the limit of {hw.max_flatten_pixels}")
            if layer.is_pooled:
                v.append(f"{at}: flatten cannot be combined with pooling in the same layer")
        # weights, output width, bias
        if op != "passthrough" and layer.weight_bits not in hw.weight_bits:
            v.append(f"{at}: {layer.weight_bits}-bit weights are not supported (1, 2, 4 or 8 bits)")
        if layer.output_width not in (8, 32):
            v.append(f"{at}: output width {layer.output_width} is not supported (8, or 32 on the last layer)")
        elif layer.output_width == 32 and i != n - 1:
            v.append(f"{at}: only the last layer may output 32-bit data")
        if layer.bias_bytes > hw.bias_bank_bytes:
            v.append(
                f"{at}: {layer.bias_bytes} bias bytes do not fit in one {hw.bias_bank_bytes}-byte bias bank "
                f"(at most {hw.bias_bank_bytes} output channels with bias)"
            )
        # data memory (a streaming layer's input, and its output unless it is the last streaming
        # layer, live in FIFO-fed circular buffers and are not checked here)
        budget = self.data_budget_bytes
        chw = i == 0 and self._chw(layer)
        if not layer.streaming and d_in > budget:
            h, w = layer.in_dim
            how = (
                f"{h}x{w} pixels, one channel per instance (CHW)"
                if chw
                else f"{h}x{w} pixels x {-(-layer.in_channels // PROCESSORS)} pass(es) x {layer.operands} operand(s) x 4 bytes"
            )
            v.append(
                f"{at}: input needs {d_in:,} bytes per data-memory instance ({how}), but the budget "
                f"is {budget:,} bytes (exceeds data memory; consider streaming or a smaller input)"
            )
        if d_out > budget and not (layer.streaming and not last_streaming):
            ho, wo = layer.out_dim
            v.append(
                f"{at}: output needs {d_out:,} bytes per data-memory instance ({ho}x{wo} pixels x "
                f"{-(-layer.out_channels // PROCESSORS)} pass(es) x 4 bytes x {layer.output_width // 8}), "
                f"but the budget is {budget:,} bytes (exceeds data memory)"
            )
        for what, (hh, ww), ch in (("input", layer.in_dim, layer.in_channels), ("output", layer.out_dim, layer.out_channels)):
            if hh * ww * -(-ch // PROCESSORS) >= 2**21:
                v.append(f"{at}: {what} of {ch}x{hh}x{ww} has H*W*ceil(C/64) >= 2^21 words, beyond the data-memory address range")
        return v


@register_device("max78000")
class MAX78000(Ai8xAccelerator):
    """Analog Devices MAX78000: rule checker, kernel placement and the vendor's cycle model
    (options: :class:`Ai8xAccelerator`; defaults: 50 MHz CNN clock, 16 KiB data budget,
    100 MHz CPU)."""

    description = "Analog Devices MAX78000 CNN accelerator (vendor rules and cycle model)"
    hardware = MAX78000_HW


def _layer_of(msg: str) -> int:
    """Layer index a shape-error sentence starts with ("layer 3: ..."), or -1."""
    if msg.startswith("layer "):
        head = msg[6:].split(":", 1)[0].split(" ", 1)[0]
        if head.isdigit():
            return int(head)
    return -1


def _streaming_rules(layers: list[Layer], hw: Ai8xHardware = MAX78000_HW) -> list[tuple[int, str]]:
    """Streaming mode (FIFO input; ai8x-synthesis README): at most 8 consecutive layers from
    layer 0, at most 16 input channels into the FIFOs, and (MAX78000) the last streaming layer
    padded; (MAX78002) no pass-through layer streams."""
    out: list[tuple[int, str]] = []
    flags = [layer.streaming for layer in layers]
    if not any(flags):
        return out
    for i, layer in enumerate(layers):
        if layer.streaming and i > 0 and not flags[i - 1]:
            out.append((i, f"{layer.label(i)}: streaming layers must be consecutive from layer 0, but layer {i - 1} does not stream"))
    run = 0
    while run < len(flags) and flags[run]:
        run += 1
    if run > MAX_STREAMING_LAYERS:
        out.append((MAX_STREAMING_LAYERS, f"{layers[MAX_STREAMING_LAYERS].label(MAX_STREAMING_LAYERS)}: at most {MAX_STREAMING_LAYERS} layers may stream, but layers 0-{run - 1} do"))
    if flags[0] and layers[0].in_channels > MAX_STREAMING_CHANNELS:
        out.append((0, f"{layers[0].label(0)}: a streaming input has at most {MAX_STREAMING_CHANNELS} channels, got {layers[0].in_channels}"))
    if run and hw.streaming_final_pad:
        last = layers[run - 1]
        if last.op != "passthrough" and last.pad == (0, 0):
            out.append((run - 1, f"{last.label(run - 1)}: the last streaming layer must be padded (pad > 0), got pad 0"))
    if not hw.streaming_passthrough:
        for i, layer in enumerate(layers):
            if layer.streaming and layer.op == "passthrough":
                out.append((i, f"{layer.label(i)}: a pass-through layer cannot stream on the {hw.part} (streaming layers must convolve)"))
    return out


def _runs(free: int, k: int) -> int:
    """Bit i set iff bits i .. i+k-1 of ``free`` are all set (k >= 1)."""
    r, span = free, 1
    while span * 2 <= k:
        r &= r >> span
        span *= 2
    if span < k:
        r &= r >> (k - span)
    return r


def _longest_run(free: int) -> int:
    """Length of the longest run of set bits in ``free``."""
    n = 0
    while free:
        free &= free >> 1
        n += 1
    return n


def _reverse_column(used: int, width: int, need: int) -> int | None:
    """The column the synthesis tool gives a layer of ``need`` columns whose input processors all
    have extended kernel memory, searching down from the top (``izer/kernels.py``,
    ``search_kernel_mem(..., reverse=True)``), on a processor whose used columns are the set bits
    of ``used`` and that has ``width`` columns; None when it finds no room (the tool then
    searches up from column 0).

    The tool's own steps: start at the top column ``width - 1`` (down in steps of 4 while that is
    used); a used column ``i`` in the window ``[top - need + 1, top]`` moves the top to
    ``(i - 1) & ~3``; the layer then starts at ``(top - need + 1) & ~3``.
    """
    top = width - 1
    while used >> top & 1:
        top -= 4
        if top < 0:
            return None
    while True:
        lo = top - need + 1
        if lo < 0:
            return None
        window = (used >> lo) & ((1 << need) - 1)
        if not window:
            return lo & ~3
        i = lo + window.bit_length() - 1  # the highest used column in the window
        top = (i - 1) & ~3
        if top < 0:
            return None


def _place_kernels(
    layers: list[Layer], procs: list[int], columns: list[int], hw: Ai8xHardware = MAX78000_HW
) -> tuple[list[Placement | None], list[tuple[int, str]]]:
    """Greedy kernel placement as the synthesis tool does it (max78000.md, "Placement").

    Layers that use all 64 input processors go first, then the rest, in network order. Each
    layer goes at the lowest column (a multiple of 4) where all its input processors have
    ``columns`` free consecutive columns, over first processors that are multiples of 4;
    ties go to the lowest first processor. If there is none: "Kernel memory exhausted".

    Every placement starts on a multiple of 4, so a column range is free exactly when the
    4-column blocks it touches are: each processor's use is kept as a block mask.

    On a chip whose first processor of each quadrant has extra kernel memory (MAX78002: 5,120
    columns on processors 0, 16, 32 and 48, 4,096 on the others), a layer on one input processor
    goes to the first of those processors with room, at the column the tool's top-down search
    gives it (:func:`_reverse_column`; the tool searches top-down when every input processor of
    the layer has extended memory), unless the tool would put it over another layer's kernels
    there (its top-down search checks a window that can sit up to 3 columns above the place it
    then uses); the other layers use the common 4,096 columns.
    """
    full = (1 << -(-hw.large_kernel_columns // 4)) - 1  # placement works in aligned blocks of 4 columns
    beyond = full & ~((1 << hw.kernel_columns // 4) - 1)  # blocks only extended memory has
    used = [0] * PROCESSORS  # per processor: bit b set = columns 4b .. 4b+3 (partly) in use
    groups = [0] * (PROCESSORS // 4)  # the union of used[] over processors 4g .. 4g+3
    exact: dict[int, int] = {}  # extended-memory processors: bit c set = column c in use
    large = [p for p in range(PROCESSORS) if hw.columns(p) > hw.kernel_columns]
    placement: list[Placement | None] = [None] * len(layers)
    issues: list[tuple[int, str]] = []
    order = sorted(
        (i for i in range(len(layers)) if columns[i] > 0 and procs[i] > 0),
        key=lambda i: (procs[i] != PROCESSORS, i),
    )

    def take(i: int, s: int, n: int, column: int, need: int) -> None:
        placement[i] = Placement(first_processor=s, processors=n, column=column, columns=need)
        b0, b1 = column // 4, (column + need - 1) // 4
        mask = ((1 << (b1 - b0 + 1)) - 1) << b0
        cols = ((1 << need) - 1) << column
        for p in range(s, s + n):
            used[p] |= mask
            groups[p // 4] |= mask
            if p in large:
                exact[p] = exact.get(p, 0) | cols

    for i in order:
        n, need = procs[i], columns[i]
        bits = layers[i].weight_bits
        at = layers[i].label(i)
        height = hw.large_kernel_columns if n == 1 and large else hw.kernel_columns
        if need > height:
            where = "processor 0" if n == 1 else f"processors 0-{n - 1}"
            issues.append((i, f"{at}: {bits}-bit kernels need {need} columns on {where}, but only {height} exist (kernel memory exhausted)"))
            continue
        avoid: set[int] = set()
        if n == 1 and large:
            for p in large:
                c = _reverse_column(exact.get(p, 0), hw.columns(p), need)
                if c is None:
                    continue  # the tool searches up from column 0 there (below)
                if exact.get(p, 0) >> c & ((1 << need) - 1):
                    avoid.add(p)  # the tool would put these kernels over another layer's: not there
                    continue
                take(i, p, 1, c, need)
                break
            if placement[i] is not None:
                continue
        blocks = -(-need // 4)
        best: tuple[int, int] | None = None
        largest = 0
        for s in range(0, PROCESSORS - n + 1, 4):
            if s in avoid:
                continue
            # blocks beyond the range's memory count as used (a range of 2+ processors always
            # holds one without extended memory)
            union = 0 if n == 1 and s in large else beyond
            whole = n // 4
            for g in range(s // 4, s // 4 + whole):
                union |= groups[g]
            for p in range(s + 4 * whole, s + n):
                union |= used[p]
            free = ~union & full
            starts = _runs(free, blocks)
            if not starts:
                largest = max(largest, _longest_run(free))
                continue
            b = (starts & -starts).bit_length() - 1
            if best is None or b < best[0]:
                best = (b, s)
                if b == 0:
                    break
        if best is None:
            issues.append((
                i,
                f"{at}: {bits}-bit kernels need {need} free consecutive columns on {n} processors "
                f"(first processor a multiple of 4), but at most {4 * largest} are left on any such group "
                f"of the {hw.kernel_columns}-column kernel memory (kernel memory exhausted)",
            ))
            continue
        b, s = best
        take(i, s, n, 4 * b, need)
    return placement, issues


def _place_bias(layers: list[Layer], hw: Ai8xHardware = MAX78000_HW) -> tuple[list[int | None], list[tuple[int, str]]]:
    """First-fit-descending of each layer's bias (Cout bytes) into the chip's 4 bias banks
    (512 bytes each on the MAX78000, 2,048 on the MAX78002).

    The synthesis tool keeps a layer's whole bias in one quadrant's bias memory (ai8x-synthesis
    README, "Bias"). Layers over one bank are reported by the per-layer rules and skipped here.
    """
    size = hw.bias_bank_bytes
    free = [size] * hw.bias_banks
    banks: list[int | None] = [None] * len(layers)
    issues: list[tuple[int, str]] = []
    items = sorted(
        (i for i, layer in enumerate(layers) if 0 < layer.bias_bytes <= size),
        key=lambda i: (-layers[i].bias_bytes, i),
    )
    for i in items:
        need = layers[i].bias_bytes
        for b in range(hw.bias_banks):
            if free[b] >= need:
                free[b] -= need
                banks[i] = b
                break
        else:
            issues.append((
                i,
                f"{layers[i].label(i)}: its {need} bias bytes fit in none of the {hw.bias_banks} bias banks "
                f"of {size} bytes (free: {', '.join(map(str, free))}; bias memory exhausted)",
            ))
    return banks, issues
