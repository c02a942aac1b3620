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


W = torch.tensor([0.5, -0.26, 0.1, -0.01])  # max |w| = 0.5 -> shift -1, w * 2 = [1, -0.52, 0.2, -0.02]


@pytest.mark.parametrize(("bits", "expected"), [
    # floor(x * 2^(b-1) + 0.5) / 2^(b-1), clamped to [-1, (2^(b-1)-1)/2^(b-1)], then * 2^shift = / 2
    (8, [127 / 256, -67 / 256, 26 / 256, -3 / 256]),  # [128, -66.06, 26.1, -2.06] -> [127, -67, 26, -3]
    (4, [7 / 16, -4 / 16, 2 / 16, 0.0]),  # [8.5, -3.66, 2.1, 0.34] -> [7 (clamped), -4, 2, 0]
    (2, [0.25, -0.25, 0.0, 0.0]),  # [2.5, -0.54, 0.9, 0.46] -> [1 (clamped), -1, 0, 0] / 2
    (1, [0.0, -0.5, 0.0, 0.0]),  # [1.5, -0.02, 0.7, 0.48] -> floor -> [0 (clamped), -1, 0, 0]: {-1, 0}
])
def test_vendor_weight_quantisation_each_bit_width(bits: int, expected: list[float]) -> None:
    from search_spaces._ai8x import output_shift, vendor_integers

    assert float(output_shift(W)) == -1.0
    q = quantize_weight(W, bits)
    assert q.tolist() == expected  # exact: every value is a power-of-two fraction
    ints = vendor_integers(W, bits, -1)
    assert ints.tolist() == [v * 2 * 2 ** (bits - 1) for v in expected]
    assert ints.min() >= -(2 ** (bits - 1)) and ints.max() <= 2 ** (bits - 1) - 1


def test_output_shift_uses_weights_and_bias_and_clamps() -> None:
    from search_spaces._ai8x import output_shift, quantize_bias, shift_quantile

    assert [shift_quantile(b) for b in (8, 4, 2, 1)] == [1.0, 0.99, 0.99, 0.99]
    # with the bias 1.5: 1/1.5 -> log2 = -0.58 -> floor -1 -> shift +1 (values halved)
    assert float(output_shift(W, torch.tensor([1.5]))) == 1.0
    assert float(output_shift(W * 0 + 1.0)) == 0.0  # max exactly 1: no shift
    assert float(output_shift(torch.tensor([1e-6]))) == -15.0  # -19 clamped
    assert float(output_shift(torch.tensor([1e6]))) == 15.0  # 20 clamped
    assert float(output_shift(torch.zeros(3))) == -15.0
    # quantize.py clamps to [bits - 23, bits + 7]: the hardware shift (+ 8 - bits) stays in [-15, 15]
    assert float(output_shift(torch.tensor([1e-6]), bits=1)) == -19.0
    assert float(output_shift(torch.zeros(3), bits=1)) == -22.0
    assert float(output_shift(torch.tensor([1e6]), bits=4)) == 11.0
    # quantile 0.5 of [4, 0.3, 0.2, 0.1] is 0.25 -> shift -2 (4 is then clipped to 127/128 * 2^-2)
    x = torch.tensor([4.0, 0.3, 0.2, 0.1])
    assert float(output_shift(x, quantile=0.5)) == -2.0
    assert float(quantize_weight(x, 8, quantile=0.5)[0]) == 127 / 128 / 4
    # 4-, 2- and 1-bit layers use the 0.99 quantile: of 1000 values, the single large one (a folded bias,
    # say) is clipped instead of setting the shift
    y = torch.cat([torch.full((999,), 0.2), torch.tensor([3.0])])
    assert float(output_shift(y)) == 2.0 and float(output_shift(y, quantile=0.99)) == -2.0
    # 0.2 * 4 = 0.8 -> floor(2.1) / 2 = 1, and 3 * 4 = 12: both clamped to 1/2, times 1/4
    assert quantize_weight(y, 2)[[0, -1]].tolist() == [0.125, 0.125]
    assert quantize_weight(y, 8)[[0, -1]].tolist() == [0.1875, 3.0]  # 8 bits: quantile 1.0, shift 2: 0.05 * 128 -> 6
    # bias: at the layer's weight bits and shift: 0.3 * 2 = 0.6 -> floor(76.8 + 0.5) = 77 -> 77/128 / 2
    assert quantize_bias(torch.tensor([0.3]), -1, 8).tolist() == [77 / 256]
    # 2 bits: 0.6 * 2 = 1.2 -> floor(1.7) = 1 -> 1/2 / 2; 1 bit: floor(0.6 + 0.5) = 1, clamped to 0
    assert quantize_bias(torch.tensor([0.3, -0.3]), -1, 2).tolist() == [0.25, -0.25]
    assert quantize_bias(torch.tensor([0.3, -0.3]), -1, 1).tolist() == [0.0, -0.5]


