"""One torch session set-up for every training and scoring loop of nas/."""

from __future__ import annotations

__all__ = ["torch_session"]


def torch_session(threads: int, seed: int | None = None) -> None:
    """Set torch's intra-op threads (0 leaves torch's default), flush denormals and seed torch.

    Fake-quantised networks drive some values into the denormal range, which made training
    steps several times slower on an x86 CPU when we tried; flushing them avoids that.

    Args:
        threads: intra-op threads (0: torch's default).
        seed: ``torch.manual_seed`` (None: the generator is left as it is).
    """
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    if seed is not None:
        torch.manual_seed(seed)
