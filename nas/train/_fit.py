"""The training loop of ``nas qat`` (and the data it trains on as tensors)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from ..data import Dataset, random_affine
from ._device import backward_step, batch_to, mixed_precision, on_device
from ._evaluate import top1

__all__ = ["accuracy", "fit", "tensors"]


def accuracy(model: Any, x: Any, y: Any, batch: int = 256) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on tensors ``x``, ``y``."""
    return top1(model, x, y, batch=batch)[0]


def fit(model: Any, xs: tuple[Any, ...], epochs: int, lr: float, batch: int, seed: int,
         on_epoch: Callable[[int, float], None] | None, anneal_epochs: int = 0,
         augment: Any = None, *, mixed: bool = False) -> tuple[float, int]:
    """Adam + cosine decay for ``epochs``; keep the state of the best validation epoch.

    Runs on the device of ``model``'s parameters (the tensors ``xs`` may be on the CPU: their
    batches are moved). ``mixed``: a float phase, which may use mixed precision on CUDA
    (:func:`nas.train.mixed_precision`; never for fake-quantised training or for scoring).

    ``anneal_epochs`` > 0 (MAX78000 QAT): ``model.set_soft`` goes linearly from 1 to 0 over
    the first ``anneal_epochs`` epochs; only later epochs (pure quantised arithmetic) can be
    kept as the best. ``augment`` (an :class:`~nas.data.Augment`): training batches are
    randomly transformed (seeded). Returns (best validation accuracy, its epoch, 1-based; 0 =
    the starting weights).
    """
    import torch
    from torch.nn import functional as F

    x_tr, y_tr, x_va, y_va = xs
    device = next(model.parameters()).device
    autocast, scaler = mixed_precision(device, mixed and not anneal_epochs)
    gen = np.random.default_rng(seed)
    tgen = torch.Generator().manual_seed(seed)
    n = len(y_tr)
    steps = max(1, -(-n // batch))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    best = accuracy(model, x_va, y_va) if anneal_epochs == 0 else -1.0
    best_epoch, best_state = 0, copy.deepcopy(model.state_dict())
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.from_numpy(gen.permutation(n)).to(x_tr.device)
        for s in range(steps):
            if anneal_epochs:
                model.set_soft(max(0.0, 1.0 - ((epoch - 1) * steps + s) / (anneal_epochs * steps)))
            idx = order[s * batch : (s + 1) * batch]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            xb = batch_to(x_tr[idx], device)
            if augment is not None:
                xb = random_affine(xb, tgen, augment)
            opt.zero_grad(set_to_none=True)
            with autocast():
                loss = F.cross_entropy(model(xb), batch_to(y_tr[idx], device))
            backward_step(loss, opt, scaler)
            sched.step()
        if anneal_epochs:
            model.set_soft(0.0 if epoch >= anneal_epochs else 1.0 - epoch / anneal_epochs)
        acc = accuracy(model, x_va, y_va)
        if acc > best and epoch >= anneal_epochs:
            best, best_epoch, best_state = acc, epoch, copy.deepcopy(model.state_dict())
        if on_epoch:
            on_epoch(epoch, acc)
    if anneal_epochs:
        model.set_soft(0.0)
    model.load_state_dict(best_state)
    model.eval()
    return best, best_epoch


def tensors(data: Dataset, max_train: int | None, max_eval: int | None = None,
            device: Any = "cpu") -> tuple[Any, ...]:
    """(x_train, y_train, x_val, y_val, x_test, y_test) as tensors on ``device``, copied there
    once (:func:`nas.train.on_device`), the first ``max_train`` / ``max_eval`` of each split."""
    n = len(data.y_train) if max_train is None else min(max_train, len(data.y_train))
    m = None if max_eval is None else max(1, int(max_eval))
    return (on_device(data.x_train, device)[:n], on_device(data.y_train, device)[:n],
            on_device(data.x_val, device)[:m], on_device(data.y_val, device)[:m],
            on_device(data.x_test, device)[:m], on_device(data.y_test, device)[:m])