def _stats_model(network, seed: int = 0):
    from search_spaces._ai8x import build_module

    torch.manual_seed(seed)
    model = build_module(network, quantize=False)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(16, *network.input) * 1.5 - 0.75)
    return model.eval()


def test_bn_folding_preserves_float_outputs() -> None:
    from search_spaces._ai8x import fold_bn

    space = get_space("ai8x", input_shape=(2, 16, 16), num_classes=5)
    net = space.network("32k3b8,16k1b4|24k3b2|fcb8")
    model = _stats_model(net)
    keys = set(model.state_dict())
    x = torch.rand(8, 2, 16, 16) * 1.5 - 0.75
    with torch.no_grad():
        before = model(x)
        fold_bn(model)
        after = model(x)
    assert model.folded and set(model.state_dict()) == keys  # state_dict keys unchanged
    assert "layers.0.op.weight" in keys and "layers.0.bn.running_var" in keys
    assert torch.allclose(before, after, atol=1e-5)
    assert not torch.allclose(model.layers[0].bn.running_var, torch.zeros(32))  # buffers reset to 1
    assert torch.equal(model.layers[0].bn.running_var, torch.ones(32))


def test_folded_quantised_layer_is_the_vendor_arithmetic() -> None:
    from search_spaces._ai8x import fold_bn, output_shift, vendor_integers

    net = Network.from_dict({"input": [1, 6, 6], "layers": [
        {"op": "conv2d", "in_channels": 1, "out_channels": 3, "in_dim": [6, 6], "pad": 2, "weight_bits": 2},
        {"op": "linear", "in_channels": 3, "out_channels": 4, "in_dim": [8, 8], "flatten": True, "output_width": 32,
         "activation": "none", "weight_bits": 4},
    ]})
    model = _stats_model(net)
    fold_bn(model)
    model.set_quantize(True)
    x = torch.floor(torch.rand(2, 1, 6, 6) * 256 - 128) / 128  # Q7 input
    conv = model.layers[0].op
    shift = float(output_shift(conv.weight, conv.bias))
    assert model.output_shifts()[0] == int(shift)
    wi = vendor_integers(conv.weight.detach(), 2, shift)  # integers in [-2, 1]
    assert set(wi.unique().tolist()) <= {-2.0, -1.0, 0.0, 1.0}
    bi = vendor_integers(conv.bias.detach(), 2, shift)  # the bias at the layer's weight bits too
    assert set(bi.unique().tolist()) <= {-2.0, -1.0, 0.0, 1.0}
    # the accelerator: integer MACs on Q7 data, bias, times 2^shift, ReLU, clamp, round to 8 bits
    acc = torch.nn.functional.conv2d(x * 128, wi, None, padding=2) / 128 / 2 + (bi / 2).reshape(1, -1, 1, 1)
    y = torch.clamp(torch.relu(acc * 2.0**shift), -1, 127 / 128)
    y = torch.floor(y * 128 + 0.5) / 128
    with torch.no_grad():
        got = model.layers[0](x)
    assert torch.allclose(got, y, atol=1e-6)


def test_straight_through_gradient() -> None:
    from search_spaces._ai8x import fold_bn, output_shift, quantize_bias

    space = get_space("ai8x", input_shape=(1, 8, 8), num_classes=3)
    model = _stats_model(space.network("16k3b8|16k3b2|fcb8"))
    fold_bn(model)
    model.set_quantize(True)
    model.train()
    layer = model.layers[1]
    x = torch.rand(4, 16, 8, 8) * 0.3
    g = torch.randn(4, 16, 4, 4)
    (layer(x) * g).sum().backward()
    # reference: the same forward with the quantised weights as leaves, rounding of the output
    # passed straight through (gradient 1 inside the clamp range, 0 outside)
    w, b = layer.op.weight.detach(), layer.op.bias.detach()
    assert layer.shift_quantile == 0.99
    s = output_shift(w, b, layer.shift_quantile)
    wq = quantize_weight(w, 2, shift=s).requires_grad_()
    bq = quantize_bias(b, s, 2).requires_grad_()
    pre = torch.nn.functional.conv2d(layer.pool(x), wq, bq, padding=1)
    y = torch.clamp(torch.relu(pre), -1, 127 / 128)
    (y * g).sum().backward()
    assert torch.allclose(layer.op.weight.grad, wq.grad, atol=1e-5)
    assert torch.allclose(layer.op.bias.grad, bq.grad, atol=1e-5)
    assert layer.op.weight.grad.abs().sum() > 0


