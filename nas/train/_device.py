"""The torch device every training and scoring loop of nas/ runs on (``--torch-device``).

* :func:`resolve_torch_device`: ``auto`` (CUDA when ``torch.cuda.is_available()``, else the
  CPU), ``cpu`` or ``cuda``; ``cuda`` without CUDA is an :class:`~search_spaces.InputError`
  naming the fix (one line, exit 2 on the command line).
* :func:`torch_device_name`: how reports name it (``cpu``, ``cuda:0 (NVIDIA H100 80GB HBM3)``).
* :func:`on_device`: a NumPy array as a tensor on the device, copied there once per array and
  device (the CPU shares the array's memory, as before); an array too large for the free GPU
  memory stays on the CPU and loops move its batches (:func:`batch_to`).
* :func:`mixed_precision`: mixed precision for *float* training steps on CUDA only (bf16 where
  the GPU supports it, else fp16 with a ``GradScaler``); never for fake-quantised training or
  for scoring, whose results would change (the chip's arithmetic is computed exactly in float64).
* :data:`EVAL_BATCH_CUDA`: scoring batch on CUDA (BatchNorm is in eval mode there, so the batch
  changes nothing but speed; ``top1`` halves it while it does not fit). Training batches are the
  same on every device: the batch size is part of the result.
* :func:`exact_scoring`: the chip's exact arithmetic (float64) on CUDA without cuDNN.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from search_spaces import InputError

__all__ = ["TORCH_DEVICES", "EVAL_BATCH_CUDA", "resolve_torch_device", "torch_device_name", "check_torch_device",
           "on_device", "batch_to", "mixed_precision", "backward_step", "eval_batch", "exact_scoring", "is_cuda"]

TORCH_DEVICES = ("auto", "cpu", "cuda")
"""The choices of ``--torch-device``."""
EVAL_BATCH_CUDA = 2048
"""Images per scoring batch on CUDA (the CPU keeps each loop's own batch)."""
_FIX = ("use --torch-device cpu (or auto), or run on a machine with an NVIDIA GPU and a CUDA build of torch "
        "(https://pytorch.org/get-started/locally/)")


def check_torch_device(choice: str) -> str:
    """``choice`` lower-cased when it is one of :data:`TORCH_DEVICES` (an :class:`InputError` if not);
    imports no torch."""
    c = str(choice).strip().lower()
    if c not in TORCH_DEVICES:
        raise InputError(f"unknown --torch-device {choice!r}; use auto, cpu or cuda")
    return c


def resolve_torch_device(choice: str = "auto") -> str:
    """The torch device ``choice`` means here: ``"cpu"`` or ``"cuda:N"`` (the current CUDA device).

    Raises:
        InputError: ``cuda`` where ``torch.cuda.is_available()`` is False (names the fix).
    """
    import torch

    c = check_torch_device(choice)
    if c == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        if c == "cuda":
            raise InputError(f"--torch-device cuda: torch {torch.__version__} finds no CUDA device "
                             f"(torch.cuda.is_available() is False); {_FIX}")
        return "cpu"
    return f"cuda:{torch.cuda.current_device()}"


def is_cuda(device: Any) -> bool:
    """Whether ``device`` (a name or ``torch.device``) is a CUDA device."""
    return str(device).startswith("cuda")


def torch_device_name(device: str) -> str:
    """``cpu``, or ``cuda:0 (GPU name)``, as reports and ``train_log.csv`` name the device."""
    if not is_cuda(device):
        return "cpu"
    import torch

    return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"


def eval_batch(device: Any, batch: int) -> int:
    """The scoring batch on ``device``: ``batch`` on the CPU, :data:`EVAL_BATCH_CUDA` on CUDA."""
    return max(batch, EVAL_BATCH_CUDA) if is_cuda(device) else batch


# (id of the array, device) -> (weak reference to the array, its tensor there)
_ON_DEVICE: dict[tuple[int, str], tuple[Any, Any]] = {}


def on_device(a: np.ndarray, device: Any = "cpu") -> Any:
    """``a`` as a torch tensor on ``device``, copied there once per array (later calls return the
    same tensor while ``a`` lives). On the CPU: ``torch.from_numpy`` (no copy). An array larger
    than half the GPU's free memory stays on the CPU (pinned); :func:`batch_to` moves its
    batches."""
    import torch

    dev = str(device)
    if not is_cuda(dev):
        return torch.from_numpy(np.ascontiguousarray(a))
    key = (id(a), dev)
    hit = _ON_DEVICE.get(key)
    if hit is not None and hit[0]() is a:
        return hit[1]
    t = torch.from_numpy(np.ascontiguousarray(a))
    free, _total = torch.cuda.mem_get_info(torch.device(dev))
    t = t.to(dev) if t.numel() * t.element_size() <= free // 2 else t.pin_memory()
    try:
        ref = weakref.ref(a)
    except TypeError:  # not weak-referenceable: not cached
        return t
    _ON_DEVICE[key] = (ref, t)
    weakref.finalize(a, _ON_DEVICE.pop, key, None)
    return t


def batch_to(t: Any, device: Any) -> Any:
    """``t`` on ``device`` (nothing happens when it is there already)."""
    return t if str(t.device) == str(device) or (t.device.type == "cpu" and not is_cuda(device)) \
        else t.to(device, non_blocking=True)


def mixed_precision(device: Any, enabled: bool = True) -> tuple[Any, Any]:
    """Mixed precision for a *float* training phase: ``(autocast, scaler)``. On CUDA (``enabled``)
    ``autocast()`` is ``torch.autocast`` in bf16 where the GPU supports it, else in fp16 with
    ``scaler`` a ``GradScaler``; on the CPU (or not ``enabled``) a no-op and None. Wrap the
    forward pass and loss in ``autocast()``, then call :func:`backward_step`."""
    if not (enabled and is_cuda(device)):
        return contextlib.nullcontext, None
    import functools

    import torch

    bf16 = torch.cuda.is_bf16_supported()
    scaler = None if bf16 else torch.amp.GradScaler("cuda")
    return functools.partial(torch.autocast, "cuda", dtype=torch.bfloat16 if bf16 else torch.float16), scaler


def backward_step(loss: Any, opt: Any, scaler: Any = None) -> None:
    """``loss.backward()`` and ``opt.step()``, through ``scaler`` (fp16) when given."""
    if scaler is None:
        loss.backward()
        opt.step()
        return
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()


@contextlib.contextmanager
def exact_scoring(device: Any) -> Iterator[None]:
    """Scoring in the chip's exact arithmetic (float64 sums of integers): on CUDA without cuDNN,
    whose FFT and Winograd convolutions are not exact; torch's own CUDA convolution is a plain
    GEMM, exact on integers below 2^53 like the CPU's. Nothing on the CPU."""
    if not is_cuda(device):
        yield
        return
    import torch

    with torch.backends.cudnn.flags(enabled=False):
        yield
