"""The supernet of a space: the ai8x one (``nas.supernet._ai8x``) or the fbnet one
(``nas.supernet._fbnet``), chosen by the space's registered name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from search_spaces import InputError, SearchSpace

from ..data import Dataset
from ._ai8x import ai8x_cache_key, get_ai8x_supernet
from ._common import SupernetSettings, cache_root
from ._fbnet import fbnet_supernet_key, get_fbnet_supernet

__all__ = ["get_supernet", "cache_dir", "inherited_module", "SUPERNET_SPACES"]

# space name -> (cache key function, get function)
_SUPERNETS: dict[str, tuple[Callable[..., str], Callable[..., Any]]] = {
    "ai8x": (ai8x_cache_key, get_ai8x_supernet),
    "fbnet": (lambda *a: fbnet_supernet_key(*a)[0], get_fbnet_supernet),
}
SUPERNET_SPACES = tuple(_SUPERNETS)
"""The spaces a supernet covers."""


def _of(space: SearchSpace) -> tuple[Callable[..., str], Callable[..., Any]]:
    found = _SUPERNETS.get(getattr(space, "name", ""))
    if found is None:
        raise InputError(f"the supernet covers the ai8x and fbnet spaces only, not {type(space).__name__}")
    return found


def cache_dir(space: Any, data: Dataset, *, runs_dir: str | Path, seed: int = 0,
              settings: SupernetSettings | None = None) -> Path:
    """Where the supernet for these settings is (or would be) cached."""
    settings = settings or SupernetSettings()
    return cache_root(runs_dir) / _of(space)[0](space, data, settings, seed)


def get_supernet(space: Any, data: Dataset, *, runs_dir: str | Path, seed: int = 0,
                 settings: SupernetSettings | None = None, progress: Callable[[str], None] | None = None,
                 train: bool = True) -> Any:
    """The cached supernet for (space, data, settings, seed), trained first when missing.

    Args:
        space: an ``ai8x`` space (its widths above the cap are not covered) or the ``fbnet``
            space (``nas.supernet._fbnet``, every op covered).
        data: the data set (the training split trains, the validation split is logged).
        runs_dir: the runs folder; the cache is ``<runs_dir>/supernets/<key>/``.
        seed: torch / sampling seed of the training.
        settings: sizing and training settings (default :class:`SupernetSettings`).
        progress: called with one-line progress messages.
        train: False raises :class:`SupernetCacheError` instead of training (Ray workers).

    Raises:
        SupernetCacheError: an unreadable cache (names the file; delete the folder to retrain),
            or no cache with ``train=False``.
    """
    settings = settings or SupernetSettings()
    say = progress or (lambda _s: None)
    return _of(space)[1](space, data, runs_dir=runs_dir, seed=seed, settings=settings, say=say, train=train)


def inherited_module(space: Any, arch: Any, data: Dataset, *, runs_dir: str | Path, seed: int = 0,
                     settings: SupernetSettings | None = None) -> Any:
    """``space.build(arch)`` initialised from the cached supernet (trained if missing), BatchNorm
    recalibrated on the first ``recal_images`` training images; eval mode. Its ``state_dict``
    has the keys and shapes of ``space.build(arch)``."""
    sn = get_supernet(space, data, runs_dir=runs_dir, seed=seed, settings=settings)
    return sn.inherited_module(space.parse(arch), data)
