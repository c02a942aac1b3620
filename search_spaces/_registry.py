"""Registry of search spaces (``@register_space`` / ``get_space`` / ``list_spaces``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._base import SearchSpace
from ._errors import InputError

__all__ = ["register_space", "get_space", "list_spaces", "UnknownSpaceError"]

_SPACES: dict[str, Callable[..., SearchSpace]] = {}
T = TypeVar("T", bound=Callable[..., SearchSpace])


class UnknownSpaceError(InputError):
    """Raised by :func:`get_space` for a name that is not registered."""


def register_space(name: str) -> Callable[[T], T]:
    """Class decorator registering a search space factory under ``name``."""

    def deco(factory: T) -> T:
        if name in _SPACES:
            raise ValueError(f"search space {name!r} is already registered")
        _SPACES[name] = factory
        if isinstance(factory, type):
            factory.name = name  # type: ignore[attr-defined]
        return factory

    return deco


def get_space(name: str, **kwargs: Any) -> SearchSpace:
    """Instantiate the registered space ``name`` with keyword options."""
    try:
        factory = _SPACES[name]
    except KeyError:
        raise UnknownSpaceError(
            f"unknown search space {name!r}; available: {', '.join(list_spaces())}"
        ) from None
    return factory(**kwargs)


def list_spaces() -> list[str]:
    """Names of all registered spaces, sorted."""
    return sorted(_SPACES)
