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
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
import viz
from tinygrad_lite import reference
from tinygrad_lite.autograd import stamps
from tinygrad_lite.ops import NP, OPS
from tinygrad_lite.tensor import TENSOR

from conftest import SECOND_ORDER_STATS, cube_op
from test_ops import (COMPOSITES, H, NUM_ABS, NUM_REL, SPECS, TORCH_ABS, TORCH_REL, TIES, Case,
                      builtin_ops, check_close, operands, random_graph, record)

try:
    import torch
    from tinygrad_lite.torch_replay import replay_in_torch
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
    grad_output = leaf([1.0, 1.0])
    g = tl.grad(x ** exponent, x, grad_outputs=grad_output, create_graph=True)
    assert isinstance(g, tl.Tensor)
    np.testing.assert_array_equal(g.data, tl.grad(x ** exponent, x, grad_outputs=np.ones(2)))
    x.sum().backward(create_graph=True)
    (x ** exponent).sum().backward(create_graph=True)
    assert isinstance(x.grad, tl.Tensor)


def test_grad_of_several_outputs_returns_arrays_also_for_0d_inputs():
    x = leaf(2.0)
    found = tl.grad([x * x, x * 3.0], x)
    assert type(found) is np.ndarray and found.shape == () and found == 7.0
    assert isinstance(tl.grad([x * x, x * 3.0], x, create_graph=True), tl.Tensor)

def test_create_graph_refuses_an_input_whose_array_was_replaced():
    W = leaf([1.0, 2.0], name="W")
    loss = (W * W * W).sum()
    W.data = np.array([10.0, 20.0])  # the fast path still differentiates the old values
    assert tl.grad(loss, W).tolist() == [3.0, 12.0]
    with pytest.raises(RuntimeError, match="'W', shape \\(2,\\)\\) of mul was given a new array"):
        tl.grad(loss, W, create_graph=True)
    with pytest.raises(RuntimeError, match="given a new array"):
        loss.backward(create_graph=True)
    assert W.grad is None

def test_leaf_gradients_under_create_graph_are_tensors_of_their_own():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward(create_graph=True)  # the add hands one gradient to both inputs
    assert a.grad is not b.grad and a.grad.data.flags.writeable
    with tl.no_grad():
        a.grad += 1.0
    assert a.grad.tolist() == [2.0, 2.0] and b.grad.tolist() == [1.0, 1.0]
    grad_output = leaf([5.0, 6.0])
    a.grad = None
    a.backward(gradient=grad_output, create_graph=True)  # the root's gradient is the caller's tensor
    assert a.grad is not grad_output
    with tl.no_grad():
        a.grad *= 2.0
    assert grad_output.tolist() == [5.0, 6.0] and a.grad.tolist() == [10.0, 12.0]
    a.grad = None
    a.backward(gradient=grad_output, create_graph=True)
    assert tl.grad(a.grad.sum(), grad_output).tolist() == [1.0, 1.0]  # the copy stays in the graph
    found = tl.grad(a + b, [a, b], grad_outputs=grad_output, create_graph=True)
    assert found[0] is not grad_output and found[1] is not grad_output and found[0] is not found[1]


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



@needs_torch
def test_derivatives_to_the_fifth_order_as_torch():
    x, tx = leaf([0.3, -1.2, 2.0]), twin([0.3, -1.2, 2.0])
    y, ty = (x.tanh() * x.exp() + x ** 4 / (1 + x * x)).sum(), \
        (tx.tanh() * tx.exp() + tx ** 4 / (1 + tx * tx)).sum()
    for order in range(1, 6):
        y = tl.grad(y, x, create_graph=True)
        ty, = torch.autograd.grad(ty, tx, create_graph=True)
        np.testing.assert_allclose(y.data, plain(ty), rtol=1e-12, err_msg=f"order {order}")
        y, ty = (y * np.arange(1.0, 4.0)).sum(), (ty * torch.arange(1.0, 4.0, dtype=torch.float64)).sum()


def test_third_derivative_of_a_cubic_is_six():
    x = leaf(2.0)
    d1 = tl.grad(x ** 3, x, create_graph=True)
    d2 = tl.grad(d1, x, create_graph=True)
    d3 = tl.grad(d2, x, create_graph=True)
    assert (d1.item(), d2.item(), d3.item()) == (12.0, 12.0, 6.0)
    with pytest.raises(RuntimeError, match="does not require grad"):  # as torch: d3 is a constant
        tl.grad(d3, x)


@needs_torch
def test_double_vjp_with_a_seed_that_requires_grad_as_torch():
    x, tx = leaf([[0.5, -1.0], [2.0, 0.1]]), twin([[0.5, -1.0], [2.0, 0.1]])
    u, tu = leaf(np.zeros((2, 2))), twin(np.zeros((2, 2)))
    v = np.array([[1.0, 2.0], [-1.0, 0.5]])
    g = tl.grad(tl.softmax(x @ x, axis=1), x, grad_outputs=u, create_graph=True)
    tg, = torch.autograd.grad(torch.softmax(tx @ tx, 1), tx, grad_outputs=tu, create_graph=True)
    jv = tl.grad(g, u, grad_outputs=v)  # J v, the forward-mode derivative
    tjv, = torch.autograd.grad(tg, tu, grad_outputs=torch.tensor(v))
    np.testing.assert_allclose(jv, plain(tjv), rtol=1e-13)


