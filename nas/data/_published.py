"""Published data sets in the formats they ship in: MNIST-format IDX files and CIFAR python batches.

* IDX (MNIST, Fashion-MNIST, KMNIST, EMNIST): a folder holding ``[PREFIX]train-images-idx3-ubyte``,
  ``[PREFIX]train-labels-idx1-ubyte`` and the test pair (``t10k-`` or ``test-``), each raw or ``.gz``.
  ``--data FOLDER`` when the folder holds one such set, ``--data FOLDER/PREFIX`` (e.g.
  ``gzip/emnist-letters``) to pick one of several. Class names: EMNIST's ``PREFIX-mapping.txt`` when
  present; Fashion-MNIST's ten names when its labels are the official ones (recognised by the
  content of the label files, never by the folder name); else the label numbers.
* CIFAR-10 (``cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
  ``batches.meta``) and CIFAR-100 (``cifar-100-python/``: ``train``, ``test``, ``meta``; the fine
  labels). These are Python pickles: they are read with an unpickler that builds only dicts, lists,
  strings and numpy arrays (an allow-list of numpy's array reconstruction), so a file that asks for
  any other Python object is refused, never run.

The set's own test split is the test split; validation is split off the training split only
(10%, stratified and seeded). Pixels 0..255 go to the vendor range (:func:`to_vendor_range`) through a
256-entry table, so the full float64 copy of the images never exists.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import pickle
import re
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ._base import U8_TO_VENDOR as _LUT
from ._base import DataError, Dataset, _available_memory, _gb, _split

__all__ = ["find_idx_sets", "is_cifar_folder", "load_cifar", "load_idx", "VAL_FRACTION"]

VAL_FRACTION = 0.1
"""Share of a set's own training split held out for validation (stratified, seeded)."""

BYTES_PER_PIXEL = 6
"""Bytes held per pixel while loading an IDX or CIFAR set (the uint8 file data, its split copy and the
float32 result): what the memory check assumes."""


_IDX_RE = re.compile(r"^(?P<prefix>.*?)(?P<split>train|t10k|test)-(?P<kind>images-idx3|labels-idx1)-ubyte(?P<gz>\.gz)?$")
_IDX_PARTS = (("train", "images-idx3"), ("train", "labels-idx1"), ("test", "images-idx3"), ("test", "labels-idx1"))

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]
_FASHION_MNIST_LABELS_SHA256 = "8ab940a680640f36c0bf1d2549cb2f3b3d4068c12547116cc7b1161b1d26663d"
"""sha256 of the official Fashion-MNIST train labels then test labels (the bytes after the IDX headers)."""
FASHION_MNIST_SOURCE = "Fashion-MNIST (H. Xiao, K. Rasul, R. Vollgraf, Zalando Research, 2017)"
FASHION_MNIST_LICENCE = "MIT (Fashion-MNIST, Zalando SE)"

_CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
_CIFAR100_FILES = ("train", "test", "meta")
_CIFAR_LICENCE = ("as given by the user (CIFAR: A. Krizhevsky, 2009; see https://www.cs.toronto.edu/~kriz/cifar.html "
                  "for its terms)")


# --------------------------------------------------------------------------------------------- IDX

def find_idx_sets(folder: Path) -> dict[str, dict[tuple[str, str], Path]]:
    """IDX files in ``folder`` by prefix: ``{prefix: {(split, kind): path}}`` (split ``train`` or
    ``test``; an uncompressed file is preferred to its ``.gz``)."""
    sets: dict[str, dict[tuple[str, str], Path]] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return sets
    for p in entries:
        m = _IDX_RE.match(p.name)
        if m is None or not p.is_file():
            continue
        split = "train" if m["split"] == "train" else "test"
        parts = sets.setdefault(m["prefix"], {})
        key = (split, m["kind"])
        if key not in parts or not m["gz"]:
            parts[key] = p
    return sets


def _set_name(prefix: str) -> str:
    return prefix.rstrip("-_.")


def _open(p: Path) -> BinaryIO:
    return gzip.open(p, "rb") if p.name.endswith(".gz") else open(p, "rb")  # noqa: SIM115


_READ_ERRORS = (OSError, EOFError, zlib.error, gzip.BadGzipFile)


