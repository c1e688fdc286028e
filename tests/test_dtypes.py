"""Result dtypes follow NumPy 2's promotion rules (NEP 50), operand for operand: the
engine computes with NumPy, and a Python number is lifted to the dtype NumPy would give
it in that expression ("weak" scalars), while NumPy scalars and arrays keep their own."""
from __future__ import annotations

import itertools
import operator
import warnings

import numpy as np
import pytest

import tinygrad_lite as tl

DTYPES = [np.bool_, np.int8, np.uint8, np.int32, np.int64, np.float16, np.float32, np.float64]
PYTHON = [True, 2, 2.5, -1, 300]


def operands():
    """Every way a value enters an op: a Tensor, an ndarray, a NumPy scalar of each
    dtype, and Python bools, ints and floats (300 overflows int8/uint8 in NumPy 2)."""
    for dt in DTYPES:
        value = np.array([1, 2], dtype=dt)
        yield f"Tensor[{np.dtype(dt)}]", tl.Tensor(value), value
        yield f"ndarray[{np.dtype(dt)}]", value, value
        yield f"{np.dtype(dt)} scalar", dt(1), dt(1)
    for v in PYTHON:
        yield f"Python {v!r}", v, v


def outcome(fn, *args):
    """(dtype, values) or the exception class fn raises, warnings silenced (1 / 0)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            out = fn(*args)
        except (TypeError, ValueError, OverflowError) as e:
            return type(e)
    arr = out.data if isinstance(out, tl.Tensor) else np.asarray(out)
    return arr.dtype, arr.tolist()


# The operators are compared with the same expression on the NumPy values (ndarray's
# ** has NumPy's fast path for x ** 2, np.square: bool ** 2 is int8 there, not int64).
BINARY = {
    "add": (operator.add,) * 2, "sub": (operator.sub,) * 2, "mul": (operator.mul,) * 2,
    "div": (operator.truediv,) * 2, "pow": (operator.pow,) * 2,
    "maximum": (tl.maximum, np.maximum),
    "minimum": (tl.minimum, np.minimum),
    "where": (lambda a, b: tl.where(np.array([True, False]), a, b),
              lambda a, b: np.where(np.array([True, False]), a, b)),
}


OPERATORS = {"add", "sub", "mul", "div", "pow"}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_promote_as_numpy_2(name):
    ours, numpy = BINARY[name]
    checked = 0
    for (la, a, pa), (lb, b, pb) in itertools.product(list(operands()), repeat=2):
        if not isinstance(a, tl.Tensor) and not isinstance(b, tl.Tensor) and name in OPERATORS:
            continue  # no Tensor: the operator is NumPy's (or Python's), not ours
        want, got = outcome(numpy, pa, pb), outcome(ours, a, b)
        if name == "where" and got is OverflowError and isinstance(pb if lb.startswith("Python") else pa, int):
            # np.where wraps a Python int out of the array's range (int8: 300 -> 44);
            # the engine raises NumPy's OverflowError instead, as arithmetic does
            continue
        if isinstance(want, type):  # NumPy refuses: so do we, with an error of its class
            assert isinstance(got, type) and issubclass(got, want) or got is want, (la, lb, want, got)
        else:
            assert got == want, f"{name}({la}, {lb}): {got} but NumPy gives {want}"
        checked += 1
    assert checked >= 400


def test_matmul_promotes_as_numpy():
    for da, db in itertools.product(DTYPES, repeat=2):
        a, b = np.ones((2, 2), da), np.ones((2, 2), db)
        assert outcome(lambda x, y: tl.Tensor(x) @ y, a, b) == outcome(np.matmul, a, b), (da, db)


@pytest.mark.parametrize("expr,dtype", [
    (lambda: tl.where(np.array([True, False]), 4, 2), np.int64),
    (lambda: tl.where(np.array([True, False]), 4, 2.5), np.float64),
    (lambda: tl.where(np.array([True, False]), tl.ones(2, dtype=np.float32), 0), np.float32),
    (lambda: tl.ones(2, dtype=np.float32) + 2.0, np.float32),
    (lambda: tl.ones(2, dtype=np.float32) * np.float64(2.0), np.float64),
    (lambda: tl.ones(2, dtype=np.float32) + np.ones(2), np.float64),
    (lambda: tl.Tensor(np.arange(3, dtype=np.int32)) * 2.5, np.float64),
    (lambda: tl.Tensor(np.arange(3, dtype=np.int32)) + 1, np.int32),
    (lambda: tl.Tensor(np.arange(3, dtype=np.int8)) + 1, np.int8),
    (lambda: tl.Tensor(np.arange(3, dtype=np.uint8)) - 1, np.uint8),
    (lambda: tl.Tensor(np.array([True, False])) + 1, np.int64),
    (lambda: tl.Tensor(np.array([True, False])) * 1.5, np.float64),
    (lambda: 2 ** tl.Tensor(np.arange(3)), np.int64),
    (lambda: 2.0 ** tl.ones(2, dtype=np.float32), np.float32),
    (lambda: tl.ones(2, dtype=np.float16) / 3, np.float16),
])
def test_documented_promotions(expr, dtype):
    assert expr().dtype == dtype


def test_python_integer_out_of_range_is_numpys_overflow_error():
    with pytest.raises(OverflowError, match="300"):
        tl.Tensor(np.arange(3, dtype=np.int8)) + 300


def test_gradients_keep_each_inputs_dtype_in_mixed_graphs():
    w32 = tl.Tensor(np.ones(3, np.float32), requires_grad=True)
    w64 = tl.Tensor(np.ones(3), requires_grad=True)
    out = (w32 * 2.0 + w64 * np.float32(3.0) + w32 ** tl.Tensor(np.full(3, 2.0, np.float32))).sum()
    assert out.dtype == np.float64
    out.backward()
    assert w32.grad.dtype == np.float32 and w64.grad.dtype == np.float64
    np.testing.assert_array_equal(w32.grad, [4.0, 4.0, 4.0])
