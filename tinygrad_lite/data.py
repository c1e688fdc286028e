"""Data sets: cs231n's spiral (embedded) and CIFAR-10 (from files you download).

* ``spiral(points_per_class=100, num_classes=3, seed=0)``: the toy set of the
  cs231n "neural network case study" notes.
* ``load_cifar10(root)``: cs231n's ``load_CIFAR10``, reading the python batches
  (``data_batch_1..5``, ``test_batch``) through a restricted unpickler, or the
  binary batches (``data_batch_1.bin``...).
* ``preprocess_cifar10(...)``: cs231n's ``get_CIFAR10_data`` (split, mean image
  subtraction, rows of 3072); ``get_CIFAR10_data(root)`` does both.

There is no download here: get ``cifar-10-python.tar.gz`` (or the binary
version) from https://www.cs.toronto.edu/~kriz/cifar.html and extract it.
"""
from __future__ import annotations

import os
import pickle
from typing import Any, Dict, List, Tuple

import numpy as np

from ._checks import is_integer

__all__ = ["spiral", "load_cifar10", "preprocess_cifar10", "get_CIFAR10_data", "load_CIFAR10",
           "load_cifar_batch", "load_cifar_binary_batch", "restricted_load", "UnsafePickleError",
           "CIFAR10_CLASSES", "BATCH_MAX_IMAGES", "MAX_ARRAY_BYTES"]

CIFAR10_CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


# ----------------------------------------------------------------- spiral

def spiral(points_per_class: int = 100, num_classes: int = 3, seed: int = 0,
           noise: float = 0.2) -> Tuple[np.ndarray, np.ndarray]:
    """cs231n's spiral: ``num_classes`` arms of ``points_per_class`` 2-D points.

    Returns ``X`` (N, 2) float64 and ``y`` (N,) int64, N = points_per_class *
    num_classes. The angle noise comes from ``np.random.RandomState(seed)`` (the
    same numbers as the notes after ``np.random.seed(seed)``), and the global
    NumPy generator is left untouched.
    """
    for name, v in (("points_per_class", points_per_class), ("num_classes", num_classes)):
        if not is_integer(v) or v < 1:
            raise ValueError(f"spiral: {name} must be a positive int, got {v!r}")
    rng = np.random.RandomState(seed)
    N, K = int(points_per_class), int(num_classes)
    X = np.zeros((N * K, 2))
    y = np.zeros(N * K, dtype=np.int64)
    for j in range(K):
        ix = range(N * j, N * (j + 1))
        r = np.linspace(0.0, 1, N)  # radius
        t = np.linspace(j * 4, (j + 1) * 4, N) + rng.randn(N) * noise  # theta
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return X, y


# ----------------------------------------------------------------- restricted unpickling

