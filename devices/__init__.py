"""Devices: where a network runs and how long it takes.

Built-in devices: the MAX78000 and MAX78002 accelerators (rule checker and cycle model,
``latency_ms(network)``),
``host-cpu`` (this machine, measured with onnxruntime) and the recorded devices of the latency
tables (phones first: pixel2, pixel3, samsung_a50, samsung_s7, essential_ph_1; raspi4, GPUs,
server CPUs, ...). Users register their own devices from ten measured samples; those live in
``$NAS_HOME/devices``. Devices with latency for search-space architectures answer
``predict(space, archs, return_std=True)``::

    >>> import devices
    >>> dev = devices.get_device("max78000")
    >>> dev.report(network).fits
    >>> ms, std = devices.get_device("pixel3").predict("fbnet", archs, return_std=True)
    >>> devices.write_kit("fbnet", "kit/")                     # 10 ONNX models + measure.py
    >>> s = devices.read_samples("samples.csv", "fbnet")
    >>> devices.register_space_device("my-phone", s, source="samples.csv")
"""

from __future__ import annotations

from ._base import Device, NoLatencyError
from ._host import HostCPU, cpu_name, measure_archs
from ._kit import write_kit
from ._loo import LooResult, leave_one_out
from ._lookup import get_device, list_devices
from ._max78000 import (
    MAX78000,
    Ai8xAccelerator,
    Ai8xReport,
    Max78000Report,
    Placement,
    expansion,
    kernel_columns,
    layer_cycles,
)
from ._max78002 import MAX78002
from ._measure import Timing, time_models
from ._onnx import BUILDABLE_SPACES, KitError, check_buildable, export_onnx
from ._recorded import PHONES, RecordedDevice, recorded_devices  # noqa: I001  (registers them)
from ._registry import UnknownDeviceError, builtin_devices, register_device
from ._space import Estimate, SpaceDevice
from ._user import (
    CalibratedMAX78000,
    RegisteredDevice,
    RegistryError,
    Samples,
    SamplesError,
    check_free,
    check_samples,
    devices_dir,
    load_user_device,
    nas_home,
    read_samples,
    register_max78000_device,
    register_space_device,
    remove_user_device,
    user_device_names,
)

__all__ = [
    "BUILDABLE_SPACES",
    "MAX78000",
    "MAX78002",
    "Ai8xAccelerator",
    "Ai8xReport",
    "PHONES",
    "CalibratedMAX78000",
    "Device",
    "Estimate",
    "HostCPU",
    "KitError",
    "LooResult",
    "Max78000Report",
    "NoLatencyError",
    "Placement",
    "RecordedDevice",
    "RegisteredDevice",
    "RegistryError",
    "Samples",
    "SamplesError",
    "SpaceDevice",
    "Timing",
    "UnknownDeviceError",
    "builtin_devices",
    "check_buildable",
    "check_free",
    "check_samples",
    "cpu_name",
    "devices_dir",
    "expansion",
    "export_onnx",
    "get_device",
    "kernel_columns",
    "layer_cycles",
    "leave_one_out",
    "list_devices",
    "load_user_device",
    "measure_archs",
    "nas_home",
    "read_samples",
    "recorded_devices",
    "register_device",
    "register_max78000_device",
    "register_space_device",
    "remove_user_device",
    "time_models",
    "user_device_names",
    "write_kit",
]
