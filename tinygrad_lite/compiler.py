"""``tl.compile``: trace a training step once, replay it without building a graph.

The first call of a compiled function (per argument shapes, dtypes and Python
constants) runs it with a ``Tracer`` installed as ``autograd.state.tracer``. The
library's hooks report to it: ``apply`` runs each op's forward on traced values
(``trace.Traced``), ``run_backward`` runs the one backward walk (``propagate``) on
them, ``modify`` records the library's in-place updates, ``effect`` an optimizer's
step, ``host`` Python that reads values (label checks, dropout masks). Reading a
traced value in Python is refused (``TraceError``), so nothing the replay cannot
redo is frozen into it.

The recorded program is then replayed once from a snapshot of the state it changed
and must reproduce the traced call bit for bit; otherwise the call is undone and
refused, naming what differed. Later calls bind the new arguments and run a flat
list of NumPy calls writing into preallocated buffers (``out=``): the optimized
program of rewrite.py when, replayed from the same snapshot, it agreed with the
literal one to within ``rewrite.ROUNDING_ULPS``, else the literal program.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import random
import sys
import threading
import types
from typing import Any, Callable, Iterator, Optional

import numpy as np

from . import rewrite
from .autograd import (backward_order, guarded_arrays, propagate, share_stamps, stamp_write,
                       stamps, state)
from .rewrite import ROUNDING_ULPS, Code, plan_buffers
from .tensor import (GradientShapeError, Tensor, _checked_grad, _fail, _lift_all, _make, _new,
                     _tensors)
from .trace import Ref, Trace, TraceError, Traced, TraceNamespace, resolve

__all__ = ["compile", "Compiled", "TraceError"]

#: traces kept per argument signature (each with its own guards) before the oldest goes
MAX_TRACES = 8
#: argument signatures kept (a Python number that changes at every call, such as a
#: decayed learning rate passed as an argument, traces at every call) before the
#: least recently used goes
MAX_SIGNATURES = 64


# ----------------------------------------------------------------- the tracer

class _Contact:
    """A tensor from before the trace that the trace touched: its array and gradient
    as they were, and how the trace read them."""
    __slots__ = ("tensor", "data", "value", "grad", "grad_value", "grad_read", "grad_written",
                 "source")

    def __init__(self, tensor: Tensor, value: Traced, source: Any) -> None:
        self.tensor = tensor
        self.data = tensor.data       # the real array, put back at the end
        self.value = value            # the Traced that stands for it during the trace
        self.grad = tensor._grad      # .grad before the trace
        self.grad_value: Optional[Traced] = None
        self.grad_read: Optional[str] = None  # "none" / "array": read before written
        self.grad_written = False
        self.source = source          # ("data", tensor) or ("arg", path)


class Tracer:
    """What the library's hooks report to while ``tl.compile`` traces a call."""

    def __init__(self) -> None:
        self.trace = Trace()
        self.trace.before_write = self._before_write
        self.xp = TraceNamespace(self.value)
        self.start = next(stamps)
        self.contacts: dict = {}      # id(tensor) -> _Contact
        self.by_array: dict = {}      # id(array) -> value index of an external array
        self.snapshots: dict = {}     # root value index -> copy before its first write
        self.owners: list = []        # (object an effect changes, deep copy of its state)
        self.stored: set = set()      # value indices stored as a leaf's .grad
        self.rng_start = np.random.get_state()
        self.rng_seen = self.rng_start
        self.python_rng = random.getstate()
        self.generators: list = []    # (a NumPy generator the function can reach, its state)

    # ------------------------------------------------------------ values
    def owns(self, x: Any) -> bool:
        return type(x) is Traced and x.trace is self.trace

    def value(self, t: Tensor) -> Any:
        """The value standing for tensor ``t``: a Traced, or a constant array (a
        tensor made during the trace from plain arrays)."""
        d = t.data
        if type(d) is Traced:
            if d.trace is not self.trace:
                self.trace.refuse("a tensor from another trace is used")
            return d
        if t.stamp > self.start:
            return d
        return self.contact(t).value

    def contact(self, t: Tensor, kind: str = "state", source: Any = None) -> _Contact:
        c = self.contacts.get(id(t))
        if c is not None:
            return c
        arr = t.data
        if type(arr) is not np.ndarray:
            self.trace.refuse(f"a tensor holds a {type(arr).__name__} as .data")
        index = self.by_array.get(id(arr))
        if index is None or kind == "input":
            v = self.trace.external(arr, kind, source=t)
            self.by_array[id(arr)] = v.index
            if kind == "state":  # (a write through an alias the trace cannot see shows)
                self._before_write(v.index)
        else:
            v = self.trace.handle(index)
        c = self.contacts[id(t)] = _Contact(t, v, source or ("data", t))
        t.data = v
        return c

    def _before_write(self, root: int) -> None:
        if root not in self.snapshots:
            self.snapshots[root] = self.trace.values[root].array.copy()

    # ------------------------------------------------------------ hooks
    def apply(self, op: type, inputs: Any, args: dict) -> Tensor:
        if not op.any_namespace:
            self.trace.refuse(
                f"{op.name}: its forward/backward take no xp (array namespace) parameter, so "
                f"they compute on NumPy arrays only and cannot be traced; write them as "
                f"forward(xp, *xs) / backward(xp, g, out, xs, needs) using xp's functions")
        for x in inputs:
            if type(x) is not Tensor:
                inputs = _lift_all(inputs)
                break
        vals = [self.value(x) for x in inputs]
        saved, self.trace.tag = self.trace.tag, (op, "forward")
        try:
            out = op.forward(self.xp, *vals, **args)
        except (ValueError, IndexError, TypeError) as e:
            _fail(op, inputs, e)
        finally:
            self.trace.tag = saved
        if type(out) is not Traced:
            out = np.asarray(out)
        t = None
        if state.grad_enabled and out.dtype.kind == "f":
            for x in inputs:
                if x.requires_grad:
                    t = _make(out, True, op, tuple(inputs), args, state.groups)
                    t._inputs = vals
                    break
        if t is None:
            t = _new(out)
        if type(out) is Traced:
            root = self.trace.values[out.index].root
            for x, v in zip(inputs, vals):
                if type(v) is Traced and self.trace.values[v.index].root == root:
                    share_stamps(x, t)  # a view: a write to one is a write to both
                    break
        return t

    def modify(self, t: Tensor, write: Callable) -> Any:
        d = t.data
        if type(d) is not Traced:
            if t.stamp > self.start:  # a constant made in the trace: write into a copy
                d = t.data = self.trace.temp_copy(d)
            else:
                d = self.contact(t).value
        root = self.trace.values[d.index].root
        self.trace.writable.add(root)
        try:
            with _library_write([d.array]):  # as eagerly: a guard of a live graph lifted
                result = write(d)
        finally:
            self.trace.writable.discard(root)
        stamp_write(t)
        return result

    def read(self, t: Tensor, who: str) -> None:
        if type(t.data) is Traced or t.stamp < self.start:
            name = f" {t.name!r}" if t.name else ""
            self.trace.refuse(
                f"{who} reads the value of a traced tensor{name} (shape {t.shape}) in Python, "
                f"which a replay cannot do: the number or decision would be frozen into the "
                f"trace. Return the tensor from the compiled function and read it there, or "
                f"keep the computation in tensor ops (tl.where instead of an `if`)")

    def grad(self, t: Tensor) -> Any:
        g = t._grad
        if t.stamp > self.start or type(g) is Traced:
            return g
        c = self.contact(t)
        if c.grad_written:
            return g
        if g is None:
            c.grad_read = c.grad_read or "none"
            return None
        if type(g) is not np.ndarray:
            self.trace.refuse("a .grad that is not a NumPy array (create_graph?) is read")
        c.grad_read = "array"
        c.grad_value = self.trace.external(g, "grad", source=t)
        t._grad = c.grad_value
        return c.grad_value

    def set_grad(self, t: Tensor, value: Any) -> Any:
        """What ``t.grad = value`` stores: None or a traced array (a constant array is
        copied at each replay, so a change the user makes to one call's ``.grad``
        reaches no other call)."""
        if isinstance(value, Tensor):
            value = value.data
        if value is not None and not self.owns(value):
            if type(value) is Traced:
                self.trace.refuse("a value of another trace is assigned to .grad")
            value = self.trace.temp_copy(_checked_grad(t, value))
        elif value is not None:
            if value.dtype != t.dtype:
                raise TypeError(f"grad: assigned grad has dtype {value.dtype}, the tensor has "
                                f"dtype {t.dtype}")
            if value.shape != t.shape:
                raise GradientShapeError(f"grad: assigned grad has shape {value.shape}, the "
                                         f"tensor has shape {t.shape}")
        if t.stamp < self.start:
            self.contact(t).grad_written = True
        return value

    def run_backward(self, root: Tensor, gradient: Any, create_graph: bool, inputs: Any) -> None:
        if create_graph:
            self.trace.refuse("backward(create_graph=True) (gradients of gradients) is not "
                              "traced; call the step without tl.compile")
        targets = None if inputs is None else _tensors(inputs, "backward: inputs")
        g = self.seed(root, gradient, "backward")
        wanted = None if targets is None else {id(t) for t in targets}
        stores = []
        self.trace.tag = (root.op, "backward")  # (no tensor: a tag outlives the trace)
        for node, node_grad, _ in propagate(root, g, self.xp, targets):
            if wanted is not None and id(node) not in wanted:
                continue
            stores.append((node, node_grad))
        self.trace.tag = None
        for node, g in stores:  # a backward that raises stores nothing, as eagerly
            old = self.grad(node) if node.stamp < self.start else node._grad
            if node.op is None:
                g = self.own(g)
            node._grad = g if old is None else old + g
            if node.stamp < self.start:
                self.contacts[id(node)].grad_written = True

    def seed(self, root: Tensor, gradient: Any, who: str) -> Traced:
        """The traced gradient that starts a backward walk from ``root`` (a new value
        the walk may own): ``gradient`` checked as eagerly, or ones."""
        for node in backward_order(root):
            if node.op is not None and node.stamp < self.start:
                self.trace.refuse(
                    f"{who}: the graph reaches a {node.op.name} node (shape {node.shape}) recorded "
                    f"before the compiled call: its forward pass is not part of the trace, so "
                    f"a replay could not check or recompute it. Do the forward pass inside "
                    f"the compiled function (or pass .detach() of the tensor)")
        if gradient is not None and (self.owns(gradient) or isinstance(gradient, Tensor)
                                     and self.owns(gradient.data)):
            g = gradient.data if isinstance(gradient, Tensor) else gradient
            if not root.requires_grad:
                root._root_gradient(None, who)
            if g.shape != root.shape:
                raise GradientShapeError(f"{who}: gradient has shape {g.shape}, the tensor has "
                                         f"shape {root.shape}")
            return g.astype(root.dtype)
        g = root._root_gradient(gradient, who)
        if type(g) is not Traced:  # a constant seed: a traced copy the pass may own
            g = np.zeros_like(self.value(root)) + g
        return g

    def own(self, g: Any) -> Any:
        """A leaf's gradient is an array of its own (a copy when the pass passed on a
        value stored elsewhere, a view or an input)."""
        if type(g) is not Traced:  # a constant: a copy made again at each replay
            return self.trace.temp_copy(np.asarray(g))
        v = self.trace.values[g.index]
        if v.kind != "temp" or self.trace.instrs[v.producer].kind != "compute" or \
                g.index in self.stored:
            g = g.copy()
        self.stored.add(g.index)
        return g

    def host(self, fn: Callable, args: tuple) -> Any:
        self.check_random("before the library drew its own")
        result = self.trace.host(fn, args)
        self.rng_seen = np.random.get_state()
        return result

    def check_random(self, when: str) -> None:
        now = np.random.get_state()
        if not (now[2] == self.rng_seen[2] and np.array_equal(now[1], self.rng_seen[1])):
            self.trace.refuse(
                f"the function drew numbers from np.random ({when}): they would be frozen into "
                f"the trace and repeat at every replay. Draw them outside and pass them as "
                f"arguments (e.g. batch indices), or use the library's dropout")

    def watch(self, generator: Any) -> None:
        self.generators.append((generator, _generator_state(generator)))

    def check_generators(self) -> None:
        """Numbers drawn in Python from a generator other than np.random's would be
        frozen into the trace too."""
        for gen, before in self.generators:
            if not _same(_generator_state(gen), before):
                self.trace.refuse(
                    f"the function drew numbers from a {type(gen).__name__} (np.random."
                    f"default_rng?): they would be frozen into the trace and repeat at every "
                    f"replay. Draw them outside and pass them as arguments")
        if random.getstate() != self.python_rng:
            self.trace.refuse("the function drew numbers from Python's random module: they would "
                              "be frozen into the trace and repeat at every replay. Draw them "
                              "outside and pass them as arguments")

    def effect(self, fn: Callable, owner: Any, tensors: list, others: tuple = ()) -> Any:
        tensors = list(tensors)
        contacts = [self.contact(t) for t in tensors]
        grads = [self.grad(t) for t in tensors]
        for o in (owner, *others):
            if not any(seen is o for seen, _ in self.owners):
                self.owners.append((o, _copy_state(vars(o))))
        roots = tuple(sorted({self.trace.values[c.value.index].root for c in contacts}))
        for r in roots:
            self._before_write(r)
        real = [c.value.array for c in contacts]
        real_grads = [g.array if type(g) is Traced else g for g in grads]
        saved_tracer = state.tracer
        state.tracer = None
        try:
            for t, a, g in zip(tensors, real, real_grads):
                t.data, t._grad = a, g
            result = fn(owner)
        finally:
            state.tracer = saved_tracer
            changed = [t for t, a, g in zip(tensors, real, real_grads)
                       if t.data is not a or t._grad is not g]
            for t, c, g in zip(tensors, contacts, grads):
                t.data, t._grad = c.value, g
        if changed:
            self.trace.refuse(f"{getattr(fn, '__qualname__', fn)} replaced the .data or .grad of a "
                              f"tensor (shape {changed[0].shape}) instead of changing it in place")
        self.trace.effect(_run_effect, (fn, owner, tuple(tensors), tuple(grads)), roots)
        return result

    # ------------------------------------------------------------ the end of a trace
    def release(self) -> None:
        """Put every touched tensor's own array and gradient back (the trace ends)."""
        for c in self.contacts.values():
            t = c.tensor
            if t.data is c.value:
                t.data = c.data
            g = t._grad
            if type(g) is Traced and g.trace is self.trace:
                t._grad = g.array

    def undo(self) -> None:
        """Put everything the traced call changed back as it was before it."""
        self.release()
        self.rewind()

    def rewind(self) -> None:
        """Put the arrays, gradients, optimizers and np.random back as they were
        before the traced call (after ``release``): to undo it, or to replay it."""
        for root, before in self.snapshots.items():
            with _library_write([self.trace.values[root].array]):
                np.copyto(self.trace.values[root].array, before)
        for c in self.contacts.values():
            c.tensor._grad = c.grad
        for owner, saved in self.owners:
            _restore(owner, saved)
        np.random.set_state(self.rng_start)
        random.setstate(self.python_rng)
        for gen, before in self.generators:
            _set_generator_state(gen, before)


