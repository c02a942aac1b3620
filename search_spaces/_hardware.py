"""Hardware descriptions of Analog Devices' CNN accelerators (the MAX78000 family).

One frozen :class:`Ai8xHardware` per chip holds the constants that the ``ai8x`` search space
and the device rule checker (``devices``) use, each restated from the vendor's documentation
and from its synthesis tool's device description (ai8x-synthesis ``izer/tornadocnn.py``,
classes ``DevAI85`` = MAX78000 and ``DevAI87`` = MAX78002, and the README sections "MAX78000
and MAX78002 Hardware and Resources" and "Limitations of MAX78002 Networks"). It lives in
``search_spaces`` (the bottom of the import graph) so that both the space and the devices can
use it.

    >>> from search_spaces import ai8x_hardware
    >>> ai8x_hardware("max78002").max_layers
    128
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import InputError

__all__ = ["Ai8xHardware", "MAX78000_HW", "MAX78002_HW", "AI8X_HARDWARE", "ai8x_hardware"]


@dataclass(frozen=True)
class Ai8xHardware:
    """The constants of one MAX7800x CNN accelerator that our rules and cost model use.

    Attributes:
        name: Registry-style name (``"max78000"``).
        part: The vendor's part number (``"MAX78000"``), as ``ai8xize.py --device`` takes it.
        max_layers: Hardware layers (pass-through layers count; fused pooling does not).
        kernel_columns: Kernel-memory columns (72-bit words) of each processor.
        large_kernel_columns: Columns of the processors with extra kernel memory (the first of
            each quadrant, ``p % 16 == 0``); equal to ``kernel_columns`` where there are none.
        bias_bank_bytes: Bytes of each of the ``bias_banks`` bias memories (one per quadrant).
        data_instance_bytes: Bytes of each of the 16 data-memory instances.
        max_dim: Most rows or columns of a layer's input or output.
        clock_hz: The CNN clock the generated code runs inference at by default.
        clock_source: Where ``clock_hz`` comes from, in words.
        cpu_clock_hz: The Arm core's clock in the generated ``main.c`` (input-load model).
        streaming_final_pad: The last streaming layer must be padded.
        streaming_passthrough: A streaming layer may be a pass-through layer.
        multipass_pool_passthrough: A pass-through layer may pool more than 64 channels (more
            than one pass) to an output larger than 1x1.
        multipass_padded_conv1d: A padded Conv1d may have more than 64 input channels.
        processors, quadrant_processors, column_bits, bias_banks, data_instances, max_channels,
        max_streaming_layers, max_streaming_channels, max_flatten_elements, max_flatten_pixels,
        weight_bits: The same on every chip of the family.
    """

    name: str
    part: str
    max_layers: int
    kernel_columns: int
    large_kernel_columns: int
    bias_bank_bytes: int
    data_instance_bytes: int
    max_dim: int
    clock_hz: float
    clock_source: str
    cpu_clock_hz: float
    streaming_final_pad: bool
    streaming_passthrough: bool
    multipass_pool_passthrough: bool
    multipass_padded_conv1d: bool
    processors: int = 64
    quadrant_processors: int = 16
    column_bits: int = 72
    bias_banks: int = 4
    data_instances: int = 16
    max_channels: int = 1024
    max_streaming_layers: int = 8
    max_streaming_channels: int = 16
    max_flatten_elements: int = 16384
    max_flatten_pixels: int = 256
    weight_bits: tuple[int, ...] = (1, 2, 4, 8)

    def columns(self, processor: int) -> int:
        """Kernel-memory columns of ``processor`` (0-based)."""
        return self.large_kernel_columns if processor % self.quadrant_processors == 0 else self.kernel_columns

    @property
    def has_large_processors(self) -> bool:
        """True when the first processor of each quadrant has extra kernel memory."""
        return self.large_kernel_columns > self.kernel_columns

    @property
    def processor_columns(self) -> int:
        """Kernel-memory columns of all processors together."""
        return sum(self.columns(p) for p in range(self.processors))

    @property
    def weight_memory_bytes(self) -> int:
        """The whole kernel memory in bytes (the vendor's "Weight memory ... bytes total")."""
        return self.processor_columns * self.column_bits // 8

    @property
    def bias_memory_bytes(self) -> int:
        """The whole bias memory in bytes (the vendor's "Bias memory ... bytes total")."""
        return self.bias_banks * self.bias_bank_bytes

    @property
    def default_data_budget(self) -> int:
        """Half a data-memory instance: the vendor's examples ping-pong a layer's input and
        output between offset 0 and half the instance (0x4000 on the MAX78000, 0xA000 on the
        MAX78002; ai8x-synthesis README, "Data Memory" / ``out_offset``)."""
        return self.data_instance_bytes // 2


# Sources: ai8x-synthesis at commit ab4f4c0 (../shared/vendor/ai8x-synthesis): izer/tornadocnn.py
# (class Dev, DevAI85 = MAX78000, DevAI87 = MAX78002; line numbers below), izer/backend/max7800x.py,
# izer/kernels.py and README.md. The family-wide defaults of Ai8xHardware: 64 processors in 4
# groups of 16 (P_NUMGROUPS/P_NUMPRO, tornadocnn.py:192-194 and 339-341), 1024 channels
# (MAX_CHANNELS = 16 x MAX_PROC, :290/:482; at most 16 passes, backend/max7800x.py:1903), 8
# streaming layers (MAX_STREAM_LAYERS, :187/:334), 72-bit kernel words, flatten limits (README:1093/1188).
MAX78000_HW = Ai8xHardware(
    name="max78000",
    part="MAX78000",
    max_layers=32,                 # DevAI85.MAX_LAYERS (tornadocnn.py:186)
    kernel_columns=768,            # DevAI85.MASK_WIDTH_SMALL (tornadocnn.py:272)
    large_kernel_columns=768,      # DevAI85.MASK_WIDTH_LARGE (tornadocnn.py:273)
    bias_bank_bytes=512,           # DevAI85.BIAS_SIZE, per group of 16 processors (tornadocnn.py:271)
    data_instance_bytes=32 * 1024,  # DevAI85.INSTANCE_WIDTH (:285) x 16 bytes: backend/max7800x.py:474, 603
    max_dim=1023,                  # DevAI85.MAX_CNT_BITS = 10 (tornadocnn.py:226); README:1069 "1023"
    clock_hz=50e6,                 # Dev.APB_SPEED = 50 (tornadocnn.py:86), divider 1; SUPPORT_PLL False (:30)
    clock_source="APB clock 50 MHz, divider 1 (izer/tornadocnn.py Dev.APB_SPEED; the MAX78000 has no PLL)",
    cpu_clock_hz=100e6,            # Dev.IPO_SPEED = 100 (tornadocnn.py:85), the Cortex-M4F maximum
    streaming_final_pad=True,      # Dev.SUPPORT_STREAM_NONPAD_FINAL False (tornadocnn.py:42)
    streaming_passthrough=True,    # Dev.SUPPORT_STREAMING_PASSTHROUGH True (tornadocnn.py:47)
    multipass_pool_passthrough=False,  # Dev.MAX_POOL_PASSES = 1 (tornadocnn.py:72)
    multipass_padded_conv1d=True,  # Dev.SUPPORT_MULTIPASS_PADDED_CONV1D True (tornadocnn.py:44)
)

MAX78002_HW = Ai8xHardware(
    name="max78002",
    part="MAX78002",
    max_layers=128,                # DevAI87.MAX_LAYERS (tornadocnn.py:333); README:1164
    kernel_columns=4096,           # DevAI87.MASK_WIDTH_SMALL = 4 x 1024 (tornadocnn.py:458-460)
    large_kernel_columns=5120,     # DevAI87.MASK_WIDTH_LARGE = 4096 + 4 x 256 (tornadocnn.py:461-462) on
    #                                processors p % 16 == 0 (Dev.mask_large, :94-98); README:1176
    bias_bank_bytes=2048,          # DevAI87.BIAS_SIZE (tornadocnn.py:456)
    data_instance_bytes=80 * 1024,  # DevAI87.INSTANCE_WIDTH = 5120 words (:477) x 16 bytes; README:1181
    max_dim=2047,                  # DevAI87.MAX_CNT_BITS = 11 (tornadocnn.py:381); README:1166 "2047"
    clock_hz=200e6,                # DevAI87.PLL_SPEED = 200 (tornadocnn.py:540); PLL and pipeline on by
    #                                default, divider 1 (backend/max7800x.py:238-251); README:3067
    clock_source="PLL 200 MHz, divider 1 (izer/tornadocnn.py DevAI87.PLL_SPEED; the tool turns the PLL "
                 "and the pipeline on by default, izer/backend/max7800x.py; README: 'runs at 200 MHz')",
    cpu_clock_hz=120e6,            # DevAI87.IPO_SPEED = 120 (tornadocnn.py:538; main.c "Switch to 120 MHz clock")
    streaming_final_pad=False,     # DevAI87.SUPPORT_STREAM_NONPAD_FINAL True (tornadocnn.py:508)
    streaming_passthrough=False,   # DevAI87.SUPPORT_STREAMING_PASSTHROUGH False (tornadocnn.py:512)
    multipass_pool_passthrough=True,  # DevAI87.MAX_POOL_PASSES = 2**16 (tornadocnn.py:529)
    multipass_padded_conv1d=False,  # DevAI87.SUPPORT_MULTIPASS_PADDED_CONV1D False (:510); README:1126
)

AI8X_HARDWARE: dict[str, Ai8xHardware] = {hw.name: hw for hw in (MAX78000_HW, MAX78002_HW)}
"""The described chips by name."""


def ai8x_hardware(which: str | Ai8xHardware) -> Ai8xHardware:
    """The :class:`Ai8xHardware` named ``which`` (``"max78000"``, ``"MAX78002"``, ...), or ``which`` itself.

    Raises:
        InputError: for a name that is not described (the message lists them).
    """
    if isinstance(which, Ai8xHardware):
        return which
    hw = AI8X_HARDWARE.get(str(which).lower())
    if hw is None:
        raise InputError(f"unknown accelerator {which!r}; described: {', '.join(AI8X_HARDWARE)}")
    return hw
