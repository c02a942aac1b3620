"""Top-1 accuracy of a module: the one evaluation loop of nas/."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from ._device import batch_to, eval_batch, exact_scoring

__all__ = ["top1"]


def top1(model: Any, x: Any, y: Any, *, n: int = 0, batch: int = 256) -> tuple[float, int]:
    """(top-1 accuracy, samples scored) of ``model`` in eval mode on the first ``n`` samples (0: all).

    ``x`` and ``y`` are NumPy arrays or torch tensors; they are scored on the model's device in
    batches of ``batch`` (larger on CUDA: :func:`nas.train.eval_batch`, halved while a batch
    does not fit in the GPU's memory) without gradients and without mixed precision. A network in the chip's exact arithmetic (``exact``, e.g. an ai8x
    network after :func:`search_spaces.vendor_arithmetic`) is scored without cuDNN on CUDA
    (:func:`nas.train.exact_scoring`). An empty set scores 0.0.
    """
    import torch

    n = len(y) if n == 0 else min(n, len(y))
    xt = x[:n] if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x[:n]))
    yt = y[:n] if isinstance(y, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(y[:n]))
    p = next(iter(model.parameters()), None)
    device = p.device if p is not None else xt.device
    batch = eval_batch(device, batch)
    model.eval()
    correct = 0
    exact = exact_scoring(device) if getattr(model, "exact", False) else contextlib.nullcontext()
    s = 0
    with torch.no_grad(), exact:
        while s < n:
            try:
                pred = model(batch_to(xt[s : s + batch], device)).argmax(1)
            except torch.cuda.OutOfMemoryError:  # a batch that does not fit: halve it (the CPU never gets here)
                if batch <= 1:
                    raise
                batch //= 2
                torch.cuda.empty_cache()
                continue
            correct += int((pred == batch_to(yt[s : s + batch], device)).sum())
            s += batch
    return correct / max(1, n), n
