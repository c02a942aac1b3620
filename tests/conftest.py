"""Fixtures shared across the test packages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, not yet existing ``$NAS_HOME`` (the user-device registry)."""
    h = tmp_path / "nashome"
    monkeypatch.setenv("NAS_HOME", str(h))
    return h


@pytest.fixture
def snapshot(home: Path) -> Callable[[], dict[str, bytes]]:
    """A function returning every file under ``$NAS_HOME`` with its bytes (to prove nothing changed)."""

    def take() -> dict[str, bytes]:
        if not home.exists():
            return {}
        return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}

    return take


@pytest.fixture
def int8_fbnet() -> Callable[[], Any]:
    """Builds a calibrated int8 QAT FBNet (16x16 grey input, residual and non-residual blocks, a
    skip, grouped convs) whose BatchNorm statistics are away from the identity, so that its
    folded biases matter."""
    import torch
    from torch import nn

    from search_spaces import get_space
    from search_spaces._fbnet_torch import calibrate_int8, prepare_int8_qat

    def build(seed: int = 0) -> Any:
        torch.manual_seed(seed)
        model = get_space("fbnet", in_channels=1, num_classes=10, input_size=16).build("7818488874147327324245")
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    n = m.num_features
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.5)
                    m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                    m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        model.eval()
        return calibrate_int8(prepare_int8_qat(model), torch.rand(64, 1, 16, 16, generator=g) * 2 - 1)

    return build
