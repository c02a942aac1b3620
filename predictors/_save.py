"""Writing predictor files: ``.npz`` of plain arrays plus a JSON metadata entry (never pickle);
``predictors._io`` reads them."""

from __future__ import annotations

import json
import os
import tempfile
from importlib import metadata
from typing import Any

import numpy as np

from search_spaces import get_space

from ._errors import ArtefactError

__all__ = ["save_predictor", "package_version", "FORMAT", "FORMAT_VERSION", "META_KEY"]

FORMAT = "hw-nas/latency-predictor"
FORMAT_VERSION = 5
# Version 2 (gp_features "hc"): arrays "cost_mean"/"cost_std" and member key "log_sc". Version 3
# (device_basis): arrays "basis_w"/"basis_b" and the parameter "device_basis". Older files (no
# such entries) are read unchanged (device_basis off); an older reader refuses newer files. A
# file is written with the oldest version that holds its entries. Version 4: the parameter
# "basis_fit" ("nnls": the basis enters the prior mean); files before it read as "gp". Version 5
# (cost_head): arrays "ana_mean"/"ana_std" (standardisation of the analytic cost features) and
# "ana_prior_m"/"ana_prior_s" (the meta-learned prior of their weights), the parameter
# "cost_head"; files before it read with cost_head off (their predictions are unchanged).
META_KEY = "__meta__"
_META = META_KEY


def _version_of(pred: Any) -> int:
    """The oldest format version that holds everything ``pred`` writes."""
    if getattr(pred, "cost_head", False):
        return 5
    if getattr(pred, "device_basis", False):
        return 4 if getattr(pred, "basis_fit", "gp") != "gp" else 3
    return 2 if hasattr(pred, "cost_mean_") else 1


def package_version() -> str:
    try:
        return metadata.version("hw-nas")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def save_predictor(pred: Any, path: str | os.PathLike[str]) -> str:
    """Write ``pred`` to ``path`` (``.npz`` appended if missing); returns the path written."""
    if not hasattr(pred, "members_"):
        raise ArtefactError("cannot save a predictor that is not meta-trained; call fit() first")
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    space = get_space(pred.space)
    meta: dict[str, Any] = {
        "format": FORMAT,
        # the oldest version that holds everything written, so older readers keep working
        "format_version": _version_of(pred),
        "written_by": f"hw-nas {package_version()}",
        "kind": type(pred).__name__,
        "space": pred.space,
        "params": pred.get_params(),
        "n_members": len(pred.members_),
        "member_keys": sorted(pred.members_[0]),
        "ref_archs": [space.format(a) for a in pred.ref_archs_],
        "meta_train_devices": list(getattr(pred, "meta_train_devices_", [])),
        "meta_valid_devices": list(getattr(pred, "meta_valid_devices_", [])),
        "valid_spearman": [float(v) for v in getattr(pred, "valid_spearman_", [])],
        "adapted": bool(pred.is_adapted),
    }
    arrays: dict[str, np.ndarray] = {"x_mean": pred.x_mean_, "x_std": pred.x_std_,
                                     "std_scale": np.asarray([getattr(pred, "std_scale_", 1.0)])}
    if hasattr(pred, "cost_mean_"):
        arrays["cost_mean"] = np.asarray(pred.cost_mean_)
        arrays["cost_std"] = np.asarray(pred.cost_std_)
    if getattr(pred, "device_basis", False):
        arrays["basis_w"] = np.asarray(pred.basis_w_)
        arrays["basis_b"] = np.asarray(pred.basis_b_)
        meta["basis_devices"] = list(pred.basis_devices_)
    if getattr(pred, "cost_head", False):
        if not pred.has_cost_prior:
            raise ArtefactError("cannot save a cost_head predictor without its prior; call fit() or fit_cost_prior()")
        arrays["ana_mean"] = np.asarray(pred.ana_mean_)
        arrays["ana_std"] = np.asarray(pred.ana_std_)
        arrays["ana_prior_m"] = np.asarray(pred.ana_prior_m_)
        arrays["ana_prior_s"] = np.asarray(pred.ana_prior_s_)
        meta["ana_devices"] = list(getattr(pred, "ana_devices_", []))
    for m, member in enumerate(pred.members_):
        for k, v in member.items():
            arrays[f"m{m}/{k}"] = np.asarray(v)
    if pred.is_adapted:
        meta["support_archs"] = [space.format(a) for a in pred.support_archs_]
        arrays["support_y"] = np.asarray(pred.support_y_, dtype=np.float64)
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    # a unique temporary file renamed into place: a reader never sees half a file, two writers never share one
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
