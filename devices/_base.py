"""The device base class: what every latency target (accelerator, phone, registered board) shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from search_spaces import InputError, Network

__all__ = ["Device", "NoLatencyError"]


class NoLatencyError(InputError):
    """A device asked for the latency of something it has no latency for (another space)."""


class Device(ABC):
    """A target the search can ask for a latency.

    Attributes:
        name: Registry name (set by :func:`devices.register_device`).
        kind: ``"accelerator"`` (a rule checker with an analytical cost model), ``"recorded"``
            (a latency table), ``"measured"`` (timed on this machine) or ``"registered"`` (a
            user's device, adapted from a few samples).
        description: One line for ``nas device list``.
        spaces: Names of the search spaces this device has latency for.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    spaces: ClassVar[list[str]] = []

    @abstractmethod
    def latency_ms(self, network: Network) -> float:
        """Latency of one inference of ``network`` in milliseconds."""

    def predict(
        self, space: str, archs: Sequence[Any], return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Latency (ms) of architectures of search space ``space`` (and its std with ``return_std``).

        The default serves accelerators: ``latency_ms(space.network(arch))`` for a space in
        :attr:`spaces`, std 0 (an analytical model).

        Raises:
            NoLatencyError: if the device has no latency for ``space``.
        """
        if space not in self.spaces:
            raise NoLatencyError(
                f"device {self.name!r} has no latency for search space {space!r}"
                + (f"; it has latency for: {', '.join(self.spaces)}" if self.spaces else "")
            )
        from search_spaces import get_space

        sp = get_space(space)
        y = np.array([self.latency_ms(sp.network(a)) for a in archs], dtype=np.float64)
        return (y, np.zeros_like(y)) if return_std else y

    def limits(self) -> dict[str, str]:
        """Resource limits a candidate must respect, as short labelled strings (may be empty)."""
        return {}

    def info(self) -> dict[str, Any]:
        """Name, kind, description, spaces and limits as a JSON-serialisable mapping."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "spaces": list(self.spaces),
            "limits": self.limits(),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"
