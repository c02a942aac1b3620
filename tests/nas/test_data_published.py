"""IDX and CIFAR sets from disk (nas.data._published), on small files the tests write."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from nas.data import (
    FASHION_MNIST_CLASSES,
    DataError,
    load_cifar,
    load_dataset,
    load_idx,
    to_vendor_range,
)
from search_spaces import InputError

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _idx_bytes(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return head + arr.astype(np.uint8).tobytes()


def _write(path: Path, raw: bytes, gz: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


def _idx_set(folder: Path, prefix: str = "", gz: bool = True, n_train: int = 60, n_test: int = 21, size: int = 8,
             labels: tuple[int, ...] = (0, 1, 2), test_word: str = "t10k", seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train-labels-idx1": np.resize(np.array(labels, np.uint8), n_train),
        f"{test_word}-images-idx3": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        f"{test_word}-labels-idx1": np.resize(np.array(labels[::-1], np.uint8), n_test),
    }
    for stem, a in arrays.items():
        _write(folder / f"{prefix}{stem}-ubyte", _idx_bytes(a), gz)
    return arrays


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and isinstance(e.value, InputError)
    return msg


@pytest.mark.parametrize("gz", [True, False])
def test_idx_set_keeps_its_test_split(tmp_path, gz: bool) -> None:
    a = _idx_set(tmp_path / "digits", gz=gz)
    d = load_dataset(tmp_path / "digits", seed=0)
    assert d.name == "digits" and d.input_shape == (1, 8, 8) and d.num_classes == 3
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (54, 6, 21)  # validation: 10% of train only
    assert np.bincount(d.y_val).tolist() == [2, 2, 2]  # stratified
    # the test split is the test files, in order, in the vendor range
    assert np.array_equal(d.x_test[:, 0], to_vendor_range(a["t10k-images-idx3"] / 255.0))
    assert d.y_test.tolist() == a["t10k-labels-idx1"].tolist()
    assert d.x_test.dtype == np.float32 and d.y_test.dtype == np.int64
    # train + validation are exactly the training images
    seen = np.concatenate([d.x_train, d.x_val])[:, 0]
    want = to_vendor_range(a["train-images-idx3"] / 255.0)
    assert sorted(map(bytes, seen)) == sorted(map(bytes, want))
    assert d.class_names == ["0", "1", "2"] and d.licence == "as given by the user"
    assert d.path == str(tmp_path / "digits") and "IDX files" in d.source
    again = load_dataset(d.path, seed=0)  # how a resumed run loads it
    assert again.fingerprint == d.fingerprint and np.array_equal(again.x_val, d.x_val)
    other = load_idx(d.path, seed=1)
    assert other.fingerprint == d.fingerprint and np.array_equal(other.x_test, d.x_test)
    assert not np.array_equal(other.x_val, d.x_val)
    _idx_set(tmp_path / "changed", gz=gz, seed=1)
    assert load_dataset(tmp_path / "changed").fingerprint != d.fingerprint


def test_idx_raw_and_gz_agree_and_raw_is_preferred(tmp_path) -> None:
    _idx_set(tmp_path / "gz", gz=True)
    _idx_set(tmp_path / "raw", gz=False)
    assert load_dataset(tmp_path / "gz").fingerprint == load_dataset(tmp_path / "raw").fingerprint
    _idx_set(tmp_path / "both", gz=True, seed=5)
    _idx_set(tmp_path / "both", gz=False)
    assert load_dataset(tmp_path / "both").fingerprint == load_dataset(tmp_path / "raw").fingerprint


def test_idx_prefixed_sets_emnist_style(tmp_path) -> None:
    g = tmp_path / "gzip"
    _idx_set(g, prefix="emnist-letters-", labels=(1, 2, 3, 26), test_word="test", n_train=64, n_test=12)
    _idx_set(g, prefix="emnist-digits-", labels=(0, 1), test_word="test")
    (g / "emnist-letters-mapping.txt").write_text("1 65 97\n2 66 98\n3 67 99\n26 90 122\n")
    with pytest.raises(DataError) as e:
        load_dataset(g)
    msg = _one_line(e)
    assert "2 IDX data sets (emnist-digits, emnist-letters)" in msg and f"--data {g}/" in msg
    d = load_dataset(g / "emnist-letters")
    assert d.name == "emnist-letters" and d.num_classes == 4 and len(d.y_test) == 12
    assert d.class_names == ["Aa", "Bb", "Cc", "Zz"] and "emnist-letters-mapping.txt" in d.source
    assert set(d.y_train.tolist()) == {0, 1, 2, 3}  # labels 1, 2, 3, 26 renumbered
    assert load_dataset(g / "emnist-letters-").fingerprint == d.fingerprint
    assert load_dataset(g / "emnist-digits").class_names == ["0", "1"]
    with pytest.raises(DataError, match="emnist-balanced: no such file or folder; give a .npz file"):
        load_dataset(g / "emnist-balanced")


def test_fashion_mnist_names_come_from_its_labels_not_the_folder_name(tmp_path) -> None:
    _idx_set(tmp_path / "fashion-mnist")
    d = load_dataset(tmp_path / "fashion-mnist")
    assert d.class_names == ["0", "1", "2"] and "Fashion" not in d.source and "MIT" not in d.licence


def _corrupt(folder: Path, case: str) -> None:
    img = folder / "train-images-idx3-ubyte.gz"
    if case == "magic":
        raw = bytearray(gzip.decompress(img.read_bytes()))
        raw[0] = 8
        img.write_bytes(gzip.compress(bytes(raw)))
    elif case == "dtype":
        raw = bytearray(gzip.decompress(img.read_bytes()))
        raw[2] = 0x0D
        img.write_bytes(gzip.compress(bytes(raw)))
    elif case == "ndim":
        lab = folder / "train-labels-idx1-ubyte.gz"
        lab.write_bytes(gzip.compress(_idx_bytes(np.zeros((60, 2), np.uint8))))
    elif case == "short data":
        img.write_bytes(gzip.compress(gzip.decompress(img.read_bytes())[:-10]))
    elif case == "long data":
        img.write_bytes(gzip.compress(gzip.decompress(img.read_bytes()) + b"\0"))
    elif case == "short header":
        img.write_bytes(gzip.compress(gzip.decompress(img.read_bytes())[:10]))
    elif case == "truncated gzip":
        img.write_bytes(img.read_bytes()[:-200])
    elif case == "bad gzip":
        img.write_bytes(b"this is not gzip data at all")
    elif case == "count mismatch":
        lab = folder / "t10k-labels-idx1-ubyte.gz"
        lab.write_bytes(gzip.compress(_idx_bytes(np.zeros(20, np.uint8))))
    elif case == "size mismatch":
        t = folder / "t10k-images-idx3-ubyte.gz"
        t.write_bytes(gzip.compress(_idx_bytes(np.zeros((21, 9, 9), np.uint8))))
    elif case == "test label not in train":
        lab = folder / "t10k-labels-idx1-ubyte.gz"
        lab.write_bytes(gzip.compress(_idx_bytes(np.full(21, 7, np.uint8))))
    elif case == "one class":
        lab = folder / "train-labels-idx1-ubyte.gz"
        lab.write_bytes(gzip.compress(_idx_bytes(np.zeros(60, np.uint8))))
    elif case == "missing file":
        (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    elif case == "mapping":
        (folder / "-mapping.txt").write_text("0 48\n1 49\n")
    else:  # pragma: no cover
        raise AssertionError(case)


@pytest.mark.parametrize("case,words", [
    ("magic", "wrong magic number"),
    ("dtype", "data type 0x0d"),
    ("ndim", "has 2 dimensions, expected 1"),
    ("short data", "the file is truncated"),
    ("long data", "the file is damaged"),
    ("short header", "ends inside its header"),
    ("truncated gzip", "truncated or corrupted gzip"),
    ("bad gzip", "truncated or corrupted gzip"),
    ("count mismatch", "holds 20 labels for the 21 images"),
    ("size mismatch", "train images are 8x8 but test images 9x9"),
    ("test label not in train", "test label 7 is out of range"),
    ("one class", "at least 2"),
    ("missing file", "lacks t10k-labels-idx1-ubyte[.gz]"),
])
def test_idx_errors(tmp_path, case: str, words: str) -> None:
    folder = tmp_path / "set"
    _idx_set(folder)
    _corrupt(folder, case)
    with pytest.raises(DataError) as e:
        load_dataset(folder)
    msg = _one_line(e)
    assert words in msg and msg.startswith(f"--data {folder}: ")


@pytest.mark.parametrize("case,words", [
    ("short", "header declares 60x8x8 bytes of data (3,856 bytes with the header) but the file holds 3,855 bytes: "
              "it is truncated"),
    ("long", "holds 3,857 bytes: it is damaged"),
])
def test_raw_idx_size_is_checked_from_the_header(tmp_path, case: str, words: str) -> None:
    _idx_set(tmp_path / "raw", gz=False)
    img = tmp_path / "raw" / "train-images-idx3-ubyte"
    raw = img.read_bytes()
    img.write_bytes(raw[:-1] if case == "short" else raw + b"\0")
    with pytest.raises(DataError) as e:
        load_dataset(tmp_path / "raw")
    assert words in _one_line(e)


def test_idx_label_outside_the_mapping_is_out_of_range(tmp_path) -> None:
    _idx_set(tmp_path / "g", prefix="emnist-x-", labels=(1, 2, 3))
    (tmp_path / "g" / "emnist-x-mapping.txt").write_text("1 65\n2 66\n")
    with pytest.raises(DataError) as e:
        load_dataset(tmp_path / "g" / "emnist-x")
    assert "label 3 is out of range: the set's class names cover 2 labels (1..2)" in _one_line(e)
    (tmp_path / "g" / "emnist-x-mapping.txt").write_text("1 A\n")
    with pytest.raises(DataError, match="not a label mapping"):
        load_dataset(tmp_path / "g" / "emnist-x")


def test_idx_larger_than_memory_is_refused_before_reading(tmp_path, monkeypatch) -> None:
    import nas.data._published as pub

    _idx_set(tmp_path / "set")
    monkeypatch.setattr(pub, "_available_memory", lambda: 10_000)
    read = []
    monkeypatch.setattr(pub, "_idx_read", lambda *a: read.append(a))
    with pytest.raises(DataError) as e:
        load_dataset(tmp_path / "set")
    assert "needs about" in _one_line(e) and "available" in str(e.value) and not read
    # (60 + 21) images of 8x8 pixels, BYTES_PER_PIXEL each
    assert f"{pub.BYTES_PER_PIXEL * 81 * 64:,} bytes" in str(e.value)


def test_image_size_is_refused_for_idx_sets(tmp_path) -> None:
    _idx_set(tmp_path / "set")
    with pytest.raises(DataError) as e:
        load_dataset(tmp_path / "set" / "train-images-idx3-ubyte.gz")
    assert f"give the folder holding the IDX files, --data {tmp_path / 'set'}" in _one_line(e)
    with pytest.raises(DataError, match="not to IDX files"):
        load_dataset(tmp_path / "set", image_size="8x8")


# -------------------------------------------------------------------------------------------- CIFAR

CIFAR10_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Protocol 2 as Python 2 wrote the original CIFAR files: bytes and str as 8-bit strings
    (``SHORT_BINSTRING``/``BINSTRING``), which Python 3 reads back as bytes with ``encoding='bytes'``."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def _save_str8(self, obj: bytes | str) -> None:
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = _save_str8
    dispatch[str] = _save_str8


def _dump(path: Path, obj: object, py2: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        if py2:
            _Py2Pickler(f, protocol=2).dump(obj)
        else:
            pickle.dump(obj, f, protocol=2)  # Python 3's protocol 2 (bytes via _codecs.encode)


def _batch(rng: np.random.Generator, n: int, label_key: bytes, n_classes: int, name: bytes) -> dict:
    return {b"batch_label": name, label_key: [int(v) for v in rng.integers(0, n_classes, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [b"img_%d.png" % i for i in range(n)]}


def _cifar10(folder: Path, n: int = 12, py2: bool = False) -> dict[str, dict]:
    rng = np.random.default_rng(0)
    out = {}
    for i in range(1, 6):
        out[f"data_batch_{i}"] = _batch(rng, n, b"labels", 10, b"training batch %d of 5" % i)
        out[f"data_batch_{i}"][b"labels"][:10] = list(range(10))  # every class in every batch
    out["test_batch"] = _batch(rng, 7, b"labels", 10, b"testing batch 1 of 1")
    for k, v in out.items():
        _dump(folder / k, v, py2)
    _dump(folder / "batches.meta", {b"num_cases_per_batch": n, b"label_names": CIFAR10_NAMES, b"num_vis": 3072}, py2)
    return out


def _cifar100(folder: Path) -> dict[str, dict]:
    rng = np.random.default_rng(1)
    out = {"train": _batch(rng, 40, b"fine_labels", 4, b"training batch 1 of 1"),
           "test": _batch(rng, 9, b"fine_labels", 4, b"testing batch 1 of 1")}
    out["train"][b"fine_labels"][:4] = [0, 1, 2, 3]
    for d in out.values():
        d[b"coarse_labels"] = [0] * len(d[b"fine_labels"])
    for k, v in out.items():
        _dump(folder / k, v)
    names = [b"apple", b"aquarium_fish", b"baby", b"bear"] + [b"c%d" % i for i in range(96)]
    _dump(folder / "meta", {b"fine_label_names": names, b"coarse_label_names": [b"fruit"] * 20})
    return out


@pytest.mark.parametrize("py2", [True, False])
def test_cifar10_batches(tmp_path, py2: bool) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    b = _cifar10(folder, py2=py2)
    assert (b"_codecs" in (folder / "test_batch").read_bytes()) != py2
    d = load_dataset(folder, seed=0)
    assert d.input_shape == (3, 32, 32) and d.num_classes == 10
    assert (len(d.y_train) + len(d.y_val), len(d.y_test)) == (60, 7) and 6 <= len(d.y_val) <= 10  # ~10% per class
    assert d.class_names == [n.decode() for n in CIFAR10_NAMES]
    t = b["test_batch"]
    assert d.y_test.tolist() == t[b"labels"]
    # CIFAR rows are 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    img = t[b"data"][3]
    assert d.x_test[3, 1, 5, 7] == to_vendor_range(np.array([img[1024 + 5 * 32 + 7] / 255.0]))[0]
    assert np.array_equal(d.x_test, to_vendor_range(t[b"data"].reshape(-1, 3, 32, 32) / 255.0))
    assert d.path == str(folder) and "CIFAR-10 python batches" in d.source and "kriz" in d.licence
    assert load_dataset(d.path).fingerprint == d.fingerprint
    assert load_cifar(folder, seed=2).fingerprint == d.fingerprint


def test_cifar100_fine_labels(tmp_path) -> None:
    folder = tmp_path / "cifar-100-python"
    b = _cifar100(folder)
    d = load_dataset(folder)
    assert (len(d.y_train) + len(d.y_val), len(d.y_test)) == (40, 9) and 3 <= len(d.y_val) <= 5
    assert d.class_names == ["apple", "aquarium_fish", "baby", "bear"] and d.num_classes == 4
    assert d.y_test.tolist() == b["test"][b"fine_labels"] and "fine labels" in d.source


def test_cifar_with_str_keys_and_a_parent_folder_hint(tmp_path) -> None:
    folder = tmp_path / "data" / "cifar-100-python"
    b = _cifar100(folder)
    _dump(folder / "train", {k.decode(): v for k, v in b["train"].items()})
    assert len(load_dataset(folder).y_test) == 9
    with pytest.raises(DataError) as e:
        load_dataset(tmp_path / "data")
    assert f"give that folder: --data {folder}" in _one_line(e)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("case,words", [
    ("missing batch", "the CIFAR-10 folder lacks data_batch_4, test_batch"),
    ("evil", "asks to load the Python object posix.system"),
    ("other class", "asks to load the Python object collections.OrderedDict"),
    ("object dtype", "numpy.dtype holding Python objects"),
    ("label out of range", "data_batch_2 holds label 10, out of range for the 10 classes"),
    ("not a pickle", "not a readable CIFAR python file"),
    ("truncated", "not a readable CIFAR python file"),
    ("not a dict", "holds a list, not a CIFAR dict"),
    ("wrong shape", "expected uint8 [N, 3072]"),
    ("label count", "holds 11 labels for its 12 images"),
    ("meta", "batches.meta lacks the list 'label_names'"),
])
def test_cifar_errors(tmp_path, case: str, words: str) -> None:
    import collections

    folder = tmp_path / "cifar-10-batches-py"
    b = _cifar10(folder)
    marker = tmp_path / "pwned"
    bad = folder / "data_batch_2"
    if case == "missing batch":
        (folder / "data_batch_4").unlink()
        (folder / "test_batch").unlink()
    elif case == "evil":
        _dump(bad, {b"data": _Evil(marker), b"labels": []})
    elif case == "other class":
        _dump(bad, collections.OrderedDict(b["data_batch_2"]))
    elif case == "object dtype":
        _dump(bad, {b"data": np.array([1, "a"], dtype=object), b"labels": []})
    elif case == "label out of range":
        b["data_batch_2"][b"labels"][-1] = 10
        _dump(bad, b["data_batch_2"])
    elif case == "not a pickle":
        bad.write_bytes(b"\x00garbage")
    elif case == "truncated":
        bad.write_bytes(bad.read_bytes()[:1000])
    elif case == "not a dict":
        _dump(bad, [1, 2, 3])
    elif case == "wrong shape":
        b["data_batch_2"][b"data"] = b["data_batch_2"][b"data"].reshape(12, 3, 1024)
        _dump(bad, b["data_batch_2"])
    elif case == "label count":
        b["data_batch_2"][b"labels"].pop()
        _dump(bad, b["data_batch_2"])
    elif case == "meta":
        _dump(folder / "batches.meta", {b"num_vis": 3072})
    with pytest.raises(DataError) as e:
        load_dataset(folder)
    msg = _one_line(e)
    assert words in msg and msg.startswith(f"--data {folder}: ")
    assert not marker.exists()


# ---------------------------------------------------------------------------------- the real thing

@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
def test_installed_fashion_mnist() -> None:
    d = load_dataset(FASHION)
    assert (len(d.y_train) + len(d.y_val), len(d.y_val), len(d.y_test)) == (60000, 6000, 10000)
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10 and d.class_names == FASHION_MNIST_CLASSES
    assert np.bincount(d.y_test).tolist() == [1000] * 10 and "MIT" in d.licence and "Zalando" in d.source


# ----------------------------------------------------------------------------------------------- CLI

def test_cli_search_on_an_idx_folder_scores_its_test_split(tmp_path, capsys) -> None:
    from nas.cli import main

    _idx_set(tmp_path / "digits", n_train=60, n_test=21)
    code = main(["search", "--device", "max78000", "--budget", "100KB", "--trials", "2", "--accuracy", "proxy",
                 "--data", str(tmp_path / "digits"), "--runs-dir", str(tmp_path / "runs"), "--qat-top", "1",
                 "--qat-epochs", "1", "--qat-quant-epochs", "1"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "digits: 54 train / 6 validation / 21 test, input 1x8x8, 3 classes" in cap.err
    run = tmp_path / "runs" / "max78000-100KB-digits-proxy"
    settings = json.loads((run / "pareto.json").read_text())["settings"]
    assert settings["data"]["path"] == str(tmp_path / "digits") and settings["data"]["test"] == 21
    qat = json.loads((run / "qat" / "summary.json").read_text())
    (net,) = qat["networks"]
    assert net["extra"]["n_test"] == 21 and net["extra"]["n_val"] == 6
    for acc in (net["float_test_acc"], net["quant_test_acc"]):  # scored on the 21 test-file images
        assert abs(acc * 21 - round(acc * 21)) < 1e-6
    (card,) = (run / "export").glob("*/model_card.md")  # its reproduce command names the same data
    assert f"--data {tmp_path / 'digits'} " in card.read_text()
    # what nas qat and a resumed run load from the record: the same set, recognised by its fingerprint
    from nas.qat import run_data

    again = run_data(settings, seed=0)
    assert again.fingerprint == settings["data"]["fingerprint"] and len(again.y_test) == 21
    _idx_set(tmp_path / "digits", n_train=60, n_test=21, seed=3)  # other images, same file names
    with pytest.raises(InputError, match="changed since the search"):
        run_data(settings, seed=0)
    # bad files: one line, exit 2, nothing written
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "train-images-idx3-ubyte.gz").write_bytes(b"junk")
    assert main(["search", "--device", "max78000", "--budget", "20KB", "--trials", "1", "--data",
                 str(tmp_path / "bad"), "--runs-dir", str(tmp_path / "runs2")]) == 2
    err = capsys.readouterr().err
    assert "lacks train-labels-idx1-ubyte[.gz]" in err and "Traceback" not in err
    assert not (tmp_path / "runs2").exists()
