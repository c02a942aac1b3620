from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch

from devices import get_device
from search_spaces import ArchitectureError, InputError, Network, get_space
from search_spaces._ai8x import quantize_weight

MAX78000_CONV_KERNELS = {(1, 1): (0, 0), (3, 3): (1, 1)}


def _archs(space, n: int = 40, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [space.random_arch(rng) for _ in range(n)]


def test_only_supported_operators() -> None:
    space = get_space("ai8x")
    for arch in _archs(space):
        net = space.network(arch)
        assert net.shape_errors() == []
        for i, layer in enumerate(net.layers):
            if i < len(net.layers) - 1:
                assert layer.op == "conv2d" and layer.activation == "relu"
                assert MAX78000_CONV_KERNELS[layer.kernel] == layer.pad
                assert layer.pool in ((1, 1), (2, 2)) and layer.pool == layer.pool_stride
                assert layer.pool_type == "max" and not layer.flatten
                assert layer.out_channels <= 256
            else:
                assert layer.op == "linear" and layer.flatten and not layer.is_pooled
            assert layer.weight_bits in (1, 2, 4, 8)
        assert not net.layers[0].is_pooled
        # the device check runs on every description and names broken rules as sentences
        rep = get_device("max78000").report(net)
        assert all(isinstance(v, str) and v for v in rep.violations)
        assert rep.fits == (not rep.violations)


def test_vendor_mnist_like_network_fits() -> None:
    space = get_space("ai8x", widths=(12, 56, 60))
    arch = "60k3b8,60k3b8|56k3b8|12k3b8|fcb8"
    rep = get_device("max78000").report(space.network(arch))
    assert rep.fits, rep.violations
    assert rep.layers == 5


@pytest.mark.parametrize("conv1d", [False, True])
def test_module_matches_network(conv1d: bool) -> None:
    shape = (4, 64, 1) if conv1d else (3, 32, 32)
    space = get_space("ai8x", input_shape=shape, num_classes=7, conv1d=conv1d)
    for arch in _archs(space, 6, seed=1):
        net = space.network(arch)
        model = space.build(arch)
        seen: list[tuple] = []
        hooks = [b.register_forward_hook(lambda m, i, o, seen=seen: seen.append((tuple(i[0].shape[2:]), o.shape[1])))
                 for b in model.layers]
        out = model(torch.randn(3, *shape))
        for h in hooks:
            h.remove()
        assert out.shape == (3, 7)
        assert len(model.layers) == len(net.layers)
        for block, layer, (in_hw, out_c) in zip(model.layers, net.layers, seen):
            assert block.weight_bits == layer.weight_bits
            assert out_c == layer.out_channels
            if layer.flatten:
                assert block.op.in_features == layer.in_channels * layer.in_dim[0] * layer.in_dim[1]
                assert block.op.out_features == layer.out_channels
                continue
            assert block.op.in_channels == layer.in_channels
            assert in_hw == (tuple(layer.in_dim[:1]) if conv1d else tuple(layer.in_dim))
            ks = block.op.kernel_size
            assert tuple(ks) == ((layer.kernel[0],) if conv1d else tuple(layer.kernel))
            assert (block.pool is not None) == layer.is_pooled
            assert isinstance(block.bn, torch.nn.modules.batchnorm._BatchNorm)


def test_first_last_8bit_default_and_option() -> None:
    space = get_space("ai8x")
    for arch in _archs(space, 30):
        bits = space.network(arch).bit_widths
        assert bits[0] == 8 and bits[-1] == 8
    with pytest.raises(ArchitectureError, match="8-bit"):
        space.parse("32k3b4|32k3b4|fcb8")
    free = get_space("ai8x", first_last_8bit=False)
    assert free.parse("32k3b4|32k3b4|fcb2")["fc_bits"] == 2
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    space.sample(trial)
    assert "u0_l0_bits" not in trial.params and "fc_bits" not in trial.params


def test_sample_uses_fixed_parameter_names() -> None:
    space = get_space("ai8x")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    names = set()
    for _ in range(5):
        t = study.ask()
        space.sample(t)
        names.add(frozenset(t.params))
        study.tell(t, 0.0)
    assert len(names) == 1


def test_string_form_and_errors() -> None:
    space = get_space("ai8x")
    a = space.parse("32k3b8,64k3b4|96k1b4|fcb8")
    assert a == {"units": [[{"width": 32, "kernel": 3, "bits": 8}, {"width": 64, "kernel": 3, "bits": 4}],
                           [{"width": 96, "kernel": 1, "bits": 4}]], "fc_bits": 8}
    for bad, word in [("32k5b8|32k3b8|fcb8", "kernel 5"), ("32k3b8|33k3b8|fcb8", "width 33"),
                      ("32k3b8|32k3b3|fcb8", "bits 3"), ("32k3b8|fcb8", "units"), ("32k3b8|32k3b8", "classifier"),
                      ("32x3|32k3b8|fcb8", "<width>k<kernel>b<bits>"), (7, "dict"),
                      ({"units": []}, "missing fc_bits")]:
        with pytest.raises(ArchitectureError, match=None) as e:
            space.parse(bad)
        assert word in str(e.value) and "\n" not in str(e.value)
        assert isinstance(e.value, InputError)


def test_max_units_follow_input_size() -> None:
    assert get_space("ai8x", input_shape=(1, 8, 8)).max_units == 4
    assert get_space("ai8x", input_shape=(1, 28, 28)).max_units == 5
    net = get_space("ai8x", input_shape=(1, 8, 8)).network("16k3b8|16k3b8|16k3b8|16k3b8|fcb8")
    assert net.layers[-1].in_dim == (1, 1)


def test_network_round_trips_through_yaml(tmp_path) -> None:
    space = get_space("ai8x")
    net = space.network(_archs(space, 1)[0])
    path = net.save(tmp_path / "n.yaml")
    assert Network.load(path).layers == net.layers


def test_vendor_weight_quantisation() -> None:
    w = torch.tensor([0.5, -0.26, 0.1, -0.01])
    # shift = ceil(log2 0.5) = -1: scaled to [1, -0.52, 0.2, -0.02]; 4-bit grid 1/8, top 7/8
    q = quantize_weight(w, 4) * 2.0
    assert torch.allclose(q, torch.tensor([0.875, -0.5, 0.25, 0.0]))
    assert set(quantize_weight(w, 1).tolist()) == {0.5, -0.5}
    assert torch.allclose(quantize_weight(w, 8), torch.round(w * 256) / 256, atol=1 / 256)
