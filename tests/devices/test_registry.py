"""The device registry, and checks every registered device must pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import devices
from devices import Device, UnknownDeviceError, get_device, list_devices, register_device
from search_spaces import InputError, Network, get_space

DATA = Path(__file__).parent / "data"
KINDS = {"accelerator", "recorded", "measured", "registered"}


def test_max78000_is_registered() -> None:
    assert "max78000" in list_devices()
    dev = get_device("max78000")
    assert isinstance(dev, devices.MAX78000)
    assert dev.kind == "accelerator" and dev.spaces == ["ai8x"]


def test_unknown_device_names_it_and_lists_the_others() -> None:
    with pytest.raises(UnknownDeviceError) as err:
        get_device("max99999")
    assert isinstance(err.value, InputError)
    assert "max99999" in str(err.value) and "max78000" in str(err.value)


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_device("max78000")(devices.MAX78000)


@pytest.mark.parametrize("name", list_devices())
def test_every_device_describes_itself(name: str) -> None:
    dev = get_device(name)
    assert isinstance(dev, Device)
    assert dev.name == name
    assert dev.kind in KINDS
    assert dev.description and isinstance(dev.description, str)
    assert isinstance(dev.spaces, list) and all(isinstance(s, str) for s in dev.spaces)
    info = dev.info()
    assert info["name"] == name and info["kind"] == dev.kind and info["spaces"] == dev.spaces


def _device_spaces() -> list[tuple[str, str]]:
    """(device, space) for every registered device and each space it gives latency for."""
    return [(name, space) for name in list_devices() for space in get_device(name).spaces]


@pytest.mark.parametrize("name", [n for n, s in _device_spaces() if s == "ai8x"])
def test_every_ai8x_device_gives_a_positive_latency(name: str) -> None:
    dev = get_device(name)
    for f in sorted(DATA.glob("*.yaml")):
        ms = dev.latency_ms(Network.load(f))
        assert ms > 0 and ms == ms  # positive and not NaN


@pytest.mark.parametrize(("name", "space"), [(n, s) for n, s in _device_spaces() if get_device(n).kind != "measured"])
def test_every_device_predicts_its_spaces(name: str, space: str) -> None:
    """Each device answers for random architectures of each space it lists (host-cpu: test_host.py)."""
    sp = get_space(space)
    rng = np.random.default_rng(0)
    archs = [sp.random_arch(rng) for _ in range(3)]
    ms, std = get_device(name).predict(space, archs, return_std=True)
    assert ms.shape == (3,) and std.shape == (3,)
    assert np.all(np.isfinite(ms)) and np.all(ms > 0) and np.all(std >= 0)
