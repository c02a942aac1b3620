"""Export of quantisation-aware-trained networks to ``runs/RUN/export/<network>/``.

MAX78000 (``ai8x`` space), for Analog Devices' synthesis tool (ai8x-synthesis):

* ``<network>_qat.pth.tar``: the checkpoint layout the tool reads, ``torch.save({"epoch", "arch",
  "state_dict", "extras"})``. This file *is* the vendor's format (a torch pickle, for the vendor's tool);
  our own artefacts stay pickle-free: ``weights.safetensors`` holds the same tensors. Per layer
  ``<layer>.op.weight`` and ``<layer>.op.bias`` are the trained float values with BatchNorm
  folded, at their trained scale, as ai8x-training's QAT checkpoints hold them; the vendor's
  ``quantize.py`` turns them into the integers ``floor(w * 2^-shift * 2^(b-1) + 0.5)`` clamped
  to the layer's b bits, the bias likewise *at the same b bits* and shift (``quantize.py``
  ``clamp_bits``; ``.bias_bits`` is written as b, as ``quantize.py`` writes it), the same
  integers our fake-quantised forward pass uses (``search_spaces._ai8x.vendor_integers``,
  ``quantize_bias``). ``<layer>.weight_bits``, ``.bias_bits``, ``.output_shift``,
  ``.shift_quantile``, ``.quantize_activation`` and ``.adjust_output_shift`` are one-element
  float tensors, as in ai8x-training.
* ``ai8x-synthesis.yaml``: the network file (``---``, ``arch``, ``dataset``, ``layers`` with
  ``op``, ``kernel_size``, ``pad``, ``max_pool``/``avg_pool`` + ``pool_stride``, ``activate``
  (``None`` where there is none), ``flatten`` (not on a 1x1 input, where the vendor warns it is
  not needed), ``output_width``, ``quantization`` (every layer, so the tool never guesses the
  bits from the values), ``processors`` (hex masks), ``in_offset``/``out_offset``,
  ``data_format: CHW`` on the first layer); processors and offsets come from our own placement
  and data-memory model (``MAX78000.layout``).
* ``sample_input.npy`` / ``sample_output.npy``: a known-answer pair. The input is one real test
  image as the chip receives it (int64 ``[C, H, W]``, -128..127; Conv1d ``[C, L]``), the output
  what the vendor's simulation writes for it (``expected.npy`` of ``ai8xize.py
  --sample-numpy-filename expected``: int64; a 32-bit wide classifier's raw accumulator,
  ``[classes, 1, 1]``), computed by our own integer forward pass
  (``search_spaces._ai8x.integer_forward``). The model card gives the commands that check it.

Phones (``fbnet`` space): ``model.onnx``, an int8 QDQ model (legacy exporter, opset 13) whose
onnxruntime outputs are compared with the PyTorch fake-quantised model on test images: weights
per output channel on the 7-bit range [-63, 63], stored as int8 initializers (no pair of
products can saturate the int16 sums of x86 CPUs without VNNI, so AVX2, AVX-512, VNNI and ARM
compute the same integers; ``search_spaces._fbnet_torch.INT8_WEIGHT_MAX``), activations int8
per tensor with a zero point, biases int32 at input x weight scale.

Both: ``network.yaml`` / ``network.json`` (our description) and ``model_card.md``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from ..estimators import cli_name
from ..record import RunRecord

__all__ = ["accelerator_card_lines", "onnx_card_lines", "model_card", "export_max78000", "export_onnx_int8", "checkpoint_state", "synthesis_yaml",
           "onnx_agreement", "onnx_summary", "onnx_weight_range", "vendor_layer_names", "load_checkpoint",
           "sample_pair", "vendor_commands"]

ONNX_OPSET = 13
ONNX_ATOL = 1e-3
"""Largest |onnxruntime - PyTorch| logit difference for an image's logits to count as equal."""
INT16_MAX = 32767
"""Largest sum of two uint8 x int8 products that VPMADDUBSW (x86 without VNNI) keeps exact."""
ONNX_MIN_AGREEMENT = 0.99
"""Share of test images on which onnxruntime and PyTorch must predict the same class.

Both compute the same int8 network (int32 biases at input x weight scale included), but PyTorch
sums a layer's products in float32 in its own order: an activation within that rounding of a
half step lands on the neighbouring int8 value and the one-step difference travels on, so the
logits of some images differ (by more images, the larger the network and its input) while the
predictions agree. The check therefore asks for equal predictions, and the card also gives the
share of images with equal logits, the SQNR and the largest difference; the figures measured on
MNIST fbnet networks are in benchmarks/results/qat_fbnet_weight_bits.md. With float biases
(onnxruntime then rounds them itself) hardly any image's logits are equal
(``tests/nas/test_export.py::test_onnx_check_sees_a_float_bias``). The weights' 7-bit range
(``search_spaces._fbnet_torch.INT8_WEIGHT_MAX``) makes the integers the same on every CPU.
"""


