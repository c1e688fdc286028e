"""Gradients of gradients: ``backward(create_graph=True)`` and ``tl.grad(...,
create_graph=True)`` to any order with PyTorch's semantics; every op's second
derivatives against ``torch.autograd.grad(..., create_graph=True)`` and central
differences of the first-order gradient; the functional API (``tl.jacobian``,
``hessian``, ``hvp``, ``vhp``, ``jvp``, ``vjp``) against ``torch.autograd.functional``;
and uses: a Newton step, the Hessian of the cs231n toy loss, a diagram of a
double-backward graph.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite.autograd import stamps
from tinygrad_lite.ops import NP
from tinygrad_lite.tensor import TENSOR

try:
    import torch
    HAVE_TORCH = True
except ImportError:  # the oracle is optional: its tests skip
    HAVE_TORCH = False

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed: oracle skipped")


def leaf(values, name=None):
    return tl.Tensor(np.array(values, dtype=float), requires_grad=True, name=name)


def twin(values):
    return torch.tensor(np.array(values, dtype=float), requires_grad=True)


def plain(t):
    """A Tensor's or torch tensor's values as an array (torch's ZeroTensor included)."""
    if isinstance(t, tl.Tensor):
        return t.data
    if HAVE_TORCH and isinstance(t, torch.Tensor):
        return t.detach().numpy(force=True)
    return np.asarray(t)


# ----------------------------------------------------------------- the engine, create_graph

def test_the_namespaces_have_the_same_functions():
    public = lambda ns: {n for n in dir(type(ns)) if not n.startswith("_")}  # noqa: E731
    assert public(NP) == public(TENSOR)
    a, b = leaf([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0])
    for name in ("maximum", "minimum"):
        np.testing.assert_array_equal(getattr(TENSOR, name)(a, b).data, getattr(NP, name)(a.data, b))
    assert tl.grad(TENSOR.minimum(a, b).sum(), a).tolist() == [1.0, 0.5, 0.0]  # a tie splits


@pytest.mark.parametrize("exponent", [0, 1, 2, 3, -1, 0.5])
def test_under_create_graph_every_gradient_is_a_tensor(exponent):
    x = leaf([1.0, 2.0])
    seed = leaf([1.0, 1.0])
    g = tl.grad(x ** exponent, x, grad_outputs=seed, create_graph=True)
    assert isinstance(g, tl.Tensor)
    np.testing.assert_array_equal(g.data, tl.grad(x ** exponent, x, grad_outputs=np.ones(2)))
    x.sum().backward(create_graph=True)
    (x ** exponent).sum().backward(create_graph=True)
    assert isinstance(x.grad, tl.Tensor)
