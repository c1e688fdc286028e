"""The gradients a diagram prints: one ``tl.propagate`` walk from the drawn root.

A diagram never reads ``.grad`` (another pass, or an accumulation of several, may
have written it): every wire's gradient comes from the engine's own backward walk
over the graph being drawn, started from the root's gradient, and nothing is stored
on any tensor.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np

import tinygrad_lite as tl
from tinygrad_lite import Tensor


def root_gradient(root: Tensor, gradient: Any, who: str) -> Optional[np.ndarray]:
    """The gradient a walk from ``root`` starts with: ``gradient`` as an array of the
    root's shape and dtype (a new one, the walk may own it); ones for a root of one
    element; None (no gradients to draw) for a root that does not require grad or
    has several elements and no ``gradient``."""
    if gradient is None:
        if not root.requires_grad or root.data.size != 1:
            return None
        return np.ones_like(root.data)
    if not root.requires_grad:
        raise ValueError(f"{who}: gradient= is given, but the root (shape {root.shape}) does "
                         f"not require grad: there is no backward pass to draw")
    if isinstance(gradient, Tensor):
        gradient = gradient.data
    try:
        g = np.array(gradient, dtype=root.dtype)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{who}: gradient= must be an array of the root's shape {root.shape}, "
                        f"got {type(gradient).__name__} ({e})") from None
    if g.shape != root.shape:
        raise ValueError(f"{who}: gradient= has shape {g.shape}, the root has shape {root.shape}")
    return g


class WireGrads:
    """What one backward walk gave each wire, copied as the walk yields it:
    ``whole[id(t)]``, the gradient of ``t`` (every use summed), and
    ``branch[(id(consumer), pos)]``, the gradient flowing back from ``consumer``
    along its input ``pos``. A wire the walk has not reached has no entry."""
    __slots__ = ("whole", "branch", "into")

    def __init__(self) -> None:
        self.whole: dict = {}
        self.branch: dict = {}
        self.into: dict = {}  # id(t) -> the branch keys flowing into t

    def record(self, node: Tensor, g: np.ndarray, grads: Any) -> None:
        # copies: the walk reuses what it yields once it goes on
        self.whole[id(node)] = np.array(g)
        for pos, (p, pg) in enumerate(zip(node.parents, grads)):
            if pg is not None:
                key = (id(node), pos)
                self.branch[key] = np.array(pg)
                self.into.setdefault(id(p), []).append(key)

    def snapshot(self) -> "WireGrads":
        """The gradients known now (the arrays are never changed: sharing them is safe)."""
        s = WireGrads()
        s.whole, s.branch = dict(self.whole), dict(self.branch)
        s.into = {k: list(v) for k, v in self.into.items()}
        return s

    def without_branches_into(self, t: Tensor) -> "WireGrads":
        """This snapshot with the gradients flowing into ``t`` hidden (a quiz question
        about ``t`` must not show its parts)."""
        s = self.snapshot()
        for key in s.into.pop(id(t), ()):
            del s.branch[key]
        return s

    @classmethod
    def of(cls, root: Tensor, gradient: Optional[np.ndarray]) -> Optional["WireGrads"]:
        """Every wire's gradient from one walk started from ``gradient`` (the root's;
        None: no walk, no gradients)."""
        if gradient is None:
            return None
        out = cls()
        for _ in out.walk(root, gradient):
            pass
        return out

    def walk(self, root: Tensor, gradient: np.ndarray) -> Iterator[Tensor]:
        """Run the engine's walk from ``root`` (its gradient ``gradient``), recording
        each node as it is reached, and yield the node (``self`` then holds what is
        known after it)."""
        for node, g, grads in tl.propagate(root, gradient):
            self.record(node, g, grads)
            yield node