def vendor_layer_names(network: Any) -> list[str]:
    """Checkpoint prefixes: each layer's name, else ``l<i>`` (made unique and dot-free)."""
    names: list[str] = []
    for i, layer in enumerate(network.layers):
        n = re.sub(r"[^A-Za-z0-9_]", "_", layer.name or f"l{i}")
        while n in names:
            n += f"_{i}"
        names.append(n)
    return names


def checkpoint_state(model: Any, network: Any) -> dict[str, Any]:
    """The vendor-layout state_dict of a folded :class:`Ai8xNet` (see the module docstring)."""
    import torch

    if not getattr(model, "folded", False):
        raise ValueError("export needs a model with BatchNorm folded (search_spaces._ai8x.fold_bn)")
    state: dict[str, Any] = {}
    for name, block, layer in zip(vendor_layer_names(network), model.layers, network.layers):
        state[f"{name}.op.weight"] = block.op.weight.detach().clone().contiguous()
        if block.op.bias is not None:
            state[f"{name}.op.bias"] = block.op.bias.detach().clone().contiguous()
        state[f"{name}.weight_bits"] = torch.tensor([float(layer.weight_bits)])
        state[f"{name}.bias_bits"] = torch.tensor([float(layer.weight_bits)])  # quantize.py: clamp_bits
        state[f"{name}.output_shift"] = torch.tensor([float(block.output_shift())])
        state[f"{name}.shift_quantile"] = torch.tensor([float(block.shift_quantile)])
        state[f"{name}.quantize_activation"] = torch.tensor([1.0])
        state[f"{name}.adjust_output_shift"] = torch.tensor([1.0])
    return state


def load_checkpoint(state: dict[str, Any], network: Any) -> Any:
    """A fake-quantised, folded :class:`Ai8xNet` for ``network`` from a vendor-layout state_dict
    (:func:`checkpoint_state`, or the ``state_dict`` of a ``*_qat.pth.tar`` / ``weights.safetensors``)."""
    import torch

    from search_spaces import build_module

    model = build_module(network, quantize=True)
    with torch.no_grad():
        for name, block in zip(vendor_layer_names(network), model.layers):
            block.op.weight.copy_(state[f"{name}.op.weight"])
            if block.op.bias is not None:
                block.op.bias.copy_(state[f"{name}.op.bias"])
            block.shift_quantile = float(state[f"{name}.shift_quantile"][0])
            block.folded = True
    return model.eval()


def _kernel(layer: Any) -> str:
    if layer.op == "conv1d":
        return str(layer.kernel[0])
    return f"{layer.kernel[0]}x{layer.kernel[1]}"


def synthesis_yaml(network: Any, *, arch: str, dataset: str, device: Any = None) -> str:
    """The ai8x-synthesis network file (text; processor masks written in hex as the vendor does)."""
    from devices import get_device

    dev = device or get_device("max78000")
    layout = dev.layout(network)
    out = ["---", "# ai8x-synthesis network file written by nas (processors and offsets: our placement model)",
           f"arch: {arch}", f"dataset: {dataset}", "", "layers:"]
    names = vendor_layer_names(network)
    for i, (layer, lay) in enumerate(zip(network.layers, layout)):
        items: list[tuple[str, Any]] = [("name", names[i])]
        if layer.op == "linear":
            items.append(("op", "mlp"))
        else:
            items += [("op", layer.op), ("kernel_size", _kernel(layer))]
            items.append(("pad", layer.pad[0]))
        if layer.is_pooled:
            key = "avg_pool" if layer.pool_type == "avg" else "max_pool"
            pool = layer.pool[0] if layer.op == "conv1d" or layer.pool[0] == layer.pool[1] else list(layer.pool)
            stride = (layer.pool_stride[0] if layer.op == "conv1d" or layer.pool_stride[0] == layer.pool_stride[1]
                      else list(layer.pool_stride))
            items += [(key, pool), ("pool_stride", stride)]
        items.append(("activate", {"relu": "ReLU", "abs": "Abs", "none": "None"}[layer.activation]))
        if layer.flatten and tuple(layer.pooled_dim) != (1, 1):
            items.append(("flatten", "true"))
        if layer.output_width != 8:
            items.append(("output_width", layer.output_width))
        items.append(("quantization", layer.weight_bits))
        items.append(("processors", lay.processors_hex))
        items += [("in_offset", f"0x{lay.in_offset:04x}"), ("out_offset", f"0x{lay.out_offset:04x}")]
        if lay.chw:
            items.append(("data_format", "CHW"))
        first = True
        for k, v in items:
            out.append(f"  {'- ' if first else '  '}{k}: {v}")
            first = False
    return "\n".join(out) + "\n"


