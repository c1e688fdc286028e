"""The backward engine: graph order, the one central unbroadcast, grad modes.

Nothing here knows any op's math: every local gradient comes from the op table
(``ops.py``) through ``input_grads``.
"""
from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence, Union

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor


class _State:
    """Process-wide switches, read on every op (kept as plain attributes: cheap)."""
    grad_enabled = True
    anomaly = False
    groups: tuple = ()


state = _State()


class _Switch:
    """Base of the small context managers below (also usable as decorators)."""
    attr = ""

    def __init__(self, value) -> None:
        self.value = value

    def __enter__(self):
        self.saved = getattr(state, self.attr)
        setattr(state, self.attr, self.value)
        return self

    def __exit__(self, *exc) -> None:
        setattr(state, self.attr, self.saved)

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with type(self)(self.value):
                return fn(*a, **k)
        return wrapper


class _GradMode(_Switch):
    attr = "grad_enabled"


class _Anomaly(_Switch):
    attr = "anomaly"


def no_grad() -> _GradMode:
    """Context (or decorator) in which ops record no graph, as ``torch.no_grad``."""
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Context (or decorator) that turns graph recording back on."""
    return _GradMode(True)


def is_grad_enabled() -> bool:
    return state.grad_enabled


def detect_anomaly() -> _Anomaly:
    """Context in which the first op (forward or backward) producing NaN/inf raises
    ``FloatingPointError`` naming the op."""
    return _Anomaly(True)


class Group:
    """A tag on the nodes one call of a composite function (or module) creates,
    so diagrams can fold them into one gate. Each call gets its own Group."""
    __slots__ = ("name", "kind")

    def __init__(self, name: str, kind: str = "function") -> None:
        self.name = name
        self.kind = kind

    def __enter__(self) -> "Group":
        self.saved = state.groups
        state.groups = self.saved + (self,)
        return self

    def __exit__(self, *exc) -> None:
        state.groups = self.saved

    __slots__ += ("saved",)

    def __repr__(self) -> str:
        return f"Group({self.name!r}, kind={self.kind!r})"


def group(name: str, kind: str = "function") -> Group:
    """``with group("softmax"): ...`` tags every node created inside with a new Group."""
    return Group(name, kind)


# ----------------------------------------------------------------- graph order

def backward_order(root: "Tensor") -> list["Tensor"]:
    """Nodes that require grad and lead to ``root``, root first, each before its
    inputs (reverse topological order). Iterative: deep graphs are fine.

    A tensor is always created after its inputs, so newest-first creation order
    (``stamp``) is such an order: collect the nodes, then sort them once."""
    seen = {id(root)}
    nodes = [root]
    for node in nodes:  # the list grows while it is walked: every node once, no stack
        for p in node.parents:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                nodes.append(p)
    nodes.sort(key=_stamp, reverse=True)
    return nodes


_stamp = operator.attrgetter("stamp")


def unbroadcast(grad: np.ndarray, shape: tuple, dtype) -> np.ndarray:
    """Sum a gradient back to an input's ``shape`` (NumPy broadcasting in reverse)
    and cast it to the input's dtype. The only place this is done."""
    if grad.shape != shape:
        extra = grad.ndim - len(shape)
        if extra == 1 and shape and grad.shape[1:] == shape:  # a bias added to every row
            grad = grad.sum(axis=0)
        else:
            if extra < 0 or any(n != 1 and n != m for n, m in zip(shape, grad.shape[extra:])):
                # e.g. a user-defined backward returning a wrong shape: never reshape silently
                raise RuntimeError(f"a gradient of shape {grad.shape} cannot be summed back "
                                   f"to an input of shape {shape}")
            axes = tuple(range(extra)) + tuple(
                i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
            grad = grad.sum(axis=axes, keepdims=True) if axes else grad  # (not np.sum: slower)
            grad = grad.reshape(shape)
    if grad.dtype != dtype:
        grad = grad.astype(dtype)
    return grad


def input_grads(node: "Tensor", g: np.ndarray) -> list[Optional[np.ndarray]]:
    """The gradient flowing back from ``node`` along each input wire, given the
    gradient ``g`` of ``node``; None for inputs that do not require grad.
    Pure: reads the graph, changes nothing (``viz`` calls it too)."""
    parents = node.parents
    needs = [p.requires_grad for p in parents]
    try:
        raw = node.op.backward(g, node.data, [p.data for p in parents], needs, **node.args)
    except ValueError as e:
        if "read-only" not in str(e):
            raise
        raise ValueError(f"{node.op.name} backward wrote into its gradient g, which is read-only "
                         f"(it is the node's .grad): compute a new array, e.g. "
                         f"`g * (x > 0)`, not `g[x <= 0] = 0`") from e
    if type(raw) is np.ndarray or len(raw) != len(parents):  # a learner's `return g * 2 * x`
        raise RuntimeError(f"{node.op.name} backward must return a tuple with one gradient "
                           f"(or None) per input: {len(parents)} input(s)")
    grads = []
    for p, need, pg in zip(parents, needs, raw):
        if need and pg is not None:
            x = p.data
            if type(pg) is not np.ndarray or pg.shape != x.shape or pg.dtype is not x.dtype:
                pg = _fit(node, pg, x)
            grads.append(pg)
        else:
            grads.append(None)
    if state.anomaly:
        for p, pg in zip(parents, grads):
            if pg is not None and not np.all(np.isfinite(pg)):
                raise FloatingPointError(
                    f"{node.op.name} backward produced nan/inf in the gradient of an input "
                    f"of shape {p.data.shape}")
    return grads


def _fit(node: "Tensor", pg: Any, x: np.ndarray) -> np.ndarray:
    """An op's gradient made an array of its input's shape and dtype."""
    pg = np.asarray(pg)  # 0-d arithmetic gives NumPy scalars
    try:
        return unbroadcast(pg, x.shape, x.dtype)
    except RuntimeError as e:
        raise RuntimeError(f"{node.op.name} backward: {e}") from None


def run_backward(root: "Tensor", seed: np.ndarray,
                 capture: Optional[Sequence["Tensor"]] = None) -> Optional[list]:
    """Propagate ``seed`` (the gradient of ``root``, an array the caller gives away)
    through the graph.

    Without ``capture``: every node that requires grad accumulates its gradient into
    ``.grad``. A leaf's ``.grad`` is its own writable array; an intermediate's is
    stored as computed, read-only, since it may share memory with other
    intermediates' (an add passes its gradient straight through): no copies.
    With ``capture``: nothing is stored; the gradients of those tensors are returned.
    A backward that raises leaves every ``.grad`` as it was.
    """
    order = backward_order(root)
    pending = {id(root): seed}  # node id -> its gradient, summed so far
    # Nodes whose pending array the pass made itself and nobody else holds: later
    # gradients are added into it in place (as a hand-written dW1 += ...).
    mine = {id(root)}
    wanted = None if capture is None else {id(t): i for i, t in enumerate(capture)}
    found: list = [None] * (0 if capture is None else len(capture))
    before = {id(t): t.grad for t in order if t.grad is not None} if wanted is None else {}
    accumulate = []  # leaves that already hold a gradient: added into once the pass succeeded
    try:
        for node in order:
            key = id(node)
            g = pending.pop(key, None)
            if g is None:
                continue
            if wanted is None:
                if node.op is not None:  # an intermediate: its gradient, read-only
                    if node.grad is not None:
                        stored = _added(node.grad, g)
                    else:  # never flip the flag of an array someone else holds
                        stored = g if key in mine else g.view()
                    stored.setflags(write=False)
                    node.grad = stored
                elif node.grad is None:  # a leaf owns its gradient: optimizers write into it
                    node.grad = g if key in mine else g.copy()
                else:
                    accumulate.append((node, g))
            elif key in wanted:
                found[wanted[key]] = g.copy()  # the caller's own, whatever a backward does to g
            op = node.op
            if op is None:
                continue
            grads = input_grads(node, g)
            n = len(grads)
            fresh_ok = op.fresh_grads
            if fresh_ok and (n > 2 or n == 2 and grads[0] is grads[1] is not g):
                grads = _unshare(node.parents, grads, g)  # (x * x)
            for p, pg in zip(node.parents, grads):
                if pg is None:
                    continue
                pkey = id(p)
                prev = pending.get(pkey)
                # Only new arrays from ops that promise them are ever written into.
                fresh = fresh_ok and pg is not g and pg.base is None
                if prev is None:
                    pending[pkey] = pg
                    if fresh:
                        mine.add(pkey)
                elif pkey in mine:
                    prev += pg
                elif fresh:
                    pg += prev
                    pending[pkey] = pg
                    mine.add(pkey)
                else:  # both may be held elsewhere: a new array
                    pending[pkey] = _added(prev, pg)
                    mine.add(pkey)
    except BaseException:
        if wanted is None:
            for t in order:
                t.grad = before.get(id(t))
        raise
    for node, g in accumulate:  # across backward() calls, in place, as PyTorch
        if node.grad.flags.writeable:
            node.grad += g
        else:
            node.grad = _added(node.grad, g)
    return found if capture is not None else None


def _added(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` as a new array (adding two 0-d arrays gives a NumPy scalar)."""
    return np.asarray(a + b)


def _unshare(parents: tuple, grads: list, g: np.ndarray) -> list:
    """An op may return one new array for several inputs (``x * x``). Before the engine
    adds into it, the shares of one input become one (scaled in place: the array is
    new) and every other input gets its own copy."""
    grads = list(grads)
    for i, pg in enumerate(grads):
        if pg is None or pg is g or pg.base is not None:
            continue
        count = 1
        for j in range(i + 1, len(grads)):
            if grads[j] is pg:
                if parents[j] is parents[i]:
                    count += 1
                    grads[j] = None
                else:
                    grads[j] = pg.copy()
        if count > 1:
            pg *= count
    return grads


def grad(outputs: "Tensor", inputs: Union["Tensor", Iterable["Tensor"]],
         grad_outputs: Optional[np.ndarray] = None, allow_unused: bool = False) -> list:
    """Gradients of ``outputs`` with respect to ``inputs``, returned as NumPy arrays
    without touching any ``.grad`` (as ``torch.autograd.grad``)."""
    from .tensor import Tensor
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    seed = outputs._seed(grad_outputs, "grad")
    found = run_backward(outputs, seed, capture=inputs)
    last = {id(t): i for i, t in enumerate(inputs)}  # a repeated input is captured once, here
    for i, t in enumerate(inputs):
        if last[id(t)] != i and found[last[id(t)]] is not None:  # grad(y, [x, x]), as torch
            found[i] = found[last[id(t)]].copy()
    for i, (t, g) in enumerate(zip(inputs, found)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {t.shape}) was not used to compute the output; "
                    f"pass allow_unused=True to get None for it")
    return found[0] if single else found
