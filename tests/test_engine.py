"""Engine behaviours: accumulation, aliasing, grad modes, graph freeing, anomaly mode,
dtype rules, the array-like surface, user-defined ops and the cs231n helpers."""
import gc
import sys
import warnings
import weakref

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite.ops import OPS


def leaf(data, **kw):
    return tl.Tensor(np.asarray(data, dtype=np.float64), requires_grad=True, **kw)


# ----------------------------------------------------------------- accumulation

def test_a_plus_a_and_x_times_x_get_both_contributions():
    a = leaf(3.0)
    (a + a).backward()
    assert a.grad == 2.0
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])
    y = leaf([[1.0, 2.0]])
    (y @ y.T + y.sum()).backward()  # y used three times, through different ops
    np.testing.assert_array_equal(y.grad, 2 * y.data + 1)


def test_backward_twice_accumulates_as_pytorch():
    x = leaf([1.0, 2.0])
    w = leaf([3.0, 4.0])
    loss = (x * w).sum()
    loss.backward()
    loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * w.data)
    np.testing.assert_array_equal(w.grad, 2 * x.data)
    assert loss.grad == 2.0
    x.grad = None  # settable, as optimizers' zero_grad does
    w.zero_grad()
    (x * w).sum().backward()
    np.testing.assert_array_equal(x.grad, w.data)


def test_every_tensor_in_the_graph_holds_its_grad():
    x, y, z = leaf(-2.0), leaf(5.0), leaf(-4.0)
    q = x + y
    f = q * z
    f.backward()
    assert f.grad == 1.0 and q.grad == -4.0
    order = tl.backward_order(f)
    assert order[0] is f and set(map(id, order)) == {id(t) for t in (f, q, x, y, z)}
    for t in order:
        assert t.grad is not None and t.grad.shape == t.shape and t.grad.dtype == t.dtype


def _graph_tensors(root):
    seen, stack = {}, [root]
    while stack:
        t = stack.pop()
        if id(t) not in seen:
            seen[id(t)] = t
            stack.extend(t.parents)
    return list(seen.values())


def test_leaves_own_their_gradients_and_intermediate_gradients_are_read_only():
    x = leaf(np.arange(6.0).reshape(2, 3))
    b = leaf(np.ones(3))
    h = x + b                     # add passes g straight through to both inputs
    r = h.reshape(3, 2).T         # views of g
    s = r.sum(axis=0)             # broadcast_to of g
    w = leaf(np.full((64, 64), 0.5))
    big = (w * w).sum()           # a big sum: its gradient is a read-only broadcast view
    loss = (s + s).sum() + h[0].sum() + big + (x * x).sum()
    for _ in range(2):            # and again, accumulating
        loss.backward()
    ts = [t for t in _graph_tensors(loss) if t.grad is not None]
    assert len(ts) >= 9
    leaves = [t for t in ts if t.op is None]
    assert len(leaves) == 3
    for a in leaves:              # a leaf's gradient is its own, writable array
        assert a.grad.flags.writeable
        for c in ts:
            assert c is a or not np.shares_memory(a.grad, c.grad), (a, c)
    for t in ts:                  # an intermediate's gradient cannot be written into
        if t.op is not None:
            assert not t.grad.flags.writeable
            with pytest.raises(ValueError, match="read-only"):
                t.grad[...] = 0
    np.testing.assert_array_equal(w.grad, 2 * 2 * w.data)
    np.testing.assert_array_equal(x.grad, 2 * (2 * x.data + [[3, 3, 3], [2, 2, 2]]))
    before = {id(t): t.grad.copy() for t in ts}
    x.grad += 100.0               # mutate one: every other gradient stays as it was
    for t in ts:
        if t is not x:
            np.testing.assert_array_equal(t.grad, before[id(t)])
    # nor with the gradient the user passed in
    seed = np.ones((2, 3))
    y = leaf(np.zeros((2, 3)))
    y2 = y + 0.0
    y2.backward(seed)
    seed[:] = 7.0
    assert y.grad.sum() == 6.0 and y2.grad.sum() == 6.0


