"""The op-table test factory: every primitive in ``tinygrad_lite.ops.OPS`` (and the
composites of ``functional.py``) against central differences and against PyTorch.

Each op has a *case generator* in ``SPECS`` below, keyed by op name: given
hypothesis' ``draw`` it returns the input arrays, how each is passed (a Tensor
that requires grad, a constant Tensor, a plain ndarray or a Python number) and
the function to differentiate. Inputs are kept away from kinks and domain edges
(relu/abs at 0, log/sqrt near 0, ties in max/min/maximum, clip bounds), so
central differences are meaningful there; ties and bounds are checked against
PyTorch separately at the end of this file. ``test_every_op_has_a_spec`` fails
when an op is added to the table without a spec here.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import tinygrad_lite as tl
from tinygrad_lite.functional import COMPOSITES as COMPOSITE_FUNCTIONS
from tinygrad_lite.gradcheck import elementwise_errors
from tinygrad_lite.ops import OPS

from conftest import OP_STATS

try:
    import torch  # noqa: F401
    from tinygrad_lite.torch_replay import replay_in_torch, torch_gradients
    HAVE_TORCH = True
except ImportError:  # the oracle is optional: its tests skip
    HAVE_TORCH = False

NUM_REL, NUM_ABS = 1e-6, 1e-8      # central differences: rel_error, or absolute for tiny entries
TORCH_REL, TORCH_ABS = 1e-9, 1e-12  # PyTorch replays the same float64 math
H = 1e-6                            # central-difference step

#: the library's composites (functional.py's @composite functions): each needs a spec too
COMPOSITES = {n for n, f in COMPOSITE_FUNCTIONS.items() if f.__module__.startswith("tinygrad_lite.")}


# ----------------------------------------------------------------- the case table

@dataclass
class Case:
    arrays: list            # float64 (or label) arrays, one per operand
    kinds: list             # per operand: "grad" | "const" | "array" | "number" | "labels"
    fn: Callable            # fn(*operands) -> Tensor
    desc: str = ""
    extra: dict = field(default_factory=dict)


SPECS: dict[str, Callable[[Any], Case]] = {}


def spec(*names: str):
    def register(builder):
        for n in names:
            SPECS[n] = (lambda b, name: (lambda draw: b(draw, name)))(builder, n)
        return builder
    return register


SHAPE = array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)


def rng_of(draw) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def away(rng, shape, lo=0.2, hi=2.0):
    """Values with lo <= |v| <= hi and a random sign: away from 0."""
    return rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


def grid(rng, shape, offset=0.0):
    """Multiples of 0.5 plus ``offset`` plus a little noise: two grids 0.25 apart never tie."""
    return rng.integers(-4, 5, shape) * 0.5 + offset + rng.uniform(-0.05, 0.05, shape)


def distinct(rng, shape):
    """All entries distinct, at least 0.15 apart: no ties anywhere for max/min."""
    n = int(np.prod(shape, dtype=int))
    v = rng.permutation(n) * 0.25 - n * 0.125 + rng.uniform(-0.05, 0.05, n)
    return v.reshape(shape)


def kinds_for(draw, n: int, number_ok=(True,) * 8, array_ok: bool = True) -> list:
    """How each of n operands is passed; at least one requires grad."""
    options = ["grad", "const"] + (["array"] if array_ok else [])
    kinds = [draw(st.sampled_from(options + (["number"] if number_ok[i] else [])))
             for i in range(n)]
    if "grad" not in kinds:
        kinds[draw(st.integers(0, n - 1))] = "grad"
    return kinds


BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b}
# the same operators under PyTorch's method names and NumPy's function names
SPELLED = {"add": [lambda a, b: a.add(b), lambda a, b: tl.add(a, b)],
           "sub": [lambda a, b: a.sub(b), lambda a, b: tl.subtract(a, b), lambda a, b: tl.sub(a, b)],
           "mul": [lambda a, b: a.mul(b), lambda a, b: tl.multiply(a, b)],
           "div": [lambda a, b: a.div(b), lambda a, b: tl.divide(a, b)]}
EXTREMA = {"maximum": [lambda x, y: tl.maximum(x, y), lambda x, y: x.maximum(y)],
           "minimum": [lambda x, y: tl.minimum(x, y), lambda x, y: x.minimum(y)]}


@spec("add", "sub", "mul", "div", "maximum", "minimum")
def _binary(draw, name):
    rng = rng_of(draw)
    (sa, sb), _ = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
    kinds = kinds_for(draw, 2, number_ok=(sa == (), sb == ()))
    if name in EXTREMA:
        a, b = grid(rng, sa), grid(rng, sb, offset=0.25)
        fn = draw(st.sampled_from(EXTREMA[name]))
    else:
        a = rng.uniform(-2, 2, sa)
        b = away(rng, sb, 0.5, 2.0) if name == "div" else rng.uniform(-2, 2, sb)
        fn = BINARY[name]
    if kinds[0] in ("array", "number"):
        # np.maximum(arr, t) is NumPy's, not ours (tl.maximum covers it); 2.0.add(t) is no call
        if name in EXTREMA:
            kinds[0] = "const"
    elif name in SPELLED and draw(st.booleans()):
        fn = draw(st.sampled_from(SPELLED[name]))
    return Case([a, b], kinds, fn, f"{sa} {name} {sb}")


@spec("power")
def _power(draw, name):
    rng = rng_of(draw)
    (sa, sb), _ = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
    form = draw(st.sampled_from(["tensors", "number_base", "negative_base", "array_exponent"]))
    style = draw(st.sampled_from(["**", "pow", "tl.power", "tl.pow"]))
    fn = {"**": lambda a, b: a ** b, "pow": lambda a, b: a.pow(b) if isinstance(a, tl.Tensor) else a ** b,
          "tl.power": tl.power, "tl.pow": tl.pow}[style]
    if form == "number_base":  # 2 ** x (any positive base; 0 and negative ones: test_power_*)
        base = draw(st.sampled_from([0.5, 2.0, 3.7, np.e]))
        return Case([np.array(base), rng.uniform(-2, 2, sb)], ["number", "grad"], fn,
                    f"{base} {style} {sb}")
    if form == "negative_base":  # integer exponents: real powers (d/d exponent is nan there)
        a, b = -rng.uniform(0.3, 2.0, sa), rng.integers(-2, 4, sb).astype(np.float64)
        return Case([a, b], ["grad", draw(st.sampled_from(["const", "array"]))], fn,
                    f"negative {sa} {style} integers {sb}")
    a, b = rng.uniform(0.3, 2.5, sa), rng.uniform(-2, 2, sb)
    kinds = ["grad", "array"] if form == "array_exponent" else kinds_for(draw, 2, (False, False))
    return Case([a, b], kinds, fn, f"{sa} {style} {sb} ({kinds})")


@spec("where")
def _where(draw, name):
    rng = rng_of(draw)
    (sc, sa, sb), _ = draw(mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3))
    cond = rng.random(sc) < 0.5
    cond_as = draw(st.sampled_from(["array", "tensor", "list"]))
    c = {"array": cond, "tensor": tl.Tensor(cond), "list": cond.tolist()}[cond_as]
    kinds = kinds_for(draw, 2, number_ok=(sa == (), sb == ()))
    return Case([rng.uniform(-2, 2, sa), rng.uniform(-2, 2, sb)], kinds,
                lambda a, b: tl.where(c, a, b), f"where({sc} as {cond_as}, {sa}, {sb})")


@spec("matmul")
def _matmul(draw, name):
    rng = rng_of(draw)
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    form = draw(st.sampled_from(["1d@1d", "1d@2d", "2d@1d", "2d@2d", "batched", "1d@batched",
                                 "batched@1d"]))
    (ba, bb), _ = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3))
    sa = {"1d@1d": (k,), "1d@2d": (k,), "2d@1d": (n, k), "2d@2d": (n, k), "batched": ba + (n, k),
          "1d@batched": (k,), "batched@1d": ba + (n, k)}[form]
    sb = {"1d@1d": (k,), "1d@2d": (k, m), "2d@1d": (k,), "2d@2d": (k, m), "batched": bb + (k, m),
          "1d@batched": bb + (k, m), "batched@1d": (k,)}[form]
    kinds = kinds_for(draw, 2, number_ok=(False, False))
    return Case([rng.uniform(-2, 2, sa), rng.uniform(-2, 2, sb)], kinds, lambda a, b: a @ b,
                f"{form}: {sa} @ {sb}")


def off_kinks(rng, shape, lo, hi, kinks, gap=0.1):
    """Uniform values in [lo, hi] at least ``gap`` away from each kink."""
    x = rng.uniform(lo, hi, shape)
    for k in kinks:
        near = np.abs(x - k) < gap
        x = np.where(near, k + np.where(x >= k, gap, -gap) * 1.5, x)
    return x


UNARY = {
    "neg": (lambda rng, s: rng.uniform(-2, 2, s), lambda x: -x),
    "exp": (lambda rng, s: rng.uniform(-3, 3, s), lambda x: x.exp()),
    "log": (lambda rng, s: rng.uniform(0.3, 3, s), lambda x: x.log()),
    "sqrt": (lambda rng, s: rng.uniform(0.3, 3, s), lambda x: x.sqrt()),
    "abs": (lambda rng, s: away(rng, s), lambda x: abs(x)),
    "relu": (lambda rng, s: away(rng, s), lambda x: x.relu()),
    "sigmoid": (lambda rng, s: rng.uniform(-4, 4, s), lambda x: x.sigmoid()),
    "tanh": (lambda rng, s: rng.uniform(-3, 3, s), lambda x: x.tanh()),
    "sign": (lambda rng, s: away(rng, s), lambda x: x.sign()),
    "sin": (lambda rng, s: rng.uniform(-4, 4, s), lambda x: x.sin()),
    "cos": (lambda rng, s: rng.uniform(-4, 4, s), lambda x: x.cos()),
    "log1p": (lambda rng, s: rng.uniform(-0.7, 3, s), lambda x: x.log1p()),
    "expm1": (lambda rng, s: rng.uniform(-3, 3, s), lambda x: x.expm1()),
    "erf": (lambda rng, s: rng.uniform(-3, 3, s), lambda x: x.erf()),
    "relu6": (lambda rng, s: off_kinks(rng, s, -2, 8, (0, 6)), lambda x: x.relu6()),
    "hardswish": (lambda rng, s: off_kinks(rng, s, -5, 5, (-3, 3)), lambda x: x.hardswish()),
    "mish": (lambda rng, s: rng.uniform(-5, 5, s), lambda x: x.mish()),
}
FREE = {n: getattr(tl, n) for n in UNARY if n != "neg"}
FREE["neg"] = tl.negative


@spec(*UNARY)
def _unary(draw, name):
    rng = rng_of(draw)
    shape = draw(SHAPE)
    make, fn = UNARY[name]
    if name in FREE and draw(st.booleans()):
        fn = FREE[name]  # tl.exp(t) is t.exp()
    return Case([make(rng, shape)], ["grad"], fn, f"{name}{shape}")


@spec("leaky_relu", "elu", "softplus", "gelu")
def _activation(draw, name):
    rng = rng_of(draw)
    shape = draw(SHAPE)
    style = draw(st.sampled_from(["method", "tl", "F"]))
    call = {"method": lambda t, *a: getattr(t, name)(*a), "tl": lambda t, *a: getattr(tl, name)(t, *a),
            "F": lambda t, *a: getattr(tl.nn.functional, name)(t, *a)}[style]
    if name == "leaky_relu":
        args = (draw(st.sampled_from([0.01, 0.1, 0.2, -0.5, 1.5])),)
        x = away(rng, shape, 0.05, 3.0)
    elif name == "elu":
        args = (draw(st.sampled_from([1.0, 0.5, 2.0])),)
        x = away(rng, shape, 0.05, 3.0)
    elif name == "softplus":
        beta, threshold = draw(st.sampled_from([1.0, 2.0, 0.5, -1.0])), draw(st.sampled_from([20.0, 1.0, 3.0]))
        args = (beta, threshold)
        x = off_kinks(rng, shape, -5, 5, (threshold / beta,), gap=0.1 / abs(beta))
    else:
        args = (draw(st.sampled_from(["none", "tanh"])),)
        x = rng.uniform(-4, 4, shape)
    return Case([x], ["grad"], lambda t: call(t, *args), f"{name}{shape} {args} ({style})")


@spec("pow")
def _pow(draw, name):
    rng = rng_of(draw)
    shape = draw(SHAPE)
    p = draw(st.sampled_from([2, 3, -1, -2, 0, 1, 0.5, -0.5, 1.5, 2.5, 2.0]))
    x = rng.uniform(0.3, 2.5, shape) if float(p) != int(p) else away(rng, shape, 0.3, 2.0)
    if p == 2 and draw(st.booleans()):  # square is pow 2: one gate, "**2"
        return Case([x], ["grad"], draw(st.sampled_from([lambda t: t.square(), tl.square])),
                    f"square{shape}")
    return Case([x], ["grad"], lambda t: t ** p, f"{shape} ** {p!r}")


@spec("clip")
def _clip(draw, name):
    rng = rng_of(draw)
    shape = draw(SHAPE)
    lo, hi = sorted(draw(st.lists(st.sampled_from([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0]), min_size=2,
                                  max_size=2)))
    which = draw(st.sampled_from(["both", "min", "max", "arrays"]))
    lo, hi = (lo, hi) if which in ("both", "arrays") else (lo, None) if which == "min" else (None, hi)
    if which == "arrays":  # np.clip takes per-entry bounds too
        lo = rng.integers(-3, 1, shape) * 0.5
        hi = lo + rng.integers(0, 4, shape) * 0.5
    x = grid(rng, shape, offset=0.25)  # the bounds are on the 0.5 grid: never hit
    style = draw(st.booleans())
    fn = (lambda t: t.clip(lo, hi)) if style else (lambda t: tl.clip(t, min=lo, max=hi))
    return Case([x], ["grad"], fn, f"clip({shape}, {lo}, {hi})")


@spec("cast")
def _cast(draw, name):
    rng = rng_of(draw)
    shape = draw(SHAPE)
    dtype = draw(st.sampled_from([np.float64, "float64", np.dtype("f8")]))
    # float64 -> float32 -> float64 is checked against PyTorch in test_cast_float32_vs_torch.
    return Case([rng.uniform(-2, 2, shape)], ["grad"], lambda t: t.astype(dtype) * 1.0,
                f"{shape}.astype({dtype!r})")


def draw_axis(draw, ndim: int):
    """None, an int, or a tuple (maybe empty, unordered, negative) of distinct axes: NumPy's forms."""
    if ndim == 0:
        return draw(st.sampled_from([None, ()]))
    form = draw(st.sampled_from(["none", "int", "tuple", "list"]))
    if form == "none":
        return None
    if form == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    axes = [a - ndim if draw(st.booleans()) else a for a in axes]
    return tuple(axes) if form == "tuple" else axes


