"""Search spaces: architectures, their encodings, torch modules and hardware network descriptions."""

from __future__ import annotations

from ._base import ArchitectureError, SearchSpace
from ._errors import InputError
from ._network import Layer, Network, NetworkFormatError
from ._registry import UnknownSpaceError, get_space, list_spaces, register_space

__all__ = [
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