def _generator_state(gen: Any) -> Any:
    if isinstance(gen, np.random.RandomState):
        return gen.get_state(legacy=False)
    return gen.bit_generator.state


def _set_generator_state(gen: Any, saved: Any) -> None:
    if isinstance(gen, np.random.RandomState):
        gen.set_state(saved)
    else:
        gen.bit_generator.state = saved


def _run_effect(fn: Callable, owner: Any, tensors: tuple, grads: tuple) -> None:
    for t, g in zip(tensors, grads):
        t._grad = g
    fn(owner)


def _copy_state(obj: Any, memo: Optional[dict] = None) -> Any:
    """A copy of an object's attributes as an effect changes them: containers and
    arrays copied (shared ones stay shared), every other object (a tensor, a
    number, the model) kept as it is."""
    memo = {} if memo is None else memo
    t = type(obj)
    if t not in (dict, list, tuple, np.ndarray):
        return obj
    done = memo.get(id(obj))
    if done is not None:
        return done
    if t is np.ndarray:
        copied = obj.copy()
    elif t is dict:
        copied = {k: _copy_state(v, memo) for k, v in obj.items()}
    else:
        copied = t(_copy_state(v, memo) for v in obj)
    memo[id(obj)] = copied
    return copied


def _restore(owner: Any, saved: dict) -> None:
    attrs = vars(owner)
    attrs.clear()
    attrs.update(_copy_state(saved))


