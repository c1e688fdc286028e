"""Numerical gradients: PyTorch-style ``gradcheck`` and cs231n's helpers (same names)."""
from __future__ import annotations

import warnings
from random import randrange
from typing import Any, Callable, Sequence, Union

import numpy as np

from .autograd import lifted_guard
from .tensor import Tensor, grad


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` when analytical and numerical gradients disagree."""


def elementwise_errors(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cs231n's relative error ``|x - y| / max(1e-8, |x| + |y|)`` and the absolute
    difference ``|x - y|``, element by element."""
    diff = np.abs(x - y)
    return diff / np.maximum(1e-8, np.abs(x) + np.abs(y)), diff


def rel_error(x: Any, y: Any) -> float:
    """cs231n's relative error: max(|x - y| / max(1e-8, |x| + |y|))."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error: shapes {x.shape} and {y.shape} differ")
    if x.size == 0:
        return 0.0
    return float(np.max(elementwise_errors(x, y)[0]))


def _around(f: Callable[[], Any], arr: np.ndarray, ix: tuple, h: float) -> tuple[Any, Any]:
    """``f()`` with ``arr[ix]`` raised by ``h``, then lowered by ``h``: the two values a
    central difference divides by ``2 * h``. ``arr[ix]`` is put back, also when ``f``
    raises, and a graph that reads ``arr`` stays valid (``lifted_guard``)."""
    old = arr[ix]
    with lifted_guard(arr):
        try:
            arr[ix] = old + h
            plus = f()
            arr[ix] = old - h
            minus = f()
        finally:
            arr[ix] = old
    return plus, minus


def eval_numerical_gradient(f: Callable, x: Any, verbose: bool = False, h: float = 1e-5) -> np.ndarray:
    """cs231n's central-difference gradient of the scalar ``f(x)``: perturbs ``x``
    in place (so ``lambda W: net.loss(X, y)[0]`` sees the change) and restores it."""
    arr = x.data if isinstance(x, Tensor) else x
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
        raise TypeError("eval_numerical_gradient: x must be a floating NumPy array (it is perturbed in place)")
    out = np.zeros_like(arr)
    for ix in np.ndindex(arr.shape):
        fxph, fxmh = _around(lambda: float(f(x)), arr, ix, h)
        out[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, out[ix])
    return out


numerical_gradient = eval_numerical_gradient


def grad_check_sparse(f: Callable, x: Any, analytic_grad: Any, num_checks: int = 10,
                      h: float = 1e-5, verbose: bool = True) -> list:
    """cs231n's spot check: ``num_checks`` random entries of ``x`` (drawn with Python's
    ``random.randrange``, as the course's, so ``random.seed`` repeats them), each a
    central difference of the scalar ``f(x)`` against ``analytic_grad`` at that entry.
    Prints cs231n's line per check; returns the relative errors (0 where both
    gradients are 0). ``x`` is perturbed in place and put back."""
    arr = x.data if isinstance(x, Tensor) else x
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
        raise TypeError("grad_check_sparse: x must be a floating NumPy array or Tensor "
                        "(it is perturbed in place)")
    analytic = np.asarray(analytic_grad.data if isinstance(analytic_grad, Tensor) else analytic_grad)
    if analytic.shape != arr.shape:
        raise ValueError(f"grad_check_sparse: analytic_grad has shape {analytic.shape}, x has "
                         f"shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("grad_check_sparse: x is empty: there is no entry to check")
    errors = []
    for _ in range(num_checks):
        ix = tuple(randrange(n) for n in arr.shape)
        fxph, fxmh = _around(lambda: float(f(x)), arr, ix, h)
        numerical = (fxph - fxmh) / (2 * h)
        analytic_value = float(analytic[ix])
        total = abs(numerical) + abs(analytic_value)
        error = abs(numerical - analytic_value) / total if total else 0.0
        errors.append(error)
        if verbose:
            print(f"numerical: {numerical:f} analytic: {analytic_value:f}, relative error: {error:e}")
    return errors


def eval_numerical_gradient_array(f: Callable, x: Any, df: Any, h: float = 1e-5) -> np.ndarray:
    """cs231n's numerical gradient of an array-valued ``f(x)`` contracted with the
    upstream gradient ``df``."""
    arr = x.data if isinstance(x, Tensor) else x
    out = np.zeros_like(arr)
    for ix in np.ndindex(arr.shape):
        pos, neg = _around(lambda: np.array(f(x), dtype=np.float64, copy=True), arr, ix, h)
        out[ix] = np.sum((pos - neg) * df) / (2 * h)
    return out


def gradcheck(fn: Callable[..., Tensor], inputs: Union[Tensor, Sequence[Any]], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Compare the engine's Jacobian of ``fn(*inputs)`` with central differences,
    for every input that requires grad, as ``torch.autograd.gradcheck``:
    passes when ``|analytical - numerical| <= atol + rtol * |numerical|``."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            warnings.warn(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 for a meaningful check",
                          stacklevel=2)
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    out_size = out.size
    for i in checked:
        x = inputs[i].data
        analytical = np.zeros((out_size, x.size))
        for k in range(out_size):
            grad_output = np.zeros(out.shape, dtype=out.dtype)
            grad_output.flat[k] = 1
            g = grad(out, inputs[i], grad_outputs=grad_output, allow_unused=True)
            if g is not None:
                analytical[k] = g.ravel()
        numerical = np.zeros_like(analytical)
        for j in range(x.size):
            ix = np.unravel_index(j, x.shape)
            plus, minus = _around(lambda: np.array(fn(*inputs).data, dtype=np.float64).ravel(),
                                  x, ix, eps)
            numerical[:, j] = (plus - minus) / (2 * eps)
        bad = np.abs(analytical - numerical) > atol + rtol * np.abs(numerical)
        if bad.any():
            k, j = map(int, np.argwhere(bad)[0])
            msg = (f"gradcheck: Jacobian mismatch for input {i} (shape {x.shape}) at output element "
                   f"{k}, input element {np.unravel_index(j, x.shape)}: analytical "
                   f"{analytical[k, j]!r} vs numerical {numerical[k, j]!r}")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
