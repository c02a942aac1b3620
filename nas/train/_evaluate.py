"""Top-1 accuracy of a module: the one evaluation loop of nas/."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["top1"]


def top1(model: Any, x: Any, y: Any, *, n: int = 0, batch: int = 256) -> tuple[float, int]:
    """(top-1 accuracy, samples scored) of ``model`` in eval mode on the first ``n`` samples (0: all).

    ``x`` and ``y`` are NumPy arrays or torch tensors; they are scored in batches of ``batch``
    without gradients. An empty set scores 0.0.
    """
    import torch

    n = len(y) if n == 0 else min(n, len(y))
    xt = x[:n] if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x[:n]))
    yt = y[:n] if isinstance(y, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(y[:n]))
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, n, batch):
            correct += int((model(xt[s : s + batch]).argmax(1) == yt[s : s + batch]).sum())
    return correct / max(1, n), n