def _same(a: Any, b: Any) -> bool:
    """Bit for bit equal (arrays), equal (numbers, strings), the same object (tensors)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and a != a:
        return isinstance(b, float) and b != b
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return a is b
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001  an object without a plain ==
        return a is b


# ----------------------------------------------------------------- the replay

class _Bad(Exception):
    """The program cannot be bound to these arrays (a guard failed): trace again."""


class Program:
    """A recorded trace made runnable: buffers, precomputed views and a flat list of
    ``(function, arguments)`` calls. ``optimize``: the instructions rewritten by
    ``rewrite.RULES`` and temporaries sharing buffers (see rewrite.py); otherwise the
    literal program, each recorded call as recorded into a buffer of its own."""

    def __init__(self, trace: Trace, externals: list, final_grads: list, grad_guards: list,
                 outputs: Any, output_values: list, optimize: bool = False) -> None:
        self.trace = trace
        self.externals = externals       # (value index, getter(args, kwargs))
        counts: dict = {}
        for index, _ in externals:
            counts[index] = counts.get(index, 0) + 1
        #: values read from more than one place (each must give the same array)
        self.shared = {index: None for index, n in counts.items() if n > 1}
        self.final_grads = final_grads   # (tensor, value index or None or array)
        self.grad_guards = grad_guards   # tensors whose .grad must be None at the start
        self.outputs = outputs           # the returned structure, Refs for values
        live = self._live(output_values)
        given_out = set(output_values) | {i for _, i in final_grads if isinstance(i, int)}
        folded = self._foldable(live, given_out)
        code = Code(trace, [trace.instrs[i] for i in live], given_out, folded)
        if optimize:
            rewrite.optimize(code)
        self.optimized = optimize
        self.code = code
        self.instrs = code.instrs        # what runs, in order (positions index it)
        self.values = code.values
        arrays: list = [None] * len(code.values)
        for i, v in enumerate(code.values):
            if v.kind != "temp":
                arrays[i] = v.array      # bound again at every call when it changed
            elif i in folded:
                arrays[i] = v.array      # a constant of the replay
        buffers = plan_buffers(code, share=optimize)
        for i, buffer in buffers.items():
            arrays[i] = buffer
        #: 0-d inputs (a learning rate passed as an array) are copied into an array of
        #: the program's own at each call: a new array every step remakes no call
        self.copied = {i for i, _ in externals if code.values[i].kind == "input"
                       and code.values[i].array.ndim == 0 and i not in code.writes}
        for i in self.copied:
            arrays[i] = code.values[i].array.copy()
        #: the arrays from outside it writes: the rewrites took no other array from
        #: outside to share their memory (an argument that is a parameter's array)
        self.written_externals = sorted({i for i, _ in externals if i in code.writes}) \
            if optimize else []
        self.buffers: set = set(buffers)
        self.arrays = arrays
        if self.written_externals and self._aliased({i: arrays[i] for i, _ in externals}):
            raise _Bad("an array from outside shares the memory of one the program writes")
        self.views = [i for i, ins in enumerate(self.instrs) if ins.kind == "view"
                      and ins.out not in folded]
        self.users: dict = {}            # value index -> instruction positions reading it
        for i, ins in enumerate(self.instrs):
            for r in set(ins.reads()) | ({ins.out} if ins.out is not None else set()):
                self.users.setdefault(r, []).append(i)
        for i in self.views:
            self._make_view(i)
        self.calls: list = []
        self.call_of: dict = {}          # instruction position -> position in calls
        self.chains: dict = {}           # position in calls -> instructions run in blocks
        made = [i for i, ins in enumerate(self.instrs)
                if ins.kind != "view" and not (ins.out is not None and ins.out in folded)]
        for group in self._chains(made) if optimize else [[i] for i in made]:
            for i in group:
                self.call_of[i] = len(self.calls)
            if len(group) > 1:
                self.chains[len(self.calls)] = group
            self.calls.append(None)
            self._make_call(group[0])
        self.escaping = sorted({i for _, i in final_grads if isinstance(i, int)} |
                               {i for i in output_values if i in self.buffers})
        self.holders = {i: [t for t, j in final_grads if j == i] for i in self.escaping}
        #: the program's own references to each array it gives out (counted by bind)
        self.own_refs: dict = {i: None for i in self.escaping}

    # ------------------------------------------------------------ building
    def _live(self, output_values: list) -> list:
        trace = self.trace
        needed = set(output_values) | {i for _, i in self.final_grads if isinstance(i, int)}
        keep = []
        for i in range(len(trace.instrs) - 1, -1, -1):
            ins = trace.instrs[i]
            effect = ins.kind in ("host", "effect") or any(
                trace.values[trace.values[w].root].kind != "temp" for w in ins.writes)
            if effect or ins.out in needed or any(w in needed for w in ins.writes):
                keep.append(i)
                needed.update(ins.reads())
                needed.update(ins.writes)
                if ins.base is not None:
                    needed.add(ins.base)
        return keep[::-1]

    def _foldable(self, live: list, given_out: set) -> set:
        """Values computed from constants only: computed once, at trace time. Not those
        given out (returned, stored as a .grad): each call gives a new array, which the
        user may change."""
        trace = self.trace
        written_roots = {trace.values[w].root for i in live for w in trace.instrs[i].writes}
        folded: set = set()
        for i in live:
            ins = trace.instrs[i]
            if ins.out is None or ins.kind == "host":
                continue
            v = trace.values[ins.out]
            if v.root in written_roots or ins.out in written_roots or ins.out in given_out:
                continue
            reads = list(ins.reads())
            shape_only = ins.fn in (np.zeros_like, np.ones_like, np.empty_like, np.full_like)
            if shape_only or all(r in folded for r in reads):
                folded.add(ins.out)
        return folded

    def _make_view(self, i: int) -> None:
        ins = self.instrs[i]
        base = self.arrays[ins.base]
        view = ins.fn(*resolve(ins.args, self.arrays), **resolve(ins.kwargs, self.arrays))
        if not isinstance(view, np.ndarray) or not np.may_share_memory(view, base) \
                or view.shape != self.values[ins.out].array.shape:
            raise _Bad("a view became a copy")
        self.arrays[ins.out] = view

    def _chains(self, made: list) -> list:
        """``made`` cut into runs of consecutive elementwise calls of one shape big
        enough for blocks (see ``rewrite.blocked``) and single calls."""
        groups: list = []
        shape = None
        for i in made:
            call = self._elementwise(i)
            if call is not None and rewrite.block_rows(call[2]) is None:
                call = None
            if call is not None and groups and call[2].shape == shape:
                groups[-1].append(i)
            else:
                groups.append([i])
            shape = call[2].shape if call is not None else None
        return groups

    def _elementwise(self, i: int) -> Optional[tuple]:
        ins = self.instrs[i]
        out = self.arrays[ins.out] if ins.out is not None else None
        args, kwargs = rewrite.cheaper_call(ins.fn, resolve(ins.args, self.arrays),
                                            resolve(ins.kwargs, self.arrays))
        return rewrite.elementwise(ins, args, kwargs, out)

    def _make_call(self, i: int) -> None:
        """Make the call of instruction ``i`` (all the chain's, when it is in one)."""
        at = self.call_of[i]
        chain = self.chains.get(at)
        if chain is None:
            self.calls[at] = self._call(i)
            return
        calls = rewrite.blocked([self._elementwise(j) for j in chain])
        self.calls[at] = (rewrite.in_turn, (calls or [self._call(j) for j in chain],))

    def _call(self, i: int) -> tuple:
        ins = self.instrs[i]
        arrays = self.arrays
        args, kwargs = resolve(ins.args, arrays), resolve(ins.kwargs, arrays)
        if self.optimized:
            args, kwargs = rewrite.cheaper_call(ins.fn, args, kwargs)
        if ins.kind == "compute":
            call = _into(ins.fn, args, kwargs, arrays[ins.out])
        elif ins.kind == "host" and ins.out is not None:
            call = (_host_into, (arrays[ins.out], ins.fn, args))
        elif ins.kind == "write" and isinstance(ins.fn, np.ufunc) and \
                isinstance(kwargs.get("out"), tuple) and len(kwargs["out"]) == 1:
            rest = {k: v for k, v in kwargs.items() if k != "out"}
            if ins.fn in _OUT_BY_NAME:
                call = (functools.partial(ins.fn, out=kwargs["out"], **rest), tuple(args))
            else:
                fn = functools.partial(ins.fn, **rest) if rest else ins.fn
                call = (fn, tuple(args) + kwargs["out"])
        else:
            fn = functools.partial(ins.fn, **kwargs) if kwargs else ins.fn
            call = (fn, tuple(args))
        return call

    def _rebind(self, index: int, array: np.ndarray) -> None:
        """Value ``index`` is now ``array``: remake the views of it and the calls
        that read or write it (or those views)."""
        self.arrays[index] = array
        todo = [index]
        done = {index}
        calls: set = set()
        while todo:
            v = todo.pop()
            for i in self.users.get(v, ()):
                ins = self.instrs[i]
                if ins.kind == "view":
                    if ins.out not in done:
                        self._make_view(i)
                        done.add(ins.out)
                        todo.append(ins.out)
                elif i in self.call_of:
                    calls.add(i)
        for i in {self.call_of[i]: i for i in calls}.values():  # a chain once
            self._make_call(i)
        if index in self.own_refs:
            self.own_refs[index] = None  # counted by bind, once no local names it

    # ------------------------------------------------------------ running
    def bind(self, args: tuple, kwargs: dict) -> None:
        """Point the program at this call's arrays; raises ``_Bad`` (nothing changed)
        when a guard fails."""
        for t in self.grad_guards:
            if t._grad is not None:
                raise _Bad(".grad is set")
        changed = []
        for index, get in self.externals:
            a = get(args, kwargs)
            if index in self.shared:  # one array when traced (W and W.detach()): still one?
                first = self.shared[index]
                if first is None:
                    self.shared[index] = a
                elif a is not first:
                    self._forget_shared()
                    raise _Bad("two tensors that shared an array no longer do")
            if a is not self.arrays[index]:
                ref = self.values[index].array
                if type(a) is not np.ndarray or a.shape != ref.shape or a.dtype != ref.dtype:
                    raise _Bad("an array changed shape or dtype")
                changed.append((index, a))
        self._forget_shared()
        if self.written_externals and any(i not in self.copied for i, _ in changed) \
                and self._aliased(dict(changed)):
            raise _Bad("an array from outside shares the memory of one the program writes")
        for index, a in changed:
            if index in self.copied:
                self.arrays[index][()] = a
            else:
                self._rebind(index, a)
        del changed
        self._count_own_refs()
        arrays = self.arrays
        for index in self.escaping:  # an array given out last time and still held: a new one
            held = sum(1 for t in self.holders[index] if t._grad is arrays[index])
            if _refs(arrays, index) > self.own_refs[index] + held:
                self._rebind(index, np.empty_like(arrays[index]))
        self._count_own_refs()

    def _forget_shared(self) -> None:
        for index in self.shared:
            self.shared[index] = None

    def _aliased(self, new: dict) -> bool:
        """Would a ``new`` array from outside share memory with another one (new, or
        bound already) where the program writes one of the two?"""
        current = {i: new.get(i, self.arrays[i]) for i, _ in self.externals if i not in self.copied}
        written = self.written_externals
        for i, a in new.items():
            if i in self.copied:
                continue
            others = current if i in written else {w: current[w] for w in written}
            if any(j != i and np.may_share_memory(a, b) for j, b in others.items()):
                return True
        return False

    def _count_own_refs(self) -> None:
        """The program's own references to each array it gives out, counted where no
        local variable holds one (a caller's name would look like a user's)."""
        own = self.own_refs
        for index in self.escaping:
            if own[index] is None:
                own[index] = _refs(self.arrays, index)

    def run(self) -> Any:
        for fn, args in self.calls:
            fn(*args)
        arrays = self.arrays
        for t, index in self.final_grads:
            t._grad = arrays[index] if isinstance(index, int) else index
        return _build(self.outputs, arrays)


def _refs(arrays: list, index: int) -> int:
    """References to ``arrays[index]`` (the program's own, and any a user kept)."""
    return sys.getrefcount(arrays[index])


def _build(obj: Any, arrays: list) -> Any:
    t = type(obj)
    if t is Ref:
        return arrays[obj.index]
    if t is _TensorOut:
        if obj.read_only:
            view = arrays[obj.index].view()
            view.flags.writeable = False
            return _new(view)
        return _new(arrays[obj.index])
    if t is _ConstOut:
        return obj.value.copy()
    if t is tuple or t is list:
        return t(_build(o, arrays) for o in obj)
    if t is dict:
        return {k: _build(v, arrays) for k, v in obj.items()}
    return obj


class _TensorOut:
    """A returned tensor: a new plain Tensor of the value's array at each call
    (read-only when eager's was: a graph node that is a view of another array)."""
    __slots__ = ("index", "read_only")

    def __init__(self, index: int, read_only: bool = False) -> None:
        self.index = index
        self.read_only = read_only


class _ConstOut:
    __slots__ = ("value",)

    def __init__(self, value: np.ndarray) -> None:
        self.value = value


def _host_into(out: np.ndarray, fn: Callable, args: tuple) -> None:
    result = np.asarray(fn(*args))
    if result.shape != out.shape:
        raise RuntimeError(f"tl.compile: {getattr(fn, '__name__', fn)} returned shape "
                           f"{result.shape} at a replay, {out.shape} when traced")
    np.copyto(out, result)


def _generic_into(out: np.ndarray, fn: Callable, args: tuple, kwargs: dict) -> None:
    result = fn(*args, **kwargs)
    if np.shape(result) != out.shape:
        raise RuntimeError(f"tl.compile: {getattr(fn, '__name__', fn)} gave shape "
                           f"{np.shape(result)} at a replay, {out.shape} when traced")
    np.copyto(out, result, casting="unsafe")


def _copy_into(out: np.ndarray, a: np.ndarray) -> None:
    np.copyto(out, a, casting="unsafe")


def _where_into(out: np.ndarray, condition: Any, a: Any, b: Any) -> None:
    np.copyto(out, b, casting="unsafe")
    np.copyto(out, a, casting="unsafe", where=condition)


def _fill_into(out: np.ndarray, value: Any) -> None:
    np.copyto(out, value, casting="unsafe")


#: ufuncs whose out= NumPy 2 wants as a keyword (a third positional is deprecated)
_OUT_BY_NAME = {np.maximum, np.minimum}

_OUT_METHODS = {np.ndarray.mean, np.ndarray.std, np.ndarray.var, np.ndarray.argmax,
                np.ndarray.argmin, np.ndarray.clip, np.ndarray.cumsum, np.ndarray.round}


def _into(fn: Callable, args: list, kwargs: dict, out: np.ndarray) -> tuple:
    """The fastest call computing ``fn(*args, **kwargs)`` into ``out``."""
    if isinstance(fn, np.ufunc) and fn.nout == 1:
        if fn is np.power and not kwargs and isinstance(args[1], (int, float)) and args[1] == 2 \
                and out.dtype.kind == "f":
            return np.square, (args[0], out)
        if kwargs or fn in _OUT_BY_NAME:
            return functools.partial(fn, out=out, **kwargs), tuple(args)
        return fn, tuple(args) + (out,)
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, np.ufunc) and fn.__name__ == "reduce":
        positional = (args[0], kwargs.get("axis", 0), kwargs.get("dtype"), out,
                      kwargs.get("keepdims", False))
        extra = {k: v for k, v in kwargs.items() if k in ("initial", "where")}
        return (functools.partial(fn, **extra) if extra else fn), positional
    if fn is np.einsum:
        return functools.partial(fn, out=out, **kwargs), tuple(args)
    if fn in _OUT_METHODS:
        return functools.partial(fn, out=out, **kwargs), tuple(args)
    if fn in (np.ndarray.astype, np.ndarray.copy) or fn is np.copy:
        return _copy_into, (out, args[0])
    if fn is np.where and len(args) == 3 and not kwargs:
        return _where_into, (out, *args)
    if fn in (np.zeros_like, np.ones_like):
        return _fill_into, (out, 0 if fn is np.zeros_like else 1)
    if fn in (np.concatenate, np.stack) and out.dtype == np.result_type(*args[0]):
        return functools.partial(fn, out=out, **kwargs), tuple(args)
    return _generic_into, (out, fn, tuple(args), kwargs)


