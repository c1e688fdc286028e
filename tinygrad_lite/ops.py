"""The op table: every primitive is defined here, once.

Each primitive is a small ``Function`` subclass holding, side by side:

* ``forward(*xs, **args)``: NumPy arrays in, one NumPy array out;
* ``backward(g, out, xs, needs, **args)``: the vector-Jacobian product. ``g`` is
  the gradient of the output, ``out`` the forward result, ``xs`` the input arrays
  and ``needs[i]`` tells whether input ``i`` wants a gradient (so the expensive
  ones, like ``dX`` of ``X @ W``, are skipped). It returns one array (or None)
  per input, in the *broadcast* shape: summing back to each input's own shape
  happens once, centrally, in ``autograd.input_grads``. It is a pure function of
  its arguments, so a reader (``viz``) can call it again.
* ``rule``: the local gradient rule as text, printed by the diagrams;
* ``symbol``: the gate's label in diagrams (``label(**args)`` may refine it);
* ``torch(*ts, **args)``: the same op in PyTorch (imported lazily), so a recorded
  graph can be replayed there without a second table.

Users add their own primitive the same way: subclass ``Function`` and call
``MyOp.apply(tensor, ..., **args)``.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

#: name -> Function subclass, for every primitive (built-in and user-defined).
OPS: dict[str, type["Function"]] = {}


class Function:
    """Base class of a primitive op. Subclasses fill in the four pieces."""

    name: str = ""
    symbol: str = ""
    rule: str = ""
    #: True when every array ``backward`` returns is ``g``, a view of it, or a new array
    #: (never an input, the output or an array kept elsewhere): the engine then adds
    #: later gradients into the new ones in place. The built-in ops promise it; a
    #: user-defined op (also a subclass of a built-in one) opts in by setting it.
    fresh_grads: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.__dict__.get("name") or cls.__name__.lower()
        cls.symbol = cls.__dict__.get("symbol") or cls.name
        if "fresh_grads" not in cls.__dict__:  # not inherited: a user's subclass must opt in
            cls.fresh_grads = cls.__module__ == __name__  # (checked for each op below)
        taken = OPS.get(cls.name)
        if taken is not None and taken.__module__ == __name__ and cls.__module__ != __name__:
            raise ValueError(
                f"op name {cls.name!r} is taken by the built-in {taken.__name__}; "
                f"give your class another name or set name = '...' on it")
        OPS[cls.name] = cls

    @staticmethod
    def forward(*xs: np.ndarray, **args: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(g: np.ndarray, out: np.ndarray, xs: Sequence[np.ndarray],
                 needs: Sequence[bool], **args: Any) -> Sequence[Optional[np.ndarray]]:
        raise NotImplementedError

    @staticmethod
    def torch(*ts: Any, **args: Any) -> Any:
        raise NotImplementedError("this op has no PyTorch counterpart")

    @classmethod
    def label(cls, **args: Any) -> str:
        """The gate's label in a diagram."""
        return cls.symbol

    @classmethod
    def apply(cls, *inputs: Any, **args: Any) -> "Tensor":  # noqa: F821
        """Run the op on tensors (or arrays/numbers) and record it in the graph."""
        from .tensor import apply
        return apply(cls, inputs, args)


def _torch():
    import torch
    return torch


def _keep(x: np.ndarray, axis, keepdims: bool, out: np.ndarray) -> np.ndarray:
    """``out`` of a reduction, reshaped as if ``keepdims=True``, to broadcast against ``x``."""
    if keepdims or axis is None and out.ndim == 0:
        return out
    shape = list(x.shape)  # (np.expand_dims costs more than the whole backward)
    for a in ((axis,) if isinstance(axis, (int, np.integer)) else axis):
        shape[a] = 1  # the forward has checked the axes; negative ones index from the end
    return out.reshape(shape)


def _spread(g: np.ndarray, shape: tuple) -> np.ndarray:
    """``g`` broadcast to ``shape``: a read-only view for big arrays (no pass over their
    memory: the L2 term's ``sum(W * W)``), a new array for small ones, where making
    the view costs more than the copy."""
    if math.prod(shape) >= 4096:
        return np.broadcast_to(g, shape)
    out = np.empty(shape, dtype=g.dtype)
    out[...] = g
    return out