def _read_error(given: str, p: Path, e: BaseException) -> DataError:
    if p.name.endswith(".gz") and isinstance(e, (EOFError, zlib.error, gzip.BadGzipFile)):
        why = f"a truncated or corrupted gzip file ({type(e).__name__})"
    else:
        why = f"unreadable ({type(e).__name__})"
    return DataError(f"--data {given}: {p.name} is {why}; download or extract it again")


def _idx_header(given: str, p: Path, ndim: int) -> list[int]:
    """The dimensions an IDX file's header declares (checked: magic, unsigned bytes, ``ndim``)."""
    try:
        with _open(p) as f:
            head = f.read(4)
            dims_raw = f.read(4 * head[3]) if len(head) == 4 else b""
    except _READ_ERRORS as e:
        raise _read_error(given, p, e) from None
    if len(head) < 4 or head[:2] != b"\0\0":
        raise DataError(f"--data {given}: {p.name} is not an IDX file (wrong magic number "
                        f"{head.hex() or 'none'}); download or extract it again")
    if head[2] != 0x08:
        raise DataError(f"--data {given}: {p.name} holds IDX data type 0x{head[2]:02x}; only unsigned bytes (0x08), "
                        "as the MNIST family ships, are read")
    if head[3] != ndim:
        raise DataError(f"--data {given}: {p.name} has {head[3]} dimensions, expected {ndim} "
                        f"({'images N x rows x columns' if ndim == 3 else 'labels N'})")
    if len(dims_raw) < 4 * ndim:
        raise DataError(f"--data {given}: {p.name} ends inside its header: the file is truncated; download or "
                        "extract it again")
    dims = [int(v) for v in np.frombuffer(dims_raw, dtype=">u4")]
    if ndim == 3 and min(dims[1:]) < 1:
        raise DataError(f"--data {given}: {p.name} declares images of {dims[1]}x{dims[2]} pixels")
    if not p.name.endswith(".gz"):
        size = p.stat().st_size
        want = 4 + 4 * ndim + math.prod(dims)
        if size != want:
            raise DataError(f"--data {given}: {p.name}'s header declares {'x'.join(map(str, dims))} bytes of data "
                            f"({want:,} bytes with the header) but the file holds {size:,} bytes: it is "
                            f"{'truncated' if size < want else 'damaged'}; download or extract it again")
    return dims


def _idx_read(given: str, p: Path, dims: list[int]) -> np.ndarray:
    """The uint8 data of an IDX file whose header declared ``dims``."""
    n = math.prod(dims)
    try:
        with _open(p) as f:
            f.read(4 + 4 * len(dims))
            data = f.read(n)
            extra = f.read(1)
    except _READ_ERRORS as e:
        raise _read_error(given, p, e) from None
    if len(data) != n or extra:
        raise DataError(f"--data {given}: {p.name}'s header declares {'x'.join(map(str, dims))} = {n:,} bytes of data "
                        f"but it holds {'only ' + format(len(data), ',') if len(data) < n else 'more'}: the file is "
                        f"{'truncated' if len(data) < n else 'damaged'}; download or extract it again")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _emnist_mapping(given: str, p: Path) -> dict[int, str]:
    """EMNIST's ``PREFIX-mapping.txt``: ``label code [code ...]`` per line -> the label's characters."""
    out: dict[int, str] = {}
    try:
        for line in p.read_text(encoding="ascii").splitlines():
            if line.strip():
                label, *codes = (int(v) for v in line.split())
                out[label] = "".join(chr(c) for c in codes) or str(label)
    except (OSError, UnicodeDecodeError, ValueError, OverflowError) as e:
        raise DataError(f"--data {given}: {p.name} is not a label mapping ('label code' per line) "
                        f"({type(e).__name__}); fix or remove it") from None
    return out


