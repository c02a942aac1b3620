"""Training and scoring: one torch session set-up, the torch device (``--torch-device``), the fit
loop, the evaluation loop."""

from __future__ import annotations

from ._device import (
    TORCH_DEVICES,
    backward_step,
    batch_to,
    check_torch_device,
    eval_batch,
    exact_scoring,
    is_cuda,
    mixed_precision,
    on_device,
    resolve_torch_device,
    torch_device_name,
)
from ._evaluate import top1
from ._fit import accuracy, fit, tensors
from ._progress import progress, progress_to
from ._session import torch_session

__all__ = ["TORCH_DEVICES", "accuracy", "backward_step", "batch_to", "check_torch_device", "eval_batch",
           "exact_scoring", "fit", "is_cuda", "mixed_precision", "on_device", "progress", "progress_to",
           "resolve_torch_device", "tensors",
           "top1", "torch_device_name", "torch_session"]
