"""The graph as viz sees it: tensors, uses, collapsed units, gradients per wire.

Reads the engine only through its public introspection API (``.op``, ``.parents``,
``.args``, ``.groups``, ``.name``, ``.requires_grad``, ``.grad``, ``.data``,
``tl.input_grads``) and never writes to a tensor.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np

import tinygrad_lite as tl
from tinygrad_lite import Tensor

#: ops whose unnamed scalar constant operand is printed inside the gate, as the
#: notes draw ``+1`` and ``*-1``: name -> (format when the constant is on the right,
#: format when it is on the left)
FOLDABLE = {"add": ("+{}", "+{}"), "sub": ("-{}", "{}-"), "mul": ("*{}", "*{}"),
            "div": ("/{}", "{}/"), "maximum": ("max(·,{})", "max({},·)")}

COLLAPSE_MODES = ("functions", "modules", False, None)


def _number(v: Any) -> str:
    from ._format import number
    return number(v)


def name_map(names: Optional[Mapping[str, Any]]) -> dict:
    """``{id(tensor): name}`` from a ``names=`` mapping (e.g. ``locals()``); the
    first name a tensor has wins, names starting with ``_`` only if nothing else."""
    out: dict = {}
    if not names:
        return out
    if not isinstance(names, Mapping):
        raise TypeError(f"names= must be a mapping name -> Tensor (e.g. locals()), "
                        f"got {type(names).__name__}")
    for pri in (False, True):
        for k, t in names.items():
            if isinstance(t, Tensor) and str(k).startswith("_") == pri and id(t) not in out:
                out[id(t)] = str(k)
    return out


def failing_names(compare: Any) -> set:
    """The parameter names a ``compare=`` object says fail. Duck-typed:

    * an object with ``failing`` (a method, called with no arguments, or an
      attribute): tinygrad_lite.compare's ``GradientReport.failing()`` gives the
      parameters whose hand-derived gradient disagrees with the engine's;
    * a mapping ``name -> ok`` (a bool: False marks the name) or ``name -> report row``
      (an object with ``ok()`` / ``ok``);
    * any other iterable of failing names.
    """
    if compare is None:
        return set()
    fail = getattr(compare, "failing", None)
    if fail is not None:
        fail = fail() if callable(fail) else fail
        return {str(n) for n in fail}
    if isinstance(compare, Mapping):
        out = set()
        for k, v in compare.items():
            ok = getattr(v, "ok", v)
            ok = ok() if callable(ok) else ok
            if not ok:
                out.add(str(k))
        return out
    if isinstance(compare, (str, bytes)):
        return {str(compare)}
    try:
        return {str(n) for n in compare}
    except TypeError:
        raise TypeError("compare= takes a GradientReport (anything with .failing()), a dict "
                        f"name -> ok, or an iterable of failing names; got "
                        f"{type(compare).__name__}") from None


def failing_tensors(compare: Any) -> set:
    """``id``s of the failing leaves when the report names them as tensors
    (``GradientReport.failing_leaves()``: the leaves of its own ``report.graph``),
    so ``draw(report.graph, compare=report)`` marks them even when unnamed."""
    fl = getattr(compare, "failing_leaves", None)
    if fl is None:
        return set()
    try:
        leaves = fl() if callable(fl) else fl
        return {id(t) for t in leaves if isinstance(t, Tensor)}
    except Exception:
        return set()


class Use:
    """One input wire of one op node: ``node.parents[pos]``."""
    __slots__ = ("node", "pos")

    def __init__(self, node: Tensor, pos: int) -> None:
        self.node, self.pos = node, pos


class Unit:
    """A gate in the diagram: one primitive op node, or one collapsed group call."""

    def __init__(self, uid: str, label: str, members: list, group: Any = None) -> None:
        self.uid, self.label, self.members, self.group = uid, label, members, group

    @property
    def is_group(self) -> bool:
        return self.group is not None


class Graph:
    """Everything the drawing needs, computed once per ``draw`` call."""

    def __init__(self, root: Tensor, names: Optional[Mapping] = None, collapse: Any = "functions",
                 grad_of: Optional[Callable[[Tensor], Optional[np.ndarray]]] = None) -> None:
        if not isinstance(root, Tensor):
            raise TypeError(f"draw: root must be a tinygrad_lite Tensor, got {type(root).__name__}")
        if collapse is True:
            collapse = "functions"
        if collapse not in COLLAPSE_MODES:
            raise ValueError(f"collapse= must be 'functions', 'modules' or False, got {collapse!r}")
        self.root = root
        self.collapse = collapse
        self.names = name_map(names)
        self.grad_of = grad_of or (lambda t: t.grad)
        self.tensors = self._walk(root)
        self.index = {id(t): i for i, t in enumerate(self.tensors)}
        self.uses: dict = {id(t): [] for t in self.tensors}
        for t in self.tensors:
            for pos, p in enumerate(t.parents):
                self.uses[id(p)].append(Use(t, pos))
        self._ig_cache: dict = {}
        self._build_units()

    # ------------------------------------------------------------ structure
    @staticmethod
    def _walk(root: Tensor) -> list:
        """All tensors reaching root (leaves and constants included), inputs first."""
        order, seen, stack = [], set(), [(root, False)]
        while stack:
            t, done = stack.pop()
            if done:
                order.append(t)
                continue
            if id(t) in seen:
                continue
            seen.add(id(t))
            stack.append((t, True))
            for p in reversed(t.parents):
                if id(p) not in seen:
                    stack.append((p, False))
        return order

    def name(self, t: Tensor) -> Optional[str]:
        n = self.names.get(id(t))
        return n if n is not None else t.name

    def _group_key(self, t: Tensor) -> Any:
        """The group a node folds into: the outermost composite function call; with
        "modules", the innermost module call (each Linear of a Sequential is its own
        box, not the whole Sequential), else the outermost function call."""
        if not self.collapse or t.op is None:
            return None
        groups = t.groups  # outermost first
        if self.collapse == "modules":
            for g in reversed(groups):
                if getattr(g, "kind", "function") == "module":
                    return g
        for g in groups:
            if getattr(g, "kind", "function") != "module":
                return g
        return None

    def _is_folded(self, t: Tensor) -> bool:
        """An unnamed scalar constant printed inside its (only) consumer's gate."""
        if t.op is not None or t.requires_grad or self.name(t) is not None or t.data.size != 1:
            return False
        uses = self.uses[id(t)]
        return (len(uses) == 1 and uses[0].node.op.name in FOLDABLE
                and len(uses[0].node.parents) == 2 and self._group_key(uses[0].node) is None
                and t is not self.root)

    def _build_units(self) -> None:
        self.unit_of: dict = {}   # id(op node) -> Unit
        self.units: list = []
        by_group: dict = {}
        for t in self.tensors:
            if t.op is None:
                continue
            g = self._group_key(t)
            if g is None:
                u = Unit(f"g{self.index[id(t)]}", self._gate_label(t), [t])
                self.units.append(u)
            elif id(g) in by_group:
                u = by_group[id(g)]
                u.members.append(t)
            else:
                u = Unit(f"u{len(by_group)}", str(g.name), [t], group=g)
                by_group[id(g)] = u
                self.units.append(u)
            self.unit_of[id(t)] = u
        # wires: tensors drawn as a wire (op outputs leaving their unit, visible leaves)
        self.wires: list = []
        for t in self.tensors:
            if t.op is None:
                if t is self.root or self._leaf_visible(t):
                    self.wires.append(t)
            else:
                u = self.unit_of[id(t)]
                if not u.is_group or t is self.root or any(
                        self.unit_of[id(use.node)] is not u for use in self.uses[id(t)]):
                    self.wires.append(t)
        self.wire_ids = {id(t) for t in self.wires}

    def _leaf_visible(self, t: Tensor) -> bool:
        if self._is_folded(t):
            return False
        uses = self.uses[id(t)]
        if t.requires_grad or self.name(t) is not None or not uses:
            return True
        units = [self.unit_of[id(u.node)] for u in uses]
        if all(u.is_group for u in units):
            # a constant made inside a collapsed composite (softmax's max shift):
            # internal to the gate. Scalars inside modules likewise.
            if all(getattr(u.group, "kind", "function") != "module" for u in units) \
                    or t.data.size == 1:
                return False
        return True

    def _gate_label(self, t: Tensor) -> str:
        label = t.op.label(**t.args)
        fmt = FOLDABLE.get(t.op.name)
        if fmt is not None and len(t.parents) == 2:
            for pos, p in enumerate(t.parents):
                if self._is_folded(p):
                    return fmt[0 if pos == 1 else 1].format(_number(p.data.reshape(())[()]))
        return label

    # ------------------------------------------------------------ destinations
    def destinations(self, t: Tensor) -> list:
        """Where wire ``t`` goes: ``[(unit, [uses])]``, one entry per use for a
        primitive gate (``x * x`` has two wires), one per collapsed gate."""
        out: list = []
        merged: dict = {}
        for use in self.uses[id(t)]:
            u = self.unit_of[id(use.node)]
            if t.op is not None and self.unit_of[id(t)] is u:
                continue  # internal to a collapsed gate
            if u.is_group:
                if id(u) in merged:
                    merged[id(u)][1].append(use)
                    continue
                merged[id(u)] = (u, [use])
                out.append(merged[id(u)])
            else:
                out.append((u, [use]))
        return out

    # ------------------------------------------------------------ gradients
    def grad(self, t: Tensor) -> Optional[np.ndarray]:
        return self.grad_of(t) if t.requires_grad else None

    def _input_grads(self, node: Tensor) -> Optional[list]:
        key = id(node)
        if key not in self._ig_cache:
            g = self.grad_of(node)
            self._ig_cache[key] = None if g is None else tl.input_grads(node, g)
        return self._ig_cache[key]

    def branch_grad(self, t: Tensor, uses: Iterable[Use]) -> Optional[np.ndarray]:
        """The gradient flowing back along the wire into these uses (summed), or
        None when a consumer's gradient is not known."""
        total = None
        for use in uses:
            ig = self._input_grads(use.node)
            if ig is None or ig[use.pos] is None:
                return None
            total = ig[use.pos] if total is None else total + ig[use.pos]
        return total
