"""Tracing: a third array namespace, whose values record what is computed.

A ``Traced`` value wraps a NumPy array and records every operation on it in a
``Trace``: operators, the array methods ops use (``.sum .reshape .astype .T`` ...),
indexing, and NumPy's functions and ufuncs (reached through NumPy's
``__array_ufunc__`` / ``__array_function__`` protocols, so ``np.exp(v)`` and
``np.where(c, a, b)`` record too). The trace is computed as it is recorded: every
value holds its real array, so shapes and dtypes are known and Python code that
branches on them runs as usual. Reading a *value* into Python (``float()``,
``bool()``, ``.item()``, ``np.asarray``) raises ``TraceError``: a replay of the
recorded program cannot take a Python decision again.

A trace is a straight-line program of NumPy calls (``Instr``) over numbered values
(``Value``). ``TraceNamespace`` is the op table's ``xp`` for traced values, so each
op's own ``forward``/``backward`` writes the program; no op's math is written twice.
Two users: ``source.backward_source`` prints a trace as NumPy source, and
``compiler``'s ``tl.compile`` replays one without building a graph.
"""
from __future__ import annotations

import operator
import weakref
from typing import Any, Callable, Iterator, Optional

import numpy as np

from .ops import NumpyNamespace, _erf, _is_basic

__all__ = ["TraceError", "Trace", "Traced", "TraceNamespace", "Instr", "Value", "Ref"]


class TraceError(RuntimeError):
    """Work a trace cannot record faithfully: raised where it happens, naming it."""


_NOTHING = getattr(np, "_NoValue", None)

#: NumPy functions that read only shapes and dtypes: their Python results are fine
_METADATA = {np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj}
#: NumPy functions whose result's *shape* depends on the values: a replay could not
#: keep its buffers
_VALUE_SHAPED = {np.nonzero, np.flatnonzero, np.argwhere, np.unique, np.extract,
                 np.compress, np.trim_zeros}
#: NumPy functions that write into their first argument
_WRITES_FIRST = {np.copyto, np.put, np.place, np.putmask, np.fill_diagonal}


class Ref:
    """A value's place in a recorded argument list."""
    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"Ref({self.index})"


class Value:
    """One value of a trace.

    ``kind`` is where it comes from: ``"temp"`` (computed by instruction
    ``producer``), or an external array the trace reads by reference: ``"input"``
    (an argument), ``"state"`` (a tensor's array from before the trace) or ``"grad"``
    (a tensor's ``.grad`` from before the trace). ``root`` is the value whose memory
    it is (itself, or the base a view was made from), ``source`` what the owner of
    the trace says it is (a tensor, an argument's position, a name)."""
    __slots__ = ("array", "kind", "producer", "root", "source")

    def __init__(self, array: np.ndarray, kind: str, producer: Optional[int], root: int,
                 source: Any = None) -> None:
        self.array, self.kind, self.producer, self.root, self.source = \
            array, kind, producer, root, source


class Instr:
    """One recorded call ``fn(*args, **kwargs)`` (``Ref`` for traced values).

    ``kind``: ``"compute"`` (a new array, value ``out``), ``"view"`` (a view of value
    ``base``, value ``out``), ``"write"`` (changes the values ``writes`` in place:
    ``out=``, ``x[i] = v``, ``np.add.at``), ``"host"`` (Python reading values: a
    check that raises, or a draw of random numbers into value ``out``) or
    ``"effect"`` (Python changing the arrays of ``writes`` and objects the trace does
    not see, such as an optimizer's buffers). ``tag`` is what was being traced
    (e.g. ``(node, "backward")``)."""
    __slots__ = ("fn", "args", "kwargs", "kind", "out", "base", "writes", "tag")

    def __init__(self, fn: Callable, args: tuple, kwargs: dict, kind: str, out: Optional[int] = None,
                 base: Optional[int] = None, writes: tuple = (), tag: Any = None) -> None:
        self.fn, self.args, self.kwargs, self.kind = fn, args, kwargs, kind
        self.out, self.base, self.writes, self.tag = out, base, writes, tag

    def reads(self) -> Iterator[int]:
        """The values the call reads (a write reads what it writes into, too)."""
        yield from refs_in(self.args)
        yield from refs_in(self.kwargs)


