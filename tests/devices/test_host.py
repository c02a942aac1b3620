"""host-cpu: real onnxruntime timings on this machine (tiny repetition counts)."""

from __future__ import annotations

import numpy as np
import pytest

import devices
import predictors
from devices import HostCPU, KitError, get_device

FAST = dict(warmup=1, number=1, min_rounds=2, max_rounds=2)
REFS = predictors.load("nasbench201").ref_archs_


def test_host_cpu_is_a_measured_device() -> None:
    dev = get_device("host-cpu")
    assert isinstance(dev, HostCPU) and dev.kind == "measured"
    assert dev.spaces == ["fbnet", "nasbench201"] and dev.limits() == {"threads": "1"}


def test_estimate_measures_once_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    HostCPU._cache.clear()
    dev = HostCPU(**FAST)
    est = dev.estimate("nasbench201", [REFS[0], REFS[1], REFS[0]])
    assert est.source == ["measured"] * 3 and np.all(est.latency_ms > 0) and np.all(est.std_ms >= 0)
    assert est.latency_ms[0] == est.latency_ms[2]
    import devices._host as host

    def no_measuring(*a: object, **k: object) -> None:
        raise AssertionError("measured again")

    monkeypatch.setattr(host, "measure_archs", no_measuring)
    y = dev.predict("nasbench201", [REFS[1]])
    assert y[0] == est.latency_ms[1]


def test_chunks_are_levelled_by_anchor_models() -> None:
    logs: list[str] = []
    timings = devices.measure_archs("nasbench201", REFS[:5], chunk=3, anchors=1, log=logs.append, **FAST)
    assert [t.name for t in timings] == REFS[:5]
    assert all(t.latency_ms > 0 and len(t.rounds) == 2 for t in timings)
    assert any("timing 4-5 of 5" in line for line in logs)


def test_spaces_without_modules_are_refused() -> None:
    with pytest.raises(KitError, match="ofa_mbv3"):
        devices.measure_archs("ofa_mbv3", [], **FAST)
    with pytest.raises(devices.NoLatencyError, match="ofa_mbv3"):
        HostCPU(**FAST).predict("ofa_mbv3", [])
