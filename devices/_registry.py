"""Registry of devices (``@register_device`` / ``get_device`` / ``list_devices``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from search_spaces import InputError

from ._base import Device

__all__ = ["register_device", "get_device", "list_devices", "builtin_devices", "UnknownDeviceError"]

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
    """Instantiate the device ``name``: a built-in one (with keyword options) or a registered one.

    Raises:
        UnknownDeviceError: if no device of that name exists (the message lists them).
    """
    factory = _DEVICES.get(name)
    if factory is not None:
        return factory(**kwargs)
    from ._user import load_user_device

    dev = load_user_device(name)
    if dev is None:
        raise UnknownDeviceError(
            f"unknown device {name!r}; available: {', '.join(list_devices()) or 'none'} "
            "(or register yours: 'nas device register')"
        )
    return dev


def builtin_devices() -> list[str]:
    """Names of the built-in devices, in registration order."""
    return list(_DEVICES)


def list_devices() -> list[str]:
    """Names of all devices: built-in accelerators and measured devices, then the user's registered
    devices (sorted), then the recorded devices (phones first)."""
    from ._user import user_device_names

    rank = {"accelerator": 0, "measured": 1}
    kinds = {n: getattr(f, "kind", "") for n, f in _DEVICES.items()}
    recorded = [n for n in _DEVICES if kinds[n] == "recorded"]
    others = sorted((n for n in _DEVICES if kinds[n] != "recorded"), key=lambda n: (rank.get(kinds[n], 2), n))
    users = [n for n in user_device_names() if n not in _DEVICES]
    return others + users + recorded
