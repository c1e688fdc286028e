"""Derivatives of whole functions, as ``torch.autograd.functional``: ``vjp``, ``jvp``,
``jacobian``, ``hessian``, ``vhp`` and ``hvp``, built on ``grad``.

Conventions (PyTorch's):

* ``inputs`` is a Tensor, a NumPy array or a number, or a tuple of them; ``func``
  receives one Tensor per input and returns a Tensor or a tuple of Tensors. Results
  follow the same structure: a tuple where ``inputs`` (or the outputs) is a tuple.
* ``jacobian(func, x)[i][j]`` has shape ``outputs[i].shape + inputs[j].shape``;
  ``hessian(func, x)[i][j]`` has shape ``inputs[i].shape + inputs[j].shape``.
* Without ``create_graph`` every result is a NumPy array (as ``grad``'s). With
  ``create_graph=True`` they are Tensors whose graph records the computation, so they
  can be differentiated again, also with respect to the given inputs that require grad.
* An input no output depends on gets zeros; ``strict=True`` raises instead.

Forward mode (``jvp``, ``strategy="forward-mode"``) uses the double-vjp trick: the
gradient ``J^T u`` of the outputs for a seed ``u`` is linear in ``u``, and its own
vjp with respect to ``u`` is ``J v``. Every op's backward is recorded on Tensors, so
this holds for every op of the table.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from .autograd import enable_grad
from .tensor import GradientShapeError, Tensor, _new, grad, stack

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]

STRATEGIES = ("reverse-mode", "forward-mode")


# ----------------------------------------------------------------- checking and packing

def _inputs(who: str, inputs: Any, create_graph: bool) -> tuple[bool, list]:
    """The Tensors ``func`` is called with, one per input: a new Tensor for each (so an
    input that ``func`` also captures is told apart), joined to the caller's tensor
    by a recorded reshape when ``create_graph`` should reach it, else a leaf holding a
    copy (so the caller's array is never made read-only by the graphs built here, not
    even while an error that comes out of them is kept)."""
    if isinstance(inputs, list):
        raise TypeError(f"{who}: inputs must be a Tensor, a NumPy array or a number, or a tuple "
                        f"of them; got a list (write tuple(...) for several inputs, np.array(...) "
                        f"for one)")
    is_tuple = isinstance(inputs, tuple)
    items = inputs if is_tuple else (inputs,)
    if not items:
        raise ValueError(f"{who}: inputs is an empty tuple; give at least one input")
    xs = []
    for i, x in enumerate(items):
        where = f"input {i}" if is_tuple else "the input"
        if isinstance(x, Tensor):
            if x.dtype.kind != "f":
                raise TypeError(f"{who}: {where} has dtype {x.dtype}; only floating-point inputs "
                                f"can be differentiated")
            xs.append(x.reshape(x.shape) if create_graph and x.requires_grad
                      else Tensor(x.data.copy(), requires_grad=True))
            continue
        if isinstance(x, (tuple, list, dict)) or x is None:
            raise TypeError(f"{who}: {where} is a {type(x).__name__}; inputs must be Tensors, "
                            f"NumPy arrays or numbers (a tuple of them for several)")
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{who}: {where} cannot become an array: {e}") from None
        if arr.dtype.kind != "f":
            raise TypeError(f"{who}: {where} has dtype {arr.dtype}; only floating-point inputs "
                            f"can be differentiated (e.g. write 2.0, or x.astype(np.float64))")
        xs.append(Tensor(np.array(arr), requires_grad=True))
    return is_tuple, xs


def _outputs(who: str, out: Any, strict: bool) -> tuple[bool, list]:
    is_tuple = isinstance(out, tuple)
    outs = list(out) if is_tuple else [out]
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            where = f"output {i}" if is_tuple else "the output"
            raise TypeError(f"{who}: func must return a Tensor or a tuple of Tensors; {where} "
                            f"is a {type(o).__name__}")
        if strict and not o.requires_grad:
            raise RuntimeError(f"{who}: output {i} of func does not require grad: it is not "
                               f"computed from the inputs, which strict=True does not allow")
    return is_tuple, outs


def _scalar_output(who: str, out: Any, strict: bool) -> Tensor:
    """The one-element Tensor that ``hessian``, ``vhp`` and ``hvp`` differentiate."""
    if isinstance(out, tuple):
        raise RuntimeError(f"{who}: func must return a single Tensor, got a tuple of {len(out)}")
    (out,) = _outputs(who, out, strict)[1]
    if out.size != 1:
        raise RuntimeError(f"{who}: func must return a Tensor with a single element, got shape "
                           f"{out.shape}")
    return out


def _vectors(who: str, v: Any, refs: list, of: str, create_graph: bool) -> list:
    """``v`` checked against ``refs`` (the inputs or the outputs of func), one per ref:
    arrays, or Tensors when ``create_graph`` should differentiate through them."""
    if v is None:
        if len(refs) != 1 or refs[0].size != 1:
            shapes = ", ".join(str(r.shape) for r in refs)
            raise GradientShapeError(f"{who}: v can be left out only when the {of} is a single "
                                     f"Tensor with one element; the {of} has shape(s) {shapes}")
        return [np.ones(refs[0].shape, dtype=refs[0].dtype)]
    if isinstance(v, list):
        raise TypeError(f"{who}: v must be a Tensor, an array or a tuple of them, got a list")
    vs = list(v) if isinstance(v, tuple) else [v]
    if len(vs) != len(refs):
        raise GradientShapeError(f"{who}: v has {len(vs)} entries, one per {of} is needed: "
                                 f"{len(refs)} {of}(s) of shape(s) "
                                 f"{', '.join(str(r.shape) for r in refs)}")
    out = []
    for i, (vi, ref) in enumerate(zip(vs, refs)):
        where = f"v[{i}]" if len(refs) > 1 or isinstance(v, tuple) else "v"
        value: Any  # a Tensor that requires grad (create_graph), else an array
        if create_graph and isinstance(vi, Tensor) and vi.requires_grad:
            value = vi if vi.dtype == ref.dtype else vi.astype(ref.dtype)
        else:
            try:
                value = np.asarray(vi.data if isinstance(vi, Tensor) else vi, dtype=ref.dtype)
            except (TypeError, ValueError) as e:
                raise TypeError(f"{who}: {where} cannot become an array of {ref.dtype}: {e}") from None
        if value.shape != ref.shape:
            raise GradientShapeError(f"{who}: {where} has shape {value.shape}, the {of} it goes "
                                     f"with has shape {ref.shape}")
        out.append(value)
    return out


def _grads(outputs: Sequence[Optional[Tensor]], inputs: list, seeds: Optional[Sequence[Any]],
           create_graph: bool) -> list:
    """``grad(outputs, inputs, seeds, allow_unused=True)`` that skips the outputs which
    are None or do not require grad (they contribute nothing): None per input reached
    by no output."""
    seeds = [None] * len(outputs) if seeds is None else seeds
    pairs = [(o, s) for o, s in zip(outputs, seeds) if o is not None and o.requires_grad]
    if not pairs:
        return [None] * len(inputs)
    return grad([o for o, _ in pairs], inputs, [s for _, s in pairs], create_graph=create_graph,
                allow_unused=True)


def _zeros(shape: tuple, dtype: Any, create_graph: bool) -> Any:
    z = np.zeros(shape, dtype=dtype)
    return _new(z) if create_graph else z


def _filled(who: str, grads: list, refs: list, strict: bool, create_graph: bool,
            independent: str) -> list:
    """Zeros where ``grads`` has None; with ``strict`` an error instead, saying what is
    ``independent`` of what (formatted with the index)."""
    out = []
    for i, (g, ref) in enumerate(zip(grads, refs)):
        if g is None:
            if strict:
                raise RuntimeError(f"{who}: {independent.format(i=i)}, which strict=True does "
                                   f"not allow")
            g = _zeros(ref.shape, ref.dtype, create_graph)
        out.append(g)
    return out


def _values(items: list, create_graph: bool) -> list:
    """Tensors as they are with ``create_graph``, else arrays of the caller's own (a
    copy of func's outputs: one may be a read-only view, or an input's array)."""
    if create_graph:
        return [t if isinstance(t, Tensor) else _new(np.asarray(t)) for t in items]
    return [np.array(t.data) if isinstance(t, Tensor) else t for t in items]


def _unpack(items: list, is_tuple: bool) -> Any:
    return tuple(items) if is_tuple else items[0]


def _one_hot(shape: tuple, dtype: Any, k: int) -> np.ndarray:
    e = np.zeros(shape, dtype=dtype)
    e.flat[k] = 1
    return e


# ----------------------------------------------------------------- products with a vector

def vjp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), v^T J)``: the vector-Jacobian product, one backward pass
    (``torch.autograd.functional.vjp``). ``v`` has the outputs' shapes; it may be left
    out when func returns one element. The product has the inputs' shapes."""
    with enable_grad():
        in_tuple, xs = _inputs("vjp", inputs, create_graph)
        out_tuple, outs = _outputs("vjp", func(*xs), strict)
        vs = _vectors("vjp", v, outs, "output", create_graph)
        found = _grads(outs, xs, vs, create_graph)
        found = _filled("vjp", found, xs, strict, create_graph,
                        "the outputs of func do not depend on input {i}")
    return (_unpack(_values(outs, create_graph), out_tuple),
            _unpack(_values(found, create_graph), in_tuple))


