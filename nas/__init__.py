"""nas: hardware-aware search for small quantized networks.

Search API (what ``nas search`` runs)::

    >>> from nas import SearchConfig, run_search
    >>> result = run_search(SearchConfig(device="max78000", budget_bytes=400_000, trials=60))
    >>> result.pareto[0]["latency_ms"], result.run_dir

QAT and export of the winners (what ``nas qat`` runs)::

    >>> from nas import QatConfig, run_qat
    >>> qat = run_qat(result.run_dir, QatConfig(top=3))
    >>> [(n.arch, n.float_test_acc, n.quant_test_acc) for n in qat.networks]
"""

from __future__ import annotations

from .data import DataError, Dataset, load_dataset, load_image_folder, load_mnist5k, load_npz
from .estimators import (
    AccuracyResult,
    Estimator,
    Naswot,
    ShortTraining,
    SupernetAccuracy,
    make_estimator,
)
from .export import (
    checkpoint_state,
    export_onnx_int8,
    load_checkpoint,
    synthesis_yaml,
)
from .qat import QatConfig, QatNetwork, QatResult, run_qat
from .search import (
    SearchConfig,
    SearchProgress,
    SearchResult,
    default_run_name,
    run_search,
    validate,
)
from .supernet import (
    LoadedSupernet,
    SupernetCacheError,
    SupernetSettings,
    get_supernet,
    inherited_module,
)
from .targets import Target, export_network, get_target, list_targets, register_target

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
    "QatConfig",
    "QatNetwork",
    "QatResult",
    "run_qat",
    "export_network",
    "export_onnx_int8",
    "checkpoint_state",
    "load_checkpoint",
    "synthesis_yaml",
    "Target",
    "get_target",
    "list_targets",
    "register_target",
]