@needs_torch
def test_second_order_with_respect_to_intermediates_and_several_outputs_as_torch():
    values = [0.4, -0.8, 1.5]
    (x, tx) = leaf(values), twin(values)
    results = []
    for t, lib in ((x, tl), (tx, torch)):
        h = t.exp() * t
        outs = [(h * h).sum(), h.tanh().sum()]
        if lib is tl:
            gh = tl.grad(outs, h, create_graph=True)
            results.append(tl.grad((gh * gh).sum(), [x, h]))
        else:
            gh, = torch.autograd.grad(outs, h, create_graph=True)
            results.append([plain(g) for g in torch.autograd.grad((gh * gh).sum(), [tx, h])])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13)


def test_create_graph_records_inside_no_grad_as_torch():
    x = leaf([1.0, 2.0])
    y = (x ** 3).sum()
    with tl.no_grad():
        g = tl.grad(y, x, create_graph=True)
        y.backward(create_graph=True)
    assert g.requires_grad and x.grad.requires_grad
    assert tl.grad(g.sum(), x).tolist() == [6.0, 12.0]
    with tl.no_grad():
        tl.grad(y, x, create_graph=True)
        assert not tl.is_grad_enabled()  # the mode is restored after the pass


def test_backward_create_graph_with_inputs_stores_only_those():
    x, w = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    h = x * w
    (h * h).sum().backward(create_graph=True, inputs=[x])
    assert w.grad is None and h.grad is None and isinstance(x.grad, tl.Tensor)
    np.testing.assert_array_equal(tl.grad(x.grad.sum(), w), 4 * x.data * w.data)


def test_an_op_without_xp_cannot_be_differentiated_twice_and_says_why():
    class NumpySquare(tl.Function):
        name = "numpy_square_higher_order_test"

        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def backward(g, out, xs, needs):
            return (2 * g * xs[0],)

    try:
        x = leaf([1.0, 2.0])
        y = NumpySquare.apply(x).sum()
        assert tl.grad(y, x).tolist() == [2.0, 4.0]  # the fast path still works
        with pytest.raises(TypeError, match="numpy_square_higher_order_test.*xp"):
            tl.grad(y, x, create_graph=True)
        assert x.grad is None
    finally:
        OPS.pop("numpy_square_higher_order_test", None)


def test_a_user_op_written_with_xp_is_differentiated_twice():
    Cube = cube_op("cube_higher_order_test")
    try:
        x = leaf([1.0, -2.0])
        g = tl.grad(Cube.apply(x).sum(), x, create_graph=True)
        assert tl.grad(g.sum(), x).tolist() == [6.0, -12.0]
        assert tl.hessian(lambda t: Cube.apply(t).sum(), x).tolist() == [[6.0, 0.0], [0.0, -12.0]]
    finally:
        OPS.pop("cube_higher_order_test", None)


def test_anomaly_mode_names_the_op_of_a_double_backward_that_makes_inf():
    x = leaf([0.0, 1.0])
    g = tl.grad((x ** 1.5).sum(), x, create_graph=True)  # 1.5 sqrt(x): finite at 0
    total = g.sum()
    with tl.detect_anomaly(), np.errstate(divide="ignore"), \
            pytest.raises(FloatingPointError, match="pow backward"):
        tl.grad(total, x)  # 0.75 / sqrt(x): inf at 0


# ----------------------------------------------------------------- every op, twice
# For a case of tests/test_ops.py's SPECS: out = f(x), u a grad_output that requires grad,
# first = tl.grad(out, x, grad_outputs=u, create_graph=True), then the gradient of
# sum(first * w) with respect to x (the Hessian-vector product, second derivatives of
# f) and to u (J w: the recorded backward is the right linear function of its grad_output,
# which makes even linear ops' recorded backwards count).


def test_every_op_and_composite_is_differentiated_twice():
    missing = [n for n in builtin_ops() + sorted(COMPOSITES) if n not in SPECS]
    assert not missing, f"no case generator (tests/test_ops.py SPECS), so no second order: {missing}"
    numpy_only = [n for n in builtin_ops() if not OPS[n].any_namespace]
    assert not numpy_only, f"ops whose backward cannot record a graph (no xp): {numpy_only}"


def weighted_sum(tensors, weights):
    total = None
    for t, w in zip(tensors, weights):
        term = (t * w).sum()
        total = term if total is None else total + term
    return total


