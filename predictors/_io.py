"""Predictor files: ``.npz`` of plain arrays plus a JSON metadata entry (never pickle)."""

from __future__ import annotations

import json
import os
import zipfile
from importlib import resources
from typing import Any

import numpy as np

from search_spaces import get_space

from ._cost import cost_feature_names
from ._data import SPACES
from ._errors import ArtefactError, InputError, UnknownSpaceError
from ._model import LatencyPredictor
from ._save import FORMAT, FORMAT_VERSION, META_KEY, package_version, save_predictor

_META = META_KEY

__all__ = ["save_predictor", "load_file", "load", "list_pretrained", "FORMAT", "FORMAT_VERSION"]

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
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArtefactError(f"{path!r} is damaged: its predictor format version {version!r} is not one of "
                            f"1..{FORMAT_VERSION}; save or copy it again")
    if version > FORMAT_VERSION:
        raise ArtefactError(
            f"{path!r} was written by {meta.get('written_by', 'an unknown version')} with predictor format "
            f"version {version}; this hw-nas {package_version()} reads versions <= {FORMAT_VERSION}: upgrade hw-nas"
        )
    for k, a in arrays.items():
        if a.dtype.kind not in "fiu":
            raise ArtefactError(f"{path!r} is damaged: array {k!r} holds {a.dtype}, not numbers; save or copy it again")
    return meta, arrays


def _check(path: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Types and shapes of a predictor file's entries (raises :class:`ArtefactError` naming the first problem)."""

    def bad(what: str) -> ArtefactError:
        return ArtefactError(f"{path!r} is damaged: {what}; save or copy it again")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def strings(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)

    if not isinstance(meta.get("params"), dict):
        raise bad("its 'params' are not an object")
    if not (is_int(meta.get("n_members")) and meta["n_members"] >= 1):
        raise bad(f"'n_members' {meta.get('n_members')!r} is not a positive count")
    if not strings(meta.get("member_keys")) or not meta["member_keys"]:
        raise bad("'member_keys' is not a list of names")
    if not strings(meta.get("ref_archs")):
        raise bad("'ref_archs' is not a list of architectures")
    if not isinstance(meta.get("adapted", False), bool):
        raise bad(f"'adapted' {meta.get('adapted')!r} is not true or false")
    for k in ("meta_train_devices", "meta_valid_devices", "basis_devices", "ana_devices"):
        if k in meta and not strings(meta[k]):
            raise bad(f"{k!r} is not a list of names")
    if "valid_spearman" in meta and not (isinstance(meta["valid_spearman"], list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in meta["valid_spearman"])):
        raise bad("'valid_spearman' is not a list of numbers")
    for k, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise bad(f"array {k!r} holds NaN or infinite values")
    mean, std = arrays.get("x_mean"), arrays.get("x_std")
    if mean is None or std is None:
        return  # reported as missing by the caller
    if mean.ndim != 1 or std.shape != mean.shape:
        raise bad(f"'x_mean' {list(mean.shape)} and 'x_std' {list(std.shape)} must be vectors of the same length")
    if not (std > 0).all():
        raise bad("'x_std' holds values <= 0")
    d = mean.shape[0]
    for m in range(meta["n_members"]):
        w = arrays.get(f"m{m}/W0x")
        if w is not None and (w.ndim != 2 or w.shape[0] != d):
            raise bad(f"member {m}'s first layer 'W0x' {list(w.shape)} does not take the {d} features of "
                      f"'x_mean' {list(mean.shape)}")
        for k in meta["member_keys"]:
            a, a0 = arrays.get(f"m{m}/{k}"), arrays.get(f"m0/{k}")
            if a is not None and a0 is not None and a.shape != a0.shape:
                raise bad(f"member {m}'s {k!r} {list(a.shape)} differs from member 0's {list(a0.shape)}")
    if "basis_w" in arrays and (arrays["basis_w"].ndim != 2 or arrays["basis_w"].shape[0] != d):
        raise bad(f"'basis_w' {list(arrays['basis_w'].shape)} does not take the {d} features of 'x_mean'")
    if "cost_mean" in arrays and arrays["cost_mean"].shape != arrays.get("cost_std", np.zeros(0)).shape:
        raise bad("'cost_mean' and 'cost_std' differ in shape")
    if "ana_prior_m" in arrays:
        f = arrays["ana_prior_m"].shape  # the cost features; ana_mean/ana_std add log-MACs and log-params
        if len(f) != 1 or any(arrays.get(k, np.zeros(0)).shape != (f[0] + 2,) for k in ("ana_mean", "ana_std")) \
                or arrays.get("ana_prior_s", np.zeros(0)).shape != (f[0], f[0]):
            raise bad("the analytic head's arrays ('ana_mean', 'ana_std', 'ana_prior_m', 'ana_prior_s') differ "
                      "in shape")
        if not (arrays["ana_std"] > 0).all():
            raise bad("'ana_std' holds values <= 0")
    if "std_scale" in arrays and not (arrays["std_scale"].shape == (1,) and arrays["std_scale"][0] > 0):
        raise bad("'std_scale' is not one positive number")
    if meta.get("adapted"):
        y = arrays.get("support_y")
        if not strings(meta.get("support_archs")) or y is None or y.shape != (len(meta["support_archs"]),) \
                or not (y > 0).all():
            raise bad("its adaptation ('support_archs', 'support_y') is not one positive latency per architecture")


def load_file(path: str | os.PathLike[str]) -> Any:
    """Load a predictor written by :meth:`LatencyPredictor.save` (adapted or not)."""

    path = os.fspath(path)
    meta, arrays = _read(path)
    if meta.get("kind") != "LatencyPredictor":
        raise ArtefactError(f"{path!r} holds a {meta.get('kind')!r}, which this version cannot load")
    _check(path, meta, arrays)
    try:
        params = dict(meta["params"])
        params.setdefault("device_basis", False)  # files before version 3 have no device basis
        params.setdefault("basis_fit", "gp")  # nor do files before version 4 fit it by NNLS
        params.setdefault("cost_head", False)  # nor do files before version 5 have the analytic cost head
        pred = LatencyPredictor(**params)
        pred.x_mean_ = arrays["x_mean"]
        pred.x_std_ = arrays["x_std"]
        pred.std_scale_ = float(arrays["std_scale"][0]) if "std_scale" in arrays else 1.0
        if pred.gp_features == "hc":
            pred.cost_mean_ = arrays["cost_mean"]
            pred.cost_std_ = arrays["cost_std"]
        if pred.cost_head:
            pred.ana_mean_ = arrays["ana_mean"]
            pred.ana_std_ = arrays["ana_std"]
            pred.ana_prior_m_ = arrays["ana_prior_m"]
            pred.ana_prior_s_ = arrays["ana_prior_s"]
            pred.ana_devices_ = meta.get("ana_devices", [])
            n_cost = len(cost_feature_names(pred.space))
            if pred.ana_prior_m_.shape != (n_cost,):
                raise ArtefactError(f"{path!r} has {pred.ana_prior_m_.shape[0]} analytic cost features where this "
                                    f"version computes {n_cost}; re-train it ('nas predictor train')")
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
    except (ValueError, IndexError, ArithmeticError, InputError) as e:  # shapes or entries that do not fit together
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        raise ArtefactError(f"{path!r} is damaged: its entries do not fit together ({reason}); save or copy it "
                            "again") from None
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
