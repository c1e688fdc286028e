"""Rewrites of a recorded program before ``tl.compile`` replays it.

``compiler.Program`` makes two programs from one trace. The **literal** one runs the
recorded calls as recorded, each into a buffer of its own; ``Compiled`` checks that
it reproduces the traced call bit for bit, or refuses the function. The
**optimized** one first rewrites the instruction list with ``RULES`` (``optimize``),
then lets temporaries whose lives do not overlap share buffers (``plan_buffers``),
and runs chains of elementwise calls on big arrays block by block (``blocked``).
Some rules round differently from the literal program, so ``Compiled`` runs both on
the first call, from the same state, and keeps the optimized one only when every
floating-point array it produced (the written parameters, the ``.grad`` arrays, the
returned values, an optimizer's state) is within ``ROUNDING_ULPS`` units in the last
place, of that array's largest magnitude, of the literal one's, with NaN and
infinities in the same places and everything else equal; otherwise it replays the
literal program. No rule rounds a parameter differently: an update ``p -= ...`` is
computed as recorded, so ``p`` is rounded once per step, as eagerly.

The rules, each a function of a ``Code`` (the instruction list with its def-use
facts) that rewrites calls whose results nothing else reads, tried in this order
until none changes anything:

exact (the same bits as the literal program)
    ``share_common_subexpressions``  a call repeated on unchanged inputs runs once
    ``drop_copies``                  a copy of an array nothing writes is the array
    ``drop_scalar_broadcasts``       ``broadcast_to(g, shape) * x`` is ``g * x`` for a 0-d g
    ``compare_as_float``             ``(a == b).astype(float)`` writes the comparison as floats
rounding (the same formula with other roundings; exact when the factors are powers of 2)
    ``sum_products_with_dot``        ``sum(a * b)`` over all elements is ``einsum("ij,ij->", a, b)``
    ``fold_scalar_factors``          ``s2 * (s1 * x)`` and ``(s * x) + (s * x)`` scale x once
    ``distribute_scalar_factors``    ``lr * (A @ B + s * W)`` is ``A @ (lr * B) + (lr * s) * W``

They rewrite float32 and float64 arrays only.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import numpy as np

from .trace import Instr, Ref, Trace, Value, refs_in

__all__ = ["Code", "ROUNDING_ULPS", "RULES", "optimize", "plan_buffers", "blocked", "cheaper_call"]

#: how far (units in the last place of an array's largest magnitude) the optimized
#: program may be from the literal one on the first call
ROUNDING_ULPS = 64

#: the smallest product ``sum_products_with_dot`` rewrites: einsum parses its
#: subscripts at every call (~0.5 us), more than a pass over a few thousand numbers
DOT_MIN_SIZE = 4096

#: the dtypes the rounding rules rewrite (exact scalar casts, einsum's loops)
_ROUNDING_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------- the instruction list

class Code:
    """A program's instructions while the rules rewrite them, and the facts the rules
    ask about them: which instruction makes a value, which ones read it, which
    memory is written in place. ``keep``: values that must survive the program (the
    returned ones, the final ``.grad`` arrays); ``folded``: values computed from
    constants only, once, at build time (their arrays are the traced ones)."""

    def __init__(self, trace: Trace, instrs: list, keep: set, folded: set) -> None:
        self.values: list[Value] = list(trace.values)
        self.instrs: list[Instr] = list(instrs)
        self.keep = keep
        self.folded = folded
        self.refresh()

    # ------------------------------------------------------------ facts
    def refresh(self) -> None:
        """Recompute the facts after the instruction list changed."""
        self.producer: dict = {}   # value -> position of the instruction making it
        self.readers: dict = {}    # value -> positions of the instructions reading it
        self.writes: dict = {}     # root value -> positions of the instructions writing it
        self.viewed: set = set()   # roots some view was made of
        for pos, ins in enumerate(self.instrs):
            if ins.out is not None:
                self.producer[ins.out] = pos
            for r in ins.reads():
                self.readers.setdefault(r, []).append(pos)
            for w in ins.writes:
                self.writes.setdefault(self.root(w), []).append(pos)
            if ins.kind == "view" and ins.base is not None:
                self.viewed.add(self.root(ins.base))

    def root(self, v: int) -> int:
        return self.values[v].root

    def array(self, v: int) -> np.ndarray:
        return self.values[v].array

    def made_by(self, v: int) -> Optional[Instr]:
        """The compute instruction making ``v`` (None for inputs, views, host draws)."""
        pos = self.producer.get(v)
        if pos is None or self.instrs[pos].kind != "compute":
            return None
        return self.instrs[pos]

    def private(self, v: int, pos: int) -> bool:
        """``v`` is a temporary only the instruction at ``pos`` reads (maybe twice),
        never written, viewed or kept: a rule may compute something else instead."""
        return (v not in self.keep and v not in self.folded and self.values[v].kind == "temp"
                and self.root(v) == v and v in self.producer and v not in self.writes
                and v not in self.viewed and all(p == pos for p in self.readers.get(v, ())))

    def unchanged(self, v: Any, start: int, end: int) -> bool:
        """Nothing writes the memory of ``v`` (a Ref or a constant) after position
        ``start`` and before ``end``: reading it at ``end`` gives what ``start`` read."""
        if type(v) is not Ref:
            return True
        return not any(start < p < end for p in self.writes.get(self.root(v.index), ()))

    # ------------------------------------------------------------ changing it
    def new_value(self, shape: tuple, dtype: np.dtype) -> int:
        """A new temporary (its instruction is the caller's)."""
        index = len(self.values)
        self.values.append(Value(np.empty(shape, dtype), "temp", None, index))
        return index

    def drop_dead(self) -> None:
        """Drop the instructions nothing needs (their results unread, nothing written
        outside the program's own temporaries)."""
        values = self.values
        needed = set(self.keep)
        needed_roots = {self.root(v) for v in needed}
        kept = []
        for pos in range(len(self.instrs) - 1, -1, -1):
            ins = self.instrs[pos]
            visible = ins.kind in ("host", "effect") or any(
                values[self.root(w)].kind != "temp" for w in ins.writes)
            if visible or ins.out in needed or any(self.root(w) in needed_roots for w in ins.writes):
                kept.append(ins)
                for r in ins.reads():
                    needed.add(r)
                    needed_roots.add(self.root(r))
                if ins.base is not None:
                    needed.add(ins.base)
                    needed_roots.add(self.root(ins.base))
        self.instrs = kept[::-1]
        self.refresh()


# ----------------------------------------------------------------- rules: helpers

def _out(ins: Instr) -> int:
    """The value an instruction makes (the rules ask it of compute and view ones)."""
    if ins.out is None:
        raise ValueError(f"tl.compile: a {ins.kind} instruction ({ins.fn!r}) makes no value")
    return ins.out


def _is_sum(fn: Callable) -> bool:
    return getattr(fn, "__self__", None) is np.add and getattr(fn, "__name__", "") == "reduce"


def _dtype_of(code: Code, arg: Any) -> Optional[np.dtype]:
    if type(arg) is Ref:
        return code.array(arg.index).dtype
    return getattr(arg, "dtype", None)


def _shape_of(code: Code, arg: Any) -> tuple:
    return code.array(arg.index).shape if type(arg) is Ref else np.shape(arg)


def _scalar(code: Code, arg: Any, dtype: np.dtype) -> bool:
    """``arg`` is one number that NumPy computes with in ``dtype`` next to a
    ``dtype`` array: a Python int or float (NumPy casts it to the array's dtype), or
    a 0-d array or NumPy scalar of that very dtype."""
    if type(arg) in (int, float):
        return True
    if type(arg) is Ref:
        a = code.array(arg.index)
        return a.ndim == 0 and a.dtype == dtype
    return isinstance(arg, (np.ndarray, np.generic)) and arg.ndim == 0 and arg.dtype == dtype


def _scaled(code: Code, ins: Instr) -> Optional[tuple]:
    """``(s, x)`` when ``ins`` computes ``s * x`` for a scalar ``s`` and an array
    ``x`` (a Ref) of the result's own shape and dtype; ``x + x`` is ``(2, x)``."""
    out = code.array(_out(ins))
    if ins.kind != "compute" or ins.kwargs or len(ins.args) != 2 or out.dtype not in _ROUNDING_DTYPES:
        return None
    a, b = ins.args
    if ins.fn is np.add and type(a) is Ref and type(b) is Ref and a.index == b.index:
        x = code.array(a.index)
        return (2, a) if x.shape == out.shape and x.dtype == out.dtype else None
    if ins.fn is not np.multiply:
        return None
    for s, x in ((a, b), (b, a)):
        if type(x) is Ref and _scalar(code, s, out.dtype):
            xa = code.array(x.index)
            if xa.shape == out.shape and xa.dtype == out.dtype and xa.ndim > 0:
                return s, x
    return None


def _constant_value(code: Code, arg: Any) -> Any:
    """The value of a constant operand, or None when it is computed at replay time."""
    if type(arg) is not Ref:
        return arg
    return code.array(arg.index) if arg.index in code.folded else None


def _scalar_call(code: Code, ufunc: np.ufunc, a: Any, b: Any, dtype: np.dtype, emit: list) -> Any:
    """``ufunc(a, b)`` of two scalars in ``dtype``: computed now when both are
    constants, else an instruction appended to ``emit``, run at replay time."""
    ca, cb = _constant_value(code, a), _constant_value(code, b)
    if ca is not None and cb is not None:
        return ufunc(np.asarray(ca, dtype), np.asarray(cb, dtype))
    if type(a) is not Ref and type(b) is not Ref:
        return ufunc(np.asarray(a, dtype), np.asarray(b, dtype))
    a = a if type(a) is Ref else np.asarray(a, dtype)
    b = b if type(b) is Ref else np.asarray(b, dtype)
    out = code.new_value((), dtype)
    emit.append(Instr(ufunc, (a, b), {}, "compute", out=out))
    return Ref(out)


def _product(code: Code, factors: list, dtype: np.dtype, emit: list) -> Any:
    """The product of scalar factors (at least one), left to right, in ``dtype``."""
    result = factors[0]
    for f in factors[1:]:
        result = _scalar_call(code, np.multiply, result, f, dtype, emit)
    return result


def _apply(code: Code, replace: dict) -> bool:
    """Put ``replace[pos]`` (a list of instructions) in place of each position."""
    if not replace:
        return False
    instrs: list = []
    for pos, ins in enumerate(code.instrs):
        instrs.extend(replace.get(pos, (ins,)))
    code.instrs = instrs
    code.drop_dead()
    return True


def _substitute(obj: Any, subst: dict) -> Any:
    t = type(obj)
    if t is Ref:
        return Ref(subst[obj.index]) if obj.index in subst else obj
    if t is tuple or t is list:
        return t(_substitute(o, subst) for o in obj)
    if t is dict:
        return {k: _substitute(v, subst) for k, v in obj.items()}
    if t is slice:
        return slice(*(_substitute(p, subst) for p in (obj.start, obj.stop, obj.step)))
    return obj


def _key(obj: Any) -> Any:
    """A hashable stand-in for an argument: values by index, numbers by type and
    value, arrays and other objects by identity."""
    t = type(obj)
    if t is Ref:
        return ("ref", obj.index)
    if t in (tuple, list):
        return (t.__name__,) + tuple(_key(o) for o in obj)
    if t is dict:
        return ("dict",) + tuple((k, _key(v)) for k, v in sorted(obj.items(), key=lambda kv: repr(kv[0])))
    if t is slice:
        return ("slice", _key(obj.start), _key(obj.stop), _key(obj.step))
    if t in (int, float, bool, str, complex) or obj is None or isinstance(obj, (np.dtype, np.generic)):
        return (t, obj)
    return ("id", id(obj))


# ----------------------------------------------------------------- rules: exact

def share_common_subexpressions(code: Code) -> bool:
    """A call made again on the same unchanged inputs gives the same bits: later
    readers read the first result. (Softmax's forward and its backward both shift
    the scores by their max and exponentiate them.) A reduction made again with the
    other ``keepdims`` is a view of the first, its axes added or dropped (softmax's
    sum of exponentials, kept for the log, and again with its axis for the division)."""
    keyed: dict = {}   # call key -> (its value, the roots it reads or is)
    subst: dict = {}
    changed = False
    instrs = []
    for ins in code.instrs:
        if subst:
            ins = Instr(ins.fn, _substitute(ins.args, subst), _substitute(ins.kwargs, subst),
                        ins.kind, ins.out, ins.base if ins.base not in subst else subst[ins.base],
                        ins.writes, ins.tag)
        if ins.writes:
            written = {code.root(w) for w in ins.writes}
            keyed = {k: e for k, e in keyed.items() if not (e[1] & written)}
        if ins.kind in ("compute", "view") and ins.out not in code.keep \
                and code.root(_out(ins)) not in code.writes:
            key = (ins.kind, _key(ins.fn), _key(ins.args), _key(ins.kwargs))
            first = keyed.get(key)
            if first is not None and _same_layout(code.array(first[0]), code.array(_out(ins))):
                subst[_out(ins)] = first[0]
                continue
            view = _keepdims_view(code, ins, keyed)
            if view is not None:
                instrs.append(view)
                changed = True
                continue
            roots = {code.root(r) for r in ins.reads()} | {code.root(_out(ins))}
            keyed[key] = (_out(ins), roots)
        instrs.append(ins)
    if not subst and not changed:
        return False
    code.instrs = instrs
    code.drop_dead()
    return True


def _keepdims_view(code: Code, ins: Instr, keyed: dict) -> Optional[Instr]:
    """A view instruction giving ``ins``'s reduction from the same reduction made
    before with the other ``keepdims`` (``keyed`` knows the calls made so far)."""
    if ins.kind != "compute" or getattr(ins.fn, "__name__", "") != "reduce" \
            or not isinstance(getattr(ins.fn, "__self__", None), np.ufunc) \
            or len(ins.args) != 1 or type(ins.args[0]) is not Ref:
        return None
    keepdims = bool(ins.kwargs.get("keepdims", False))
    other = {**ins.kwargs, "keepdims": not keepdims}
    first = keyed.get((ins.kind, _key(ins.fn), _key(ins.args), _key(other)))
    if first is None:
        return None
    ndim = code.array(ins.args[0].index).ndim
    axis = ins.kwargs.get("axis", 0)
    axes = tuple(range(ndim)) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    axes = tuple(sorted(a % ndim for a in axes)) if ndim else ()
    fn = np.expand_dims if keepdims else np.squeeze
    out = code.array(_out(ins))
    code.values[_out(ins)] = Value(out, "temp", None, code.root(first[0]))
    return Instr(fn, (Ref(first[0]), axes), {}, "view", out=ins.out, base=first[0], tag=ins.tag)


def _same_layout(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.strides == b.strides


def drop_scalar_broadcasts(code: Code) -> bool:
    """An elementwise call reading ``broadcast_to(g, shape)`` of a 0-d ``g`` reads
    ``g`` itself (NumPy broadcasts a 0-d operand alike): the view goes, and the
    rules below see a scalar factor (the gradient of a sum is such a broadcast)."""
    replace = {}
    for pos, ins in enumerate(code.instrs):
        if ins.kind != "compute" or not isinstance(ins.fn, np.ufunc) or ins.kwargs:
            continue
        args = list(ins.args)
        for k, a in enumerate(args):
            if type(a) is not Ref or a.index not in code.producer:
                continue
            view = code.instrs[code.producer[a.index]]
            if view.kind == "view" and view.fn is np.broadcast_to and code.array(view.base).ndim == 0:
                others = [np.shape(code.array(o.index) if type(o) is Ref else o)
                          for j, o in enumerate(args) if j != k]
                if np.broadcast_shapes((), *others) == code.array(_out(ins)).shape:
                    args[k] = Ref(view.base)
        if args != list(ins.args):
            replace[pos] = [Instr(ins.fn, tuple(args), ins.kwargs, ins.kind, ins.out, tag=ins.tag)]
    return _apply(code, replace)


def drop_copies(code: Code) -> bool:
    """A copy of an array nothing writes is that array, within one replay, when
    nothing writes the copy either (``cross_entropy`` copies its labels, so that the
    caller's later changes cannot reach its backward; a replay runs in one go)."""
    subst: dict = {}
    for ins in code.instrs:
        if ins.kind != "compute" or ins.out in code.keep or ins.out in code.writes \
                or not ins.args or type(ins.args[0]) is not Ref:
            continue
        x = ins.args[0].index
        plain = ins.fn in (np.copy, np.ndarray.copy) and len(ins.args) == 1 and not ins.kwargs
        same = ins.fn is np.ndarray.astype and len(ins.args) == 2 and not ins.kwargs \
            and np.dtype(ins.args[1]) == code.array(x).dtype
        if (plain or same) and code.root(x) not in code.writes \
                and _same_layout(code.array(x), code.array(_out(ins))):
            subst[_out(ins)] = subst.get(x, x)
    if not subst:
        return False
    code.instrs = [Instr(ins.fn, _substitute(ins.args, subst), _substitute(ins.kwargs, subst),
                         ins.kind, ins.out, subst.get(ins.base, ins.base), ins.writes, ins.tag)
                   for ins in code.instrs if ins.out not in subst]
    for v in subst:
        code.values[v] = Value(code.array(v), "temp", None, code.root(subst[v]))
    code.drop_dead()
    return True


_COMPARISONS = (np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal)


def compare_as_float(code: Code) -> bool:
    """``(a == b).astype(float)`` of a comparison nothing else reads is the
    comparison written into a float array (True is 1.0): one call and one array
    less (the one-hot labels of softmax's gradient)."""
    replace = {}
    for pos, ins in enumerate(code.instrs):
        if ins.kind != "compute" or ins.fn is not np.ndarray.astype or len(ins.args) != 2 \
                or ins.kwargs or type(ins.args[0]) is not Ref \
                or code.array(_out(ins)).dtype.kind not in "fc":
            continue
        mask = ins.args[0].index
        compare = code.made_by(mask)
        if compare is None or compare.fn not in _COMPARISONS or compare.kwargs \
                or not code.private(mask, pos) \
                or code.array(mask).shape != code.array(_out(ins)).shape:
            continue
        at = code.producer[mask]
        if all(code.unchanged(a, at, pos) for a in compare.args):
            replace[pos] = [Instr(compare.fn, compare.args, {}, "compute", out=ins.out, tag=ins.tag)]
    return _apply(code, replace)


# ----------------------------------------------------------------- rules: rounding

def sum_products_with_dot(code: Code) -> bool:
    """``sum(a * b)`` over every element, of a product nothing else reads, is one dot
    product, ``einsum("ij,ij->", a, b)``: one pass reading ``a`` and ``b`` instead of
    a pass writing the product and a pass summing it (the L2 penalty
    ``(W * W).sum()``). einsum adds in another order than NumPy's pairwise sum. (Not
    BLAS's dot: on more than one thread, it waits for the other thread to be scheduled
    whenever the machine is busy, milliseconds at a time.)"""
    replace = {}
    for pos, ins in enumerate(code.instrs):
        if not (ins.kind == "compute" and _is_sum(ins.fn) and len(ins.args) == 1
                and type(ins.args[0]) is Ref and set(ins.kwargs) <= {"axis", "keepdims"}
                and ins.kwargs.get("axis") is None and not ins.kwargs.get("keepdims")):
            continue
        p = ins.args[0].index
        product = code.made_by(p)
        if product is None or product.fn is not np.multiply or product.kwargs \
                or not code.private(p, pos) or code.array(p).dtype not in _ROUNDING_DTYPES \
                or code.array(p).size < DOT_MIN_SIZE:
            continue
        a, b = product.args
        start = code.producer[p]
        if all(type(x) is Ref and code.array(x.index).shape == code.array(p).shape
               and code.array(x.index).dtype == code.array(p).dtype
               and code.unchanged(x, start, pos) for x in (a, b)):
            axes = "".join(chr(ord("a") + k) for k in range(code.array(p).ndim))
            replace[pos] = [Instr(np.einsum, (f"{axes},{axes}->", a, b), {}, "compute",
                                  out=ins.out, tag=ins.tag)]
    return _apply(code, replace)


def fold_scalar_factors(code: Code) -> bool:
    """``s2 * (s1 * x)`` is ``(s1 * s2) * x`` and ``(s * x) + (s * x)`` is
    ``(2 * s) * x`` when nothing else reads ``s1 * x``: one pass over ``x`` instead
    of two (``(W * W)``'s gradient is ``g * W`` added to itself). The scalars are
    multiplied first, in the arrays' dtype."""
    replace: dict = {}
    used: set = set()
    for pos, ins in enumerate(code.instrs):
        outer = _scaled(code, ins) if ins.out is not None else None
        if outer is None or pos in used:
            continue
        s2, u = outer
        made = code.made_by(u.index)
        if made is None or code.producer[u.index] in used or not code.private(u.index, pos):
            continue
        u_pos = code.producer[u.index]
        inner = _scaled(code, made)
        if inner is None:
            continue
        s1, x = inner
        if not (code.unchanged(x, u_pos, pos) and code.unchanged(s1, u_pos, pos)):
            continue
        dtype = code.array(_out(ins)).dtype
        emit: list = []
        s = _scalar_call(code, np.multiply, s1, s2, dtype, emit)
        replace[pos] = emit + [Instr(np.multiply, (s, x), {}, "compute", out=ins.out, tag=ins.tag)]
        used.update((pos, u_pos))
    return _apply(code, replace)


def distribute_scalar_factors(code: Code) -> bool:
    """``c * (s * x + A @ B)`` is ``(c * s) * x + A @ (c * B)`` when nothing else
    reads the sum or its terms, and every term takes the factor for free: a scalar
    multiple folds it into its scalar, a matmul into its smaller operand (smaller
    than its result). One pass over the result less: SGD's ``lr * dW`` of a
    gradient ``X.T @ dh + 2 reg W`` is scaled on ``dh``. The update ``p -= ...``
    itself is left alone, so ``p`` is rounded once per step as eagerly (rounding it
    in two steps would bias it the same way at every step)."""
    replace: dict = {}
    for pos, ins in enumerate(code.instrs):
        scaled = _scaled(code, ins) if ins.out is not None else None
        if scaled is None:
            continue
        c, e = scaled
        if _absorbs(code, e.index, pos, pos, c):
            emit: list = []
            _distribute(code, e.index, c, pos, emit, ins.out)
            replace[pos] = emit
            break  # the facts change: one at a time
    return _apply(code, replace)


def _absorbs(code: Code, v: int, read_at: int, end: int, c: Any) -> bool:
    """Value ``v``, read only at ``read_at``, can take a scalar factor ``c`` at
    ``end`` without a pass of its own (see ``distribute_scalar_factors``)."""
    ins = code.made_by(v) if code.private(v, read_at) else None
    if ins is None or ins.kwargs:
        return False
    at = code.producer[v]
    if not code.unchanged(c, at, end):
        return False
    scaled = _scaled(code, ins)
    if scaled is not None:
        return all(code.unchanged(x, at, end) for x in scaled)
    if ins.fn is np.matmul:
        return _matmul_operand(code, ins, end) is not None
    out = code.array(v)
    if ins.fn in (np.add, np.subtract) and len(ins.args) == 2 and all(
            type(a) is Ref and _layout(code.array(a.index)) == _layout(out) for a in ins.args):
        return all(_absorbs(code, a.index, at, end, c) for a in ins.args)
    return False


def _matmul_operand(code: Code, ins: Instr, end: int) -> Optional[int]:
    """Which operand (0 or 1) of ``A @ B`` takes a scalar factor: the smaller, when
    it is smaller than the result; both 2-d of the result's dtype and unchanged until
    ``end`` (where the matmul moves)."""
    out = code.array(_out(ins))
    at = code.producer[_out(ins)]
    sizes = []
    for a in ins.args:
        shape = _shape_of(code, a)
        if _dtype_of(code, a) != out.dtype or len(shape) != 2 or not code.unchanged(a, at, end):
            return None
        sizes.append(int(np.prod(shape)))
    k = 0 if sizes[0] <= sizes[1] else 1
    return k if sizes[k] < out.size else None


def _distribute(code: Code, v: int, c: Any, end: int, emit: list, out: Optional[int] = None) -> int:
    """Append to ``emit`` the instructions computing ``c * v`` at ``end`` (into value
    ``out``, or a new one) by pushing ``c`` into ``v``'s terms, as ``_absorbs``
    said it can."""
    ins = code.made_by(v)
    if ins is None:
        raise ValueError(f"tl.compile: value {v} is not computed here (_absorbs said it was)")
    dtype = code.array(v).dtype
    if out is None:
        out = code.new_value(code.array(v).shape, dtype)
    scaled = _scaled(code, ins)
    if scaled is not None:
        s, x = scaled
        factor = _scalar_call(code, np.multiply, s, c, dtype, emit)
        emit.append(Instr(np.multiply, (factor, x), {}, "compute", out=out, tag=ins.tag))
    elif ins.fn is np.matmul:
        k = _matmul_operand(code, ins, end)
        if k is None:
            raise ValueError("tl.compile: no matmul operand takes the factor (_absorbs said one did)")
        operands = list(ins.args)
        small = operands[k]
        scaled_operand = code.new_value(_shape_of(code, small), dtype)
        emit.append(Instr(np.multiply, (small, c), {}, "compute", out=scaled_operand, tag=ins.tag))
        operands[k] = Ref(scaled_operand)
        emit.append(Instr(np.matmul, tuple(operands), {}, "compute", out=out, tag=ins.tag))
    else:
        # the matmul first: its big result is written before the scaled term, which
        # is then still in the caches when the sum reads it
        order = sorted(range(2), key=lambda k: getattr(code.made_by(ins.args[k].index), "fn", None)
                       is not np.matmul)
        made = {k: _distribute(code, ins.args[k].index, c, end, emit) for k in order}
        emit.append(Instr(ins.fn, (Ref(made[0]), Ref(made[1])), {}, "compute", out=out, tag=ins.tag))
    return out


#: the rules of the optimized program, in the order they are tried
RULES = (share_common_subexpressions, drop_copies, drop_scalar_broadcasts, compare_as_float,
         sum_products_with_dot, fold_scalar_factors, distribute_scalar_factors)



def optimize(code: Code) -> None:
    """Apply ``RULES`` until none changes the program."""
    changed = True
    while changed:
        changed = False
        for rule in RULES:
            while rule(code):
                changed = True


# ----------------------------------------------------------------- buffers

def _layout(a: np.ndarray) -> tuple:
    return a.shape, a.dtype.str, a.strides


def plan_buffers(code: Code, share: bool) -> dict:
    """A buffer for every value the program computes (not the views, not the
    constants). With ``share``, a temporary's buffer returns to a pool after the last
    instruction reading its memory, the next temporary of the same layout takes it,
    and an elementwise ufunc writes its result over an operand that dies there, as a
    person writes ``h += b``: fewer distinct arrays, which stay in the caches. The
    values kept after the program (returned, stored as ``.grad``) have buffers of
    their own."""
    values = code.values
    made = [ins.out for ins in code.instrs
            if ins.out is not None and ins.kind != "view" and ins.out not in code.folded]
    if not share:
        return {v: np.empty_like(values[v].array) for v in made}
    last: dict = {}
    for pos, ins in enumerate(code.instrs):
        if ins.out is not None:
            last.setdefault(code.root(_out(ins)), pos)
        for r in ins.reads():
            last[code.root(r)] = pos
        for w in ins.writes:
            last[code.root(w)] = pos
    dying: dict = {}
    for root, pos in last.items():
        dying.setdefault(pos, []).append(root)
    kept = {code.root(v) for v in code.keep}
    buffers: dict = {}
    handed_on: set = set()
    pool: dict = {}
    for pos, ins in enumerate(code.instrs):
        o = ins.out
        if o is not None and ins.kind != "view" and o not in code.folded:
            layout = _layout(values[o].array)
            if o in kept:
                buffers[o] = np.empty_like(values[o].array)
            else:
                heir = _dying_operand(code, ins, pos, last, kept, buffers, handed_on)
                if heir is not None:
                    buffers[o] = buffers[heir]
                    handed_on.add(heir)
                elif pool.get(layout):
                    buffers[o] = pool[layout].pop()
                else:
                    buffers[o] = np.empty_like(values[o].array)
        for root in dying.get(pos, ()):
            if root in buffers and root not in handed_on and root not in kept:
                pool.setdefault(_layout(buffers[root]), []).append(buffers[root])
    return buffers


def _dying_operand(code: Code, ins: Instr, pos: int, last: dict, kept: set, buffers: dict,
                   handed_on: set) -> Optional[int]:
    """An operand of the elementwise ufunc ``ins`` read for the last time here, with
    the result's layout: the ufunc may write over it."""
    if ins.kind != "compute" or not isinstance(ins.fn, np.ufunc) or ins.fn.nout != 1:
        return None
    out = code.array(_out(ins))
    for r in refs_in(ins.args):
        if r in buffers and r not in handed_on and r not in kept and code.root(r) == r \
                and last.get(r) == pos and _layout(buffers[r]) == _layout(out):
            return r
    return None


# ----------------------------------------------------------------- calls

def cheaper_call(fn: Callable, args: Any, kwargs: dict) -> tuple:
    """The arguments of a ufunc call in a form NumPy runs faster, with the same bits:
    a Python int next to floating-point arrays of one dtype as a 0-d array of that
    dtype (NumPy converts it alike, on a slower path: ``maximum(x, 0)``), and
    ``casting="same_kind"``, the default, left out (a keyword call is slower)."""
    if not isinstance(fn, np.ufunc):
        return args, kwargs
    if kwargs.get("casting") == "same_kind":
        kwargs = {k: v for k, v in kwargs.items() if k != "casting"}
    dtypes = {a.dtype for a in args if isinstance(a, np.ndarray)}
    if len(dtypes) == 1:
        dtype = dtypes.pop()
        if dtype.kind == "f":
            args = type(args)(np.asarray(a, dtype) if type(a) is int and abs(a) < 2 ** 24 else a
                              for a in args)
    return args, kwargs


# ----------------------------------------------------------------- blocks

#: bytes of each array that one block of an elementwise chain covers: a block's
#: arrays stay in the caches from one call of the chain to the next
BLOCK_BYTES = 1 << 17

_SCALARS = (int, float, bool, complex, np.generic)


def elementwise(ins: Instr, args: tuple, kwargs: dict, out: Any) -> Optional[tuple]:
    """``(ufunc, operands, out, keywords)`` when the resolved call of ``ins``
    computes each element of ``out`` (at least 1-d) from the same element of
    operands of its shape (or from scalars): ``x + y``, ``p -= t``."""
    if ins.kind not in ("compute", "write") or not isinstance(ins.fn, np.ufunc) or ins.fn.nout != 1:
        return None
    extra = dict(kwargs)
    if ins.kind == "write":
        target = extra.pop("out", None)
        if not (isinstance(target, tuple) and len(target) == 1) or set(extra) - {"casting"}:
            return None
        out = target[0]
    elif extra:
        return None
    if not isinstance(out, np.ndarray) or out.ndim == 0:
        return None
    for a in args:
        if isinstance(a, np.ndarray):
            if a.ndim and a.shape != out.shape:
                return None
        elif not isinstance(a, _SCALARS):
            return None
    return ins.fn, tuple(args), out, extra


def block_rows(out: np.ndarray) -> Optional[int]:
    """Rows of ``out`` per block of a chain writing it; None when it is too small to
    gain from blocks (fewer than two)."""
    rows = max(1, BLOCK_BYTES // max(out.itemsize * (out.size // out.shape[0]), 1))
    return rows if out.shape[0] >= 2 * rows else None


def blocked(chain: list) -> Optional[list]:
    """The calls running a chain of ``elementwise`` calls (one shape) block by block
    along the first axis, each block through the whole chain while its arrays are in
    the caches: ``t = c * W; t += M; W -= t`` reads ``W``, ``M`` and ``t`` once from
    memory instead of three times. Each element gets the same operations in the same
    order, so the same bits. None when the chain is too small to gain, or two of its
    arrays overlap other than as the same memory (a block could then read what
    another block of a later call wrote)."""
    shape = chain[0][2].shape
    rows = min(block_rows(target) or 0 for _, _, target, _ in chain)
    if not rows or any(target.shape != shape for _, _, target, _ in chain):
        return None
    arrays: dict = {}
    for _, args, target, _ in chain:
        for a in args + (target,):
            if isinstance(a, np.ndarray) and a.ndim:
                arrays.setdefault((a.__array_interface__["data"][0], a.strides), a)
    memory = list(arrays.values())
    for k, a in enumerate(memory):
        if any(np.may_share_memory(a, b) for b in memory[k + 1:]):
            return None
    calls = []
    for lo in range(0, shape[0], rows):
        part = slice(lo, lo + rows)
        for fn, args, target, extra in chain:
            operands = tuple(a[part] if isinstance(a, np.ndarray) and a.ndim else a for a in args)
            if extra or fn in (np.maximum, np.minimum):
                calls.append((functools.partial(fn, out=target[part], **extra), operands))
            else:
                calls.append((fn, operands + (target[part],)))
    return calls


def in_turn(calls: list) -> None:
    """Make ``calls``, ``(function, arguments)`` pairs, one after the other."""
    for fn, args in calls:
        fn(*args)