@spec("sum", "mean", "max", "min", "logsumexp", "prod")
def _reduce(draw, name):
    rng = rng_of(draw)
    shape = draw(SHAPE)
    axis = draw_axis(draw, len(shape))
    keepdims = draw(st.booleans())
    x = distinct(rng, shape) if name in ("max", "min") else rng.uniform(-2, 2, shape)
    fn = lambda t: getattr(t, name)(axis=axis, keepdims=keepdims)  # noqa: E731
    if name == "prod":  # zeros: none, one, or several in a slice (prod is multilinear:
        x = rng.uniform(-1.5, 1.5, shape)  # central differences stay exact at zeros)
        x.flat[rng.permutation(x.size)[:draw(st.integers(0, 3))]] = 0.0
    if name in ("logsumexp", "prod") and draw(st.booleans()):
        fn = lambda t: getattr(tl, name)(t, axis, keepdims)  # noqa: E731
    return Case([x], ["grad"], fn, f"{shape}.{name}(axis={axis}, keepdims={keepdims}) {x.ravel()}")


@spec("cumsum")
def _cumsum(draw, name):
    rng = rng_of(draw)
    shape = draw(SHAPE)
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1))) if shape else None
    style = draw(st.sampled_from(["axis", "dim", "tl"]))
    if style == "dim" and axis is None:
        style = "axis"
    fn = {"axis": lambda t: t.cumsum(axis=axis), "dim": lambda t: t.cumsum(dim=axis),
          "tl": lambda t: tl.cumsum(t, axis)}[style]
    return Case([rng.uniform(-2, 2, shape)], ["grad"], fn, f"{shape}.cumsum({axis}) ({style})")


@spec("flip")
def _flip(draw, name):
    rng = rng_of(draw)
    shape = draw(SHAPE)
    nd = len(shape)
    axes = draw(st.lists(st.integers(-nd, nd - 1), unique_by=lambda a: a % nd, max_size=nd)) if nd else []
    style = draw(st.sampled_from(["all", "star", "tuple", "axis", "tl"]))
    if not axes and style in ("star", "tuple"):
        style = "all"
    fn = {"all": lambda t: t.flip(), "star": lambda t: t.flip(*axes), "tuple": lambda t: t.flip(tuple(axes)),
          "axis": lambda t: t.flip(axis=axes[0] if len(axes) == 1 else (tuple(axes) or None)),
          "tl": lambda t: tl.flip(t, axis=tuple(axes) or None)}[style]
    return Case([rng.uniform(-2, 2, shape)], ["grad"], lambda t: fn(t) * np.arange(1.0, 1.0 + max(
        int(np.prod(shape, dtype=int)), 1)).reshape(shape), f"{shape}.flip({axes}) ({style})")


