"""The report's view of the engine's graph: every gradient of one pure backward walk
(each tensor's whole gradient and, at a fan-out, each branch's), and the names a
hand derivation may use for the tensors and branches it gives."""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from ..autograd import propagate
from ..tensor import Tensor
from .agreement import proportional

#: Prefixes the seeds put before a tensor's name for its gradient: ``dW1``, ``dscores``
#: (seeds 001-004), ``grad_L_wrt_scores`` (seed 000).
GRADIENT_PREFIXES = ("d", "grad_L_wrt_")

#: A consumer spec naming the branch of a tensor that is its L2 term (see ``EngineGradients.is_l2``).
L2_SPECS = ("l2", "reg")


class EngineGradients:
    """The engine's gradients of ``root`` from one ``propagate`` walk (no ``.grad`` is
    read or written): ``whole(t)`` is t's gradient, ``branch(t, consumer)`` the part of
    it that flows back from one consumer node (summed over the consumer's inputs that
    are ``t``, as ``x * x``). Every array is a float64 copy of its own."""

    def __init__(self, root: Tensor) -> None:
        self.root = root
        self.order: list = []            # the nodes the walk reached, in backward order
        self.position: dict = {}         # id(node) -> index in order
        self._whole: dict = {}
        self._branch: dict = {}          # (id(tensor), id(consumer)) -> array
        self._consumers: dict = {}       # id(tensor) -> [consumer nodes]
        for node, g, grads in propagate(root, np.ones_like(root.data)):
            self.position[id(node)] = len(self.order)
            self.order.append(node)
            self._whole[id(node)] = np.array(g, dtype=np.float64)
            for p, pg in zip(node.parents, grads):
                if pg is None:
                    continue
                key = (id(p), id(node))
                part = np.array(pg, dtype=np.float64)  # a copy: the walk reuses its arrays
                if key in self._branch:
                    self._branch[key] += part
                else:
                    self._branch[key] = part
                    self._consumers.setdefault(id(p), []).append(node)

    def reached(self, t: Tensor) -> bool:
        return id(t) in self._whole

    def whole(self, t: Tensor) -> np.ndarray:
        """``t``'s gradient (zeros of its shape when it does not reach the root)."""
        g = self._whole.get(id(t))
        return np.zeros(t.shape) if g is None else g

    def consumers(self, t: Tensor) -> list:
        """The op nodes that pass a gradient back to ``t``, in backward order."""
        return list(self._consumers.get(id(t), ()))

    def branch(self, t: Tensor, consumer: Tensor) -> np.ndarray:
        g = self._branch.get((id(t), id(consumer)))
        return np.zeros(t.shape) if g is None else g

    def is_l2(self, t: Tensor, consumer: Tensor, rtol: float, atol: float) -> Optional[float]:
        """``m`` when the branch of ``t`` into ``consumer`` is ``m * t`` (an L2 term:
        ``reg * sum(t**2)`` gives ``2 * reg * t``), checked element by element; else None."""
        return proportional(self.branch(t, consumer), t.data.astype(np.float64), rtol, atol)


def graph_tensors(root: Tensor) -> list:
    """Every tensor ``root`` was computed from (constants too), root first."""
    seen, out, stack = {id(root)}, [], [root]
    while stack:
        t = stack.pop()
        out.append(t)
        for p in t.parents:
            if id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return out


def describe(consumer: Tensor, t: Tensor) -> str:
    """A short text for the op node ``consumer`` that uses ``t``: its composite's
    name (``l2_penalty``), else the expression with the operands' names
    (``a @ W2``, ``W2 * W2``), shapes standing for unnamed arrays."""
    for g in consumer.groups:
        if getattr(g, "kind", "function") != "module":
            return str(g.name)

    def operand(p: Tensor) -> str:
        if p.name:
            return p.name
        if p.op is None and p.data.size == 1:
            return f"{p.data.reshape(-1)[0]:g}"
        return str(tuple(p.shape))

    names = [operand(p) for p in consumer.parents]
    symbol = consumer.op.symbol
    if len(names) == 2 and symbol in ("+", "-", "*", "/", "@"):
        return f"{names[0]} {symbol} {names[1]}"
    return f"{consumer.op.label(**consumer.args)}({', '.join(names)})"


Key = Union[str, tuple]