def gradients_or_zeros(scalar, wrt):
    """tl.grad of a scalar, zeros where it does not depend on an input (also when it
    depends on none: the first gradient was a constant)."""
    found = tl.grad(scalar, wrt, allow_unused=True) if scalar.requires_grad else [None] * len(wrt)
    return [np.zeros(t.shape) if g is None else g for g, t in zip(found, wrt)]


def first_order_probe(case, arrays, w1, w2):
    """sum(grad(f(arrays)) * w2) for the grad_output w1, by the fast path (no create_graph)."""
    ops_, leaves = operands(Case(arrays, case.kinds, case.fn))
    found = tl.grad(case.fn(*ops_), leaves, grad_outputs=w1)
    return float(sum(np.sum(g * w) for g, w in zip(found, w2)))


def numeric_second_derivatives(case, w1, w2):
    """Central differences of first_order_probe with respect to every entry of the
    inputs that require grad and of the grad_output."""
    grad_positions = [i for i, k in enumerate(case.kinds) if k == "grad"]
    results = []
    for pos in grad_positions + [None]:
        arrays = [np.array(a) for a in case.arrays]  # copies (0-d arrays, not scalars) to perturb
        grad_output = w1.copy()
        base = arrays[pos] if pos is not None else grad_output
        results.append(tl.eval_numerical_gradient(
            lambda _, arrays=arrays, grad_output=grad_output: first_order_probe(case, arrays, grad_output, w2),
            base, h=H))
    return results


def _bce_formula(p, t):
    return -(t * p.log() + (1 - t) * (-p).log1p())


#: Twins replayed for the second order where PyTorch's own double backward is not
#: exact: torch's binary_cross_entropy double backward is off by ~1e-11 relative per
#: element (its 1e-12 floor on p (1 - p)), which cancellation in these sums grows past
#: 1e-9; its formula differentiated by torch's autograd is exact (the cases keep p in
#: (0.05, 0.95), where the clamps do nothing). Ours is exact: see
#: test_binary_cross_entropy_second_derivatives_are_the_exact_ones.
SECOND_ORDER_TWINS = {"binary_cross_entropy": _bce_formula}


def torch_second_derivatives(out, leaves, w1, w2):
    """The same second derivatives by torch.autograd.grad(create_graph=True) on the
    graph replayed in PyTorch."""
    saved = {name: OPS[name].torch for name in SECOND_ORDER_TWINS}
    try:
        for name, twin_op in SECOND_ORDER_TWINS.items():
            OPS[name].torch = staticmethod(twin_op)
        tout, made = replay_in_torch(out)
    finally:
        for name, twin_op in saved.items():
            OPS[name].torch = staticmethod(twin_op)
    tleaves = [made[id(t)] for t in leaves]
    tu = torch.tensor(w1, requires_grad=True)
    firsts = torch.autograd.grad(tout, tleaves, grad_outputs=tu, create_graph=True,
                                 allow_unused=True)
    terms = [(f * torch.tensor(w)).sum() for f, w in zip(firsts, w2) if f is not None]
    total = sum(terms[1:], terms[0]) if terms else None
    wrt = tleaves + [tu]
    if total is None or not total.requires_grad:
        return [np.zeros(tuple(t.shape)) for t in wrt]
    found = torch.autograd.grad(total, wrt, allow_unused=True)
    return [np.zeros(tuple(t.shape)) if g is None else plain(g) for g, t in zip(found, wrt)]


def check_second_order(label, case, numeric=True, table=True):
    """The second derivatives of ``case`` (see above) against central differences (when
    ``numeric``) and PyTorch (when installed), recorded under ``label`` in the summary
    table (when ``table``). Returns ours, one array per input that requires grad and
    one for the grad_output."""
    ops_, leaves = operands(case)
    out = case.fn(*ops_)
    rng = np.random.default_rng(len(case.desc))
    w1 = rng.uniform(-1, 1, out.shape)
    w2 = [rng.uniform(-1, 1, t.shape) for t in leaves]
    u = tl.Tensor(w1, requires_grad=True)
    firsts = tl.grad(out, leaves, grad_outputs=u, create_graph=True)
    for f, p in zip(firsts, tl.grad(out, leaves, grad_outputs=w1)):
        # the same numbers as the fast path, but for the order of additions at a fan-in
        # (x * x: the fast path adds 2 (g x) once, the recording g x twice)
        assert isinstance(f, tl.Tensor), case.desc
        check_close("recorded first derivative vs the fast path", f.data, p, 1e-14, 1e-15, case)
    ours = gradients_or_zeros(weighted_sum(firsts, w2), leaves + [u])
    stats = {"cases": 0, "torch_cases": 0, "num_rel": 0.0, "num_abs": 0.0, "torch_rel": 0.0,
             "torch_abs": 0.0}
    if table:
        stats = SECOND_ORDER_STATS.setdefault(label, stats)
    tally = {label: stats}
    if numeric:
        for g, n in zip(ours, numeric_second_derivatives(case, w1, w2)):
            record(label, "num", g, n, NUM_ABS, stats=tally)
            check_close("second derivative vs central differences", g, n, NUM_REL, NUM_ABS, case)
        stats["cases"] += 1
    if HAVE_TORCH:
        for g, tg in zip(ours, torch_second_derivatives(out, leaves, w1, w2)):
            record(label, "torch", g, tg, TORCH_ABS, stats=tally)
            check_close("second derivative vs torch", g, tg, TORCH_REL, TORCH_ABS, case)
        stats["torch_cases"] += 1
    return ours


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_second_derivatives_vs_torch_and_central_differences(name, data):
    case = data.draw(st.composite(lambda draw: SPECS[name](draw))(), label="case")
    check_second_order(name, case)