# ----------------------------------------------------------------- compile

class _Entry:
    """A cached trace: its program; the Python flags it assumes (``(object, attribute,
    value)``); the tensors whose arrays it writes; the objects its signature names by
    identity (kept alive, so no other object takes their id)."""
    __slots__ = ("program", "guards", "written", "identified")

    def __init__(self, program: Program, guards: list, written: list) -> None:
        self.program, self.guards, self.written = program, guards, written
        self.identified: list = []


def _run(program: Program, written: list) -> Any:
    """Replay ``program`` as the library's own write into the ``written`` tensors: the
    read-only guards of a live graph lifted for it, the tensors stamped after it (a
    backward over a graph that used the old values then raises, as eagerly)."""
    guarded = [a for t in written if not t.data.flags.writeable for a in guarded_arrays(t.data)]
    for a in guarded:
        a.setflags(write=True)
    try:
        return program.run()
    finally:
        for a in reversed(guarded):
            a.setflags(write=False)
        for t in written:
            stamp_write(t)


@contextlib.contextmanager
def _library_write(arrays: list) -> Iterator[None]:
    guarded = [a for arr in arrays for a in guarded_arrays(arr)]
    for a in guarded:
        a.setflags(write=True)
    try:
        yield
    finally:
        for a in reversed(guarded):
            a.setflags(write=False)