def _resolve_idx(data: str | Path) -> tuple[Path, str, dict[tuple[str, str], Path]] | None:
    """``(folder, prefix, files)`` when ``data`` names an IDX set (a folder holding one, or FOLDER/PREFIX);
    None when it names none. A folder holding several sets is refused, naming them."""
    p = Path(data)
    if p.is_dir():
        sets = find_idx_sets(p)
        if not sets:
            return None
        if len(sets) > 1:
            names = ", ".join(_set_name(k) or "(no prefix)" for k in sorted(sets))
            first = _set_name(sorted(sets)[-1]) or sorted(sets)[-1]
            raise DataError(f"--data {data}: the folder holds {len(sets)} IDX data sets ({names}); name one, "
                            f"e.g. --data {p / first}")
        prefix = next(iter(sets))
        return p, prefix, sets[prefix]
    if not p.parent.is_dir():
        return None
    sets = find_idx_sets(p.parent)
    for prefix in (p.name, p.name + "-", p.name + "_", p.name + "."):
        if prefix in sets:
            return p.parent, prefix, sets[prefix]
    return None


def load_idx(path: str | Path, seed: int = 0) -> Dataset:
    """An MNIST-format IDX set: ``path`` is a folder holding one set, or ``FOLDER/PREFIX`` for one of
    several (EMNIST's ``emnist-letters``). Its test files are the test split; 10% of its training
    images (stratified, seeded) are the validation split.

    Raises:
        DataError: a missing, truncated or corrupted file, counts that disagree, labels out of range.
    """
    given = str(path)
    found = _resolve_idx(path)
    if found is None:
        raise DataError(f"--data {given}: no IDX files (train-images-idx3-ubyte[.gz] etc.) found there")
    folder, prefix, files = found
    missing = [f"{prefix}{'train' if s == 'train' else 't10k'}-{k}-ubyte[.gz]" for s, k in _IDX_PARTS
               if (s, k) not in files]
    if missing:
        raise DataError(f"--data {given}: IDX set {_set_name(prefix) or folder.name!r} lacks {', '.join(missing)}; "
                        "a set needs its train and test images and labels")
    dims = {key: _idx_header(given, files[key], 3 if key[1].startswith("images") else 1) for key in _IDX_PARTS}
    for split in ("train", "test"):
        ni, nl = dims[(split, "images-idx3")][0], dims[(split, "labels-idx1")][0]
        if ni != nl:
            raise DataError(f"--data {given}: {files[(split, 'labels-idx1')].name} holds {nl:,} labels for the {ni:,} "
                            f"images of {files[(split, 'images-idx3')].name}; the files do not belong together")
        if ni < 1:
            raise DataError(f"--data {given}: {files[(split, 'images-idx3')].name} holds no images")
    if dims[("train", "images-idx3")][1:] != dims[("test", "images-idx3")][1:]:
        a, b = dims[("train", "images-idx3")][1:], dims[("test", "images-idx3")][1:]
        raise DataError(f"--data {given}: train images are {a[0]}x{a[1]} but test images {b[0]}x{b[1]}; "
                        "the files do not belong together")
    pixels = dims[("train", "images-idx3")][0] * math.prod(dims[("train", "images-idx3")][1:]) + \
        dims[("test", "images-idx3")][0] * math.prod(dims[("test", "images-idx3")][1:])
    _check_memory(given, pixels)
    arr = {key: _idx_read(given, files[key], dims[key]) for key in _IDX_PARTS}
    y_tr, y_te = arr[("train", "labels-idx1")], arr[("test", "labels-idx1")]
    name = _set_name(prefix) or folder.name
    mapping_file = folder / f"{_set_name(prefix)}-mapping.txt" if prefix else None
    files_text = f"{files[('train', 'images-idx3')].name} etc. in {folder}"
    if mapping_file is not None and mapping_file.is_file():
        mapping: dict[int, str] | None = _emnist_mapping(given, mapping_file)
        source, licence = f"IDX files {files_text}, class names from {mapping_file.name}", "as given by the user"
    elif hashlib.sha256(y_tr.tobytes() + y_te.tobytes()).hexdigest() == _FASHION_MNIST_LABELS_SHA256:
        mapping = dict(enumerate(FASHION_MNIST_CLASSES))
        source = f"{FASHION_MNIST_SOURCE}: IDX files {files_text} (recognised by its label files)"
        licence = FASHION_MNIST_LICENCE
    else:
        mapping, source, licence = None, f"IDX files {files_text}", "as given by the user"
    x_tr = arr[("train", "images-idx3")][:, None]
    x_te = arr[("test", "images-idx3")][:, None]
    return _make_presplit(given, name, source, licence, x_tr, y_tr, x_te, y_te, mapping, seed)


