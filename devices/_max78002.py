"""The MAX78002 CNN accelerator: the MAX78000 family's rules and cycle model with its own figures.

The chip's constants are :data:`search_spaces.MAX78002_HW`, restated from Analog Devices'
synthesis tool (ai8x-synthesis ``izer/tornadocnn.py``, class ``DevAI87``) and README
("Limitations of MAX78002 Networks"): 128 layers; 4,096 kernel-memory columns per processor and
5,120 on processors 0, 16, 32 and 48 (2,396,160 bytes); 4 bias banks of 2,048 bytes; 16
data-memory instances of 80 KiB; rows and columns up to 2,047; the CNN at 200 MHz (PLL, divider
1, pipeline on: the tool's defaults). Rules that differ from the MAX78000: no padding is needed
on the last streaming layer, pass-through layers cannot stream, a padded Conv1d takes at most
64 input channels, and pass-through layers may pool more than 64 channels.

The cycle model is the MAX78000's (``layer_cycles``). The vendor's tool prints no latency
estimate for the MAX78002 (``DevAI87`` leaves ``SUPPORT_LATENCY_CALC`` False); its
``izer/latency.py`` formula differs between the chips only in a pre-read term for layers that
pool after an element-wise operation with more than one pass (``REQUIRE_MP_KERNOFF_MULTIWRITE``,
MAX78000 only), which our layers never have. So the cycles are the vendor's formula evaluated
with the MAX78002's device description, an *extrapolation* the vendor has not published
(stated in :meth:`MAX78002.assumptions`).

Not modelled (our layers cannot express them, or the ``ai8x`` space never makes them): depthwise
convolutions, dilation, layer sequencing and branching, the extra hardware layer the tool inserts
when an average pool follows an element-wise operation
(``REQUIRE_PASSTHROUGH_AVGPOOL_AFTER_ELTWISE``), and the +1/-1 binary weights the tool picks by
itself for a layer whose weight integers are all +1 or -1 (``SUPPORT_BINARY_WEIGHTS``,
``izer/checkpoint.py``; then 1 bit per weight whatever the layer's ``weight_bits``).
"""

from __future__ import annotations

from search_spaces import MAX78002_HW

from ._max78000 import Ai8xAccelerator
from ._registry import register_device

__all__ = ["MAX78002"]


@register_device("max78002")
class MAX78002(Ai8xAccelerator):
    """Analog Devices MAX78002: rule checker, kernel placement and cycle model (options:
    :class:`~devices.Ai8xAccelerator`; defaults: 200 MHz CNN clock, 40 KiB data budget per
    tensor, 120 MHz CPU)."""

    description = "Analog Devices MAX78002 CNN accelerator (vendor rules; MAX78000 cycle model at 200 MHz)"
    hardware = MAX78002_HW

    def _extra_assumptions(self) -> list[str]:
        return [
            "cycles: the MAX78000's estimate (ai8x-synthesis izer/latency.py) with the MAX78002's device "
            "description; the vendor's tool does not estimate MAX78002 latency",
            f"CNN clock {self.clock_hz / 1e6:g} MHz: {self.hardware.clock_source}",
        ]
