"""When two gradients agree: element by element within ``rtol`` or ``atol`` (cs231n's
relative error), and when one is a multiple of another."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..gradcheck import elementwise_errors


def agreeing(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Element by element: rel <= rtol or |diff| <= atol (nan disagrees)."""
    rel, diff = elementwise_errors(a, b)
    return (diff <= atol) | (rel <= rtol)


def agree(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return bool(np.all(agreeing(a, b, rtol, atol)))


def informative(x: np.ndarray, atol: float) -> int:
    """How many elements are more than ``atol`` away from 0: a fitted factor means
    something only when at least two elements pin it down."""
    return int(np.count_nonzero(np.abs(x) > atol))


def fitted_factor(y: np.ndarray, x: np.ndarray) -> Optional[float]:
    """The least-squares ``k`` of ``y ~ k * x``; None when ``x`` is zero."""
    xx = float(np.vdot(x, x))
    return None if xx == 0 or not np.isfinite(xx) else float(np.vdot(y, x)) / xx


def proportional(y: np.ndarray, x: np.ndarray, rtol: float, atol: float) -> Optional[float]:
    """``k`` when ``y == k * x`` element by element (with at least two informative
    elements, so an arbitrary pair of numbers is never "proportional"); else None."""
    if y.shape != x.shape or informative(x, atol) < 2 or informative(y, atol) < 2:
        return None
    k = fitted_factor(y, x)
    return k if k is not None and agree(y, k * x, rtol, atol) else None