@given(case=random_graph())
def test_second_derivatives_of_random_graphs(case):
    check_second_order("(random graphs)", case)


# Kinks, ties and bounds: central differences mean nothing there, PyTorch's
# conventions decide (the first derivatives' are tested in tests/test_ops.py).
AT_ZERO = np.array([-1.0, 0.0, 0.0, 1.0, 2.0])
CONSTANT_ROWS = np.array([[2.0, 2.0, 2.0], [1.0, -1.0, 0.5], [0.0, 0.0, 0.0]])
KINKS = {
    "relu at 0": (lambda t: t.relu(), [AT_ZERO]),
    "abs at 0": (lambda t: abs(t), [AT_ZERO]),
    "clip at its bounds": (lambda t: t.clip(0.0, 1.0) * t, [AT_ZERO]),
    "clip at min": (lambda t: t.clip(min=0.0) ** 2, [AT_ZERO]),
    "max ties": (lambda t: t.max(axis=1) * t.sum(axis=1), [TIES]),
    "min ties, all axes": (lambda t: t.min() * t, [TIES]),
    "maximum ties": (lambda a, b: tl.maximum(a, b) * a, [TIES, TIES[::-1].copy()]),
    "std of constant rows": (lambda t: t.std(axis=1) * t.sum(axis=1), [CONSTANT_ROWS]),
    "std, ddof=1, of one constant row": (lambda t: t.std(axis=1, ddof=1), [CONSTANT_ROWS]),
    "pow at 0": (lambda t: t ** 0 + t ** 1 + t ** 2 + t ** 3, [AT_ZERO]),
    "where": (lambda a, b: tl.where(AT_ZERO > 0, a * b, b ** 3), [AT_ZERO, AT_ZERO + 1]),
    "softmax of 1e4": (lambda t: tl.softmax(t, axis=1), [np.array([[1e4, 1e4 - 1, -1e4]])]),
    "log_softmax of 1e4": (lambda t: tl.log_softmax(t, axis=0), [np.array([1e4, -1e4, 3.0])]),
    "cross_entropy of 1e4": (lambda t: tl.cross_entropy(t, np.array([0, 2])),
                             [np.array([[1e4, 1e4 - 1, -1e4], [0.0, 1e4, 1e4 - 3]])]),
    "relu6 at 0 and 6": (lambda t: t.relu6() * t, [np.array([-1.0, 0.0, 3.0, 6.0, 7.0])]),
    "hardswish at -3 and 3": (lambda t: t.hardswish() * t, [np.array([-4.0, -3.0, 0.0, 3.0, 4.0])]),
    "leaky_relu at 0": (lambda t: t.leaky_relu(0.1) * t, [AT_ZERO]),
    "elu at 0": (lambda t: t.elu(2.0) * t, [AT_ZERO]),
    "softplus at its threshold": (lambda t: t.softplus(2.0, 3.0) * t, [np.array([1.4, 1.5, 1.6])]),
    "sign at 0": (lambda t: t.sign() * t, [AT_ZERO]),
    "minimum ties": (lambda a, b: tl.minimum(a, b) * a, [TIES, TIES[::-1].copy()]),
    "mish and gelu far out": (lambda t: t.mish() + t.gelu() + t.gelu("tanh"),
                              [np.array([0.0, -40.0, 40.0, -8.0, 8.0])]),
    "prod with one zero": (lambda t: t.prod() * t, [np.array([0.0, 2.0, 3.0, 0.5])]),
    "prod with zeros in rows": (lambda t: t.prod(axis=1) * t.sum(axis=1),
                                [np.array([[0.0, 2.0, 0.0], [1.5, -2.0, 3.0], [0.0, 0.0, 0.0]])]),
    "prod with zeros over two axes": (lambda t: t.prod(axis=(0, 2)),
                                      [np.array([[[0.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 2.0]]])]),
    "logsumexp of 50x": (lambda t: t.logsumexp(axis=0) * t.logsumexp(axis=1, keepdims=True),
                         [np.random.default_rng(5).uniform(-50, 50, (3, 4))]),
}


@needs_torch
@pytest.mark.parametrize("label", sorted(KINKS))
def test_second_derivatives_at_kinks_ties_and_bounds_as_torch(label):
    fn, arrays = KINKS[label]
    case = Case([np.array(a, dtype=float) for a in arrays], ["grad"] * len(arrays), fn, label)
    with tl.detect_anomaly():  # finite everywhere, also for scores of 1e4
        ours = check_second_order(label, case, numeric=False, table=False)
    assert all(np.all(np.isfinite(g)) for g in ours)