# ----------------------------------------------------------------- elementwise, binary
# Binary ops broadcast as NumPy does; their backward returns gradients in the
# broadcast shape and the engine sums them back to each input's shape.

class Add(Function):
    symbol = "+"
    rule = "d(a+b)/da = 1, d(a+b)/db = 1"
    forward = staticmethod(np.add)

    @staticmethod
    def backward(g, out, xs, needs):
        return g, g

    @staticmethod
    def torch(a, b):
        return a + b


class Sub(Function):
    symbol = "-"
    rule = "d(a-b)/da = 1, d(a-b)/db = -1"
    forward = staticmethod(np.subtract)

    @staticmethod
    def backward(g, out, xs, needs):
        return g, (-g if needs[1] else None)

    @staticmethod
    def torch(a, b):
        return a - b


class Mul(Function):
    symbol = "*"
    rule = "d(a*b)/da = b, d(a*b)/db = a"
    forward = staticmethod(np.multiply)

    @staticmethod
    def backward(g, out, xs, needs):
        a, b = xs
        if a is b:  # x * x (the L2 term): both wires carry g * x, so compute it once
            gx = g * a
            return gx, gx
        return (g * b if needs[0] else None), (g * a if needs[1] else None)

    @staticmethod
    def torch(a, b):
        return a * b


class Div(Function):
    symbol = "/"
    rule = "d(a/b)/da = 1/b, d(a/b)/db = -a/b^2"
    forward = staticmethod(np.divide)

    @staticmethod
    def backward(g, out, xs, needs):
        a, b = xs
        ga = g / b if needs[0] else None
        gb = -g * out / b if needs[1] else None
        return ga, gb

    @staticmethod
    def torch(a, b):
        return a / b


class Maximum(Function):
    symbol = "max"
    rule = "d max(a,b)/da = 1[a > b] (+1/2 where a == b), d/db likewise"

    forward = staticmethod(np.maximum)

    @staticmethod
    def backward(g, out, xs, needs):
        a, b = xs
        # Ties split the gradient evenly, as torch.maximum does.
        share = np.where(a == b, 0.5, 1.0)
        ga = g * share * (a >= b) if needs[0] else None
        gb = g * share * (b >= a) if needs[1] else None
        return ga, gb

    @staticmethod
    def torch(a, b):
        return _torch().maximum(a, b)


class Where(Function):
    symbol = "where"
    rule = "d where(c,a,b)/da = 1[c], d/db = 1[not c]"

    @staticmethod
    def forward(a, b, condition):
        return np.where(condition, a, b)

    @staticmethod
    def backward(g, out, xs, needs, condition):
        zero = np.zeros((), dtype=g.dtype)
        return (np.where(condition, g, zero) if needs[0] else None,
                np.where(condition, zero, g) if needs[1] else None)

    @staticmethod
    def torch(a, b, condition):
        torch = _torch()
        return torch.where(torch.as_tensor(np.asarray(condition)), a, b)


class Matmul(Function):
    symbol = "@"
    rule = "d(a@b)/da = g @ b.T, d(a@b)/db = a.T @ g"

    @staticmethod
    def forward(a, b):
        try:
            return np.matmul(a, b)
        except ValueError:  # explained only when it happens: the checks cost time on every call
            if a.ndim == 0 or b.ndim == 0:
                raise ValueError("0-d operands are not allowed; use * to scale") from None
            if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
                raise ValueError(
                    f"shapes {a.shape} @ {b.shape} do not align: {a.shape[-1]} "
                    f"(last dim of a) != {b.shape[-2 if b.ndim > 1 else 0]} "
                    f"({'second-to-last' if b.ndim > 1 else 'only'} dim of b)") from None
            raise

    @staticmethod
    def backward(g, out, xs, needs):
        a, b = xs
        if a.ndim == 2 and b.ndim == 2:  # the common case, kept obvious
            return (g @ b.T if needs[0] else None), (a.T @ g if needs[1] else None)
        # 1-D operands are promoted to matrices as np.matmul does, then demoted.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2 if b.ndim > 1 else -1)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        ga = gb = None
        if needs[0]:
            ga = g2 @ np.swapaxes(b2, -1, -2)
            if a.ndim == 1:
                ga = ga[..., 0, :]
        if needs[1]:
            gb = np.swapaxes(a2, -1, -2) @ g2
            if b.ndim == 1:
                gb = gb[..., 0]
        return ga, gb

    @staticmethod
    def torch(a, b):
        return a @ b


