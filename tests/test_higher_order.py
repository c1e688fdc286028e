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
# torch warns that backward(create_graph=True) makes a cycle parameter <-> .grad: so does ours
pytestmark = pytest.mark.filterwarnings("ignore:Using backward.. with create_graph=True")


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


def test_leaf_gradients_under_create_graph_are_tensors_of_their_own():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward(create_graph=True)  # the add hands one gradient to both inputs
    assert a.grad is not b.grad and a.grad.data.flags.writeable
    with tl.no_grad():
        a.grad += 1.0
    assert a.grad.tolist() == [2.0, 2.0] and b.grad.tolist() == [1.0, 1.0]
    seed = leaf([5.0, 6.0])
    a.grad = None
    a.backward(gradient=seed, create_graph=True)  # the root's gradient is the caller's tensor
    assert a.grad is not seed
    with tl.no_grad():
        a.grad *= 2.0
    assert seed.tolist() == [5.0, 6.0] and a.grad.tolist() == [10.0, 12.0]
    a.grad = None
    a.backward(gradient=seed, create_graph=True)
    assert tl.grad(a.grad.sum(), seed).tolist() == [1.0, 1.0]  # the copy stays in the graph
    found = tl.grad(a + b, [a, b], grad_outputs=seed, create_graph=True)
    assert found[0] is not seed and found[1] is not seed and found[0] is not found[1]


def test_a_backward_without_create_graph_makes_no_tensor():
    x = leaf([1.0, -2.0, 3.0])
    loss = ((x * x).exp() * x.tanh()).sum() / x.max()
    before = next(stamps)
    loss.backward()
    tl.grad(loss, x)
    assert next(stamps) == before + 1  # no node, no leaf: the NumPy path only
    assert type(x.grad) is np.ndarray and all(type(t.grad) is np.ndarray
                                              for t in tl.backward_order(loss))


@needs_torch
@pytest.mark.parametrize("first,then", list(itertools.product([True, False], repeat=2)))
def test_gradients_accumulate_in_grad_across_passes_as_torch(first, then):
    x, tx = leaf([0.5, -1.0, 2.0]), twin([0.5, -1.0, 2.0])
    for t, loss in ((x, lambda t: (t ** 3).sum() + t.tanh().sum()),
                    (tx, lambda t: (t ** 3).sum() + t.tanh().sum())):
        loss(t).backward(create_graph=first)
        loss(t).backward(create_graph=then)
    np.testing.assert_allclose(plain(x.grad), plain(tx.grad), rtol=1e-15)
    assert isinstance(x.grad, tl.Tensor) == then  # a pass without create_graph stores arrays
    if then:
        g2 = tl.grad(x.grad.sum(), x)
        tg2, = torch.autograd.grad(tx.grad.sum(), tx)
        np.testing.assert_allclose(g2, plain(tg2), rtol=1e-15)


@needs_torch
def test_the_gradient_of_grad_accumulates_into_grad_as_torch():
    x, tx = leaf([0.5, -1.0, 2.0]), twin([0.5, -1.0, 2.0])
    for t in (x, tx):
        (t.exp() * t).sum().backward(create_graph=True)
        t.grad.sum().backward()  # d/dx sum(grad) is added to grad: (x + 1) e^x + (x + 2) e^x
    np.testing.assert_allclose(plain(x.grad), plain(tx.grad), rtol=1e-15)
    np.testing.assert_allclose(plain(x.grad), (2 * x.data + 3) * np.exp(x.data), rtol=1e-14)