def test_inputs_without_requires_grad_get_no_grad_and_no_work():
    seen = []

    class Spy(tl.Function):
        name = "spy_mul"

        @staticmethod
        def forward(a, b):
            return a * b

        @staticmethod
        def backward(g, out, xs, needs):
            seen.append(tuple(needs))
            return (g * xs[1] if needs[0] else None), (g * xs[0] if needs[1] else None)

    X = tl.Tensor(np.ones((4, 3)))            # data: no grad
    W = leaf(np.full((3, 2), 0.5))
    c = tl.Tensor(np.ones(2)) * 3.0           # constants only: no graph at all
    assert c.op is None and not c.requires_grad and c.parents == ()
    out = Spy.apply(X @ W, c).sum()
    out.backward()
    assert seen == [(True, False)]            # only the wanted input was asked for
    assert X.grad is None and c.grad is None
    assert all(t.requires_grad for t in tl.backward_order(out))
    assert all(t is not X for t in tl.backward_order(out))


def test_no_grad_enable_grad_and_as_decorators():
    x = leaf([1.0, 2.0])
    with tl.no_grad():
        y = x * 2
        assert not tl.is_grad_enabled()
        with tl.enable_grad():
            z = x * 2
        w = x * 3
    assert tl.is_grad_enabled()
    assert not y.requires_grad and y.op is None and y.parents == ()
    assert z.requires_grad and z.op.name == "mul"
    assert not w.requires_grad

    @tl.no_grad()
    def predict(t):
        return t.exp()

    assert not predict(x).requires_grad and tl.is_grad_enabled()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    # the mode is restored when the block raises
    with pytest.raises(ZeroDivisionError):
        with tl.no_grad():
            1 / 0
    assert tl.is_grad_enabled()


def test_detach_and_requires_grad_propagation():
    x = leaf([1.0, 2.0], name="x")
    c = tl.Tensor([3.0, 4.0])
    assert not (c + c).requires_grad
    y = x * c
    assert y.requires_grad and y.op.name == "mul" and y.parents[0] is x and y.parents[1] is c
    d = y.detach()
    assert d.op is None and not d.requires_grad and d.parents == ()
    assert np.shares_memory(d.data, y.data)      # same data, no graph
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad, d.data)
    c.requires_grad_()
    assert (c * 2).requires_grad
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


def test_tl_grad_leaves_grad_untouched():
    x = leaf([1.0, 2.0, 3.0])
    y = (x * x).sum()
    g = tl.grad(y, x)
    np.testing.assert_array_equal(g, 2 * x.data)
    assert x.grad is None and y.grad is None
    y.backward()
    kept = x.grad.copy()
    g1, = tl.grad(y * 3, [x])
    np.testing.assert_array_equal(g1, 6 * x.data)
    np.testing.assert_array_equal(x.grad, kept)
    g1 += 1  # the returned array is the caller's own
    np.testing.assert_array_equal(tl.grad(y, x), 2 * x.data)
    unused = leaf(1.0)
    with pytest.raises(RuntimeError, match="not used"):
        tl.grad(y, [x, unused])
    assert tl.grad(y, [x, unused], allow_unused=True)[1] is None
    g1, g2 = tl.grad(y, [x, x])  # the same input twice, as torch.autograd.grad allows
    np.testing.assert_array_equal(g1, 2 * x.data)
    np.testing.assert_array_equal(g2, 2 * x.data)
    assert not np.shares_memory(g1, g2)
    h = x * 3  # an intermediate as the input
    np.testing.assert_array_equal(tl.grad((h * h).sum(), h), 2 * h.data)


def test_input_grads_is_pure_and_fan_out_sums():
    x = leaf([1.0, 2.0])
    a, b = x * 2, x.exp()
    out = (a + b).sum()
    out.backward()
    g = np.ones(2)
    before = x.grad.copy()
    branch_a = tl.input_grads(a, g)[0]
    branch_b = tl.input_grads(b, g)[0]
    np.testing.assert_allclose(branch_a + branch_b, x.grad)
    np.testing.assert_array_equal(x.grad, before)


def test_ten_thousand_op_chain_has_no_recursion_error():
    x = leaf(1.0)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # nothing in backward may recurse
    try:
        y.backward()
        order = tl.backward_order(y)
    finally:
        sys.setrecursionlimit(limit)
    assert len(order) == 10_001
    np.testing.assert_allclose(x.grad, 1.0001 ** 10_000)


