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
    """PyTorch's gradients of ``root`` with respect to ``leaves`` (NumPy arrays)."""
    import torch

    out, made = replay_in_torch(root)
    seed = torch.ones_like(out) if gradient is None else torch.tensor(np.asarray(gradient))
    targets = [made[id(t)] for t in leaves]
    grads = torch.autograd.grad(out, targets, grad_outputs=seed, allow_unused=True)
    return [np.zeros(t.shape, dtype=t.dtype) if g is None else g.detach().numpy()
            for t, g in zip(leaves, grads)]
