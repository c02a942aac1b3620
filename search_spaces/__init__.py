"""Search spaces: architectures, their encodings, torch modules and hardware network descriptions."""

from __future__ import annotations

from ._ai8x import Ai8xSpace  # (registers ai8x)
from ._base import ArchitectureError, SearchSpace
from ._errors import InputError
from ._fbnet import FBNetSpace  # noqa: F401  (registers fbnet)
from ._hardware import AI8X_HARDWARE, MAX78000_HW, MAX78002_HW, Ai8xHardware, ai8x_hardware
from ._nasbench201 import NasBench201Space  # noqa: F401  (registers nasbench201)
from ._network import Layer, Network, NetworkFormatError
from ._ofa_mbv3 import OFAMobileNetV3Space  # noqa: F401  (registers ofa_mbv3)
from ._registry import UnknownSpaceError, get_space, list_spaces, register_space

__all__ = [
    "AI8X_HARDWARE",
    "MAX78000_HW",
    "MAX78002_HW",
    "Ai8xHardware",
    "Ai8xSpace",
    "ai8x_hardware",
    "ArchitectureError",
    "InputError",
    "Layer",
    "Network",
    "NetworkFormatError",
    "SearchSpace",
    "UnknownSpaceError",
    "get_space",
    "list_spaces",
    "register_space",
]
