"""Layers (``Linear``, activations, ``Flatten``, ``Dropout``) and losses as modules,
each a thin module over ``tinygrad_lite.nn.functional``."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Union

import numpy as np

from .._checks import check_probability, is_integer, is_number
from ..tensor import Tensor
from . import functional, init
from .module import Module, Parameter

__all__ = ["Linear", "ReLU", "Sigmoid", "Tanh", "Identity", "Flatten", "Dropout",
           "CrossEntropyLoss", "MultiClassHingeLoss"]


def _as_input(x: Any, who: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor(x)
    except TypeError as e:
        raise TypeError(f"{who}: {e}") from None


def _check_int(who: str, name: str, value: Any) -> int:
    if not is_integer(value) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")
    return int(value)


_INITS: Dict[str, Callable[[tuple], np.ndarray]] = {
    "he": init.he_normal,
    "kaiming": init.he_normal,
    "xavier": init.xavier_normal,
    "xavier_uniform": init.xavier_uniform,
}


class Linear(Module):
    """``x @ W + b`` (cs231n's affine layer) with ``W`` (in_features, out_features)
    and ``b`` (out_features,).

    Initialisation (one draw from ``np.random``, so ``np.random.seed`` repeats it):
    ``std=s`` gives cs231n's ``s * np.random.randn(in, out)``; otherwise ``init``
    picks it: ``"he"`` (default, seed 002's ``randn(in, out) * sqrt(2 / in)``, for
    ReLU layers), ``"xavier"`` (normal, ``sqrt(2 / (in + out))``),
    ``"xavier_uniform"``, or a callable ``shape -> array``. The bias starts at zero.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 std: Optional[float] = None, init: Union[str, Callable, None] = "he",
                 dtype: Any = np.float64) -> None:
        super().__init__()
        who = "Linear"
        self.in_features = _check_int(who, "in_features", in_features)
        self.out_features = _check_int(who, "out_features", out_features)
        shape = (self.in_features, self.out_features)
        if std is not None:
            if not is_number(std) or std < 0:
                raise ValueError(f"{who}: std must be a number >= 0, got {std!r}")
            W = std * np.random.randn(*shape)
        elif callable(init):
            W = np.asarray(init(shape))
            if W.shape != shape:
                raise ValueError(f"{who}: init returned shape {W.shape}, expected {shape}")
        elif init in _INITS:
            W = _INITS[init](shape)
        else:
            raise ValueError(f"{who}: unknown init {init!r}; use std=..., a callable, or one of "
                             f"{sorted(_INITS)}")
        self.W = Parameter(np.asarray(W, dtype=dtype), name="W")
        if bias:
            self.b = Parameter(np.zeros(self.out_features, dtype=dtype), name="b")
        else:
            self.b = None

    def forward(self, x: Any) -> Tensor:
        x = _as_input(x, self._group_name)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self._group_name} (Linear {self.in_features} -> {self.out_features}): "
                             f"expected input of shape (N, {self.in_features}), got {x.shape}")
        return functional.linear(x, self.W, self.b)

    def __getattr__(self, name: str) -> Any:  # only called for missing attributes
        if name in ("weight", "bias"):
            raise AttributeError(
                f"Linear has no {name!r}: its parameters are W, of shape (in_features, out_features) "
                f"(the transpose of PyTorch's weight), and b, of shape (out_features,)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.b is not None}"


class ReLU(Module):
    """max(0, x), elementwise."""

    def forward(self, x: Any) -> Tensor:
        return _as_input(x, self._group_name).relu()


class Sigmoid(Module):
    def forward(self, x: Any) -> Tensor:
        return _as_input(x, self._group_name).sigmoid()


class Tanh(Module):
    def forward(self, x: Any) -> Tensor:
        return _as_input(x, self._group_name).tanh()


class Identity(Module):
    def forward(self, x: Any) -> Tensor:
        return _as_input(x, self._group_name)


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...): images to cs231n's rows."""

    def forward(self, x: Any) -> Tensor:
        x = _as_input(x, self._group_name)
        if x.ndim < 1:
            raise ValueError(f"{self._group_name}: cannot flatten a 0-d input")
        return x.reshape(x.shape[0], -1) if x.ndim != 2 else x


class Dropout(Module):
    """Inverted dropout; ``p`` is the probability of zeroing a unit (PyTorch's
    meaning; cs231n's assignment calls the *keep* probability ``p``). Active in
    ``train()`` mode, the identity after ``eval()``. ``p=1`` (allowed, as in PyTorch)
    outputs zeros in training."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_probability(p, "Dropout")

    def forward(self, x: Any) -> Tensor:
        return functional.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"



class CrossEntropyLoss(Module):
    """``CrossEntropyLoss()(logits, labels)``: mean softmax cross-entropy."""

    def forward(self, logits: Any, labels: Any) -> Tensor:
        return functional.cross_entropy(logits, labels)


class MultiClassHingeLoss(Module):
    """``MultiClassHingeLoss()(scores, labels)``: cs231n's SVM loss, mean over the batch."""

    def __init__(self, delta: float = 1.0) -> None:
        super().__init__()
        self.delta = delta

    def forward(self, scores: Any, labels: Any) -> Tensor:
        return functional.multiclass_hinge(scores, labels, delta=self.delta)
