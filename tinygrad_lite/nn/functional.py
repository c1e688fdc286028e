"""``tinygrad_lite.nn.functional``: the functional forms the modules use.

The composites (``softmax``, ``log_softmax``, ``cross_entropy``, the other losses,
``l2_penalty``, ``multiclass_hinge``) are defined once, in ``tinygrad_lite.functional``,
and the activations are Tensor methods; both are re-exported here under PyTorch's
module path. ``pad`` here takes PyTorch's flat form (``tl.pad`` NumPy's).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_probability, is_integer
from ..autograd import host
from ..functional import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                          composite, cross_entropy, l2_penalty, log_softmax, logsoftmax,
                          mse_loss, multiclass_hinge, relu, softmax)
from ..tensor import Tensor

__all__ = ["relu", "sigmoid", "tanh", "leaky_relu", "elu", "softplus", "gelu", "relu6",
           "hardswish", "mish", "softmax", "log_softmax", "logsoftmax",
           "cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "mse_loss", "multiclass_hinge", "l2_penalty", "linear", "dropout", "pad",
           "composite"]


def _activation(name: str, settings: tuple = ()):
    """PyTorch's functional activation: ``F.<name>(input, *settings, inplace=False)``.
    The graph needs the input as it was, so ``inplace=True`` is refused."""
    def fn(input: Any, *args: Any, inplace: bool = False, **kwargs: Any) -> Tensor:
        if inplace:
            raise ValueError(f"{name}: inplace=True is not supported (backward needs the input "
                             f"as it was); use the returned tensor")
        x = input if isinstance(input, Tensor) else Tensor(input)
        return getattr(x, name)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = (f"``torch.nn.functional.{name}(input{''.join(', ' + s for s in settings)}, "
                  f"inplace=False)``: ``input.{name}(...)``.")
    return fn


relu6, hardswish, mish = (_activation(n) for n in ("relu6", "hardswish", "mish"))
leaky_relu = _activation("leaky_relu", ("negative_slope=0.01",))
elu = _activation("elu", ("alpha=1.0",))
sigmoid, tanh = _activation("sigmoid"), _activation("tanh")
softplus = _activation("softplus", ("beta=1.0", "threshold=20.0"))
gelu = _activation("gelu", ("approximate='none'",))


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
    check_probability(p, "dropout")
    x = x if isinstance(x, Tensor) else Tensor(x)
    if not training or p == 0:
        return x
    if x.dtype.kind != "f":
        raise TypeError(f"dropout: expected a floating-point tensor, got dtype {x.dtype}")
    if p == 1:
        return x * np.zeros(x.shape, x.dtype)
    # drawn again at every replay of a tl.compile'd step
    return x * host(_dropout_mask, x.shape, 1.0 - p, x.dtype)


def _dropout_mask(shape: tuple, keep: float, dtype: Any) -> np.ndarray:
    return (np.random.rand(*shape) < keep).astype(dtype) / np.asarray(keep, dtype)


def pad(input: Any, pad: Any, mode: str = "constant", value: Any = None) -> Tensor:
    """``torch.nn.functional.pad``: ``pad`` is flat, ``(left, right)`` of the last axis
    first, then of the axis before it, ...; a negative amount crops. Only
    ``mode="constant"`` (fill with ``value``, 0 when None)."""
    x = input if isinstance(input, Tensor) else Tensor(input)
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    amounts = list(pad)
    if len(amounts) % 2 or len(amounts) // 2 > x.ndim or \
            not all(is_integer(n) for n in amounts):
        raise ValueError(f"pad: pad must be ints, two per padded axis (at most {x.ndim} axes: "
                         f"shape {x.shape}), got {tuple(amounts)}")
    pairs = [(0, 0)] * x.ndim
    for k in range(len(amounts) // 2):
        pairs[x.ndim - 1 - k] = (int(amounts[2 * k]), int(amounts[2 * k + 1]))
    out = x.pad([(max(b, 0), max(a, 0)) for b, a in pairs], 0 if value is None else value)
    if all(b >= 0 and a >= 0 for b, a in pairs):
        return out
    crop = []
    for (b, a), n in zip(pairs, out.shape):
        if n + min(b, 0) + min(a, 0) < 0:
            raise ValueError(f"pad: cropping {-min(b, 0)} + {-min(a, 0)} from an axis of size "
                             f"{n} leaves nothing (shape {x.shape}, pad {tuple(amounts)})")
        crop.append(slice(-min(b, 0), n + min(a, 0)))
    return out[tuple(crop)]
