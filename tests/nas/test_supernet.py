"""The weight-sharing supernet (nas.supernet) and its estimate (tiny data, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nas import load_npz
from nas.estimators import SupernetAccuracy, settings_from_run
from nas.supernet import (
    SupernetCacheError,
    SupernetSettings,
    covered_space,
    get_supernet,
    inherited_module,
    supernet_key,
    unit_cap,
    width_cap,
)
from nas.supernet._ai8x import _largest_arch, _make_module, _restrict
from search_spaces import InputError, get_space

TINY = SupernetSettings(epochs_largest=1, epochs_elastic=1, batch_size=32, recal_images=64, torch_device="cpu")


def _digits(tmp: Path, n: int = 300) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp / "digits.npz"
    np.savez(path, x=(d.images[:n] * 16).clip(0, 255).astype(np.uint8), y=d.target[:n])
    return path


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return load_npz(_digits(tmp_path_factory.mktemp("d")))


@pytest.fixture(scope="module")
def space(digits):
    return get_space("ai8x", input_shape=digits.input_shape, num_classes=digits.num_classes,
                     widths=(8, 16), max_units=2, max_depth=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits, space):
    runs = tmp_path_factory.mktemp("runs")
    lines: list[str] = []
    sn = get_supernet(space, digits, runs_dir=runs, seed=0, settings=TINY, progress=lines.append)
    return runs, sn, lines


def test_trains_caches_and_reuses(trained, digits, space) -> None:
    runs, sn, lines = trained
    assert sn.trained and sn.path.parent == runs / "supernets"
    assert {p.name for p in sn.path.iterdir()} == {"weights.safetensors", "config.json", "train_log.csv"}
    assert not [p for p in (runs / "supernets").iterdir() if ".tmp" in p.name]  # renamed into place
    log = (sn.path / "train_log.csv").read_text().splitlines()
    assert log[0] == "epoch,phase,loss,val_acc_largest,val_acc_smallest,seconds,torch_device"
    assert [row.split(",")[1] for row in log[1:]] == ["largest", "elastic:bits"]  # 1 elastic epoch: the last stage
    assert [row.split(",")[-1] for row in log[1:]] == ["cpu", "cpu"]  # the torch device it trained on
    assert any("training" in line for line in lines)
    cfg = json.loads((sn.path / "config.json").read_text())
    assert cfg["format"] == 1 and "progressive" in cfg["ident"]["training"] and cfg["ident"]["data"]["fingerprint"] == digits.fingerprint
    assert cfg["torch_device"] == "cpu" and "torch_device" not in cfg["ident"]["settings"]
    mtime = (sn.path / "weights.safetensors").stat().st_mtime_ns
    again_lines: list[str] = []
    again = get_supernet(space, digits, runs_dir=runs, seed=0, settings=TINY, progress=again_lines.append)
    assert not again.trained and again.path == sn.path
    assert (sn.path / "weights.safetensors").stat().st_mtime_ns == mtime
    assert again_lines == [f"supernet: loaded from cache {sn.path}"]
    for k, v in sn.model.weights.items():
        assert torch.equal(v, again.model.weights[k]), k
    # another seed is another supernet
    assert get_supernet(space, digits, runs_dir=runs, seed=0, settings=TINY, train=False).path == sn.path
    with pytest.raises(SupernetCacheError, match="no trained supernet"):
        get_supernet(space, digits, runs_dir=runs, seed=1, settings=TINY, train=False)


def test_inherited_module_matches_build_and_supernet(trained, digits, space) -> None:
    _, sn, _ = trained
    x = torch.from_numpy(digits.x_train[:32])
    for arch in ("16k3b8,8k1b2|16k3b4|fcb8", "8k1b8|8k3b1,16k3b8|fcb8", "16k3b8,16k3b8|16k3b8,16k3b8|fcb8"):
        net = sn.inherited_module(arch, digits)
        ref = space.build(arch)
        assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == \
            {k: tuple(v.shape) for k, v in ref.state_dict().items()}
        assert not net.training
        assert float(net.layers[0].bn.running_var.mean()) != 1.0  # recalibrated
        net.train()
        with torch.no_grad():
            assert torch.equal(net(x), sn.model(x, space.parse(arch)))  # same arithmetic, batch statistics
    runs, _, _ = trained
    m = inherited_module(space, "16k3b8|16k3b4|fcb8", digits, runs_dir=runs, settings=TINY)
    assert set(m.state_dict()) == set(space.build("16k3b8|16k3b4|fcb8").state_dict())


def test_bit_widths_change_outputs_and_estimate(trained, digits) -> None:
    _, sn, _ = trained
    x = torch.from_numpy(digits.x_val[:64])
    outs = {}
    for b in (8, 4, 2, 1):
        net = sn.inherited_module(f"16k3b8,16k3b{b}|16k3b{b},16k3b{b}|fcb8", digits)
        with torch.no_grad():
            outs[b] = net(x)
    for a in (8, 4, 2):
        for b in (4, 2, 1):
            if a > b:
                assert not torch.allclose(outs[a], outs[b]), (a, b)


def test_sort_channels_keeps_the_largest_network(space) -> None:
    torch.manual_seed(0)
    cov = covered_space(space, TINY)
    m = _make_module(cov)
    x = torch.randn(16, 1, 8, 8).clamp(-1, 127 / 128)
    big = _largest_arch(cov)
    with torch.no_grad():
        before = m(x, big, quantize=False)
        w0 = m.weights["u0_l0_weight"].clone()
        m.sort_channels()
        after = m(x, big, quantize=False)
    assert torch.allclose(before, after, atol=1e-4)
    l1 = m.weights["u0_l0_weight"].abs().sum((1, 2, 3)) + m.weights["u0_l1_weight"].abs().sum((1, 2, 3))
    assert torch.all(l1[:-1] >= l1[1:])  # most important first
    assert not torch.equal(w0, m.weights["u0_l0_weight"])


def test_corrupted_cache_names_the_file(tmp_path, digits, space) -> None:
    sn = get_supernet(space, digits, runs_dir=tmp_path, settings=SupernetSettings(
        epochs_largest=1, epochs_elastic=0, batch_size=32, recal_images=32, max_width=8))
    settings = sn.settings
    w = sn.path / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(SupernetCacheError) as e:
        get_supernet(space, digits, runs_dir=tmp_path, settings=settings)
    msg = str(e.value)
    assert str(w) in msg and "delete" in msg and "\n" not in msg and isinstance(e.value, InputError)
    (sn.path / "config.json").write_text("{broken")
    with pytest.raises(SupernetCacheError, match="config.json"):
        get_supernet(space, digits, runs_dir=tmp_path, settings=settings)


def test_width_cap_follows_the_budget() -> None:
    sp = get_space("ai8x", input_shape=(1, 28, 28), num_classes=10)
    cap, why = width_cap(sp, SupernetSettings())
    assert cap == 32 and "M MACs" in why
    assert width_cap(sp, SupernetSettings(macs_budget=1e9))[0] == 192  # 775 M MACs; 256 needs 1378 M
    big = get_space("ai8x", input_shape=(1, 64, 64), num_classes=10)
    assert width_cap(big, SupernetSettings(macs_budget=1e12))[0] == 64  # 64x64x(2 words) > 16 KiB above 64
    assert width_cap(sp, SupernetSettings(max_width=100))[0] == 96
    assert covered_space(sp).widths == (16, 24, 32)


def test_unit_cap_drops_units_below_min_side() -> None:
    sp = get_space("ai8x", input_shape=(1, 28, 28), num_classes=10)  # units at 28, 14, 7, 3, 1
    assert sp.max_units == 5
    assert unit_cap(sp, SupernetSettings()) == 4 and covered_space(sp).max_units == 4
    assert unit_cap(sp, SupernetSettings(min_side=1)) == 5
    assert unit_cap(sp, SupernetSettings(min_side=7)) == 3
    assert unit_cap(sp, SupernetSettings(min_side=100)) == sp.min_units  # never below the space's minimum
    seq = get_space("ai8x", input_shape=(2, 32, 1), num_classes=3, conv1d=True)  # lengths 32, 16, 8, 4, 2
    assert unit_cap(seq, SupernetSettings()) == min(seq.max_units, 4)
    with pytest.raises(InputError, match="min_side"):
        SupernetSettings(min_side=0)
    with pytest.raises(InputError, match="schedule"):
        SupernetSettings(schedule="random")


def test_progressive_stages_restrict_choices_and_key_changes(digits, space) -> None:
    cov = covered_space(space, TINY)
    arch = cov.parse("8k1b8,8k3b2|16k1b4|fcb8")
    kd = _restrict(cov, arch, "kernel+depth")
    assert cov.format(cov.parse(kd)) == "16k1b8,16k3b8|16k1b8|fcb8"  # widest, 8-bit; kernels and depth kept
    assert cov.format(cov.parse(_restrict(cov, arch, "width"))) == "8k1b8,8k3b8|16k1b8|fcb8"
    assert _restrict(cov, arch, "bits") == arch
    k_prog, id_prog = supernet_key(space, digits, TINY, 0)
    k_sand, id_sand = supernet_key(space, digits, SupernetSettings(**{**TINY.__dict__, "schedule": "sandwich"}), 0)
    assert k_prog != k_sand and id_prog["training"] != id_sand["training"]
    assert supernet_key(space, digits, TINY, 0)[0] == k_prog


def test_conv1d_sequences(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n, length = 120, 32
    y = np.arange(n) % 3
    t = np.arange(length)
    x = np.stack([np.sin(t * (k + 1) * 0.3 + rng.uniform(0, 6)) for k in y])[:, None, :, None]
    x = np.concatenate([x, x + rng.normal(0, 0.3, x.shape)], axis=1).astype(np.float32)
    path = tmp_path / "seq.npz"
    np.savez(path, x=x, y=y)
    data = load_npz(path)
    assert data.conv1d
    sp = get_space("ai8x", input_shape=data.input_shape, num_classes=3, conv1d=True, widths=(8, 16),
                   max_units=2, max_depth=2)
    sn = get_supernet(sp, data, runs_dir=tmp_path, settings=TINY)
    arch = "16k3b8,8k1b4|16k3b2|fcb8"
    net = sn.inherited_module(arch, data)
    assert net.layers[0].op.weight.shape == (16, 2, 3)
    xb = torch.from_numpy(data.x_train[:16])
    net.train()
    with torch.no_grad():
        assert torch.equal(net(xb), sn.model(xb, sp.parse(arch)))
    acc, n_val = sn.evaluate(arch, data)
    assert n_val == len(data.y_val) and 0.0 <= acc <= 1.0


def test_estimator_scores_and_ships_without_weights(trained, digits, space) -> None:
    import pickle

    runs, sn, _ = trained
    est = SupernetAccuracy(epochs_largest=1, epochs_elastic=1, batch_size=32, recal_images=64)
    est.use_torch_device("cpu")
    assert "torch_device" not in est.to_dict()  # not a setting of the run (a run resumes on another device)
    est.bind(space, digits, runs, seed=0)
    assert est.cache_path == sn.path.absolute()
    assert est.metric_name() == "val_acc_supernet"
    text = est.describe()
    assert "64 training images" in text and f"({len(digits.y_val)} images)" in text and "inherited" in text
    est.prepare()
    r = est.evaluate(space, space.parse("16k3b8|16k3b4|fcb8"), digits)
    assert 0.0 <= r.value <= 1.0 and r.details["n_val"] == len(digits.y_val)
    shipped = pickle.loads(pickle.dumps(est))
    assert shipped._loaded is None and shipped == est  # a Ray worker loads the cache itself
    assert shipped.torch_device == "cpu" and shipped.supernet_settings().torch_device == "cpu"
    assert shipped.evaluate(space, space.parse("16k3b8|16k3b4|fcb8"), digits).value == r.value


def _chip_accuracy(net, data) -> float:
    """Accuracy of a folded ``Ai8xNet`` computed by ``integer_forward`` on the validation images as
    the chip receives them (``round(x * 128)``)."""
    x_int = np.clip(np.round(data.x_val.astype(np.float64) * 128), -128, 127).astype(np.int64)
    return float((net.integer_forward(x_int).argmax(1) == data.y_val).mean())


def test_estimate_is_the_chip_arithmetic_of_a_low_bit_subnetwork(trained, digits, space) -> None:
    """The estimate of a 2-bit sub-network is the accuracy the vendor's integer arithmetic gives
    (BatchNorm folded, bias at the weight bits, vendor shift), not that of the unfolded
    fake-quantised network (0.867 vs 0.600 here before the fix)."""
    import copy

    from nas.supernet import finetune
    from search_spaces._ai8x import fold_bn

    runs, sn, _ = trained
    arch = space.parse("16k3b8,16k3b2|16k3b2,16k3b2|fcb8")
    est = SupernetAccuracy(finetune_steps=10, epochs_largest=1, epochs_elastic=1, batch_size=32, recal_images=64)
    est.bind(space, digits, runs, seed=0)
    r = est.evaluate(space, arch, digits, seed=0)
    torch.manual_seed(0)
    net = sn.inherited_module(arch, digits, recal_images=64)
    finetune(net, digits, 10, lr=1e-3, seed=0, recal_images=64)
    assert r.value == _chip_accuracy(fold_bn(copy.deepcopy(net)), digits)
    assert sn.quantised(net, digits).folded and not net.folded  # scores a folded copy, keeps the network
    # the supernet's own evaluate (its training log) scores the same arithmetic
    plain = sn.inherited_module(arch, digits)
    assert sn.evaluate(arch, digits)[0] == _chip_accuracy(fold_bn(plain), digits)


def test_finetune_steps_adapt_the_subnetwork_deterministically(trained, digits, space) -> None:
    runs, _, _ = trained
    kw = {"epochs_largest": 1, "epochs_elastic": 1, "batch_size": 32, "recal_images": 64}
    arch = space.parse("16k3b8,8k1b4|16k3b4|fcb8")
    r = {}
    for steps in (0, 10):
        est = SupernetAccuracy(finetune_steps=steps, **kw)
        est.bind(space, digits, runs, seed=0)
        r[steps] = est.evaluate(space, arch, digits)
        assert r[steps].details["finetune_steps"] == steps
        assert ("Adam steps" in est.describe()) == (steps > 0)
    assert r[0].value != r[10].value  # 10 steps from the inherited weights change the scored network
    est = SupernetAccuracy(finetune_steps=10, **kw)
    est.bind(space, digits, runs, seed=0)
    assert r[0].details["supernet"] == r[10].details["supernet"]  # the same supernet (not in the cache key)
    assert est.evaluate(space, arch, digits).value == r[10].value  # seeded: the same score again
    with pytest.raises(InputError, match="finetune_steps"):
        SupernetAccuracy(finetune_steps=-1)


def test_killed_training_leaves_no_cache(tmp_path, digits, space, monkeypatch) -> None:
    import safetensors.torch

    settings = SupernetSettings(epochs_largest=1, epochs_elastic=0, batch_size=32, recal_images=32, max_width=8)

    def killed(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", killed)
    with pytest.raises(KeyboardInterrupt):
        get_supernet(space, digits, runs_dir=tmp_path, settings=settings)
    root = tmp_path / "supernets"
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []
    monkeypatch.undo()
    sn = get_supernet(space, digits, runs_dir=tmp_path, settings=settings)
    assert sn.trained and (sn.path / "weights.safetensors").is_file()
    assert not list(root.glob("*.tmp-*"))  # the killed run's folder was cleared


def test_settings_from_run_finds_the_search_cache(trained, digits, space) -> None:

    runs, sn, _ = trained
    est = SupernetAccuracy(epochs_largest=1, epochs_elastic=1, batch_size=32, recal_images=64)
    got = settings_from_run({"estimator": est.to_dict()})
    assert got.torch_device == "auto"  # not in the record: nas qat runs it on its own --torch-device
    from dataclasses import replace

    assert replace(got, torch_device="cpu") == TINY
    assert get_supernet(space, digits, runs_dir=runs, settings=got, train=False).path == sn.path
    assert settings_from_run({"estimator": {"estimator": "naswot", "batch": 8}}) == SupernetSettings()


@pytest.mark.parametrize("missing", ["config.json", "weights.safetensors", "train_log.csv"])
def test_incomplete_cache_is_one_line_and_not_retrained(tmp_path, digits, space, missing: str) -> None:
    """Issue 16 case 8: a cache missing its config.json retrained fully, then crashed (OSError) on every run."""
    settings = SupernetSettings(epochs_largest=1, epochs_elastic=0, batch_size=32, recal_images=32, max_width=8)
    sn = get_supernet(space, digits, runs_dir=tmp_path, settings=settings)
    for p in sn.path.iterdir():
        if p.name == missing:
            p.unlink()
    for train in (True, False):
        lines: list[str] = []
        with pytest.raises(SupernetCacheError) as e:
            get_supernet(space, digits, runs_dir=tmp_path, settings=settings, train=train, progress=lines.append)
        msg = str(e.value)
        assert str(sn.path) in msg and "incomplete" in msg and f"delete {sn.path}" in msg and "\n" not in msg
        assert not any("training" in line for line in lines)  # refused before training
    import shutil

    shutil.rmtree(sn.path)  # the fix it names
    again = get_supernet(space, digits, runs_dir=tmp_path, settings=settings)
    assert again.trained and {p.name for p in again.path.iterdir()} == {"weights.safetensors", "config.json",
                                                                        "train_log.csv"}
    assert not get_supernet(space, digits, runs_dir=tmp_path, settings=settings).trained
    if missing == "config.json":  # an empty folder holds nothing to lose: it is trained into
        shutil.rmtree(again.path)
        again.path.mkdir()
        assert get_supernet(space, digits, runs_dir=tmp_path, settings=settings).trained


def test_cache_path_taken_by_a_file(tmp_path, digits, space) -> None:
    settings = SupernetSettings(epochs_largest=1, epochs_elastic=0, batch_size=32, recal_images=32, max_width=8)
    from nas.supernet import cache_dir

    path = cache_dir(space, digits, runs_dir=tmp_path, settings=settings)
    path.parent.mkdir(parents=True)
    path.write_text("not a folder")
    with pytest.raises(SupernetCacheError, match="delete") as e:
        get_supernet(space, digits, runs_dir=tmp_path, settings=settings)
    assert str(path) in str(e.value)


def test_torch_device_is_not_in_the_cache_key(digits, space) -> None:
    from dataclasses import replace

    key = supernet_key(space, digits, TINY, 0)[0]
    for dev in ("auto", "cuda"):  # resolved only when training: a cache serves every device
        assert supernet_key(space, digits, replace(TINY, torch_device=dev), 0)[0] == key
    with pytest.raises(InputError, match="--torch-device"):
        replace(TINY, torch_device="gpu")


def test_cache_is_saved_from_and_loaded_onto_the_cpu(trained, digits, space, monkeypatch) -> None:
    """The weights file holds CPU tensors and is read with device="cpu" (safetensors' map_location),
    then moved to the settings' device: a cache trained on a GPU loads without one."""
    import safetensors.torch as st
    from safetensors import safe_open

    runs, sn, _ = trained
    with safe_open(str(sn.path / "weights.safetensors"), framework="pt") as f:
        saved = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    assert set(saved) == set(sn.model.weights.keys())
    calls: list[dict] = []
    real = st.load_file

    def spy(*a, **kw):
        calls.append(kw)
        return real(*a, **kw)

    monkeypatch.setattr(st, "load_file", spy)
    loaded = get_supernet(space, digits, runs_dir=runs, seed=0, settings=TINY, train=False)
    assert calls == [{"device": "cpu"}]
    for k, v in loaded.model.weights.items():
        assert v.device.type == "cpu" and torch.equal(v, saved[k]), k
