"""Composite functions: built from primitives (no new math), each defined once here.

Every node a composite creates is tagged with a ``Group`` of its name, so diagrams
can fold it into one gate. Re-exported as ``tinygrad_lite.nn.functional``, at top
level, and (softmax, log_softmax, cross_entropy) as Tensor methods.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from .autograd import Group
from .tensor import Tensor


def composite(name: str) -> Callable:
    """Decorator: run the function inside ``Group(name)`` so its nodes are tagged."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def tagged(*args: Any, **kwargs: Any) -> Any:
            with Group(name):
                return fn(*args, **kwargs)
        return tagged
    return wrap


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def relu(x: Any) -> Tensor:
    return _as_tensor(x).relu()


def _row_max(op: str, x: Tensor, axis: int) -> np.ndarray:
    """The max shift (a constant), with errors that name the composite."""
    try:
        return x.data.max(axis=axis, keepdims=True)
    except np.exceptions.AxisError as e:
        raise np.exceptions.AxisError(f"{op}: {e} (input shape {x.shape})") from None
    except (ValueError, TypeError) as e:
        raise type(e)(f"{op}: {e} (input shape {x.shape})") from None


@composite("log_softmax")
def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log(softmax(x)) = (x - max) - log(sum(exp(x - max))): the max shift keeps
    exp from overflowing (scores of 1e4 are fine) and changes no gradient, so it
    is taken as a constant."""
    x = _as_tensor(x)
    shifted = x - _row_max("log_softmax", x, axis)
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


@composite("softmax")
def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x - max) / sum(exp(x - max)) along ``axis``."""
    x = _as_tensor(x)
    e = (x - _row_max("softmax", x, axis)).exp()
    return e / e.sum(axis=axis, keepdims=True)


def _check_labels(op: str, scores: Tensor, labels: Any) -> np.ndarray:
    labels = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    if scores.ndim != 2:
        raise ValueError(f"{op}: scores must be 2-D (N, C), got shape {scores.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be integers (class indices), got dtype {labels.dtype}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"{op}: labels must have shape ({scores.shape[0]},) for scores of shape "
                         f"{scores.shape}, got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        bad = labels[(labels < 0) | (labels >= scores.shape[1])][0]
        raise IndexError(f"{op}: label {bad} is out of range for {scores.shape[1]} classes")
    return labels


@composite("cross_entropy")
def cross_entropy(logits: Any, labels: Any) -> Tensor:
    """Mean softmax cross-entropy of (N, C) ``logits`` against integer ``labels`` (N,)."""
    logits = _as_tensor(logits)
    labels = _check_labels("cross_entropy", logits, labels)
    logp = log_softmax(logits, axis=1)
    return -logp[np.arange(len(labels)), labels].mean()
