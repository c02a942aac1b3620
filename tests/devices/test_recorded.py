"""Recorded devices: table look-up, adapted prediction for other architectures, listing order."""

from __future__ import annotations

import numpy as np
import pytest

import devices
import predictors
from devices import NoLatencyError, RecordedDevice, get_device, list_devices
from search_spaces import ArchitectureError, InputError, Network

OUTSIDE = "0" * 22  # all k3_e1: not among the 5,000 fbnet rows


def test_phones_are_listed_first_among_recorded_devices() -> None:
    names = list_devices()
    assert names[:3] == ["max78000", "max78002", "host-cpu"]
    recorded = [n for n in names if get_device(n).kind == "recorded"]
    assert recorded[:5] == list(devices.PHONES)
    assert recorded[5] == "raspi4"
    for phone in devices.PHONES:
        dev = get_device(phone)
        assert isinstance(dev, RecordedDevice)
        assert set(dev.spaces) == {"nasbench201", "fbnet"}
    assert get_device("v100_1").spaces == ["ofa_mbv3"]


def test_table_archs_are_recorded_values_with_zero_std() -> None:
    table = predictors.load_latency_table("fbnet")
    dev = get_device("pixel3")
    archs = table.archs[:5]
    est = dev.estimate("fbnet", archs)
    np.testing.assert_array_equal(est.latency_ms, table.device("pixel3")[:5])
    assert np.all(est.std_ms == 0) and est.source == ["recorded"] * 5
    assert dev.recorded("fbnet", archs).all()


def test_other_archs_are_predicted_by_the_adapted_predictor() -> None:
    dev = get_device("raspi4")
    assert not dev.recorded("fbnet", [OUTSIDE])[0]
    table = predictors.load_latency_table("fbnet")
    mixed = [OUTSIDE, table.archs[7]]
    ms, std = dev.predict("fbnet", mixed, return_std=True)
    assert ms.shape == (2,) and std.shape == (2,)
    assert ms[0] > 0 and std[0] > 0 and std[1] == 0
    assert ms[1] == table.device("raspi4")[7]
    # the same adapted predictor serves later calls (adapted once per process)
    from devices._recorded import adapted_predictor

    assert adapted_predictor("raspi4", "fbnet") is adapted_predictor("raspi4", "fbnet")
    q = predictors.load("fbnet").adapt(table.ref_archs, table.device("raspi4")[table.ref_index])
    assert ms[0] == pytest.approx(float(q.predict([OUTSIDE])[0]))
    assert list(dev.predict("fbnet", [OUTSIDE])) == [ms[0]]


def test_nasbench201_cell_strings_are_canonicalised() -> None:
    dev = get_device("pixel2")
    table = predictors.load_latency_table("nasbench201")
    arch = table.archs[123]
    est = dev.estimate("nasbench201", [" " + arch + " "])
    assert est.archs == [arch] and est.source == ["recorded"]
    assert est.latency_ms[0] == table.device("pixel2")[123]


def test_bad_space_arch_and_network_are_input_errors() -> None:
    dev = get_device("pixel3")
    with pytest.raises(NoLatencyError, match="no latency for search space 'ofa_mbv3'.*nasbench201, fbnet"):
        dev.predict("ofa_mbv3", [])
    with pytest.raises(ArchitectureError):
        dev.predict("fbnet", ["123"])
    with pytest.raises(NoLatencyError, match="not for network descriptions") as err:
        dev.latency_ms(Network.from_dict({"input": [1, 8, 8], "layers": [
            {"op": "conv2d", "in_channels": 1, "out_channels": 4, "in_dim": [8, 8]}]}))
    assert isinstance(err.value, InputError)
    with pytest.raises(NoLatencyError, match="max78000"):
        get_device("max78000").predict("fbnet", [OUTSIDE])


def test_info_has_limits_and_description() -> None:
    info = get_device("samsung_a50").info()
    assert info["kind"] == "recorded" and info["limits"] == {}
    assert "Samsung" in info["description"]
    assert get_device("max78000").info()["limits"]["weights"] == "442,368 B"
