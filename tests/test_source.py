"""tl.backward_source: a graph's backward printed as plain NumPy, which runs and gives
the engine's gradients, in the user's names, one commented block per local rule."""
import ast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_compile import legacy_op
from test_ops import SPECS, operands

import tinygrad_lite as tl


def two_layer_graph(dtype=np.float64):
    """cs231n's two-layer net on the toy problem, its leaves named by the user."""
    rng = np.random.RandomState(0)
    X = tl.Tensor((10 * rng.randn(5, 4)).astype(dtype), name="X")
    W1 = tl.Tensor((0.1 * rng.randn(4, 10)).astype(dtype), requires_grad=True, name="W1")
    b1 = tl.Tensor(np.zeros(10, dtype), requires_grad=True, name="b1")
    W2 = tl.Tensor((0.1 * rng.randn(10, 3)).astype(dtype), requires_grad=True, name="W2")
    b2 = tl.Tensor(np.zeros(3, dtype), requires_grad=True, name="b2")
    y = np.array([0, 1, 2, 2, 1])
    h = tl.maximum(0, X @ W1 + b1)
    scores = h @ W2 + b2
    loss = tl.cross_entropy(scores, y) + 0.05 * ((W1 * W1).sum() + (W2 * W2).sum())
    return loss, {"X": X, "W1": W1, "b1": b1, "W2": W2, "b2": b2}