# ----------------------------------------------------------------- elementwise, unary

class Neg(Function):
    symbol = "*-1"
    rule = "d(-x)/dx = -1"
    forward = staticmethod(np.negative)

    @staticmethod
    def backward(g, out, xs, needs):
        return (-g,)

    @staticmethod
    def torch(x):
        return -x


class Pow(Function):
    symbol = "**"
    rule = "d(x^p)/dx = p * x^(p-1)"

    @staticmethod
    def forward(x, exponent):
        return np.power(x, exponent)

    @staticmethod
    def backward(g, out, xs, needs, exponent):
        (x,) = xs
        if exponent == 2:  # the L2 term: skip a power
            if g.size > 1 and not any(g.strides):  # one number spread by a sum: one pass, not two
                return (x * (2 * g[(0,) * g.ndim]),)
            return (g * (2 * x),)
        if exponent == 0:  # x**0 is constant: 0 everywhere, also at x = 0 (as PyTorch)
            return (np.zeros_like(g),)
        return (g * (exponent * np.power(x, exponent - 1)),)

    @staticmethod
    def torch(x, exponent):
        return x ** exponent

    @classmethod
    def label(cls, exponent):
        return "1/x" if exponent == -1 else f"**{exponent:g}"


class Exp(Function):
    rule = "d exp(x)/dx = exp(x)"
    forward = staticmethod(np.exp)

    @staticmethod
    def backward(g, out, xs, needs):
        return (g * out,)

    @staticmethod
    def torch(x):
        return x.exp()


class Log(Function):
    rule = "d log(x)/dx = 1/x"
    forward = staticmethod(np.log)

    @staticmethod
    def backward(g, out, xs, needs):
        return (g / xs[0],)

    @staticmethod
    def torch(x):
        return x.log()


class Sqrt(Function):
    rule = "d sqrt(x)/dx = 1/(2 sqrt(x))"
    forward = staticmethod(np.sqrt)

    @staticmethod
    def backward(g, out, xs, needs):
        return (g / (2 * out),)

    @staticmethod
    def torch(x):
        return x.sqrt()


class Abs(Function):
    rule = "d|x|/dx = sign(x)"
    forward = staticmethod(np.abs)

    @staticmethod
    def backward(g, out, xs, needs):
        return (g * np.sign(xs[0]),)

    @staticmethod
    def torch(x):
        return x.abs()


class Relu(Function):
    rule = "d relu(x)/dx = 1[x > 0]"

    @staticmethod
    def forward(x):
        return np.maximum(x, 0)

    @staticmethod
    def backward(g, out, xs, needs):
        # the mask as uint8: NumPy multiplies by it faster than by a bool array
        return (g * (out > 0).view(np.uint8),)

    @staticmethod
    def torch(x):
        return x.relu()


class Sigmoid(Function):
    symbol = "sigmoid"
    rule = "d sigmoid(x)/dx = s(x) * (1 - s(x))"

    @staticmethod
    def forward(x):
        # exp(-|x|) never overflows and keeps sigmoid(-40) ~ 4e-18 instead of 0.
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1, e) / (1 + e)

    @staticmethod
    def backward(g, out, xs, needs):
        return (g * (out * (1 - out)),)

    @staticmethod
    def torch(x):
        return x.sigmoid()


class Tanh(Function):
    rule = "d tanh(x)/dx = 1 - tanh(x)^2"
    forward = staticmethod(np.tanh)

    @staticmethod
    def backward(g, out, xs, needs):
        return (g * (1 - out * out),)

    @staticmethod
    def torch(x):
        return x.tanh()