def refs_in(obj: Any) -> Iterator[int]:
    """The value indices of the ``Ref`` objects inside nested tuples/lists/dicts."""
    if type(obj) is Ref:
        yield obj.index
    elif type(obj) in (tuple, list):
        for o in obj:
            yield from refs_in(o)
    elif type(obj) is dict:
        for o in obj.values():
            yield from refs_in(o)
    elif type(obj) is slice:
        yield from refs_in((obj.start, obj.stop, obj.step))


def resolve(obj: Any, arrays: list) -> Any:
    """``obj`` with each ``Ref`` replaced by its array in ``arrays``."""
    t = type(obj)
    if t is Ref:
        return arrays[obj.index]
    if t is tuple or t is list:
        return t(resolve(o, arrays) for o in obj)
    if t is dict:
        return {k: resolve(v, arrays) for k, v in obj.items()}
    if t is slice and any(type(p) is Ref for p in (obj.start, obj.stop, obj.step)):
        return slice(*(resolve(p, arrays) for p in (obj.start, obj.stop, obj.step)))
    return obj


# ----------------------------------------------------------------- the trace

class Trace:
    """The recording: values and the instructions that compute them, in order."""

    def __init__(self) -> None:
        self.values: list[Value] = []
        self.instrs: list[Instr] = []
        #: what is being traced now (attached to each new instruction)
        self.tag: Any = None
        #: root values the library may write into now (an in-place update it makes)
        self.writable: set = set()
        #: called with a root value's index before its first write (e.g. a snapshot)
        self.before_write: Optional[Callable[[int], None]] = None
        #: every Traced handed out, to find those still referenced after a trace
        self.handed_out: "weakref.WeakSet[Traced]" = weakref.WeakSet()
        self._written: set = set()

    # ------------------------------------------------------------ values
    def external(self, array: np.ndarray, kind: str, source: Any = None) -> "Traced":
        """A new value read by reference from outside the trace."""
        index = len(self.values)
        self.values.append(Value(array, kind, None, index, source))
        return self.handle(index)

    def temp_copy(self, array: np.ndarray) -> "Traced":
        """A new value: a copy of a constant array, made again by every replay (so
        the trace may write into it)."""
        index = len(self.values)
        self.values.append(Value(array.copy(), "temp", len(self.instrs), index))
        self.instrs.append(Instr(np.copy, (array,), {}, "compute", out=index, tag=self.tag))
        return self.handle(index)

    def handle(self, index: int) -> "Traced":
        t = Traced(self, index)
        self.handed_out.add(t)
        return t

    def refuse(self, what: str) -> None:
        raise TraceError(what + self.where())

    def where(self) -> str:
        tag = self.tag
        if tag is None:
            return ""
        node, phase = tag
        name = getattr(getattr(node, "op", None), "name", None) or getattr(node, "name", node)
        return f" (while tracing {name} {phase})"

    # ------------------------------------------------------------ recording
    def _split(self, obj: Any, used: list) -> tuple:
        """(``obj`` with real arrays, ``obj`` with Refs), noting the Traced found."""
        t = type(obj)
        if t is Traced:
            if obj.trace is not self:
                self.refuse("a value of another trace is used here (a traced value kept "
                            "from an earlier trace?)")
            used.append(obj.index)
            return obj.array, Ref(obj.index)
        if t is tuple or t is list:
            pairs = [self._split(o, used) for o in obj]
            return t(p[0] for p in pairs), t(p[1] for p in pairs)
        if t is dict:
            split = {k: self._split(v, used) for k, v in obj.items()}
            return {k: p[0] for k, p in split.items()}, {k: p[1] for k, p in split.items()}
        if t is slice and any(type(p) is Traced for p in (obj.start, obj.stop, obj.step)):
            self.refuse("a slice bound is a traced value: the slice's length would depend on "
                        "the values")
        return obj, obj

    def call(self, fn: Callable, args: tuple, kwargs: Optional[dict] = None,
             writes: tuple = ()) -> Any:
        """Run ``fn(*args, **kwargs)`` on the arrays and record it. ``writes``: the
        Traced values the call changes in place (returns None then)."""
        used: list = []
        real_args, ref_args = self._split(args, used)
        real_kw, ref_kw = self._split(kwargs or {}, used)
        if writes:
            targets = tuple(w.index for w in writes)
            for i in targets:
                self._allow_write(i)
            fn(*real_args, **real_kw)
            self.instrs.append(Instr(fn, ref_args, ref_kw, "write", writes=targets, tag=self.tag))
            return None
        result = fn(*real_args, **real_kw)
        if not used:  # constants only: a constant
            return result
        if isinstance(result, np.generic):
            result = np.asarray(result)
        if type(result) is not np.ndarray:
            if fn in _METADATA:
                return result
            name = getattr(fn, "__name__", repr(fn))
            self.refuse(f"{name} returns a Python {type(result).__name__} computed from traced "
                        f"values, not an array: reading values in Python cannot be replayed")
        for i in used:
            if result is self.values[i].array:  # np.asarray(v), v.astype(same, copy=False)
                return self.handle(i)
        base = None
        if result.base is not None:
            for i in used:
                if np.may_share_memory(result, self.values[i].array):
                    base = i
                    break
        index = len(self.values)
        root = index if base is None else self.values[base].root
        self.values.append(Value(result, "temp", len(self.instrs), root))
        self.instrs.append(Instr(fn, ref_args, ref_kw, "view" if base is not None else "compute",
                                 out=index, base=base, tag=self.tag))
        return self.handle(index)

    def _allow_write(self, index: int) -> None:
        root = self.values[index].root
        value = self.values[root]
        if value.kind != "temp" and root not in self.writable:
            what = {"input": "an input array", "state": "the array of a tensor from outside",
                    "grad": "the .grad of a tensor from outside"}[value.kind]
            name = getattr(value.source, "name", None)
            self.refuse(f"a raw NumPy write into {what}{f' ({name!r})' if name else ''} "
                        f"(shape {value.array.shape}), e.g. `p.data -= lr * p.grad`, is not "
                        f"traced: write `with tl.no_grad(): p -= lr * p.grad` (or use an "
                        f"optimizer)")
        if value.kind != "temp" and root not in self._written:
            self._written.add(root)
            if self.before_write is not None:
                self.before_write(root)

    def host(self, fn: Callable, args: tuple) -> Any:
        """``fn(*args)`` reads values in Python (a check that raises, random numbers):
        run it now and record it, so a replay runs it again. Returns its result:
        None, or an array (a new value, recomputed by every replay)."""
        used: list = []
        real_args, ref_args = self._split(args, used)
        result = fn(*real_args)
        if result is None:
            self.instrs.append(Instr(fn, ref_args, {}, "host", tag=self.tag))
            return None
        result = np.asarray(result)
        index = len(self.values)
        self.values.append(Value(result, "temp", len(self.instrs), index))
        self.instrs.append(Instr(fn, ref_args, {}, "host", out=index, tag=self.tag))
        return self.handle(index)

    def effect(self, fn: Callable, args: tuple, writes: tuple) -> None:
        """Record ``fn(*args)``, already run: Python that changes the values ``writes``
        in place (and objects outside the trace)."""
        used: list = []
        _, ref_args = self._split(args, used)
        self.instrs.append(Instr(fn, ref_args, {}, "effect", writes=writes, tag=self.tag))

    # ------------------------------------------------------------ NumPy's protocols
    def ufunc(self, ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
        fn = ufunc if method == "__call__" else getattr(ufunc, method)
        if method == "at":
            target = inputs[0]
            if type(target) is not Traced:
                self.refuse(f"np.{ufunc.__name__}.at writes into a NumPy array the trace "
                            f"does not own")
            return self.call(fn, inputs, kwargs, writes=(target,))
        out = kwargs.get("out")
        if out is not None:
            outs = out if isinstance(out, tuple) else (out,)
            for o in outs:
                if type(o) is not Traced:
                    self.refuse(f"np.{ufunc.__name__}(..., out=array) writes a traced result "
                                f"into a NumPy array the trace does not own (e.g. "
                                f"`p.data -= lr * p.grad`): write `with tl.no_grad(): "
                                f"p -= lr * p.grad`")
            self.call(fn, inputs, kwargs, writes=outs)
            return outs[0] if len(outs) == 1 else outs
        return self.call(fn, inputs, kwargs)

    def function(self, func: Callable, args: tuple, kwargs: dict) -> Any:
        if func in _VALUE_SHAPED or (func is np.where and len(args) + len(kwargs) == 1):
            self.refuse(f"np.{func.__name__}: the shape of its result depends on the values")
        if func in _WRITES_FIRST:
            target = args[0] if args else kwargs.get("dst", kwargs.get("a"))
            if type(target) is not Traced:
                self.refuse(f"np.{func.__name__} writes traced values into a NumPy array the "
                            f"trace does not own")
            return self.call(func, args, kwargs, writes=(target,))
        out = kwargs.get("out")
        if out is not None:
            if type(out) is not Traced:
                self.refuse(f"np.{func.__name__}(..., out=array) writes into a NumPy array "
                            f"the trace does not own")
            self.call(func, args, kwargs, writes=(out,))
            return out
        return self.call(func, args, kwargs)


# ----------------------------------------------------------------- traced values

def _refuse_value(self: "Traced", *_: Any, **__: Any) -> Any:
    self.trace.refuse(
        f"reading the values of a traced array (shape {self.shape}, {self.dtype}) in Python "
        f"(float(), int(), bool(), .item(), .tolist(), np.asarray, an `if` on it, or a "
        f"formatted print) cannot be replayed: the decision or number would be frozen into "
        f"the trace. Keep it an array (tl.where, masks) or return it from the function")


def _defers(other: Any) -> bool:
    """True for an operand that opts out of NumPy's ufuncs (``__array_ufunc__ = None``,
    as a Tensor): its reflected operator runs instead, as with a NumPy array."""
    return getattr(type(other), "__array_ufunc__", False) is None


def _binary(ufunc: np.ufunc) -> tuple:
    def op(self, other):
        if _defers(other):
            return NotImplemented
        return self.trace.ufunc(ufunc, "__call__", (self, other), {})

    def rop(self, other):
        return self.trace.ufunc(ufunc, "__call__", (other, self), {})

    def iop(self, other):
        if _defers(other):
            return NotImplemented
        return self.trace.ufunc(ufunc, "__call__", (self, other), {"out": (self,)})
    return op, rop, iop


def _unary(ufunc: np.ufunc) -> Callable:
    return lambda self: self.trace.ufunc(ufunc, "__call__", (self,), {})


_REDUCTIONS = {"sum": np.add.reduce, "prod": np.multiply.reduce, "max": np.maximum.reduce,
               "min": np.minimum.reduce, "any": np.logical_or.reduce,
               "all": np.logical_and.reduce}


def _reduction(name: str) -> Callable:
    reduce = _REDUCTIONS[name]

    def method(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        kwargs = {"axis": axis, "keepdims": keepdims, **kw}
        if dtype is not None:
            kwargs["dtype"] = dtype
        if out is not None:
            return self.trace.function(reduce, (self,), {**kwargs, "out": out})
        return self.trace.call(reduce, (self,), kwargs)
    method.__name__ = name
    return method


def _method(name: str) -> Callable:
    fn = getattr(np.ndarray, name)

    def method(self, *args, **kwargs):
        if kwargs.get("out") is not None:
            return self.trace.function(fn, (self,) + args, kwargs)
        return self.trace.call(fn, (self,) + args, kwargs)
    method.__name__ = name
    return method


class Traced:
    """An array of a trace: NumPy's array operations on it are recorded."""

    __slots__ = ("trace", "index", "array", "__weakref__")
    __array_priority__ = 1000.0
    __hash__ = object.__hash__

    def __init__(self, trace: Trace, index: int) -> None:
        self.trace = trace
        self.index = index
        self.array = trace.values[index].array

    shape = property(lambda self: self.array.shape)
    dtype = property(lambda self: self.array.dtype)
    ndim = property(lambda self: self.array.ndim)
    size = property(lambda self: self.array.size)
    itemsize = property(lambda self: self.array.itemsize)
    nbytes = property(lambda self: self.array.nbytes)
    T = property(lambda self: self.trace.call(np.transpose, (self,)))

    def __len__(self) -> int:
        return len(self.array)

    def __iter__(self) -> Iterator["Traced"]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"traced(shape={self.shape}, dtype={self.dtype})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        if spec:
            _refuse_value(self)
        return repr(self)

    __bool__ = __float__ = __int__ = __index__ = __complex__ = _refuse_value
    __array__ = item = tolist = tobytes = _refuse_value

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return self.trace.ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return self.trace.function(func, args, kwargs)

    # ------------------------------------------------------------ operators
    __add__, __radd__, __iadd__ = _binary(np.add)
    __sub__, __rsub__, __isub__ = _binary(np.subtract)
    __mul__, __rmul__, __imul__ = _binary(np.multiply)
    __truediv__, __rtruediv__, __itruediv__ = _binary(np.true_divide)
    __floordiv__, __rfloordiv__, __ifloordiv__ = _binary(np.floor_divide)
    __mod__, __rmod__, __imod__ = _binary(np.remainder)
    __matmul__, __rmatmul__, __imatmul__ = _binary(np.matmul)
    __pow__, __rpow__, __ipow__ = _binary(np.power)
    __and__, __rand__, __iand__ = _binary(np.bitwise_and)
    __or__, __ror__, __ior__ = _binary(np.bitwise_or)
    __xor__, __rxor__, __ixor__ = _binary(np.bitwise_xor)
    __lt__ = _binary(np.less)[0]
    __le__ = _binary(np.less_equal)[0]
    __gt__ = _binary(np.greater)[0]
    __ge__ = _binary(np.greater_equal)[0]
    __eq__ = _binary(np.equal)[0]
    __ne__ = _binary(np.not_equal)[0]
    __neg__ = _unary(np.negative)
    __pos__ = _unary(np.positive)
    __abs__ = _unary(np.absolute)
    __invert__ = _unary(np.invert)

    # ------------------------------------------------------------ methods
    sum, prod, max, min, any, all = (_reduction(n) for n in ("sum", "prod", "max", "min", "any",
                                                             "all"))
    mean, std, var, argmax, argmin, cumsum = (_method(n) for n in (
        "mean", "std", "var", "argmax", "argmin", "cumsum"))
    reshape, transpose, swapaxes, ravel, flatten, squeeze = (_method(n) for n in (
        "reshape", "transpose", "swapaxes", "ravel", "flatten", "squeeze"))
    astype, copy, view, clip, dot, round, conj = (_method(n) for n in (
        "astype", "copy", "view", "clip", "dot", "round", "conj"))

    def fill(self, value: Any) -> None:
        self.trace.call(np.ndarray.fill, (self, value), writes=(self,))

    def nonzero(self) -> Any:
        self.trace.refuse("nonzero(): the shape of its result depends on the values")

    def __getitem__(self, index: Any) -> "Traced":
        _check_index(self.trace, index)
        return self.trace.call(operator.getitem, (self, index))

    def __setitem__(self, index: Any, value: Any) -> None:
        _check_index(self.trace, index)
        self.trace.call(operator.setitem, (self, index, value), writes=(self,))


def _check_index(trace: Trace, index: Any) -> None:
    for part in index if isinstance(index, tuple) else (index,):
        if type(part) is Traced and part.dtype == bool:
            trace.refuse("indexing with a traced boolean mask: the shape of the result "
                         "depends on the values (use tl.where or multiply by the mask)")


# ----------------------------------------------------------------- the namespace

def _unique_places(index: Any, shape: tuple) -> bool:
    """True when ``index`` picks each place at most once although it holds arrays:
    ``(np.arange(N), labels)`` on an (N, C) array (cs231n's ``scores[range(N), y]``),
    where one row is picked once per row. A plain assignment then scatters it."""
    if not (isinstance(index, tuple) and len(index) == 2 and len(shape) == 2):
        return False
    rows, cols = index
    return (type(rows) is np.ndarray and rows.ndim == 1 and rows.dtype.kind in "iu"
            and len(rows) == shape[0] and np.array_equal(rows, np.arange(shape[0]))
            and getattr(cols, "ndim", None) == 1 and getattr(cols, "dtype", np.dtype(float)).kind in "iu"
            and cols.shape == rows.shape)


class TraceNamespace(NumpyNamespace):
    """The op table's ``xp`` for traced values: NumPy's functions (which record
    through NumPy's protocols) plus the helpers whose NumPy versions write into new
    arrays in ways a trace refuses. ``value(tensor)`` gives a graph node's value."""

    def __init__(self, value: Callable[[Any], Any]) -> None:
        self.value = value

    @staticmethod
    def asarray(x: Any) -> Any:
        return x if type(x) is Traced else np.asarray(x)

    #: a view (the NumPy namespace copies small arrays; the values are the same)
    spread = staticmethod(np.broadcast_to)

    @staticmethod
    def erf(x: Any) -> Any:
        """One recorded call of the element-by-element erf (it reads values in Python)."""
        return x.trace.call(_erf, (x,)) if type(x) is Traced else _erf(x)

    @staticmethod
    def scatter_add(g: Any, shape: tuple, index: Any) -> Any:
        if type(g) is not Traced:
            return NumpyNamespace.scatter_add(g, shape, index)
        grad = np.zeros_like(g, shape=shape)
        if _is_basic(index) or _unique_places(index, tuple(shape)):
            grad[index] = g
        else:
            np.add.at(grad, index, g)
        return grad