# ----------------------------------------------------------------- tl.jacobian & co.
# Against torch.autograd.functional on the same functions written twice (tl, torch),
# inputs single or tuples, 0-d, broadcasting, one-element outputs of shape (1, 1).

R = np.random.default_rng(7)


def rosenbrock(p, lib=tl):
    x, y = p[0], p[1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


SCALAR_FUNCTIONS = {  # label -> (tl function, torch function, inputs)
    "0-d": (lambda x: (x * x * x).exp(), lambda x: (x * x * x).exp(), np.array(0.3)),
    "vector": (lambda x: (x.tanh() * x).sum(), lambda x: (x.tanh() * x).sum(), R.normal(size=3)),
    "rosenbrock": (rosenbrock, rosenbrock, np.array([-1.2, 1.0])),
    "broadcasting pair": (
        lambda a, b: ((a * b).sigmoid() + a.exp() / (1 + b * b)).sum(),
        lambda a, b: ((a * b).sigmoid() + a.exp() / (1 + b * b)).sum(),
        (R.normal(size=(2, 3)), R.normal(size=3))),
    "0-d and matrix": (
        lambda s, W: (tl.log_softmax(W * s, axis=1) * W).sum() * s,
        lambda s, W: (torch.log_softmax(W * s, 1) * W).sum() * s,
        (np.array(0.7), R.normal(size=(2, 3)))),
    "output of shape (1, 1)": (lambda x: (x ** 3).sum().reshape(1, 1),
                               lambda x: (x ** 3).sum().reshape(1, 1), R.normal(size=(2, 2))),
    "one input unused": (lambda a, b: (a * a).sum(), lambda a, b: (a * a).sum(),
                         (R.normal(size=2), R.normal(size=3))),
}

VECTOR_FUNCTIONS = {
    "elementwise": (lambda x: x.tanh() * x, lambda x: x.tanh() * x, R.normal(size=3)),
    "0-d to 0-d": (lambda x: x * x.exp(), lambda x: x * x.exp(), np.array(-0.4)),
    "vector to 0-d": (lambda x: (x * x).sum(), lambda x: (x * x).sum(), R.normal(size=4)),
    "softmax rows": (lambda x: tl.softmax(x, axis=1), lambda x: torch.softmax(x, 1),
                     R.normal(size=(2, 3))),
    "two in, two out, broadcasting": (
        lambda a, b: (a * b, (a @ b).exp()), lambda a, b: (a * b, (a @ b).exp()),
        (R.normal(size=(2, 3)), R.normal(size=3))),
    "one output independent of one input": (
        lambda a, b: (a * 2.0, a * b), lambda a, b: (a * 2.0, a * b),
        (R.normal(size=2), R.normal(size=2))),
    "empty input": (lambda x: (x * x).sum() + 1.0, lambda x: (x * x).sum() + 1.0, np.zeros(0)),
}


def tl_inputs(inputs):
    return tuple(tl.Tensor(a) for a in inputs) if isinstance(inputs, tuple) else tl.Tensor(inputs)


def torch_inputs(inputs):
    return tuple(torch.tensor(a) for a in inputs) if isinstance(inputs, tuple) else \
        torch.tensor(inputs)


def random_like(inputs, seed):
    rng = np.random.default_rng(seed)
    return tuple(rng.normal(size=np.shape(a)) for a in inputs) if isinstance(inputs, tuple) \
        else rng.normal(size=np.shape(inputs))


def assert_same(ours, theirs, create_graph=False, where="result"):
    """ours has torch's nesting (tuples where torch has tuples), shapes and values (to
    1e-12); arrays without create_graph, Tensors with it."""
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs), f"{where}: {type(ours)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, create_graph, f"{where}[{i}]")
        return
    assert isinstance(ours, tl.Tensor if create_graph else np.ndarray), f"{where}: {type(ours)}"
    values = plain(ours)
    assert values.shape == tuple(theirs.shape), f"{where}: {values.shape} vs {tuple(theirs.shape)}"
    np.testing.assert_allclose(values, plain(theirs), rtol=1e-12, atol=1e-14, err_msg=where)


@needs_torch
@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("label", sorted(SCALAR_FUNCTIONS))
def test_hessian_hvp_vhp_as_torch(label, create_graph):
    f, tf, inputs = SCALAR_FUNCTIONS[label]
    v = random_like(inputs, 1)
    tv = torch_inputs(v)
    expected = torch.autograd.functional.hessian(tf, torch_inputs(inputs))
    for strategy in ("reverse-mode", "forward-mode"):
        assert_same(tl.hessian(f, inputs, create_graph=create_graph,
                               outer_jacobian_strategy=strategy), expected, create_graph, label)
    for name in ("hvp", "vhp"):
        ours = getattr(tl, name)(f, tl_inputs(inputs), v, create_graph=create_graph)
        theirs = getattr(torch.autograd.functional, name)(tf, torch_inputs(inputs), tv)
        assert_same(ours, theirs, create_graph, f"{label} {name}")


