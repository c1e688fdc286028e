"""Composite functions: built from primitives (no new math), each defined once here.

Every node a composite creates is tagged with a ``Group`` of its name, so diagrams
can fold it into one gate. Re-exported as ``tinygrad_lite.nn.functional`` and at top
level; softmax, log_softmax, cross_entropy, var and std are Tensor methods too (set at
the end of this module: tensor.py, one layer down, does not import it).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Optional

import numpy as np

from . import ops
from ._checks import is_integer, is_number
from .autograd import Group, host, is_traced, state
from .trace import TraceError
from .tensor import Tensor, _axes_of, _axis, _deviation_keywords, apply


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


def relu(x: Any, inplace: bool = False) -> Tensor:
    """``max(x, 0)``; PyTorch's ``inplace=True`` is refused (backward needs x as it was)."""
    if inplace:
        raise ValueError("relu: inplace=True is not supported (backward needs the input as it "
                         "was); use the returned tensor")
    return _as_tensor(x).relu()


def _dim(who: str, x: Tensor, axis: Any, kw: dict) -> int:
    """``axis`` or PyTorch's ``dim=`` keyword: one axis of ``x``, checked here so the
    error names the composite."""
    if kw:
        if set(kw) != {"dim"}:
            raise TypeError(f"{who}: unexpected keyword argument(s) "
                            f"{', '.join(sorted(set(kw) - {'dim'}))}")
        axis = kw["dim"]
    if not is_integer(axis):
        raise TypeError(f"{who}: axis must be an int, got {axis!r}")
    if not -max(x.ndim, 1) <= axis < max(x.ndim, 1):
        raise np.exceptions.AxisError(f"{who}: axis {axis} is out of bounds for a tensor of "
                                      f"shape {x.shape}")
    return int(axis)


@composite("log_softmax", "{g} - softmax({x}) * {g}.sum(axis=-1, keepdims=True)")
def log_softmax(x: Any, axis: int = -1, **kw: Any) -> Tensor:
    """``x - logsumexp(x)`` along ``axis`` (PyTorch's ``dim=`` too). The max shift that
    keeps exp from overflowing lives inside the ``logsumexp`` gate, so no value is read
    here."""
    x = _as_tensor(x)
    return x - x.logsumexp(axis=_dim("log_softmax", x, axis, kw), keepdims=True)


logsoftmax = log_softmax


@composite("softmax", "{out} * ({g} - ({g} * {out}).sum(axis=-1, keepdims=True))")
def softmax(x: Any, axis: int = -1, **kw: Any) -> Tensor:
    """``exp(x - logsumexp(x))`` along ``axis`` (PyTorch's ``dim=`` too)."""
    x = _as_tensor(x)
    return (x - x.logsumexp(axis=_dim("softmax", x, axis, kw), keepdims=True)).exp()


def _array(x: Any) -> Any:
    """A Tensor's array or ``np.asarray(x)``; under ``tl.compile``'s trace, an argument's
    traced array as it is (its shape and dtype can be read, not its values)."""
    x = x.data if isinstance(x, Tensor) else x
    return x if is_traced(x) else np.asarray(x)


def _check_labels(op: str, scores: Tensor, labels: Any) -> np.ndarray:
    labels = _array(labels)
    if scores.ndim != 2:
        raise ValueError(f"{op}: scores must be 2-D (N, C), got shape {scores.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be integers (class indices), got dtype {labels.dtype}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"{op}: labels must have shape ({scores.shape[0]},) for scores of shape "
                         f"{scores.shape}, got {labels.shape}")
    host(_check_range, op, labels, scores.shape[1])  # reads values: again at each replay
    return labels


