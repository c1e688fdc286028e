"""Small helpers shared by the reference derivations (input checks and copies)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def unpack(params: Mapping[str, Any], who: str) -> tuple[np.ndarray, ...]:
    """W1, b1, W2, b2 as float64 arrays. ``np.array`` copies, so no derivation can
    write into the caller's arrays (seeds 002 and 004 modify ``probs``/``dh`` in place;
    with copies that stays harmless)."""
    missing = [k for k in ("W1", "b1", "W2", "b2") if k not in params]
    if missing:
        raise KeyError(f"{who}: params lack {', '.join(missing)} (need W1, b1, W2, b2)")
    return tuple(np.array(params[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2"))


def data(X: Any, y: Any, who: str, n_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """A float64 copy of X and an integer copy of y, checked against each other."""
    X = np.array(X, dtype=np.float64)
    y = np.array(y)
    if X.ndim != 2:
        raise ValueError(f"{who}: X must be 2-D, got shape {X.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{who}: y must hold integer class labels, got dtype {y.dtype}")
    if y.shape != (X.shape[n_axis],):
        raise ValueError(f"{who}: y must have shape ({X.shape[n_axis]},) for X of shape {X.shape}, "
                         f"got {y.shape}")
    return X, y


def like(grad: np.ndarray, param: np.ndarray) -> np.ndarray:
    """The gradient in its parameter's shape: a bias given as (1, H) gets a (1, H)
    gradient and one given as (H,) an (H,) one (same numbers either way)."""
    return grad.reshape(param.shape)
