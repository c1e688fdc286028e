"""``tinygrad_lite.nn.functional``: the functional forms the modules use.

The composites (``softmax``, ``log_softmax``, ``cross_entropy``, ``l2_penalty``,
``multiclass_hinge``) are defined once, in ``tinygrad_lite.functional``, and
re-exported here under PyTorch's module path.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..functional import (composite, cross_entropy, l2_penalty, log_softmax,  # noqa: F401
                          multiclass_hinge, relu, softmax)
from ..tensor import Tensor, sigmoid, tanh  # noqa: F401

__all__ = ["relu", "sigmoid", "tanh", "softmax", "log_softmax", "cross_entropy",
           "multiclass_hinge", "l2_penalty", "linear", "dropout", "composite"]


def linear(x: Any, W: Any, b: Any = None) -> Tensor:
    """``x @ W + b`` in cs231n's row layout: ``W`` is (in, out), ``b`` is (out,)."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    out = x @ W
    return out if b is None else out + b


def dropout(x: Any, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout (PyTorch's meaning of ``p``: the probability of *zeroing* a
    unit). In training each unit is kept with probability ``1 - p`` and scaled by
    ``1 / (1 - p)``, so evaluation is the identity. The mask is drawn from
    ``np.random`` (seedable) and enters the graph as a constant. ``p=1`` zeroes
    everything in training (as PyTorch; no random numbers are drawn), so the
    gradient is zero too."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    x = x if isinstance(x, Tensor) else Tensor(x)
    if not training or p == 0:
        return x
    if x.dtype.kind != "f":
        raise TypeError(f"dropout: expected a floating-point tensor, got dtype {x.dtype}")
    if p == 1:
        return x * np.zeros(x.shape, x.dtype)
    keep = 1.0 - p
    mask = (np.random.rand(*x.shape) < keep).astype(x.dtype) / np.asarray(keep, x.dtype)
    return x * mask
