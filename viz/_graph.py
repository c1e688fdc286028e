"""The graph as viz sees it: tensors, uses, collapsed units, gradients per wire.

Reads the engine only through its public introspection API (``.op``, ``.parents``,
``.args``, ``.groups``, ``.name``, ``.requires_grad``, ``.data``, ``tl.tensor_names``)
and never writes to a tensor; the gradients come from one ``tl.propagate`` walk (``_grads``).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

import numpy as np

import tinygrad_lite as tl
from tinygrad_lite import Tensor

from ._format import number
from ._grads import WireGrads

#: ops whose unnamed scalar constant operand is printed inside the gate, as the
#: notes draw ``+1`` and ``*-1``: name -> (format when the constant is on the right,
#: format when it is on the left)
FOLDABLE = {"add": ("+{}", "+{}"), "sub": ("-{}", "{}-"), "mul": ("*{}", "*{}"),
            "div": ("/{}", "{}/"), "maximum": ("max(·,{})", "max({},·)")}

COLLAPSE_MODES = ("functions", "modules", False, None)


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
                 grads: Optional[WireGrads] = None) -> None:
        if not isinstance(root, Tensor):
            raise TypeError(f"draw: root must be a tinygrad_lite Tensor, got {type(root).__name__}")
        if collapse is True:
            collapse = "functions"
        if collapse not in COLLAPSE_MODES:
            raise ValueError(f"collapse= must be 'functions', 'modules' or False, got {collapse!r}")
        self.root = root
        self.collapse = collapse
        self.names = tl.tensor_names(names, "draw")
        #: the gradients to print (None: the diagram has none)
        self.grads = grads
        self.tensors = self._walk(root)
        self.index = {id(t): i for i, t in enumerate(self.tensors)}
        self.uses: dict = {id(t): [] for t in self.tensors}
        for t in self.tensors:
            for pos, p in enumerate(t.parents):
                self.uses[id(p)].append(Use(t, pos))
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
                    return fmt[0 if pos == 1 else 1].format(number(p.data.reshape(())[()]))
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
        """The gradient of ``t`` (every use summed), or None where the walk gave none."""
        if self.grads is None or not t.requires_grad:
            return None
        return self.grads.whole.get(id(t))

    def branch_grad(self, t: Tensor, uses: Iterable[Use]) -> Optional[np.ndarray]:
        """The gradient flowing back along the wire into these uses (summed), or
        None when a consumer has given none (yet)."""
        if self.grads is None:
            return None
        total = None
        for use in uses:
            pg = self.grads.branch.get((id(use.node), use.pos))
            if pg is None:
                return None
            total = pg if total is None else total + pg
        return total
