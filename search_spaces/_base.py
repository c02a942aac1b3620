"""The interface every search space implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import InputError

if TYPE_CHECKING:
    import optuna
    import torch

    from ._network import Network

__all__ = ["SearchSpace", "ArchitectureError"]


class ArchitectureError(InputError):
    """A malformed architecture for a space (wrong length, unknown op, bad value)."""


class SearchSpace:
    """A family of architectures.

    Subclasses implement what applies to them: every space parses, formats and encodes
    architectures; spaces used by ``nas search`` also sample from an Optuna trial and build
    a ``torch.nn.Module``; spaces for the MAX78000 give the hardware network description.
    Architectures are plain Python values (str, dict) so they serialise to JSON.
    """

    name: str = ""

    def parse(self, arch: Any) -> Any:
        """Validate ``arch`` (or its string form) and return its canonical value.

        Raises:
            ArchitectureError: with a sentence saying what is wrong.
        """
        raise NotImplementedError

    def format(self, arch: Any) -> str:
        """The one-line string form of an architecture (round-trips through ``parse``)."""
        raise NotImplementedError

    def encode(self, arch: Any) -> np.ndarray:
        """A fixed-length float vector for one architecture."""
        raise NotImplementedError

    def encode_many(self, archs: list[Any]) -> np.ndarray:
        """Encode a list of architectures into a 2-D array."""
        return np.stack([self.encode(a) for a in archs]) if archs else np.zeros((0, 0))

    def random_arch(self, rng: np.random.Generator) -> Any:
        """A uniformly drawn valid architecture (used by tests and benchmarks)."""
        raise NotImplementedError

    def sample(self, trial: optuna.Trial) -> Any:
        """Draw an architecture with an Optuna trial's ``suggest_*`` calls."""
        raise NotImplementedError

    def build(self, arch: Any, **kwargs: Any) -> torch.nn.Module:
        """A trainable ``torch.nn.Module`` for ``arch``."""
        raise NotImplementedError

    def build_for_training(self, arch: Any, **kwargs: Any) -> torch.nn.Module:
        """:meth:`build` with the initialisation a training from scratch should start from (the
        space's own choice; by default :meth:`build`'s)."""
        return self.build(arch, **kwargs)

    init_description: str = "PyTorch default initialisation"
    """How :meth:`build_for_training` initialises a network, in words (reports say it)."""

    def network(self, arch: Any) -> Network:
        """The hardware-layer description of ``arch`` for accelerator devices."""
        raise NotImplementedError
