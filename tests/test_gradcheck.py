"""Numerical gradients (tinygrad_lite/gradcheck.py): gradcheck catches a wrong
backward and restores its inputs; cs231n's eval_numerical_gradient(_array) perturb in
place and put every entry back; rel_error is cs231n's."""
import numpy as np
import pytest

import tinygrad_lite as tl


def leaf(data, **kw):
    return tl.Tensor(np.asarray(data, dtype=np.float64), requires_grad=True, **kw)


def test_gradcheck_catches_a_wrong_backward():
    class BadCube(tl.Function):
        @staticmethod
        def forward(x):
            return x ** 3

        @staticmethod
        def backward(g, out, xs, needs):
            return (g * 2 * xs[0] ** 2,)  # should be 3 x^2

    x = leaf([0.5, -1.0, 2.0])
    with pytest.raises(tl.GradcheckError, match="mismatch"):
        tl.gradcheck(lambda t: BadCube.apply(t), [x])
    assert issubclass(tl.GradcheckError, RuntimeError)
    assert tl.gradcheck(lambda t: BadCube.apply(t), [x], raise_exception=False) is False
    np.testing.assert_array_equal(x.data, [0.5, -1.0, 2.0])  # inputs restored
    with pytest.raises(ValueError, match="no input requires grad"):
        tl.gradcheck(lambda t: t * 2, [tl.Tensor([1.0])])


def test_eval_numerical_gradient_perturbs_in_place_and_restores():
    W = np.random.randn(3, 2)
    X = np.random.randn(4, 3)
    W0 = W.copy()
    calls = []

    def loss(w):
        assert w is W          # called with x itself, as cs231n's lambda W: net.loss(X, y)[0]
        calls.append(1)
        return float(np.sum((X @ W) ** 2))  # reads W through the closure

    g = tl.eval_numerical_gradient(loss, W)
    np.testing.assert_array_equal(W, W0)
    assert len(calls) == 2 * W.size
    assert tl.rel_error(g, 2 * X.T @ (X @ W)) < 1e-8
    assert tl.numerical_gradient is tl.eval_numerical_gradient
    Wt = leaf(W0.copy())
    gt = tl.eval_numerical_gradient(lambda _: (tl.Tensor(X) @ Wt).sum().item(), Wt, h=1e-6)
    assert tl.rel_error(gt, np.tile(X.sum(axis=0)[:, None], (1, 2))) < 1e-8


def test_eval_numerical_gradient_array_and_rel_error():
    x = np.random.randn(3, 4)
    df = np.random.randn(3, 4)
    x0 = x.copy()
    num = tl.eval_numerical_gradient_array(lambda a: np.tanh(a), x, df)
    np.testing.assert_array_equal(x, x0)
    t = leaf(x)
    t.tanh().backward(df)
    assert tl.rel_error(num, t.grad) < 1e-8
    assert tl.rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert tl.rel_error(1.0, 3.0) == pytest.approx(0.5)
    assert tl.rel_error(np.zeros(2), np.array([0.0, 1e-9])) == pytest.approx(0.1)  # the 1e-8 floor
    with pytest.raises(ValueError, match="shapes"):
        tl.rel_error(np.zeros(2), np.zeros(3))


def test_a_function_that_raises_mid_difference_leaves_x_as_it_was():
    x0 = np.array([[0.5, -1.0], [2.0, 3.0]])

    def fails_above_one(v):  # raises for the first entry pushed past 1: 0.5 + h is fine
        if (np.asarray(v) > 3.0).any():
            raise FloatingPointError("deliberate")
        return float(np.sum(np.asarray(v) ** 2))

    for check in (lambda x: tl.eval_numerical_gradient(fails_above_one, x),
                  lambda x: tl.grad_check_sparse(fails_above_one, x, np.zeros_like(x), num_checks=50,
                                                 verbose=False),
                  lambda x: tl.eval_numerical_gradient_array(
                      lambda v: np.asarray(v) * fails_above_one(v), x, np.ones_like(x))):
        x = x0.copy()
        with pytest.raises(FloatingPointError, match="deliberate"):
            check(x)
        np.testing.assert_array_equal(x, x0)
    t = leaf(x0.copy())
    with pytest.raises(FloatingPointError, match="deliberate"):
        tl.gradcheck(lambda v: v * fails_above_one(v.data), [t])
    np.testing.assert_array_equal(t.data, x0)