@spec("pad")
def _pad(draw, name):
    rng = rng_of(draw)
    shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    nd = len(shape)
    value = draw(st.sampled_from([0.0, 1.5, -2.0]))
    form = draw(st.sampled_from(["int", "pair", "pairs", "torch"]))
    amount = st.integers(0, 2)
    if form == "int":
        width = draw(amount)
    elif form == "pair":
        width = (draw(amount), draw(amount))
    elif form == "pairs":
        width = tuple((draw(amount), draw(amount)) for _ in range(nd))
    else:  # PyTorch's flat form, last axis first; a negative amount crops
        k = draw(st.integers(1, nd))
        width = tuple(draw(st.integers(-(shape[nd - 1 - i // 2] - 1) // 2, 2)) for i in range(2 * k))
        if all(w <= 0 for w in width):
            width = (1,) + width[1:]
        fn = lambda t: tl.nn.functional.pad(t, width, value=value)  # noqa: E731
        return Case([rng.uniform(-2, 2, shape)], ["grad"], lambda t: fn(t) ** 2,
                    f"F.pad({shape}, {width}, value={value})")
    fn = draw(st.sampled_from([lambda t: t.pad(width, value), lambda t: tl.pad(t, width, constant_values=value)]))
    # squared so the gradient depends on which element went where
    return Case([rng.uniform(-2, 2, shape)], ["grad"], lambda t: fn(t) ** 2, f"pad({shape}, {width}, {value})")


@spec("std", "var")
def _std(draw, name):
    rng = rng_of(draw)
    shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=3))
    axis = draw_axis(draw, len(shape))
    keepdims = draw(st.booleans())
    ddof = 0 if axis in ((), []) else draw(st.sampled_from([0, 1]))  # n - ddof stays > 0
    style = draw(st.booleans())
    fn = (lambda t: getattr(t, name)(axis=axis, keepdims=keepdims, ddof=ddof)) if style else \
        (lambda t: getattr(tl, name)(t, axis, keepdims, ddof))
    return Case([distinct(rng, shape)], ["grad"], fn,
                f"{shape}.{name}(axis={axis}, keepdims={keepdims}, ddof={ddof})")


def factor(n: int) -> list:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


@spec("reshape")
def _reshape(draw, name):
    rng = rng_of(draw)
    shape = draw(SHAPE)
    size = int(np.prod(shape, dtype=int))
    parts = draw(st.permutations(factor(size)))
    ndim = draw(st.integers(0 if size == 1 else 1, 3))
    new = [1] * max(ndim, 1) if ndim else []
    for i, p in enumerate(parts):
        new[i % len(new)] *= p
    new = list(draw(st.permutations(new)))
    if new and draw(st.booleans()):
        new[draw(st.integers(0, len(new) - 1))] = -1
    new = tuple(new)
    style = draw(st.sampled_from(["tuple", "star", "tl"]))
    fn = {"tuple": lambda t: t.reshape(new), "star": lambda t: t.reshape(*new),
          "tl": lambda t: tl.reshape(t, new)}[style]
    return Case([rng.uniform(-2, 2, shape)], ["grad"], fn, f"{shape}.reshape({new})")


@spec("transpose")
def _transpose(draw, name):
    rng = rng_of(draw)
    shape = draw(SHAPE)
    nd = len(shape)
    axes = list(draw(st.permutations(range(nd))))
    axes = tuple(a - nd if draw(st.booleans()) else a for a in axes)
    style = draw(st.sampled_from(["T", "none", "star", "tuple", "tl"]))
    fn = {"T": lambda t: t.T, "none": lambda t: t.transpose(), "star": lambda t: t.transpose(*axes),
          "tuple": lambda t: t.transpose(axes), "tl": lambda t: tl.transpose(t, axes)}[style]
    return Case([rng.uniform(-2, 2, shape)], ["grad"], fn, f"{shape}.transpose {style} {axes}")


def basic_index(draw, rng, shape):
    parts = []
    for n in shape[:draw(st.integers(0, len(shape)))]:
        kind = draw(st.sampled_from(["int", "slice", "full", "newaxis"]))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            start = draw(st.one_of(st.none(), st.integers(-n, n)))
            stop = draw(st.one_of(st.none(), st.integers(-n, n)))
            step = draw(st.sampled_from([None, 1, 2, -1, -2]))
            parts.append(slice(start, stop, step))
        elif kind == "full":
            parts.append(slice(None))
        else:
            parts.extend([None, slice(None)])
    if draw(st.booleans()):  # at the end, or in front when the parts already cover every axis
        covered = sum(p is not None for p in parts) == len(shape)
        parts.insert(0 if covered and draw(st.booleans()) else len(parts), Ellipsis)
    return tuple(parts) if len(parts) != 1 or draw(st.booleans()) else parts[0]


@spec("getitem")
def _getitem(draw, name):
    rng = rng_of(draw)
    form = draw(st.sampled_from(["basic", "int_array", "rows_cols", "pairs", "bool_full",
                                 "bool_rows", "list", "scalar"]))
    if form == "scalar":
        shape, index = (), draw(st.sampled_from([(), Ellipsis, None]))
    elif form == "basic":
        shape = draw(SHAPE)
        index = basic_index(draw, rng, shape)
    elif form == "rows_cols":  # cs231n's scores[np.arange(N), y]
        shape = (draw(st.integers(1, 5)), draw(st.integers(1, 4)))
        index = (np.arange(shape[0]), rng.integers(0, shape[1], shape[0]))
    else:
        shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
        n = shape[0]
        if form == "int_array":  # repeats and negative indices, on axis 0 or 1
            idx = rng.integers(-n, n, draw(st.integers(1, 6)))
            index = (slice(None), rng.integers(-shape[1], shape[1], 5)) \
                if len(shape) > 1 and draw(st.booleans()) else idx
        elif form == "pairs":  # the same element picked twice must get both gradients
            i = rng.integers(0, n, 4)
            j = rng.integers(0, shape[1 if len(shape) > 1 else 0], 4)
            index = np.concatenate([i, i]) if len(shape) == 1 else \
                (np.concatenate([i, i]), np.concatenate([j, j]))
        elif form == "bool_full":
            index = rng.random(shape) < 0.5
        elif form == "bool_rows":
            index = rng.random(n) < 0.5
        else:
            index = [int(v) for v in rng.integers(0, n, 3)]
    style = draw(st.sampled_from(["plain", "tensor"])) if isinstance(index, np.ndarray) else "plain"
    idx = tl.Tensor(index) if style == "tensor" else index
    return Case([rng.uniform(-2, 2, shape)], ["grad"], lambda t: t[idx], f"{form}: x{shape}[{index!r}]")


@spec("broadcast_to")
def _broadcast_to(draw, name):
    rng = rng_of(draw)
    (sa, sb), target = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                          max_side=3))
    style = draw(st.sampled_from(["tl", "method", "expand", "expand_minus_one"]))
    # PyTorch's expand: -1 keeps an existing axis's size
    sizes = tuple(-1 if i >= len(target) - len(sa) and n == sa[i - len(target) + len(sa)] else n
                  for i, n in enumerate(target)) if style == "expand_minus_one" else target
    fn = {"tl": lambda t: tl.broadcast_to(t, target), "method": lambda t: t.broadcast_to(target),
          "expand": lambda t: t.expand(*target), "expand_minus_one": lambda t: t.expand(sizes)}[style]
    return Case([rng.uniform(-2, 2, sa)], ["grad"], fn, f"broadcast_to({sa}, {target}) ({style} {sizes})")


@spec("scatter_add")
def _scatter_add(draw, name):
    # getitem's backward as an op: the gradient lands at the picked places, repeats add up
    rng = rng_of(draw)
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    form = draw(st.sampled_from(["rows_cols", "repeats", "slice"]))
    if form == "rows_cols":
        index = (np.arange(n), rng.integers(0, m, n))
    elif form == "repeats":
        index = rng.integers(-n, n, 5)
    else:
        index = (slice(None), slice(0, m, 2))
    picked = np.zeros((n, m))[index].shape
    return Case([rng.uniform(-2, 2, picked)], ["grad"],
                lambda t: tl.ops.ScatterAdd.apply(t, shape=(n, m), index=index),
                f"scatter_add({picked} -> {(n, m)}, {form})")


def draw_parts(draw, rng, stack: bool):
    count = draw(st.integers(1, 3))
    base = list(draw(array_shapes(min_dims=0 if stack else 1, max_dims=3, min_side=1, max_side=3)))
    nd = len(base)
    axis = draw(st.integers(-(nd + 1), nd) if stack else st.integers(-nd, nd - 1))
    shapes = []
    for _ in range(count):
        s = list(base)
        if not stack:
            s[axis] = draw(st.integers(1, 3))
        shapes.append(tuple(s))
    return [rng.uniform(-2, 2, s) for s in shapes], axis


@spec("concatenate", "stack")
def _join(draw, name):
    rng = rng_of(draw)
    arrays, axis = draw_parts(draw, rng, stack=name == "stack")
    if name == "concatenate" and draw(st.integers(0, 4)) == 0:
        axis = None  # NumPy flattens the inputs first
    kinds = kinds_for(draw, len(arrays), number_ok=(False,) * 3)
    style = draw(st.sampled_from(["numpy", "torch", "method", "class"]))
    if axis is None or kinds[0] != "grad" and style in ("method", "class"):
        style = "numpy"  # x.cat(...) needs x to be a Tensor; torch.cat has no dim=None
    if name == "concatenate":
        fn = {"numpy": lambda *ts: tl.concatenate(list(ts), axis=axis),
              "torch": lambda *ts: tl.cat(ts, dim=axis),
              "method": lambda *ts: ts[0].cat(*ts[1:], dim=axis),
              "class": lambda *ts: tl.Tensor.cat(list(ts), dim=axis)}[style]
    else:
        fn = {"numpy": lambda *ts: tl.stack(ts, axis=axis), "torch": lambda *ts: tl.stack(ts, dim=axis),
              "method": lambda *ts: ts[0].stack(*ts[1:], dim=axis),
              "class": lambda *ts: tl.Tensor.stack(list(ts), dim=axis)}[style]
    return Case(arrays, kinds, fn, f"{name}({[a.shape for a in arrays]}, axis={axis}) ({style})")


@spec("softmax", "log_softmax")
def _softmax(draw, name):
    rng = rng_of(draw)
    shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    style = draw(st.sampled_from(["tl", "method", "dim", "alias"]))
    fn = {"tl": lambda t: getattr(tl, name)(t, axis=axis), "method": lambda t: getattr(t, name)(axis),
          "dim": lambda t: getattr(tl.nn.functional, name)(t, dim=axis),
          "alias": lambda t: (t.logsoftmax(axis) if name == "log_softmax" else t.softmax(dim=axis))}[style]
    return Case([rng.uniform(-3, 3, shape)], ["grad"], fn, f"{name}({shape}, axis={axis}) ({style})")


def draw_cross_entropy(draw, rng):
    """Logits, target and keyword arguments of ``cross_entropy``, in every form PyTorch
    takes: (N, C), one sample (C,) or (N, C, d) scores; integer labels (with weights,
    ignored labels) or probabilities; the three reductions; label smoothing."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    form = draw(st.sampled_from(["batch", "batch", "one", "spatial", "probabilities"]))
    shape = {"batch": (n, c), "one": (c,), "spatial": (n, c, draw(st.integers(1, 3))),
             "probabilities": draw(st.sampled_from([(n, c), (c,), (n, c, 2)]))}[form]
    kw = {"reduction": draw(st.sampled_from(["mean", "sum", "none"])),
          "label_smoothing": draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))}
    if draw(st.booleans()):
        kw["weight"] = rng.uniform(0.2, 2.0, c)
    if form == "probabilities":
        target = rng.uniform(0, 1, shape)
        if draw(st.booleans()):  # a distribution over the classes (or any nonnegative numbers)
            target = target / target.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)
        return shape, target, kw
    label_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = rng.integers(0, c, label_shape).astype(draw(st.sampled_from([np.int64, np.int32, np.uint8])))
    if target.dtype != np.uint8 and target.size > 1 and draw(st.booleans()):
        kw["ignore_index"] = ignore = draw(st.sampled_from([-100, 0, c - 1] if c > 1 else [-100]))
        target.flat[0] = ignore  # one ignored label; the last one still counts
        target.flat[-1] = (ignore + 1) % c if ignore >= 0 else 0
    return shape, target, kw


@spec("softmax_cross_entropy")
def _softmax_cross_entropy(draw, name):
    # the fused gate cross_entropy uses for (N, C) scores and integer labels (cs231n's)
    rng = rng_of(draw)
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    labels = rng.integers(0, c, n).astype(draw(st.sampled_from([np.int64, np.int32, np.uint8])))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return Case([rng.uniform(-3, 3, (n, c))], ["grad"],
                lambda t: tl.cross_entropy(t, labels, reduction=reduction),
                f"cross_entropy(({n}, {c}), {labels.tolist()}, reduction={reduction!r})")


@spec("cross_entropy")
def _cross_entropy(draw, name):
    rng = rng_of(draw)
    shape, target, kw = draw_cross_entropy(draw, rng)
    probabilities = target.dtype.kind == "f"
    style = draw(st.sampled_from(["tl", "method", "tensor_target", "F"]))
    call = {"tl": tl.cross_entropy, "method": lambda t, y, **k: t.cross_entropy(y, **k),
            "tensor_target": lambda t, y, **k: tl.cross_entropy(
                t, y if isinstance(y, tl.Tensor) else tl.Tensor(y), **k),
            "F": tl.nn.functional.cross_entropy}[style]
    desc = f"cross_entropy({shape}, {target.tolist()}, {kw}) ({style})"
    if probabilities:  # the target may require grad too
        kinds = ["grad", draw(st.sampled_from(["grad", "const", "array"]))]
        return Case([rng.uniform(-3, 3, shape), target], kinds, lambda t, y: call(t, y, **kw), desc)
    return Case([rng.uniform(-3, 3, shape)], ["grad"], lambda t: call(t, target, **kw), desc)


@spec("binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss")
def _binary_losses(draw, name):
    rng = rng_of(draw)
    shape = draw(SHAPE)
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    kw = {"reduction": reduction}
    if name != "mse_loss" and draw(st.booleans()):
        kw["weight"] = rng.uniform(0.2, 2.0, shape[-1:] if shape and draw(st.booleans()) else shape)
    if name == "binary_cross_entropy_with_logits" and draw(st.booleans()):
        kw["pos_weight"] = rng.uniform(0.2, 3.0, shape[-1:])
    x = rng.uniform(0.05, 0.95, shape) if name == "binary_cross_entropy" else rng.uniform(-3, 3, shape)
    kinds = ["grad", draw(st.sampled_from(["grad", "const", "array"]))]
    # a target that requires grad stays inside (0, 1) when central differences move it
    target = rng.uniform(0.05, 0.95, shape) if kinds[1] == "grad" or draw(st.booleans()) \
        else (rng.random(shape) < 0.5) * 1.0
    fn = getattr(draw(st.sampled_from([tl, tl.nn.functional])), name)
    return Case([x, target], kinds, lambda p, t: fn(p, t, **kw), f"{name}({shape}, {kw})")


@spec("multiclass_hinge")
def _multiclass_hinge(draw, name):
    rng = rng_of(draw)
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    labels = rng.integers(0, c, n)
    delta = draw(st.sampled_from([1.0, 0.5, 2.0]))
    scores = grid(rng, (n, c))
    scores[np.arange(n), labels] += 0.25  # every margin s_ij - s_iy + delta is >= 0.15 from 0
    as_tensor = draw(st.booleans())
    y = tl.Tensor(labels) if as_tensor else labels
    return Case([scores], ["grad"], lambda t: tl.multiclass_hinge(t, y, delta),
                f"multiclass_hinge(({n}, {c}), {labels}, delta={delta})")


@spec("l2_penalty")
def _l2_penalty(draw, name):
    rng = rng_of(draw)
    arrays = [rng.uniform(-2, 2, draw(SHAPE)) for _ in range(draw(st.integers(1, 3)))]
    reg = draw(st.sampled_from([0.0, 1e-3, 0.5, 2.0]))
    half = draw(st.booleans())
    kinds = kinds_for(draw, len(arrays), number_ok=(False,) * 3)
    style = draw(st.sampled_from(["list", "tuple", "dict"] + (["one"] if len(arrays) == 1 else [])))

    def fn(*ts):
        given = {"list": list(ts), "tuple": ts, "dict": {f"W{i}": t for i, t in enumerate(ts)},
                 "one": ts[0]}[style]
        return tl.l2_penalty(given, reg, half=half)
    return Case(arrays, kinds, fn, f"l2_penalty({[a.shape for a in arrays]} as {style}, {reg}, "
                                   f"half={half})")


# ----------------------------------------------------------------- the factory

def builtin_ops() -> list:
    return sorted(n for n, cls in OPS.items() if cls.__module__.startswith("tinygrad_lite."))


def test_every_op_has_its_four_pieces():
    from tinygrad_lite.ops import Function
    for name in builtin_ops():
        op = OPS[name]
        assert op.name == name and op.symbol and isinstance(op.rule, str) and "d" in op.rule, name
        for piece in ("forward", "backward", "torch"):
            assert getattr(op, piece) is not getattr(Function, piece), f"{name} has no {piece}"


def test_every_op_has_a_spec():
    missing = [n for n in builtin_ops() + sorted(COMPOSITES) if n not in SPECS]
    assert not missing, (f"ops without a case generator in tests/test_ops.py SPECS: {missing}; "
                         f"add one so the new op is tested against numeric and PyTorch gradients")


def operands(case: Case) -> tuple[list, list]:
    """The operands to pass, and the Tensors among them that require grad."""
    ops_, grads = [], []
    for arr, kind in zip(case.arrays, case.kinds):
        if kind == "grad":
            t = tl.Tensor(arr, requires_grad=True)
            grads.append(t)
        elif kind == "const":
            t = tl.Tensor(arr)
        elif kind == "number":
            t = float(arr)
        else:
            t = arr
        ops_.append(t)
    return ops_, grads


def record(name: str, key: str, a: np.ndarray, b: np.ndarray, abs_tol: float,
           stats: dict = OP_STATS) -> None:
    s = stats.setdefault(name, {"cases": 0, "torch_cases": 0, "num_rel": 0.0, "num_abs": 0.0,
                                "torch_rel": 0.0, "torch_abs": 0.0})
    rel, diff = elementwise_errors(a, b)  # cs231n's rel_error, per entry
    if diff.size:
        s[key + "_abs"] = max(s[key + "_abs"], float(diff.max()))
        s[key + "_rel"] = max(s[key + "_rel"], float(rel.max()))


def check_close(what: str, a: np.ndarray, b: np.ndarray, rel_tol: float, abs_tol: float, case) -> None:
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape} ({case.desc})"
    rel, diff = elementwise_errors(a, b)
    bad = (rel > rel_tol) & (diff > abs_tol)
    assert not bad.any(), (f"{what} mismatch for {case.desc}: worst rel_error {rel.max():.3e}, "
                           f"abs {diff.max():.3e}\nengine:\n{a}\nreference:\n{b}")


def forward_graph(name: str, case: Case):
    ops_, grads = operands(case)
    out = case.fn(*ops_)
    assert isinstance(out, tl.Tensor), case.desc
    assert out.requires_grad and out.dtype == np.float64, case.desc
    if name in COMPOSITES:
        assert out.groups and out.groups[0].name == name, case.desc
    else:
        assert name in {n.op.name for n in tl.backward_order(out) if n.op is not None}, \
            f"{case.desc} did not run op {name}"
    return ops_, grads, out


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_op_vs_numeric(name, data):
    case = data.draw(st.composite(lambda draw: SPECS[name](draw))(), label="case")
    ops_, grads, out = forward_graph(name, case)
    rng = np.random.default_rng(len(case.desc))
    grad_output = rng.uniform(-1, 1, out.shape)

    # tl.grad leaves .grad alone; backward() then stores the same numbers.
    returned = tl.grad(out, grads, grad_outputs=grad_output)
    assert all(t.grad is None for t in grads)
    out.backward(grad_output)
    for t, g in zip(grads, returned):
        assert t.grad.shape == t.shape and t.grad.dtype == t.dtype, case.desc
        np.testing.assert_array_equal(t.grad, g, err_msg=case.desc)
    for o, kind in zip(ops_, case.kinds):
        if kind == "const":
            assert o.grad is None, f"{case.desc}: a constant got a gradient"
    # each backward is pure: viz calls it again and must get the same, changing nothing
    nodes = tl.backward_order(out)
    kept = [n.grad.copy() for n in nodes]
    for n in nodes:
        if n.op is not None:
            assert isinstance(n.op.label(**n.args), str) and n.op.rule
            first, again = tl.input_grads(n, n.grad), tl.input_grads(n, n.grad)
            for p, a, b in zip(n.parents, first, again):
                assert (a is None) == (b is None) == (not p.requires_grad), case.desc
                if a is not None:
                    assert a.shape == p.shape and a.dtype == p.dtype, case.desc
                    np.testing.assert_array_equal(a, b)
    for n, g in zip(nodes, kept):
        np.testing.assert_array_equal(n.grad, g)

    def loss() -> float:
        with tl.no_grad():
            return float(np.sum(case.fn(*ops_).data * grad_output))

    _check_numeric(name, grads, loss, case)
    OP_STATS[name]["cases"] += 1


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_op_vs_torch(name, data):
    if not HAVE_TORCH:
        pytest.skip("PyTorch is not installed (pip install -e '.[torch]'): oracle tests skipped")
    case = data.draw(st.composite(lambda draw: SPECS[name](draw))(), label="case")
    ops_, grads, out = forward_graph(name, case)
    grad_output = np.random.default_rng(len(case.desc)).uniform(-1, 1, out.shape)
    tout, _ = replay_in_torch(out)
    check_close("forward vs torch", out.data, tout.detach().numpy(), TORCH_REL, TORCH_ABS, case)
    ours = tl.grad(out, grads, grad_outputs=grad_output)
    theirs = torch_gradients(out, grads, gradient=grad_output)
    for g, tg in zip(ours, theirs):
        record(name, "torch", g, tg, TORCH_ABS)
        check_close("gradient vs torch", g, tg, TORCH_REL, TORCH_ABS, case)
    OP_STATS.setdefault(name, {"cases": 0, "torch_cases": 0, "num_rel": 0.0, "num_abs": 0.0,
                               "torch_rel": 0.0, "torch_abs": 0.0})["torch_cases"] += 1


# ----------------------------------------------------------------- kinks, ties, bounds vs PyTorch
# Central differences mean nothing at a kink; PyTorch's conventions decide there.

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed: oracle skipped")


def torch_check(fn, *arrays, grad_output=None):
    ts = [tl.Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    grad_output = np.random.default_rng(1).uniform(0.5, 1.5, out.shape) if grad_output is None else grad_output
    ours = tl.grad(out, ts, grad_outputs=grad_output, allow_unused=True)
    theirs = torch_gradients(out, ts, gradient=grad_output)
    tout, _ = replay_in_torch(out)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, atol=1e-300)
    for g, tg in zip(ours, theirs):
        np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-15)
    return ours


TIES = np.array([[1.0, 3.0, 3.0, -2.0], [2.0, 2.0, 2.0, 2.0], [0.0, -1.0, 0.0, -1.0]])


@needs_torch
@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (None, True), (0, False), (1, True),
                                           (-1, False), ((0, 1), False), ((1, 0), True)])
def test_extremum_ties_split_evenly_as_torch_amax(name, axis, keepdims):
    g = torch_check(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), TIES)[0]
    if name == "max" and axis == 1 and keepdims:
        assert g[1].tolist() == pytest.approx([g[1, 0]] * 4)  # four-way tie: a quarter each


@needs_torch
def test_maximum_ties_relu_abs_at_zero_clip_at_bounds_as_torch():
    a = np.array([[1.0, -1.0, 0.0], [2.0, 2.0, -3.0]])
    b = np.array([1.0, 0.5, 0.0])
    g = torch_check(lambda x, y: tl.maximum(x, y), a, b, grad_output=np.ones((2, 3)))
    assert g[0][0, 0] == 0.5 and g[1][0] == 0.5  # a tie splits the gradient
    x = np.array([-1.0, 0.0, 0.0, 1.0, 2.0])
    assert torch_check(lambda t: t.relu(), x, grad_output=np.ones(5))[0].tolist() == [0, 0, 0, 1, 1]
    assert torch_check(lambda t: abs(t), x, grad_output=np.ones(5))[0].tolist() == [-1, 0, 0, 1, 1]
    g = torch_check(lambda t: t.clip(0.0, 1.0), x, grad_output=np.ones(5))[0]
    assert g.tolist() == [0, 1, 1, 1, 0]  # bounds are inside, as torch.clamp
    torch_check(lambda t: t.clip(min=0.0), x)
    torch_check(lambda t: t.clip(max=1.0), x)
    torch_check(lambda t: t ** 0, x)  # constant: gradient 0, also at 0
    torch_check(lambda t: t ** 3 + t ** 1 + t ** 2, x)


@needs_torch
def test_cast_float32_vs_torch():
    x = np.random.default_rng(0).uniform(-2, 2, (3, 4))

    def fn(t):
        y = t.astype(np.float32)
        assert y.dtype == np.float32
        z = (y * 2.5).exp().sum(axis=1)  # Python numbers keep float32
        assert z.dtype == np.float32
        return z.astype(np.float64)

    ts = [tl.Tensor(x, requires_grad=True)]
    out = fn(ts[0])
    ours = tl.grad(out, ts, grad_outputs=np.ones(3))[0]
    theirs = torch_gradients(out, ts, gradient=np.ones(3))[0]
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


@needs_torch
@pytest.mark.parametrize("fn", ["softmax", "log_softmax", "cross_entropy"])
def test_composites_stable_for_scores_of_1e4(fn):
    rng = np.random.default_rng(3)
    scores = rng.uniform(-1, 1, (4, 5)) * 1e4
    scores[0] = [1e4, 1e4 - 1, -1e4, 0, 1e4 - 3]
    labels = np.array([0, 2, 4, 4])
    call = {"softmax": lambda t: tl.softmax(t, axis=1),
            "log_softmax": lambda t: tl.log_softmax(t, axis=1),
            "cross_entropy": lambda t: tl.cross_entropy(t, labels)}[fn]
    with tl.detect_anomaly():  # no overflow, no nan, forward or backward
        t = tl.Tensor(scores, requires_grad=True)
        out = call(t)
        out.backward(np.ones(out.shape))
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(t.grad))
    torch_check(call, scores)
    if fn == "softmax":
        np.testing.assert_allclose(out.data.sum(axis=1), 1.0)


@needs_torch
def test_cs231n_score_indexing_with_repeats_as_torch():
    scores = np.random.default_rng(4).uniform(-1, 1, (5, 3))
    y = np.array([0, 1, 2, 2, 1])
    torch_check(lambda s: s[np.arange(5), y], scores)
    torch_check(lambda s: s[[0, 0, 0], [1, 1, 2]], scores)       # the same entry three times
    torch_check(lambda s: s[range(5), y], scores)                  # as the seeds write it
    s = tl.Tensor(scores, requires_grad=True)
    s[[0, 0, 0], [1, 1, 2]].sum().backward()
    assert s.grad[0, 1] == 2.0 and s.grad[0, 2] == 1.0 and s.grad.sum() == 3.0


# ----------------------------------------------------------------- random graphs
# Ops composed into random DAGs with fan-out (a value reused by later ops), so the
# engine's ordering, accumulation and the one central unbroadcast are exercised on
# structures no single-op case has. Only smooth ops: the kinks are covered above.

GRAPH_SHAPES = [(3, 4), (4,), (3, 1), (1, 4), ()]
GRAPH_UNARY = {
    "tanh": lambda x: x.tanh(), "sigmoid": lambda x: x.sigmoid(), "neg": lambda x: -x,
    "square": lambda x: x ** 2, "exp_tanh": lambda x: x.tanh().exp(),
    "log1p_sq": lambda x: (x * x + 1).log(), "sqrt1p_sq": lambda x: (1 + x ** 2).sqrt(),
    "sum0": lambda x: x.sum(axis=0, keepdims=True) if x.ndim else x,
    "mean_last": lambda x: x.mean(axis=-1, keepdims=True) if x.ndim else x,
    "T_back": lambda x: x.T.T, "reshape_back": lambda x: x.reshape(-1).reshape(x.shape),
}
GRAPH_BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (1 + b * b), "rdiv_const": lambda a, b: 2.0 / (2 + a.tanh()) - b,
    "where": lambda a, b: tl.where(np.arange(4) % 2 == 0, a, b),
}


@st.composite
def random_graph(draw):
    rng = rng_of(draw)
    n_leaves = draw(st.integers(1, 3))
    shapes = [draw(st.sampled_from(GRAPH_SHAPES)) for _ in range(n_leaves)]
    arrays = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    steps = []
    for k in range(draw(st.integers(1, 10))):
        pool = n_leaves + k
        if draw(st.booleans()):
            steps.append(("u", draw(st.sampled_from(sorted(GRAPH_UNARY))), draw(st.integers(0, pool - 1))))
        else:
            steps.append(("b", draw(st.sampled_from(sorted(GRAPH_BINARY))),
                          draw(st.integers(0, pool - 1)), draw(st.integers(0, pool - 1))))

    def fn(*leaves):
        pool = list(leaves)
        for step in steps:
            if step[0] == "u":
                pool.append(GRAPH_UNARY[step[1]](pool[step[2]]))
            else:
                pool.append(GRAPH_BINARY[step[1]](pool[step[2]], pool[step[3]]))
        out = pool[-1]
        for i, t in enumerate(pool[:-1]):  # every intermediate also feeds the output
            out = out + t.sum() * (0.1 * (i + 1)) if isinstance(t, tl.Tensor) else out
        return out * 1.0

    return Case(arrays, ["grad"] * n_leaves, fn, f"leaves {shapes}, steps {steps}")


@settings(max_examples=100)
@given(case=random_graph())
def test_random_graphs_vs_numeric_and_torch(case):
    ops_, grads = operands(case)
    out = case.fn(*ops_)
    grad_output = np.random.default_rng(len(case.desc)).uniform(-1, 1, out.shape)
    kept = [t.data.copy() for t in grads] + [grad_output.copy()]
    out.backward(grad_output)
    nodes = tl.backward_order(out)
    for t in nodes:  # every node holds a gradient of its own shape
        assert t.grad is not None and t.grad.shape == t.shape
    _check_ownership(nodes, grads, kept + [grad_output])

    def loss() -> float:
        with tl.no_grad():
            return float(np.sum(case.fn(*ops_).data * grad_output))

    _check_numeric("(random graphs)", grads, loss, case)
    OP_STATS["(random graphs)"]["cases"] += 1
    if HAVE_TORCH:
        for g, tg in zip([t.grad for t in grads], torch_gradients(out, grads, gradient=grad_output)):
            record("(random graphs)", "torch", g, tg, TORCH_ABS)
            check_close("gradient vs torch", g, tg, TORCH_REL, TORCH_ABS, case)
        OP_STATS["(random graphs)"]["torch_cases"] += 1
    first = {id(t): t.grad.copy() for t in nodes}
    out.backward(grad_output)  # accumulates: exactly twice each gradient (x + x == 2x in floats)
    for t in nodes:
        np.testing.assert_array_equal(t.grad, 2 * first[id(t)])
    _check_ownership(nodes, grads, kept + [grad_output])


def _check_ownership(nodes, leaves, kept):
    """What the engine's in-place accumulation must never break: the leaves' data and
    the grad_output are untouched, a leaf's .grad is its own writable array, an
    intermediate's .grad is read-only."""
    for t, before in zip(leaves, kept):
        np.testing.assert_array_equal(t.data, before)
    np.testing.assert_array_equal(kept[-1], kept[-2])  # the grad_output
    for t in nodes:
        if t.op is not None:
            assert not t.grad.flags.writeable
            continue
        assert t.grad.flags.writeable
        for u in nodes:
            assert u is t or not np.shares_memory(t.grad, u.grad)
            assert not np.shares_memory(t.grad, u.data)


def _check_numeric(label, grads, loss, case):
    """Each tensor's .grad against central differences of ``loss()``, recorded under ``label``."""
    for t in grads:
        numeric = tl.eval_numerical_gradient(lambda _: loss(), t.data, h=H)
        record(label, "num", t.grad, numeric, NUM_ABS)
        check_close("gradient vs central differences", t.grad, numeric, NUM_REL, NUM_ABS, case)


# ----------------------------------------------------------------- edge cases, each a regression

@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch not installed")
@pytest.mark.parametrize("shape,axis,ddof", [((3,), None, 0), ((2, 3), 1, 0), ((3, 1), 1, 0),
                                             ((2, 1, 3), 1, 0), ((4,), 0, 1)])
def test_std_gradient_is_zero_where_the_deviation_is_zero(shape, axis, ddof):
    x = np.random.default_rng(1).standard_normal(shape)
    x[..., 0] = x[..., -1] = 2.0 if axis is None else x[..., 0]
    if axis is None:
        x[...] = 2.0  # a constant array
    t = tl.Tensor(x, requires_grad=True)
    out = t.std(axis=axis, ddof=ddof)
    out.sum().backward()
    assert np.all(np.isfinite(t.grad))
    ref = torch_gradients(out.sum(), [t])[0]
    np.testing.assert_allclose(t.grad, ref, rtol=1e-12, atol=1e-15)
    zero = tl.Tensor(np.array(1.5), requires_grad=True)
    zero.std().backward()
    assert zero.grad == 0.0


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch not installed")
@pytest.mark.parametrize("values,ddof", [([1.0, 2.0], 2), ([1.0, 2.0], 3), ([5.0], 1)])
def test_std_without_degrees_of_freedom_has_torchs_nan_gradient(values, ddof):
    # the value is inf or nan (NumPy's and torch's): no finite gradient may come with it
    t = tl.Tensor(np.array(values), requires_grad=True)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = t.std(ddof=ddof)
        out.backward()
    assert not np.isfinite(out.data) and np.all(np.isnan(t.grad))
    ref = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():  # torch warns of the missing degrees of freedom too
        warnings.simplefilter("ignore", UserWarning)
        ref.std(correction=ddof).backward()
    assert np.all(np.isnan(ref.grad.numpy()))


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis", [0, -1, (), None])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_of_a_0d_tensor_over_axis_0_or_minus_1(name, axis, keepdims):
    x = tl.Tensor(np.array(3.0), requires_grad=True)
    out = getattr(x, name)(axis=axis, keepdims=keepdims)
    assert out.shape == np.sum(np.array(3.0), axis=axis, keepdims=keepdims).shape
    out.backward()
    assert x.grad == 1.0


REDUCTIONS = ["sum", "mean", "max", "min", "prod", "logsumexp", "std", "var"]


def _torch_reduction(xt, name, axis, keepdims, ddof):
    """``name`` over ``axis`` in PyTorch (``axis=()``, which reduces nothing, excepted)."""
    if axis is None:
        if name in ("std", "var"):
            out = getattr(xt, name)(correction=ddof)
        elif name == "logsumexp":
            out = xt.reshape(-1).logsumexp(0)
        else:
            out = getattr(xt, {"max": "amax", "min": "amin"}.get(name, name))()
        return out.reshape((1,) * xt.ndim) if keepdims else out
    dims = axis if isinstance(axis, tuple) else (axis,)
    if name in ("std", "var"):
        return getattr(xt, name)(dim=dims, correction=ddof, keepdim=keepdims)
    if name == "prod":
        out = xt
        for d in sorted((d % xt.ndim for d in dims), reverse=True):
            out = out.prod(dim=d, keepdim=keepdims)
        return out
    return getattr(xt, {"max": "amax", "min": "amin"}.get(name, name))(dim=dims, keepdim=keepdims)


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch not installed")
@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:Degrees of freedom",
                            "ignore:std\\(\\)", "ignore:var\\(\\)")
