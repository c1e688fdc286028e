"""tinygrad_lite.data: spiral, CIFAR-10 loaders (both formats, fabricated files),
the restricted unpickler, preprocessing."""
import os
import pickle
import struct

import numpy as np
import pytest

from tinygrad_lite.data import (UnsafePickleError, get_CIFAR10_data, load_cifar10, preprocess_cifar10,
                                restricted_load, spiral)

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _reconstruct


# ----------------------------------------------------------------- spiral

def test_spiral_is_cs231n_generator():
    X, y = spiral()
    assert X.shape == (300, 2) and y.shape == (300,) and y.dtype.kind == "i"
    np.random.seed(0)  # the notes' code, verbatim
    N, D, K = 100, 2, 3
    Xr = np.zeros((N * K, D))
    yr = np.zeros(N * K, dtype="uint8")
    for j in range(K):
        ix = range(N * j, N * (j + 1))
        r = np.linspace(0.0, 1, N)
        t = np.linspace(j * 4, (j + 1) * 4, N) + np.random.randn(N) * 0.2
        Xr[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        yr[ix] = j
    np.testing.assert_array_equal(X, Xr)
    np.testing.assert_array_equal(y, yr)


def test_spiral_seeded_and_leaves_global_state_alone():
    np.random.seed(42)
    before = np.random.rand()
    np.random.seed(42)
    X1, _ = spiral(10, 4, seed=7)
    assert np.random.rand() == before
    X2, y2 = spiral(10, 4, seed=7)
    np.testing.assert_array_equal(X1, X2)
    assert X1.shape == (40, 2) and set(y2) == {0, 1, 2, 3}
    assert not np.array_equal(spiral(seed=1)[0], spiral(seed=0)[0])
    with pytest.raises(ValueError, match="points_per_class"):
        spiral(0)


# ----------------------------------------------------------------- fabricated CIFAR-10 files

class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the official batches: str (here
    bytes) as BINSTRING, and the array's reconstructor as numpy.core.multiarray."""
    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes

    def save_global(self, obj, name=None):
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_pickle(obj) -> bytes:
    import io
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def globals_of(data: bytes):
    import pickletools
    return {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


def fabricate(root, n=4, fmt="python", seed=0):
    """Six batches of n images each; returns the raw (uint8 rows, labels) per batch."""
    rng = np.random.RandomState(seed)
    os.makedirs(root, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
        labels = rng.randint(0, 10, size=n)
        batches[name] = (data, labels)
        if fmt == "python":
            d = {b"batch_label": b"training batch 1 of 5", b"labels": [int(v) for v in labels],
                 b"data": data, b"filenames": [b"img_%d.png" % i for i in range(n)]}
            with open(os.path.join(root, name), "wb") as f:
                f.write(py2_pickle(d))
        else:
            rec = np.concatenate([labels.astype(np.uint8)[:, None], data], axis=1)
            rec.tofile(os.path.join(root, name + ".bin"))
    return batches


def test_fabricated_pickle_has_the_real_files_globals(tmp_path):
    fabricate(str(tmp_path), n=2)
    with open(tmp_path / "data_batch_1", "rb") as f:
        raw = f.read()
    assert raw[:2] == b"\x80\x02"
    assert globals_of(raw) == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    # and, as cs231n loads it, the keys come back as str
    with open(tmp_path / "data_batch_1", "rb") as f:
        d = restricted_load(f)
    assert set(d) == {"batch_label", "labels", "data", "filenames"}


def _expected_images(rows):
    return rows.reshape(len(rows), 3, 32, 32).transpose(0, 2, 3, 1).astype(float)


@pytest.mark.parametrize("fmt, sub", [("python", "cifar-10-batches-py"), ("binary", "cifar-10-batches-bin")])
def test_load_cifar10_both_formats(tmp_path, fmt, sub):
    batches = fabricate(str(tmp_path / sub), n=4, fmt=fmt)
    for root in (tmp_path, tmp_path / sub):  # the parent or the batches directory
        X_train, y_train, X_test, y_test = load_cifar10(str(root))
        assert X_train.shape == (20, 32, 32, 3) and X_test.shape == (4, 32, 32, 3)
        assert X_train.dtype == np.float64 and y_train.dtype.kind == "i"
        rows = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
        np.testing.assert_array_equal(X_train, _expected_images(rows))
        np.testing.assert_array_equal(y_train, np.concatenate([batches[f"data_batch_{i}"][1] for i in range(1, 6)]))
        np.testing.assert_array_equal(X_test, _expected_images(batches["test_batch"][0]))
        np.testing.assert_array_equal(y_test, batches["test_batch"][1])
    # pixel layout: row-major 32x32 planes of R, then G, then B
    r0 = batches["data_batch_1"][0][0]
    assert X_train[0, 1, 2, 0] == r0[0 * 1024 + 1 * 32 + 2]
    assert X_train[0, 1, 2, 2] == r0[2 * 1024 + 1 * 32 + 2]


def test_both_formats_agree(tmp_path):
    fabricate(str(tmp_path / "py"), n=3, fmt="python", seed=5)
    fabricate(str(tmp_path / "bin"), n=3, fmt="binary", seed=5)
    for a, b in zip(load_cifar10(str(tmp_path / "py")), load_cifar10(str(tmp_path / "bin"))):
        np.testing.assert_array_equal(a, b)


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-python.tar.gz.*data_batch_1"):
        load_cifar10(str(tmp_path))


def test_bad_binary_file(tmp_path):
    fabricate(str(tmp_path), n=2, fmt="binary")
    with open(tmp_path / "test_batch.bin", "ab") as f:
        f.write(b"\x00")
    with pytest.raises(ValueError, match="not a multiple of 3073"):
        load_cifar10(str(tmp_path))


# ----------------------------------------------------------------- malicious pickles

class RunsCommand:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class Evals:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_malicious_pickle_raises_and_runs_nothing(tmp_path, protocol):
    marker = tmp_path / "pwned"
    evil = {"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": RunsCommand(marker)}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(tmp_path / name, "wb") as f:
            pickle.dump(evil, f, protocol=protocol)
    with pytest.raises(UnsafePickleError, match="refusing to load global"):
        load_cifar10(str(tmp_path))
    assert not marker.exists()
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump(Evals(), f, protocol=protocol)
    with open(tmp_path / "test_batch", "rb") as f, pytest.raises(UnsafePickleError, match="eval"):
        restricted_load(f)


def test_object_arrays_are_refused(tmp_path):
    raw = py2_pickle({b"data": np.array([1, "a"], dtype=object)})
    assert globals_of(raw) <= {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    import io
    with pytest.raises(UnsafePickleError, match="object array"):
        restricted_load(io.BytesIO(raw))


# ----------------------------------------------------------------- preprocessing

def test_preprocess_is_get_CIFAR10_data(tmp_path):
    fabricate(str(tmp_path), n=4)
    X_train, y_train, X_test, y_test = load_cifar10(str(tmp_path))
    out = preprocess_cifar10(X_train, y_train, X_test, y_test, num_training=15, num_validation=5, num_test=3)
    Xtr, ytr, Xv, yv, Xte, yte = out
    assert Xtr.shape == (15, 3072) and Xv.shape == (5, 3072) and Xte.shape == (3, 3072)
    mean = X_train[:15].mean(axis=0)
    np.testing.assert_allclose(Xtr, (X_train[:15] - mean).reshape(15, -1))
    np.testing.assert_allclose(Xv, (X_train[15:20] - mean).reshape(5, -1))
    np.testing.assert_allclose(Xte, (X_test[:3] - mean).reshape(3, -1))
    np.testing.assert_array_equal(ytr, y_train[:15])
    np.testing.assert_array_equal(yv, y_train[15:20])
    np.testing.assert_array_equal(yte, y_test[:3])
    assert np.abs(Xtr.mean(axis=0)).max() < 1e-9
    assert X_train[0, 0, 0, 0] == load_cifar10(str(tmp_path))[0][0, 0, 0, 0]  # inputs untouched
    for a, b in zip(get_CIFAR10_data(str(tmp_path), 15, 5, 3), out):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="num_training \\+ num_validation"):
        preprocess_cifar10(X_train, y_train, X_test, y_test, num_training=19, num_validation=5)


def test_preprocess_empty_validation_and_test_splits(tmp_path):
    fabricate(str(tmp_path), n=4)
    X_train, y_train, X_test, y_test = load_cifar10(str(tmp_path))
    Xtr, ytr, Xv, yv, Xte, yte = preprocess_cifar10(X_train, y_train, X_test, y_test,
                                                    num_training=20, num_validation=0, num_test=0)
    assert Xtr.shape == (20, 3072) and ytr.shape == (20,)
    assert Xv.shape == (0, 3072) and yv.shape == (0,) and Xv.dtype == Xtr.dtype
    assert Xte.shape == (0, 3072) and yte.shape == (0,)
    _, _, Xv, _, Xte, _ = preprocess_cifar10(X_train, y_train, X_test, y_test, num_training=3,
                                             num_validation=0, num_test=2, subtract_mean=False)
    assert Xv.shape == (0, 3072) and Xte.shape == (2, 3072)
    with pytest.raises(ValueError, match="needs at least 1 training image"):
        preprocess_cifar10(X_train, y_train, X_test, y_test, num_training=0)


# ----------------------------------------------------------------- what the format allows

def _write_py_batches(root, labels=None, data=None, n=3, bad_batch="data_batch_3"):
    """Six valid python batches of n images, except ``bad_batch``'s labels or data."""
    fabricate(str(root), n=n)
    d = {b"batch_label": b"x", b"labels": [1] * n,
         b"data": np.zeros((n, 3072), np.uint8), b"filenames": [b"a.png"] * n}
    if labels is not None:
        d[b"labels"] = labels
    if data is not None:
        d[b"data"] = data
    (root / bad_batch).write_bytes(py2_pickle(d))
    return str(root / bad_batch)


@pytest.mark.parametrize("labels, first", [
    ([1, 11, 2], "label 1 is 11"), ([-3, 0, 1], "label 0 is -3"), ([0, 1, 250], "label 2 is 250"),
    ([0, 0.7, 1], "label 1 is 0.7 (float)"), ([3.0, 1, 2], "label 0 is 3.0 (float)"),
    ([0, True, 1], "label 1 is True (bool)"), ([0, b"1", 2], "label 1 is '1' (str)"),
    (np.array([0, 12, 1]), "label 1 is 12"), (np.array([0.2, 1.0, 2.0]), "dtype float64 (the first is 0.2)"),
])
def test_python_batch_labels_must_be_classes_0_to_9(tmp_path, labels, first):
    path = _write_py_batches(tmp_path, labels=labels)
    with pytest.raises(ValueError) as e:
        load_cifar10(str(tmp_path))
    assert path in str(e.value) and first in str(e.value), str(e.value)


def test_binary_batch_label_byte_must_be_a_class(tmp_path):
    fabricate(str(tmp_path), n=3, fmt="binary")
    path = tmp_path / "data_batch_2.bin"
    raw = bytearray(path.read_bytes())
    raw[1 * 3073] = 200  # the second record's label byte
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"{path}: label 1 is 200, outside the classes 0..9"):
        load_cifar10(str(tmp_path))


@pytest.mark.parametrize("data, what", [
    (np.zeros((3, 3072)), "uint8 array of pixels, got dtype float64"),
    (np.zeros((3, 3071), np.uint8), r"shape \(N, 3072\) with N <= 10,000, got \(3, 3071\)"),
    ([[0] * 3072] * 3, "uint8 array of pixels, got list"),
])
def test_python_batch_pixels_must_be_uint8_rows_of_3072(tmp_path, data, what):
    path = _write_py_batches(tmp_path, data=data)
    with pytest.raises(ValueError, match=what) as e:
        load_cifar10(str(tmp_path))
    assert path in str(e.value)


def test_more_images_than_a_batch_holds_are_refused(tmp_path, monkeypatch):
    import tinygrad_lite.data as data
    monkeypatch.setattr(data, "BATCH_MAX_IMAGES", 3)  # a batch of 4 then exceeds it
    fabricate(str(tmp_path / "py"), n=4)
    with pytest.raises(ValueError, match=r"N <= 3, got \(4, 3072\)"):
        load_cifar10(str(tmp_path / "py"))
    fabricate(str(tmp_path / "bin"), n=4, fmt="binary")
    with pytest.raises(ValueError, match="holds 4 records; a CIFAR-10 binary batch holds at most 3"):
        load_cifar10(str(tmp_path / "bin"))
    monkeypatch.setattr(data, "_MAX_PICKLE_BYTES", 1000)
    with pytest.raises(ValueError, match=r"has [\d,]+ bytes; a CIFAR-10 python batch"):
        load_cifar10(str(tmp_path / "py"))


class _Calls:
    """Pickles as ``fn(*args)``: what a hostile batch file can ask the allowed globals for."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


HUGE = (400_000, 3072)  # 1.2 GB of uint8, 9.8 GB once made float64


@pytest.mark.parametrize("call", [
    _Calls(np.ndarray, HUGE, "u1"),
    _Calls(np.ndarray, HUGE[0], np.dtype(("u1", (3072,)))),  # the size hidden in a sub-array dtype
    _Calls(_reconstruct, np.ndarray, HUGE, b"B"),
    _Calls(np.ndarray, HUGE, "u1", b"\0", 0, (0, 0)),  # no allocation, yet astype would make 9.8 GB
])
def test_a_tiny_pickle_cannot_make_a_huge_array(tmp_path, call):
    import tracemalloc
    raw = py2_pickle({b"data": call, b"labels": [0]})
    assert len(raw) < 400 and globals_of(raw) <= {
        "numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (tmp_path / name).write_bytes(raw)
    tracemalloc.start()  # NumPy reports its array allocations to tracemalloc
    try:
        with pytest.raises(ValueError, match=r"a CIFAR-10 batch holds at most 10,000 x 3,072 uint8") as e:
            load_cifar10(str(tmp_path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(tmp_path / "data_batch_1") in str(e.value)
    assert peak < 20_000_000, peak
