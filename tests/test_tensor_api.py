"""PyTorch/NumPy idioms users bring: in-place updates, reduction keywords, var/std,
formatting, and a failed backward that must leave every .grad as it was."""
import numpy as np
import pytest

import tinygrad_lite as tl


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, 3)), np.array([0, 1, 2, 1, 0, 2])


def test_manual_sgd_in_place_under_no_grad_updates_the_leaf():
    X, y = _data()
    W = tl.Tensor(np.zeros((3, 3)), requires_grad=True)
    data = W.data
    losses = []
    for _ in range(5):
        loss = tl.cross_entropy(X @ W, y)
        loss.backward()
        losses.append(loss.item())
        with tl.no_grad():
            W -= 0.5 * W.grad
        W.grad = None
    assert W.op is None and W.requires_grad and W.data is data  # the same leaf, updated in place
    assert losses[-1] < losses[0]


def test_in_place_on_a_leaf_that_requires_grad_while_recording_is_an_error():
    W = tl.Tensor(np.ones(3), requires_grad=True, name="W")
    before = W.data.copy()
    with pytest.raises(RuntimeError, match=r"sub: a leaf tensor .*'W'.*no_grad"):
        W -= 1.0
    np.testing.assert_array_equal(W.data, before)


def test_in_place_on_a_graph_node_builds_a_new_node():
    x = tl.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (x * x).sum()
    first = loss
    loss += (3 * x).sum()  # the common `loss += reg_term`
    assert loss is not first and loss.op.name == "add"
    loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data + 3)


def test_in_place_on_a_plain_tensor_and_its_errors():
    c = tl.Tensor(np.ones(3))
    alias = c
    c *= 2
    assert alias is c
    np.testing.assert_array_equal(alias.data, [2.0, 2.0, 2.0])
    labels = tl.Tensor(np.arange(3))
    with pytest.raises(TypeError, match=r"add \(in place\).*int64"):
        labels += 0.5
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        c += np.ones(4)