class Names:
    """Resolves the keys of a hand derivation to tensors of the graph (and branches)."""

    def __init__(self, root: Tensor, params: dict, walk: EngineGradients) -> None:
        self.params = params             # name -> the report's leaf Tensor
        self.walk = walk
        self.by_name: dict = {}          # name -> distinct tensors of the graph with that name
        for t in list(params.values()) + graph_tensors(root):
            if t.name is not None:
                same = self.by_name.setdefault(t.name, [])
                if not any(s is t for s in same):
                    same.append(t)

    def known(self) -> str:
        """The names a hand derivation may use, in backward order (loss towards leaves)."""
        with_grad = [n for n, ts in self.by_name.items() if any(t.requires_grad for t in ts)]
        with_grad.sort(key=lambda n: min(self.walk.position.get(id(t), 1 << 30)
                                         for t in self.by_name[n]))
        return ", ".join(with_grad) or "none"

    def tensor(self, key: Any) -> tuple[str, Tensor]:
        """``(name, tensor)`` for a hand key: the tensor's own name, or the seeds' ``d``
        / ``grad_L_wrt_`` forms of it when that is unambiguous."""
        if not isinstance(key, str):
            raise TypeError(f"compare_gradients: a hand gradient's key must be a tensor's name "
                            f"(a str) or a pair (name, consumer), got {key!r}")
        candidates = [key] + [key[len(p):] for p in GRADIENT_PREFIXES
                              if key.startswith(p) and len(key) > len(p)]
        found = [n for n in dict.fromkeys(candidates) if n in self.by_name]
        if not found:
            raise ValueError(f"compare_gradients: the hand gradients name {key!r}, which matches "
                             f"no tensor of the graph (the named tensors with a gradient: "
                             f"{self.known()}); name a tensor in loss_fn with `t.name = ...` "
                             f"or compare.named(t, ...)")
        if len(found) > 1:
            raise ValueError(f"compare_gradients: the hand key {key!r} is ambiguous: the graph "
                             f"has tensors named {' and '.join(repr(n) for n in found)}")
        name = found[0]
        tensors = self.by_name[name]
        if len(tensors) > 1:
            raise ValueError(f"compare_gradients: {len(tensors)} tensors of the graph are named "
                             f"{name!r}; give each its own name to compare its gradient")
        t = tensors[0]
        if not t.requires_grad:
            raise ValueError(f"compare_gradients: the hand gradients name {key!r}, but {name!r} "
                             f"(shape {t.shape}) does not depend on any parameter, so it has no "
                             f"gradient (the named tensors with a gradient: {self.known()})")
        return name, t

    def branch(self, key: tuple, rtol: float, atol: float) -> tuple[str, Tensor, Tensor]:
        """``(name, tensor, consumer)`` for a key ``(tensor name, consumer)``: the
        consumer is the op node using the tensor, given by its output's name, its op's
        name or symbol, its composite's name, its expression (``W2 * W2``), ``"l2"``
        for the branch that is an L2 term, or the node itself."""
        if len(key) != 2:
            raise TypeError(f"compare_gradients: a per-branch hand key must be a pair "
                            f"(tensor name, consumer), got {key!r}")
        name, t = self.tensor(key[0])
        spec = key[1]
        consumers = self.walk.consumers(t)
        if isinstance(spec, Tensor):
            hits = [c for c in consumers if c is spec]
        elif isinstance(spec, str):
            if spec.lower() in L2_SPECS:
                hits = [c for c in consumers if self.walk.is_l2(t, c, rtol, atol) is not None]
            else:
                hits = [c for c in consumers if spec in _labels(c, t)]
        else:
            raise TypeError(f"compare_gradients: the consumer in the hand key {key!r} must be "
                            f"a str or the consumer Tensor")
        choices = "; ".join(describe(c, t) for c in consumers) or "none"
        if len(hits) != 1:
            what = "matches none" if not hits else f"matches {len(hits)}"
            raise ValueError(f"compare_gradients: the hand key {key!r} {what} of the ops using "
                             f"{name!r} (its consumers: {choices})")
        return name, t, hits[0]


def _labels(consumer: Tensor, t: Tensor) -> set:
    op = consumer.op
    out = {op.name, op.symbol, op.label(**consumer.args), describe(consumer, t)}
    if consumer.name:
        out.add(consumer.name)
    out.update(str(g.name) for g in consumer.groups)
    return out


def named(t: Tensor, name: str) -> Tensor:
    """``t`` with ``t.name = name``, returned, so a ``loss_fn`` can name an
    intermediate in the expression that makes it: ``h1 = named(z1.relu(), "h1")``."""
    if not isinstance(t, Tensor):
        raise TypeError(f"named: expected a Tensor, got {type(t).__name__}")
    t.name = name
    return t
