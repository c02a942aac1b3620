"""Weight-sharing supernets: the MAX78000 ``ai8x`` one (``_ai8x``), the phones' ``fbnet`` one
(``_fbnet``), and what they share (``_common``: settings, cache, training loop)."""

from __future__ import annotations

from ._ai8x import (
    LoadedSupernet,
    covered_space,
    largest_macs,
    supernet_key,
    unit_cap,
    width_cap,
)
from ._common import (
    FORMAT_VERSION,
    SCHEDULES,
    SupernetCacheError,
    SupernetSettings,
    accuracy,
    finetune,
    recalibrate_bn,
)
from ._fbnet import (
    CALIBRATION_IMAGES,
    FBNET_STAGES,
    FBNET_SUPERNET_DEFAULTS,
    LARGEST,
    SMALLEST,
    LoadedFBNetSupernet,
    fbnet_supernet_key,
    get_fbnet_supernet,
)
from ._get import SUPERNET_SPACES, cache_dir, get_supernet, inherited_module

__all__ = [
    "CALIBRATION_IMAGES",
    "FBNET_STAGES",
    "FBNET_SUPERNET_DEFAULTS",
    "FORMAT_VERSION",
    "LARGEST",
    "SCHEDULES",
    "SMALLEST",
    "SUPERNET_SPACES",
    "LoadedFBNetSupernet",
    "LoadedSupernet",
    "SupernetCacheError",
    "SupernetSettings",
    "accuracy",
    "cache_dir",
    "covered_space",
    "fbnet_supernet_key",
    "finetune",
    "get_fbnet_supernet",
    "get_supernet",
    "inherited_module",
    "largest_macs",
    "recalibrate_bn",
    "supernet_key",
    "unit_cap",
    "width_cap",
]
