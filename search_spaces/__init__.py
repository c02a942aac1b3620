"""Search spaces: architectures, their encodings, torch modules and hardware network descriptions."""

from __future__ import annotations

from typing import Any

from ._ai8x import (  # registers ai8x
    Ai8xSpace,
    build_module,
    fold_bn,
    quantize_weight,
    vendor_arithmetic,
)
from ._base import ArchitectureError, SearchSpace
from ._errors import InputError
from ._fbnet import FBNetSpace  # registers fbnet
from ._fbnet_cost import RAM_NOTE, SIZE_NOTE, FBNetCost, fbnet_cost
from ._hardware import AI8X_HARDWARE, MAX78000_HW, MAX78002_HW, Ai8xHardware, ai8x_hardware
from ._nasbench201 import NasBench201Space, nasbench201_feature_table  # registers nasbench201
from ._network import Layer, Network, NetworkFormatError
from ._ofa_mbv3 import OFAMobileNetV3Space, ofa_mbv3_layer_geometry  # noqa: F401  (registers ofa_mbv3)
from ._registry import UnknownSpaceError, get_space, list_spaces, register_space

# Names of the fbnet torch modules, imported on first use (importing torch takes seconds; the
# command line's device and predictor commands never need it).
_TORCH_NAMES = ("FBNET_BLOCKS", "HEAD_CHANNELS", "INT8_WEIGHT_MAX", "SKIP_OP", "STEM_CHANNELS", "build_fbnet",
                "calibrate_int8", "layer_geometry", "prepare_int8_qat", "Int8QatFBNet")


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        from . import _fbnet_torch

        return getattr(_fbnet_torch, name)
    raise AttributeError(f"module 'search_spaces' has no attribute {name!r}")


__all__ = [
    *_TORCH_NAMES,
    "AI8X_HARDWARE",
    "MAX78000_HW",
    "MAX78002_HW",
    "Ai8xHardware",
    "ai8x_hardware",
    "Ai8xSpace",
    "FBNetCost",
    "FBNetSpace",
    "NasBench201Space",
    "ofa_mbv3_layer_geometry",
    "RAM_NOTE",
    "SIZE_NOTE",
    "build_module",
    "fbnet_cost",
    "fold_bn",
    "nasbench201_feature_table",
    "quantize_weight",
    "vendor_arithmetic",
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