class Compiled:
    """A function traced once per argument signature and replayed (``tl.compile``)."""

    def __init__(self, fn: Callable) -> None:
        if not callable(fn):
            raise TypeError(f"compile: expected a function, got {type(fn).__name__}")
        self.fn = fn
        self.__wrapped__ = fn
        functools.update_wrapper(self, fn, updated=())  # (a module's own attributes stay its own)
        self._cache: dict = {}
        self._lock = threading.RLock()
        #: how many times the function has been traced
        self.traces = 0

    def __repr__(self) -> str:
        return f"<tl.compile of {getattr(self.fn, '__qualname__', self.fn)!r}>"

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        """``@tl.compile`` on a method: bound to the instance, which is an argument
        (each instance its own traces)."""
        return self if obj is None else types.MethodType(self, obj)

    def clear(self) -> None:
        """Forget every trace (the next call traces again)."""
        with self._lock:
            self._cache.clear()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if state.tracer is not None or state.anomaly:
            # inside another trace: part of it; under detect_anomaly: checked eagerly
            return self.fn(*args, **kwargs)
        identified: list = []
        key = (state.grad_enabled, _signature(args, identified), _signature(kwargs, identified))
        with self._lock:
            programs = self._cache.get(key)
            if programs:
                for k, entry in enumerate(programs):
                    if not all(getattr(obj, name) == value for obj, name, value in entry.guards):
                        continue
                    try:
                        entry.program.bind(args, kwargs)
                    except _Bad:
                        continue
                    if k:
                        programs.insert(0, programs.pop(k))
                    return _run(entry.program, entry.written)
            entry, result = self._trace(args, kwargs)
            entry.identified = identified
            programs = self._cache.pop(key, [])
            self._cache[key] = programs  # (a dict keeps order: the newest last)
            programs.insert(0, entry)
            del programs[MAX_TRACES:]
            while len(self._cache) > MAX_SIGNATURES:
                del self._cache[next(iter(self._cache))]
            return result

    # ------------------------------------------------------------ tracing
    def _trace(self, args: tuple, kwargs: dict) -> tuple:
        """Trace a call: ((the program, its guards), the call's result)."""
        tracer = Tracer()
        self.traces += 1
        targs, tkwargs = _wrap(args, tracer, ()), _wrap(kwargs, tracer, ("kw",))
        state.tracer = tracer
        try:
            try:
                reached, modes = _reachable(self.fn, args, kwargs)
                for obj in reached:
                    if type(obj) is not Tensor:
                        tracer.watch(obj)
                    elif obj.stamp < tracer.start and type(obj.data) is np.ndarray:
                        tracer.contact(obj)
                result = self.fn(*targs, **tkwargs)
                tracer.check_random("outside the library's own draws")
                tracer.check_generators()
                outputs, output_values = _outputs(result, tracer)
            finally:
                state.tracer = None
            del result, targs, tkwargs
            externals, final_grads, grad_guards, written = self._collect(tracer, output_values)
            tracer.release()
            # what the replay assumes of Python flags: the same modes, the same tensors
            # requiring grad (a change traces again)
            guards = modes + [(c.tensor, "requires_grad", c.tensor.requires_grad)
                              for c in tracer.contacts.values()]
            _check_nothing_escaped(tracer)
            program, result = self._validate(tracer, externals, final_grads, grad_guards,
                                             outputs, output_values, written, args, kwargs)
            return _Entry(program, guards, written), result
        except BaseException:
            tracer.undo()
            raise

    def _collect(self, tracer: Tracer, output_values: list) -> tuple:
        trace = tracer.trace
        used = set(output_values)
        for ins in trace.instrs:
            used.update(ins.reads())
            used.update(ins.writes)
        externals, final_grads, guards = [], [], []
        for c in tracer.contacts.values():
            t = c.tensor
            if c.value.index not in used and c.grad_read is None and not c.grad_written:
                continue  # reachable from the function, never used by it
            where = c.source
            get = _arg_getter(where[1], tensor=True) if where[0] == "arg" else _data_getter(t)
            externals.append((c.value.index, get))
            if c.grad_value is not None:
                externals.append((c.grad_value.index, _grad_getter(t)))
            if c.grad_read == "none":
                guards.append(t)
            g = t._grad
            if type(g) is Traced:
                if g.index != (c.grad_value.index if c.grad_value is not None else None):
                    final_grads.append((t, g.index))
            elif c.grad_written or g is not c.grad:
                final_grads.append((t, g))
        for i, v in enumerate(trace.values):
            if v.kind == "input" and isinstance(v.source, tuple) and v.source[0] == "arg":
                externals.append((i, _arg_getter(v.source[1], tensor=False)))
        written_roots = {trace.values[w].root for ins in trace.instrs for w in ins.writes}
        written = [c.tensor for c in tracer.contacts.values()
                   if c.value is not None and trace.values[c.value.index].root in written_roots]
        return externals, final_grads, guards, written

    def _validate(self, tracer: Tracer, externals: list, final_grads: list, grad_guards: list,
                  outputs: Any, output_values: list, written: list, args: tuple,
                  kwargs: dict) -> tuple:
        """Replay the literal program from the state before the call: it must give
        what the traced call gave, bit for bit, or the call is undone and refused.
        The optimized program is replayed from the same state first, and used from
        now on if it gave the same within ``ROUNDING_ULPS`` (see rewrite.py)."""
        trace = tracer.trace
        eager = _Outcome(tracer, final_grads, _build(outputs, [v.array for v in trace.values]))

        def replay(optimize: bool) -> tuple:
            tracer.rewind()
            program = Program(trace, externals, final_grads, grad_guards, outputs, output_values,
                              optimize=optimize)
            program.bind(args, kwargs)
            return program, _run(program, written)

        try:
            fast, fast_result = replay(optimize=True)
            fast_outcome = _Outcome(tracer, final_grads, fast_result)
        except Exception:  # noqa: BLE001  whatever went wrong, the literal program decides
            fast = None
        try:
            program, result = replay(optimize=False)
        except _Bad as e:
            raise TraceError(f"tl.compile: the recorded program cannot be replayed ({e})") from None
        diffs = _Outcome(tracer, final_grads, result).differences(eager, _same)
        if diffs:
            raise TraceError(
                f"tl.compile: replaying the recorded program did not reproduce the traced call "
                f"({', '.join(diffs)} differed): the function does work the trace cannot see "
                f"(NumPy on arrays the library never touched, state outside the tensors it "
                f"used?); the call was undone")
        if fast is not None and not fast_outcome.differences(eager, _close):
            program = fast
        return program, result


