"""int8 QAT preparation of FBNet (phones): where the quantisers sit and the int32 biases."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from search_spaces._fbnet_torch import ActFakeQuant, QConv2d, QLinear, _MBBlock


def test_each_activation_is_quantised_once(int8_fbnet: Callable[[], nn.Module]) -> None:
    q = int8_fbnet()
    kinds = []
    for layer in q.net.layers:
        wrapped = isinstance(layer, nn.Sequential) and isinstance(layer[0], _MBBlock)
        assert not wrapped or (len(layer) == 2 and isinstance(layer[1], ActFakeQuant))
        inner = layer[0] if wrapped else layer
        residual = isinstance(inner, _MBBlock) and inner.residual
        assert wrapped == residual  # a second quantiser only after a residual sum
        if isinstance(inner, _MBBlock) and not residual:
            assert isinstance(inner.body[-1][-1], ActFakeQuant)  # the block's last conv group quantises
        kinds.append("res" if residual else type(inner).__name__)
    assert {"res", "_MBBlock", "Identity"} <= set(kinds)


def test_eval_rounds_biases_to_int32_at_input_times_weight_scale(int8_fbnet: Callable[[], nn.Module]) -> None:
    q = int8_fbnet()
    layers = [m for m in q.modules() if isinstance(m, (QConv2d, QLinear))]
    # the stem reads the input quantiser, the classifier the pooled one, every other layer the
    # quantiser that ran last before it (recorded by hooks on a forward pass)
    order: list[nn.Module] = []
    hooks = [m.register_forward_pre_hook(lambda mod, _: order.append(mod)) for m in q.modules()
             if isinstance(m, (ActFakeQuant, QConv2d, QLinear))]
    with torch.no_grad():
        q(torch.zeros(1, 1, 16, 16))
    for h in hooks:
        h.remove()
    last: ActFakeQuant | None = None
    for m in order:
        if isinstance(m, ActFakeQuant):
            last = m
        else:
            assert last is not None and float(m.in_scale) == pytest.approx(float(last.qparams()[0]), rel=0, abs=0)
    assert len(layers) == sum(not isinstance(m, ActFakeQuant) for m in order)
    for m in layers:
        b = m.qbias()
        k = b / (m.in_scale * m.w_scale)
        assert ((k - torch.round(k)).abs() <= 1e-6 * k.abs() + 1e-3).all()  # integers, up to float32 division
        assert not torch.equal(b, m.bias)
        assert (b - m.bias).abs().max() <= 0.5 * float((m.in_scale * m.w_scale).max()) * (1 + 1e-5)
    q.train()
    assert all(m.qbias() is m.bias for m in layers)  # training keeps the float bias


def test_weights_use_the_7bit_range_in_training_and_eval(int8_fbnet: Callable[[], nn.Module]) -> None:
    """QAT trains the exported weight arithmetic: integers in [-63, 63] (INT8_WEIGHT_MAX), each
    output channel reaching 63; a stale scale clamps there too instead of using int8's full range."""
    from search_spaces._fbnet_torch import INT8_WEIGHT_MAX

    assert INT8_WEIGHT_MAX == 63  # 2 x 255 x 63 <= 32767: no int16 pair saturation on x86 without VNNI
    q = int8_fbnet()
    layers = [m for m in q.modules() if isinstance(m, (QConv2d, QLinear))]
    for training in (True, False):
        q.train(training)
        for m in layers:
            ints = m.int_weight().to(torch.int64).reshape(len(m.weight), -1)
            assert ints.abs().amax(1).tolist() == [INT8_WEIGHT_MAX] * len(m.weight)
    m = layers[3]
    with torch.no_grad():
        m.weight.mul_(3.0)  # eval keeps the frozen scale: these integers would be ~189
    assert int(m.int_weight().to(torch.int64).abs().max()) == INT8_WEIGHT_MAX
    m.qweight().sum().backward()
    assert 0 < float((m.weight.grad == 0).float().mean()) < 1  # straight-through inside the range only