def _check_range(op: str, labels: np.ndarray, classes: int, ignore_index: Any = None) -> bool:
    """Raise for a label outside [0, classes) (other than ``ignore_index``); True when
    every label is inside, so none equals an ``ignore_index`` outside it."""
    # One pass for both ends: viewed as unsigned (same size and byte order), a negative
    # label is a huge number.
    if not labels.size or labels.view(labels.dtype.str.replace("i", "u")).max() < classes:
        return True
    bad = (labels < 0) | (labels >= classes)
    if ignore_index is not None:
        bad &= labels != ignore_index
    if bad.any():
        raise IndexError(f"{op}: label {labels[bad].ravel()[0]} is out of range for "
                         f"{classes} classes")
    return False


def _check_every_label_counts(op: str, labels: np.ndarray, classes: int, ignore_index: Any) -> None:
    """Under ``tl.compile``, which samples count cannot change between replays: a label
    equal to ``ignore_index`` is refused, in the traced call or in a replay."""
    inside = _check_range(op, labels, classes, ignore_index)
    if (not inside or 0 <= ignore_index < classes) and (labels == ignore_index).any():
        raise TraceError(f"{op}: a label equals ignore_index ({ignore_index}) in a tl.compile'd "
                         f"call; which samples count would be decided per call from the labels' "
                         f"values: call cross_entropy outside tl.compile")


_REDUCTIONS = ("mean", "sum", "none")


def _reduction(op: str, reduction: Any) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _class_weight(op: str, weight: Any, classes: int, dtype: np.dtype) -> Optional[np.ndarray]:
    """The per-class ``weight=`` as a constant array of the scores' dtype."""
    if weight is None:
        return None
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
    if w.dtype.kind not in "fiu" or w.shape != (classes,):
        raise ValueError(f"{op}: weight must hold one number per class, shape ({classes},), "
                         f"got {w.dtype} of shape {w.shape}")
    return w.astype(dtype)


def _class_targets(scores: Tensor, target: Any, ignore_index: int) -> tuple:
    """Integer class targets checked against ``scores`` (class axis 1, or 0 for one
    sample of shape (C,)): the labels, and the mask of those that count (None when
    every one does)."""
    op = "cross_entropy"
    labels = _array(target)
    classes = scores.shape[1 if scores.ndim > 1 else 0]
    want = scores.shape[:1] + scores.shape[2:] if scores.ndim > 1 else ()
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be integers (class indices) of shape {want}, or "
                        f"probabilities of the scores' shape {scores.shape}; got dtype "
                        f"{labels.dtype} of shape {labels.shape}")
    if labels.shape != want:
        if scores.ndim == 1:
            raise ValueError(f"{op}: a batch of labels needs 2-D scores (N, C); scores of shape "
                             f"{scores.shape} are one sample, whose label is one integer (0-d), "
                             f"got labels of shape {labels.shape}")
        raise ValueError(f"{op}: labels must have shape {want} for scores of shape "
                         f"{scores.shape}, got {labels.shape}")
    if is_traced(labels):  # checked again at each replay, on that call's labels
        host(_check_every_label_counts, op, labels, classes, ignore_index)
        return labels, None
    inside = _check_range(op, labels, classes, ignore_index)
    if inside and not 0 <= ignore_index < classes:
        return labels, None  # no label is ignore_index: every one counts
    counted = labels != ignore_index
    return labels, (None if counted.all() else counted)


def _picked(scores: Tensor, labels: np.ndarray) -> Tensor:
    """Each sample's score of its own class, ``scores[i, labels[i]]`` (cs231n's
    ``scores[np.arange(N), y]``), keeping the class axis 1 (of size 1) so it broadcasts
    against ``scores``; for one sample (C,), a 0-d score."""
    if scores.ndim == 1:
        return scores[labels]
    if scores.ndim == 2:
        return scores[np.arange(len(labels))[:, None], labels[:, None]]
    grid: tuple[np.ndarray, ...] = np.indices(labels.shape, sparse=True)
    first, *rest = (np.expand_dims(i, 1) for i in grid)
    return scores[(first, np.expand_dims(labels, 1)) + tuple(rest)]