def test_graph_has_no_reference_cycles():
    gc.collect()
    gc.disable()
    try:
        W = leaf(np.random.randn(4, 3))
        X = tl.Tensor(np.random.randn(5, 4))
        y = np.array([0, 1, 2, 2, 1])
        h = (X @ W).relu()
        loss = tl.cross_entropy(h, y) + 0.5 * (W * W).sum()
        loss.backward()
        refs = [weakref.ref(t) for t in _graph_tensors(loss) if t is not W and t is not X]
        assert len(refs) > 5
        del h, loss
        dead = [r() is None for r in refs]
        assert all(dead), f"{dead.count(False)} graph tensors outlived the loss without gc"
        assert W.grad is not None  # the leaves keep their gradients
    finally:
        gc.enable()


def test_memory_stays_flat_over_many_steps():
    rng = np.random.default_rng(0)
    X = tl.Tensor(rng.standard_normal((32, 10)))
    y = rng.integers(0, 3, 32)
    W1, W2 = leaf(rng.standard_normal((10, 16)) * 0.1), leaf(rng.standard_normal((16, 3)) * 0.1)

    def step():
        loss = tl.cross_entropy((X @ W1).relu() @ W2, y) + 1e-3 * ((W1 * W1).sum() + (W2 * W2).sum())
        loss.backward()
        for p in (W1, W2):
            p.data -= 0.1 * p.grad
            p.grad = None

    # Python's own block count (tracemalloc's totals drift with its bookkeeping). Caches,
    # free lists and allocator pools fill up during the warm-up (a bounded ~1 block per
    # step that stops after ~2000 steps here); after it, a graph that leaked even one
    # object per step would add >= 1000 blocks over the next 1000 steps.
    gc.collect()
    gc.disable()
    try:
        for _ in range(2000):
            step()
        base = sys.getallocatedblocks()
        for _ in range(1000):
            step()
        grown = sys.getallocatedblocks() - base
        assert gc.collect() == 0  # and nothing was left for the cycle collector
    finally:
        gc.enable()
    assert grown < 300, f"{grown} memory blocks more after 1000 more steps"


# ----------------------------------------------------------------- anomaly mode