def jvp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), J v)``: the Jacobian-vector product (forward mode), by the
    double-vjp trick (``torch.autograd.functional.jvp``). ``v`` has the inputs' shapes;
    it may be left out when the input is one element. The product has the outputs'
    shapes."""
    with enable_grad():
        in_tuple, xs = _inputs("jvp", inputs, create_graph)
        vs = _vectors("jvp", v, xs, "input", create_graph)
        out_tuple, outs = _outputs("jvp", func(*xs), strict)
        found, vjps = _forward(outs, xs, vs, create_graph)
        if strict:
            _strict_forward("jvp", vjps)
        found = _filled("jvp", found, outs, strict, create_graph,
                        "output {i} of func does not depend on any input")
    return (_unpack(_values(outs, create_graph), out_tuple),
            _unpack(_values(found, create_graph), out_tuple))


def _forward(outs: list, xs: list, vs: list, create_graph: bool) -> tuple[list, list]:
    """``J v`` per output by the double-vjp trick: ``g(u) = J^T u`` recorded for seeds
    ``u`` (zeros: only g's dependence on u matters, and it is linear), then the vjp of
    ``g`` with ``v`` taken with respect to ``u``. Also returns ``g`` (None for an
    input no output reaches)."""
    seeds = [Tensor(np.zeros(o.shape, dtype=o.dtype), requires_grad=True) for o in outs]
    vjps = _grads(outs, xs, seeds, create_graph=True)
    tangents = [v for g, v in zip(vjps, vs) if g is not None]
    used = [g for g in vjps if g is not None]
    return _grads(used, seeds, tangents, create_graph), vjps


def _strict_forward(who: str, vjps: list) -> None:
    for j, g in enumerate(vjps):
        if g is None:
            raise RuntimeError(f"{who}: the outputs of func do not depend on input {j}, which "
                               f"strict=True does not allow")


def vhp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), v^T H)`` for a func returning one element: the gradient of
    ``<grad func, v>`` (``torch.autograd.functional.vhp``)."""
    with enable_grad():
        in_tuple, xs = _inputs("vhp", inputs, create_graph)
        vs = _vectors("vhp", v, xs, "input", create_graph)
        out = _scalar_output("vhp", func(*xs), strict)
        first = _first_gradient("vhp", out, xs, strict)
        found = _grads(first, xs, vs, create_graph)
        found = _filled("vhp", found, xs, strict, create_graph,
                        "the gradient of func does not depend on input {i}")
    return _values([out], create_graph)[0], _unpack(_values(found, create_graph), in_tuple)


def hvp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), H v)`` for a func returning one element: the derivative of the
    gradient along ``v``, forward mode over reverse mode by the double-vjp trick
    (``torch.autograd.functional.hvp``). Equal to ``vhp`` where the Hessian is
    symmetric (wherever func is twice differentiable)."""
    with enable_grad():
        in_tuple, xs = _inputs("hvp", inputs, create_graph)
        vs = _vectors("hvp", v, xs, "input", create_graph)
        out = _scalar_output("hvp", func(*xs), strict)
        first = _first_gradient("hvp", out, xs, strict)
        found, _ = _forward(first, xs, vs, create_graph)
        found = _filled("hvp", found, xs, strict, create_graph,
                        "the gradient of func with respect to input {i} does not depend on the "
                        "inputs")
    return _values([out], create_graph)[0], _unpack(_values(found, create_graph), in_tuple)


def _first_gradient(who: str, out: Tensor, xs: list, strict: bool) -> list:
    """The recorded gradient of ``out`` (one per input; zeros where none flows)."""
    first = _grads([out], xs, None, create_graph=True)
    if strict:
        for i, g in enumerate(first):
            if g is None:
                raise RuntimeError(f"{who}: func does not depend on input {i}, which strict=True "
                                   f"does not allow")
            if not g.requires_grad:
                raise RuntimeError(f"{who}: the gradient of func with respect to input {i} does "
                                   f"not depend on the inputs (func is linear in it), which "
                                   f"strict=True does not allow")
    return [Tensor(np.zeros(x.shape, dtype=x.dtype)) if g is None else g
            for g, x in zip(first, xs)]


# ----------------------------------------------------------------- whole matrices

def jacobian(func: Callable[..., Any], inputs: Any, create_graph: bool = False,
             strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode") -> Any:
    """The Jacobian of func at ``inputs`` (``torch.autograd.functional.jacobian``):
    ``J[i][j]`` of shape ``outputs[i].shape + inputs[j].shape``, a single block when
    neither is a tuple. ``strategy="reverse-mode"`` takes one backward pass per output
    element, ``"forward-mode"`` one per input element (better for few inputs and many
    outputs). ``vectorize`` is accepted for PyTorch's signature; it changes nothing."""
    _check_strategy("jacobian", "strategy", strategy)
    with enable_grad():
        in_tuple, xs = _inputs("jacobian", inputs, create_graph)
        out_tuple, outs = _outputs("jacobian", func(*xs), strict)
        blocks = _jacobian("jacobian", outs, xs, create_graph, strict, strategy, "output {i}")
    rows = [_unpack(row, in_tuple) for row in blocks]
    return _unpack(rows, out_tuple)