class Clip(Function):
    rule = "d clip(x,lo,hi)/dx = 1[lo <= x <= hi]"

    @staticmethod
    def forward(x, min, max):
        return np.clip(x, min, max)

    @staticmethod
    def backward(g, out, xs, needs, min, max):
        (x,) = xs
        inside = np.ones(x.shape, dtype=bool)
        if min is not None:
            inside &= x >= min
        if max is not None:
            inside &= x <= max
        return (g * inside,)

    @staticmethod
    def torch(x, min, max):
        # array bounds (np.clip allows them) must be tensors for torch.clamp
        as_t = lambda v: _torch().as_tensor(v) if isinstance(v, np.ndarray) else v  # noqa: E731
        return x.clamp(as_t(min), as_t(max))

    @classmethod
    def label(cls, min, max):
        return f"clip[{min}, {max}]"


class Cast(Function):
    symbol = "astype"
    rule = "d x.astype(t)/dx = 1"

    @staticmethod
    def forward(x, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(g, out, xs, needs, dtype):
        return (g.astype(xs[0].dtype),)

    @staticmethod
    def torch(x, dtype):
        return x.to(getattr(_torch(), np.dtype(dtype).name))


# ----------------------------------------------------------------- reductions

class Sum(Function):
    rule = "d sum(x)/dx = 1 (g broadcast back over the summed axes)"

    @staticmethod
    def forward(x, axis, keepdims):
        return x.sum(axis=axis, keepdims=keepdims)  # the method: np.sum adds a wrapper

    @staticmethod
    def backward(g, out, xs, needs, axis, keepdims):
        x = xs[0]
        return (_spread(_keep(x, axis, keepdims, g), x.shape),)

    @staticmethod
    def torch(x, axis, keepdims):
        if axis == ():  # NumPy: reduce nothing; torch's dim=() would reduce everything
            return x.clone()
        return x.sum(dim=axis, keepdim=keepdims) if axis is not None else \
            (x.sum().reshape((1,) * x.ndim) if keepdims else x.sum())


def _count(x: np.ndarray, out: np.ndarray) -> int:
    """How many elements of ``x`` each element of the reduction ``out`` averages."""
    return x.size // max(out.size, 1) if x.size else 0


class Mean(Function):
    rule = "d mean(x)/dx = 1/n (g broadcast back over the averaged axes)"

    @staticmethod
    def forward(x, axis, keepdims):
        if x.dtype.kind == "f" and x.dtype.itemsize >= 4 and 0 < x.size < 1 << 24:
            # what np.mean computes for float32/64 (sum, then divide; the count is exact
            # in float32 below 2**24), without its wrapper, which costs more than the
            # sum at small sizes
            out = x.sum(axis=axis, keepdims=keepdims)
            return out / _count(x, out)
        return x.mean(axis=axis, keepdims=keepdims)  # float16 accumulates in float32; ints

    @staticmethod
    def backward(g, out, xs, needs, axis, keepdims):
        x = xs[0]
        return (_spread(_keep(x, axis, keepdims, g) / _count(x, out), x.shape),)

    @staticmethod
    def torch(x, axis, keepdims):
        if axis == ():  # NumPy: reduce nothing; torch's dim=() would reduce everything
            return x.clone()
        return x.mean(dim=axis, keepdim=keepdims) if axis is not None else \
            (x.mean().reshape((1,) * x.ndim) if keepdims else x.mean())


def _extremum_backward(g, out, x, axis, keepdims):
    # The gradient is split evenly among tied extrema, as torch.amax/amin do.
    hit = x == _keep(x, axis, keepdims, out)
    count = np.sum(hit, axis=axis, keepdims=True)
    return (_keep(x, axis, keepdims, g) * hit / count,)


class Max(Function):
    rule = "d max(x)/dx = 1[x == max] / (number of ties)"

    @staticmethod
    def forward(x, axis, keepdims):
        return np.max(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(g, out, xs, needs, axis, keepdims):
        return _extremum_backward(g, out, xs[0], axis, keepdims)

    @staticmethod
    def torch(x, axis, keepdims):
        if axis == ():  # NumPy: reduce nothing; torch's dim=() would reduce everything
            return x.clone()
        return _torch().amax(x, dim=() if axis is None else axis, keepdim=keepdims)


class Min(Function):
    rule = "d min(x)/dx = 1[x == min] / (number of ties)"

    @staticmethod
    def forward(x, axis, keepdims):
        return np.min(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(g, out, xs, needs, axis, keepdims):
        return _extremum_backward(g, out, xs[0], axis, keepdims)

    @staticmethod
    def torch(x, axis, keepdims):
        if axis == ():  # NumPy: reduce nothing; torch's dim=() would reduce everything
            return x.clone()
        return _torch().amin(x, dim=() if axis is None else axis, keepdim=keepdims)


# ----------------------------------------------------------------- shape and indexing

class Reshape(Function):
    rule = "d reshape(x)/dx: g reshaped back to x's shape"

    @staticmethod
    def forward(x, shape):
        return np.reshape(x, shape)

    @staticmethod
    def backward(g, out, xs, needs, shape):
        return (np.reshape(g, xs[0].shape),)

    @staticmethod
    def torch(x, shape):
        return x.reshape(shape)


class Transpose(Function):
    symbol = "T"
    rule = "d transpose(x)/dx: g transposed back (inverse permutation)"

    @staticmethod
    def forward(x, axes):
        return np.transpose(x, axes)

    @staticmethod
    def backward(g, out, xs, needs, axes):
        if axes is None:
            return (np.transpose(g),)
        # Negative axes (x.transpose(-1, 0)) are normalised first, or argsort inverts
        # the wrong permutation.
        return (np.transpose(g, np.argsort([a % g.ndim for a in axes])),)

    @staticmethod
    def torch(x, axes):
        # One tuple argument: permute() with no arguments fails on a 0-d tensor.
        return x.permute(tuple(axes if axes is not None else range(x.ndim - 1, -1, -1)))


def _is_basic(index) -> bool:
    """True for slices/ints/None/Ellipsis only: such an index never repeats an element."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice, np.integer))
               or (isinstance(p, np.ndarray) and p.dtype == bool) for p in parts)


class Getitem(Function):
    symbol = "[]"
    rule = "d x[i]/dx: g scattered back to the picked places (repeats add up)"

    @staticmethod
    def forward(x, index):
        return x[index]

    @staticmethod
    def backward(g, out, xs, needs, index):
        x = xs[0]
        grad = np.zeros(x.shape, dtype=g.dtype)
        if _is_basic(index):
            grad[index] = g
        else:
            np.add.at(grad, index, g)  # scores[arange(N), y] may pick a place twice
        return (grad,)

    @staticmethod
    def torch(x, index):
        torch = _torch()
        parts = index if isinstance(index, tuple) else (index,)
        if any(isinstance(p, slice) and p.step is not None and p.step < 0 for p in parts):
            # torch has no negative steps: gather the flat positions NumPy would pick.
            pos = np.array(np.arange(x.numel()).reshape(tuple(x.shape))[index])  # a copy
            return x.reshape(-1)[torch.as_tensor(pos)]
        # Integer indices go over as int64: torch reads a uint8 index as a boolean mask.
        parts = tuple((torch.as_tensor(p.astype(np.int64) if p.dtype.kind in "iu" else p))
                      if isinstance(p, np.ndarray) else p for p in parts)
        return x[parts if isinstance(index, tuple) else parts[0]]

    @classmethod
    def label(cls, index):
        return "[]"


class Concatenate(Function):
    symbol = "concat"
    rule = "d concat(xs)/dx_i: the slice of g that x_i filled"

    @staticmethod
    def forward(*xs, axis):
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(g, out, xs, needs, axis):
        ends = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.split(g, ends, axis=axis)

    @staticmethod
    def torch(*ts, axis):
        return _torch().cat(ts, dim=axis)


class Stack(Function):
    rule = "d stack(xs)/dx_i = g[..., i, ...] along the new axis"

    @staticmethod
    def forward(*xs, axis):
        return np.stack(xs, axis=axis)

    @staticmethod
    def backward(g, out, xs, needs, axis):
        return [np.take(g, i, axis=axis) for i in range(len(xs))]

    @staticmethod
    def torch(*ts, axis):
        return _torch().stack(ts, dim=axis)