@composite("cross_entropy", "{g} * (softmax({x}) - onehot(y)) / N")
def cross_entropy(logits: Any, target: Any, weight: Any = None, *, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy, as ``torch.nn.functional.cross_entropy``.

    ``logits`` are (N, C) scores (also (C,) for one sample, or (N, C, d1, ...)), and
    ``target`` either integer class labels, shape (N,) (or (), (N, d1, ...)), or class
    probabilities of the logits' own shape. ``reduction="mean"`` (cs231n's softmax
    loss: the mean over the N samples), ``"sum"`` or ``"none"`` (one loss per sample).
    ``weight`` (one number per class) scales each sample's loss by its class's weight,
    and the mean divides by the sum of those weights; labels equal to ``ignore_index``
    count for nothing; ``label_smoothing`` mixes the target with the uniform
    distribution. For (N, C) scores and integer labels without weights, smoothing or
    ignored labels (cs231n's case) it is one ``softmax_cross_entropy`` gate, whose
    backward is the notes' ``(softmax(s) - onehot(y)) / N``; otherwise the per-sample
    loss is ``logsumexp_j(s_ij - s_iy_i)`` (the notes' ``log sum_j exp(s_j - s_y)``).
    Either way the max shift lives inside a gate, so no value of the scores is read here."""
    op = "cross_entropy"
    # the one-line gradient (softmax - onehot) / N describes the common case only
    state.groups[-1].exact = False
    logits = _as_tensor(logits)
    reduction = _reduction(op, reduction)
    if not is_number(label_smoothing) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
    if logits.ndim == 0:
        raise ValueError(f"{op}: scores must be 2-D (N, C) (or (C,), or (N, C, d1, ...)), got a 0-d tensor")
    axis = 1 if logits.ndim > 1 else 0
    classes = logits.shape[axis]
    w = _class_weight(op, weight, classes, logits.dtype)
    t = _array(target)
    if t.dtype.kind == "f" and t.shape == logits.shape:
        return _cross_entropy_probabilities(logits, target, w, axis, ignore_index, reduction,
                                            label_smoothing)
    labels, counted = _class_targets(logits, target, ignore_index)
    every = counted is None
    if every and logits.ndim == 2 and w is None and not label_smoothing:
        # the common case (cs231n's): one gate whose backward is (softmax - onehot) / N;
        # the labels are copied, so changing the caller's array cannot change backward
        state.groups[-1].exact = reduction == "mean"
        return apply(ops.SoftmaxCrossEntropy, (logits,),
                     {"labels": labels.copy(), "reduction": reduction})
    if not every:
        labels = np.where(counted, labels, 0)  # any valid class: its loss is multiplied by 0
    # -log softmax(s)_y = log sum_j exp(s_j - s_y): the scores relative to the right
    # class's, as the cs231n notes write the softmax loss
    margins = logits - _picked(logits, labels)
    nll = margins.logsumexp(axis=axis)
    smooth = None
    if label_smoothing:
        # -sum_c w_c log p_c = sum_c w_c (nll - m_c), the margins m
        if w is None:
            smooth = nll * classes - margins.sum(axis=axis)
        else:
            shape = (classes,) + (1,) * (logits.ndim - axis - 1)
            smooth = nll * w.sum() - (margins * w.reshape(shape)).sum(axis=axis)
    scale = None if w is None else w[labels]
    if not every:
        scale = counted.astype(logits.dtype) if scale is None else scale * counted
    if scale is not None:
        nll = nll * scale
        if smooth is not None and not every:
            smooth = smooth * counted
    if smooth is not None:
        nll = nll * (1 - label_smoothing) + smooth * (label_smoothing / classes)
    if reduction != "mean" or scale is None:
        return _reduce(nll, reduction)
    # the mean over what counts: divided by the weights of the counted samples
    total = scale.sum()
    if total == 0:  # nothing counts: PyTorch's nan loss, with zero gradients
        return nll.sum() * 0.0 + np.nan
    return nll.sum() / total


def _cross_entropy_probabilities(logits: Tensor, target: Any, w: Optional[np.ndarray], axis: int,
                                 ignore_index: Any, reduction: str, smoothing: float) -> Tensor:
    """``-sum_c w_c t_c log softmax(s)_c`` per sample; the mean divides by the number of
    samples (PyTorch's rule for probability targets, also with ``weight``)."""
    if ignore_index != -100:
        raise ValueError("cross_entropy: ignore_index is for integer labels, not for "
                         "probability targets")
    classes = logits.shape[axis]
    if smoothing:
        target = target * (1 - smoothing) + smoothing / classes
    logp = log_softmax(logits, axis)
    terms = logp * target
    if w is not None:
        terms = terms * w.reshape((classes,) + (1,) * (logits.ndim - axis - 1))
    per_sample = -terms.sum(axis=axis)
    return _reduce(per_sample, reduction)


def _probabilities(op: str, p: Any, who: str) -> None:
    host(_check_probabilities, op, _array(p), who)  # reads values: again at each replay


def _check_probabilities(op: str, values: np.ndarray, who: str) -> None:
    if values.size and not ((values >= 0) & (values <= 1)).all():
        bad = values[~((values >= 0) & (values <= 1))].ravel()[0]
        raise ValueError(f"{op}: every element of {who} must be between 0 and 1, found {bad}")


@composite("binary_cross_entropy")
def binary_cross_entropy(input: Any, target: Any, weight: Any = None,
                         reduction: str = "mean") -> Tensor:
    """``-w (t log p + (1 - t) log(1 - p))`` for probabilities ``p`` (after a sigmoid),
    as ``torch.nn.functional.binary_cross_entropy``: each log is clamped at -100, so
    p = 0 or 1 gives a finite loss (and a finite gradient)."""
    op = "binary_cross_entropy"
    reduction = _reduction(op, reduction)
    p = _as_tensor(input)
    if np.shape(target.data if isinstance(target, Tensor) else target) != p.shape:
        raise ValueError(f"{op}: target must have the input's shape {p.shape}, got "
                         f"{np.shape(target.data if isinstance(target, Tensor) else target)}")
    _probabilities(op, p, "input")
    _probabilities(op, target, "target")
    loss = apply(ops.BinaryCrossEntropy, (p, target), {})
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


@composite("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """``binary_cross_entropy(sigmoid(x), t)`` computed from the logits ``x`` without
    overflow: ``(1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)``, as
    ``torch.nn.functional.binary_cross_entropy_with_logits``."""
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(op, reduction)
    x = _as_tensor(input)
    t_shape = np.shape(target.data if isinstance(target, Tensor) else target)
    if t_shape != x.shape:
        raise ValueError(f"{op}: target must have the input's shape {x.shape}, got {t_shape}")
    # softplus(-x) = log(1 + exp(-x)), never x's threshold shortcut: exact for any x
    log_term = (-x).softplus(threshold=math.inf)
    if pos_weight is not None:  # the positive term's weight, per class (broadcast)
        pw = pos_weight if isinstance(pos_weight, Tensor) else np.asarray(pos_weight)
        log_term = log_term * ((pw - 1) * target + 1)
    loss = (1 - target) * x + log_term
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


@composite("mse_loss")
def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Squared error ``(input - target) ** 2``, averaged (``"mean"``), summed or per
    element (``"none"``), as ``torch.nn.functional.mse_loss``."""
    reduction = _reduction("mse_loss", reduction)
    return _reduce((_as_tensor(input) - target) ** 2, reduction)


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
    if not is_number(reg):
        raise TypeError(f"l2_penalty: reg must be a number, got {type(reg).__name__}")
    if not np.isfinite(reg) or reg < 0:
        raise ValueError(f"l2_penalty: reg must be a finite number >= 0, got {reg}")
    ts = _penalty_tensors(tensors)
    if not ts:
        raise ValueError("l2_penalty: no tensors given")
    total: Optional[Tensor] = None
    for t in ts:
        if t.dtype.kind != "f":
            raise TypeError(f"l2_penalty: tensors must be floating point, got dtype {t.dtype} "
                            f"(shape {t.shape})")
        sq = (t ** 2).sum()  # the engine's pow has a cheap backward for exponent 2
        total = sq if total is None else total + sq
    assert total is not None  # ts is not empty
    return total * (0.5 * reg if half else reg)


@composite("multiclass_hinge")
def multiclass_hinge(scores: Any, labels: Any, delta: float = 1.0) -> Tensor:
    """cs231n's multiclass SVM loss, averaged over the batch:
    ``mean_i sum_{j != y_i} max(0, s_ij - s_iy_i + delta)``.
    A margin of exactly 0 passes no gradient (cs231n's ``if margin > 0``)."""
    scores = _as_tensor(scores)
    labels = _check_labels("multiclass_hinge", scores, labels)
    n = len(labels)
    correct = scores[np.arange(n), labels].reshape(n, 1)
    # the correct class contributes no margin
    others = (np.arange(scores.shape[1]) != labels[:, None]).astype(scores.dtype)
    margins = (scores - correct + delta).relu() * others
    return margins.sum() / n


@composite("var")
def var(x: Any, axis: Any = None, keepdims: bool = False, ddof: Any = None, **kw: Any) -> Tensor:
    """Variance as NumPy's ``var`` (``ddof=0``), or as ``torch.var`` when spelled with
    ``dim=``/``keepdim=`` (default ``correction=1``); ``correction=``/``unbiased=`` too."""
    x = _as_tensor(x)
    axis, keepdims, ddof, dtype = _deviation_keywords("var", axis, keepdims, ddof, kw)
    axis = _deviation_axis("var", x, axis)
    mean = x.mean(axis=axis, keepdims=True)
    n = x.size // max(mean.size, 1)  # elements averaged per output
    centered = x - mean
    out = (centered * centered).sum(axis=axis, keepdims=keepdims) / max(n - ddof, 0)
    return out if dtype is None else out.astype(dtype)


def std(x: Any, axis: Any = None, keepdims: bool = False, ddof: Any = None, **kw: Any) -> Tensor:
    """Standard deviation as NumPy's ``std`` (``ddof=0``), or as ``torch.std`` when spelled
    with ``dim=``/``keepdim=`` (default ``correction=1``); its gradient is 0 where the
    deviation is 0 (as PyTorch's), not the NaN of ``sqrt(var(x))``."""
    x = _as_tensor(x)
    axis, keepdims, ddof, dtype = _deviation_keywords("std", axis, keepdims, ddof, kw)
    axis = _deviation_axis("std", x, axis)
    out = apply(ops.Std, (x,), {"axis": _axis(axis), "keepdims": bool(keepdims), "ddof": ddof})
    return out if dtype is None else out.astype(dtype)


def _deviation_axis(name: str, x: Tensor, axis: Any) -> Any:
    """``axis`` of ``var``/``std`` checked in their own name. A 0-d tensor takes axis 0
    or -1, as in PyTorch (and in ``sum`` and ``mean`` here): its one element."""
    if axis is None or isinstance(axis, tuple) and not axis:  # () : see _no_axes in ops.py
        return axis
    if x.ndim:
        return _axes_of(_axis(axis), x.ndim, name, keep_order=True)
    try:
        _axes_of(_axis(axis), 1, name)
    except np.exceptions.AxisError:
        raise np.exceptions.AxisError(f"{name}: axis {axis} is out of bounds for a 0-d tensor "
                                      f"(it takes axis 0 or -1, as in PyTorch)") from None
    return None


# The composites that are Tensor methods too (tensor.py declares them): x.softmax(), ...
Tensor.softmax = softmax
Tensor.log_softmax = Tensor.logsoftmax = log_softmax
Tensor.cross_entropy = cross_entropy
Tensor.var = var
Tensor.std = std
