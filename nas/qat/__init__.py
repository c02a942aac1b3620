"""``nas qat``: quantisation-aware fine-tuning of a search's winners, then export."""

from __future__ import annotations

from ._qat import (
    DEFAULT_EPOCHS,
    DEFAULT_QAT_EPOCHS,
    TABLE_HEADER,
    QatConfig,
    QatNetwork,
    QatProgress,
    QatResult,
    choose_rows,
    device_figures,
    load_run,
    network_dict,
    qat_markdown,
    resolve_run,
    run_data,
    run_qat,
    table_rows,
    train_network,
    used_supernet_estimate,
    validate_qat_config,
)

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_QAT_EPOCHS",
    "TABLE_HEADER",
    "QatConfig",
    "QatNetwork",
    "QatProgress",
    "QatResult",
    "choose_rows",
    "device_figures",
    "load_run",
    "network_dict",
    "qat_markdown",
    "resolve_run",
    "run_data",
    "run_qat",
    "table_rows",
    "train_network",
    "used_supernet_estimate",
    "validate_qat_config",
]