def hessian(func: Callable[..., Any], inputs: Any, create_graph: bool = False,
            strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode") -> Any:
    """The Hessian of a func returning one element (``torch.autograd.functional.hessian``):
    ``H[i][j]`` of shape ``inputs[i].shape + inputs[j].shape``, a single block for a
    single input. It is the Jacobian of the recorded gradient, taken with
    ``outer_jacobian_strategy``. ``vectorize`` is accepted for PyTorch's signature."""
    _check_strategy("hessian", "outer_jacobian_strategy", outer_jacobian_strategy)
    with enable_grad():
        in_tuple, xs = _inputs("hessian", inputs, create_graph)
        out = _scalar_output("hessian", func(*xs), strict)
        first = _first_gradient("hessian", out, xs, strict)
        blocks = _jacobian("hessian", first, xs, create_graph, strict, outer_jacobian_strategy,
                           "the gradient with respect to input {i}")
    rows = [_unpack(row, in_tuple) for row in blocks]
    return _unpack(rows, in_tuple)


def _check_strategy(who: str, name: str, strategy: Any) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"{who}: {name} must be one of {STRATEGIES}, got {strategy!r}")


def _jacobian(who: str, outs: list, xs: list, create_graph: bool, strict: bool,
              strategy: str, what: str) -> list:
    """Blocks ``[i][j]`` of shape ``outs[i].shape + xs[j].shape``; ``what`` names
    ``outs[i]`` in strict mode's errors."""
    if strategy == "forward-mode":
        columns = _columns(outs, xs, create_graph)  # [j][k][i]
        parts = [[[col[i] for col in columns[j]] for j in range(len(xs))] for i in range(len(outs))]
    else:
        rows = [_rows(o, xs, create_graph) for o in outs]  # [i][k][j]
        parts = [[[row[j] for row in rows[i]] for j in range(len(xs))] for i in range(len(outs))]
    axis = -1 if strategy == "forward-mode" else 0
    blocks: list[list[Any]] = []
    for i, o in enumerate(outs):
        blocks.append([])
        for j, x in enumerate(xs):
            found = parts[i][j]
            if strict:
                _strict_block(who, found, create_graph, what.format(i=i), j)
            blocks[i].append(_assemble(found, o, x, create_graph, axis))
    return blocks


