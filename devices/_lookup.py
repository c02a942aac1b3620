"""``get_device`` and ``list_devices``: the built-in devices (``devices._registry``) and the user's
registered ones (``devices._user``)."""

from __future__ import annotations

from typing import Any

from ._base import Device
from ._registry import UnknownDeviceError, builtin_factory, builtin_kinds
from ._user import load_user_device, user_device_names

__all__ = ["get_device", "list_devices"]


def get_device(name: str, **kwargs: Any) -> Device:
    """Instantiate the device ``name``: a built-in one (with keyword options) or a registered one.

    Raises:
        UnknownDeviceError: if no device of that name exists (the message lists them).
    """
    factory = builtin_factory(name)
    if factory is not None:
        return factory(**kwargs)
    dev = load_user_device(name)
    if dev is None:
        raise UnknownDeviceError(
            f"unknown device {name!r}; available: {', '.join(list_devices()) or 'none'} "
            "(or register yours: 'nas device register')"
        )
    return dev


def list_devices() -> list[str]:
    """Names of all devices: built-in accelerators and measured devices, then the user's registered
    devices (sorted), then the recorded devices (phones first)."""
    rank = {"accelerator": 0, "measured": 1}
    kinds = builtin_kinds()
    recorded = [n for n in kinds if kinds[n] == "recorded"]
    others = sorted((n for n in kinds if kinds[n] != "recorded"), key=lambda n: (rank.get(kinds[n], 2), n))
    users = [n for n in user_device_names() if n not in kinds]
    return others + users + recorded
