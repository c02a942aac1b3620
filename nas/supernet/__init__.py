"""Weight-sharing supernets: the MAX78000 ``ai8x`` one (``_ai8x``), the phones' ``fbnet`` one
(``_fbnet``), and what they share (``_common``: settings, cache, training loop)."""

from __future__ import annotations

from ._ai8x import (
    LoadedSupernet,
    covered_space,
    first_unit_bytes,
    format_duration,
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
from ._sizing import (
    DEFAULT_TIME_BUDGETS,
    Sizing,
    StepTimer,
    default_time_budget,
    measure_step_seconds,
    predict_train_seconds,
    read_sizing_memo,
    size_widths,
    sizing_memo_path,
    write_sizing_memo,
)

__all__ = [
    "CALIBRATION_IMAGES",
    "DEFAULT_TIME_BUDGETS",
    "FBNET_STAGES",
    "FBNET_SUPERNET_DEFAULTS",
    "FORMAT_VERSION",
    "LARGEST",
    "SCHEDULES",
    "SMALLEST",
    "Sizing",
    "StepTimer",
    "SUPERNET_SPACES",
    "LoadedFBNetSupernet",
    "LoadedSupernet",
    "SupernetCacheError",
    "SupernetSettings",
    "accuracy",
    "cache_dir",
    "covered_space",
    "default_time_budget",
    "fbnet_supernet_key",
    "finetune",
    "first_unit_bytes",
    "format_duration",
    "get_fbnet_supernet",
    "get_supernet",
    "inherited_module",
    "largest_macs",
    "measure_step_seconds",
    "predict_train_seconds",
    "read_sizing_memo",
    "recalibrate_bn",
    "size_widths",
    "sizing_memo_path",
    "supernet_key",
    "unit_cap",
    "width_cap",
    "write_sizing_memo",
]
