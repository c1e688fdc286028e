"""Argument checks shared across the package: what counts as a number.

``bool`` is a subclass of ``int`` in Python, so ``isinstance(True, int)`` holds; a
flag passed where a size or a rate belongs is a mistake, never ``1``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["is_integer", "is_number", "check_probability"]


def is_integer(value: Any) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A Python or NumPy integer or float, not a bool (``nan`` and ``inf`` included:
    callers that need a finite value say so)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_probability(p: Any, who: str) -> float:
    """``p`` as a float in [0, 1], else a ValueError naming ``who``."""
    if not is_number(p) or not 0 <= p <= 1:
        raise ValueError(f"{who}: p must be a probability in [0, 1], got {p!r}")
    return float(p)
