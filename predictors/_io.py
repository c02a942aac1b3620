"""Predictor files: ``.npz`` of plain arrays plus a JSON metadata entry (never pickle)."""

from __future__ import annotations

import json
import os
import zipfile
from importlib import metadata, resources
from typing import Any

import numpy as np

from search_spaces import get_space

from ._data import SPACES
from ._errors import ArtefactError, UnknownSpaceError

__all__ = ["save_predictor", "load_file", "load", "list_pretrained", "FORMAT", "FORMAT_VERSION"]

FORMAT = "hw-nas/latency-predictor"
FORMAT_VERSION = 4
# Version 2 (gp_features "hc"): arrays "cost_mean"/"cost_std" and member key "log_sc". Version 3
# (device_basis): arrays "basis_w"/"basis_b" and the parameter "device_basis". Older files (no
# such entries) are read unchanged (device_basis off); an older reader refuses newer files. A
# file is written with the oldest version that holds its entries. Version 4: the parameter
# "basis_fit" ("nnls": the basis enters the prior mean); files before it read as "gp".
_META = "__meta__"


def _version_of(pred: Any) -> int:
    """The oldest format version that holds everything ``pred`` writes."""
    if getattr(pred, "device_basis", False):
        return 4 if getattr(pred, "basis_fit", "gp") != "gp" else 3
    return 2 if hasattr(pred, "cost_mean_") else 1


def _package_version() -> str:
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
        "written_by": f"hw-nas {_package_version()}",
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
    for m, member in enumerate(pred.members_):
        for k, v in member.items():
            arrays[f"m{m}/{k}"] = np.asarray(v)
    if pred.is_adapted:
        meta["support_archs"] = [space.format(a) for a in pred.support_archs_]
        arrays["support_y"] = np.asarray(pred.support_y_, dtype=np.float64)
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)
    return path


def _read(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not os.path.exists(path):
        raise ArtefactError(f"predictor file {path!r} does not exist")
    if not zipfile.is_zipfile(path):
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4)
        if head == b"PK\x03\x04":
            raise ArtefactError(f"{path!r} is truncated or corrupt ({size} bytes); save or copy it again")
        raise ArtefactError(f"{path!r} is not a predictor file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if _META not in z.files:
                raise ArtefactError(f"{path!r} is an .npz archive but not a predictor file (no {_META} entry)")
            meta = json.loads(bytes(z[_META]).decode())
            arrays = {k: z[k] for k in z.files if k != _META}
    except ArtefactError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, UnicodeDecodeError) as e:
        raise ArtefactError(f"{path!r} is truncated or corrupt ({e}); save or copy it again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtefactError(f"{path!r} is not a latency-predictor file (format {meta.get('format')!r})"
                            if isinstance(meta, dict) else f"{path!r} has unreadable metadata")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtefactError(
            f"{path!r} was written by {meta.get('written_by', 'an unknown version')} with predictor format "
            f"version {version}; this hw-nas {_package_version()} reads versions <= {FORMAT_VERSION}: upgrade hw-nas"
        )
    return meta, arrays


def load_file(path: str | os.PathLike[str]) -> Any:
    """Load a predictor written by :meth:`LatencyPredictor.save` (adapted or not)."""
    from ._model import LatencyPredictor

    path = os.fspath(path)
    meta, arrays = _read(path)
    if meta.get("kind") != "LatencyPredictor":
        raise ArtefactError(f"{path!r} holds a {meta.get('kind')!r}, which this version cannot load")
    try:
        params = dict(meta["params"])
        params.setdefault("device_basis", False)  # files before version 3 have no device basis
        params.setdefault("basis_fit", "gp")  # nor do files before version 4 fit it by NNLS
        pred = LatencyPredictor(**params)
        pred.x_mean_ = arrays["x_mean"]
        pred.x_std_ = arrays["x_std"]
        pred.std_scale_ = float(arrays["std_scale"][0]) if "std_scale" in arrays else 1.0
        if pred.gp_features == "hc":
            pred.cost_mean_ = arrays["cost_mean"]
            pred.cost_std_ = arrays["cost_std"]
        if pred.device_basis:
            pred.basis_w_ = arrays["basis_w"]
            pred.basis_b_ = arrays["basis_b"]
            pred.basis_devices_ = meta.get("basis_devices", [])
        pred.members_ = [{k: arrays[f"m{m}/{k}"] for k in meta["member_keys"]}
                         for m in range(meta["n_members"])]
        space = get_space(pred.space)
        pred.ref_archs_ = [space.parse(a) for a in meta["ref_archs"]]
        pred.meta_train_devices_ = meta.get("meta_train_devices", [])
        pred.meta_valid_devices_ = meta.get("meta_valid_devices", [])
        pred.valid_spearman_ = meta.get("valid_spearman", [])
        if meta.get("adapted"):
            archs = [space.parse(a) for a in meta["support_archs"]]
            pred = pred.adapt(archs, arrays["support_y"])
    except KeyError as e:
        raise ArtefactError(f"{path!r} is incomplete: missing {e.args[0]!r}; save it again") from None
    except TypeError as e:
        raise ArtefactError(f"{path!r} has metadata this version cannot use ({e})") from None
    return pred


def list_pretrained() -> list[str]:
    """Spaces with a pretrained predictor shipped in the package."""
    root = resources.files("predictors").joinpath("pretrained")
    return sorted(s for s in SPACES if root.joinpath(f"{s}.npz").is_file())


def load(space: str) -> Any:
    """The pretrained (meta-trained, not yet adapted) predictor of ``space``."""
    if space not in SPACES:
        raise UnknownSpaceError(
            f"no latency predictor for search space {space!r}; available: {', '.join(SPACES)}"
        )
    res = resources.files("predictors").joinpath("pretrained", f"{space}.npz")
    if not res.is_file():
        raise ArtefactError(
            f"no pretrained predictor for {space!r} in this install; train one with "
            f"'nas predictor train --space {space}' and use predictors.load_file(path)"
        )
    with resources.as_file(res) as p:
        return load_file(p)
