"""Export of trained networks: the vendor's checkpoint, YAML and sample for the MAX78000, int8
ONNX for phones, and the model card."""

from __future__ import annotations

from ._export import (
    accelerator_card_lines,
    checkpoint_state,
    export_max78000,
    export_onnx_int8,
    load_checkpoint,
    model_card,
    onnx_agreement,
    onnx_card_lines,
    onnx_summary,
    onnx_weight_range,
    sample_pair,
    synthesis_yaml,
    vendor_commands,
    vendor_layer_names,
)

__all__ = [
    "accelerator_card_lines",
    "checkpoint_state",
    "export_max78000",
    "model_card",
    "onnx_card_lines",
    "export_onnx_int8",
    "load_checkpoint",
    "onnx_agreement",
    "onnx_summary",
    "onnx_weight_range",
    "sample_pair",
    "synthesis_yaml",
    "vendor_commands",
    "vendor_layer_names",
]
