"""Search targets (a registry, like spaces and devices): what differs between the MAX78000-family
accelerators and the devices with predicted or measured latency lives behind :class:`Target`."""

from __future__ import annotations

from ._ai8x import CSV_COLUMNS, MAX78000_DEFAULT_BITS, Ai8xTarget, auto_bits
from ._base import (
    Target,
    TrialCheck,
    UnknownTargetError,
    get_target,
    list_targets,
    register_target,
    space_in_run_name,
    supernet_files,
    target_for_device,
    target_for_run,
    target_for_space,
)
from ._export import export_network
from ._mobile import (
    DEFAULT_LATENCY_MARGIN,
    FBNET_NASWOT_BATCH,
    MOBILE_CSV_COLUMNS,
    MOBILE_SPACES,
    MobileTarget,
    mobile_figures,
)

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_LATENCY_MARGIN",
    "FBNET_NASWOT_BATCH",
    "MAX78000_DEFAULT_BITS",
    "MOBILE_CSV_COLUMNS",
    "MOBILE_SPACES",
    "Ai8xTarget",
    "MobileTarget",
    "Target",
    "TrialCheck",
    "UnknownTargetError",
    "auto_bits",
    "export_network",
    "get_target",
    "list_targets",
    "mobile_figures",
    "register_target",
    "space_in_run_name",
    "supernet_files",
    "target_for_device",
    "target_for_run",
    "target_for_space",
]