@needs_torch
@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("label", sorted(VECTOR_FUNCTIONS))
def test_jacobian_jvp_vjp_as_torch(label, create_graph):
    f, tf, inputs = VECTOR_FUNCTIONS[label]
    outputs = tf(*torch_inputs(inputs)) if isinstance(inputs, tuple) else tf(torch_inputs(inputs))
    v_out = random_like(tuple(o.detach().numpy() for o in outputs) if isinstance(outputs, tuple)
                        else outputs.detach().numpy(), 2)
    v_in = random_like(inputs, 3)
    expected = torch.autograd.functional.jacobian(tf, torch_inputs(inputs))
    for strategy in ("reverse-mode", "forward-mode"):
        assert_same(tl.jacobian(f, inputs, create_graph=create_graph, strategy=strategy),
                    expected, create_graph, f"{label} {strategy}")
    for name, v in (("jvp", v_in), ("vjp", v_out)):
        ours = getattr(tl, name)(f, inputs, v, create_graph=create_graph)
        theirs = getattr(torch.autograd.functional, name)(tf, torch_inputs(inputs), torch_inputs(v))
        assert_same(ours, theirs, create_graph, f"{label} {name}")


@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3)])
def test_empty_inputs_and_outputs_give_empty_blocks(shape):
    # (torch's reverse mode fails here: torch.stack of no rows)
    x = np.zeros(shape)
    assert tl.hessian(lambda t: (t * t).sum(), x).shape == shape + shape
    assert tl.jacobian(lambda t: t * 2.0, x).shape == shape + shape
    assert tl.jacobian(lambda t: t.sum(axis=-1), x, strategy="forward-mode").shape == \
        shape[:-1] + shape
    out, jv = tl.jvp(lambda t: t.exp(), x, np.zeros(shape))
    assert out.shape == jv.shape == shape


@needs_torch
def test_create_graph_results_differentiate_again_also_through_v():
    values, direction = np.array([0.3, -0.7, 1.1]), np.array([1.0, 2.0, -0.5])
    f = lambda t: (t.tanh() * t.exp()).sum()  # noqa: E731
    x, v = leaf(values), leaf(direction)
    tx, tv = twin(values), twin(direction)
    weights = np.arange(9.0).reshape(3, 3)
    H = tl.hessian(f, x, create_graph=True)
    tH = torch.autograd.functional.hessian(f, tx, create_graph=True)
    third = tl.grad((H * weights).sum(), x)
    tthird, = torch.autograd.grad((tH * torch.tensor(weights)).sum(), tx)
    np.testing.assert_allclose(third, plain(tthird), rtol=1e-12)
    for name in ("hvp", "vhp", "jvp"):
        fn = (lambda t: t.tanh() * t.exp()) if name == "jvp" else f
        _, ours = getattr(tl, name)(fn, x, v, create_graph=True)
        _, theirs = getattr(torch.autograd.functional, name)(fn, tx, tv, create_graph=True)
        found = tl.grad((ours * ours).sum(), [x, v])
        expected = torch.autograd.grad((theirs * theirs).sum(), [tx, tv])
        for a, b in zip(found, expected):
            np.testing.assert_allclose(a, plain(b), rtol=1e-12, err_msg=name)
    assert x.grad is None and v.grad is None


def test_without_create_graph_results_are_arrays_and_the_inputs_are_untouched():
    x = leaf([1.0, 2.0])
    out, g = tl.vjp(lambda t: (t ** 3).sum(), x)
    assert type(out) is np.ndarray and type(g) is np.ndarray and g.tolist() == [3.0, 12.0]
    out, _ = tl.jvp(lambda t: t.reshape(2, 1), x, np.ones(2))  # a view of the input, copied
    out[0] = 7.0
    assert x.data.tolist() == [1.0, 2.0]
    H = tl.hessian(lambda t: (t ** 3).sum(), x)
    assert type(H) is np.ndarray and H.tolist() == [[6.0, 0.0], [0.0, 12.0]]
    assert x.grad is None and x.data.flags.writeable and x.op is None
    with tl.no_grad():  # as torch: the functions record what they need in any grad mode
        assert tl.hessian(lambda t: (t ** 3).sum(), x.data).tolist() == H.tolist()
    assert tl.jacobian(lambda t: t * t, 3.0) == 6.0  # a number is a 0-d input


