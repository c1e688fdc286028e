"""Weight initialisers for ``tinygrad_lite.nn``.

Layout: weights here are in cs231n's row layout ``W`` of shape ``(in, out)``
(``x @ W + b``), so ``fan_in = shape[0]`` and ``fan_out = shape[1]`` (PyTorch's
``weight`` is ``(out, in)``; the formulas are the same, the axes are swapped).

Every draw comes from NumPy's global generator (``np.random.randn`` /
``np.random.uniform``), so ``np.random.seed(0)`` makes them repeatable as in
cs231n. The trailing-underscore functions fill a Tensor (or array) in place and
return it, as ``torch.nn.init`` does; the plain ones return a new array.
"""
from __future__ import annotations

import math
from typing import Any, Tuple

import numpy as np

from ..tensor import Tensor

__all__ = ["fan_in_out", "normal", "he", "he_normal", "xavier_normal", "xavier_uniform",
           "normal_", "zeros_", "ones_", "constant_", "kaiming_normal_", "he_normal_",
           "xavier_normal_", "xavier_uniform_", "calculate_gain"]


def _shape(shape: Any) -> Tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"init: a shape must be a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"init: negative dimension in shape {shape}")
    return shape


def fan_in_out(shape: Any) -> Tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` in the (in, out) layout."""
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(f"init: fan in/out need a weight with at least 2 dims, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[0] * receptive, shape[1] * receptive


def calculate_gain(nonlinearity: str = "relu") -> float:
    """The gain of ``torch.nn.init.calculate_gain`` for the usual nonlinearities."""
    gains = {"linear": 1.0, "sigmoid": 1.0, "identity": 1.0, "tanh": 5.0 / 3,
             "relu": math.sqrt(2.0)}
    if nonlinearity not in gains:
        raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; "
                         f"choose one of {sorted(gains)}")
    return gains[nonlinearity]


def normal(shape: Any, std: float = 1.0) -> np.ndarray:
    """cs231n's ``std * np.random.randn(*shape)`` (the default ``std=1e-4`` of TwoLayerNet)."""
    return std * np.random.randn(*_shape(shape))


def he_normal(shape: Any) -> np.ndarray:
    """He et al. 2015 for ReLU layers: ``np.random.randn(fan_in, fan_out) * sqrt(2 / fan_in)``,
    exactly seed 002's ``initalize_he_weights`` (same draws, same order)."""
    shape = _shape(shape)
    fan_in, _ = fan_in_out(shape)
    return np.random.randn(*shape) * np.sqrt(2.0 / fan_in)


def he(l0: int, l1: int) -> Tuple[np.ndarray, np.ndarray]:
    """Seed 002's helper, by its signature: He weights of shape (l0, l1) and zero
    biases of shape (1, l1)."""
    return he_normal((l0, l1)), np.zeros((1, l1))


def xavier_normal(shape: Any, gain: float = 1.0) -> np.ndarray:
    """Glorot & Bengio 2010: normal with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    shape = _shape(shape)
    fan_in, fan_out = fan_in_out(shape)
    return np.random.randn(*shape) * (gain * math.sqrt(2.0 / (fan_in + fan_out)))


def xavier_uniform(shape: Any, gain: float = 1.0) -> np.ndarray:
    """Glorot & Bengio 2010: uniform on ``[-a, a]``, ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    shape = _shape(shape)
    fan_in, fan_out = fan_in_out(shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return np.random.uniform(-a, a, size=shape)


def _fill(t: Any, values: np.ndarray, who: str) -> Any:
    arr = t.data if isinstance(t, Tensor) else t
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{who}: expected a Tensor or a NumPy array, got {type(t).__name__}")
    if arr.dtype.kind != "f":
        raise TypeError(f"{who}: can only fill a floating-point tensor, got dtype {arr.dtype}")
    arr[...] = values
    return t


def _arr_shape(t: Any) -> Tuple[int, ...]:
    return tuple((t.data if isinstance(t, Tensor) else np.asarray(t)).shape)


def normal_(t: Any, mean: float = 0.0, std: float = 1.0) -> Any:
    """Fill ``t`` in place with ``mean + std * randn``."""
    return _fill(t, mean + std * np.random.randn(*_arr_shape(t)), "normal_")


def zeros_(t: Any) -> Any:
    return _fill(t, 0.0, "zeros_")


def ones_(t: Any) -> Any:
    return _fill(t, 1.0, "ones_")


def constant_(t: Any, value: float) -> Any:
    return _fill(t, value, "constant_")


def kaiming_normal_(t: Any) -> Any:
    """Fill ``t`` in place with He-normal values (see ``he_normal``)."""
    return _fill(t, he_normal(_arr_shape(t)), "kaiming_normal_")


he_normal_ = kaiming_normal_


def xavier_normal_(t: Any, gain: float = 1.0) -> Any:
    return _fill(t, xavier_normal(_arr_shape(t), gain), "xavier_normal_")


def xavier_uniform_(t: Any, gain: float = 1.0) -> Any:
    return _fill(t, xavier_uniform(_arr_shape(t), gain), "xavier_uniform_")