def test_ai85net5_pad2_module() -> None:
    from search_spaces._ai8x import build_module

    layers = [
        {"op": "conv2d", "in_channels": 1, "out_channels": 60, "in_dim": [28, 28]},
        {"op": "conv2d", "in_channels": 60, "out_channels": 60, "in_dim": [28, 28], "pad": 2, "pool": 2},
        {"op": "conv2d", "in_channels": 60, "out_channels": 56, "in_dim": [16, 16], "pool": 2},
        {"op": "conv2d", "in_channels": 56, "out_channels": 12, "in_dim": [8, 8], "pool": 2},
        {"op": "linear", "in_channels": 12, "out_channels": 10, "in_dim": [4, 4], "flatten": True,
         "activation": "none", "output_width": 32},
    ]
    net = Network.from_dict({"input": [1, 28, 28], "layers": layers})
    assert net.shape_errors() == [] and net.weight_bytes == 71_148 - 0  # the spec's weight figure
    assert build_module(net)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def _vendor_quantize(w: torch.Tensor, b: torch.Tensor, bits: int, quantile: float) -> tuple:
    """ai8x-synthesis ``izer/quantize.py`` ``convert_checkpoint`` (MAX_BIT_SHIFT, the QAT default) and
    ``izer/checkpoint.py`` reading the result back, restated line by line on float32 tensors."""
    params_r = torch.cat((torch.flatten(w), torch.flatten(b)))
    float_scale = 1.0 / torch.quantile(params_r.abs(), torch.tensor([quantile]))
    bit_shift = torch.floor(torch.log2(float_scale)).clamp(min=-7. - bits, max=23. - bits)
    distribution_factor = torch.pow(2., bit_shift)
    factor = 2 ** (bits - 1) * distribution_factor
    weights = (factor * w).add(.5).floor().clamp(min=-(2 ** (bits - 1)), max=2 ** (bits - 1) - 1)
    bias = b * distribution_factor
    bias = (2 ** (bits - 1) * bias).add(0.5).floor().clamp(min=-(2 ** (bits - 1)), max=2 ** (bits - 1) - 1)
    bias *= 2 ** (bits - 8)
    bias *= 2 ** (8 - 1)
    out_shift = -bit_shift
    bias_read = np.floor((bias / 2 ** (bits - 1)).numpy()).astype(np.int64)  # checkpoint.py
    return weights.numpy().astype(np.int64), bias_read, int(out_shift.item())


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_vendor_params_are_what_quantize_py_makes(bits: int) -> None:
    """Our integers (weights, bias at the layer's weight bits, output shift) equal the vendor's
    quantize.py restated, including values a hair below a rounding boundary in float32."""
    from search_spaces._ai8x import fold_bn

    net = Network.from_dict({"input": [3, 6, 6], "layers": [
        {"op": "conv2d", "in_channels": 3, "out_channels": 8, "in_dim": [6, 6], "pad": 1, "weight_bits": bits},
        {"op": "linear", "in_channels": 8, "out_channels": 4, "in_dim": [6, 6], "flatten": True,
         "output_width": 32, "activation": "none", "weight_bits": bits},
    ]})
    for seed in range(3):
        model = _stats_model(net, seed)
        fold_bn(model)
        model.set_quantize(True)
        with torch.no_grad():
            conv = model.layers[0].op
            s = model.layers[0].output_shift()
            step = 2.0 ** (s - bits + 1)  # one integer step of this layer
            # just below and at half steps, in float32
            conv.weight.view(-1)[:4] = torch.tensor([0.5 * step, 1.5 * step, -0.5 * step, -1.5 * step])
            conv.weight.view(-1)[4] = torch.nextafter(torch.tensor(0.5 * step), torch.tensor(0.0))
            conv.bias[:3] = torch.tensor([0.5 * step, -0.5 * step, 40.0 * step])  # the last clamps
        for block in model.layers:
            got = block.vendor_params()
            w, b, sh = _vendor_quantize(block.op.weight.detach(), block.op.bias.detach(), bits, block.shift_quantile)
            assert got["bits"] == bits and got["shift"] == sh
            assert np.array_equal(got["weight"], w) and np.array_equal(got["bias"], b)
            assert b.min() >= -(2 ** (bits - 1)) and b.max() <= 2 ** (bits - 1) - 1


