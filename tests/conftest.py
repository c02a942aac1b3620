"""Fixtures shared across the test packages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
