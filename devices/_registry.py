"""Registry of devices (``@register_device`` / ``get_device`` / ``list_devices``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from search_spaces import InputError

from ._base import Device

__all__ = ["register_device", "get_device", "list_devices", "UnknownDeviceError"]

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


def get_device(name: str, **kwargs: Any) -> Device:
    """Instantiate the registered device ``name`` with keyword options.

    Raises:
        UnknownDeviceError: if no device of that name is registered (the message lists them).
    """
    try:
        factory = _DEVICES[name]
    except KeyError:
        raise UnknownDeviceError(
            f"unknown device {name!r}; available: {', '.join(list_devices()) or 'none'}"
        ) from None
    return factory(**kwargs)


def list_devices() -> list[str]:
    """Names of all registered devices, sorted."""
    return sorted(_DEVICES)
