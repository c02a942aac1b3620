"""The phone (fbnet) weight-sharing supernet (nas.supernet._fbnet) and its estimate (8x8 digits, seconds)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from nas import load_npz
from nas.estimators import SupernetAccuracy, settings_from_run
from nas.supernet import (
    SupernetCacheError,
    SupernetSettings,
    get_supernet,
    inherited_module,
)
from nas.supernet._fbnet import LARGEST, LoadedFBNetSupernet, _make_module, fbnet_supernet_key
from search_spaces import get_space

TINY = SupernetSettings(epochs_largest=1, epochs_elastic=3, batch_size=32, random_subnets=1, recal_images=32)
TINY_EST = {"epochs_largest": 1, "epochs_elastic": 3, "random_subnets": 1, "recal_images": 32, "finetune_steps": 0}
ARCHS = ("7" * 22, "8" * 22, "1" * 22, "5" * 22, "0123456780123456780123", "7818488874147327324245")
"""Every op in some layer: grouped (1, 5), 3x3 and 5x5, e1/e3/e6, skip as identity and as projection."""


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path_factory.mktemp("d") / "digits.npz"
    np.savez(path, x=(d.images[:240] * 16).clip(0, 255).astype(np.uint8), y=d.target[:240])
    return load_npz(path)


@pytest.fixture(scope="module")
def space(digits):
    return get_space("fbnet", in_channels=1, num_classes=digits.num_classes, input_size=8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits, space):
    runs = tmp_path_factory.mktemp("runs")
    lines: list[str] = []
    sn = get_supernet(space, digits, runs_dir=runs, seed=0, settings=TINY, progress=lines.append)
    return runs, sn, lines


def _randomised_module(seed: int = 0):
    """An untrained supernet module with BN affine parameters away from (1, 0), so that slicing
    mistakes show."""
    torch.manual_seed(seed)
    m = _make_module(1, 10)
    with torch.no_grad():
        for k, v in m.weights.items():
            if k.endswith("_gamma"):
                v.uniform_(0.5, 1.5)
            elif k.endswith("_beta"):
                v.uniform_(-0.3, 0.3)
    return m


@pytest.mark.parametrize("arch", ARCHS)
def test_inherited_network_computes_the_supernet_subnetwork(arch, digits, space) -> None:
    m = _randomised_module()
    sn = LoadedFBNetSupernet(space, m, Path("unused"), {}, TINY, trained=True)
    net = sn.inherited_module(arch, digits)
    ref = space.build(arch)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert not net.training
    x = torch.from_numpy(digits.x_train[:16])
    net.train()  # batch statistics, as the supernet trains
    with torch.no_grad():
        # float rounding of two conv layouts through 22 layers; a slicing mistake moves outputs by ~0.1-1
        assert torch.allclose(net(x), m(x, [int(c) for c in arch]), atol=2e-3, rtol=1e-3)


def test_grouped_ops_share_the_expansion_channels_of_their_dense_twin(space) -> None:
    m = _randomised_module()
    dense, grouped = m.layer_specs(3, 0), m.layer_specs(3, 1)  # k3_e1 and k3_e1_g2 of a 24 -> 24 layer
    perm = torch.tensor([(p % 2) * 12 + p // 2 for p in range(24)])  # shuffle position -> source channel
    assert torch.equal(grouped[1].weight, dense[1].weight[perm])  # depthwise follows the shuffle
    assert grouped[0].weight.shape == (24, 12, 1, 1) and grouped[0].groups == 2 and grouped[0].shuffle == 2
    assert torch.equal(grouped[0].weight[:12], dense[0].weight[:12, :12])  # diagonal blocks
    assert torch.equal(grouped[0].weight[12:], dense[0].weight[12:, 12:])
    k5, k3 = m.layer_specs(3, 7), m.layer_specs(3, 3)  # k5_e6, k3_e6: centre of the 5x5 kernel
    assert torch.equal(k3[1].weight, k5[1].weight[:, :, 1:4, 1:4])
    assert torch.equal(m.layer_specs(3, 2)[0].weight, k5[0].weight[:72])  # e3: first 3 * 24 channels


def test_sort_channels_keeps_the_largest_network() -> None:
    m = _randomised_module()
    x = torch.randn(8, 1, 8, 8)
    big = [7] * 22
    with torch.no_grad():
        before = m(x, big)
        m.sort_channels()
        after = m(x, big)
    assert torch.allclose(before, after, atol=1e-3)  # float rounding through 22 batch-normalised layers
    imp = m.weights["l5_project"].abs().sum((0, 2, 3))
    assert torch.all(imp[:-1] >= imp[1:])


def test_trains_caches_and_reuses(trained, digits, space) -> None:
    runs, sn, lines = trained
    assert sn.trained and isinstance(sn, LoadedFBNetSupernet)
    assert {p.name for p in sn.path.iterdir()} == {"weights.safetensors", "config.json", "train_log.csv"}
    log = (sn.path / "train_log.csv").read_text().splitlines()
    assert [row.split(",")[1] for row in log[1:]] == ["largest", "elastic:kernel", "elastic:depth", "elastic:expand"]
    cfg = json.loads((sn.path / "config.json").read_text())
    assert cfg["ident"]["space"] == {"name": "fbnet", "in_channels": 1, "num_classes": 10, "input_size": 8}
    assert "max_width" not in cfg["ident"]["settings"]  # ai8x sizing does not key the fbnet cache
    assert any("fbnet supernet" in line for line in lines)
    again = get_supernet(space, digits, runs_dir=runs, seed=0, settings=TINY)
    assert not again.trained and again.path == sn.path
    for k, v in sn.model.weights.items():
        assert torch.equal(v, again.model.weights[k]), k
    with pytest.raises(SupernetCacheError, match="no trained supernet"):
        get_supernet(space, digits, runs_dir=runs, seed=1, settings=TINY, train=False)
    # another space shape (more classes) is another supernet
    other = get_space("fbnet", in_channels=1, num_classes=11, input_size=8)
    assert fbnet_supernet_key(other, digits, TINY, 0)[0] != sn.path.name
    m = inherited_module(space, ARCHS[4], digits, runs_dir=runs, settings=TINY)
    assert set(m.state_dict()) == set(space.build(ARCHS[4]).state_dict())


def test_corrupted_cache_names_the_file(tmp_path, digits, space) -> None:
    settings = SupernetSettings(epochs_largest=1, epochs_elastic=0, batch_size=32, recal_images=16, train_images=64)
    sn = get_supernet(space, digits, runs_dir=tmp_path, settings=settings)
    (sn.path / "weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SupernetCacheError, match=r"weights\.safetensors is unreadable.*delete"):
        get_supernet(space, digits, runs_dir=tmp_path, settings=settings)


def test_estimator_scores_int8_and_ships_without_weights(trained, digits, space) -> None:
    runs, sn, _ = trained
    est = SupernetAccuracy(**TINY_EST)
    est.bind(space, digits, runs, seed=0)
    assert est.cache_path == sn.path.absolute() and est.covered is space
    text = est.describe()
    assert "int8 per-channel weights" in text and "32 training images" in text and "vendor" not in text
    r = est.evaluate(space, LARGEST, digits)
    assert 0.0 <= r.value <= 1.0 and r.details["n_val"] == len(digits.y_val)
    # the score is the int8 network's: it differs from the float network's outputs
    net = sn.inherited_module(LARGEST, digits, recal_images=32)
    x = torch.from_numpy(digits.x_val[:32])
    with torch.no_grad():
        fl = net(x)
        q = sn.quantised(net, digits)(x)
    assert not torch.allclose(fl, q) and torch.allclose(fl, q, atol=0.5 * float(fl.abs().max()))
    shipped = pickle.loads(pickle.dumps(est))
    assert shipped._loaded is None
    assert shipped.evaluate(space, LARGEST, digits).value == r.value
    assert settings_from_run({"estimator": est.to_dict()}).training_dict() == \
        SupernetSettings(**{k: v for k, v in TINY_EST.items() if k != "finetune_steps"}).training_dict()


def test_residual_blocks_start_as_the_identity() -> None:
    """Zero-init residual (Goyal et al., 2017): without it, sub-networks mixing the nine ops stayed at
    chance level through the default training (benchmarks/results/supernet_fbnet_digits.md as of commit
    40fa590)."""
    m = _make_module(1, 10)
    for i, (cin, cout, stride) in enumerate(m.geometry):
        gamma = m.weights[f"l{i}_bn3_gamma"]
        if cin == cout and stride == 1:
            assert float(gamma.abs().max()) == 0.0
        else:
            assert torch.equal(gamma, torch.ones_like(gamma))
    x = torch.randn(4, 16, 8, 8)
    with torch.no_grad():
        for op in (0, 1, 3, 7):  # dense, grouped, e6 blocks of layer 0 (16 -> 16): identity at init
            y = x
            for sp in m.layer_specs(0, op):
                y = m._conv_bn(y, sp)
            assert float(y.abs().max()) == 0.0
