"""``Tensor``: a NumPy array plus the graph edge that produced it.

Tensor holds no math: every operator below wires an op from ``ops.py`` through
``apply``; the backward pass lives in ``autograd.py``.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Mapping, NoReturn, Optional, Sequence, Union

import numpy as np

from . import ops
from ._checks import is_integer
from .autograd import (Group, Hold, enable_grad, is_traced, modify, propagate, share_stamps,
                       stamps, state)
from .ops import NP, sum_axes

_EMPTY: dict = {}


class GradientShapeError(ValueError, RuntimeError):
    """A ``gradient=`` of the wrong shape: a shape error (NumPy users catch ValueError)
    and a misuse of backward (PyTorch users catch RuntimeError)."""


def _check_data(data: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, np.ndarray):
        arr = data
    else:
        if is_traced(data):
            return data  # an array of tl.compile's trace
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as e:
            raise TypeError(f"Tensor: cannot make an array of {type(data).__name__}: {e}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"Tensor: unsupported dtype {arr.dtype} (use a floating, integer or bool array)")
    return arr


def _make(data: np.ndarray, requires_grad: bool, op: Optional[type[ops.Function]], parents: tuple,
          args: dict, groups: tuple, name: Optional[str] = None, guard: bool = True) -> "Tensor":
    """Make a tensor without the checks of ``__init__`` (the hot path)."""
    t = Tensor.__new__(Tensor)
    t.stamp = next(stamps)
    t.data = data
    t._grad = None
    t.requires_grad = requires_grad
    t._name = name
    t.op = op
    t.parents = parents
    t.args = args
    t.groups = groups
    t._written = None
    t._guard = guard
    t._hold = None
    return t


def _new(data: np.ndarray, requires_grad: bool = False, name: Optional[str] = None,
         guard: bool = True) -> "Tensor":
    """A leaf. ``guard=False`` for the library's own constants (a lifted Python number),
    which nobody else can write to: they are never made read-only."""
    return _make(data, requires_grad, None, (), _EMPTY, (), name, guard)


#: Python's own scalars: NumPy 2 (NEP 50) treats them as "weak", taking the dtype of
#: the arrays they meet (float32 + 2.0 is float32; int8 + 1 is int8).
_WEAK = (bool, int, float)


def _lift(x: Any, like: Optional[np.dtype]) -> "Tensor":
    """Wrap a non-Tensor operand as a constant leaf. ``like`` is the dtype NumPy
    promotes the other operands to (None when every operand is a Python number): a
    Python number becomes an array of ``np.result_type(like, x)``, so the op's result
    has the dtype NumPy 2 gives the same expression on arrays."""
    if isinstance(x, Tensor):
        return x
    if type(x) is float and like is not None and like.kind == "f":  # lr, reg, 1 / N: first
        return _new(np.array(x, dtype=like), guard=False)
    if isinstance(x, np.generic):  # NumPy scalars are not weak: their own dtype
        return _new(_check_data(x), guard=False)
    if isinstance(x, _WEAK):
        dtype = None if like is None else np.result_type(like, x)
        return _new(_check_data(np.asarray(x, dtype=dtype)), guard=False)
    return _new(_check_data(x))


def _divisor(o: Any, t: "Tensor") -> Any:
    """True division of integers runs in float64 in NumPy, so a Python int meeting an
    integer or bool tensor there is a float (``int8 / 300`` is no int8 overflow)."""
    if type(o) in (int, bool) and t.data.dtype.kind in "iub":
        return float(o)
    return o


def _lift_all(inputs: Sequence[Any]) -> tuple:
    like = None  # the promoted dtype of the operands that are not Python numbers
    for x in inputs:
        if isinstance(x, Tensor):
            d = x.data.dtype
        elif isinstance(x, _WEAK) and not isinstance(x, np.generic):
            continue
        elif isinstance(x, (np.ndarray, np.generic)):
            d = x.dtype
        else:  # a list: an array to NumPy
            d = _check_data(x).dtype
        like = d if like is None or d == like else np.result_type(like, d)
    return tuple([_lift(x, like) for x in inputs])


def _fail(op: type[ops.Function], inputs: Sequence[Tensor], e: Exception) -> NoReturn:
    shapes = ", ".join(str(t.data.shape) for t in inputs)
    msg = f"{op.name}: {e} (input shapes {shapes})"
    for cls in (np.exceptions.AxisError, IndexError, ValueError, TypeError):
        if isinstance(e, cls):
            raise (cls(msg) if cls is not np.exceptions.AxisError else type(e)(msg)) from None
    raise e


def apply(op: type[ops.Function], inputs: Sequence[Any], args: dict) -> "Tensor":
    """Run ``op`` forward and, when any input requires grad, record the node."""
    # Plain loops, not all()/any() over generators: this runs once per op, and at toy
    # sizes the engine's own overhead, not NumPy, is most of a training step.
    if state.tracer is not None:
        return state.tracer.apply(op, inputs, args)
    for x in inputs:
        if type(x) is not Tensor:  # numbers and arrays become constant leaves
            inputs = _lift_all(inputs)
            break
    arrays = [x.data for x in inputs]
    try:
        out = op.forward(NP, *arrays, **args)
    except (ValueError, IndexError, TypeError) as e:
        _fail(op, inputs, e)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    t = None
    if state.grad_enabled and out.dtype.kind == "f":
        for x in inputs:
            if x.requires_grad:
                t = _make(out, True, op, tuple(inputs), args, state.groups)
                t._inputs = arrays  # what backward reads: the arrays of this forward pass
                if op.saves:  # the leaf arrays among them stay as they are until then
                    held = None
                    for x in inputs:
                        if x.op is None and x._guard:
                            if held is None:
                                held = [x.data]
                            else:
                                held.append(x.data)
                    if held is not None:
                        t._hold = Hold(held)
                break
    if t is None:
        t = _new(out)
    if out.base is not None:  # a view of an input (reshape, slice, .T): writes stamp both
        _share_view_stamps(t, inputs)
        if t.op is not None:  # and a raw write through the node cannot reach its input
            out.setflags(write=False)
    if state.anomaly and out.dtype.kind == "f" and not np.all(np.isfinite(out)):
        raise FloatingPointError(f"{op.name} forward produced nan/inf "
                                 f"(input shapes {', '.join(str(x.shape) for x in inputs)})")
    return t


ops.set_recorder(apply)  # MyOp.apply(x, ...) is apply(MyOp, (x, ...), {...})


def _share_view_stamps(t: "Tensor", inputs: Sequence["Tensor"]) -> None:
    owner = t.data.base
    for x in inputs:
        if x.data is owner or x.data.base is owner:
            share_stamps(x, t)
            return


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def _reduction_keywords(name: str, axis: Any, keepdims: Any, kw: dict) -> tuple:
    """Accept PyTorch's ``dim``/``keepdim`` and NumPy's ``dtype``/``out`` (what ``np.sum(t)``
    passes) beside ``axis``/``keepdims``."""
    kw = dict(kw)
    if "dim" in kw:
        if axis is not None:
            raise TypeError(f"{name}: give axis or dim, not both")
        axis = kw.pop("dim")
        if isinstance(axis, (tuple, list)) and not axis:  # torch: dim=() reduces every axis
            axis = None
    if "keepdim" in kw:
        keepdims = kw.pop("keepdim")
    dtype = kw.pop("dtype", None)
    if kw.pop("out", None) is not None:
        raise TypeError(f"{name}: out= is not supported: a tensor op makes a new tensor")
    if kw:
        raise TypeError(f"{name}: unexpected keyword argument(s) {', '.join(sorted(kw))}")
    return axis, keepdims, dtype


def _deviation_keywords(name: str, axis: Any, keepdims: Any, ddof: Any, kw: dict) -> tuple:
    """``std``/``var``'s ``(axis, keepdims, ddof, dtype)`` from NumPy's spelling (``axis``,
    ``keepdims``, ``ddof``: default 0) or PyTorch's (``dim``, ``keepdim``, ``correction``,
    ``unbiased``): when ``dim=`` or ``keepdim=`` is used the default is PyTorch's
    correction of 1, so ``x.std(dim=1)`` is ``torch.std(x, dim=1)``."""
    kw = dict(kw)
    torch_spelling = "dim" in kw or "keepdim" in kw
    correction, unbiased = kw.pop("correction", None), kw.pop("unbiased", None)
    given = [k for k, v in (("ddof", ddof), ("correction", correction), ("unbiased", unbiased))
             if v is not None]
    if len(given) > 1:
        raise TypeError(f"{name}: give one of ddof, correction and unbiased, got {' and '.join(given)}")
    axis, keepdims, dtype = _reduction_keywords(name, axis, keepdims, kw)
    if unbiased is not None:
        if not isinstance(unbiased, (bool, np.bool_)):
            raise TypeError(f"{name}: unbiased must be True or False, got {unbiased!r}")
        ddof = int(unbiased)
    elif correction is not None:
        ddof = correction
    elif ddof is None:
        ddof = 1 if torch_spelling else 0
    if isinstance(ddof, (bool, np.bool_)) or not isinstance(ddof, numbers.Real):
        raise TypeError(f"{name}: {given[0] if given else 'ddof'} must be a number, got {ddof!r}")
    return axis, keepdims, ddof, dtype


def _index(index: Any) -> Any:
    """Tensors and lists inside an index become arrays (NumPy's meaning)."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


class Tensor:
    """A NumPy array that records the ops applied to it, for reverse-mode autodiff.

    ``.data`` is the array itself (not a copy); ``.grad`` is None or an array of the
    same shape and dtype. ``Tensor(2.0)`` is a 0-d tensor, micrograd's ``Value(2.0)``,
    but it gets a gradient only with ``requires_grad=True`` (PyTorch's rule). Graph
    introspection (read-only for users and ``viz``):
    ``.op`` (the op-table entry, None for leaves), ``.parents`` (inputs, in order),
    ``.args`` (the op's non-tensor arguments), ``.groups`` (composite tags).
    """

    __slots__ = ("data", "_grad", "requires_grad", "_name", "op", "parents", "args",
                 "groups", "stamp", "_written", "_guard", "_hold", "_inputs", "__weakref__")
    data: Any  # an ndarray (while tl.compile traces, a traced array)
    _grad: Any  # None, an array, or a Tensor under create_graph
    requires_grad: bool
    _name: Optional[str]
    op: Optional[type[ops.Function]]
    parents: tuple[Tensor, ...]
    args: dict[str, Any]
    groups: tuple[Group, ...]
    #: a write counter: a fresh number at every in-place write (autograd.modify)
    stamp: int
    _written: Optional[list[int]]
    _guard: bool
    _hold: Optional[Hold]
    #: a node's input arrays as its forward read them (set by apply)
    _inputs: list[np.ndarray]
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operator
    __hash__ = object.__hash__

    def __init__(self, data: Any, requires_grad: bool = False, name: Optional[str] = None) -> None:
        source = data if isinstance(data, Tensor) else None
        data = _check_data(data)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(
                f"Tensor: only floating-point tensors can require grad, got dtype {data.dtype} "
                f"(integer tensors hold labels and indices; use .astype(np.float64) for values)")
        self.stamp = next(stamps)
        self.data = data
        self._grad = None
        self.requires_grad = bool(requires_grad)
        self._name = _checked_name(name, "Tensor")
        self.op = None
        self.parents = ()
        self.args = _EMPTY
        self.groups = ()
        self._written = None
        self._guard = True
        self._hold = None
        if source is not None:  # Tensor(t) shares t's array
            share_stamps(source, self)

    @property
    def grad(self) -> Any:
        """None, or the gradient: an array of this tensor's shape and dtype (a Tensor
        after ``backward(create_graph=True)``)."""
        if state.tracer is not None:
            return state.tracer.grad(self)
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        if state.tracer is not None:
            self._grad = state.tracer.set_grad(self, value)
            return
        self._grad = _checked_grad(self, value)

    @property
    def name(self) -> Optional[str]:
        """The name diagrams and reports print (a str, or None)."""
        return self._name

    @name.setter
    def name(self, value: Optional[str]) -> None:
        self._name = _checked_name(value, "name")

    # ------------------------------------------------------------ array-like
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)

    def numel(self) -> int:
        """The number of elements (PyTorch's name for ``size``)."""
        return self.data.size

    def dim(self) -> int:
        """The number of axes (PyTorch's name for ``ndim``)."""
        return self.data.ndim

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if state.tracer is not None:
            state.tracer.read(self, "np.asarray()")
        if self.requires_grad:
            # np.dot(X, W), X.dot(W), np.concatenate([W, ...]) would silently drop the graph
            raise RuntimeError(
                f"a tensor that requires grad (shape {self.shape}) cannot become a NumPy array "
                f"implicitly: that would drop its graph. Use tensor ops (X @ W, tl.concatenate, "
                f"tl.where), or t.data / t.detach() for the plain values")
        return self.data if dtype is None else self.data.astype(dtype)

    def numpy(self) -> np.ndarray:
        if state.tracer is not None:
            state.tracer.read(self, ".numpy()")
        return self.data

    def item(self) -> Union[float, int, bool]:
        if state.tracer is not None:
            state.tracer.read(self, ".item()")
        if self.data.size != 1:
            raise ValueError(f"item: only a tensor with one element can be converted, got shape {self.shape}")
        return self.data.item()

    def __float__(self) -> float:
        if state.tracer is not None:
            state.tracer.read(self, "float()")
        return float(self.item())

    def __int__(self) -> int:
        if state.tracer is not None:
            state.tracer.read(self, "int()")
        return int(self.item())

    def __bool__(self) -> bool:
        if state.tracer is not None:
            state.tracer.read(self, "bool() (an `if` or `while` on it)")
        return bool(self.data)

    def __repr__(self) -> str:
        if type(self.data) is not np.ndarray:  # traced by tl.compile: no values yet
            return f"Tensor(<traced>, shape={self.shape}, dtype={self.dtype})"
        body = np.array2string(self.data, separator=", ", precision=4, threshold=20,
                               prefix="Tensor(")
        extra = [f"dtype={self.dtype}"] if self.dtype != np.float64 else []
        if self.requires_grad:
            extra.append("requires_grad=True")
        if self.op is not None:
            extra.append(f"op={self.op.name}")
        if self.name is not None:
            extra.append(f"name={self.name!r}")
        return f"Tensor({body}{''.join(', ' + e for e in extra)})"

    # ------------------------------------------------------------ autograd
    def _root_gradient(self, gradient: Any, who: str, as_tensor: bool = False) -> Any:
        """The gradient that starts a backward pass from this tensor: a new array the
        pass may own (a Tensor when ``as_tensor``, for ``create_graph``)."""
        if not self.requires_grad:
            raise RuntimeError(f"{who}: this tensor does not require grad and has no graph "
                               f"(create the leaves with requires_grad=True)")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"{who}: a gradient can be created implicitly only for a scalar output, "
                    f"got shape {self.shape}; pass gradient= (an array of that shape)")
            ones = np.ones_like(self.data)
            return _new(ones, guard=False) if as_tensor else ones
        g: Any  # an array, or a Tensor when as_tensor
        if as_tensor and isinstance(gradient, Tensor):  # may itself require grad (double vjp)
            g = gradient if gradient.dtype == self.dtype else gradient.astype(self.dtype)
        else:
            g = np.array(gradient.data if isinstance(gradient, Tensor) else gradient,
                         dtype=self.dtype)
        if g.shape != self.shape:
            raise GradientShapeError(f"{who}: gradient has shape {g.shape}, the tensor has shape "
                                     f"{self.shape}")
        return _new(g, guard=False) if as_tensor and type(g) is np.ndarray else g

    def backward(self, gradient: Any = None, retain_graph: Optional[bool] = None,
                 create_graph: bool = False, inputs: Any = None) -> None:
        """Accumulate d(self)/d(t) into ``t.grad`` for every t in the graph that requires
        grad (only the tensors in ``inputs``, when given), as ``torch.Tensor.backward``.

        ``create_graph=True`` records the backward pass itself, so the stored gradients
        are Tensors that can be differentiated again. The graph stays usable after a
        backward (it lives while ``self`` does), so ``retain_graph`` is accepted and
        needs no value."""
        run_backward(self, gradient, create_graph, inputs)

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (an in-place change to it is seen by the
        graph's backward, which then raises)."""
        t = _new(self.data, name=self._name)
        share_stamps(self, t)
        return t

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(f"requires_grad_: only floating-point tensors can require grad, got {self.dtype}")
        if self.op is not None and not requires_grad:
            raise RuntimeError("requires_grad_: cannot turn off grad on a non-leaf; use detach()")
        self.requires_grad = requires_grad
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # ------------------------------------------------------------ arithmetic
    def __add__(self, o): return apply(ops.Add, (self, o), _EMPTY)
    def __radd__(self, o): return apply(ops.Add, (o, self), _EMPTY)
    def __sub__(self, o): return apply(ops.Sub, (self, o), _EMPTY)
    def __rsub__(self, o): return apply(ops.Sub, (o, self), _EMPTY)
    def __mul__(self, o): return apply(ops.Mul, (self, o), _EMPTY)
    def __rmul__(self, o): return apply(ops.Mul, (o, self), _EMPTY)
    def __truediv__(self, o): return apply(ops.Div, (self, _divisor(o, self)), _EMPTY)
    def __rtruediv__(self, o): return apply(ops.Div, (_divisor(o, self), self), _EMPTY)
    def __matmul__(self, o): return apply(ops.Matmul, (self, o), _EMPTY)
    def __rmatmul__(self, o): return apply(ops.Matmul, (o, self), _EMPTY)
    def __neg__(self): return apply(ops.Neg, (self,), _EMPTY)
    def __pos__(self): return self

    # In place: `W -= lr * W.grad` under no_grad() updates W's data, as in PyTorch; a leaf
    # that requires grad cannot change while recording; anything else (`loss += reg`)
    # builds a new node, as Python does without these methods.
    def __iadd__(self, o): return self._inplace(ops.Add, np.add, o)
    def __isub__(self, o): return self._inplace(ops.Sub, np.subtract, o)
    def __imul__(self, o): return self._inplace(ops.Mul, np.multiply, o)
    def __itruediv__(self, o): return self._inplace(ops.Div, np.divide, o)

    def _inplace(self, op: type[ops.Function], ufunc: Any, o: Any) -> "Tensor":
        if self.op is not None:
            return apply(op, (self, o), _EMPTY)
        if self.requires_grad and state.grad_enabled:
            raise RuntimeError(
                f"{op.name}: a leaf tensor that requires grad (shape {self.shape}"
                f"{', name ' + repr(self.name) if self.name else ''}) cannot be changed in place "
                f"while the graph is recorded; write `with tl.no_grad(): W -= lr * W.grad` "
                f"or `W.data -= lr * W.grad`")
        try:
            modify(self, lambda a: ufunc(a, _plain(o), out=a, casting="same_kind"))
        except (ValueError, TypeError) as e:
            cls = TypeError if isinstance(e, TypeError) else ValueError
            raise cls(f"{op.name} (in place): {e} (shapes {self.shape} and "
                      f"{np.shape(_plain(o))})") from None
        return self

    # PyTorch's method spellings of the operators.
    def add(self, other: Any, alpha: Any = 1) -> "Tensor":
        """``self + alpha * other`` (``torch.Tensor.add``)."""
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other: Any, alpha: Any = 1) -> "Tensor":
        """``self - alpha * other`` (``torch.Tensor.sub``)."""
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other: Any) -> "Tensor": return self * other

    def div(self, other: Any, rounding_mode: Optional[str] = None) -> "Tensor":
        if rounding_mode is not None:
            raise ValueError(f"div: rounding_mode={rounding_mode!r} is not supported (a rounded "
                             f"quotient is piecewise constant: its gradient is 0); divide "
                             f"the plain arrays, e.g. np.floor_divide(a.data, b.data)")
        return self / other

    def neg(self) -> "Tensor": return -self
    def pow(self, exponent: Any) -> "Tensor": return self ** exponent
    def matmul(self, other: Any) -> "Tensor": return apply(ops.Matmul, (self, other), _EMPTY)

    def dot(self, other: Any) -> "Tensor":
        """``np.dot``'s rule for 0-, 1- and 2-D operands (a product, an inner product,
        a matrix product); N-D operands raise: np.dot sums over the last axis of a and
        the second-to-last of b, which is not ``@``."""
        b = _plain(other)
        nb = np.ndim(b)
        if self.ndim == 0 or nb == 0:
            return self * other
        if self.ndim > 2 or nb > 2:
            raise ValueError(f"dot: operands of shapes {self.shape} and {np.shape(b)}: np.dot's "
                             f"rule for N-D operands is not supported; use @ (matmul, batched "
                             f"over the leading axes)")
        return apply(ops.Matmul, (self, other), _EMPTY)

    def square(self) -> "Tensor": return self ** 2
    def tolist(self) -> Any:
        if state.tracer is not None:
            state.tracer.read(self, ".tolist()")
        return self.data.tolist()

    def __format__(self, spec: str) -> str:
        return format(self.item(), spec) if spec and self.data.size == 1 else format(str(self), spec)

    def __round__(self, ndigits: Optional[int] = None) -> Any:
        return round(self.item(), ndigits)

    def __pow__(self, exponent):
        """``x ** 2`` (a number: the ``pow`` gate, its exponent printed in diagrams) or
        ``x ** y`` (a tensor or array: the ``power`` gate, differentiable in y too)."""
        if isinstance(exponent, (Tensor, np.ndarray, list)) or is_traced(exponent):
            return apply(ops.Power, (self, exponent), _EMPTY)
        if not isinstance(exponent, (numbers.Real, np.bool_)):
            raise TypeError(f"pow: the exponent must be a number, a Tensor or an array, got "
                            f"{type(exponent).__name__}")
        return apply(ops.Pow, (self,), {"exponent": exponent})

    def __rpow__(self, base):
        """``2 ** x``, ``0 ** x``, ``(-2) ** x``: any base NumPy takes (a negative base has
        a real power for integer exponents only; elsewhere NumPy's nan)."""
        if not isinstance(base, (numbers.Real, np.bool_, np.ndarray, list)) and not is_traced(base):
            raise TypeError(f"pow: the base must be a number or an array, got {type(base).__name__}")
        return apply(ops.Power, (base, self), _EMPTY)

    # Comparisons give plain boolean arrays: they have no gradient. A boolean array has
    # no .where: select with tl.where(x > 0.5, a, b) (or a.where(x > 0.5, b)).
    def __lt__(self, o): return self.data < _plain(o)
    def __le__(self, o): return self.data <= _plain(o)
    def __gt__(self, o): return self.data > _plain(o)
    def __ge__(self, o): return self.data >= _plain(o)
    def __eq__(self, o): return self.data == _plain(o)
    def __ne__(self, o): return self.data != _plain(o)

    # ------------------------------------------------------------ elementwise
    def relu(self) -> "Tensor": return apply(ops.Relu, (self,), _EMPTY)
    def exp(self) -> "Tensor": return apply(ops.Exp, (self,), _EMPTY)
    def log(self) -> "Tensor": return apply(ops.Log, (self,), _EMPTY)
    def sqrt(self) -> "Tensor": return apply(ops.Sqrt, (self,), _EMPTY)
    def abs(self) -> "Tensor": return apply(ops.Abs, (self,), _EMPTY)
    def sigmoid(self) -> "Tensor": return apply(ops.Sigmoid, (self,), _EMPTY)
    def tanh(self) -> "Tensor": return apply(ops.Tanh, (self,), _EMPTY)
    def sign(self) -> "Tensor": return apply(ops.Sign, (self,), _EMPTY)
    def sin(self) -> "Tensor": return apply(ops.Sin, (self,), _EMPTY)
    def cos(self) -> "Tensor": return apply(ops.Cos, (self,), _EMPTY)
    def log1p(self) -> "Tensor": return apply(ops.Log1p, (self,), _EMPTY)
    def expm1(self) -> "Tensor": return apply(ops.Expm1, (self,), _EMPTY)
    def erf(self) -> "Tensor": return apply(ops.Erf, (self,), _EMPTY)
    def relu6(self) -> "Tensor": return apply(ops.Relu6, (self,), _EMPTY)
    def hardswish(self) -> "Tensor": return apply(ops.Hardswish, (self,), _EMPTY)
    def mish(self) -> "Tensor": return apply(ops.Mish, (self,), _EMPTY)
    __abs__ = abs

    def leaky_relu(self, negative_slope: float = 0.01) -> "Tensor":
        slope = _number(negative_slope, "leaky_relu: negative_slope")
        return apply(ops.LeakyRelu, (self,), {"negative_slope": slope})

    def elu(self, alpha: float = 1.0) -> "Tensor":
        return apply(ops.Elu, (self,), {"alpha": _number(alpha, "elu: alpha")})

    def softplus(self, beta: float = 1.0, threshold: float = 20.0) -> "Tensor":
        """``log(1 + exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold``
        (``torch.nn.functional.softplus``)."""
        beta = _number(beta, "softplus: beta")
        if beta == 0:
            raise ValueError("softplus: beta must not be 0")
        return apply(ops.Softplus, (self,), {"beta": beta,
                                             "threshold": _number(threshold, "softplus: threshold")})

    def gelu(self, approximate: str = "none") -> "Tensor":
        """``x Phi(x)`` with the exact normal CDF (``approximate="none"``) or its tanh
        approximation (``"tanh"``), as ``torch.nn.functional.gelu``."""
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return apply(ops.Gelu, (self,), {"approximate": approximate})

    def clip(self, min: Any = None, max: Any = None, out: Any = None, *,
             a_min: Any = None, a_max: Any = None) -> "Tensor":
        """Values limited to ``[min, max]`` (either may be None). NumPy's ``a_min=`` /
        ``a_max=`` are accepted too, so ``np.clip(t, 0, 1)`` works on a Tensor."""
        if out is not None:
            raise TypeError("clip: out= is not supported: a tensor op makes a new tensor")
        for given, alias, label in ((min, a_min, "min"), (max, a_max, "max")):
            if given is not None and alias is not None:
                raise TypeError(f"clip: give {label} or a_{label}, not both")
        min = a_min if min is None else min
        max = a_max if max is None else max
        if min is None and max is None:
            raise ValueError("clip: give min, max or both")
        if any(isinstance(b, Tensor) and b.requires_grad for b in (min, max)):
            return _clip_to_tensors(self, min, max)
        return apply(ops.Clip, (self,), {"min": _plain(min), "max": _plain(max)})

    def clamp(self, min: Any = None, max: Any = None) -> "Tensor":
        """PyTorch's name for ``clip``."""
        return self.clip(min, max)

    def maximum(self, other: Any) -> "Tensor":
        return apply(ops.Maximum, (self, other), _EMPTY)

    def minimum(self, other: Any) -> "Tensor":
        return apply(ops.Minimum, (self, other), _EMPTY)

    def where(self, condition: Any, other: Any) -> "Tensor":
        """PyTorch's ``x.where(condition, other)``: ``x`` where ``condition``, else ``other``."""
        return where(condition, self, other)

    def astype(self, dtype: Any) -> "Tensor":
        return apply(ops.Cast, (self,), {"dtype": np.dtype(dtype)})

    # ------------------------------------------------------------ reductions
    # Each also takes PyTorch's dim=/keepdim=, and NumPy's dtype=/out= so np.sum(t) works.
    def sum(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> "Tensor":
        return self._reduce(ops.Sum, axis, keepdims, kw)

    def mean(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> "Tensor":
        return self._reduce(ops.Mean, axis, keepdims, kw)

    def max(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> "Tensor":
        return self._reduce(ops.Max, axis, keepdims, kw)

    def min(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> "Tensor":
        return self._reduce(ops.Min, axis, keepdims, kw)

    def prod(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> "Tensor":
        return self._reduce(ops.Prod, axis, keepdims, kw)

    def logsumexp(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> "Tensor":
        """``log(sum(exp(x)))`` over ``axis`` (or PyTorch's ``dim``), computed without
        overflow; its gradient is the softmax."""
        return self._reduce(ops.LogSumExp, axis, keepdims, kw)

    def cumsum(self, axis: Optional[int] = None, dtype: Any = None, out: Any = None, *,
               dim: Optional[int] = None) -> "Tensor":
        """Running sums along ``axis`` (PyTorch's ``dim``); ``axis=None`` runs over the
        flattened tensor, as ``np.cumsum`` (which works on a Tensor too)."""
        if out is not None:
            raise TypeError("cumsum: out= is not supported: a tensor op makes a new tensor")
        if dim is not None:
            if axis is not None:
                raise TypeError("cumsum: give axis or dim, not both")
            axis = dim
        out = apply(ops.Cumsum, (self,), {"axis": axis})
        return out if dtype is None else out.astype(dtype)

    def _reduce(self, op: type[ops.Function], axis: Any, keepdims: bool, kw: dict) -> "Tensor":
        if kw:
            axis, keepdims, dtype = _reduction_keywords(op.name, axis, keepdims, kw)
            out = apply(op, (self,), {"axis": _axis(axis), "keepdims": bool(keepdims)})
            return out if dtype is None else out.astype(dtype)
        return apply(op, (self,), {"axis": _axis(axis), "keepdims": keepdims})

    def argmax(self, axis: Optional[int] = None, keepdims: bool = False) -> np.ndarray:
        return np.argmax(self.data, axis=axis, keepdims=keepdims)

    def argmin(self, axis: Optional[int] = None, keepdims: bool = False) -> np.ndarray:
        return np.argmin(self.data, axis=axis, keepdims=keepdims)

    # ------------------------------------------------------------ shape
    def reshape(self, *shape: Any, **kw: Any) -> "Tensor":
        """``t.reshape(2, 3)``, ``t.reshape((2, 3))`` or ``t.reshape(shape=(2, 3))``; one
        -1 stands for what is left."""
        order, copy = kw.pop("order", "C"), kw.pop("copy", None)  # what np.reshape(t, ...) passes
        if order != "C" or copy is False:
            raise ValueError(f"reshape: only order='C' (and no copy=False) is supported, got "
                             f"order={order!r}, copy={copy!r}")
        if kw:
            if shape or set(kw) != {"shape"}:
                raise TypeError(f"reshape: give the shape once, as ints, a tuple or shape=, "
                                f"got {shape!r} and {sorted(kw)}")
            shape = (kw["shape"],)
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return apply(ops.Reshape, (self,), {"shape": shape})

    def transpose(self, *axes: Any, **dims: Any) -> "Tensor":
        """Two ints swap those two axes (PyTorch's ``transpose(dim0, dim1)``, also on 2-D,
        and as keywords ``dim0=``, ``dim1=``); no argument reverses the axes; a
        tuple/list, one int or three or more ints is a NumPy permutation (``np.transpose``)."""
        if dims:
            if set(dims) != {"dim0", "dim1"} or axes:
                raise TypeError(f"transpose: give two dims (dim0=, dim1=) or the axes, got "
                                f"{axes!r} and {sorted(dims)}")
            axes = (dims["dim0"], dims["dim1"])
        if len(axes) == 2 and all(isinstance(a, (int, np.integer)) for a in axes):
            return self._swap(axes[0], axes[1], "transpose")
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return apply(ops.Transpose, (self,), {"axes": axes or None})

    def permute(self, *dims: Any) -> "Tensor":
        """PyTorch's ``permute``: the new order of the axes (ints or one tuple)."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return apply(ops.Transpose, (self,), {"axes": tuple(dims)})

    def swapaxes(self, axis1: int, axis2: int) -> "Tensor":
        """The array with ``axis1`` and ``axis2`` swapped (``np.swapaxes``)."""
        return self._swap(axis1, axis2, "swapaxes")

    def _swap(self, a: int, b: int, who: str) -> "Tensor":
        for axis in (a, b):
            if not isinstance(axis, (int, np.integer)) or not -self.ndim <= axis < self.ndim:
                raise np.exceptions.AxisError(
                    f"{who}: axis {axis} is out of bounds for a tensor of shape {self.shape} "
                    f"(swapping axes {a} and {b})")
        order = list(range(self.ndim))
        order[a], order[b] = order[b], order[a]
        return apply(ops.Transpose, (self,), {"axes": tuple(order)})

    @property
    def T(self) -> "Tensor":
        return apply(ops.Transpose, (self,), {"axes": None})

    @property
    def mT(self) -> "Tensor":
        """The last two axes swapped (a batch of matrices, each transposed), as PyTorch's
        ``mT`` and NumPy's ``matrix_transpose``."""
        if self.ndim < 2:
            raise ValueError(f"mT: needs a matrix or a batch of matrices (2 or more axes), "
                             f"got shape {self.shape}")
        return self._swap(-2, -1, "mT")

    def view(self, *shape: Any) -> "Tensor":
        """PyTorch's ``view``: ``reshape`` to ``shape`` (ints or one tuple; one -1).
        The result shares memory whenever NumPy's reshape can, as ``reshape`` here."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        elif not shape:
            raise TypeError("view: takes a shape (ints or one tuple), got none")
        if not all(is_integer(n) for n in shape):
            raise TypeError(f"view: takes a shape (ints or one tuple), got {shape!r}; "
                            f"a view as another dtype is not supported (use astype)")
        if any(n < -1 for n in shape) or sum(n == -1 for n in shape) > 1:
            raise ValueError(f"view: invalid shape {tuple(shape)}: sizes are ints >= 0, "
                             f"with at most one -1")
        try:
            return self.reshape(tuple(int(n) for n in shape))
        except ValueError as e:
            raise ValueError(str(e).replace("reshape:", "view:", 1)) from None

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        """The axes ``start_dim..end_dim`` (inclusive) merged into one, as
        ``torch.flatten``; ``t.flatten()`` is 1-D (a 0-d tensor becomes shape (1,))."""
        nd = max(self.ndim, 1)  # PyTorch: a 0-d tensor flattens as if it were 1-D
        start = _axes_of(start_dim, nd, "flatten", keep_order=True)
        end = _axes_of(end_dim, nd, "flatten", keep_order=True)
        if self.ndim == 0:
            return self.reshape(1)
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                             f"(shape {self.shape})")
        shape = self.shape
        return self.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])

    def squeeze(self, dim: Any = None, *, axis: Any = None) -> "Tensor":
        """Drop axes of size 1: every one with no argument. A positional argument or
        ``dim=`` has PyTorch's meaning: a named axis whose size is not 1 stays as it is.
        ``axis=`` has NumPy's (``np.squeeze``, also ``tl.squeeze(x, axis=...)``): such an
        axis is a ``ValueError``."""
        if axis is not None:
            if dim is not None:
                raise TypeError("squeeze: give dim (PyTorch's meaning) or axis (NumPy's), not both")
            try:
                shape = np.squeeze(np.empty(self.shape, dtype=bool), axis=_axis(axis)).shape
            except ValueError as e:
                raise type(e)(f"squeeze: {e} (shape {self.shape}, axis {axis})") from None
            return self.reshape(shape)
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        if self.ndim == 0:  # PyTorch: dim 0 or -1 of a 0-d tensor
            _axes_of(dim, 1, "squeeze")
            return self.reshape(())
        dims = _axes_of(dim, self.ndim, "squeeze")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if n != 1 or i not in dims))

    def expand_dims(self, axis: Any) -> "Tensor":
        try:
            shape = np.expand_dims(np.empty(self.shape, dtype=bool), _axis(axis)).shape
        except ValueError as e:
            raise type(e)(f"expand_dims: {e} (shape {self.shape}, axis {axis})") from None
        return self.reshape(shape)

    unsqueeze = expand_dims

    def broadcast_to(self, shape: Any) -> "Tensor":
        """``np.broadcast_to``: the gradient sums back over the broadcast axes."""
        return broadcast_to(self, shape)

    def expand(self, *sizes: Any) -> "Tensor":
        """``torch.Tensor.expand``: broadcast to ``sizes`` (ints or one tuple), where -1
        keeps that axis's size; new axes go in front (and cannot be -1)."""
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        new = len(sizes) - self.ndim
        if new < 0:
            raise RuntimeError(f"expand: the number of sizes ({len(sizes)}) must be at least the "
                               f"number of dimensions ({self.ndim}, shape {self.shape})")
        shape = []
        for i, n in enumerate(sizes):
            if not is_integer(n) or n < -1:
                raise RuntimeError(f"expand: sizes must be ints >= -1, got {sizes!r}")
            if n == -1:
                if i < new:
                    raise RuntimeError(f"expand: -1 is not allowed for a new leading dimension "
                                       f"(sizes {sizes!r}, shape {self.shape})")
                n = self.shape[i - new]
            elif i >= new and self.shape[i - new] not in (1, n):
                raise RuntimeError(f"expand: the expanded size ({n}) must match the existing "
                                   f"size ({self.shape[i - new]}) at non-singleton dimension "
                                   f"{i} (sizes {sizes!r}, shape {self.shape})")
            shape.append(int(n))
        return broadcast_to(self, tuple(shape))

    def flip(self, *dims: Any, axis: Any = None) -> "Tensor":
        """Reverse the order along the given axes: ``t.flip(0)``, ``t.flip(0, 1)``,
        ``t.flip((0, 1))`` (PyTorch) or ``t.flip(axis=...)``; every axis when none is
        given (``np.flip``)."""
        if dims and axis is not None:
            raise TypeError("flip: give the axes once (positionally or as axis=)")
        if dims:
            axis = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        elif isinstance(axis, list):
            axis = tuple(axis)
        if axis is not None:
            axis = _axes_of(axis, self.ndim, "flip", keep_order=True)
        return apply(ops.Flip, (self,), {"axis": axis})

    def pad(self, pad_width: Any, constant_values: Any = 0, *, value: Any = None) -> "Tensor":
        """Constant padding with NumPy's ``pad_width``: an int, one ``(before, after)``
        pair for every axis, or a pair per axis (``np.pad(x, pad_width,
        constant_values=...)``; ``value=`` is accepted too). A flat sequence of 4, 6, ...
        ints, which NumPy refuses, is PyTorch's form (last axis first, as tinygrad
        reads it); ``tl.nn.functional.pad`` takes PyTorch's form always (also 2 ints,
        and negative amounts, which crop)."""
        if value is not None:
            constant_values = value
        fill = _plain(constant_values)
        if np.ndim(fill) != 0:
            raise ValueError(f"pad: the padding value must be one number, got shape {np.shape(fill)}")
        return apply(ops.Pad, (self,), {"pad_width": _pad_pairs(pad_width, self.ndim),
                                        "value": fill.item() if isinstance(fill, np.ndarray) else fill})

    def cat(self, *others: Any, dim: int = 0) -> "Tensor":
        """``x.cat(y, z, dim=1)`` is ``tl.cat([x, y, z], dim=1)`` (tinygrad's spelling;
        ``Tensor.cat([x, y], dim=1)`` works too)."""
        return concatenate(_together(self, others), dim)

    def stack(self, *others: Any, dim: int = 0) -> "Tensor":
        """``x.stack(y, z, dim=0)`` is ``tl.stack([x, y, z], dim=0)`` (tinygrad's spelling;
        ``Tensor.stack([x, y])`` works too)."""
        return stack(_together(self, others), dim)

    def __getitem__(self, index: Any) -> "Tensor":
        return apply(ops.Getitem, (self,), {"index": _index(index)})

    def __setitem__(self, index: Any, value: Any) -> None:
        if self.requires_grad or self.op is not None:
            raise RuntimeError(
                "setitem: in-place assignment to a tensor in a graph would change what backward "
                "relies on. Build a new tensor instead, e.g. t = t * (mask == 0) or "
                "t = tl.where(mask, 0.0, t); the seeds' `dh[a1 <= 0] = 0` is what relu's backward "
                "already does for you")
        index, value = _index(index), _plain(value)

        def write(a: np.ndarray) -> None:
            a[index] = value
        modify(self, write)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # ------------------------------------------------------------ composites
    # x.softmax(axis), x.log_softmax(axis) (x.logsoftmax), x.cross_entropy(target, ...),
    # x.var(axis, keepdims, ddof) and x.std(...) are the composites of functional.py,
    # built from the methods above: that module, one layer up, makes them methods too.
    softmax: Callable[..., "Tensor"]
    log_softmax: Callable[..., "Tensor"]
    logsoftmax: Callable[..., "Tensor"]
    cross_entropy: Callable[..., "Tensor"]
    var: Callable[..., "Tensor"]
    std: Callable[..., "Tensor"]


def _plain(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _number(value: Any, who: str) -> float:
    """A Python/NumPy real number given as an op's setting, as a float."""
    if isinstance(value, (bool, Tensor)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who} must be a number, got {type(value).__name__} {value!r}")
    return float(value)


def _axes_of(axes: Any, ndim: int, who: str, keep_order: bool = False) -> Any:
    """``axes`` (an int or a sequence of ints) checked against ``ndim`` and made
    non-negative: a set of ints, or (``keep_order``) the same form as given."""
    many = isinstance(axes, (tuple, list))
    items = tuple(axes) if many else (axes,)
    out = []
    for a in items:
        if not is_integer(a):
            raise TypeError(f"{who}: axes must be ints, got {axes!r}")
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(f"{who}: axis {a} is out of bounds for a tensor of "
                                          f"{ndim} dimension(s)")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{who}: repeated axis in {axes!r}")
    if keep_order:
        return tuple(out) if many else out[0]
    return set(out)


def _pad_pairs(pad_width: Any, ndim: int) -> tuple:
    """NumPy's ``pad_width`` forms as one ``(before, after)`` pair of ints per axis
    (and PyTorch's flat form of 4, 6, ... ints, which NumPy refuses)."""
    width = np.asarray(_plain(pad_width))
    if width.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be ints, got {pad_width!r}")
    if width.ndim == 1 and width.size > 2 and width.size % 2 == 0 and width.size // 2 <= ndim:
        per_axis = [(0, 0)] * (ndim - width.size // 2) + [
            (int(width[k]), int(width[k + 1])) for k in range(width.size - 2, -1, -2)]
        width = np.array(per_axis)
    if width.size == 1:
        width = np.repeat(width.ravel(), 2)
    elif width.size == 2 and width.shape != (2, 1):
        width = width.ravel()
    try:
        pairs = np.broadcast_to(width, (ndim, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit a tensor of {ndim} "
                         f"dimension(s): give an int, one (before, after) pair, or a pair per "
                         f"axis") from None
    if (pairs < 0).any():
        raise ValueError(f"pad: pad_width cannot be negative, got {pad_width!r}")
    return tuple((int(b), int(a)) for b, a in pairs)


def _together(first: Any, others: tuple) -> list:
    """The tensors of ``x.cat(y, z)`` or of ``Tensor.cat([x, y])``."""
    if isinstance(first, (list, tuple)):
        return list(first) + list(others)
    return [first, *others]


# ----------------------------------------------------------------- free functions

def tensor(data: Any, requires_grad: bool = False, name: Optional[str] = None,
           dtype: Any = None) -> Tensor:
    data = _plain(data)
    return Tensor(data if dtype is None else np.asarray(data, dtype=dtype),
                  requires_grad=requires_grad, name=name)


def zeros_like(t: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros_like(_plain(t), dtype=dtype), requires_grad=requires_grad)


def ones_like(t: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones_like(_plain(t), dtype=dtype), requires_grad=requires_grad)


def zeros(*shape: Any, dtype: Any = np.float64, requires_grad: bool = False,
          name: Optional[str] = None) -> Tensor:
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad, name=name)


def ones(*shape: Any, dtype: Any = np.float64, requires_grad: bool = False,
         name: Optional[str] = None) -> Tensor:
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad, name=name)


def randn(*shape: Any, dtype: Any = np.float64, requires_grad: bool = False,
          seed: Optional[int] = None, name: Optional[str] = None) -> Tensor:
    """Standard normal samples. ``seed=None`` draws from ``np.random`` (so
    ``np.random.seed`` works as in cs231n); an int seed uses its own generator."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    draw = np.random.randn(*shape) if seed is None else np.random.default_rng(seed).standard_normal(shape)
    return Tensor(np.asarray(draw, dtype=dtype), requires_grad=requires_grad, name=name)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a`` where ``condition`` else ``b`` (``np.where``); the condition gets
    no gradient. Comparisons of tensors give NumPy boolean arrays, the usual condition:
    ``tl.where(x > 0.5, a, b)``."""
    cond = _plain(condition)
    if not is_traced(cond):
        cond = np.asarray(cond, dtype=bool)
    elif cond.dtype != bool:
        cond = cond.astype(bool)
    return apply(ops.Where, (a, b), {"condition": cond})


def _clip_to_tensors(x: Tensor, lo: Any, hi: Any) -> Tensor:
    """``x.clip(lo, hi)`` where a bound requires grad (the Clip op takes its bounds as
    constants), as ``torch.clamp`` with tensor bounds: x gets the gradient where
    ``lo <= x <= hi``, ``lo`` where ``x < lo < hi``, ``hi`` where ``x > hi`` or
    ``hi < lo`` (then the value is ``hi``), nothing where ``x < lo == hi``."""
    with Group("clip"):
        if lo is None:
            return where(x > hi, hi, x)
        if hi is None:
            return where(x < lo, lo, x)
        clipped = x.detach().clip(_plain(lo), _plain(hi))  # the values, no gradient
        out = where((x >= lo) & (x <= hi), x, clipped)
        out = where((x < lo) & (lo < hi), lo, out)
        return where((x > hi) | (hi < lo), hi, out)


def maximum(a: Any, b: Any) -> Tensor:
    return apply(ops.Maximum, (a, b), _EMPTY)


def minimum(a: Any, b: Any) -> Tensor:
    return apply(ops.Minimum, (a, b), _EMPTY)


def _axis_or_dim(who: str, axis: Any, dim: Any, default: Any = 0) -> Any:
    """NumPy's ``axis=`` or PyTorch's ``dim=`` (one of them)."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{who}: give axis or dim, not both")
        return dim
    return default if axis is None else axis


def concatenate(tensors: Sequence[Any], axis: Any = 0, *, dim: Optional[int] = None) -> Tensor:
    """``np.concatenate`` (``axis=None`` flattens first); PyTorch's ``dim=`` too."""
    if isinstance(tensors, Tensor):
        raise TypeError("concatenate: expected a sequence of tensors, got one Tensor")
    tensors = list(tensors)
    if len(tensors) == 0:
        raise ValueError("concatenate: need at least one tensor")
    if dim is not None:
        axis = _axis_or_dim("concatenate", None, dim)
    if axis is None:  # NumPy: flatten first (the op itself always has an axis)
        tensors, axis = [t.reshape(-1) if isinstance(t, Tensor) else np.ravel(t) for t in tensors], 0
    return apply(ops.Concatenate, tuple(tensors), {"axis": axis})


def cat(tensors: Sequence[Any], dim: int = 0, *, axis: Optional[int] = None) -> Tensor:
    """``torch.cat``: ``concatenate`` under PyTorch's name (``axis=`` works too)."""
    if axis is not None and dim != 0:
        raise TypeError("cat: give axis or dim, not both")
    return concatenate(tensors, dim if axis is None else axis)


def stack(tensors: Sequence[Any], axis: Optional[int] = None, *, dim: Optional[int] = None) -> Tensor:
    """``np.stack`` / ``torch.stack``: join along a new axis (``axis=`` or ``dim=``, 0 by default)."""
    if isinstance(tensors, Tensor):
        raise TypeError("stack: expected a sequence of tensors, got one Tensor")
    tensors = tuple(tensors)
    if len(tensors) == 0:
        raise ValueError("stack: need at least one tensor")
    return apply(ops.Stack, tensors, {"axis": _axis_or_dim("stack", axis, dim)})


def _method(name: str):
    def fn(x: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(x if isinstance(x, Tensor) else Tensor(x), name)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"``tl.{name}(x, ...)`` is ``x.{name}(...)``."
    return fn


# tl.exp(x) is x.exp(): a free function for every elementwise op, reduction and reshaping.
(abs, exp, log, sqrt, relu, sigmoid, tanh, sign, sin, cos, log1p, expm1, erf, square,
 leaky_relu, elu, softplus, gelu, relu6, hardswish, mish) = (_method(n) for n in (
    "abs", "exp", "log", "sqrt", "relu", "sigmoid", "tanh", "sign", "sin", "cos", "log1p",
    "expm1", "erf", "square", "leaky_relu", "elu", "softplus", "gelu", "relu6", "hardswish",
    "mish"))
reshape, transpose, squeeze, expand_dims = (_method(n) for n in ("reshape", "transpose", "squeeze", "expand_dims"))
unsqueeze, flatten, flip, expand = (_method(n) for n in ("unsqueeze", "flatten", "flip", "expand"))
clip, clamp, argmax = _method("clip"), _method("clamp"), _method("argmax")
permute, swapaxes = _method("permute"), _method("swapaxes")
prod, cumsum, logsumexp = _method("prod"), _method("cumsum"), _method("logsumexp")


def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: Any = 0) -> Tensor:
    """``np.pad(x, pad_width, constant_values=...)``: only ``mode="constant"`` (the other
    modes copy values of ``x`` into the border; use NumPy on the plain arrays for them)."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    return (x if isinstance(x, Tensor) else Tensor(x)).pad(pad_width, constant_values)


# The operators as functions, under NumPy's and PyTorch's names.
def add(a: Any, b: Any) -> Tensor: return apply(ops.Add, (a, b), _EMPTY)
def subtract(a: Any, b: Any) -> Tensor: return apply(ops.Sub, (a, b), _EMPTY)
def multiply(a: Any, b: Any) -> Tensor: return apply(ops.Mul, (a, b), _EMPTY)
def divide(a: Any, b: Any) -> Tensor:
    if isinstance(a, Tensor):
        return a / b
    return b.__rtruediv__(a) if isinstance(b, Tensor) else Tensor(a) / b
def negative(a: Any) -> Tensor: return apply(ops.Neg, (a,), _EMPTY)
def matmul(a: Any, b: Any) -> Tensor: return apply(ops.Matmul, (a, b), _EMPTY)


def power(a: Any, b: Any) -> Tensor:
    """``a ** b`` (``np.power``, ``torch.pow``) for any mix of tensors, arrays and numbers."""
    if isinstance(a, Tensor):
        return a ** b
    if isinstance(b, Tensor):
        return b.__rpow__(a)
    return Tensor(a) ** b


sub, mul, div, neg, pow = subtract, multiply, divide, negative, power


def broadcast_to(x: Any, shape: Any) -> Tensor:
    """``x`` broadcast to ``shape`` (``np.broadcast_to``); the gradient sums back."""
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    return apply(ops.BroadcastTo, (x,), {"shape": shape})


# ----------------------------------------------------------------- names

def _checked_name(value: Any, who: str) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{who}: a tensor's name must be a str or None, got "
                        f"{type(value).__name__} {value!r}")
    return value


def tensor_names(names: Optional[Mapping[str, Any]], who: str) -> dict[int, str]:
    """``{id(tensor): name}`` for the Tensors of a ``names=`` mapping (``locals()``, a
    dict), as diagrams, ``tl.explain`` and ``tl.backward_source`` read it: the first
    name a tensor has wins, a name starting with ``_`` only when it has no other; other
    values are passed over. ``who`` (the caller) starts the error for a non-mapping."""
    if names is None:
        return {}
    if not isinstance(names, Mapping):
        raise TypeError(f"{who}: names= must be a mapping name -> Tensor (e.g. locals()), "
                        f"got {type(names).__name__}")
    found: dict[int, str] = {}
    for private in (False, True):
        for key, value in names.items():
            if isinstance(value, Tensor) and str(key).startswith("_") == private:
                found.setdefault(id(value), str(key))
    return found


# ----------------------------------------------------------------- checks on assignment


def _checked_grad(t: Tensor, value: Any) -> Any:
    """A gradient a user assigns to ``t.grad``: None, or an array (or Tensor) of t's
    shape and dtype, as PyTorch checks it. The engine stores without this check."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        arr = value.data
    elif isinstance(value, np.ndarray):
        arr = value
    else:
        raise TypeError(f"grad: assigned grad must be a NumPy array (or a Tensor) or None, got "
                        f"{type(value).__name__}")
    if arr.dtype != t.dtype:
        raise TypeError(f"grad: assigned grad has dtype {arr.dtype}, the tensor has dtype {t.dtype}")
    if arr.shape != t.shape:
        raise GradientShapeError(f"grad: assigned grad has shape {arr.shape}, the tensor has "
                                 f"shape {t.shape}")
    return value


# ----------------------------------------------------------------- the Tensor namespace

def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else _new(np.asarray(x), guard=False)


def _swapaxes(x: Tensor, a: int, b: int) -> Tensor:
    return _as_tensor(x).swapaxes(a, b)


def _method_of(name: str) -> staticmethod:
    """``xp.exp(x)`` on Tensors: ``x.exp()`` (x lifted when it is an array)."""
    return staticmethod(lambda x: getattr(_as_tensor(x), name)())


def _cumprod(x: Any, axis: int) -> Tensor:
    """Running products along ``axis`` as a scan: log2(n) rounds, each multiplying by a
    copy shifted by 1, 2, 4, ... places (ones shifted in). Only products, so every
    derivative of it is exact, zeros included (a cumprod gate would need division)."""
    x = _as_tensor(x)
    axis %= x.ndim
    n = x.shape[axis]
    before = (slice(None),) * axis
    shift = 1
    while shift < n:
        ones = np.ones(x.shape[:axis] + (shift,) + x.shape[axis + 1:], dtype=x.dtype)
        x = x * concatenate([ones, x[before + (slice(0, n - shift),)]], axis)
        shift *= 2
    return x


def _sum_to(g: Tensor, shape: tuple) -> Tensor:
    axes = sum_axes(g.shape, shape)
    if axes is None:
        raise RuntimeError(f"a gradient of shape {g.shape} cannot be summed back to an input "
                           f"of shape {shape}")
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g if g.shape == shape else g.reshape(shape)


class TensorNamespace:
    """``ops.NP``'s functions on Tensors: an op's backward called with this namespace
    records a graph, so the gradient it returns can be differentiated again."""

    value = staticmethod(lambda t: t)
    asarray = staticmethod(_as_tensor)
    where = staticmethod(lambda c, a, b: where(c, a, b))
    maximum = staticmethod(lambda a, b: maximum(a, b))
    (exp, log, sqrt, abs, tanh, sigmoid, log1p, expm1, sin, cos, erf) = (_method_of(n) for n in (
        "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "log1p", "expm1", "sin", "cos", "erf"))
    clip = staticmethod(lambda x, lo, hi: _as_tensor(x).clip(lo, hi))
    #: the sign is piecewise constant: a constant of the graph
    sign = staticmethod(lambda x: np.sign(_plain(x)))
    minimum = staticmethod(lambda a, b: minimum(a, b))
    cumsum = staticmethod(lambda x, axis=None: apply(ops.Cumsum, (x,), {"axis": axis}))
    cumprod = staticmethod(_cumprod)
    flip = staticmethod(lambda x, axis=None: apply(ops.Flip, (x,), {"axis": axis}))
    pad = staticmethod(lambda x, pad_width, constant_values=0: apply(
        ops.Pad, (x,), {"pad_width": pad_width, "value": constant_values}))
    transpose = staticmethod(lambda x, axes: apply(ops.Transpose, (x,), {"axes": axes}))
    swapaxes = staticmethod(_swapaxes)
    broadcast_to = staticmethod(broadcast_to)
    spread = staticmethod(broadcast_to)
    concatenate = staticmethod(lambda xs, axis: concatenate(xs, axis))
    stack = staticmethod(lambda xs, axis: stack(xs, axis))
    #: a constant Tensor (so a backward returning it still returns a Tensor)
    zeros_like = staticmethod(lambda x: _new(np.zeros_like(_plain(x)), guard=False))
    sum_to = staticmethod(_sum_to)
    scatter_add = staticmethod(
        lambda g, shape, index: apply(ops.ScatterAdd, (g,), {"shape": tuple(shape), "index": index}))


TENSOR = TensorNamespace()


# ----------------------------------------------------------------- backward and grad

def run_backward(root: Tensor, gradient: Any = None, create_graph: bool = False,
                 inputs: Any = None) -> None:
    """``root.backward(...)``: store every gradient the pass reaches in ``.grad``.

    A leaf's ``.grad`` is an array of its own (optimizers write into it); an
    intermediate's is stored as computed, read-only. A leaf that already holds a
    gradient is added into in place once the whole pass succeeded; a backward that
    raises leaves every ``.grad`` as it was."""
    if inputs is not None and not isinstance(inputs, Tensor):
        inputs = list(inputs)  # (a generator is read once)
        if not inputs:
            raise RuntimeError("backward: inputs= is empty: give the tensors to accumulate into, "
                               "or leave it out for every leaf")
    if state.tracer is not None:
        return state.tracer.run_backward(root, gradient, create_graph, inputs)
    targets = None if inputs is None else _tensors(inputs, "backward: inputs")
    start = root._root_gradient(gradient, "backward", as_tensor=create_graph)
    xp = TENSOR if create_graph else NP
    wanted = None if targets is None else {id(t) for t in targets}
    replaced = []  # (tensor, its .grad before this pass): put back if the pass raises
    later = []     # leaves that already hold a gradient
    try:
        with enable_grad() if create_graph else _NO_CONTEXT:
            for node, g, _ in propagate(root, start, xp, targets, release=not create_graph):
                if wanted is not None and id(node) not in wanted:
                    continue
                old = node._grad
                if old is None:
                    node._grad = _own(g) if create_graph and node.op is None else g
                elif create_graph:
                    node._grad = old + g
                elif node.op is None and type(old) is np.ndarray:
                    later.append((node, g))
                    continue
                else:
                    total = np.asarray(_plain(old) + g)
                    total.flags.writeable = node.op is None
                    node._grad = total
                replaced.append((node, old))
    except BaseException:
        for node, old in replaced:
            node._grad = old
        raise
    for node, g in later:  # across backward() calls, in place, as PyTorch
        if node._grad.flags.writeable:
            node._grad += g
        else:
            node._grad = node._grad + g


def _own(g: Tensor) -> Tensor:
    """A gradient Tensor given to the caller under create_graph (a leaf's ``.grad``, a
    result of ``grad``). A graph node is never changed in place (``+=`` on it makes a new
    node), but a leaf may be the caller's own ``gradient=`` or one constant the pass gave
    to several inputs (an add passes its gradient to both): such a leaf is copied, as
    PyTorch clones it, so an in-place change to one result under no_grad reaches nothing
    else. A copy of a Tensor that requires grad is recorded, so it stays differentiable."""
    if g.op is not None:
        return g
    if g.requires_grad:
        return g.astype(g.dtype)  # astype copies
    return _new(g.data.copy())


class _NoContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


_NO_CONTEXT = _NoContext()


def _tensors(values: Any, who: str) -> list:
    items = [values] if isinstance(values, Tensor) else list(values)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{who}: item {i} is a {type(t).__name__}, not a Tensor")
        if not t.requires_grad:
            raise RuntimeError(f"{who}: item {i} (shape {t.shape}"
                               f"{', name ' + repr(t.name) if t.name else ''}) does not require grad")
    return items


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: Optional[bool] = None,
         create_graph: bool = False, allow_unused: bool = False) -> Any:
    """Gradients of ``outputs`` with respect to ``inputs``, without touching any
    ``.grad`` (``torch.autograd.grad``). ``outputs`` may be one tensor or several
    (their gradients are summed, each started from its ``grad_outputs`` entry).

    Returns arrays of the caller's own, one per input (a single one when ``inputs``
    is a Tensor); with ``create_graph=True`` Tensors whose graph records the backward
    pass, so they can be differentiated again."""
    single = isinstance(inputs, Tensor)
    try:
        inputs = _tensors(inputs, "grad: inputs")
    except RuntimeError as e:
        raise RuntimeError(str(e).replace("grad: inputs: item", "grad: input")) from None
    many = not isinstance(outputs, Tensor)
    outs = list(outputs) if many else [outputs]
    gos = list(grad_outputs) if many and grad_outputs is not None else [grad_outputs] * len(outs)
    if len(gos) != len(outs):
        raise ValueError(f"grad: {len(outs)} outputs but {len(gos)} grad_outputs")
    # under tl.compile's trace a first-order walk runs on the traced values
    tracer = None if create_graph else state.tracer
    xp = TENSOR if create_graph else NP if tracer is None else tracer.xp
    positions: dict = {}
    for i, t in enumerate(inputs):
        positions.setdefault(id(t), []).append(i)
    found: list = [None] * len(inputs)
    with enable_grad() if create_graph else _NO_CONTEXT:
        for out, go in zip(outs, gos):
            if not isinstance(out, Tensor):
                raise TypeError(f"grad: outputs must be Tensors, got {type(out).__name__}")
            if tracer is not None:
                start = tracer.seed(out, go, "grad")
            else:
                start = out._root_gradient(go, "grad", as_tensor=create_graph)
            for node, g, _ in propagate(out, start, xp, inputs, release=not create_graph):
                where_ = positions.get(id(node))
                if where_ is None:
                    continue
                for k, i in enumerate(where_):
                    # a leaf's g is the pass's own array: the first place may keep it
                    if create_graph:
                        mine = _own(g)
                    elif tracer is not None:
                        mine = tracer.own(g) if k == 0 and node.op is None else g.copy()
                    else:
                        mine = g if k == 0 and node.op is None else g.copy()
                    if found[i] is None:
                        found[i] = mine
                    elif create_graph or tracer is not None:
                        found[i] = found[i] + mine
                    else:  # in place: the caller's own array (0-d + 0-d would give a scalar)
                        found[i] += mine
    for i, (t, g) in enumerate(zip(inputs, found)):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {t.shape}) was not used to compute the output; "
                f"pass allow_unused=True to get None for it")
    return found[0] if single else found