def _arch_name(name: str) -> str:
    return "nas_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def sample_pair(model: Any, network: Any, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The known-answer pair of one input image (values in [-1, 127/128], as the data holds them):
    the chip's input integers ``clip(round(x * 128), -128, 127)`` (int64 ``[C, H, W]``; Conv1d
    ``[C, L]``) and the last layer's output as the vendor's simulation writes it (int64; a
    classifier's ``[classes, 1, 1]``), by our integer forward pass of the folded ``model``."""
    x = np.clip(np.round(np.asarray(image, dtype=np.float64) * 128.0), -128, 127).astype(np.int64)
    conv1d = any(l.op == "conv1d" for l in network.layers)
    if conv1d and x.ndim == 3:
        x = x.reshape(x.shape[0], -1)
    out = model.integer_forward(x[None])[0]
    if network.layers[-1].op == "linear" or out.ndim == 1:
        out = out.reshape(-1, 1, 1)
    return x, out.astype(np.int64)


def export_max78000(model: Any, network: Any, out_dir: Path, *, name: str, dataset: str, epoch: int,
                    arch: str | None = None, sample: np.ndarray | None = None, device: Any = None) -> dict[str, Path]:
    """Write the vendor checkpoint, safetensors, synthesis YAML, our description and (given one
    test image ``sample``, values in [-1, 127/128]) the known-answer pair (:func:`sample_pair`).
    ``device``: the accelerator of the MAX78000 family whose placement the YAML holds (None:
    the MAX78000)."""
    import torch
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    arch = arch or _arch_name(name)
    state = checkpoint_state(model, network)
    files = {
        "checkpoint": out_dir / f"{name}_qat.pth.tar",
        "safetensors": out_dir / "weights.safetensors",
        "synthesis_yaml": out_dir / "ai8x-synthesis.yaml",
        "network": out_dir / "network.yaml",
    }
    # "extras" (empty): quantize.py warns "No `extras` in checkpoint file." without it
    torch.save({"epoch": int(epoch), "arch": arch, "state_dict": state, "extras": {}}, files["checkpoint"])
    save_file(state, str(files["safetensors"]), metadata={"arch": arch, "epoch": str(int(epoch))})
    files["synthesis_yaml"].write_text(synthesis_yaml(network, arch=arch, dataset=dataset, device=device))
    network.save(files["network"])
    if sample is not None:
        x, y = sample_pair(model, network, sample)
        files["sample_input"] = out_dir / "sample_input.npy"
        files["sample_output"] = out_dir / "sample_output.npy"
        np.save(files["sample_input"], x, allow_pickle=False)
        np.save(files["sample_output"], y, allow_pickle=False)
    return files


def export_onnx_int8(model: Any, out_path: Path, input_shape: tuple[int, ...]) -> Path:
    """The int8 QDQ ONNX model of a fake-quantised (eval-mode) module (legacy exporter).

    The exporter writes each weight as a float tensor and a QuantizeLinear; that node is replaced
    by an int8 initializer holding the integers the PyTorch model computes with (``int_weight()``
    of ``search_spaces._fbnet_torch``'s layers: the 7-bit range of ``INT8_WEIGHT_MAX``), read by
    the same per-channel DequantizeLinear. The file then holds the weights a runtime multiplies.
    """
    import warnings

    import onnx
    import torch

    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, *input_shape), str(out_path), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    ints = {f"{name}.weight": m for name, m in model.named_modules() if hasattr(m, "int_weight")}
    proto = onnx.load(str(out_path))
    _store_int8_weights(proto, ints)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out_path))
    return out_path