def _strict_block(who: str, found: list, create_graph: bool, what: str, j: int) -> None:
    if found and all(p is None for p in found):
        raise RuntimeError(f"{who}: {what} does not depend on input {j}, which strict=True "
                           f"does not allow")
    if create_graph and any(p is not None and not p.requires_grad for p in found):
        raise RuntimeError(f"{who}: the derivative of {what} with respect to input {j} does "
                           f"not depend on the inputs (it is linear in it), which strict=True "
                           f"with create_graph=True does not allow")


def _rows(out: Tensor, xs: list, create_graph: bool) -> list:
    """Reverse mode: one backward pass per element of ``out``, seeded with a one-hot."""
    return [_grads([out], xs, [_one_hot(out.shape, out.dtype, k)], create_graph)
            for k in range(out.size)]


def _columns(outs: list, xs: list, create_graph: bool) -> list:
    """Forward mode: for each input j and element k, ``J e_jk`` for every output, by the
    double-vjp trick (the recorded vjps are made once)."""
    seeds = [Tensor(np.zeros(o.shape, dtype=o.dtype), requires_grad=True) for o in outs]
    vjps = _grads(outs, xs, seeds, create_graph=True)
    columns = []
    for g, x in zip(vjps, xs):
        columns.append([_grads([g], seeds, [_one_hot(x.shape, x.dtype, k)], create_graph)
                        for k in range(x.size)])
    return columns


def _assemble(parts: Sequence[Any], out: Tensor, x: Tensor, create_graph: bool,
              axis: int) -> Any:
    """Stack rows (``axis=0``) or columns (``axis=-1``) into one block of shape
    ``out.shape + x.shape``; zeros where a part is None (no dependence)."""
    shape = out.shape + x.shape
    if all(p is None for p in parts):  # also no parts: out or x is empty
        return _zeros(shape, x.dtype, create_graph)
    part_shape = x.shape if axis == 0 else out.shape
    filled = [_zeros(part_shape, x.dtype, create_graph) if p is None else p for p in parts]
    if create_graph:
        return stack([p.reshape(-1) for p in filled], axis=axis).reshape(shape)
    return np.stack([p.reshape(-1) for p in filled], axis=axis).reshape(shape)
