"""Devices: where a network runs and how long it takes.

A :class:`Device` answers ``latency_ms(network)``; accelerators such as the MAX78000 also check
the hardware rules (:meth:`MAX78000.report`). Devices are registered by name::

    >>> import devices
    >>> dev = devices.get_device("max78000")
    >>> dev.report(network).fits
"""

from __future__ import annotations

from ._base import Device
from ._max78000 import (
    MAX78000,
    Max78000Report,
    Placement,
    expansion,
    kernel_columns,
    layer_cycles,
)
from ._registry import UnknownDeviceError, get_device, list_devices, register_device

__all__ = [
    "MAX78000",
    "Device",
    "Max78000Report",
    "Placement",
    "UnknownDeviceError",
    "expansion",
    "get_device",
    "kernel_columns",
    "layer_cycles",
    "list_devices",
    "register_device",
]
