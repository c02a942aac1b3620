"""Registry of the built-in devices (``@register_device``); ``get_device`` and ``list_devices``
(``devices._lookup``) also find the user's registered devices."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from search_spaces import InputError

from ._base import Device

__all__ = ["register_device", "builtin_devices", "builtin_factory", "UnknownDeviceError"]

_DEVICES: dict[str, Callable[..., Device]] = {}
T = TypeVar("T", bound=Callable[..., Device])


class UnknownDeviceError(InputError):
    """Raised by :func:`get_device` for a name that is not registered."""


def register_device(name: str) -> Callable[[T], T]:
    """Class (or factory) decorator registering a device under ``name``.

    Raises:
        ValueError: if ``name`` is already registered.
    """

    def deco(factory: T) -> T:
        if name in _DEVICES:
            raise ValueError(f"device {name!r} is already registered")
        _DEVICES[name] = factory
        if isinstance(factory, type):
            factory.name = name  # type: ignore[attr-defined]
        return factory

    return deco


def builtin_factory(name: str) -> Callable[..., Device] | None:
    """The factory of the built-in device ``name`` (None: no built-in device of that name)."""
    return _DEVICES.get(name)


def builtin_kinds() -> dict[str, str]:
    """The ``kind`` of every built-in device, in registration order."""
    return {n: getattr(f, "kind", "") for n, f in _DEVICES.items()}


def builtin_devices() -> list[str]:
    """Names of the built-in devices, in registration order."""
    return list(_DEVICES)