def test_detect_anomaly_names_the_op_forward_and_backward():
    x = leaf([-1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(FloatingPointError, match=r"log.*forward"):
            with tl.detect_anomaly():
                x.log()
        z = leaf([0.0, 4.0])
        with pytest.raises(FloatingPointError, match=r"sqrt.*backward"):
            with tl.detect_anomaly():
                z.sqrt().sum().backward()   # forward fine (0), backward 1/(2*0) = inf
    with pytest.warns(RuntimeWarning):   # outside: NumPy's warning and a nan, no error
        out = x.log()
    assert np.isnan(out.data[0])
    assert not tl.autograd.state.anomaly


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


def test_composites_tag_their_nodes():
    x = leaf(np.random.randn(3, 4))
    loss = tl.cross_entropy(x, np.array([0, 1, 3]))
    inner = [t for t in tl.backward_order(loss) if t.op is not None]
    assert all(t.groups and t.groups[0].name == "cross_entropy" for t in inner)
    outer = tl.composite("outer")(lambda t: tl.var(t))
    nested = [t for t in tl.backward_order(outer(x)) if t.op is not None]
    assert any(len(t.groups) == 2 and [g.name for g in t.groups] == ["outer", "var"] for t in nested)
    s1, s2 = x.softmax(), x.softmax()
    assert s1.groups[0] is not s2.groups[0] and s1.groups[0].name == "softmax"
    assert (x * 2).groups == ()
    with tl.group("block", kind="module") as g:
        y = x * 2
    assert y.groups == (g,) and g.kind == "module"


# ----------------------------------------------------------------- user-defined ops, gradcheck

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


# ----------------------------------------------------------------- cs231n helpers

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


def test_in_place_accumulation_never_writes_into_a_shared_array():
    # x * x of two tensors sharing one array: Mul returns one new array for both inputs;
    # each input's later gradient must not land in the other's.
    a = leaf(np.array([1.0, 2.0, 3.0]))
    b = tl.Tensor(a.data, requires_grad=True)
    ((a * b) + a * 3.0).sum().backward()
    np.testing.assert_array_equal(a.grad, b.data + 3.0)
    np.testing.assert_array_equal(b.grad, a.data)
    # an add passes g itself to both inputs: adding into one must not change the other
    x, y = leaf(np.ones(3)), leaf(np.ones(3))
    h = x + y
    (h * 2.0 + x * 5.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [7.0, 7.0, 7.0])
    np.testing.assert_array_equal(y.grad, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(h.grad, [2.0, 2.0, 2.0])
    # a user-defined op that returns its input array as a gradient: never written into
    class Echo(tl.Function):
        name = "echo_grad_test"

        @staticmethod
        def forward(u, v):
            return u * v

        @staticmethod
        def backward(g, out, xs, needs):
            return g * xs[1], xs[0]  # the second is wrong on purpose, but must stay untouched

    for echo_first in (True, False):  # either gradient may reach v first
        u, v = leaf(np.array([2.0, 4.0])), leaf(np.array([1.0, 1.0]))
        keep = u.data.copy()
        total = Echo.apply(u, v) + v * 10.0 if echo_first else v * 10.0 + Echo.apply(u, v)
        total.sum().backward()
        np.testing.assert_array_equal(u.data, keep)
        assert u.data.flags.writeable  # nor made read-only as someone's .grad
        np.testing.assert_array_equal(v.grad, keep + 10.0)
        h = Echo.apply(u, v * 1.0)  # the input array as an intermediate's gradient
        (h * 2.0).sum().backward()
        assert u.data.flags.writeable


def test_x_times_x_next_to_a_passed_through_gradient():
    # Mul returns one new array for both wires of x * x; it must not be added into
    # before both shares are counted (found by review: x + x * x gave 2 + 4x).
    x = leaf(np.array([3.0, 1.0]))
    (x + x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 1 + 2 * x.data)
    w = leaf(np.random.default_rng(0).standard_normal((64, 64)))
    ((w * w).sum() + w.sum()).backward()  # a big sum passes a broadcast view
    np.testing.assert_array_equal(w.grad, 2 * w.data + 1)
    a = leaf(np.array([3.0]))
    b = tl.Tensor(a.data, requires_grad=True)  # another tensor, the same array
    (a + a * b).sum().backward()
    np.testing.assert_array_equal(a.grad, [4.0])
    np.testing.assert_array_equal(b.grad, [3.0])
    y = leaf(np.array([2.0, -1.0]))
    assert tl.grad((y + y * y).sum(), y).tolist() == [5.0, -1.0]


def test_leaf_gradients_accumulate_in_place_and_stay_arrays():
    z = leaf(np.array(2.0))
    (z * 3.0).backward()
    first = z.grad
    (z * 3.0).backward()
    assert type(z.grad) is np.ndarray and z.grad.flags.writeable and z.grad is first
    assert z.grad == 6.0


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


def test_cross_entropy_takes_big_endian_labels():
    s = leaf(np.zeros((2, 3)))
    labels = np.array([0, 2], dtype=">i8")
    assert tl.cross_entropy(s, labels).item() == pytest.approx(np.log(3))
    with pytest.raises(IndexError, match="label -1"):
        tl.cross_entropy(s, np.array([0, -1], dtype=">i4"))


def test_grad_returns_copies_a_backward_cannot_change():
    class ReluInPlace(tl.ops.Relu):  # cs231n style backward: dx = dout; dx[x <= 0] = 0
        name = "relu_in_place_test"

        @staticmethod
        def backward(g, out, xs, needs):
            dx = g
            dx[xs[0] <= 0] = 0
            return (dx,)

    x = leaf(np.array([-1.0, 2.0, -3.0, 4.0]))
    y = x * 1.0
    r = ReluInPlace.apply(y)
    dr, dy = tl.grad((r * np.array([1.0, 2.0, 3.0, 4.0])).sum(), [r, y])
    assert dr.tolist() == [1.0, 2.0, 3.0, 4.0]  # not what the backward then did to it
    assert dy.tolist() == [0.0, 2.0, 0.0, 4.0]
    # backward() too: the op writes into a copy of its own, the stored .grad is intact
    z = x * 1.0
    out = ReluInPlace.apply(z * 2.0)
    (out * 3.0).sum().backward()
    assert out.grad.tolist() == [3.0, 3.0, 3.0, 3.0]
    assert z.grad.tolist() == [0.0, 6.0, 0.0, 6.0]


def test_l2_term_gradient_is_the_same_when_the_sum_spreads_a_view():
    # A big sum passes its gradient back as a broadcast view; pow 2 then scales x once.
    rng = np.random.default_rng(3)
    for dtype in (np.float64, np.float32):
        w = tl.Tensor(rng.standard_normal((80, 70)).astype(dtype), requires_grad=True)
        (0.3 * (w ** 2).sum()).backward()
        assert w.grad.dtype == dtype
        np.testing.assert_array_equal(w.grad, np.asarray(0.3, dtype) * (2 * w.data))


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