#: What the CIFAR-10 format allows per batch file: at most 10,000 images, each a row
#: of 3,072 uint8 (32 x 32 pixels, the R, G and B planes), with labels 0..9.
BATCH_MAX_IMAGES = 10_000
IMAGE_BYTES = 3072
NUM_CLASSES = 10
#: No array a batch pickle builds may be larger than a full batch of pixels.
MAX_ARRAY_BYTES = BATCH_MAX_IMAGES * IMAGE_BYTES
#: The official python batches are ~31 MB: the pixels, 10,000 labels and file names.
_MAX_PICKLE_BYTES = MAX_ARRAY_BYTES + 4 * 2 ** 20


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list: nothing was run."""


def _real_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as fn  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


def _check_array_size(shape: Any, dtype: Any, limit: int) -> None:
    """Refuse, before anything is allocated, an array larger than ``limit`` bytes."""
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    count = 1
    for d in dims:
        count *= int(d)
    itemsize = np.dtype(dtype).itemsize
    if max(itemsize, 1) * count > limit:
        raise ValueError(f"the pickle asks for an array of shape {dims} and dtype {np.dtype(dtype)} "
                         f"({count * itemsize:,} bytes); a CIFAR-10 batch holds at most "
                         f"{BATCH_MAX_IMAGES:,} x {IMAGE_BYTES:,} uint8 = {MAX_ARRAY_BYTES:,} bytes")


class _Unpickler(pickle.Unpickler):
    """Resolves only the NumPy array globals of the official CIFAR-10 batches (Python 2
    cPickle of a dict of str, list of int and uint8 ndarray). NumPy 2 moved
    ``numpy.core`` to ``numpy._core``: both spellings resolve to the same function.
    Every array a pickle builds through them is size-checked before it is allocated,
    whether the pickle calls ``numpy.ndarray(shape, dtype)`` itself or ``_reconstruct``."""

    def __init__(self, f: Any, encoding: str, max_array_bytes: int) -> None:
        super().__init__(f, encoding=encoding)
        limit = max_array_bytes
        reconstruct = _real_reconstruct()

        class BoundedNdarray:  # stands for numpy.ndarray, called or passed to _reconstruct
            def __new__(cls, shape: Any, dtype: Any = float, *args: Any, **kwargs: Any) -> np.ndarray:
                _check_array_size(shape, dtype, limit)
                return np.ndarray(shape, dtype, *args, **kwargs)

        def bounded_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
            if subtype is not BoundedNdarray:
                raise UnsafePickleError(f"refusing to reconstruct an array of type {subtype!r}")
            _check_array_size(shape, dtype, limit)
            return reconstruct(np.ndarray, shape, dtype)

        self._globals = {
            ("numpy.core.multiarray", "_reconstruct"): bounded_reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): bounded_reconstruct,
            ("numpy", "ndarray"): BoundedNdarray,
            ("numpy", "dtype"): np.dtype,
        }

    def find_class(self, module: str, name: str) -> Any:
        found = self._globals.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name} from a pickle: only "
                f"{sorted(f'{m}.{n}' for m, n in self._globals)} are allowed (CIFAR-10 batches need no more)")
        return found


def restricted_load(f: Any, encoding: str = "latin1", max_array_bytes: int = MAX_ARRAY_BYTES) -> Any:
    """``pickle.load`` allowing only the NumPy array globals the CIFAR-10 batches use:
    any other global (``os.system``, ``builtins.eval``...) raises ``UnsafePickleError``
    before it is called. Object arrays are refused too, and an array of more than
    ``max_array_bytes`` (default: a full batch of pixels) is refused with a
    ``ValueError`` before it is allocated."""
    obj = _Unpickler(f, encoding, max_array_bytes).load()
    _refuse_object_arrays(obj)
    return obj


def _refuse_object_arrays(obj: Any) -> None:
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        raise UnsafePickleError("refusing an object array from a pickle")
    if isinstance(obj, dict):
        for v in obj.values():
            _refuse_object_arrays(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            if isinstance(v, (np.ndarray, dict, list, tuple)):
                _refuse_object_arrays(v)


def _get(d: Dict, key: str, path: str) -> Any:
    for k in (key, key.encode("latin1")):
        if k in d:
            return d[k]
    raise ValueError(f"load_cifar10: {path} has no {key!r} entry (keys: {list(d)[:6]}); "
                     f"is it a CIFAR-10 python batch?")


def _images(data: Any, path: str, dtype: Any) -> np.ndarray:
    """(N, 3072) uint8 rows, as the format stores them, to (N, 32, 32, 3) of ``dtype``."""
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        what = f"dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"load_cifar10: {path}: 'data' must be a uint8 array of pixels, got {what}")
    if data.ndim != 2 or data.shape[1] != IMAGE_BYTES or data.shape[0] > BATCH_MAX_IMAGES:
        raise ValueError(f"load_cifar10: {path}: 'data' must have shape (N, {IMAGE_BYTES}) with "
                         f"N <= {BATCH_MAX_IMAGES:,}, got {data.shape}")
    return data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1).astype(dtype)


def _labels(raw: Any, path: str) -> np.ndarray:
    """Class labels 0..9 as int64; the first one that is not names the file and its index."""
    if isinstance(raw, np.ndarray):
        if raw.ndim != 1:
            raise ValueError(f"load_cifar10: {path}: 'labels' must be one-dimensional, got shape {raw.shape}")
        if raw.dtype.kind not in "iu":
            first = f" (the first is {raw[0].item()!r})" if raw.size else ""
            raise ValueError(f"load_cifar10: {path}: the labels must be integer classes 0..{NUM_CLASSES - 1}, "
                             f"got dtype {raw.dtype}{first}")
        bad = np.flatnonzero((raw < 0) | (raw >= NUM_CLASSES))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"load_cifar10: {path}: label {i} is {raw[i]}, outside the classes "
                             f"0..{NUM_CLASSES - 1} ({bad.size} such labels)")
        return raw.astype(np.int64)
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"load_cifar10: {path}: 'labels' must be a list of ints, got {type(raw).__name__}")
    for i, v in enumerate(raw):
        if not is_integer(v):
            shown = v.item() if isinstance(v, np.generic) else v
            raise ValueError(f"load_cifar10: {path}: label {i} is {shown!r} ({type(v).__name__}), not an "
                             f"integer class 0..{NUM_CLASSES - 1}")
        if not 0 <= v < NUM_CLASSES:
            raise ValueError(f"load_cifar10: {path}: label {i} is {v}, outside the classes 0..{NUM_CLASSES - 1}")
    return np.array(raw, dtype=np.int64).reshape(len(raw))


def load_cifar_batch(path: str, dtype: Any = np.float64) -> Tuple[np.ndarray, np.ndarray]:
    """One python batch (cs231n's ``load_CIFAR_batch``): X (N, 32, 32, 3), y (N,)."""
    size = os.path.getsize(path)
    if size > _MAX_PICKLE_BYTES:
        raise ValueError(f"load_cifar10: {path} has {size:,} bytes; a CIFAR-10 python batch has "
                         f"at most {BATCH_MAX_IMAGES:,} images (about 31 MB): is it one?")
    with open(path, "rb") as f:
        try:
            d = restricted_load(f)
        except UnsafePickleError:
            raise
        except Exception as e:  # truncated, not a pickle at all, an array too large
            raise ValueError(f"load_cifar10: cannot read {path} as a CIFAR-10 python batch: {e}") from None
    if not isinstance(d, dict):
        raise ValueError(f"load_cifar10: {path} holds a {type(d).__name__}, not a CIFAR-10 batch dict")
    data, labels = _get(d, "data", path), _get(d, "labels", path)
    y = _labels(labels, path)
    if isinstance(data, np.ndarray) and data.ndim >= 1 and len(y) != data.shape[0]:
        raise ValueError(f"load_cifar10: {path}: {data.shape[0]} images but {len(y)} labels")
    return _images(data, path, dtype), y


def load_cifar_binary_batch(path: str, dtype: Any = np.float64) -> Tuple[np.ndarray, np.ndarray]:
    """One binary batch: records of 1 label byte + 3072 pixel bytes (R, G, B planes)."""
    record = 1 + IMAGE_BYTES
    size = os.path.getsize(path)
    if size % record:
        raise ValueError(f"load_cifar10: {path} has {size:,} bytes, not a multiple of {record} "
                         f"(1 label byte + 3072 pixels per image): is it a CIFAR-10 binary batch?")
    if size // record > BATCH_MAX_IMAGES:
        raise ValueError(f"load_cifar10: {path} holds {size // record:,} records; a CIFAR-10 binary "
                         f"batch holds at most {BATCH_MAX_IMAGES:,}")
    rec = np.fromfile(path, dtype=np.uint8).reshape(-1, record)
    return _images(rec[:, 1:], path, dtype), _labels(rec[:, 0], path)


_PY = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
_BIN = [f + ".bin" for f in _PY]


def _find(root: str) -> Tuple[str, str]:
    for sub in ("", "cifar-10-batches-py", "cifar-10-batches-bin"):
        d = os.path.join(root, sub)
        if all(os.path.isfile(os.path.join(d, f)) for f in _PY):
            return d, "python"
        if all(os.path.isfile(os.path.join(d, f)) for f in _BIN):
            return d, "binary"
    raise FileNotFoundError(
        f"load_cifar10: no CIFAR-10 batches in {os.path.abspath(root)!r}. Download "
        f"cifar-10-python.tar.gz (or cifar-10-binary.tar.gz) from "
        f"https://www.cs.toronto.edu/~kriz/cifar.html and extract it there, so that "
        f"{os.path.join(root, 'cifar-10-batches-py', 'data_batch_1')} ... 'test_batch' exist "
        f"(or data_batch_1.bin ... test_batch.bin); pass that directory (or its parent) as root")


def load_cifar10(root: str, dtype: Any = np.float64) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """cs231n's ``load_CIFAR10``: ``(X_train, y_train, X_test, y_test)`` with X of shape
    (N, 32, 32, 3) as ``dtype`` (float64, as cs231n's ``astype("float")``) and y int64.

    ``root`` is the directory holding the batches or its parent (with
    ``cifar-10-batches-py`` or ``cifar-10-batches-bin`` inside); the python and the
    binary versions are both read."""
    root = os.fspath(root)
    d, fmt = _find(root)
    load = load_cifar_batch if fmt == "python" else load_cifar_binary_batch
    names = _PY if fmt == "python" else _BIN
    xs: List[np.ndarray] = []
    ys: List[np.ndarray] = []
    for f in names[:5]:
        X, y = load(os.path.join(d, f), dtype)
        xs.append(X)
        ys.append(y)
    X_train, y_train = np.concatenate(xs), np.concatenate(ys)
    del xs, ys
    X_test, y_test = load(os.path.join(d, names[5]), dtype)
    return X_train, y_train, X_test, y_test


load_CIFAR10 = load_cifar10


def preprocess_cifar10(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
                       num_training: int = 49000, num_validation: int = 1000, num_test: int = 1000,
                       subtract_mean: bool = True) -> Tuple[np.ndarray, ...]:
    """cs231n's ``get_CIFAR10_data`` on loaded arrays: validation = the
    ``num_validation`` images after the first ``num_training``; subtract the mean
    training image; reshape images to rows. Returns ``(X_train, y_train, X_val,
    y_val, X_test, y_test)`` with X of shape (n, 3072) (float64 unless the input was
    another float type). ``num_validation=0`` or ``num_test=0`` give empty splits of
    shape (0, 3072) and (0,)."""
    X_train, X_test = np.asarray(X_train), np.asarray(X_test)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(X_train) != len(y_train) or len(X_test) != len(y_test):
        raise ValueError(f"preprocess_cifar10: {len(X_train)} training images but {len(y_train)} labels, "
                         f"{len(X_test)} test images but {len(y_test)} labels")
    for name, v in (("num_training", num_training), ("num_validation", num_validation),
                    ("num_test", num_test)):
        if not is_integer(v) or v < 0:
            raise ValueError(f"preprocess_cifar10: {name} must be an int >= 0, got {v!r}")
    if num_training < 1 or num_training + num_validation > len(X_train):
        raise ValueError(f"preprocess_cifar10: num_training + num_validation = "
                         f"{num_training} + {num_validation} needs at least 1 training image and at most "
                         f"the {len(X_train)} available")
    if num_test > len(X_test):
        raise ValueError(f"preprocess_cifar10: num_test = {num_test} but only {len(X_test)} test images")
    float_type = X_train.dtype if X_train.dtype.kind == "f" else np.float64
    X_val = X_train[num_training:num_training + num_validation].astype(float_type)
    y_val = y_train[num_training:num_training + num_validation]
    X_tr = X_train[:num_training].astype(float_type)
    y_tr = y_train[:num_training]
    X_te = X_test[:num_test].astype(float_type)
    y_te = y_test[:num_test]
    if subtract_mean:
        mean_image = np.mean(X_tr, axis=0)
        X_tr -= mean_image
        X_val -= mean_image
        X_te -= mean_image
    rows = lambda X: X.reshape(len(X), int(np.prod(X.shape[1:])))  # noqa: E731  (n may be 0)
    return rows(X_tr), y_tr, rows(X_val), y_val, rows(X_te), y_te


def get_CIFAR10_data(root: str, num_training: int = 49000, num_validation: int = 1000,
                     num_test: int = 1000) -> Tuple[np.ndarray, ...]:
    """``load_cifar10(root)`` then ``preprocess_cifar10``: cs231n's notebook helper."""
    return preprocess_cifar10(*load_cifar10(root), num_training=num_training,
                              num_validation=num_validation, num_test=num_test)

