"""The op table: every primitive is defined here, once.

Each primitive is a small ``Function`` subclass holding, side by side:

* ``forward(xp, *xs, **args)``: arrays in, one array out;
* ``backward(xp, g, out, xs, needs, **args)``: the vector-Jacobian product. ``g`` is
  the gradient of the output, ``out`` the forward result, ``xs`` the inputs and
  ``needs[i]`` tells whether input ``i`` wants a gradient (so the expensive ones, like
  ``dX`` of ``X @ W``, are skipped). It returns one gradient (or None) per input, in
  the *broadcast* shape: summing back to each input's own shape happens once,
  centrally, in ``autograd.input_grads``. It is a pure function of its arguments.
* ``rule``: the local gradient rule as text, printed by the diagrams;
* ``template``: the same rule as the line a hand derivation writes, one text per
  input (``"{g} * ({x} > 0)"``), filled in by ``tl.explain`` with the tensors'
  names: ``{g}`` the output's gradient, ``{a}``/``{b}`` (``{x}``) the inputs,
  ``{out}`` the output, ``{n}`` how many inputs each output element reduces, the
  op's arguments by name; ``{a.T:s}`` is ``a.T`` with its shape, ``{g:spread}`` g
  broadcast back over reduced axes, and ``sum_to(...)`` marks a gradient summed back
  to a broadcast input's shape;
* ``symbol``: the gate's label in diagrams (``label(**args)`` may refine it);
* ``torch(*ts, **args)``: the same op in PyTorch (imported lazily), so a recorded
  graph can be replayed there without a second table.

``xp`` is the array namespace the op computes with. Both functions use only
operators (``+ - * / ** @``, comparisons), the methods ``.sum .reshape .astype .T``,
indexing, and the functions of ``xp``, so one definition serves every kind of value:

* ``NP`` (below): NumPy arrays, the fast default;
* ``tensor.TENSOR``: Tensors, so a backward records a graph that can be
  differentiated again (``backward(create_graph=True)``);
* any other namespace with the same names (a tracer, a code emitter).

Comparisons give masks: on Tensors a comparison is a plain boolean array, a constant
of the graph (its derivative is zero almost everywhere).

Users add their own primitive the same way: subclass ``Function`` and call
``MyOp.apply(tensor, ..., **args)``. A ``forward(*xs)`` / ``backward(g, out, xs,
needs)`` without ``xp`` is still accepted: such an op computes on NumPy arrays only,
so it cannot be differentiated twice.
"""
from __future__ import annotations

import inspect
import math
import operator
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from ._checks import is_integer

if TYPE_CHECKING:
    from .tensor import Tensor

#: name -> Function subclass, for every primitive (built-in and user-defined).
OPS: dict[str, type["Function"]] = {}


# ----------------------------------------------------------------- the NumPy namespace

def sum_axes(shape: tuple, target: tuple) -> Optional[tuple]:
    """The axes to sum so an array of ``shape`` (a broadcast result) has ``target``'s
    shape again (with ``keepdims``, then a reshape drops the leading ones): NumPy
    broadcasting in reverse. None when ``shape`` cannot come from ``target``."""
    extra = len(shape) - len(target)
    if extra < 0 or any(n != 1 and n != m for n, m in zip(target, shape[extra:])):
        return None
    return tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(target) if n == 1 and shape[i + extra] != 1)


