"""Replay a recorded graph in PyTorch, op by op, through each op's ``torch`` twin.

Used by the oracle tests and the gradient comparison report. PyTorch is optional
and imported only when this runs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .tensor import Tensor


def replay_in_torch(root: Tensor) -> tuple[Any, dict[int, Any]]:
    """Rebuild ``root``'s graph in PyTorch (float64 leaves copied from ``.data``).

    Returns the torch output and a dict ``id(tensor) -> torch tensor`` for every
    node visited. Leaves that require grad become torch leaves with
    ``requires_grad=True``; after ``out.backward(...)`` their ``.grad`` holds
    PyTorch's gradient.
    """
    import torch

    made: dict[int, Any] = {}
    # Iterative post-order over the whole graph (constants included).
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in made:
            continue
        if node.op is None:
            made[id(node)] = torch.tensor(np.array(node.data), requires_grad=node.requires_grad)
            continue
        if not expanded:
            stack.append((node, True))
            stack.extend((p, False) for p in node.parents if id(p) not in made)
            continue
        made[id(node)] = node.op.torch(*[made[id(p)] for p in node.parents], **node.args)
    return made[id(root)], made


def torch_gradients(root: Tensor, leaves: list[Tensor], gradient: Any = None) -> list[np.ndarray]:
    """PyTorch's gradients of ``root`` with respect to ``leaves`` (NumPy arrays, one per
    leaf, in order).

    ``leaves`` may be any tensors of the graph (leaves or intermediate nodes) that
    require grad. A tensor that does not reach ``root`` (not in its graph at all, or
    in it without influencing it) gets zeros of its shape and dtype, as
    ``torch.autograd.grad(..., allow_unused=True)`` followed by zero-filling.
    A tensor with ``requires_grad=False`` raises ``ValueError`` naming it.
    """
    import torch

    leaves = list(leaves)
    for i, t in enumerate(leaves):
        if not isinstance(t, Tensor):
            raise TypeError(f"torch_gradients: leaf {i} is a {type(t).__name__}, not a Tensor")
        if not t.requires_grad:
            raise ValueError(f"torch_gradients: leaf {i} ({t.name or 'unnamed'}, shape {t.shape}) "
                             f"does not require grad, so it has no gradient")
    out, made = replay_in_torch(root)
    grad_output = torch.ones_like(out) if gradient is None else torch.tensor(np.asarray(gradient))
    used = [i for i, t in enumerate(leaves) if id(t) in made]  # the others are not in the graph
    grads: list = [None] * len(leaves)
    if used:
        found = torch.autograd.grad(out, [made[id(leaves[i])] for i in used], grad_outputs=grad_output,
                                    allow_unused=True)
        for i, g in zip(used, found):
            grads[i] = g
    return [np.zeros(t.shape, dtype=t.dtype) if g is None else g.detach().numpy()
            for t, g in zip(leaves, grads)]