def _store_int8_weights(proto: Any, layers: dict[str, Any]) -> None:
    """Replace each weight's QuantizeLinear (float initializer in) by an int8 initializer of the
    layer's ``int_weight()``, after checking that its scale and zero point are the layer's."""
    from onnx import numpy_helper

    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    identity = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Identity"}

    def const(name: str) -> np.ndarray:
        while name not in inits and name in identity:  # the exporter shares equal constants via Identity
            name = identity[name]
        if name not in inits:
            raise ValueError(f"ONNX export: {name!r} is not a constant")
        return numpy_helper.to_array(inits[name])

    drop: list[Any] = []
    for node in g.node:
        if node.op_type != "QuantizeLinear":
            continue
        src = node.input[0]
        while src not in inits and src in identity:  # a weight equal to another one's, shared via Identity
            src = identity[src]
        if src not in inits:
            continue
        m = layers.get(node.input[0], layers.get(src))
        if m is None:
            raise ValueError(f"ONNX export: weight {node.input[0]!r} has no quantised layer in the model")
        scale, zp = const(node.input[1]), const(node.input[2])
        if not (np.array_equal(scale, m.w_scale.numpy()) and not zp.any()):
            raise ValueError(f"ONNX export: the scale or zero point of {node.input[0]!r} is not the layer's")
        q = numpy_helper.from_array(m.int_weight().numpy(), name=f"{node.input[0]}.int8")
        g.initializer.append(q)
        for other in g.node:
            for k, name in enumerate(other.input):
                if name == node.output[0]:
                    other.input[k] = q.name
        drop.append(node)
    for node in drop:
        g.node.remove(node)
    while True:  # drop what only the replaced nodes read (float weights, Identity-shared zero points)
        used = {name for n in g.node for name in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if n.op_type == "Identity" and n.output[0] not in used]
        for n in dead:
            g.node.remove(n)
        if not dead:
            break
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)


def onnx_weight_range(onnx_path: Path) -> dict[str, int]:
    """The largest |weight integer| of an int8 QDQ model and its worst pair of products.

    Weights are the int8 initializers that DequantizeLinear nodes read into a Conv or Gemm;
    ``int16_pair_max`` is ``2 x 255 x weight_int_max``, the largest |a1 w1 + a2 w2| for
    activations in [0, 255] (onnxruntime's x86 kernels shift int8 activations to uint8 by +128),
    which must not exceed :data:`INT16_MAX` for VPMADDUBSW (x86 without VNNI) not to saturate.
    """
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(onnx_path)).graph
    inits = {i.name: i for i in g.initializer}
    prod = {o: n for n in g.node for o in n.output}
    top = 0
    for n in g.node:
        if n.op_type in ("Conv", "Gemm"):
            dq = prod.get(n.input[1])
            w = inits.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if w is None or w.data_type != onnx.TensorProto.INT8:
                raise ValueError(f"{onnx_path}: {n.op_type} {n.name!r} does not read int8 weights")
            top = max(top, int(np.abs(numpy_helper.to_array(w).astype(np.int64)).max()))
    return {"weight_int_max": top, "int16_pair_max": 2 * 255 * top}