def _unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` back to ``shape`` (the one place this is done for arrays)."""
    if grad.shape == shape:
        return grad
    if grad.ndim == len(shape) + 1 and shape and grad.shape[1:] == shape:
        return grad.sum(axis=0)  # a bias added to every row: the common case, cheapest
    axes = sum_axes(grad.shape, shape)
    if axes is None:
        # e.g. a user-defined backward returning a wrong shape: never reshape silently
        raise RuntimeError(f"a gradient of shape {grad.shape} cannot be summed back "
                           f"to an input of shape {shape}")
    return (grad.sum(axis=axes, keepdims=True) if axes else grad).reshape(shape)


def _spread(g: np.ndarray, shape: tuple) -> np.ndarray:
    """``g`` broadcast to ``shape``: a read-only view for big arrays (no pass over their
    memory: the L2 term's ``sum(W * W)``), a new array for small ones, where making
    the view costs more than the copy."""
    if math.prod(shape) >= 4096:
        return np.broadcast_to(g, shape)
    out = np.empty(shape, dtype=g.dtype)
    out[...] = g
    return out


def _is_basic(index: Any) -> bool:
    """True for slices/ints/None/Ellipsis/boolean masks: such an index never picks an
    element twice, so assignment scatters it (faster than ``np.add.at``)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice, np.integer))
               or (isinstance(p, np.ndarray) and p.dtype == bool) for p in parts)


def _scatter_add(g: np.ndarray, shape: tuple, index: Any) -> np.ndarray:
    """Zeros of ``shape`` with ``g`` added at ``index`` (repeated places add up)."""
    grad = np.zeros(shape, dtype=g.dtype)
    if _is_basic(index):
        grad[index] = g
    else:
        np.add.at(grad, index, g)  # scores[arange(N), y] may pick a place twice
    return grad


def _erf(x: Any) -> np.ndarray:
    """The error function to float64 accuracy (NumPy has none): the C library's erf,
    element by element; float32 in, float32 out."""
    x = np.asarray(x)
    exact = np.fromiter(map(math.erf, x.ravel().tolist()), dtype=np.float64, count=x.size)
    return exact.reshape(x.shape).astype(x.dtype if x.dtype.kind == "f" else np.float64,
                                         copy=False)


def _pad(x: np.ndarray, pad_width: tuple, constant_values: Any = 0) -> np.ndarray:
    return np.pad(x, pad_width, mode="constant", constant_values=constant_values)


class NumpyNamespace:
    """The functions ops call through ``xp``, on NumPy arrays. Another namespace
    (``tensor.TENSOR``) has the same names; a test keeps the two in step. (A namespace
    takes its own kind of values: where one derives from this, its functions are typed
    by what they do for the ops, not by NumPy's signatures.)"""

    #: the value a graph node stands for in this namespace
    value: Callable[[Any], Any] = staticmethod(operator.attrgetter("data"))
    asarray: Callable[[Any], Any] = staticmethod(np.asarray)
    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    abs = staticmethod(np.abs)
    sign = staticmethod(np.sign)
    tanh = staticmethod(np.tanh)
    log1p = staticmethod(np.log1p)
    expm1 = staticmethod(np.expm1)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    erf = staticmethod(_erf)
    cumsum = staticmethod(np.cumsum)
    cumprod = staticmethod(np.cumprod)
    flip = staticmethod(np.flip)
    #: constant padding: ``np.pad(x, pad_width, constant_values=...)``
    pad = staticmethod(_pad)
    clip = staticmethod(np.clip)
    transpose = staticmethod(np.transpose)
    swapaxes = staticmethod(np.swapaxes)
    broadcast_to = staticmethod(np.broadcast_to)
    concatenate = staticmethod(np.concatenate)
    stack = staticmethod(np.stack)
    zeros_like = staticmethod(np.zeros_like)
    #: ``g`` summed back to ``shape`` (NumPy broadcasting in reverse)
    sum_to = staticmethod(_unbroadcast)
    #: ``g`` broadcast to ``shape``, possibly as a read-only view
    spread: Callable[[Any, tuple], Any] = staticmethod(_spread)
    #: zeros of ``shape`` with ``g`` added at ``index``
    scatter_add = staticmethod(_scatter_add)

    @staticmethod
    def sigmoid(x: np.ndarray) -> np.ndarray:
        # exp(-|x|) never overflows and keeps sigmoid(-40) ~ 4e-18 instead of 0.
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1, e) / (1 + e)


NP = NumpyNamespace()


# ----------------------------------------------------------------- Function

#: How ``Function.apply`` records an op: ``tensor.apply``, which tensor.py plugs in when
#: it is imported. The op table sits below the Tensor class: it computes on arrays.
_record: Callable[[type[Function], Sequence[Any], dict], Tensor]


def set_recorder(record: Callable[[type[Function], Sequence[Any], dict], Tensor]) -> None:
    """Make ``Function.apply`` run an op through ``record(op, inputs, args)``."""
    global _record
    _record = record


def _takes_xp(fn: Callable) -> bool:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # a NumPy ufunc as forward: NumPy-only
        return False
    return bool(params) and params[0] == "xp"


class Function:
    """Base class of a primitive op. Subclasses fill in the pieces."""

    name: str = ""
    symbol: str = ""
    rule: str = ""
    #: one text per input (one for all inputs of a variadic op): see the module docstring
    template: tuple = ()
    #: True when every gradient ``backward`` returns is ``g``, a view of it, or a new array
    #: (never an input, the output or an array kept elsewhere): the engine then adds
    #: later gradients into the new ones in place. The built-in ops promise it; a
    #: user-defined op (also a subclass of a built-in one) opts in by setting it.
    fresh_grads: bool = False
    #: False for an op written for NumPy arrays only (no ``xp`` parameter).
    any_namespace: bool = True
    #: False when backward reads no input's values and the output is a new array (not
    #: a view of an input): the inputs' arrays need no guard until backward.
    saves: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.__dict__.get("name") or cls.__name__.lower()
        cls.symbol = cls.__dict__.get("symbol") or cls.name
        if "fresh_grads" not in cls.__dict__:  # not inherited: a user's subclass must opt in
            cls.fresh_grads = cls.__module__ == __name__
        _accept_numpy_only(cls)
        taken = OPS.get(cls.name)
        if taken is not None and taken.__module__ == __name__ and cls.__module__ != __name__:
            raise ValueError(
                f"op name {cls.name!r} is taken by the built-in {taken.__name__}; "
                f"give your class another name or set name = '...' on it")
        OPS[cls.name] = cls

    @staticmethod
    def forward(xp: Any, *xs: Any, **args: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(xp: Any, g: Any, out: Any, xs: Sequence[Any], needs: Sequence[bool],
                 **args: Any) -> Sequence[Optional[Any]]:
        raise NotImplementedError

    @staticmethod
    def torch(*ts: Any, **args: Any) -> Any:
        raise NotImplementedError("this op has no PyTorch counterpart")

    @classmethod
    def label(cls, **args: Any) -> str:
        """The gate's label in a diagram."""
        return cls.symbol

    @classmethod
    def templates(cls, **args: Any) -> tuple:
        """``template`` for these arguments (an op whose text depends on them overrides it)."""
        return cls.template

    @classmethod
    def apply(cls, *inputs: Any, **args: Any) -> "Tensor":
        """Run the op on tensors (or arrays/numbers) and record it in the graph."""
        return _record(cls, inputs, args)


def _accept_numpy_only(cls: type[Function]) -> None:
    """A ``forward(*xs)`` / ``backward(g, out, xs, needs)`` written without ``xp``
    (NumPy only) gets an ``xp`` parameter that must be ``NP``. (The methods are
    replaced by ones of the table's signature: the ignores below say so to mypy.)"""
    fwd, bwd = cls.__dict__.get("forward"), cls.__dict__.get("backward")
    legacy = False
    if fwd is not None and not _takes_xp(inspect.unwrap(cls.forward)):
        plain_forward: Callable = cls.forward

        def forward(xp: Any, *xs: Any, **args: Any) -> Any:
            _numpy_only(cls, xp)
            return plain_forward(*xs, **args)
        cls.forward = staticmethod(forward)  # type: ignore[method-assign]
        legacy = True
    if bwd is not None and not _takes_xp(cls.backward):
        plain_backward: Callable = cls.backward

        def backward(xp: Any, g: Any, out: Any, xs: Sequence[Any], needs: Sequence[bool],
                     **args: Any) -> Any:
            _numpy_only(cls, xp)
            return plain_backward(g, out, xs, needs, **args)
        cls.backward = staticmethod(backward)  # type: ignore[method-assign]
        legacy = True
    if legacy:
        cls.any_namespace = False


def _numpy_only(cls: type[Function], xp: Any) -> None:
    if xp is not NP:
        raise TypeError(
            f"{cls.name}: its forward/backward take no xp (array namespace) parameter, so "
            f"they compute on NumPy arrays only and cannot be differentiated twice or "
            f"traced; write them as forward(xp, *xs) / backward(xp, g, out, xs, needs) "
            f"using xp's functions (see docs/engine.md)")


def _torch():
    import torch
    return torch


def _keep(x: Any, axis: Any, keepdims: bool, out: Any) -> Any:
    """``out`` of a reduction of ``x``, reshaped as if ``keepdims=True``, to broadcast
    against ``x``."""
    if keepdims or out.ndim == 0 or out.ndim == x.ndim:  # broadcasts against x as it is
        return out
    shape = list(x.shape)  # (np.expand_dims costs more than the whole backward)
    for a in ((axis,) if isinstance(axis, (int, np.integer)) else axis):
        shape[a] = 1  # the forward has checked the axes; negative ones index from the end
    return out.reshape(tuple(shape))


def _no_axes(axis: Any) -> bool:
    """NumPy's ``axis=()`` reduces nothing; torch's ``dim=()`` reduces everything."""
    return isinstance(axis, tuple) and len(axis) == 0


# ----------------------------------------------------------------- elementwise, binary
# Binary ops broadcast as NumPy does; their backward returns gradients in the
# broadcast shape and the engine sums them back to each input's shape.

class Add(Function):
    symbol = "+"
    saves = False
    rule = "d(a+b)/da = 1, d(a+b)/db = 1"
    template = ("sum_to({g})", "sum_to({g})")

    @staticmethod
    def forward(xp, a, b):
        return a + b

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return g, g

    @staticmethod
    def torch(a, b):
        return a + b


class Sub(Function):
    symbol = "-"
    saves = False
    rule = "d(a-b)/da = 1, d(a-b)/db = -1"
    template = ("sum_to({g})", "sum_to(-{g})")

    @staticmethod
    def forward(xp, a, b):
        return a - b

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return g, (-g if needs[1] else None)

    @staticmethod
    def torch(a, b):
        return a - b


class Mul(Function):
    symbol = "*"
    rule = "d(a*b)/da = b, d(a*b)/db = a"
    template = ("sum_to({g} * {b})", "sum_to({g} * {a})")

    @staticmethod
    def forward(xp, a, b):
        return a * b

    @staticmethod
    def backward(xp, g, out, xs, needs):
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
    template = ("sum_to({g} / {b})", "sum_to(-{g} * {a} / {b}**2)")

    @staticmethod
    def forward(xp, a, b):
        return a / b

    @staticmethod
    def backward(xp, g, out, xs, needs):
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
    template = ("sum_to({g} * (({a} > {b}) + 0.5 * ({a} == {b})))",
                "sum_to({g} * (({b} > {a}) + 0.5 * ({a} == {b})))")

    @staticmethod
    def forward(xp, a, b):
        return xp.maximum(a, b)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        a, b = xs
        # Ties split the gradient evenly, as torch.maximum does.
        tie = (a == b) * 0.5
        ga = g * ((a > b) + tie) if needs[0] else None
        gb = g * ((b > a) + tie) if needs[1] else None
        return ga, gb

    @staticmethod
    def torch(a, b):
        return _torch().maximum(a, b)


class Minimum(Function):
    symbol = "min"
    rule = "d min(a,b)/da = 1[a < b] (+1/2 where a == b), d/db likewise"
    template = ("sum_to({g} * (({a} < {b}) + 0.5 * ({a} == {b})))",
                "sum_to({g} * (({b} < {a}) + 0.5 * ({a} == {b})))")

    @staticmethod
    def forward(xp, a, b):
        return xp.minimum(a, b)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        a, b = xs
        tie = (a == b) * 0.5  # split evenly, as torch.minimum does
        ga = g * ((a < b) + tie) if needs[0] else None
        gb = g * ((b < a) + tie) if needs[1] else None
        return ga, gb

    @staticmethod
    def torch(a, b):
        return _torch().minimum(a, b)


class Power(Function):
    """``a ** b`` with a tensor exponent (``pow`` is the cheaper gate for a number)."""
    symbol = "**"
    rule = ("d(a^b)/da = b * a^(b-1) (0 where b == 0), "
            "d(a^b)/db = a^b * log(a) (0 where a == 0 and b >= 0)")
    template = ("sum_to({g} * {b} * {a}**({b} - 1))", "sum_to({g} * {out} * log({a}))")

    @staticmethod
    def forward(xp, a, b):
        return a ** b

    @staticmethod
    def backward(xp, g, out, xs, needs):
        # PyTorch's masks. The masked places compute with safe values (exponent 1,
        # base 1), so no inf or nan is made there, not even in gradients of this
        # gradient (a masked branch still gets a zero gradient times its value).
        a, b = xs
        ga = gb = None
        if needs[0]:
            constant = b == 0
            ga = g * xp.where(constant, 0.0, b * a ** (xp.where(constant, 1.0, b) - 1))
        if needs[1]:
            flat = (a == 0) * (b >= 0)
            gb = g * xp.where(flat, 0.0, out * xp.log(xp.where(flat, 1.0, a)))
        return ga, gb

    @staticmethod
    def torch(a, b):
        return _torch().pow(a, b)


class Where(Function):
    symbol = "where"
    rule = "d where(c,a,b)/da = 1[c], d/db = 1[not c]"
    template = ("sum_to(where({condition}, {g}, 0))", "sum_to(where({condition}, 0, {g}))")

    @staticmethod
    def forward(xp, a, b, condition):
        return xp.where(condition, a, b)

    @staticmethod
    def backward(xp, g, out, xs, needs, condition):
        return (xp.where(condition, g, 0.0) if needs[0] else None,
                xp.where(condition, 0.0, g) if needs[1] else None)

    @staticmethod
    def torch(a, b, condition):
        torch = _torch()
        return torch.where(torch.as_tensor(np.asarray(condition)), a, b)


def _matmul_error(a: np.ndarray, b: np.ndarray) -> Optional[str]:
    if a.ndim == 0 or b.ndim == 0:
        return "0-d operands are not allowed; use * to scale"
    inner_b = b.shape[-2 if b.ndim > 1 else 0]
    if a.shape[-1] != inner_b:
        return (f"shapes {a.shape} @ {b.shape} do not align: {a.shape[-1]} (last dim of a) "
                f"!= {inner_b} ({'second-to-last' if b.ndim > 1 else 'only'} dim of b)")
    return None


class Matmul(Function):
    symbol = "@"
    rule = "d(a@b)/da = g @ b.T, d(a@b)/db = a.T @ g"
    template = ("{g:s} @ {b.T:s}", "{a.T:s} @ {g:s}")

    @staticmethod
    def forward(xp, a, b):
        try:
            return a @ b
        except ValueError:  # explained only when it happens: the checks cost time on every call
            why = _matmul_error(a, b)
            if why is None:
                raise
            raise ValueError(why) from None

    @staticmethod
    def backward(xp, g, out, xs, needs):
        a, b = xs
        if a.ndim == 2 and b.ndim == 2:  # the common case, kept obvious
            return (g @ b.T if needs[0] else None), (a.T @ g if needs[1] else None)
        # 1-D operands are promoted to matrices as np.matmul does, then demoted.
        a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
        b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:  # the promoted axis was -2 of the result (or -1 when b is 1-D too)
            g2 = g2.reshape(g2.shape[:-1] + (1,) + g2.shape[-1:]) if b.ndim > 1 \
                else g2.reshape(g2.shape + (1,))
        if b.ndim == 1:
            g2 = g2.reshape(g2.shape + (1,))
        ga = gb = None
        if needs[0]:
            ga = g2 @ xp.swapaxes(b2, -1, -2)
            if a.ndim == 1:
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
        if needs[1]:
            gb = xp.swapaxes(a2, -1, -2) @ g2
            if b.ndim == 1:
                gb = gb.reshape(gb.shape[:-1])
        return ga, gb

    @staticmethod
    def torch(a, b):
        return a @ b


# ----------------------------------------------------------------- elementwise, unary

class Neg(Function):
    symbol = "*-1"
    saves = False
    rule = "d(-x)/dx = -1"
    template = ("-{g}",)

    @staticmethod
    def forward(xp, x):
        return -x

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (-g,)

    @staticmethod
    def torch(x):
        return -x


class Pow(Function):
    symbol = "**"
    rule = "d(x^p)/dx = p * x^(p-1)"

    @staticmethod
    def forward(xp, x, exponent):
        return x ** exponent

    @staticmethod
    def backward(xp, g, out, xs, needs, exponent):
        (x,) = xs
        if exponent == 2:  # the L2 term: skip a power
            return (g * (2 * x),)
        if exponent == 0:  # x**0 is constant: 0 everywhere, also at x = 0 (as PyTorch)
            return (xp.zeros_like(g),)
        return (g * (exponent * x ** (exponent - 1)),)

    @staticmethod
    def torch(x, exponent):
        return x ** exponent

    @classmethod
    def label(cls, exponent):
        return "1/x" if exponent == -1 else f"**{exponent:g}"

    @classmethod
    def templates(cls, exponent):
        if exponent == 2:
            return ("2 * {g} * {x}",)
        return (f"{{g}} * {exponent:g} * {{x}}**{exponent - 1:g}",)


class Exp(Function):
    rule = "d exp(x)/dx = exp(x)"
    template = ("{g} * {out}",)

    @staticmethod
    def forward(xp, x):
        return xp.exp(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (g * out,)

    @staticmethod
    def torch(x):
        return x.exp()


class Log(Function):
    rule = "d log(x)/dx = 1/x"
    template = ("{g} / {x}",)

    @staticmethod
    def forward(xp, x):
        return xp.log(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (g / xs[0],)

    @staticmethod
    def torch(x):
        return x.log()


class Sqrt(Function):
    rule = "d sqrt(x)/dx = 1/(2 sqrt(x))"
    template = ("{g} / (2 * {out})",)

    @staticmethod
    def forward(xp, x):
        return xp.sqrt(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (g / (2 * out),)

    @staticmethod
    def torch(x):
        return x.sqrt()


class Abs(Function):
    rule = "d|x|/dx = sign(x)"
    template = ("{g} * sign({x})",)

    @staticmethod
    def forward(xp, x):
        return xp.abs(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (g * xp.sign(xs[0]),)

    @staticmethod
    def torch(x):
        return x.abs()


class Sign(Function):
    saves = False
    rule = "d sign(x)/dx = 0 (piecewise constant; 0 also at x = 0, as PyTorch)"
    template = ("0 * {g}",)

    @staticmethod
    def forward(xp, x):
        return xp.sign(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (xp.zeros_like(g),)

    @staticmethod
    def torch(x):
        return x.sign()


class Log1p(Function):
    rule = "d log1p(x)/dx = 1/(1 + x)"
    template = ("{g} / (1 + {x})",)

    @staticmethod
    def forward(xp, x):
        return xp.log1p(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (g / (xs[0] + 1),)

    @staticmethod
    def torch(x):
        return x.log1p()


class Expm1(Function):
    saves = False
    rule = "d expm1(x)/dx = exp(x) = expm1(x) + 1"
    template = ("{g} * ({out} + 1)",)

    @staticmethod
    def forward(xp, x):
        return xp.expm1(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (g * (out + 1),)

    @staticmethod
    def torch(x):
        return x.expm1()


class Sin(Function):
    rule = "d sin(x)/dx = cos(x)"
    template = ("{g} * cos({x})",)

    @staticmethod
    def forward(xp, x):
        return xp.sin(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (g * xp.cos(xs[0]),)

    @staticmethod
    def torch(x):
        return x.sin()


class Cos(Function):
    rule = "d cos(x)/dx = -sin(x)"
    template = ("-{g} * sin({x})",)

    @staticmethod
    def forward(xp, x):
        return xp.cos(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (-g * xp.sin(xs[0]),)

    @staticmethod
    def torch(x):
        return x.cos()


class Erf(Function):
    rule = "d erf(x)/dx = 2/sqrt(pi) * exp(-x^2)"
    template = ("{g} * 2 / sqrt(pi) * exp(-{x}**2)",)

    @staticmethod
    def forward(xp, x):
        return xp.erf(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        x = xs[0]
        return (g * (_TWO_OVER_SQRT_PI * xp.exp(-(x * x))),)

    @staticmethod
    def torch(x):
        return x.erf()


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
_SQRT1_2 = math.sqrt(0.5)
_ONE_OVER_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


class Relu(Function):
    rule = "d relu(x)/dx = 1[x > 0]"
    template = ("{g} * ({x} > 0)",)

    @staticmethod
    def forward(xp, x):
        return xp.maximum(x, 0)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (g * (out > 0),)

    @staticmethod
    def torch(x):
        return x.relu()


class Sigmoid(Function):
    symbol = "sigmoid"
    rule = "d sigmoid(x)/dx = s(x) * (1 - s(x))"
    template = ("{g} * {out} * (1 - {out})",)

    @staticmethod
    def forward(xp, x):
        return xp.sigmoid(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (g * (out * (1 - out)),)

    @staticmethod
    def torch(x):
        return x.sigmoid()


class Tanh(Function):
    rule = "d tanh(x)/dx = 1 - tanh(x)^2"
    template = ("{g} * (1 - {out}**2)",)

    @staticmethod
    def forward(xp, x):
        return xp.tanh(x)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        return (g * (1 - out * out),)

    @staticmethod
    def torch(x):
        return x.tanh()


# Activations. At a kink each takes PyTorch's one-sided derivative (tested there against
# torch, first and second order); the masks are constants of the graph.

class LeakyRelu(Function):
    name = "leaky_relu"
    rule = "d leaky_relu(x)/dx = 1 if x > 0 else negative_slope (also at 0)"
    template = ("{g} * where({x} > 0, 1, {negative_slope})",)

    @staticmethod
    def forward(xp, x, negative_slope):
        return xp.where(x > 0, x, x * negative_slope)

    @staticmethod
    def backward(xp, g, out, xs, needs, negative_slope):
        return (xp.where(xs[0] > 0, g, g * negative_slope),)

    @staticmethod
    def torch(x, negative_slope):
        return _torch().nn.functional.leaky_relu(x, negative_slope)

    @classmethod
    def label(cls, negative_slope):
        return f"leaky_relu({negative_slope:g})"


class Elu(Function):
    rule = "d elu(x)/dx = 1 if x > 0 else alpha * exp(x) = elu(x) + alpha (alpha at 0)"
    template = ("{g} * where({x} > 0, 1, {out} + {alpha})",)

    @staticmethod
    def forward(xp, x, alpha):
        # expm1 of min(x, 0): exact near 0, and no overflow in the discarded branch
        return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))

    @staticmethod
    def backward(xp, g, out, xs, needs, alpha):
        # At 0 the slope is alpha (a constant there, as PyTorch's second derivative says).
        x = xs[0]
        return (g * xp.where(x < 0, out + alpha, xp.where(x > 0, 1.0, alpha)),)

    @staticmethod
    def torch(x, alpha):
        return _torch().nn.functional.elu(x, alpha)

    @classmethod
    def label(cls, alpha):
        return "elu" if alpha == 1 else f"elu({alpha:g})"


def _sigmoid_of(v: float) -> float:
    """sigmoid of a Python number, without overflow for any sign."""
    if v >= 0:
        return 1 / (1 + math.exp(-v))
    e = math.exp(v)
    return e / (1 + e)


def _stable_softplus(xp: Any, x: Any) -> Any:
    """log(1 + exp(x)) without overflow: log1p(exp(-|x|)) + max(x, 0)."""
    return xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(x, 0)


class Softplus(Function):
    rule = ("d softplus(x)/dx = sigmoid(beta x), 1 where beta x > threshold "
            "(where the function is x itself)")
    template = ("{g} * sigmoid({beta} * {x})",)

    @staticmethod
    def forward(xp, x, beta, threshold):
        bx = x * beta
        return xp.where(bx > threshold, x, _stable_softplus(xp, bx) / beta)

    @staticmethod
    def backward(xp, g, out, xs, needs, beta, threshold):
        bx = xs[0] * beta
        # exactly at the threshold: sigmoid(threshold), constant (PyTorch's choice)
        edge = xp.where(bx > threshold, 1.0, _sigmoid_of(threshold))
        return (g * xp.where(bx < threshold, xp.sigmoid(bx), edge),)

    @staticmethod
    def torch(x, beta, threshold):
        return _torch().nn.functional.softplus(x, beta, threshold)

    @classmethod
    def label(cls, beta, threshold):
        return "softplus" if beta == 1 else f"softplus(beta={beta:g})"


class Gelu(Function):
    rule = ("d gelu(x)/dx = Phi(x) + x phi(x), Phi(x) = (1 + erf(x/sqrt 2))/2; tanh form: "
            "d/dx [x/2 (1 + tanh(k (x + 0.044715 x^3)))], k = sqrt(2/pi)")

    @staticmethod
    def forward(xp, x, approximate):
        if approximate == "tanh":
            return 0.5 * x * (1 + xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))))
        return x * 0.5 * (1 + xp.erf(x * _SQRT1_2))

    @staticmethod
    def backward(xp, g, out, xs, needs, approximate):
        x = xs[0]
        if approximate == "tanh":
            t = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x)))
            slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * (
                _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * (x * x)))
        else:
            slope = 0.5 * (1 + xp.erf(x * _SQRT1_2)) + x * (_ONE_OVER_SQRT_2PI * xp.exp(-0.5 * (x * x)))
        return (g * slope,)

    @classmethod
    def templates(cls, approximate):
        if approximate == "tanh":
            return ("{g} * d/dx [x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))] at {x}",)
        return ("{g} * (Phi({x}) + {x} * phi({x}))",)

    @staticmethod
    def torch(x, approximate):
        return _torch().nn.functional.gelu(x, approximate=approximate)

    @classmethod
    def label(cls, approximate):
        return "gelu" if approximate == "none" else f"gelu({approximate})"


class Relu6(Function):
    rule = "d relu6(x)/dx = 1[0 < x < 6] (0 at both kinks, as PyTorch)"
    template = ("{g} * ((0 < {x}) & ({x} < 6))",)

    @staticmethod
    def forward(xp, x):
        return xp.clip(x, 0, 6)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        x = xs[0]
        return (g * ((x > 0) * (x < 6)),)

    @staticmethod
    def torch(x):
        return _torch().nn.functional.relu6(x)


class Hardswish(Function):
    rule = "d hardswish(x)/dx = 0 if x <= -3, x/3 + 1/2 if -3 < x < 3, 1 if x >= 3"
    template = ("{g} * where({x} < 3, ({x} > -3) * ({x} / 3 + 0.5), 1)",)

    @staticmethod
    def forward(xp, x):
        return x * xp.clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(xp, g, out, xs, needs):
        x = xs[0]
        return (g * xp.where((x > -3) * (x < 3), x / 3 + 0.5, (x >= 3) * 1.0),)

    @staticmethod
    def torch(x):
        return _torch().nn.functional.hardswish(x)


class Mish(Function):
    rule = "d mish(x)/dx = t + x sigmoid(x) (1 - t^2), t = tanh(softplus(x))"
    template = ("{g} * (t + {x} * sigmoid({x}) * (1 - t**2)), t = tanh(softplus({x}))",)

    @staticmethod
    def forward(xp, x):
        return x * xp.tanh(_stable_softplus(xp, x))

    @staticmethod
    def backward(xp, g, out, xs, needs):
        x = xs[0]
        t = xp.tanh(_stable_softplus(xp, x))
        return (g * (t + x * xp.sigmoid(x) * (1 - t * t)),)

    @staticmethod
    def torch(x):
        return _torch().nn.functional.mish(x)


#: PyTorch's floor for p (1 - p) in the gradient: 1e-12 as a float32 (its C++ constant)
_BCE_EPSILON = float(np.float32(1e-12))


class BinaryCrossEntropy(Function):
    """Elementwise ``-(t log p + (1 - t) log(1 - p))`` with PyTorch's clamps: each log
    is at least -100 and the gradient's denominator p (1 - p) at least 1e-12, so
    p = 0 or 1 gives a finite loss and a finite gradient for p (the target's gradient,
    log(1 - p) - log(p), is infinite there, as PyTorch's)."""
    name = "binary_cross_entropy"
    symbol = "bce"
    rule = "d bce(p,t)/dp = (p - t) / max(p (1 - p), 1e-12), d/dt = log(1 - p) - log(p)"
    template = ("{g} * ({a} - {b}) / ({a} * (1 - {a}))", "{g} * (log(1 - {a}) - log({a}))")

    @staticmethod
    def forward(xp, p, t):
        return (t - 1) * xp.maximum(xp.log1p(-p), -100) - t * xp.maximum(xp.log(p), -100)

    @staticmethod
    def backward(xp, g, out, xs, needs):
        p, t = xs
        gp = g * (p - t) / xp.maximum((1 - p) * p, _BCE_EPSILON) if needs[0] else None
        gt = g * (xp.log1p(-p) - xp.log(p)) if needs[1] else None  # unclamped, as PyTorch
        return gp, gt

    @staticmethod
    def torch(p, t):
        return _torch().nn.functional.binary_cross_entropy(p, t, reduction="none")


class Clip(Function):
    rule = "d clip(x,lo,hi)/dx = 1[lo <= x <= hi]"
    template = ("sum_to({g} * (({x} >= {min}) & ({x} <= {max})))",)

    @staticmethod
    def forward(xp, x, min, max):
        return xp.clip(x, min, max)

    @staticmethod
    def backward(xp, g, out, xs, needs, min, max):
        # Bounds may be arrays that broadcast x to a bigger shape: the mask broadcasts
        # the same way and the engine sums the gradient back to x's shape.
        (x,) = xs
        inside = g
        if min is not None:
            inside = inside * (x >= min)
        if max is not None:
            inside = inside * (x <= max)
        return (inside,)

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
    saves = False
    rule = "d x.astype(t)/dx = 1"
    template = ("{g}",)

    @staticmethod
    def forward(xp, x, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(xp, g, out, xs, needs, dtype):
        return (g.astype(xs[0].dtype),)

    @staticmethod
    def torch(x, dtype):
        return x.to(getattr(_torch(), np.dtype(dtype).name))


# ----------------------------------------------------------------- reductions

class Sum(Function):
    saves = False
    rule = "d sum(x)/dx = 1 (g broadcast back over the summed axes)"
    template = ("{g:spread}",)

    @staticmethod
    def forward(xp, x, axis, keepdims):
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(xp, g, out, xs, needs, axis, keepdims):
        x = xs[0]
        return (xp.spread(_keep(x, axis, keepdims, g), x.shape),)

    @staticmethod
    def torch(x, axis, keepdims):
        if _no_axes(axis):
            return x.clone()
        return x.sum(dim=axis, keepdim=keepdims) if axis is not None else \
            (x.sum().reshape((1,) * x.ndim) if keepdims else x.sum())


def _count(x: Any, out: Any) -> int:
    """How many elements of ``x`` each element of the reduction ``out`` averages."""
    return x.size // max(out.size, 1) if x.size else 0


class Mean(Function):
    saves = False
    rule = "d mean(x)/dx = 1/n (g broadcast back over the averaged axes)"
    template = ("{g:spread} / {n}",)

    @staticmethod
    def forward(xp, x, axis, keepdims):
        if x.dtype.kind == "f" and x.dtype.itemsize >= 4 and 0 < x.size < 1 << 24:
            # what np.mean computes for float32/64 (sum, then divide; the count is exact
            # in float32 below 2**24), without its wrapper, which costs more than the
            # sum at small sizes
            out = x.sum(axis=axis, keepdims=keepdims)
            return out / _count(x, out)
        return x.mean(axis=axis, keepdims=keepdims)  # float16 accumulates in float32; ints

    @staticmethod
    def backward(xp, g, out, xs, needs, axis, keepdims):
        x = xs[0]
        return (xp.spread(_keep(x, axis, keepdims, g) / _count(x, out), x.shape),)

    @staticmethod
    def torch(x, axis, keepdims):
        if _no_axes(axis):
            return x.clone()
        return x.mean(dim=axis, keepdim=keepdims) if axis is not None else \
            (x.mean().reshape((1,) * x.ndim) if keepdims else x.mean())


class Std(Function):
    rule = "d std(x)/dx = (x - mean(x)) / ((n - ddof) * std(x)), 0 where std(x) = 0"
    template = ("{g:spread} * ({x} - mean({x})) / (({n} - {ddof}) * {out})",)

    @staticmethod
    def forward(xp, x, axis, keepdims, ddof):
        return x.std(axis=axis, keepdims=keepdims, ddof=ddof)

    @staticmethod
    def backward(xp, g, out, xs, needs, axis, keepdims, ddof):
        # Where the deviation is 0 (a constant row, one element) the gradient is 0, as
        # PyTorch and HIPS autograd define it; the safe denominator keeps 0/0 out of
        # the arithmetic, so gradients of this gradient stay finite too.
        x = xs[0]
        freedom = _count(x, out) - ddof
        if freedom <= 0:  # the value is inf or nan: its gradient nan (as torch's)
            return (_keep(x, axis, keepdims, g) * (x - x) * math.nan,)
        s = _keep(x, axis, keepdims, out)
        flat = s == 0
        scale = _keep(x, axis, keepdims, g) * (1 - flat) / (freedom * xp.where(flat, 1.0, s))
        return (scale * (x - x.mean(axis=axis, keepdims=True)),)

    @staticmethod
    def torch(x, axis, keepdims, ddof):
        if _no_axes(axis):
            return x * 0
        return _torch().std(x, dim=axis, correction=ddof, keepdim=keepdims)


class Max(Function):
    rule = "d max(x)/dx = 1[x == max] / (number of ties)"
    template = ("{g:spread} * ({x} == max({x})) / ties",)

    @staticmethod
    def forward(xp, x, axis, keepdims):
        return x.max(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(xp, g, out, xs, needs, axis, keepdims):
        # The gradient is split evenly among tied extrema, as torch.amax/amin do.
        x = xs[0]
        hit = x == _keep(x, axis, keepdims, out)
        share = hit / hit.sum(axis=axis, keepdims=True)
        return (_keep(x, axis, keepdims, g) * share,)

    @staticmethod
    def torch(x, axis, keepdims):
        if _no_axes(axis):
            return x.clone()
        return _torch().amax(x, dim=() if axis is None else axis, keepdim=keepdims)


class Min(Max):
    rule = "d min(x)/dx = 1[x == min] / (number of ties)"
    template = ("{g:spread} * ({x} == min({x})) / ties",)

    @staticmethod
    def forward(xp, x, axis, keepdims):
        return x.min(axis=axis, keepdims=keepdims)

    @staticmethod
    def torch(x, axis, keepdims):
        if _no_axes(axis):
            return x.clone()
        return _torch().amin(x, dim=() if axis is None else axis, keepdim=keepdims)


def _reduced_axes(x: Any, axis: Any) -> tuple:
    """The axes a reduction over ``axis`` (None, an int or a tuple) removes, sorted and
    non-negative (none for a 0-d ``x``: NumPy reduces it over axis 0 or -1 too)."""
    if x.ndim == 0:
        return ()
    if axis is None:
        return tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(sorted(int(a) % x.ndim for a in axes))


def _products_of_others(xp: Any, x: Any, axis: Any) -> Any:
    """For each element of ``x``, the product of the other elements of its slice over
    the reduced axes: the exclusive products from the left times those from the right.
    No division, so any number of zeros is exact, and only products, so gradients of
    it (``create_graph``) are exact too."""
    reduced = _reduced_axes(x, axis)
    if not reduced or x.size == 0:
        return xp.zeros_like(x) + 1  # a slice of one element: the empty product
    order = [i for i in range(x.ndim) if i not in reduced] + list(reduced)
    moved = xp.transpose(x, tuple(order))
    rows = moved.reshape(moved.shape[:x.ndim - len(reduced)] + (-1,))
    n = rows.shape[-1]
    one = xp.zeros_like(rows[..., :1]) + 1
    left = xp.cumprod(xp.concatenate([one, rows[..., :n - 1]], axis=-1), axis=-1)
    right = xp.cumprod(xp.concatenate([one, xp.flip(rows, -1)[..., :n - 1]], axis=-1), axis=-1)
    others = (left * xp.flip(right, -1)).reshape(moved.shape)
    return xp.transpose(others, tuple(np.argsort(order).tolist()))


class Prod(Function):
    rule = "d prod(x)/dx_i = the product of the other elements (exact with zeros: no division)"
    template = ("{g:spread} * prod_of_the_others({x})",)

    @staticmethod
    def forward(xp, x, axis, keepdims):
        return x.prod(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(xp, g, out, xs, needs, axis, keepdims):
        x = xs[0]
        return (_keep(x, axis, keepdims, g) * _products_of_others(xp, x, axis),)

    @staticmethod
    def torch(x, axis, keepdims):
        if axis is None:
            out = x.prod()
            return out.reshape((1,) * x.ndim) if keepdims else out
        for a in reversed(_reduced_axes(x, axis)):  # torch.prod takes one dim at a time
            x = x.prod(dim=a, keepdim=keepdims)
        return x


def _onehot(labels: np.ndarray, shape: tuple, dtype: Any) -> np.ndarray:
    """Zeros of ``shape`` with a 1 at ``[i, labels[i]]`` in every row (a constant).
    A comparison, not a write at ``labels``: traced labels (``tl.compile``) record it."""
    return (labels[:, None] == np.arange(shape[1])).astype(dtype)


class SoftmaxCrossEntropy(Function):
    """cs231n's softmax loss of (N, C) scores against integer labels, as one gate: its
    backward is the notes' own result, not a chain of local rules."""
    name = "softmax_cross_entropy"
    symbol = "softmax CE"
    rule = "d CE(s, y)/ds = (softmax(s) - onehot(y)) / N (g / N for the mean over N rows)"
    template = ("{g} * (softmax({x}) - onehot(y)) / N",)

    @classmethod
    def templates(cls, labels, reduction):
        if reduction == "sum":
            return ("{g} * (softmax({x}) - onehot(y))",)
        if reduction == "none":  # one loss, so one gradient, per row
            return ("{g}[:, None] * (softmax({x}) - onehot(y))",)
        return cls.template

    @staticmethod
    def forward(xp, s, labels, reduction):
        # log sum_j exp(s_j) - s_y, each row shifted by its max (no overflow for scores
        # of 1e4; a row holding inf gives nan, as PyTorch's)
        shifted = s - s.max(axis=1, keepdims=True)
        per_row = xp.log(xp.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels]
        if reduction == "mean":  # sum / N is what np.mean computes, without its wrapper
            return per_row.sum() / len(labels) if s.dtype.itemsize >= 4 else per_row.mean()
        return per_row.sum() if reduction == "sum" else per_row

    @staticmethod
    def backward(xp, g, out, xs, needs, labels, reduction):
        s = xs[0]
        e = xp.exp(s - s.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        scale = g / len(labels) if reduction == "mean" else \
            g if reduction == "sum" else g.reshape((len(labels), 1))
        return ((probs - _onehot(labels, s.shape, s.dtype)) * scale,)

    @staticmethod
    def torch(s, labels, reduction):
        torch = _torch()
        return torch.nn.functional.cross_entropy(
            s, torch.as_tensor(labels.astype(np.int64)), reduction=reduction)


class LogSumExp(Function):
    name = "logsumexp"
    rule = "d logsumexp(x)/dx = softmax(x) = exp(x - logsumexp(x)) (over the reduced axes)"
    template = ("{g:spread} * softmax({x})",)

    @staticmethod
    def forward(xp, x, axis, keepdims):
        # Shifted by the max, a constant that changes neither the value nor the
        # gradient, so exp never overflows (scores of 1e4 are fine). An infinite max
        # is not subtracted (inf - inf is nan): the row's result is that infinity.
        if not x.size:  # a sum over nothing is 0, its log -inf (as torch), without a warning
            with np.errstate(divide="ignore"):
                return xp.log(xp.exp(x).sum(axis=axis, keepdims=keepdims))
        m = x.max(axis=axis, keepdims=True)
        m = xp.where(xp.abs(m) < math.inf, m, 0.0)
        total = xp.exp(x - m).sum(axis=axis, keepdims=keepdims)
        return xp.log(total) + (m if keepdims else m.reshape(total.shape))

    @staticmethod
    def backward(xp, g, out, xs, needs, axis, keepdims):
        x = xs[0]
        return (_keep(x, axis, keepdims, g) * xp.exp(x - _keep(x, axis, keepdims, out)),)

    @staticmethod
    def torch(x, axis, keepdims):
        if x.ndim == 0 or _no_axes(axis):
            return x.clone()
        dims = tuple(range(x.ndim)) if axis is None else axis
        return _torch().logsumexp(x, dim=dims, keepdim=keepdims)


class Cumsum(Function):
    saves = False
    rule = "d cumsum(x)/dx_i = the sum of g from i to the end (g cumsummed in reverse)"
    template = ("flip(cumsum(flip({g})))",)

    @staticmethod
    def forward(xp, x, axis):
        return xp.cumsum(x, axis=axis)

    @staticmethod
    def backward(xp, g, out, xs, needs, axis):
        if axis is None:  # NumPy's cumsum runs over the flattened array
            return (xp.flip(xp.cumsum(xp.flip(g, 0), axis=0), 0).reshape(xs[0].shape),)
        return (xp.flip(xp.cumsum(xp.flip(g, axis), axis=axis), axis),)

    @staticmethod
    def torch(x, axis):
        return x.reshape(-1).cumsum(0) if axis is None else x.cumsum(axis)


# ----------------------------------------------------------------- shape and indexing

class Reshape(Function):
    rule = "d reshape(x)/dx: g reshaped back to x's shape"
    template = ("{g}.reshape({x.shape})",)

    @staticmethod
    def forward(xp, x, shape):
        return x.reshape(shape)

    @staticmethod
    def backward(xp, g, out, xs, needs, shape):
        return (g.reshape(xs[0].shape),)

    @staticmethod
    def torch(x, shape):
        return x.reshape(shape)


class Transpose(Function):
    symbol = "T"
    rule = "d transpose(x)/dx: g transposed back (inverse permutation)"
    template = ("{g}.T",)

    @staticmethod
    def forward(xp, x, axes):
        return xp.transpose(x, axes)

    @staticmethod
    def backward(xp, g, out, xs, needs, axes):
        if axes is None:
            return (xp.transpose(g, None),)
        # Negative axes (x.transpose(-1, 0)) are normalised first, or argsort inverts
        # the wrong permutation.
        return (xp.transpose(g, tuple(np.argsort([a % g.ndim for a in axes]).tolist())),)

    @classmethod
    def templates(cls, axes):
        return cls.template if axes is None else ("transpose({g}, argsort([{axes}]))",)

    @staticmethod
    def torch(x, axes):
        # One tuple argument: permute() with no arguments fails on a 0-d tensor.
        return x.permute(tuple(axes if axes is not None else range(x.ndim - 1, -1, -1)))


class BroadcastTo(Function):
    name = "broadcast_to"
    symbol = "expand"
    rule = "d broadcast_to(x)/dx: g summed back over the broadcast axes"
    template = ("sum_to({g})",)

    @staticmethod
    def forward(xp, x, shape):
        return xp.broadcast_to(x, shape)

    @staticmethod
    def backward(xp, g, out, xs, needs, shape):
        return (g,)  # the engine sums it back to x's shape

    @staticmethod
    def torch(x, shape):
        return x.expand(shape)


class Flip(Function):
    rule = "d flip(x)/dx = g flipped back along the same axes"
    template = ("flip({g})",)

    @staticmethod
    def forward(xp, x, axis):
        return xp.flip(x, axis)

    @staticmethod
    def backward(xp, g, out, xs, needs, axis):
        return (xp.flip(g, axis),)

    @staticmethod
    def torch(x, axis):
        dims = range(x.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
        return x.flip(tuple(dims))


class Pad(Function):
    saves = False
    rule = "d pad(x)/dx: the middle of g (the padding is a constant: no gradient)"
    template = ("{g}[the middle: the padding gets none]",)

    @staticmethod
    def forward(xp, x, pad_width, value):
        return xp.pad(x, pad_width, constant_values=value)

    @staticmethod
    def backward(xp, g, out, xs, needs, pad_width, value):
        return (g[tuple(slice(before, before + n)
                        for (before, _), n in zip(pad_width, xs[0].shape))],)

    @staticmethod
    def torch(x, pad_width, value):
        flat = [n for pair in reversed(pad_width) for n in pair]  # torch: last axis first
        return _torch().nn.functional.pad(x, flat, value=value) if flat else x.clone()

    @classmethod
    def label(cls, pad_width, value):
        return "pad" if value == 0 else f"pad({value:g})"


def _torch_index(x: Any, index: Any) -> Any:
    """``index`` (a NumPy index) as torch indexing of ``x`` picks the same elements in
    the same order and shape as NumPy does."""
    torch = _torch()
    parts = index if isinstance(index, tuple) else (index,)
    advanced = [i for i, p in enumerate(parts) if isinstance(p, np.ndarray) or is_integer(p)]
    separated = len(advanced) > 1 and any(
        not isinstance(p, (np.ndarray, int, np.integer)) for p in parts[advanced[0]:advanced[-1]])
    negative_step = any(isinstance(p, slice) and p.step is not None and p.step < 0 for p in parts)
    has_array = any(isinstance(p, np.ndarray) for p in parts)
    if negative_step or (separated and has_array):
        # torch has no negative steps, and when integer/array indices are separated by a
        # slice torch orders the result's axes differently from NumPy: gather the flat
        # positions NumPy picks (a copy) instead.
        pos = np.array(np.arange(x.numel()).reshape(tuple(x.shape))[index])
        return x.reshape(-1)[torch.as_tensor(pos)]
    # Integer indices go over as int64: torch reads a uint8 index as a boolean mask.
    parts = tuple((torch.as_tensor(p.astype(np.int64) if p.dtype.kind in "iu" else p))
                  if isinstance(p, np.ndarray) else p for p in parts)
    return x[parts if isinstance(index, tuple) else parts[0]]


class Getitem(Function):
    symbol = "[]"
    rule = "d x[i]/dx: g scattered back to the picked places (repeats add up)"
    template = ("scatter_add({g}, {x.shape}, [{index}])",)

    @staticmethod
    def forward(xp, x, index):
        return x[index]

    @staticmethod
    def backward(xp, g, out, xs, needs, index):
        return (xp.scatter_add(g, xs[0].shape, index),)

    @staticmethod
    def torch(x, index):
        return _torch_index(x, index)


class ScatterAdd(Function):
    """Getitem's backward as an op of its own, so it can be differentiated again."""
    name = "scatter_add"
    symbol = "scatter"
    saves = False
    rule = "d scatter_add(g, i)/dg = the picked places of the gradient, g2[i]"
    template = ("{g}[{index}]",)

    @staticmethod
    def forward(xp, g, shape, index):
        return xp.scatter_add(g, shape, index)

    @staticmethod
    def backward(xp, g, out, xs, needs, shape, index):
        return (g[index],)

    @staticmethod
    def torch(g, shape, index):
        torch = _torch()
        flat = torch.as_tensor(np.array(np.arange(math.prod(shape)).reshape(shape)[index]))
        out = torch.zeros(math.prod(shape), dtype=g.dtype)
        return out.index_add(0, flat.reshape(-1), g.reshape(-1)).reshape(shape)


class Concatenate(Function):
    symbol = "concat"
    saves = False
    rule = "d concat(xs)/dx_i: the slice of g that x_i filled"
    template = ("{g}[the slice input {i} filled along axis {axis}]",)

    @staticmethod
    def forward(xp, *xs, axis):
        return xp.concatenate(xs, axis=axis)

    @staticmethod
    def backward(xp, g, out, xs, needs, axis):
        axis = axis % g.ndim
        grads, start = [], 0
        for x, need in zip(xs, needs):
            stop = start + x.shape[axis]
            grads.append(g[(slice(None),) * axis + (slice(start, stop),)] if need else None)
            start = stop
        return grads

    @staticmethod
    def torch(*ts, axis):
        return _torch().cat(ts, dim=axis)


class Stack(Function):
    saves = False
    rule = "d stack(xs)/dx_i = g[..., i, ...] along the new axis"
    template = ("{g}.take({i}, axis={axis})",)

    @staticmethod
    def forward(xp, *xs, axis):
        return xp.stack(xs, axis=axis)

    @staticmethod
    def backward(xp, g, out, xs, needs, axis):
        axis = axis % g.ndim
        return [g[(slice(None),) * axis + (i,)] if need else None
                for i, need in enumerate(needs)]

    @staticmethod
    def torch(*ts, axis):
        return _torch().stack(ts, dim=axis)
