"""Tensor (tinygrad_lite/tensor.py) as PyTorch and NumPy users expect it: in-place
updates, reduction keywords, var/std, formatting, the dtype rules, NumPy interop
and the array-like surface, constructors and shape helpers."""
import numpy as np
import pytest

import tinygrad_lite as tl


def leaf(data, **kw):
    return tl.Tensor(np.asarray(data, dtype=np.float64), requires_grad=True, **kw)


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
    assert c.transpose(dim0=0, dim1=2).shape == (4, 3, 2)  # PyTorch's keywords
    np.testing.assert_array_equal(tl.transpose(m, dim0=1, dim1=0).data, m.data.T)
    with pytest.raises(np.exceptions.AxisError, match="transpose: axis 3"):
        c.transpose(0, 3)
    with pytest.raises(TypeError, match="dim0=, dim1="):
        c.transpose(0, dim1=2)
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


# ----------------------------------------------------------------- dtypes

def test_dtype_rules():
    f32 = tl.Tensor(np.ones(3, np.float32), requires_grad=True)
    for out in (f32 * 2.5, 2.5 * f32, f32 + 1, 1 - f32, f32 / 3, f32 ** 2, f32 ** 0.5,
                tl.where(np.array([True, False, True]), f32, 0.0), tl.maximum(f32, 0.5),
                f32.sigmoid(), f32.clip(0, 1), f32.mean(), f32.softmax()):
        assert out.dtype == np.float32, out
    (f32 * 2.5).sum().backward()
    assert f32.grad.dtype == np.float32
    assert tl.Tensor(1.5).dtype == np.float64
    assert tl.Tensor([1.5, 2.0]).dtype == np.float64
    labels = tl.Tensor(np.array([0, 2, 1], dtype=np.int32))
    assert labels.dtype == np.int32 and (labels + 1).dtype == np.int32
    assert tl.Tensor([1, 2]).dtype.kind == "i"
    with pytest.raises(TypeError, match="int"):
        tl.Tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError):
        labels.requires_grad_()
    # the gradient has the dtype of the data, also across a cast
    x = leaf([1.0, 2.0])
    y = x.astype(np.float32)
    assert y.dtype == np.float32 and y.op.name == "cast"
    (y * 2).sum().backward()
    assert x.grad.dtype == np.float64 and y.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    # a cast to an integer type records nothing
    i = x.astype(np.int64)
    assert i.dtype == np.int64 and not i.requires_grad



# ----------------------------------------------------------------- NumPy interop and the array-like surface

def test_ndarray_on_the_left_builds_a_graph():
    arr = np.arange(6.0).reshape(2, 3)
    t = leaf(np.ones((2, 3)))
    for out, name in ((arr - t, "sub"), (arr * t, "mul"), (arr + t, "add"), (arr / t, "div"),
                      (arr @ t.T, "matmul"), (np.float64(2.0) * t, "mul"), (2 - t, "sub")):
        assert isinstance(out, tl.Tensor) and out.requires_grad and out.op.name == name, name
    (arr - t).sum().backward()
    np.testing.assert_array_equal(t.grad, -np.ones((2, 3)))
    t.grad = None
    (arr @ t.T).sum().backward()
    np.testing.assert_array_equal(t.grad, np.tile(arr.sum(axis=0), (2, 1)))
    # NumPy functions that would turn t into a plain array (dropping the graph) refuse to
    for drop in (lambda: np.dot(arr.T, t), lambda: arr.T.dot(t), lambda: np.concatenate([t, arr]),
                 lambda: np.where(arr > 2, t, 0.0)):
        with pytest.raises(RuntimeError, match="drop its graph"):
            drop()
    for refuse in (lambda: np.exp(t), lambda: np.maximum(0, t)):  # ufuncs: Tensor opts out
        with pytest.raises(TypeError):
            refuse()


def test_array_like_surface():
    t = tl.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="W")
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.dtype == np.float64
    assert len(t) == 2 and t.T.shape == (3, 2) and t.T.op.name == "transpose"
    assert t.numpy() is t.data
    assert t.sum().item() == 15.0 and isinstance(t.sum().item(), float)
    assert float(t[1, 2]) == 5.0
    with pytest.raises(ValueError, match="one element"):
        t.item()
    with pytest.raises(TypeError):
        len(tl.Tensor(1.0))
    r = repr(t)
    assert r.startswith("Tensor(") and "requires_grad=True" in r and "name='W'" in r
    assert "op=mul" in repr(t * 2)
    assert "dtype=float32" in repr(tl.Tensor(np.ones(2, np.float32)))
    assert "dtype" not in repr(tl.Tensor([1.0]))
    assert len(repr(tl.Tensor(np.zeros(10_000)))) < 200  # summarised
    assert [float(row.sum()) for row in t] == [3.0, 12.0]
    np.testing.assert_array_equal(np.asarray(t.detach()), t.data)
    with pytest.raises(RuntimeError, match="drop its graph"):
        np.asarray(t)  # implicit conversion of a tensor in a graph: never silently