class _Outcome:
    """What a call left behind: the arrays it wrote, the final ``.grad`` arrays, the
    returned value, the optimizers' state and np.random's (copies)."""

    def __init__(self, tracer: Tracer, final_grads: list, result: Any) -> None:
        values = tracer.trace.values
        self.roots = {r: values[r].array.copy() for r in tracer.snapshots}
        self.grads = [(t, _copy(t._grad)) for t, _ in final_grads]
        self.result = _copied(_plain(result))
        self.owners = [(o, _copy_state(vars(o))) for o, _ in tracer.owners]
        self.rng = np.random.get_state()
        self.describe = {r: _describe(values[r]) for r in self.roots}

    def differences(self, expected: "_Outcome", equal: Callable[[Any, Any], bool]) -> list:
        """What differs from ``expected`` (by ``equal``), in words."""
        diffs = [self.describe[r] for r, a in self.roots.items() if not equal(a, expected.roots[r])]
        diffs += [f"the .grad of {_tensor_name(t)}"
                  for (t, a), (_, b) in zip(self.grads, expected.grads) if not equal(a, b)]
        if not equal(self.result, expected.result):
            diffs.append(f"the returned value ({self.result!r} vs {expected.result!r})")
        diffs += [f"the state of {type(o).__name__}"
                  for (o, a), (_, b) in zip(self.owners, expected.owners) if not equal(a, b)]
        if not (np.array_equal(self.rng[1], expected.rng[1]) and self.rng[2] == expected.rng[2]):
            diffs.append("the state of np.random")
        return diffs