@settings(max_examples=120)
@given(data=st.data())
def test_reductions_over_empty_0d_and_broadcast_shapes_as_torch(data):
    # The input is broadcast from a smaller shape (a broadcast_to node in the graph), so
    # max/min see ties and std/var constant rows; sides of 0 make empty tensors. Values on
    # a grid of halves keep means exact, so a constant row's deviation is exactly 0.
    name = data.draw(st.sampled_from(REDUCTIONS), label="op")
    shape = data.draw(array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3), label="shape")
    source = tuple(data.draw(st.sampled_from([s, 1]), label="source side") for s in shape)
    axis = draw_axis(data.draw, len(shape))
    axis = tuple(axis) if isinstance(axis, list) else axis
    keepdims, ddof = data.draw(st.booleans()), data.draw(st.sampled_from([0, 1]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = rng.integers(-3, 4, source) * 0.5
    x = tl.Tensor(a, requires_grad=True)
    kw = {"axis": axis, "keepdims": keepdims, **({"ddof": ddof} if name in ("std", "var") else {})}
    with np.errstate(all="ignore"):
        try:
            expected = getattr(np, name)(np.broadcast_to(a, shape), **kw) if name != "logsumexp" \
                else None
        except ValueError:  # a max/min over an empty axis: NumPy's error, and ours
            with pytest.raises(ValueError, match=name):
                getattr(x.broadcast_to(shape), name)(**kw)
            return
        out = getattr(x.broadcast_to(shape), name)(**kw)
        if expected is not None:
            np.testing.assert_array_equal(out.data, expected)
        seed = rng.uniform(-1, 1, out.shape)
        (g,) = tl.grad(out, [x], grad_outputs=seed)
    if axis == ():  # NumPy reduces over no axis: each element is its own reduction
        if name in ("std", "var"):
            if ddof == 0:
                np.testing.assert_array_equal(g, np.zeros_like(a))
        else:
            np.testing.assert_array_equal(g, tl.unbroadcast(seed, a.shape, a.dtype))
        return
    xt = torch.tensor(a, requires_grad=True)
    tout = _torch_reduction(xt.broadcast_to(shape), name, axis, keepdims, ddof)
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    (tg,) = torch.autograd.grad(tout, [xt], torch.tensor(seed), allow_unused=True)
    np.testing.assert_allclose(g, np.zeros_like(a) if tg is None else tg.numpy(),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch not installed")
def test_clip_with_bounds_that_broadcast_x_to_a_bigger_shape():
    x = tl.Tensor(np.array([1.0, 5.0, -2.0]), requires_grad=True)
    lo = np.array([[0.0], [2.0]])
    hi = np.array([[4.0], [6.0]])
    out = x.clip(lo, hi)
    assert out.shape == (2, 3)
    (out * np.arange(6.0).reshape(2, 3)).sum().backward()
    ref = torch_gradients((out * np.arange(6.0).reshape(2, 3)).sum(), [x])[0]
    np.testing.assert_array_equal(x.grad, ref)
    np.testing.assert_array_equal(x.grad, [0.0, 4.0, 0.0])


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch not installed")
@pytest.mark.parametrize("which", ["both", "min", "max", "min_with_number", "max_with_array"])
@pytest.mark.parametrize("seed", range(4))
def test_clip_with_bounds_that_require_grad_gives_them_torchs_gradients(which, seed):
    # On a grid of halves: values equal to a bound, and lo > hi or lo == hi, occur often.
    rng = np.random.default_rng(seed)
    x = tl.Tensor(rng.integers(-4, 5, (3, 4)) * 0.5, requires_grad=True)
    lo = tl.Tensor(rng.integers(-3, 2, (1, 4)) * 0.5, requires_grad=True)
    hi = tl.Tensor(rng.integers(-1, 4, (3, 1)) * 0.5, requires_grad=True)
    bounds = {"both": (lo, hi), "min": (lo, None), "max": (None, hi),
              "min_with_number": (lo, 0.75), "max_with_array": (lo.data.copy(), hi)}[which]
    out = x.clip(*bounds)
    np.testing.assert_array_equal(out.data, np.clip(x.data, *[_plain(b) for b in bounds]))
    tx, tlo, thi = (torch.tensor(t.data, requires_grad=True) for t in (x, lo, hi))
    as_torch = {id(lo): tlo, id(hi): thi}
    tout = torch.clamp(tx, *[as_torch.get(id(b), None if b is None else torch.tensor(_plain(b)))
                             for b in bounds])
    seed_grad = rng.uniform(0.5, 1.5, out.shape)
    wrt = [t for t in (x, lo, hi) if t is x or any(t is b for b in bounds)]
    ours = tl.grad(out, wrt, grad_outputs=seed_grad)
    theirs = torch.autograd.grad(tout, [{id(x): tx, **as_torch}[id(t)] for t in wrt],
                                 torch.tensor(seed_grad))
    for g, tg in zip(ours, theirs):
        np.testing.assert_array_equal(g, tg.numpy())


def _plain(b):
    return b.data if isinstance(b, tl.Tensor) else b


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch not installed")
@pytest.mark.parametrize("index", [
    (1, slice(None), slice(3, 11, 2), np.array([0, 2, 1]), slice(0, 2)),
    (np.array([1, 0]), slice(None), 2),
    (0, slice(None), np.array([[1, 2], [0, 0]])),
    (slice(None), np.array([0, 1]), slice(None), np.array([2, 2])),
])
def test_indexing_with_advanced_indices_separated_by_a_slice_follows_numpy_in_torch(index):
    a = np.random.default_rng(2).standard_normal((2, 3, 12, 5, 4))
    x = tl.Tensor(a, requires_grad=True)
    out = x[index]
    assert out.shape == a[index].shape
    torch_out, _ = replay_in_torch(out)
    assert tuple(torch_out.shape) == a[index].shape
    np.testing.assert_array_equal(torch_out.detach().numpy(), a[index])
    w = np.random.default_rng(3).standard_normal(out.shape)
    loss = (out * w).sum()
    np.testing.assert_array_equal(tl.grad(loss, x), torch_gradients(loss, [x])[0])


# ----------------------------------------------------------------- the new ops at their edges
# Where central differences mean nothing (kinks, a zero base, zeros in a product,
# infinities) PyTorch's values decide (second order: tests/test_higher_order.py KINKS).

@needs_torch
@pytest.mark.parametrize("name,fn,points,slopes", [
    ("relu6", lambda t: t.relu6(), [-1.0, 0.0, 3.0, 6.0, 7.0], [0, 0, 1, 0, 0]),
    ("hardswish", lambda t: t.hardswish(), [-4.0, -3.0, 0.0, 3.0, 4.0], [0, 0, 0.5, 1, 1]),
    ("leaky_relu", lambda t: t.leaky_relu(0.1), [-1.0, 0.0, 1.0], [0.1, 0.1, 1]),
    ("leaky_relu negative slope", lambda t: t.leaky_relu(-0.5), [-1.0, 0.0, 1.0], [-0.5, -0.5, 1]),
    ("elu", lambda t: t.elu(2.0), [-1.0, 0.0, 1.0], [2 * np.exp(-1), 2, 1]),
    ("softplus at its threshold", lambda t: t.softplus(2.0, 3.0), [1.4, 1.5, 1.6],
     [None, 1 / (1 + np.exp(-3)), 1]),
    ("sign", lambda t: t.sign(), [-1.0, 0.0, 1.0], [0, 0, 0]),
    ("mish", lambda t: t.mish(), [0.0, -40.0, 40.0], [0.6, None, 1]),
    ("gelu", lambda t: t.gelu(), [0.0, -8.0, 8.0], [0.5, None, 1]),
    ("gelu tanh", lambda t: t.gelu("tanh"), [0.0, -8.0, 8.0], [0.5, None, 1]),
])
def test_activation_kinks_as_torch(name, fn, points, slopes):
    (g,) = torch_check(fn, np.array(points), grad_output=np.ones(len(points)))
    for got, want in zip(g, slopes):
        if want is not None:
            assert got == pytest.approx(want, abs=1e-12), name


@needs_torch
def test_minimum_ties_split_evenly_as_torch():
    a, b = np.array([[1.0, -1.0, 0.0], [2.0, 2.0, -3.0]]), np.array([1.0, 0.5, 0.0])
    g = torch_check(lambda x, y: tl.minimum(x, y), a, b, grad_output=np.ones((2, 3)))
    assert g[0][0, 0] == 0.5 and g[1][0] == 0.5 + 1  # a tie splits; b[0] < 2 wins row 1


@needs_torch
def test_power_at_a_zero_and_at_negative_bases_as_torch():
    # d/d exponent at base 0 is 0 for exponents >= 0 (PyTorch masks it); -inf below
    base = np.array([0.0, 0.0, 0.0, 2.0, -2.0, -2.0])
    exponent = np.array([2.0, 0.0, -1.0, 1.5, 3.0, 2.0])
    a, e = tl.Tensor(base, requires_grad=True), tl.Tensor(exponent, requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a ** e
        ga, ge = tl.grad(out, [a, e], grad_outputs=np.ones(6))
    theirs = torch_gradients(out, [a, e], gradient=np.ones(6))
    np.testing.assert_array_equal(out.data, [0, 1, np.inf, 2 ** 1.5, -8, 4])
    np.testing.assert_array_equal(ga, theirs[0])
    np.testing.assert_array_equal(ge, theirs[1])
    assert ge[0] == ge[1] == 0 and ge[2] == -np.inf and np.isnan(ge[4:]).all()
    # number ** tensor with the bases NumPy takes: 0, negative (integer exponents), 1
    x = np.array([0.0, 1.0, 2.0, 3.0])
    for number in (0.0, -2.0, 1.0, 0.5):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = tl.Tensor(x, requires_grad=True)
            out = number ** t
            np.testing.assert_array_equal(out.data, number ** x)
            mine = tl.grad(out, t, grad_outputs=np.ones(4))
        np.testing.assert_array_equal(mine, torch_gradients(out, [t], gradient=np.ones(4))[0])
    # a zero base's second derivative is finite (the masked places compute with safe values)
    a = tl.Tensor(np.array([0.0, 1.5]), requires_grad=True)
    e = tl.Tensor(np.array([2.0, 0.0]), requires_grad=True)
    ga, ge = tl.grad((a ** e).sum(), [a, e], create_graph=True)
    second = tl.grad((ga + ge).sum(), [a, e])
    assert all(np.isfinite(s).all() for s in second)
    np.testing.assert_allclose(second[0], [2.0, 1 / 1.5])  # d/da (e a^(e-1) + a^e log a)


@needs_torch
@pytest.mark.parametrize("x,axis", [
    (np.array([0.0, 2.0, 3.0, 4.0]), None),                         # one zero
    (np.array([[0.0, 2.0, 0.0], [1.5, -2.0, 3.0]]), 1),             # two zeros in a row
    (np.array([[0.0, 0.0, 0.0], [0.0, 5.0, 0.0]]), 0),              # several zeros
    (np.array([[0.0, 2.0], [3.0, 0.0], [0.0, 0.0]]), None),         # three zeros, all reduced
    (np.array([[[0.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 2.0]]]), (0, 2)),
])
def test_prod_with_zeros_as_torch(x, axis):
    (g,) = torch_check(lambda t: t.prod(axis=axis), x)
    assert np.all(np.isfinite(g))
    if axis is None:  # the product of the others, exactly
        others = [np.prod(np.delete(x.ravel(), i)) for i in range(x.size)]
        grad_output = np.random.default_rng(1).uniform(0.5, 1.5, ())
        np.testing.assert_array_equal(g.ravel(), grad_output * np.array(others))


def test_prod_one_zero_gets_the_product_of_the_others_and_two_zeros_give_zero():
    x = tl.Tensor(np.array([2.0, 0.0, 3.0, 4.0]), requires_grad=True)
    x.prod().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 24.0, 0.0, 0.0])
    y = tl.Tensor(np.array([2.0, 0.0, 3.0, 0.0]), requires_grad=True)
    y.prod().backward()
    np.testing.assert_array_equal(y.grad, [0.0, 0.0, 0.0, 0.0])


@needs_torch
def test_logsumexp_with_large_scores_and_infinities_as_torch():
    x = np.array([[1e4, 1e4 - 1, -1e4], [-np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf]])
    t = tl.Tensor(x, requires_grad=True)
    with np.errstate(divide="ignore"):  # the row of -inf: log(0), as NumPy warns
        out = t.logsumexp(axis=1)
    torch_out, _ = replay_in_torch(out)
    np.testing.assert_allclose(out.data, torch_out.detach().numpy(), rtol=1e-15)
    assert out.data[2] == -np.inf and np.isfinite(out.data[:2]).all()
    with np.errstate(invalid="ignore"):
        g = tl.grad(out[:2].sum(), t)
    np.testing.assert_allclose(g[:2], torch_gradients(out[:2].sum(), [t])[0][:2], rtol=1e-12)
    assert tl.Tensor(np.array([np.inf, 1.0])).logsumexp().item() == np.inf
    with np.errstate(divide="ignore"):  # log(0): an empty sum
        assert tl.Tensor(np.empty((0, 3))).logsumexp(axis=0).data.tolist() == [-np.inf] * 3
    torch_check(lambda s: s.logsumexp(axis=0) * s.logsumexp(axis=1, keepdims=True),
                np.random.default_rng(5).uniform(-1, 1, (3, 4)) * 50)


@needs_torch
def test_binary_cross_entropy_at_zero_and_one_is_clamped_as_torch():
    p = np.array([0.0, 1.0, 0.5, 1e-50, 1.0 - 1e-17])
    t = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    pt, tt = tl.Tensor(p, requires_grad=True), tl.Tensor(t, requires_grad=True)
    with np.errstate(divide="ignore"):
        out = tl.binary_cross_entropy(pt, tt, reduction="none")
        ours = tl.grad(out, [pt, tt], grad_outputs=np.ones(5))
    theirs = torch.nn.functional.binary_cross_entropy(
        torch.tensor(p, requires_grad=True), torch.tensor(t), reduction="none")
    np.testing.assert_array_equal(out.data, theirs.detach().numpy())
    assert out.data[0] == 100.0 and ours[0][0] == pytest.approx(-1e12)
    np.testing.assert_array_equal(ours[0], torch_gradients(out, [pt], gradient=np.ones(5))[0])
    assert ours[1][0] == np.inf and ours[1][1] == -np.inf
