"""Search targets (``nas.targets``): the registry, and one tiny search + QAT + export per target."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

import devices
from nas.qat import QatConfig, run_qat
from nas.search import SearchConfig, run_search
from nas.targets import (
    Target,
    UnknownTargetError,
    get_target,
    list_targets,
    register_target,
    target_for_device,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 of scikit-learn's 8x8 digits (square, so every target's space takes them)."""
    from sklearn.datasets import load_digits

    p = tmp_path_factory.mktemp("data") / "digits.npz"
    d = load_digits()
    np.savez(p, x=(d.images[:240] * 16).clip(0, 255).astype(np.uint8), y=d.target[:240])
    return p


def test_the_registry_holds_the_built_in_targets() -> None:
    names = list_targets()
    assert "max78000" in names and "mobile" in names
    with pytest.raises(UnknownTargetError, match="unknown target 'nope'"):
        get_target("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_target("mobile")(lambda: get_target("mobile"))


@pytest.mark.parametrize("name", list_targets())
def test_each_target_is_its_example_device_s_target(name: str) -> None:
    t = get_target(name)
    assert isinstance(t, Target) and t.space_name in t.spaces and t.csv_columns
    assert type(target_for_device(devices.get_device(t.example_device))) is type(t)
    assert getattr(target_for_device(devices.get_device(t.example_device)), "name", None) == t.name


@pytest.mark.parametrize("name", list_targets())
def test_each_target_searches_trains_and_exports(name: str, images: Path, tmp_path: Path) -> None:
    t = get_target(name)
    runs = tmp_path / "runs"
    cfg = SearchConfig(device=t.example_device, trials=3, seed=0, runs_dir=runs, data=images, name="r",
                       estimator="naswot", estimator_options={"batch": 16})
    res = run_search(cfg)
    assert res.record.space == t.space_name and res.settings["format"] == res.record.to_dict()["format"]
    with (res.run_dir / "pareto.csv").open() as f:
        assert next(csv.reader(f)) == t.csv_columns
    assert (res.run_dir / "report.md").read_text().startswith("# nas search: r")
    if not res.pareto:
        pytest.skip(f"no feasible network in 3 trials on {t.example_device}")
    qat = run_qat(res.run_dir, QatConfig(top=1, epochs=1, qat_epochs=1, max_train_images=64, max_eval_images=64,
                                         batch_size=32))
    net = qat.networks[0]
    assert 0.0 <= net.quant_test_acc <= 1.0 and net.device["fits"] in (True, False)
    card = (res.run_dir / net.export_dir / "model_card.md").read_text()
    assert f"--device {t.example_device}" in card
    summary = json.loads(qat.summary_path.read_text())
    assert summary["device"] == t.example_device and summary["space"] == t.space_name


_DISPATCH = re.compile(r"\bmobile\b|[=!]= \"ai8x\"|isinstance\(space, FBNetSpace\)|hasattr\(device, \"report\"\)")


def test_no_target_dispatch_outside_the_targets_package() -> None:
    bad = []
    for f in sorted((ROOT / "nas").rglob("*.py")):
        if "targets" in f.relative_to(ROOT / "nas").parts:
            continue
        for i, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if _DISPATCH.search(code):
                bad.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not bad, "target dispatch outside nas/targets (use the Target interface):\n" + "\n".join(bad)