def test_numpy_reductions_and_torch_keywords():
    x = tl.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert isinstance(np.sum(x * x), tl.Tensor)
    assert np.mean(x).item() == 2.5 and np.max(x).item() == 5.0
    s = x.sum(dim=1, keepdim=True)
    assert s.shape == (2, 1)
    s.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))
    assert x.mean(axis=0, dtype=np.float32).dtype == np.float32
    with pytest.raises(TypeError, match="sum: out= is not supported"):
        x.sum(out=np.empty(()))
    with pytest.raises(TypeError, match="give axis or dim"):
        x.sum(0, dim=1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        x.max(bogus=1)


def test_var_std_match_numpy_and_torch_gradients():
    a = np.random.default_rng(1).standard_normal((4, 5))
    x = tl.Tensor(a, requires_grad=True)
    np.testing.assert_allclose(x.var(axis=1).data, a.var(axis=1), rtol=1e-12)
    np.testing.assert_allclose(x.std(ddof=1).data, a.std(ddof=1), rtol=1e-12)
    assert tl.gradcheck(lambda t: t.var(axis=0, keepdims=True), [x])
    assert tl.gradcheck(lambda t: t.std(), [x])


def test_softmax_of_an_empty_class_axis_is_empty():
    e = tl.Tensor(np.zeros((2, 0)), requires_grad=True)
    assert e.softmax().shape == (2, 0)


def test_formatting_and_small_helpers():
    t = tl.Tensor(np.array(1.23456))
    assert f"{t:.2f}" == "1.23" and round(t, 1) == 1.2
    assert tl.Tensor([[1.0, 2.0]]).tolist() == [[1.0, 2.0]]
    assert tl.zeros_like(np.ones((2, 3))).shape == (2, 3)
    assert tl.ones_like(tl.Tensor(np.ones(2, np.float32))).dtype == np.float32
    assert tl.tensor([1, 2], dtype=np.float32).dtype == np.float32
    x = tl.Tensor(np.ones((3, 2)))
    assert x.dot(np.ones(2)).shape == (3,) and x.matmul(np.ones((2, 4))).shape == (3, 4)
    assert x.pow(3).shape == (3, 2) and np.all(x.square().data == 1)
    assert x.argmax(axis=1, keepdims=True).shape == (3, 1)


def test_a_failed_backward_leaves_every_grad_unchanged():
    class BrokenBackward(tl.Function):
        name = "test_broken_backward"

        @staticmethod
        def forward(x):
            return x * 1

        @staticmethod
        def backward(g, out, xs, needs):
            return (np.ones(5),)  # wrong shape: the engine must refuse it

    x = tl.Tensor(np.ones(2), requires_grad=True)
    h = x * 3
    m = BrokenBackward.apply(h)
    loss = (m * 2).sum()
    with pytest.raises(RuntimeError, match="test_broken_backward"):
        loss.backward()
    assert loss.grad is None and m.grad is None and h.grad is None and x.grad is None


def test_transpose_with_two_ints_swaps_them_as_torch_and_a_tuple_permutes_as_numpy():
    m = tl.Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(m.transpose(0, 1).data, m.data.T)  # PyTorch's meaning
    np.testing.assert_array_equal(m.transpose(1, 0).data, m.data.T)
    np.testing.assert_array_equal(m.transpose((0, 1)).data, m.data)  # a NumPy permutation
    c = tl.Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert c.transpose(0, 2).shape == (4, 3, 2)
    assert c.transpose(-1, 0).shape == (4, 3, 2)
    assert c.transpose(1, 2, 0).shape == (3, 4, 2)
    assert c.transpose((1, 2, 0)).shape == (3, 4, 2)
    assert c.permute(2, 0, 1).shape == (4, 2, 3) and c.permute((2, 0, 1)).shape == (4, 2, 3)
    assert c.swapaxes(0, 1).shape == (3, 2, 4) and tl.swapaxes(c, 0, 1).shape == (3, 2, 4)
    assert c.T.shape == (4, 3, 2)
    with pytest.raises(np.exceptions.AxisError, match="transpose: axis 3"):
        c.transpose(0, 3)
    x = tl.Tensor(np.random.default_rng(0).standard_normal((2, 3, 4)), requires_grad=True)
    w = np.random.default_rng(1).standard_normal((4, 3, 2))
    (x.transpose(0, 2) * w).sum().backward()
    np.testing.assert_array_equal(x.grad, w.transpose(2, 1, 0))


def test_dot_follows_numpy_for_0_1_2_d_and_refuses_n_d():
    a = tl.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    assert a.dot(np.array([1.0, 1.0, 1.0])).item() == 6.0
    m = tl.Tensor(np.eye(3))
    np.testing.assert_array_equal(m.dot(np.ones((3, 2))).data, np.ones((3, 2)))
    np.testing.assert_array_equal(a.dot(2.0).data, [2.0, 4.0, 6.0])
    with pytest.raises(ValueError, match="dot.*use @"):
        tl.Tensor(np.ones((2, 2, 2))).dot(np.ones((2, 2)))


def test_names_are_strings_and_assigned_grads_are_checked():
    with pytest.raises(TypeError, match="name must be a str or None.*int 42"):
        tl.Tensor(np.ones(2), name=42)
    t = tl.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match="name"):
        t.name = 3.5
    t.name = "t"
    assert t.name == "t"
    with pytest.raises(ValueError, match=r"grad: assigned grad has shape \(3,\)"):
        t.grad = np.ones(3)
    with pytest.raises(TypeError, match="dtype int64"):
        t.grad = np.ones(2, dtype=np.int64)
    with pytest.raises(TypeError, match="list"):
        t.grad = [1.0, 2.0]
    t.grad = np.ones(2)
    (t * 2).sum().backward()
    np.testing.assert_array_equal(t.grad, [3.0, 3.0])
    t.grad = None
    assert t.grad is None
