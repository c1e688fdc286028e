"""``tl.Function``, the base class of every op: a user's op registers in ``OPS``,
applies, gradchecks and replays in PyTorch; the backward's contract (a tuple of
gradients in the inputs' shapes, None where ``needs`` says so) and ``fresh_grads``.
The op table itself is tested from its specs in tests/test_ops.py."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite.ops import OPS


def leaf(data, **kw):
    return tl.Tensor(np.asarray(data, dtype=np.float64), requires_grad=True, **kw)


# ----------------------------------------------------------------- a user's op

def test_user_defined_function_applies_and_gradchecks():
    class Square(tl.Function):
        symbol = "x²"
        rule = "d(x^2)/dx = 2x"

        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def backward(g, out, xs, needs):
            return (g * 2 * xs[0],)

        @staticmethod
        def torch(x):
            return x * x

    x = leaf(np.arange(3.0))
    y = Square.apply(x)
    assert OPS["square"] is Square and y.op is Square and y.op.label() == "x²"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data)
    assert tl.gradcheck(lambda t: Square.apply(t), [leaf([0.5, -1.5, 2.0])]) is True
    assert tl.gradcheck(lambda a, b: Square.apply(a * b).sum(), [leaf([0.3, 2.0]), leaf([1.5, -1.0])])
    with pytest.raises(ValueError, match="taken by the built-in"):
        class Exp(tl.Function):  # noqa: F841  (a user may not shadow a built-in op)
            pass
    pytest.importorskip("torch")
    from tinygrad_lite.torch_replay import torch_gradients
    z = Square.apply(leaf([1.0, -2.0]) * 3)
    np.testing.assert_allclose(torch_gradients(z, [z.parents[0].parents[0]], np.ones(2))[0], [18.0, -36.0])


def test_a_user_backward_with_a_wrong_return_is_a_clear_error():
    class NoTuple(tl.Function):
        @staticmethod
        def forward(x):
            return x * 2

        @staticmethod
        def backward(g, out, xs, needs):
            return g * 2  # a bare array, not a tuple

    class WrongShape(tl.Function):
        @staticmethod
        def forward(x):
            return x.sum()

        @staticmethod
        def backward(g, out, xs, needs):
            return (np.ones(7),)

    with pytest.raises(RuntimeError, match="notuple backward must return a tuple"):
        NoTuple.apply(leaf([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    with pytest.raises(RuntimeError, match=r"wrongshape backward.*\(7,\).*\(2, 3\)"):
        WrongShape.apply(leaf(np.ones((2, 3)))).backward()



# ----------------------------------------------------------------- needs and fresh_grads

@pytest.mark.parametrize("name,args", [("mul", {}), ("div", {}), ("maximum", {}), ("matmul", {}),
                                       ("where", {"condition": np.array([True, False, True])})])
def test_builtin_backward_skips_inputs_that_need_no_grad(name, args):
    op = OPS[name]
    a, b = np.array([[1.0, 2.0, 3.0]] * 3), np.array([[0.5, -1.0, 2.0]] * 3)
    out = op.forward(tl.ops.NP, a, b, **args)
    g = np.ones_like(out)
    for needs in ([False, True], [True, False]):
        grads = op.backward(tl.ops.NP, g, out, [a, b], needs, **args)
        assert [x is None for x in grads] == [not n for n in needs], (name, needs)
    X = tl.Tensor(a)
    W = leaf(b)
    y = op.apply(X, W, **args)
    assert tl.input_grads(y, g)[0] is None and tl.input_grads(y, g)[1].shape == b.shape


def test_subclass_of_a_built_in_op_does_not_inherit_fresh_grads():
    class EchoMul(tl.ops.Mul):
        name = "echo_mul_test"

        @staticmethod
        def backward(g, out, xs, needs):
            return g * xs[1], xs[0]  # hands back an input array: must never be written into

    assert tl.ops.Mul.fresh_grads and not EchoMul.fresh_grads
    u, v = leaf(np.array([2.0, 4.0])), leaf(np.array([1.0, 1.0]))
    (v * 10.0 + EchoMul.apply(u, v)).sum().backward()
    np.testing.assert_array_equal(u.data, [2.0, 4.0])
    np.testing.assert_array_equal(v.grad, [12.0, 14.0])


def test_an_op_returning_one_new_array_for_three_inputs():
    class Triple(tl.Function):  # a * b * c with one gradient array for all three inputs
        name = "triple_share_test"
        fresh_grads = True

        @staticmethod
        def forward(a, b, c):
            return a + b + c

        @staticmethod
        def backward(g, out, xs, needs):
            r = g * 1.0  # new
            return r, r, r

    a, b = leaf(np.array([1.0, 2.0])), leaf(np.array([3.0, 4.0]))
    (Triple.apply(a, a, a) * 2.0 + a).sum().backward()
    np.testing.assert_array_equal(a.grad, [7.0, 7.0])
    a.grad = None
    (Triple.apply(a, b, b) * 2.0 + b * 5.0 + a).sum().backward()
    np.testing.assert_array_equal(a.grad, [3.0, 3.0])
    np.testing.assert_array_equal(b.grad, [9.0, 9.0])