def _close(a: Any, b: Any) -> bool:
    """Equal up to the rounding an optimized program may differ by: floating-point
    arrays (and numbers) within ``ROUNDING_ULPS`` units in the last place of the
    largest magnitude of ``b``, with NaN and infinities in the same places; anything
    else as ``_same``."""
    if isinstance(a, (np.ndarray, np.generic, float)) and isinstance(b, (np.ndarray, np.generic, float)):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype or a.dtype.kind not in "fc":
            return _same(a, b)
        finite = np.isfinite(b)
        if not np.array_equal(np.isfinite(a), finite) or \
                not np.array_equal(a[~finite], b[~finite], equal_nan=True):
            return False
        if not finite.any():
            return True
        scale = np.max(np.abs(b[finite]))
        error = np.max(np.abs(a[finite] - b[finite]))
        return bool(error <= ROUNDING_ULPS * np.finfo(b.dtype).eps * scale)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_close, a, b))
    return _same(a, b)


def _copy(x: Any) -> Any:
    return x.copy() if isinstance(x, np.ndarray) else x


def _copied(x: Any) -> Any:
    """``x`` with its arrays copied (inside lists, tuples and dicts)."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, (list, tuple)):
        return type(x)(_copied(o) for o in x)
    if isinstance(x, dict):
        return {k: _copied(v) for k, v in x.items()}
    return x


def _plain(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(o) for o in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _tensor_name(t: Tensor) -> str:
    return f"{t.name!r}" if t.name else f"a tensor of shape {t.shape}"


def _describe(v: Any) -> str:
    src = v.source
    if isinstance(src, Tensor):
        return f"the array of {_tensor_name(src)}"
    return f"an array of shape {v.array.shape}"


def _data_getter(t: Tensor) -> Callable:
    return lambda args, kwargs: t.data


def _grad_getter(t: Tensor) -> Callable:
    return lambda args, kwargs: t._grad


def _arg_getter(path: tuple, tensor: bool) -> Callable:
    def get(args: tuple, kwargs: dict) -> Any:
        obj: Any = kwargs if path and path[0] == "kw" else args
        for p in path[1:] if path and path[0] == "kw" else path:
            obj = obj[p]
        return obj.data if isinstance(obj, Tensor) else _plain_array(obj)
    if len(path) == 1 and not (path and path[0] == "kw"):
        k = path[0]
        if tensor:
            return lambda args, kwargs: args[k].data
        return lambda args, kwargs: _plain_array(args[k])
    return get


def _plain_array(a: Any) -> Any:
    return a if type(a) is np.ndarray or not isinstance(a, np.ndarray) else a.view(np.ndarray)


def _signature(obj: Any, identified: list) -> Any:
    """What a trace depends on in the arguments: shapes and dtypes of arrays and
    tensors, the values of Python constants, the identity of tensors that require
    grad (parameters passed in) and of other objects (appended to ``identified``:
    the cache keeps them alive, so no other object can take their id)."""
    t = type(obj)
    if t is np.ndarray or isinstance(obj, np.ndarray):
        return ("a", obj.shape, obj.dtype.str)
    if t is Tensor:
        if obj.requires_grad:
            identified.append(obj)
            return ("p", id(obj))
        return ("t", obj.shape, obj.dtype.str)
    if t in (int, float, bool, str, bytes, complex) or obj is None or isinstance(obj, np.generic):
        if t is float and obj != obj:
            return (t, "nan")
        return (t, obj)
    if t in (tuple, list):
        return (t, tuple(_signature(o, identified) for o in obj))
    if t is dict:
        return (dict, tuple((k, _signature(v, identified))
                            for k, v in sorted(obj.items(), key=repr)))
    identified.append(obj)
    return ("o", id(obj))


#: objects the search for the tensors a compiled function can reach looks at, at most
REACH_LIMIT = 20_000
_OPAQUE = (np.ndarray, np.generic, str, bytes, int, float, complex, type(None), type,
           types.ModuleType, types.BuiltinFunctionType, types.CodeType)


def _code_names(code: types.CodeType) -> Iterator[str]:
    """The global names a function's code (and the code it defines) refers to."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _reachable(fn: Callable, args: tuple, kwargs: dict) -> tuple:
    """The leaf tensors and NumPy generators ``fn`` can reach without calling anything:
    in its arguments, its bound object, a partial's arguments, its closure, the
    globals its code names, and the objects, containers and functions found there
    (attributes, not properties). The trace reads each tensor through a traced value
    from the start, so NumPy code on ``t.data`` is recorded or refused, not frozen;
    a generator that draws during the trace is refused. Also the modes found
    (``(module, "training", value)``: dropout reads it in Python)."""
    found: list = []
    modes: list = []
    seen: set = set()
    todo: list = [fn, kwargs, args]
    budget = REACH_LIMIT
    while todo and budget:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        budget -= 1
        if type(obj) is Tensor:
            if obj.op is None:
                found.append(obj)
        elif isinstance(obj, (np.random.Generator, np.random.RandomState)):
            found.append(obj)
        elif type(obj) in (list, tuple, set, frozenset):
            todo.extend(obj)
        elif isinstance(obj, dict):
            todo.extend(obj.values())
        elif isinstance(obj, types.FunctionType):
            for cell in obj.__closure__ or ():
                try:
                    todo.append(cell.cell_contents)
                except ValueError:  # a cell not filled yet
                    pass
            names, g = obj.__globals__, obj.__code__
            todo.extend(names[n] for n in _code_names(g) if n in names)
        elif isinstance(obj, types.MethodType):
            todo += [obj.__func__, obj.__self__]
        elif isinstance(obj, functools.partial):
            todo += [obj.func, obj.args, obj.keywords]
        else:
            try:
                attrs = object.__getattribute__(obj, "__dict__")
            except (AttributeError, TypeError):
                continue
            if isinstance(attrs, dict):
                todo.extend(attrs.values())
                if type(attrs.get("training")) is bool:
                    modes.append((obj, "training", attrs["training"]))
    return found, modes


