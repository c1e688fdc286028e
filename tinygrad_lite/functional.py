"""Composite functions: built from primitives (no new math), each defined once here.

Every node a composite creates is tagged with a ``Group`` of its name, so diagrams
can fold it into one gate. Re-exported as ``tinygrad_lite.nn.functional``, at top
level, and (softmax, log_softmax, cross_entropy) as Tensor methods.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import numpy as np

from . import ops
from .autograd import Group
from .tensor import Tensor, _axis, apply


#: composite name -> the line a hand derivation writes for the gradient of its (first)
#: tensor input, in the op templates' placeholders (``ops.Function.template``): ``{g}``
#: the output's gradient, ``{x}`` the input, ``{out}`` the output. ``tl.explain``
#: prints a composite that has one as a single line.
TEMPLATES: dict[str, str] = {}
#: name -> function, for every composite made with ``composite`` (the library's and users')
COMPOSITES: dict[str, Callable] = {}


def composite(name: str, template: Optional[str] = None) -> Callable:
    """Decorator: run the function inside ``Group(name)`` so its nodes are tagged, and
    list it in ``COMPOSITES``; ``template`` is its gradient as one line (see
    :data:`TEMPLATES`)."""
    if template is not None:
        TEMPLATES[name] = template

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def tagged(*args: Any, **kwargs: Any) -> Any:
            with Group(name):
                return fn(*args, **kwargs)
        COMPOSITES[name] = tagged
        return tagged
    return wrap


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def relu(x: Any) -> Tensor:
    return _as_tensor(x).relu()


def _row_max(op: str, x: Tensor, axis: int) -> np.ndarray:
    """The max shift (a constant), with errors that name the composite."""
    try:
        # initial=-inf: an empty class axis gives an empty result, as in PyTorch
        return x.data.max(axis=axis, keepdims=True, initial=-np.inf)
    except np.exceptions.AxisError as e:
        raise np.exceptions.AxisError(f"{op}: {e} (input shape {x.shape})") from None
    except (ValueError, TypeError) as e:
        raise type(e)(f"{op}: {e} (input shape {x.shape})") from None


@composite("log_softmax", "{g} - softmax({x}) * {g}.sum(axis=-1, keepdims=True)")
def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log(softmax(x)) = (x - max) - log(sum(exp(x - max))): the max shift keeps
    exp from overflowing (scores of 1e4 are fine) and changes no gradient, so it
    is taken as a constant."""
    x = _as_tensor(x)
    shifted = x - _row_max("log_softmax", x, axis)
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


@composite("softmax", "{out} * ({g} - ({g} * {out}).sum(axis=-1, keepdims=True))")
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
    # One pass for both ends: viewed as unsigned (same size and byte order), a negative
    # label is a huge number.
    if labels.size and labels.view(labels.dtype.str.replace("i", "u")).max() >= scores.shape[1]:
        bad = labels[(labels < 0) | (labels >= scores.shape[1])][0]
        raise IndexError(f"{op}: label {bad} is out of range for {scores.shape[1]} classes")
    return labels


@composite("cross_entropy", "{g} * (softmax({x}) - onehot(y)) / N")
def cross_entropy(logits: Any, labels: Any) -> Tensor:
    """Mean softmax cross-entropy of (N, C) ``logits`` against integer ``labels`` (N,):
    ``mean_i (log sum_j exp(s_ij) - s_iy_i)``, cs231n's softmax loss. The row max
    shift is the one of ``log_softmax``; picking ``s_iy_i`` before subtracting (not
    ``-log_softmax(s)[i, y_i]``) keeps the subtraction on N numbers, not N x C."""
    logits = _as_tensor(logits)
    labels = _check_labels("cross_entropy", logits, labels)
    shifted = logits - _row_max("cross_entropy", logits, 1)
    log_sum = shifted.exp().sum(axis=1).log()
    return (log_sum - shifted[np.arange(len(labels)), labels]).mean()


def _penalty_tensors(tensors: Any) -> list:
    if isinstance(tensors, Tensor):
        return [tensors]
    if isinstance(tensors, np.ndarray):
        return [Tensor(tensors)]
    if isinstance(tensors, dict):
        tensors = tensors.values()
    try:
        items = list(tensors)
    except TypeError:
        raise TypeError(f"l2_penalty: tensors must be a Tensor or an iterable of Tensors, "
                        f"got {type(tensors).__name__}") from None
    return [_as_tensor(t) for t in items]


@composite("l2_penalty")
def l2_penalty(tensors: Any, reg: float, half: bool = False) -> Tensor:
    """L2 regularisation: ``reg * sum_t sum(t ** 2)`` over exactly the tensors given
    (pass the weights, not the biases, as cs231n does).

    ``half=False`` is cs231n's current assignment (seed 000): the gradient of each
    tensor gets ``2 * reg * t``. ``half=True`` is the older notes' ``0.5 * reg *``
    convention (seeds 001-003): the gradient gets ``reg * t``.
    """
    if isinstance(reg, Tensor) or not isinstance(reg, (int, float, np.integer, np.floating)) \
            or isinstance(reg, bool):
        raise TypeError(f"l2_penalty: reg must be a number, got {type(reg).__name__}")
    if not np.isfinite(reg) or reg < 0:
        raise ValueError(f"l2_penalty: reg must be a finite number >= 0, got {reg}")
    ts = _penalty_tensors(tensors)
    if not ts:
        raise ValueError("l2_penalty: no tensors given")
    total = None
    for t in ts:
        if t.dtype.kind != "f":
            raise TypeError(f"l2_penalty: tensors must be floating point, got dtype {t.dtype} "
                            f"(shape {t.shape})")
        sq = (t ** 2).sum()  # the engine's pow has a cheap backward for exponent 2
        total = sq if total is None else total + sq
    return total * (0.5 * reg if half else reg)


@composite("multiclass_hinge")
def multiclass_hinge(scores: Any, labels: Any, delta: float = 1.0) -> Tensor:
    """cs231n's multiclass SVM loss, averaged over the batch:
    ``mean_i sum_{j != y_i} max(0, s_ij - s_iy_i + delta)``.
    A margin of exactly 0 passes no gradient (cs231n's ``if margin > 0``)."""
    scores = _as_tensor(scores)
    labels = _check_labels("multiclass_hinge", scores, labels)
    n = len(labels)
    rows = np.arange(n)
    correct = scores[rows, labels].reshape(n, 1)
    others = np.ones(scores.shape, dtype=scores.dtype)
    others[rows, labels] = 0  # the correct class contributes no margin
    margins = (scores - correct + delta).relu() * others
    return margins.sum() / n


@composite("var")
def var(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance as NumPy's ``var`` (``ddof=0``; PyTorch's default is ``ddof=1``)."""
    x = _as_tensor(x)
    mean = x.mean(axis=axis, keepdims=True)
    n = x.size // max(mean.size, 1)  # elements averaged per output
    centered = x - mean
    return (centered * centered).sum(axis=axis, keepdims=keepdims) / max(n - ddof, 0)


def std(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Standard deviation with NumPy's meaning of ``ddof``; its gradient is 0 where the
    deviation is 0 (as PyTorch's), not the NaN of ``sqrt(var(x))``."""
    x = _as_tensor(x)
    return apply(ops.Std, (x,), {"axis": _axis(axis), "keepdims": bool(keepdims), "ddof": ddof})
