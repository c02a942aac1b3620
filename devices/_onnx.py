"""ONNX export of search-space architectures (legacy exporter, batch 1, opset 17)."""

from __future__ import annotations

import os
import warnings
from typing import Any

from search_spaces import InputError, get_space

__all__ = ["export_onnx", "BUILDABLE_SPACES", "KitError"]

OPSET = 17
# Spaces whose build() gives a torch module (ofa_mbv3 has no module yet).
BUILDABLE_SPACES: tuple[str, ...] = ("fbnet", "nasbench201")


class KitError(InputError):
    """A kit or a measurement that cannot be made (a space without modules, an occupied folder)."""


def check_buildable(space: str) -> str:
    """``space`` if its architectures can be exported to ONNX.

    Raises:
        KitError: naming the spaces that can.
    """
    get_space(space)  # UnknownSpaceError for a bad name
    if space not in BUILDABLE_SPACES:
        raise KitError(
            f"search space {space!r} has no torch modules yet, so it cannot be exported to ONNX; "
            f"kits and host measurement support: {', '.join(BUILDABLE_SPACES)}"
        )
    return space


def export_onnx(space: str, arch: Any, path: str | os.PathLike[str], *, seed: int = 0, batch: int = 1,
                input_hw: int | None = None) -> str:
    """Write the ONNX model (input ``input``, float32, fixed shape) of ``arch``; returns the path.

    Weights are random (seeded): latency does not depend on their values. ``batch`` (default 1)
    and ``input_hw`` (square input side; default the space's, 32) fix the input shape.
    """
    import torch

    check_buildable(space)
    sp = get_space(space)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tracing runs one forward pass; extra threads only contend on busy cores
    try:
        torch.manual_seed(seed)
        module = sp.build(arch).eval()
        c, h, w = module.input_size
        x = torch.randn(batch, c, input_hw or h, input_hw or w)
        path = os.fspath(path)
        tmp = path + ".tmp"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), tmp, dynamo=False, opset_version=OPSET,
                              input_names=["input"], output_names=["logits"])
        os.replace(tmp, path)
    finally:
        torch.set_num_threads(threads)
    return path