def test_argmax_and_comparisons_are_plain_arrays():
    t = leaf([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    for out in (t.argmax(axis=1), tl.argmax(t, axis=1), t > 1, t <= 2, t == t, t != 0.0, t < t * 2,
                t >= np.zeros(3)):
        assert type(out) is np.ndarray
    np.testing.assert_array_equal(t.argmax(axis=1), [1, 2])
    assert t.argmax() == 5 and t.argmin() == 4
    np.testing.assert_array_equal(t > 1, [[False, True, True], [False, False, True]])


def test_number_to_the_power_of_a_tensor():
    x = leaf([0.5, -1.0, 2.0])
    y = 2 ** x
    np.testing.assert_allclose(y.data, [2 ** 0.5, 0.5, 4.0])
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.log(2) * 2 ** x.data)
    assert (2.0 ** tl.Tensor(np.ones(2, np.float32))).dtype == np.float32
    # any base NumPy takes: a negative one has real powers at integer exponents, and a
    # gradient there that is nan (log of a negative number), as in PyTorch
    k = leaf([2.0, 3.0])
    y = (-2.0) ** k
    np.testing.assert_array_equal(y.data, [4.0, -8.0])
    with np.errstate(invalid="ignore"):  # NumPy's warning for log(-2)
        y.sum().backward()
    assert np.isnan(k.grad).all()



# ----------------------------------------------------------------- constructors and shape helpers

def test_zeros_ones_randn_and_astype():
    assert tl.zeros(2, 3).shape == (2, 3) and tl.zeros((2, 3)).data.sum() == 0
    assert tl.ones(4, dtype=np.float32).dtype == np.float32 and tl.ones(4).data.sum() == 4
    assert tl.zeros(2, requires_grad=True).requires_grad
    np.testing.assert_array_equal(tl.randn(3, 2, seed=7).data, tl.randn(3, 2, seed=7).data)
    assert not np.array_equal(tl.randn(3, 2, seed=7).data, tl.randn(3, 2, seed=8).data)
    np.random.seed(1)
    a = tl.randn(3, 2)
    np.random.seed(1)
    np.testing.assert_array_equal(a.data, np.random.randn(3, 2))  # cs231n's np.random.seed
    assert tl.randn(2, dtype=np.float32).dtype == np.float32
    x = leaf([1.5, -2.5])
    assert x.astype(np.float32).dtype == np.float32 and x.astype("float16").dtype == np.float16


def test_shape_helpers_and_top_level_functions():
    x = leaf(np.arange(6.0).reshape(1, 2, 3))
    assert x.squeeze().shape == (2, 3) and x.squeeze(0).shape == (2, 3)
    assert tl.squeeze(x, axis=0).shape == (2, 3)
    assert x.expand_dims(-1).shape == (1, 2, 3, 1) and tl.expand_dims(x, 0).shape == (1, 1, 2, 3)
    assert x.unsqueeze(1).shape == (1, 1, 2, 3) and x.flatten().shape == (6,)
    (x.squeeze() * np.arange(6.0).reshape(2, 3)).sum().backward()
    np.testing.assert_array_equal(x.grad, np.arange(6.0).reshape(1, 2, 3))
    a, b = leaf([1.0, 5.0]), leaf([3.0, 2.0])
    out = tl.where(a.data > 2, a, b)
    np.testing.assert_array_equal(out.data, [3.0, 5.0])
    np.testing.assert_array_equal(tl.maximum(a, b).data, [3.0, 5.0])
    np.testing.assert_array_equal(tl.maximum(0.0, a - 2).data, [0.0, 3.0])  # cs231n's np.maximum(0, z)
    assert tl.concatenate([a, b]).shape == (4,) and tl.stack([a, b], axis=1).shape == (2, 2)
    tl.stack([a, b]).sum().backward()
    np.testing.assert_array_equal(a.grad, [1.0, 1.0])
    assert tl.tensor([1.0]).dtype == np.float64
    for f in (tl.exp, tl.log, tl.sqrt, tl.relu, tl.sigmoid, tl.tanh):
        assert f(a).op.name == f.__name__


def test_tensor_names_reads_a_names_mapping_as_every_tool_does():
    x, y = leaf([1.0]), leaf([2.0])
    h = x * y
    names = {"_tmp": x, "x": x, "h": h, "also_h": h, "_y": y, "lr": 0.1, "X": np.ones(2)}
    # the first name wins; a name starting with _ only when the tensor has no other
    assert tl.tensor_names(names, "draw") == {id(x): "x", id(h): "h", id(y): "_y"}
    assert tl.tensor_names(None, "draw") == {} and tl.tensor_names({}, "draw") == {}
    for bad in ([("x", x)], [], "x"):
        with pytest.raises(TypeError, match=r"^draw: names= must be a mapping name -> Tensor"):
            tl.tensor_names(bad, "draw")