# ------------------------------------------------------------------------------------------ CIFAR

class _Refused(Exception):
    """A pickle asked for a global outside the allow-list."""


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocol 2 (``latin1`` only)."""
    if not isinstance(obj, str) or encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise _Refused(f"_codecs.encode with encoding {encoding!r}")
    return obj.encode("latin-1")


def _dtype(*args: Any) -> np.dtype:
    d = np.dtype(*args)
    if d.hasobject:
        raise _Refused("numpy.dtype holding Python objects")
    return d


_RECONSTRUCT = np.ndarray((0,)).__reduce__()[0]
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_encode,
}
"""The only globals a CIFAR pickle may name: numpy's array reconstruction (and how Python 3 writes
bytes at protocol 2)."""


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def _unpickle(given: str, p: Path) -> dict[str, Any]:
    """A CIFAR pickle, read safely, as a dict with ``str`` keys."""
    try:
        with open(p, "rb") as f:
            obj = _SafeUnpickler(f, encoding="bytes").load()
    except _Refused as e:
        raise DataError(f"--data {given}: {p.name} asks to load the Python object {e}, which a CIFAR file never "
                        "holds; refusing to read it (use the original files)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError, UnicodeDecodeError) as e:
        raise DataError(f"--data {given}: {p.name} is not a readable CIFAR python file ({type(e).__name__}); "
                        "download or extract it again") from None
    except OSError as e:
        raise DataError(f"--data {given}: {p.name} is unreadable ({type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise DataError(f"--data {given}: {p.name} holds a {type(obj).__name__}, not a CIFAR dict; "
                        "download or extract it again")
    return {(k.decode("latin-1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def is_cifar_folder(folder: Path) -> str | None:
    """``cifar10`` or ``cifar100`` when ``folder`` holds any file of that layout, else None."""
    if any((folder / n).is_file() for n in _CIFAR10_FILES):
        return "cifar10"
    if (folder / "meta").is_file() and any((folder / n).is_file() for n in ("train", "test")):
        return "cifar100"
    return None


def _cifar_batch(given: str, p: Path, label_key: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(given, p)
    if "data" not in d or label_key not in d:
        raise DataError(f"--data {given}: {p.name} lacks '{'data' if 'data' not in d else label_key}'; "
                        "download or extract it again")
    x, y = d["data"], d[label_key]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        shape = list(x.shape) if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(f"--data {given}: {p.name}'s data is {shape} "
                        f"{getattr(x, 'dtype', '')}, expected uint8 [N, 3072] (3x32x32 images)")
    try:
        y = np.asarray(y)
    except (TypeError, ValueError):
        y = np.zeros(0)
    if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(x):
        raise DataError(f"--data {given}: {p.name} holds {len(y) if y.ndim == 1 else 'no list of'} {label_key} "
                        f"for its {len(x):,} images; download or extract it again")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        bad = int(y.min() if y.min() < 0 else y.max())
        raise DataError(f"--data {given}: {p.name} holds label {bad}, out of range for the {n_classes} classes of "
                        "its meta file; download or extract it again")
    return x.reshape(-1, 3, 32, 32), y.astype(np.uint8 if n_classes <= 256 else np.int64)


def _names(given: str, p: Path, key: str) -> list[str]:
    names = _unpickle(given, p).get(key)
    if not isinstance(names, list) or not names or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataError(f"--data {given}: {p.name} lacks the list '{key}'; download or extract it again")
    return [n.decode("latin-1") if isinstance(n, bytes) else n for n in names]


def load_cifar(path: str | Path, seed: int = 0) -> Dataset:
    """CIFAR-10 (``cifar-10-batches-py/``) or CIFAR-100 (``cifar-100-python/``, fine labels) python
    batches, read with a restricted unpickler. The set's test batch is the test split; 10% of its
    training images (stratified, seeded) are the validation split; class names from its meta file.

    Raises:
        DataError: a missing batch, a file that is no CIFAR pickle or asks for a disallowed object,
            labels out of range.
    """
    given = str(path)
    folder = Path(path)
    kind = is_cifar_folder(folder)
    if kind is None:
        raise DataError(f"--data {given}: no CIFAR python batches found there")
    files = _CIFAR10_FILES if kind == "cifar10" else _CIFAR100_FILES
    missing = [n for n in files if not (folder / n).is_file()]
    if missing:
        label = "CIFAR-10" if kind == "cifar10" else "CIFAR-100"
        raise DataError(f"--data {given}: the {label} folder lacks {', '.join(missing)}; extract the whole "
                        f"{'cifar-10-python' if kind == 'cifar10' else 'cifar-100-python'}.tar.gz again")
    _check_memory(given, sum((folder / n).stat().st_size for n in files))
    if kind == "cifar10":
        names = _names(given, folder / "batches.meta", "label_names")
        train = [_cifar_batch(given, folder / n, "labels", len(names)) for n in _CIFAR10_FILES[:5]]
        x_te, y_te = _cifar_batch(given, folder / "test_batch", "labels", len(names))
        what = "CIFAR-10"
    else:
        names = _names(given, folder / "meta", "fine_label_names")
        train = [_cifar_batch(given, folder / "train", "fine_labels", len(names))]
        x_te, y_te = _cifar_batch(given, folder / "test", "fine_labels", len(names))
        what = "CIFAR-100 (fine labels)"
    x_tr = np.concatenate([b[0] for b in train]) if len(train) > 1 else train[0][0]
    y_tr = np.concatenate([b[1] for b in train]) if len(train) > 1 else train[0][1]
    del train
    return _make_presplit(given, folder.name, f"{what} python batches in {folder}", _CIFAR_LICENCE, x_tr, y_tr,
                          x_te, y_te, dict(enumerate(names)), seed)


# ---------------------------------------------------------------------------------------- common

def _check_memory(given: str, pixels: int) -> None:
    need = BYTES_PER_PIXEL * pixels
    avail = _available_memory()
    if need > avail:
        raise DataError(f"--data {given}: the set needs about {_gb(need)} of memory to load, more than the "
                        f"{_gb(avail)} available; free memory or use a smaller set")


def _make_presplit(given: str, name: str, source: str, licence: str, x_tr: np.ndarray, y_tr: np.ndarray,
                   x_te: np.ndarray, y_te: np.ndarray, mapping: dict[int, str] | None, seed: int) -> Dataset:
    """A :class:`Dataset` from uint8 ``[N, C, H, W]`` train and test images with their own labels:
    classes renumbered 0..K-1 in the order of the training labels' values, validation split off train."""
    classes = np.unique(y_tr)
    if mapping is not None:
        unknown = sorted(set(int(c) for c in np.unique(np.concatenate([y_tr, y_te]))) - set(mapping))
        if unknown:
            raise DataError(f"--data {given}: label {unknown[0]} is out of range: the set's class names cover "
                            f"{len(mapping)} labels ({min(mapping)}..{max(mapping)})")
    if len(classes) < 2:
        raise DataError(f"--data {given}: the training labels hold {len(classes)} class; at least 2 are needed")
    extra = np.setdiff1d(np.unique(y_te), classes)
    if len(extra):
        raise DataError(f"--data {given}: test label {int(extra[0])} is out of range: no training image has it")
    lut = np.zeros(max(int(classes.max()), int(y_te.max())) + 1, dtype=np.int64)
    lut[classes] = np.arange(len(classes))
    ytr, yte = lut[y_tr], lut[y_te]
    x_tr, x_te = np.ascontiguousarray(x_tr), np.ascontiguousarray(x_te)
    h = hashlib.sha256()
    for a in (x_tr, ytr, x_te, yte):
        h.update(memoryview(a).cast("B"))
    tr, va, _ = _split(ytr, (VAL_FRACTION, 0.0), seed)
    if len(va) == 0:
        raise DataError(f"--data {given}: too few training images per class to split off validation data; "
                        "provide at least 6 per class")
    names = [mapping[int(c)] for c in classes] if mapping is not None else [str(int(c)) for c in classes]
    d = Dataset(name=name, source=source, licence=licence, x_train=_LUT[x_tr[tr]], y_train=ytr[tr],
                x_val=_LUT[x_tr[va]], y_val=ytr[va], x_test=_LUT[x_te], y_test=yte, conv1d=False,
                fingerprint=h.hexdigest()[:16], class_names=names)
    d.path = given
    return d
