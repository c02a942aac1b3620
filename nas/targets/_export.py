"""Export of one QAT'd network of a run, by its target, with its model card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..export import model_card
from ..record import RunRecord
from ._base import space_in_run_name, target_for_run

__all__ = ["export_network"]


def export_network(model: Any, net: Any, out_dir: Path, *, record: RunRecord, data: Any, run_name: str,
                   network: Any = None, space: Any = None, qat_settings: dict[str, Any] | None = None) -> dict[str, Path]:
    """Export one QAT'd network of a run (its target's files: MAX78000 synthesis files, or int8
    ONNX) with its model card."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = target_for_run(record.space, record.device)
    files, _extra, device_lines, closing = target.export(model, net, out_dir, record=record, data=data, space=space,
                                                         network=network)
    files["model_card"] = out_dir / "model_card.md"
    files["model_card"].write_text(model_card(net, record=record, data=data, run_name=run_name, files=files,
                                              qat_settings=qat_settings or {}, device_lines=device_lines,
                                              closing_lines=closing, name_space=space_in_run_name(record.space)))
    return files
