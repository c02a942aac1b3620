"""Devices that give the latency of search-space architectures (phones, boards, this CPU)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_spaces import Network, get_space

from ._base import Device, NoLatencyError

__all__ = ["SpaceDevice", "Estimate"]


@dataclass(frozen=True)
class Estimate:
    """Latencies of architectures on one device, with their uncertainty and where they come from.

    Attributes:
        space: search-space name.
        archs: canonical string form of each architecture, in input order.
        latency_ms: (N,) milliseconds.
        std_ms: (N,) standard deviation in ms (0 for a recorded value).
        source: per architecture ``"recorded"`` (looked up in a latency table), ``"predicted"``
            (adapted predictor) or ``"measured"`` (timed on this machine).
    """

    space: str
    archs: list[str]
    latency_ms: np.ndarray
    std_ms: np.ndarray
    source: list[str]

    def to_dicts(self) -> list[dict[str, Any]]:
        """One ``{"arch", "latency_ms", "std_ms", "source"}`` mapping per architecture."""
        return [
            {"arch": a, "latency_ms": float(y), "std_ms": float(s), "source": src}
            for a, y, s, src in zip(self.archs, self.latency_ms, self.std_ms, self.source)
        ]


class SpaceDevice(Device):
    """A device with latency for the architectures of some search spaces.

    Subclasses implement :meth:`estimate`; :meth:`predict` is the short form a search calls.
    Instances carry their own ``name``, ``description`` and ``spaces``.
    """

    def __init__(self, name: str, description: str, spaces: Sequence[str]) -> None:
        self.name = name  # type: ignore[misc]
        self.description = description  # type: ignore[misc]
        self.spaces = list(spaces)  # type: ignore[misc]

    def latency_ms(self, network: Network) -> float:
        """Not available: these devices time search-space architectures, not network descriptions.

        Raises:
            NoLatencyError: always.
        """
        raise NoLatencyError(
            f"device {self.name!r} gives latency for architectures of {', '.join(self.spaces)} "
            "(use 'nas predict' or Device.predict), not for network descriptions"
        )

    def check_space(self, space: str) -> str:
        """``space`` if this device has latency for it.

        Raises:
            NoLatencyError: naming the spaces it has.
        """
        if space not in self.spaces:
            raise NoLatencyError(
                f"device {self.name!r} has no latency for search space {space!r}; "
                f"it has latency for: {', '.join(self.spaces)}"
            )
        return space

    def canonical(self, space: str, archs: Sequence[Any]) -> list[str]:
        """The canonical string of every architecture (raises ``ArchitectureError`` on a bad one)."""
        sp = get_space(self.check_space(space))
        return [sp.format(a) for a in archs]

    @abstractmethod
    def estimate(self, space: str, archs: Sequence[Any]) -> Estimate:
        """Latency, std and source of each architecture of ``space``."""

    def predict(
        self, space: str, archs: Sequence[Any], return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Latency in ms of each architecture (and its std in ms with ``return_std``)."""
        est = self.estimate(space, archs)
        return (est.latency_ms, est.std_ms) if return_std else est.latency_ms