def onnx_agreement(model: Any, onnx_path: Path, x: np.ndarray, y: np.ndarray | None = None) -> dict[str, Any]:
    """onnxruntime (default optimisations, 1 thread) vs the PyTorch fake-quantised model on ``x``.

    Returns whether the predictions agree on at least :data:`ONNX_MIN_AGREEMENT` of the images
    and no pair of weight products can saturate int16 (``ok``; ``int16_safe``: see
    :func:`onnx_weight_range`; such a model computes differently on x86 CPUs without VNNI, so
    agreement on this machine would not carry over), the argmax agreement, the share of images whose logits are equal within
    :data:`ONNX_ATOL`, the SQNR of the logits (dB; None when identical), the largest difference, both test accuracies
    when labels ``y`` are given, the Q/DQ node counts and :func:`onnx_weight_range`.
    """
    import onnx
    import onnxruntime as ort
    import torch

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    got = np.concatenate([sess.run(None, {"input": x[s : s + 256]})[0] for s in range(0, len(x), 256)])
    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    ops: dict[str, int] = {}
    for node in onnx.load(str(onnx_path)).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    per_image = np.abs(got - ref).reshape(len(x), -1).max(1)
    agree = float((got.argmax(1) == ref.argmax(1)).mean())
    noise = float(((got - ref).astype(np.float64) ** 2).sum())
    rng = onnx_weight_range(onnx_path)
    safe = rng["int16_pair_max"] <= INT16_MAX
    out = {"images": int(len(x)), "ok": agree >= ONNX_MIN_AGREEMENT and safe, "argmax_agreement": agree,
           "min_agreement": ONNX_MIN_AGREEMENT, "equal": float((per_image <= ONNX_ATOL).mean()), "atol": ONNX_ATOL,
           "sqnr_db": float(10 * np.log10((ref.astype(np.float64) ** 2).sum() / noise)) if noise > 0 else None,
           "max_abs_diff": float(per_image.max()),
           "quantize_linear": ops.get("QuantizeLinear", 0), "dequantize_linear": ops.get("DequantizeLinear", 0),
           **rng, "int16_safe": safe}
    if y is not None:
        out["onnx_test_acc"] = float((got.argmax(1) == y).mean())
        out["torch_test_acc"] = float((ref.argmax(1) == y).mean())
    return out


def _search_command(record: RunRecord, run_name: str, name_space: bool) -> str:
    parts = ["nas search", f"--device {record.device}"]
    if name_space:
        parts.append(f"--space {record.space}")
    if record.budget_bytes is not None:
        parts.append(f"--budget {record.budget_bytes}B")
    if record.latency_ms is not None:
        parts.append(f"--latency {record.latency_ms:g}ms")
    if record.ram_bytes is not None:
        parts.append(f"--ram {record.ram_bytes}B")
    if record.data.path:  # the user's npz, image folder, IDX or CIFAR folder (None: built-in data)
        parts.append(f"--data {shlex.quote(record.data.path)}")
        if record.data.image_size is not None:
            parts.append(f"--data-image-size {record.data.image_size[0]}x{record.data.image_size[1]}")
    else:
        src = str(record.data.source or "")
        if src.startswith("user file "):  # runs saved before Dataset.path existed
            parts.append(f"--data {shlex.quote(src[len('user file '):])}")
    est = record.estimator_key
    if est:
        parts.append(f"--accuracy {cli_name(est)}")
    parts += [f"--seed {record.data_seed}", f"--name {run_name}"]
    return " ".join(parts)


def onnx_summary(o: dict[str, Any]) -> str:
    """A short form of :func:`onnx_agreement`'s result (CLI and ``qat.md``)."""
    safe = o.get("int16_safe")  # absent in runs exported before 7-bit weights
    rng = "" if safe is None else (f", weights |w| <= {o['weight_int_max']}" + ("" if safe else " (int16 pairs can "
                                                                                    "saturate on x86 without VNNI)"))
    return (f"ONNX check {'pass' if o['ok'] else 'FAIL'} (argmax agreement {100 * o['argmax_agreement']:.2f}% on "
            f"{o['images']} test images, logits equal on {100 * o['equal']:.1f}%{rng})")


def _arithmetic_line(o: dict[str, Any]) -> str:
    from search_spaces import INT8_WEIGHT_MAX  # (read at call time: the fbnet torch module)

    top, pair = o["weight_int_max"], o["int16_pair_max"]
    verdict = ("no pair can saturate the int16 sums of x86 CPUs without VNNI (VPMADDUBSW), so AVX2, AVX-512, "
               "VNNI and ARM CPUs compute the same integers" if o["int16_safe"] else
               "pairs CAN SATURATE the int16 sums of x86 CPUs without VNNI (VPMADDUBSW): results depend on the CPU")
    return (f"- int8 arithmetic (trained by QAT, exported, run by onnxruntime): weights symmetric per output channel "
            f"on the 7-bit range [-{INT8_WEIGHT_MAX}, {INT8_WEIGHT_MAX}] stored as int8 (largest |integer| in "
            "`model.onnx`: "
            f"{top}); activations int8 per tensor with a zero point (onnxruntime's x86 kernels read them as uint8 "
            f"0..255); biases int32 at input x weight scale; worst sum of two products 2 x 255 x {top} = {pair:,} "
            f"({'within' if o['int16_safe'] else 'over'} {INT16_MAX:,}): {verdict}")


