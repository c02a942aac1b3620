"""The device base class: what every latency target (accelerator, phone, registered board) shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from search_spaces import Network

__all__ = ["Device"]


class Device(ABC):
    """A target the search can ask for a latency.

    Attributes:
        name: Registry name (set by :func:`devices.register_device`).
        kind: ``"accelerator"`` (a rule checker with an analytical cost model), and later
            ``"recorded"``, ``"measured"`` or ``"registered"``.
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

    def info(self) -> dict[str, Any]:
        """Name, kind, description and spaces as a JSON-serialisable mapping."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "spaces": list(self.spaces),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"