def _wrap(obj: Any, tracer: Tracer, path: tuple) -> Any:
    """The arguments the traced call sees: arrays become traced inputs, tensors that
    do not require grad hold a traced input."""
    t = type(obj)
    if isinstance(obj, np.ndarray):  # (a subclass, such as a memmap, as its plain array)
        return tracer.trace.external(_plain_array(obj), "input", source=("arg", path))
    if isinstance(obj, Tensor):
        if not obj.requires_grad and obj.op is None:
            tracer.contact(obj, "input", source=("arg", path))
        return obj
    if t in (tuple, list):
        return t(_wrap(o, tracer, path + (i,)) for i, o in enumerate(obj))
    if t is dict:
        return {k: _wrap(v, tracer, path + (k,)) for k, v in obj.items()}
    return obj


def _outputs(result: Any, tracer: Tracer) -> tuple:
    """The returned structure with the traced values replaced (and their indices)."""
    values: list = []

    def convert(obj: Any) -> Any:
        t = type(obj)
        if t is Traced and obj.trace is tracer.trace:
            values.append(obj.index)
            return Ref(obj.index)
        if isinstance(obj, Tensor):
            d = obj.data
            if type(d) is Traced:
                if obj.stamp < tracer.start:
                    return obj  # a tensor from outside: the same object
                values.append(d.index)
                view = tracer.trace.values[d.index].root != d.index
                return _TensorOut(d.index, read_only=view and obj.op is not None)
            return obj if obj.stamp < tracer.start else _ConstOut(d)
        if t in (tuple, list):
            return t(convert(o) for o in obj)
        if t is dict:
            return {k: convert(v) for k, v in obj.items()}
        return obj
    return convert(result), values


def _check_nothing_escaped(tracer: Tracer) -> None:
    """A traced value still referenced after the call (stored in an attribute, a list,
    a global) would keep the traced call's numbers forever: refused."""
    for c in tracer.contacts.values():
        c.value = c.grad_value = None
    if len(tracer.trace.handed_out):  # (a full collection only when something is left)
        gc.collect()
    alive = list(tracer.trace.handed_out)
    if alive:
        v = alive[0]
        tracer.trace.refuse(
            f"a value computed inside the compiled function (shape {v.shape}, {v.dtype}) is "
            f"still referenced after it returned (kept in an attribute, a list or a global?): "
            f"a replay could not update it. Return it from the function instead")


def compile(fn: Callable) -> Compiled:  # noqa: A001  (PyTorch's name)
    """Trace ``fn`` once per argument signature and replay it without building a
    graph (``torch.compile``'s name). ``fn`` does a training step with the public
    API and returns what it wants back (the loss). See docs/engine.md."""
    return Compiled(fn)