def _onnx_line(o: dict[str, Any]) -> str:
    acc = (f"; test accuracy {100 * o['onnx_test_acc']:.2f}% in onnxruntime, {100 * o['torch_test_acc']:.2f}% in "
           "PyTorch" if "onnx_test_acc" in o else "")
    return (f"- ONNX (int8 QDQ, opset {ONNX_OPSET}), onnxruntime (default optimisations: integer kernels) vs the "
            f"PyTorch quantised model on {o['images']} test images: {'pass' if o['ok'] else 'FAIL'}: "
            + ("" if o["int16_safe"] else "weights can saturate int16 pairs (see above); ") + "argmax agreement "
            f"{100 * o['argmax_agreement']:.2f}% (required {100 * o['min_agreement']:.0f}%){acc}; logits equal "
            f"(|diff| <= {o['atol']:g}) on {100 * o['equal']:.1f}% of the images, the others differ by one-step "
            "roundings of PyTorch's float32 sums: "
            + (f"SQNR {o['sqnr_db']:.1f} dB, max |diff| {o['max_abs_diff']:.3g}" if o["sqnr_db"] is not None
               else "none differ (SQNR infinite)"))


def vendor_commands(files: dict[str, Path], *, prefix: str, part: str = "MAX78000") -> list[str]:
    """Model-card lines: the vendor's quantise + synthesise commands for this export (absolute
    paths, to paste into a shell in the ai8x-synthesis folder) and the known-answer check;
    ``part``: the chip (``--device``)."""
    d = Path(files["checkpoint"]).resolve().parent
    ck = d / Path(files["checkpoint"]).name
    q = d / Path(files["checkpoint"]).name.replace("_qat.pth.tar", "_q.pth.tar")
    out = d / "synthesis"
    lines = [
        "With Analog Devices' ai8x-synthesis (run in its folder; `--yamllint none` unless yamllint is installed): "
        "quantise, then synthesise the C project and simulate the sample input:",
        "```",
        f"python quantize.py {ck} {q} --device {part}",
        f"python ai8xize.py --test-dir {out} --prefix {prefix} --checkpoint-file {q} "
        f"--config-file {d / 'ai8x-synthesis.yaml'} --device {part} --compact-data --mexpress --timer 0 "
        "--softmax --yamllint none --verbose"
        + (f" --sample-input {d / 'sample_input.npy'} --sample-numpy-filename expected" if "sample_input" in files
           else ""),
        "```",
    ]
    if "sample_input" in files:
        lines += [
            f"`{out / prefix / 'log.txt'}` then holds the vendor's cycle and memory estimate, and the output the chip "
            "must give for `sample_input.npy` (our integer arithmetic: `sample_output.npy`) must equal the vendor's:",
            "```",
            f"python -c \"import numpy as n; a = n.load('{out / prefix / 'expected.npy'}'); "
            f"b = n.load('{d / 'sample_output.npy'}'); print('identical' if (a == b).all() else 'DIFFERENT')\"",
            "```",
        ]
    return lines


