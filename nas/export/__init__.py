"""Export of trained networks: the vendor's checkpoint, YAML and sample for the MAX78000, int8
ONNX for phones, and the model card."""

from __future__ import annotations

from ._export import (
    checkpoint_state,
    export_max78000,
    export_network,
    export_onnx_int8,
    load_checkpoint,
    onnx_agreement,
    onnx_summary,
    onnx_weight_range,
    sample_pair,
    synthesis_yaml,
    vendor_commands,
    vendor_layer_names,
)

__all__ = [
    "checkpoint_state",
    "export_max78000",
    "export_network",
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
