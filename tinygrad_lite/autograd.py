"""The backward engine: grad modes, graph order, the backward walk and its guards.

Nothing here knows any op's math: every local gradient comes from the op table
(``ops.py``) through ``input_grads``. ``propagate`` is the one walk of the backward
pass; ``Tensor.backward``, ``tl.grad`` and the diagrams are built on it.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import operator
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import numpy as np

from .ops import NP, Function

if TYPE_CHECKING:
    from .tensor import Tensor


# ----------------------------------------------------------------- per-thread switches

class _State(threading.local):
    """Grad mode, anomaly mode and the open composite groups, one set per thread (as
    PyTorch's grad mode): a ``no_grad`` block in one thread leaves every other
    thread's graph recording. Class attributes are each new thread's defaults."""
    grad_enabled = True
    anomaly = False
    groups: tuple = ()
    #: the ``tl.compile`` tracer recording this thread's work, or None (see compiler.py)
    tracer: Any = None


state = _State()


class _Switch:
    """Base of the small context managers below (also usable as decorators)."""
    attr = ""

    def __init__(self, value: bool) -> None:
        self.value = value
        self.saved: list = []  # a stack: one object may be entered again before it exits

    def __enter__(self) -> "_Switch":
        self.saved.append(getattr(state, self.attr))
        setattr(state, self.attr, self.value)
        return self

    def __exit__(self, *exc: Any) -> None:
        setattr(state, self.attr, self.saved.pop())

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*a: Any, **k: Any) -> Any:
            with type(self)(self.value):
                return fn(*a, **k)
        return wrapper


class _GradMode(_Switch):
    attr = "grad_enabled"


class _Anomaly(_Switch):
    attr = "anomaly"


def no_grad() -> _GradMode:
    """Context (or decorator) in which ops record no graph, as ``torch.no_grad``.
    It applies to the current thread only."""
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Context (or decorator) that turns graph recording back on (this thread)."""
    return _GradMode(True)


class _SetGradEnabled(_GradMode):
    """``torch.set_grad_enabled``'s timing: the mode changes when it is called, so a
    plain call ``tl.set_grad_enabled(False)`` works; a ``with`` block puts back the
    mode found at the call, and as a decorator it changes nothing until the function
    runs."""

    def __init__(self, value: bool) -> None:
        super().__init__(value)
        self.found = state.grad_enabled
        state.grad_enabled = value

    def __enter__(self) -> "_SetGradEnabled":
        return self

    def __exit__(self, *exc: Any) -> None:
        state.grad_enabled = self.found

    def __call__(self, fn: Callable) -> Callable:
        state.grad_enabled = self.found  # decorating is not running
        return super().__call__(fn)


def set_grad_enabled(mode: bool) -> _GradMode:
    """``torch.set_grad_enabled``: sets grad mode to ``mode`` for this thread, as a
    function call, a context (restoring the mode it found) or a decorator."""
    return _SetGradEnabled(bool(mode))


def is_grad_enabled() -> bool:
    return state.grad_enabled


def detect_anomaly() -> _Anomaly:
    """Context in which the first op (forward or backward) producing NaN/inf raises
    ``FloatingPointError`` naming the op (this thread)."""
    return _Anomaly(True)


class Group:
    """A tag on the nodes one call of a composite function (or module) creates,
    so diagrams can fold them into one gate. Each call gets its own Group."""
    __slots__ = ("name", "kind", "saved", "exact")

    def __init__(self, name: str, kind: str = "function") -> None:
        self.name = name
        self.kind = kind
        #: False when the composite's one-line gradient (``functional.TEMPLATES``) does
        #: not describe this call (set by the composite; ``tl.explain`` then shows its gates)
        self.exact = True

    def __enter__(self) -> "Group":
        self.saved = state.groups
        state.groups = self.saved + (self,)
        return self

    def __exit__(self, *exc: Any) -> None:
        state.groups = self.saved

    def __repr__(self) -> str:
        return f"Group({self.name!r}, kind={self.kind!r})"


def group(name: str, kind: str = "function") -> Group:
    """``with group("softmax"): ...`` tags every node created inside with a new Group."""
    return Group(name, kind)


# ----------------------------------------------------------------- guards on saved arrays
#
# The backward pass reads arrays the forward pass saved. Two guards keep a change
# made in between from turning into a silently wrong gradient:
#
# * Write stamps. Every in-place change the library makes (``W -= lr * g`` under
#   no_grad, ``t[i] = v``, ``W.detach() += 1``, optimizers) goes through ``modify``,
#   which stamps the tensor with the creation counter. A tensor, its ``detach()``
#   copies and the views made from it share one stamp cell. Backward raises when a
#   node's input or output was written after the node was made (PyTorch's version
#   counters, with time instead of a count).
# * Read-only leaves. A leaf array a recorded node reads (a parameter, or a user's
#   array used as a constant, like ``X`` in ``X @ W``) is made read-only until the
#   graph's backward completes or the node is freed, so a raw NumPy write
#   (``W.data[...] = 0``, ``X[0] = 0``) fails at the write with NumPy's error.

#: Creation stamps. A tensor is always created after its inputs, so sorting by stamp,
#: newest first, is a valid backward order; writes take stamps from the same counter.
stamps = itertools.count()
#: the stamp of the newest library write (nodes made after it need no check)
_last_write = [-1]
_holds_lock = threading.Lock()
_lock_acquire, _lock_release = _holds_lock.acquire, _holds_lock.release
_lock_try = functools.partial(_holds_lock.acquire, False)
#: id(array) -> [array, number of live nodes reading it]
_held: dict = {}


class Hold:
    """The leaf arrays one recorded node reads, kept read-only until ``release``
    (after a backward over the node) or until the node is freed."""
    __slots__ = ("arrays",)
    arrays: Optional[list[np.ndarray]]  # None once released

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.arrays = arrays
        _lock_acquire()
        try:
            for a in arrays:
                entry = _held.get(id(a))  # (the entry keeps its array alive: ids stay unique)
                if entry is None:
                    # [array, live holds, made read-only here] (an array the user made
                    # read-only stays theirs: it is never made writable)
                    entry = _held[id(a)] = [a, 0, a.flags.writeable]
                    if entry[2]:
                        a.setflags(write=False)
                entry[1] += 1
        finally:
            _unlock_and_drain()

    def release(self) -> None:
        """Give the arrays back. Safe from ``__del__``: a collection may free a node
        while this thread holds the table's lock, so the release is queued and done by
        whoever holds the lock next (here, at once, when nobody does)."""
        arrays = self.arrays
        if not arrays:
            return
        self.arrays = None
        _released.append(arrays)
        if _lock_try():
            _unlock_and_drain()

    __del__ = release


#: arrays of freed or released holds, waiting for the lock
_released: list = []


def _unlock_and_drain() -> None:
    """Apply queued releases, then release the table's lock (held by the caller)."""
    while True:
        try:
            while _released:
                for a in _released.pop():  # (list.pop and append are atomic)
                    entry = _held[id(a)]
                    entry[1] -= 1
                    if not entry[1]:
                        del _held[id(a)]
                        if entry[2]:
                            try:
                                a.setflags(write=True)
                            except ValueError:  # its base was made read-only meanwhile
                                pass
        finally:
            _lock_release()
        # a release queued by another thread after the loop ended waits for no one
        if not _released or not _lock_try():
            return


def is_held(array: Optional[np.ndarray]) -> bool:
    """True while a recorded node that has not been backwarded reads ``array`` and the
    guard made it read-only."""
    entry = _held.get(id(array))
    return entry is not None and entry[0] is array and entry[2]


def modify(t: "Tensor", write: Callable[[np.ndarray], Any]) -> Any:
    """Run ``write(t.data)``, an in-place change the library makes to ``t``'s array,
    and stamp ``t`` as written now. A read-only guard this module set is lifted for
    the write only; a backward over a graph that used the old values then raises."""
    if state.tracer is not None:
        return state.tracer.modify(t, write)
    arr = t.data
    guarded = guarded_arrays(arr)
    for a in guarded:
        a.setflags(write=True)
    try:
        result = write(arr)
    finally:
        for a in reversed(guarded):
            a.setflags(write=False)
    stamp_write(t)
    return result


def guarded_arrays(arr: np.ndarray) -> list:
    """The read-only guards a library write into ``arr`` must lift (and set again
    after it): on the array, or on the one it is a view of."""
    return [a for a in (arr.base, arr) if a is not None and not a.flags.writeable
            and (is_held(a) or a is arr and is_held(arr.base))]


def stamp_write(t: "Tensor") -> None:
    """Mark ``t`` (and the tensors sharing its memory) as written now."""
    cell = t._written
    if cell is None:
        cell = t._written = [0]
    cell[0] = _last_write[0] = next(stamps)


def host(fn: Callable, *args: Any) -> Any:
    """``fn(*args)``: Python the library runs on array values (a check of labels that
    raises, the random numbers of a dropout mask). Under ``tl.compile``'s trace it
    is recorded, and every replay runs it again on that replay's arrays."""
    if state.tracer is not None:
        return state.tracer.host(fn, args)
    return fn(*args)


def is_traced(x: Any) -> bool:
    """True when ``x`` is an array of the ``tl.compile`` trace running in this thread
    (an argument or a value computed from one): its shape and dtype can be read, its
    values cannot (checks that read values go through ``host``)."""
    return state.tracer is not None and state.tracer.owns(x)


def effect(fn: Callable, owner: Any, tensors: list, others: tuple = ()) -> Any:
    """``fn(owner)``: Python that changes ``tensors``' arrays in place, reading their
    ``.grad``, and the attributes of ``owner`` and ``others`` (an optimizer's step; a
    scheduler's, which changes its optimizer's lr). Under ``tl.compile``'s trace it is
    recorded as one call that every replay makes again."""
    if state.tracer is not None:
        return state.tracer.effect(fn, owner, tensors, others)
    return fn(owner)


@contextlib.contextmanager
def lifted_guard(array: np.ndarray) -> Iterator[np.ndarray]:
    """Make a guarded leaf array writable for a change the caller undoes exactly before
    leaving (the numerical-gradient helpers perturb one entry and put it back), so it
    is not stamped as a change."""
    held = is_held(array)
    if held:
        array.setflags(write=True)
    try:
        yield array
    finally:
        if held and is_held(array):
            array.setflags(write=False)


def share_stamps(a: "Tensor", b: "Tensor") -> None:
    """``a`` and ``b`` share memory (a view, a ``detach()``): a write to one stamps both."""
    cell = a._written
    if cell is None:
        cell = a._written = [-1]
    b._written = cell


def _check_unchanged(node: "Tensor", op: type[Function]) -> None:
    """Raise if ``node``'s output or an input was written after ``node`` (made by
    ``op``) was made."""
    for t, role in ((node, "output"), *((p, "input") for p in node.parents)):
        cell = t._written
        if cell is not None and cell[0] > node.stamp:
            who = f"{t.name!r}, " if t.name else ""
            raise RuntimeError(
                f"backward: one of the arrays needed for gradient computation has been "
                f"modified by an in-place operation: the {role} ({who}shape {t.shape}) of "
                f"{op.name} was changed after {op.name} used it (e.g. `W -= ...` "
                f"under no_grad, `t[i] = v`, `W.detach() += ...` or an optimizer step). "
                f"Run the forward pass again after changing it")


def release_holds(order: list) -> None:
    """A backward over these nodes completed: their holds are given back (in one visit
    to the guard table); each leaf array is writable again once no other node that has
    not been backwarded reads it. Under the table's lock, so two
    threads finishing a backward over one graph give each array back once."""
    _lock_acquire()
    try:
        arrays: list = []
        for node in order:
            hold = node._hold
            if hold is not None:
                node._hold = None
                if hold.arrays:
                    arrays += hold.arrays
                    hold.arrays = None
        if arrays:
            _released.append(arrays)
    finally:
        _unlock_and_drain()


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


def leading_to(order: list["Tensor"], targets: list["Tensor"]) -> set:
    """ids of the nodes of ``order`` from which some target can be reached (the
    targets included): the only ones a gradient with respect to the targets needs."""
    keep = {id(t) for t in targets}
    for node in reversed(order):  # inputs before the nodes that use them
        if id(node) not in keep and any(id(p) in keep for p in node.parents):
            keep.add(id(node))
    return keep


def unbroadcast(grad: np.ndarray, shape: tuple, dtype: Any) -> np.ndarray:
    """Sum a gradient back to an input's ``shape`` (NumPy broadcasting in reverse)
    and cast it to the input's dtype."""
    grad = NP.sum_to(grad, shape)
    return grad if grad.dtype == dtype else grad.astype(dtype)


# ----------------------------------------------------------------- one node

def input_grads(node: "Tensor", g: Any, xp: Any = NP, wanted: Optional[set] = None) -> list:
    """The gradient flowing back from ``node`` along each input wire, given the
    gradient ``g`` of ``node``, summed back to each input's shape and dtype; None for
    inputs that need none (``wanted``: ids of the inputs to compute, default every
    input that requires grad). ``xp`` is the namespace of ``g`` (``NP`` for arrays,
    ``tensor.TENSOR`` for Tensors). Pure: reads the graph, changes nothing. A leaf has
    no input wires: ``[]``."""
    op = node.op
    if op is None:
        return []
    parents = node.parents
    if wanted is None:
        needs = [p.requires_grad for p in parents]
    else:
        needs = [p.requires_grad and id(p) in wanted for p in parents]
    if xp is NP:
        xs = node._inputs  # the arrays the forward pass computed with
        out = node.data
    else:
        for p, a in zip(parents, node._inputs):
            if p.data is not a:
                _rebound(op, p)
        xs = [xp.value(p) for p in parents]
        out = xp.value(node)
    try:
        raw = op.backward(xp, g, out, xs, needs, **node.args)
    except ValueError as e:
        if "read-only" not in str(e):
            raise
        raise ValueError(f"{op.name} backward wrote into its gradient g, which is read-only "
                         f"(it is the node's .grad): compute a new array, e.g. "
                         f"`g * (x > 0)`, not `g[x <= 0] = 0`") from e
    if not isinstance(raw, (tuple, list)) or len(raw) != len(parents):  # `return g * 2 * x`
        raise RuntimeError(f"{op.name} backward must return a tuple with one gradient "
                           f"(or None) per input: {len(parents)} input(s)")
    grads = []
    for x, need, pg in zip(xs, needs, raw):
        if need and pg is not None:
            # (on Tensors an array, like pow's zeros for ** 0, must become a Tensor too)
            if type(pg) is not np.ndarray or pg.shape != x.shape or pg.dtype is not x.dtype \
                    or xp is not NP:
                pg = _fit(op, pg, x, xp)
            grads.append(pg)
        else:
            grads.append(None)
    if state.anomaly:
        for p, pg in zip(parents, grads):
            if pg is not None and not np.all(np.isfinite(getattr(pg, "data", pg))):
                raise FloatingPointError(
                    f"{op.name} backward produced nan/inf in the gradient of an input "
                    f"of shape {p.data.shape}")
    return grads


def _rebound(op: type[Function], p: "Tensor") -> None:
    who = f"{p.name!r}, " if p.name else ""
    raise RuntimeError(
        f"backward(create_graph=True): the input ({who}shape {p.shape}) of {op.name} was "
        f"given a new array (`.data = ...`) after {op.name} used it; a recorded backward "
        f"computes with the tensor itself, so it would differentiate the new values. Run the "
        f"forward pass again after changing it")


def _fit(op: type[Function], pg: Any, x: Any, xp: Any) -> Any:
    """An op's gradient made a value of its input's shape and dtype."""
    pg = xp.asarray(pg)  # 0-d arithmetic gives NumPy scalars
    try:
        if pg.shape != x.shape:
            pg = xp.sum_to(pg, x.shape)
    except RuntimeError as e:
        raise RuntimeError(f"{op.name} backward: {e}") from None
    return pg if pg.dtype == x.dtype else pg.astype(x.dtype)


# ----------------------------------------------------------------- the backward walk

def propagate(root: "Tensor", gradient: Any, xp: Any = NP, targets: Optional[list] = None,
              release: bool = False) -> Iterator[tuple]:
    """The backward pass, one node at a time: yields ``(node, g, grads)`` for each
    node that receives a gradient, in ``backward_order`` (root first): ``g`` is the
    node's whole gradient (every use summed), ``grads`` what flows from it to each
    input (``node.parents``; None where none flows; empty for a leaf).

    ``gradient`` (the root's gradient) is given away to the pass. Fan-in is summed
    as HIPS autograd's ``add_outgrads`` does: the first gradient to arrive is kept,
    later ones are added into an array the pass owns (in place, as a hand-written
    ``dW1 += ...``). With NumPy arrays a leaf's ``g`` is an array of its own (the
    caller may keep it and write into it); an intermediate's is read-only, since it
    may share memory with others'. ``grads`` are valid until the walk goes on.
    With ``targets`` only what reaches them is computed. ``release=True`` (a real
    backward, not a diagram) makes the leaf arrays the graph read writable again once
    the walk has completed.

    Raises ``RuntimeError`` if an array a node needs was changed in place after
    the node was made (see ``modify``)."""
    order = backward_order(root)
    wanted = None if targets is None else leading_to(order, targets)
    numpy = xp is NP
    pending = {id(root): gradient}
    owned = {id(root)}  # nodes whose pending array the pass made and nobody else holds
    check_from = _last_write[0]
    for node in order:
        key = id(node)
        g = pending.pop(key, None)
        if g is None:
            continue
        op = node.op
        if op is None:
            if numpy and key not in owned:
                g = g.copy()
            yield node, g, ()
            continue
        if node.stamp < check_from:  # a library write happened since this node was made
            _check_unchanged(node, op)
        fresh_ok = numpy and op.fresh_grads
        if numpy:
            # An intermediate's gradient may share memory with others' (an add passes
            # it on as it is): read-only from here on. A user-defined backward gets a
            # copy of its own, so cs231n's `dx = dout; dx[x <= 0] = 0` style works.
            if key not in owned:
                g = g.view()
            g.setflags(write=False)
            grads = input_grads(node, g if fresh_ok else g.copy(), xp, wanted)
        else:
            grads = input_grads(node, g, xp, wanted)
        yield node, g, grads
        parents = node.parents
        n = len(grads)
        if fresh_ok and (n > 2 or n == 2 and grads[0] is grads[1] is not None
                         and grads[0] is not g):
            grads = _unshared(parents, grads, g)
        for p, pg in zip(parents, grads):
            if pg is None:
                continue
            pkey = id(p)
            prev = pending.get(pkey)
            # Only new arrays from ops that promise them are ever written into.
            fresh = fresh_ok and pg is not g and pg.base is None
            if prev is None:
                pending[pkey] = pg
                if fresh:
                    owned.add(pkey)
            elif not numpy:
                pending[pkey] = prev + pg
            elif pkey in owned:
                prev += pg
            elif fresh:
                pg += prev
                pending[pkey] = pg
                owned.add(pkey)
            else:  # both may be held elsewhere: a new array
                pending[pkey] = np.asarray(prev + pg)  # (0-d + 0-d gives a NumPy scalar)
                owned.add(pkey)
    if release:  # only what this walk read: with targets, other branches stay guarded
        release_holds(order if wanted is None else [n for n in order if id(n) in wanted])


def _unshared(parents: tuple, grads: list, g: np.ndarray) -> list:
    """An op may return one new array for several inputs (``x * x``). Before the engine
    adds into it, the shares of one input become one (scaled in place: the array is
    new) and every other input gets its own copy."""
    grads = list(grads)
    for i, pg in enumerate(grads):
        if pg is None or pg is g or pg.base is not None:  # not new: never added into
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