def engine_grads(root, leaves, gradient=None):
    wanted = [t for t in leaves.values() if t.requires_grad]
    return dict(zip([k for k, t in leaves.items() if t.requires_grad],
                    tl.grad(root, wanted, grad_outputs=gradient)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_printed_numpy_runs_and_gives_the_engines_gradients(dtype):
    loss, leaves = two_layer_graph(dtype)
    src = tl.backward_source(loss)
    ast.parse(src)  # plain Python source
    assert src.startswith("import numpy as np\n")
    assert src.parameters == ("W1", "b1", "W2", "b2", "X")
    grads = src.function()(**{k: t.data for k, t in leaves.items()})
    expected = engine_grads(loss, leaves)
    assert set(grads) == {"W1", "b1", "W2", "b2"}
    for k, g in expected.items():
        assert grads[k].dtype == dtype and grads[k].shape == g.shape
        np.testing.assert_allclose(grads[k], g, rtol=1e-12 if dtype == np.float64 else 1e-6,
                                   atol=0)
    # exec'd by hand as well, as the docstring says
    env = {"np": np, "CONSTANTS": src.constants}
    exec(src, env)
    again = env["backward"](**{k: t.data for k, t in leaves.items()})
    for k in expected:
        np.testing.assert_array_equal(again[k], grads[k])


def test_each_local_rule_is_a_commented_block_in_the_users_names():
    loss, leaves = two_layer_graph()
    scores = loss.parents[0].parents[0]
    h = scores.parents[0].parents[0]
    src = tl.backward_source(loss, names={"loss": loss, "scores": scores, "h": h, **leaves})
    assert "    # ---- forward\n    add1 = X @ W1 + b1\n    h = np.maximum(0.0, add1)\n" in src
    assert "    # ---- backward, from dloss = 1\n    dloss = np.ones_like(loss)\n" in src
    for op in ("matmul", "maximum", "add", "softmax_cross_entropy"):
        assert f"    # {op}: " in src and tl.OPS[op].rule in src
    assert "    dh = dscores @ W2.T\n" in src
    for name in ("dW1", "db1", "dW2", "db2"):
        assert f"    {name} = " in src
    # W1 feeds the matmul and the penalty: its contributions add up
    assert "dW1 = " in src.split("used more than once")[-2].splitlines()[-1]


def test_names_from_names_mapping_and_a_fresh_call_on_new_arrays():
    rng = np.random.RandomState(1)
    x = tl.Tensor(rng.randn(3, 4))
    w = tl.Tensor(rng.randn(4, 2), requires_grad=True)
    h = (x @ w).tanh()
    out = (h * h).sum()
    src = tl.backward_source(out, names=locals())
    assert src.parameters == ("w", "x")
    assert "    h = np.tanh(x @ w)" in src
    fn = src.function()
    for _ in range(3):  # a function of the arrays: other values, other gradients
        xs, ws = rng.randn(3, 4), rng.randn(4, 2)
        x.data, w.data = xs, ws
        expected = tl.grad(((x @ w).tanh() ** 2).sum(), [w])[0]
        np.testing.assert_allclose(fn(w=ws, x=xs)["w"], expected, rtol=1e-12)


def test_names_that_are_not_identifiers_or_are_taken():
    a = tl.Tensor(np.ones(3), requires_grad=True, name="fc1.W")
    b = tl.Tensor(np.full(3, 2.0), requires_grad=True, name="lambda")
    c = tl.Tensor(np.full(3, 3.0), requires_grad=True, name="np")
    out = (a * b * c).sum()
    src = tl.backward_source(out)
    assert src.parameters == ("fc1_W", "lambda_", "np_")
    grads = src.function()(fc1_W=a.data, lambda_=b.data, np_=c.data)
    assert set(grads) == {"fc1.W", "lambda", "np"}  # keyed by the tensors' own names
    np.testing.assert_array_equal(grads["fc1.W"], b.data * c.data)
    np.testing.assert_array_equal(grads["np"], a.data * b.data)


def test_a_gradient_seed_for_a_root_that_is_not_a_scalar():
    a = tl.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="a")
    unused = tl.Tensor(np.ones(4), requires_grad=True, name="unused")
    out = a.exp() * 2
    seed = np.random.RandomState(0).randn(2, 3)
    src = tl.backward_source(out, names={"a": a, "unused": unused}, gradient=seed)
    assert src.parameters == ("a",)  # the graph's leaves only
    grads = src.function()(a=a.data)
    np.testing.assert_array_equal(grads["a"], tl.grad(out, [a], grad_outputs=seed)[0])


def test_big_constants_become_keyword_defaults():
    labels = np.random.RandomState(0).randint(0, 3, 600)
    scores = tl.Tensor(np.random.RandomState(1).randn(600, 3), requires_grad=True, name="s")
    loss = tl.cross_entropy(scores, labels)
    src = tl.backward_source(loss)
    assert src.constants and all(v.size > 1024 for v in src.constants.values())
    assert all(p.split("=")[0] in src.constants for p in src.parameters[1:])
    np.testing.assert_allclose(src.function()(s=scores.data)["s"],
                               tl.grad(loss, [scores])[0], rtol=1e-12)


def test_the_graph_and_gradients_are_left_as_they_were():
    loss, leaves = two_layer_graph()
    arrays = {k: t.data.copy() for k, t in leaves.items()}
    tl.backward_source(loss)
    assert all(t.grad is None for t in leaves.values())
    for k, t in leaves.items():
        np.testing.assert_array_equal(t.data, arrays[k])
    loss.backward()  # the graph still runs its own backward
    assert leaves["W1"].grad is not None


def test_a_detached_max_shift_and_float32_constants():
    s = tl.Tensor(np.random.RandomState(0).randn(4, 3).astype(np.float32), requires_grad=True,
                  name="s")
    shifted = s - s.max(axis=1, keepdims=True).detach()
    loss = -(shifted - shifted.exp().sum(axis=1, keepdims=True).log())[np.arange(4),
                                                                        [0, 1, 2, 0]].mean()
    src = tl.backward_source(loss)
    got = src.function()(s=s.data)["s"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, tl.grad(loss, [s])[0])


@pytest.mark.parametrize("root, names, error, words", [
    ("not a tensor", None, TypeError, "must be a Tensor"),
    ("no graph", None, RuntimeError, "does not require grad"),
    ("unnamed leaf", None, ValueError, "has no name"),
    ("two leaves named w", None, ValueError, "two leaves are named 'w'"),
    ("not scalar", None, RuntimeError, "pass gradient="),
    ("names not a mapping", ["w"], TypeError, "names= must be a mapping"),
])
def test_errors_name_what_is_wrong(root, names, error, words):
    w = tl.Tensor(np.ones(3), requires_grad=True, name="w")
    roots = {
        "not a tensor": np.ones(3),
        "no graph": tl.Tensor(np.ones(3)).sum(),
        "unnamed leaf": (w * tl.Tensor(np.ones(3), requires_grad=True)).sum(),
        "two leaves named w": (w * tl.Tensor(np.ones(3), requires_grad=True, name="w")).sum(),
        "not scalar": w * 2,
        "names not a mapping": w.sum(),
    }
    with pytest.raises(error, match=words):
        tl.backward_source(roots[root], names=names)


def test_a_seed_of_the_wrong_shape_and_a_numpy_only_op():
    w = tl.Tensor(np.ones(3), requires_grad=True, name="w")
    with pytest.raises(ValueError, match="gradient has shape"):
        tl.backward_source(w * 2, gradient=np.ones(4))
    with pytest.raises(TypeError, match="legacy: its forward/backward take no xp"):
        tl.backward_source(legacy_op().apply(w).sum())


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=4)
@given(data=st.data())
def test_every_op_prints_numpy_that_gives_its_gradient(name, data):
    case = data.draw(st.composite(lambda draw: SPECS[name](draw))(), label="case")
    ops_, grads = operands(case)
    for i, t in enumerate(grads):
        t.name = f"x{i}"
    with np.errstate(all="ignore"):
        out = case.fn(*ops_)
        seed = np.random.default_rng(len(case.desc)).uniform(-1, 1, out.shape)
        expected = tl.grad(out, grads, grad_outputs=seed)
        src = tl.backward_source(out, gradient=seed)
        got = src.function()(**{t.name: t.data for t in grads})
    for t, g in zip(grads, expected):
        assert got[t.name].dtype == g.dtype, case.desc
        np.testing.assert_allclose(got[t.name], g, rtol=1e-12, atol=1e-300, err_msg=case.desc)