@pytest.mark.parametrize("conv1d", [False, True])
def test_eval_forward_is_the_integer_forward(conv1d: bool) -> None:
    """In eval mode a folded quantised network computes the chip's integers exactly (1/2/4/8-bit
    layers, max and truncating average pools, a wide classifier)."""
    from search_spaces._ai8x import fold_bn, integer_forward

    op, dim = ("conv1d", [12, 1]) if conv1d else ("conv2d", [12, 12])
    half = [6, 1] if conv1d else [6, 6]
    pool = [2, 1] if conv1d else 2
    k = [3, 1] if conv1d else [3, 3]
    net = Network.from_dict({"input": [2, *dim], "layers": [
        {"op": op, "in_channels": 2, "out_channels": 16, "in_dim": dim, "pad": 1, "kernel": k, "weight_bits": 8},
        # 1-bit weights are {-1, 0} and so is the bias: after a ReLU the sums are <= 0, so ReLU would zero them
        {"op": op, "in_channels": 16, "out_channels": 12, "in_dim": dim, "pad": 1, "kernel": k, "weight_bits": 1,
         "activation": "abs"},
        {"op": op, "in_channels": 12, "out_channels": 10, "in_dim": dim, "pad": 1, "kernel": k, "weight_bits": 2,
         "pool": pool, "pool_type": "avg"},
        {"op": op, "in_channels": 10, "out_channels": 8, "in_dim": half, "pad": 1, "kernel": k, "weight_bits": 4,
         "pool": pool},
        {"op": "linear", "in_channels": 8, "out_channels": 5, "in_dim": [3, 1] if conv1d else [3, 3],
         "flatten": True, "output_width": 32, "activation": "none", "weight_bits": 8},
    ]})
    model = _stats_model(net, 1)
    fold_bn(model)
    model.set_quantize(True)
    model.eval()
    gen = torch.Generator().manual_seed(0)
    x_int = torch.randint(-128, 128, (16, 2, *dim), generator=gen)
    with torch.no_grad():
        logits = model(x_int.float() / 128)
    params = model.vendor_params()
    want = integer_forward(net, params, x_int.numpy())
    last = params[-1]
    scale = 2.0 ** last["shift"] / (128 * 2 ** (last["bits"] - 1))  # accumulator -> logit
    assert logits.dtype == torch.float64
    assert np.array_equal(logits.numpy() / scale, want.astype(np.float64))
    assert len(np.unique(want)) > 10  # not a degenerate (constant) network


def test_hidden_one_bit_layer_after_relu_outputs_zero() -> None:
    """The vendor's arithmetic: 1-bit weights and bias are {-1, 0} x 2^shift, so a 1-bit layer that
    reads ReLU outputs never sums above 0; its ReLU output is 0 and the network's output constant."""
    from search_spaces._ai8x import fold_bn

    space = get_space("ai8x", input_shape=(1, 8, 8), num_classes=4, bits=(1, 2, 4, 8))
    net = space.network("16k3b8,16k3b1|16k3b8|fcb8")
    model = _stats_model(net, 2)
    with torch.no_grad():
        model.layers[1].op.bias.uniform_(0.5, 1.0)  # a positive float bias does not help: it rounds to 0
    fold_bn(model)
    model.set_quantize(True)
    params = model.vendor_params()
    assert set(np.unique(params[1]["weight"]).tolist()) <= {-1, 0} and set(params[1]["bias"].tolist()) <= {-1, 0}
    x = torch.randint(-128, 128, (32, 1, 8, 8))
    out = model.integer_forward(x.numpy())
    assert (out == out[0]).all()
    net8 = space.network("16k3b8,16k3b8|16k3b8|fcb8")  # the same shape at 8 bits is not constant
    m8 = _stats_model(net8, 2)
    fold_bn(m8)
    m8.set_quantize(True)
    assert not (m8.integer_forward(x.numpy()) == m8.integer_forward(x.numpy())[0]).all()
