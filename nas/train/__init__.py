"""Training and scoring: one torch session set-up, the fit loop, the evaluation loop."""

from __future__ import annotations

from ._evaluate import top1
from ._fit import accuracy, fit, tensors
from ._session import torch_session

__all__ = ["accuracy", "fit", "tensors", "top1", "torch_session"]
