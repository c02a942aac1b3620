"""Export round trips: the vendor checkpoint, safetensors, the synthesis YAML and the int8 ONNX model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from devices import MAX78000
from nas.export import export_onnx_int8, load_checkpoint, onnx_agreement, onnx_weight_range
from nas.qat import QatConfig, run_qat
from nas.search import SearchConfig, run_search
from search_spaces import Network, get_space
from search_spaces._ai8x import vendor_integers
from search_spaces._fbnet_torch import INT8_WEIGHT_MAX

SPACE = {"max_units": 3, "widths": [16, 24], "max_depth": 1, "bits": [2, 4, 8]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    runs = tmp_path_factory.mktemp("runs")
    cfg = SearchConfig(device="max78000", budget_bytes=400_000, trials=5, runs_dir=runs, name="ex", seed=1,
                       max_train_images=64, estimator="naswot", estimator_options={"batch": 16}, space_options=SPACE)
    run_search(cfg)
    run_qat("ex", QatConfig(top=2, epochs=2, qat_epochs=2, anneal_epochs=1, max_train_images=300, init="scratch"),
            runs_dir=runs)
    summary = json.loads((runs / "ex" / "qat" / "summary.json").read_text())
    return runs / "ex", summary


def _networks(exported: tuple[Path, dict]):
    run, summary = exported
    space = get_space("ai8x", input_shape=(1, 28, 28), num_classes=10, **SPACE)
    for n in summary["networks"]:
        yield run / n["export_dir"], n, space.network(n["arch"])


def test_checkpoint_keys_shapes_bits_and_shifts(exported) -> None:
    from safetensors.torch import load_file

    for d, n, net in _networks(exported):
        ck = torch.load(d / f"{n['name']}_qat.pth.tar", weights_only=True)
        assert set(ck) == {"epoch", "arch", "state_dict", "extras"} and ck["epoch"] == 4
        state = ck["state_dict"]
        names = [layer.name for layer in net.layers]
        expected = {f"{nm}.{k}" for nm in names for k in ("op.weight", "op.bias", "weight_bits", "bias_bits",
                                                           "output_shift", "shift_quantile", "quantize_activation",
                                                           "adjust_output_shift")}
        assert set(state) == expected
        for nm, layer in zip(names, net.layers):
            w, b = state[f"{nm}.op.weight"], state[f"{nm}.op.bias"]
            if layer.flatten:
                assert tuple(w.shape) == (layer.out_channels, layer.in_channels * layer.in_dim[0] * layer.in_dim[1])
            else:
                assert tuple(w.shape) == (layer.out_channels, layer.in_channels, *layer.kernel)
            assert tuple(b.shape) == (layer.out_channels,)
            bits = int(state[f"{nm}.weight_bits"][0])
            shift = float(state[f"{nm}.output_shift"][0])
            assert bits == layer.weight_bits and shift == int(shift) and -15 <= shift <= 15
            assert state[f"{nm}.shift_quantile"][0] == (1.0 if bits == 8 else 0.99)
            # the integers the vendor's quantize.py derives are representable at the layer's bits
            wi = vendor_integers(w, bits, shift)
            assert wi.min() >= -(2 ** (bits - 1)) and wi.max() <= 2 ** (bits - 1) - 1
            assert torch.equal(wi, torch.round(wi))
            bi = vendor_integers(b, 8, shift)
            assert bi.min() >= -128 and bi.max() <= 127
        st = load_file(str(d / "weights.safetensors"))
        assert set(st) == set(state) and all(torch.equal(st[k], state[k]) for k in st)


def test_checkpoint_reproduces_the_quantised_accuracy(exported) -> None:
    from nas.data._data import load_dataset

    data = load_dataset(None, seed=1)
    x, y = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    for d, n, net in _networks(exported):
        model = load_checkpoint(torch.load(d / f"{n['name']}_qat.pth.tar", weights_only=True)["state_dict"], net)
        with torch.no_grad():
            acc = float((model(x).argmax(1) == y).float().mean())
        assert acc == pytest.approx(n["quant_test_acc"], abs=1e-6) and acc > 0.2
        for block, shift in zip(model.layers, model.output_shifts()):
            w, _ = block.effective_params()  # what the forward pass applies = integers * 2^shift / 2^(b-1)
            wi = vendor_integers(block.op.weight.detach(), block.weight_bits, shift)
            assert torch.equal(w.detach(), wi * 2.0**shift / 2 ** (block.weight_bits - 1))


def test_network_files_and_synthesis_yaml_follow_the_description(exported) -> None:
    dev = MAX78000()
    for d, n, net in _networks(exported):
        assert Network.load(d / "network.yaml").layers == net.layers
        doc = yaml.safe_load((d / "ai8x-synthesis.yaml").read_text())
        assert doc["arch"] == f"nas_{n['name'].replace('-', '_')}" and doc["dataset"] == "MNIST5K"
        ck = torch.load(d / f"{n['name']}_qat.pth.tar", weights_only=True)
        assert ck["arch"] == doc["arch"]
        layers, layout = doc["layers"], dev.layout(net)
        assert len(layers) == len(net.layers)
        for i, (y, layer, lay) in enumerate(zip(layers, net.layers, layout)):
            assert y["name"] == layer.name
            if layer.op == "linear":
                assert y["op"] == "mlp" and y["flatten"] is True and y["output_width"] == 32 and "pad" not in y
                assert y["activate"] == "None"  # the vendor warns when it is missing
            else:
                assert y["op"] == "conv2d" and y["pad"] == layer.pad[0]
                assert y["kernel_size"] == f"{layer.kernel[0]}x{layer.kernel[1]}"
                assert y["activate"] == "ReLU" and "flatten" not in y
            assert y.get("max_pool") == (layer.pool[0] if layer.is_pooled else None)
            assert y.get("pool_stride") == (layer.pool_stride[0] if layer.is_pooled else None)
            assert y["quantization"] == layer.weight_bits
            assert y["processors"] == lay.processors == ((1 << lay.placement.processors) - 1) << lay.placement.first_processor
            assert (y["in_offset"], y["out_offset"]) == (lay.in_offset, lay.out_offset)
            assert (y.get("data_format") == "CHW") == (i == 0)
        assert (d / "ai8x-synthesis.yaml").read_text().startswith("---\n")
        # the known-answer pair: the first test image as the chip gets it, our integer output for it
        x, out = np.load(d / "sample_input.npy"), np.load(d / "sample_output.npy")
        assert x.dtype == out.dtype == np.int64 and x.shape == tuple(net.input) and out.shape == (10, 1, 1)
        assert -128 <= x.min() < x.max() <= 127
        model = load_checkpoint(ck["state_dict"], net)
        assert np.array_equal(model.integer_forward(x[None])[0].reshape(10, 1, 1), out)
        card = (d / "model_card.md").read_text()
        for word in ("licence", "float", "quantised", "cycles", "weight memory", "nas qat ex", "initialisation",
                     "quantize.py", "--test-dir", f"--sample-input {(d / 'sample_input.npy').resolve()}",
                     "--device MAX78000", "--yamllint none", str((d / "sample_output.npy").resolve())):
            assert word in card, word


def _qdq_chains(path: Path) -> int:
    """Q -> DQ -> Q -> DQ runs in an ONNX graph (onnxruntime folds them into one pair)."""
    import onnx

    g = onnx.load(str(path)).graph
    prod = {o: n for n in g.node for o in n.output}
    count = 0
    for n in g.node:
        p = prod.get(n.input[0]) if n.op_type == "QuantizeLinear" else None
        pp = prod.get(p.input[0]) if p is not None and p.op_type == "DequantizeLinear" else None
        count += pp is not None and pp.op_type == "QuantizeLinear"
    return count


def test_onnx_int8_matches_pytorch_fake_quant(tmp_path: Path, int8_fbnet: Callable[[], torch.nn.Module]) -> None:
    import onnx

    q = int8_fbnet()
    path = export_onnx_int8(q, tmp_path / "m.onnx", (1, 16, 16))
    x = (np.random.default_rng(0).random((64, 1, 16, 16), dtype=np.float32) * 2 - 1).astype(np.float32)
    agr = onnx_agreement(q, path, x, np.zeros(64, dtype=np.int64))
    assert agr["ok"] and agr["argmax_agreement"] == 1.0 and agr["onnx_test_acc"] == agr["torch_test_acc"]
    # most images give the same logits; the rest differ by one-step roundings only
    assert agr["equal"] >= 0.5 and agr["sqnr_db"] > 40 and agr["max_abs_diff"] < 0.05
    g = onnx.load(str(path)).graph
    layers = [n for n in g.node if n.op_type in ("Conv", "Gemm")]
    # a Q/DQ pair per activation, a DQ of int8 integers per weight
    assert agr["quantize_linear"] >= 50 and agr["quantize_linear"] + len(layers) == agr["dequantize_linear"]
    assert _qdq_chains(path) == 0
    assert agr["weight_int_max"] == INT8_WEIGHT_MAX


def _weights(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Integers, scales and zero points of every Conv/Gemm weight, as the file stores them (the
    weight's DequantizeLinear reads an initializer, its scale and zero point through Identity nodes)."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path)).graph
    inits = {i.name: i for i in g.initializer}
    prod = {o: n for n in g.node for o in n.output}

    def const(name: str) -> onnx.TensorProto:
        while name not in inits:
            assert prod[name].op_type == "Identity"
            name = prod[name].input[0]
        return inits[name]

    out = {}
    for n in g.node:
        if n.op_type in ("Conv", "Gemm"):
            dq = prod[n.input[1]]
            assert dq.op_type == "DequantizeLinear" and dq.input[0] in inits
            q, scale, zp = (const(i) for i in dq.input)
            assert q.data_type == zp.data_type == onnx.TensorProto.INT8
            out[n.name] = (numpy_helper.to_array(q), numpy_helper.to_array(scale), numpy_helper.to_array(zp))
    return out


def test_onnx_weights_cannot_saturate_int16_pairs(tmp_path: Path, int8_fbnet: Callable[[], torch.nn.Module]) -> None:
    """On x86 without VNNI, onnxruntime multiplies uint8 activations (0..255; int8 ones are shifted
    by +128) by int8 weights with VPMADDUBSW, which saturates each sum of two products at int16:
    every weight integer in the file must keep 255 x (|w1| + |w2|) <= 32767, whatever the CPU
    this test runs on. Full-range int8 weights (up to 127) fail this."""
    from search_spaces._fbnet_torch import QConv2d, QLinear

    q = int8_fbnet()
    path = export_onnx_int8(q, tmp_path / "m.onnx", (1, 16, 16))
    weights = _weights(path)
    mods = [m for m in q.modules() if isinstance(m, (QConv2d, QLinear))]
    assert len(weights) == len(mods) == 56
    for ints, scale, zp in weights.values():
        a = np.abs(ints.astype(np.int64)).reshape(len(ints), -1)
        top2 = np.sort(a, axis=1)[:, -2:].sum(1) if a.shape[1] > 1 else a[:, 0]
        assert 255 * int(top2.max()) <= 32767  # the worst pair of products of any output channel
        assert not zp.any() and scale.shape == (len(ints),)  # symmetric, per output channel
        assert (a.max(1) == INT8_WEIGHT_MAX).all()  # each channel uses the range: no resolution thrown away
    # the integers are the ones the PyTorch model (and so QAT) computes with
    by_shape = {}
    for m in mods:
        by_shape.setdefault(tuple(m.weight.shape), []).append(m)
    for ints, scale, _ in weights.values():
        m = next(m for m in by_shape[ints.shape] if np.array_equal(m.w_scale.numpy(), scale))
        assert np.array_equal(m.int_weight().numpy(), ints)
        shape = (-1,) + (1,) * (ints.ndim - 1)
        assert torch.equal(m.qweight(), torch.tensor(ints, dtype=torch.float32) * m.w_scale.reshape(shape))
    assert onnx_weight_range(path) == {"weight_int_max": 63, "int16_pair_max": 32130}


def test_full_range_int8_weights_would_be_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 int8_fbnet: Callable[[], torch.nn.Module]) -> None:
    """Weights up to 127 (plain int8, what saturates on AVX2) make the ONNX check fail on any CPU."""
    import search_spaces._fbnet_torch as fbt

    monkeypatch.setattr(fbt, "INT8_WEIGHT_MAX", 127)
    q = int8_fbnet()
    path = export_onnx_int8(q, tmp_path / "m.onnx", (1, 16, 16))
    x = (np.random.default_rng(0).random((8, 1, 16, 16), dtype=np.float32) * 2 - 1).astype(np.float32)
    agr = onnx_agreement(q, path, x)
    assert agr["weight_int_max"] == 127 and agr["int16_pair_max"] > 32767 and not agr["int16_safe"]
    assert not agr["ok"]


def test_onnx_check_sees_a_float_bias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      int8_fbnet: Callable[[], torch.nn.Module]) -> None:
    """Without the int32 biases (onnxruntime rounds a float bias itself) no image's logits agree."""
    from search_spaces._fbnet_torch import Int8QatFBNet, _WeightFQ

    monkeypatch.setattr(Int8QatFBNet, "_bind_input_scales", lambda self: None)
    q = int8_fbnet()
    for m in q.modules():
        if isinstance(m, _WeightFQ):
            m.in_scale.zero_()
    path = export_onnx_int8(q, tmp_path / "m.onnx", (1, 16, 16))
    x = (np.random.default_rng(0).random((64, 1, 16, 16), dtype=np.float32) * 2 - 1).astype(np.float32)
    assert onnx_agreement(q, path, x)["equal"] < 0.1