def test_strict_mode_raises_where_torch_does():
    pair = (np.ones(2), np.ones(3))
    with pytest.raises(RuntimeError, match="jacobian: output 0 does not depend on input 1"):
        tl.jacobian(lambda a, b: a * 2.0, pair, strict=True)
    with pytest.raises(RuntimeError, match="jacobian: output 0 of func does not require grad"):
        tl.jacobian(lambda a: tl.Tensor(np.ones(2)), np.ones(2), strict=True)
    with pytest.raises(RuntimeError, match="hessian: the gradient of func with respect to input 0"):
        tl.hessian(lambda a: (a * 3.0).sum(), np.ones(2), strict=True)
    with pytest.raises(RuntimeError, match="hvp: func does not depend on input 1"):
        tl.hvp(lambda a, b: (a * a).sum(), pair, (np.ones(2), np.ones(3)), strict=True)
    with pytest.raises(RuntimeError, match="jvp: the outputs of func do not depend on input 1"):
        tl.jvp(lambda a, b: a * 2.0, pair, (np.ones(2), np.ones(3)), strict=True)
    with pytest.raises(RuntimeError, match="vjp: the outputs of func do not depend on input 1"):
        tl.vjp(lambda a, b: (a * 2.0).sum(), pair, strict=True)
    with pytest.raises(RuntimeError, match="strict=True with create_graph=True"):
        tl.jacobian(lambda a: a * 2.0, np.ones(2), strict=True, create_graph=True)
    assert tl.jacobian(lambda a, b: a * 2.0, pair)[1].tolist() == [[0.0] * 3] * 2  # not strict
    assert tl.hessian(lambda a: (a * 3.0).sum(), np.ones(2)).tolist() == [[0.0, 0.0]] * 2


@pytest.mark.parametrize("call,error,message", [
    (lambda: tl.jacobian(lambda t: t, [np.ones(2)]), TypeError, "jacobian: inputs must be .*got a list"),
    (lambda: tl.hessian(lambda t: t.sum(), np.arange(3)), TypeError,
     "hessian: the input has dtype int64"),
    (lambda: tl.hvp(lambda a, b: a.sum(), (np.ones(2), "x"), (np.ones(2), np.ones(2))), TypeError,
     "hvp: input 1 has dtype <U1"),
    (lambda: tl.jacobian(lambda t: t.data, np.ones(2)), TypeError,
     "jacobian: func must return a Tensor or a tuple of Tensors; the output is a ndarray"),
    (lambda: tl.jvp(lambda t: (t, 2.0), np.ones(2), np.ones(2)), TypeError, "jvp: .*output 1 is a float"),
    (lambda: tl.hessian(lambda t: t * t, np.ones(3)), RuntimeError,
     r"hessian: func must return a Tensor with a single element, got shape \(3,\)"),
    (lambda: tl.hvp(lambda t: (t.sum(), t.sum()), np.ones(3), np.ones(3)), RuntimeError,
     "hvp: func must return a single Tensor, got a tuple of 2"),
    (lambda: tl.hvp(lambda t: (t * t).sum(), np.ones(3), np.ones(4)), ValueError,
     r"hvp: v has shape \(4,\), the input it goes with has shape \(3,\)"),
    (lambda: tl.jvp(lambda t: t * t, np.ones(3)), RuntimeError,
     r"jvp: v can be left out only when the input is a single Tensor with one element; .*\(3,\)"),
    (lambda: tl.vjp(lambda t: t * t, np.ones(3)), ValueError, "vjp: v can be left out only"),
    (lambda: tl.vhp(lambda a, b: (a * b).sum(), (np.ones(2), np.ones(2)), np.ones(2)),
     ValueError, "vhp: v has 1 entries, one per input is needed: 2 input"),
    (lambda: tl.jacobian(lambda t: t, np.ones(2), strategy="forward"), ValueError,
     "jacobian: strategy must be one of"),
    (lambda: tl.hessian(lambda t: t.sum(), ()), ValueError, "hessian: inputs is an empty tuple"),
])
def test_bad_calls_raise_clear_errors_and_change_nothing(call, error, message):
    x = leaf([1.0, 2.0])
    with pytest.raises(error, match=message) as caught:
        call()
    assert x.grad is None and x.data.flags.writeable
    assert caught.value is not None


def test_a_failing_func_leaves_the_callers_tensor_as_it_was():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match="matmul"):
        tl.hessian(lambda t: (t @ np.ones((3, 3))).sum(), x)
    assert x.grad is None and x.data.flags.writeable  # the traceback keeps only copies
    x.data[0] = 5.0


# ----------------------------------------------------------------- uses

def rosenbrock_hessian(x, y):
    return np.array([[2 - 400 * y + 1200 * x * x, -400 * x], [-400 * x, 200.0]])


def test_newton_steps_on_rosenbrock_converge_quadratically():
    p = leaf([-1.2, 1.0])  # the classic start
    np.testing.assert_array_equal(tl.hessian(rosenbrock, p), [[1330.0, 480.0], [480.0, 200.0]])
    errors = []
    for _ in range(7):
        g = tl.grad(rosenbrock(p), p)
        H = tl.hessian(rosenbrock, p)
        np.testing.assert_allclose(H, rosenbrock_hessian(*p.data), rtol=1e-14)
        _, Hg = tl.hvp(rosenbrock, p, g)
        np.testing.assert_allclose(Hg, H @ g, rtol=1e-12, atol=1e-12)
        with tl.no_grad():
            p -= np.linalg.solve(H, g)
        errors.append(np.abs(p.data - 1.0).max())
    # pure Newton: two wild steps, then the error roughly squares each step
    assert errors[3] < 0.1 and errors[4] < 1e-4 and errors[5] < 1e-10 and errors[6] < 1e-15
    assert errors[5] < 10 * errors[4] ** 2
    assert p.grad is None