def model_card(net: Any, *, record: RunRecord, data: Any, run_name: str, files: dict[str, Path],
               qat_settings: dict[str, Any], device_lines: list[str], closing_lines: list[str],
               name_space: bool = True) -> str:
    """``model_card.md``: data and licence, split, accuracy, latency, memory, placement, commands
    (``device_lines``: the target's section; ``closing_lines`` end the card; ``name_space``: the
    search command names the space)."""
    q = qat_settings
    lines = [
        f"# {net.name}: `{net.arch}`",
        "",
        f"Found by `nas search` (run `{run_name}`, device {record.device}), fine-tuned by `nas qat`.",
        "",
        "## Data",
        f"- {data.name}: {data.source}",
        f"- licence: {data.licence}",
        f"- split (stratified, seed {record.data_seed}): {len(data.y_train)} train / {len(data.y_val)} "
        f"validation / {len(data.y_test)} test; input {'x'.join(map(str, data.input_shape))}, "
        f"{data.num_classes} classes" + (f"; QAT used the first {net.extra.get('n_train')} training images"
                                         if net.extra.get("n_train") not in (None, len(data.y_train)) else ""),
        "",
        f"## Accuracy (test split, {net.extra.get('n_test', len(data.y_test))} images, scored once after training)",
        f"- float (after {net.epochs} float epochs, best validation epoch {net.best_float_epoch}): "
        f"{100 * net.float_test_acc:.2f}% (validation {100 * net.float_val_acc:.2f}%)",
        f"- quantised (after {net.qat_epochs} QAT epochs, best validation epoch {net.best_qat_epoch}): "
        f"{100 * net.quant_test_acc:.2f}% (validation {100 * net.quant_val_acc:.2f}%); "
        f"delta {100 * (net.quant_test_acc - net.float_test_acc):+.2f} points",
        f"- initialisation: {net.init}",
        f"- search estimate ({record.metric}): {net.extra.get('estimate')}",
    ]
    if net.extra.get("torch_device"):
        lines.append(f"- QAT trained and scored on torch device {net.extra['torch_device']}"
                     + (f"; the search ran on {record.torch_device}" if record.torch_device else ""))
    lines.append("")
    lines += device_lines
    lines += ["## Files"]
    for k, p in files.items():
        if k != "model_card":
            lines.append(f"- `{Path(p).name}` ({k})")
    qat_cmd = (f"nas qat {run_name} --top {q.get('top')} --epochs {q.get('epochs')} --qat-epochs {q.get('qat_epochs')} "
               f"--seed {q.get('seed')}" + (f" --init {q['init']}" if q.get("init") not in (None, "auto") else ""))
    lines += ["", "## Reproduce", "```", _search_command(record, run_name, name_space), qat_cmd, "```"]
    lines += closing_lines
    return "\n".join(lines) + "\n"


def accelerator_card_lines(dev: dict[str, Any], network: Any, files: dict[str, Path], device: Any = None) -> list[str]:
    """The model card's section of a MAX78000-family accelerator (``device``; None: the MAX78000):
    figures of the device check and the kernel placement."""
    from devices import get_device

    device = device or get_device("max78000")
    hw = device.hardware
    lines: list[str] = []
    lines += [
        f"## {hw.part} figures (our model of the vendor's rules and cycle estimate)",
        f"- latency: {dev['cycles']:,} cycles = {dev['latency_ms']:.3f} ms at {device.clock_hz / 1e6:g} MHz (CNN only)",
        f"- weight memory: {dev['weight_bytes']:,} B of {hw.weight_memory_bytes:,}; bias {dev['bias_bytes']:,} B; "
        f"layers {dev['layers']}; bit widths {'/'.join(map(str, dev['bit_widths']))}",
        f"- device check: {'pass' if dev['fits'] else 'FAIL: ' + '; '.join(dev['violations'])}",
        "",
        "## Placement (kernel memory; processors as in the synthesis YAML)",
        "| layer | op | processors | columns | in_offset | out_offset | output shift |",
        "|---|---|---|---|---|---|---|",
    ]
    import torch

    layout = device.layout(network)

    ck = torch.load(files["checkpoint"], weights_only=True) if files.get("checkpoint") else {}
    for i, (nm, lay, layer) in enumerate(zip(vendor_layer_names(network), layout, network.layers)):
        p = lay.placement
        cols = f"{p.column}-{p.end_column - 1}" if p else "-"
        sh = int(ck["state_dict"][f"{nm}.output_shift"][0]) if ck else ""
        lines.append(f"| {i} ({nm}) | {layer.op} | {lay.processors_hex} | {cols} | 0x{lay.in_offset:04x} | "
                     f"0x{lay.out_offset:04x} | {sh} |")
    lines.append("")
    return lines


def onnx_card_lines(device: str, dev: dict[str, Any], onnx: dict[str, Any]) -> list[str]:
    """The model card's section of a device with predicted latency: figures, int8 arithmetic, ONNX check."""
    lines: list[str] = []
    lines += [
        f"## {device} figures",
        f"- predicted latency: {dev['latency_ms']:.3f} ms (std {dev['std_ms']:.3f} ms; the device's predictor)",
        f"- int8 size: {dev['size_bytes']:,} B (weights {dev['weights']:,} + 4 x biases {dev['biases']:,}); "
        f"peak int8 activation RAM {dev['peak_ram_bytes']:,} B",
        f"- limits: {'pass' if dev['fits'] else 'FAIL: ' + '; '.join(dev['violations'])}",
        _arithmetic_line(onnx),
        _onnx_line(onnx),
        "",
    ]
    return lines
