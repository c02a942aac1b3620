"""One torch session set-up for every training and scoring loop of nas/."""

from __future__ import annotations

__all__ = ["torch_session"]


def torch_session(threads: int, seed: int | None = None) -> None:
    """Set torch's intra-op threads (0 leaves torch's default), flush denormals and seed torch.

    Fake-quantised networks drive some values into the denormal range, which made training
    steps several times slower on an x86 CPU when we tried; flushing them avoids that. On CUDA,
    TF32 is switched off (PyTorch lets cuDNN convolutions use it by default): float32 then means
    float32 on every device, so results differ from the CPU's by float noise only (the float
    training phases may still use mixed precision, :func:`nas.train.mixed_precision`).

    Args:
        threads: intra-op threads (0: torch's default).
        seed: ``torch.manual_seed`` (None: the generator is left as it is; it seeds CUDA too).
    """
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if seed is not None:
        torch.manual_seed(seed)