def test_one_newton_step_solves_a_quadratic():
    A = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    b = np.array([1.0, -2.0, 0.5])
    f = lambda x: 0.5 * (x @ (A @ x)) - (b * x).sum()  # noqa: E731
    x = np.zeros(3)
    np.testing.assert_allclose(tl.hessian(f, x), A, rtol=1e-15)
    step = np.linalg.solve(tl.hessian(f, x), tl.vjp(f, x)[1])
    np.testing.assert_allclose(x - step, np.linalg.solve(A, b), rtol=1e-14)


@needs_torch
def test_hessian_of_the_cs231n_toy_loss_in_b2_as_torch_and_by_hand():
    params = reference.init_toy_model()
    X, y = reference.init_toy_data()
    reg = 0.05

    def toy_loss(b2, lib=tl):
        W1, b1, W2 = (params[k] if lib is tl else torch.tensor(params[k]) for k in ("W1", "b1", "W2"))
        X_ = X if lib is tl else torch.tensor(X)
        hidden = lib.relu(X_ @ W1 + b1)
        scores = hidden @ W2 + b2
        if lib is tl:
            data_loss = tl.cross_entropy(scores, y)
        else:
            data_loss = torch.nn.functional.cross_entropy(scores, torch.tensor(y))
        return data_loss + reg * ((W1 * W1).sum() + (W2 * W2).sum())

    b2 = params["b2"]
    ours = tl.hessian(toy_loss, b2)
    theirs = torch.autograd.functional.hessian(lambda t: toy_loss(t, torch), torch.tensor(b2))
    np.testing.assert_allclose(ours, plain(theirs), rtol=1e-12, atol=1e-15)
    # by hand: the mean over rows of diag(p) - p p^T, p the softmax of the row's scores
    scores = np.maximum(X @ params["W1"] + params["b1"], 0) @ params["W2"] + b2
    prob = np.exp(scores - scores.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    by_hand = np.mean([np.diag(q) - np.outer(q, q) for q in prob], axis=0)
    np.testing.assert_allclose(ours, by_hand, rtol=1e-12, atol=1e-15)
    # and through the model itself: the gradient of its loss, differentiated again
    net = tl.models.TwoLayerNet(4, 10, 3)
    net.params = params
    b2_param = net.fc2.b
    g = tl.grad(net.loss_tensor(X, y, reg), b2_param, create_graph=True)
    rows = [tl.grad(g, b2_param, grad_outputs=np.eye(3)[k]) for k in range(3)]
    np.testing.assert_allclose(np.stack(rows), by_hand, rtol=1e-12, atol=1e-15)


def test_a_double_backward_graph_draws():
    W = leaf([[0.5, -1.0, 0.3], [0.2, 0.1, -0.4]], name="W")
    X = tl.Tensor(np.array([[1.0, 2.0], [-1.0, 0.5]]), name="X")
    loss = tl.cross_entropy(X @ W, np.array([0, 2]))
    g = tl.grad(loss, W, create_graph=True)
    penalty = (g * g).sum()  # a gradient penalty: its graph is the backward pass of loss
    recorded = {n.op.name for n in tl.backward_order(penalty) if n.op is not None}
    # the backward of the softmax cross-entropy ((softmax(s) - onehot(y)) / N: exp,
    # sum, div, sub, mul) and of X @ W
    assert {"exp", "mul", "div", "matmul"} <= recorded
    penalty.backward()
    d = viz.draw(penalty)
    assert isinstance(d.source, str) and "digraph" in d.source and "W" in d.source


def test_binary_cross_entropy_second_derivatives_are_the_exact_ones():
    p, t = np.array([0.3, 0.7, 0.9, 0.05]), np.array([0.2, 0.5, 0.6, 1.0])
    pt, tt = tl.Tensor(p, requires_grad=True), tl.Tensor(t, requires_grad=True)
    gp, gt = tl.grad(tl.binary_cross_entropy(pt, tt, reduction="sum"), [pt, tt], create_graph=True)
    hpp, hpt = tl.grad(gp.sum(), [pt, tt])
    htp, = tl.grad(gt.sum(), [pt])
    np.testing.assert_allclose(hpp, t / p ** 2 + (1 - t) / (1 - p) ** 2, rtol=1e-15)
    np.testing.assert_allclose(hpt, -1 / p - 1 / (1 - p), rtol=1e-15)
    np.testing.assert_allclose(htp, hpt, rtol=0)
