"""``compare=``: which wires of the drawn graph a gradient report says are wrong.

Duck-typed, so viz depends on no report class. The finest information wins:

* ``wrong_wires()``: ``(tensor, consumer)`` pairs. ``consumer`` None: the tensor's
  whole gradient is wrong; an op node using ``tensor``: only that branch is.
* ``first_divergence`` (not None): an object with ``tensor``, ``name`` and
  ``diagnosis``: the first wrong wire in backward order, marked specially.
* otherwise ``failing`` / ``failing_leaves`` / a mapping / an iterable of names
  (``failing_names``): the named wires are wrong as a whole.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from tinygrad_lite import Tensor


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
        raise TypeError("compare= takes a GradientReport (anything with .failing() or "
                        ".wrong_wires()), a dict name -> ok, or an iterable of failing names; "
                        f"got {type(compare).__name__}") from None


def _failing_tensors(compare: Any) -> list:
    """The failing leaves when the report names them as tensors
    (``GradientReport.failing_leaves()``: the leaves of its own ``report.graph``)."""
    fl = getattr(compare, "failing_leaves", None)
    if fl is None:
        return []
    leaves = fl() if callable(fl) else fl
    return [t for t in leaves if isinstance(t, Tensor)]


class Marks:
    """The wrong wires of one drawing, as ids of the graph ``G``'s tensors and units."""

    def __init__(self, compare: Any, G: Any) -> None:
        self.G = G
        self.wires: set = set()      # id(t): t's whole gradient is wrong
        self.branches: set = set()   # (id(t), id(unit)): only the wire t -> unit is
        self.units: set = set()      # id(unit): a wrong tensor hidden inside this gate
        self.first: Optional[tuple] = None  # (id(t), diagnosis)
        if compare is None:
            return
        ww = getattr(compare, "wrong_wires", None)
        if ww is not None:
            pairs = ww() if callable(ww) else ww
            for item in pairs:
                self._add_pair(item)
        else:
            names = failing_names(compare)
            for t in G.tensors:
                if G.name(t) in names:
                    self._add(t)
            for t in _failing_tensors(compare):
                if id(t) in G.index:
                    self._add(t)
        fd = getattr(compare, "first_divergence", None)
        if fd is not None:
            t = self._find(getattr(fd, "tensor", None), getattr(fd, "name", None))
            if t is not None:
                self._add(t)
                self.first = (id(t), str(getattr(fd, "diagnosis", "") or ""))

    # ------------------------------------------------------------ resolving
    def _find(self, t: Any, name: Any = None) -> Optional[Tensor]:
        """``t`` when it is in the drawn graph, else the drawn tensor of the same
        name (a report about another build of the same graph)."""
        G = self.G
        if isinstance(t, Tensor) and id(t) in G.index:
            return t
        for n in (name, getattr(t, "name", None)):
            if n is not None:
                for u in G.tensors:
                    if G.name(u) == str(n):
                        return u
        return None

    def _add(self, t: Tensor) -> None:
        G = self.G
        if id(t) in G.wire_ids:
            self.wires.add(id(t))
        elif t.op is not None:  # folded into a collapsed gate: mark the gate
            self.units.add(id(G.unit_of[id(t)]))

    def _add_pair(self, item: Any) -> None:
        try:
            tensor, consumer = item
        except (TypeError, ValueError):
            raise TypeError(f"compare=: wrong_wires() must give (tensor, consumer) pairs, "
                            f"got {item!r}") from None
        if not isinstance(tensor, Tensor) or not (consumer is None or isinstance(consumer, Tensor)):
            raise TypeError(f"compare=: wrong_wires() pairs are (Tensor, Tensor or None), got "
                            f"({type(tensor).__name__}, {type(consumer).__name__})")
        t = self._find(tensor)
        if t is None:
            return  # not part of this drawing
        unit = None if consumer is None else self._consumer_unit(t, consumer)
        dests = self.G.destinations(t) if id(t) in self.G.wire_ids else []
        if unit is None or len(dests) <= 1:
            self._add(t)
        else:
            self.branches.add((id(t), id(unit)))

    def _consumer_unit(self, t: Tensor, consumer: Tensor) -> Any:
        """The drawn gate the branch ``t -> consumer`` enters: by identity, else the
        only consumer of ``t`` running the same op (None: not known, mark all of ``t``)."""
        G = self.G
        uses = G.uses[id(t)]
        same = [u.node for u in uses if u.node is consumer]
        if not same and consumer.op is not None:
            ops = {id(u.node): u.node for u in uses if u.node.op is not None
                   and u.node.op.name == consumer.op.name}
            same = list(ops.values()) if len(ops) == 1 else []
        return G.unit_of[id(same[0])] if same else None

    # ------------------------------------------------------------ reading
    def wire(self, t: Tensor) -> bool:
        return id(t) in self.wires

    def branch(self, t: Tensor, unit: Any) -> bool:
        return (id(t), id(unit)) in self.branches

    def unit(self, unit: Any) -> bool:
        return id(unit) in self.units

    def first_diagnosis(self, t: Tensor) -> Optional[str]:
        """The diagnosis ("" when none) when ``t`` is the first wrong wire, else None."""
        if self.first is not None and self.first[0] == id(t):
            return self.first[1]
        return None
