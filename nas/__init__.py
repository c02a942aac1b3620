"""nas: hardware-aware search for small quantized networks.

Search API (what ``nas search`` runs)::

    >>> from nas import SearchConfig, run_search
    >>> result = run_search(SearchConfig(device="max78000", budget_bytes=400_000, trials=60))
    >>> result.pareto[0]["latency_ms"], result.run_dir
"""

from __future__ import annotations

from ._accuracy import (
    AccuracyResult,
    Estimator,
    Naswot,
    ShortTraining,
    SupernetAccuracy,
    make_estimator,
)
from ._data import DataError, Dataset, load_dataset, load_image_folder, load_mnist5k, load_npz
from ._search import (
    SearchConfig,
    SearchProgress,
    SearchResult,
    default_run_name,
    run_search,
    validate,
)
from ._supernet import (
    LoadedSupernet,
    SupernetCacheError,
    SupernetSettings,
    get_supernet,
    inherited_module,
)

__all__ = [
    "AccuracyResult",
    "DataError",
    "Dataset",
    "Estimator",
    "Naswot",
    "SearchConfig",
    "SearchProgress",
    "SearchResult",
    "ShortTraining",
    "SupernetAccuracy",
    "SupernetCacheError",
    "SupernetSettings",
    "LoadedSupernet",
    "get_supernet",
    "inherited_module",
    "load_image_folder",
    "default_run_name",
    "load_dataset",
    "load_mnist5k",
    "load_npz",
    "make_estimator",
    "run_search",
    "validate",
]
