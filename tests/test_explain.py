"""tl.explain: the chain of local rules from a root to a tensor, as hand-derivation lines."""
import numpy as np
import pytest
from conftest import cube_op

import tinygrad_lite as tl
from tinygrad_lite import reference as ref
from tinygrad_lite.ops import OPS


def seed000_net(penalty="mul", bias_shape=None):
    params, (Xd, y) = ref.init_toy_model(), ref.init_toy_data()
    reg = 0.05
    X = tl.Tensor(Xd)
    W1, b1, W2, b2 = (tl.Tensor(params[k] if bias_shape is None or k[0] == "W"
                                else params[k].reshape(bias_shape), requires_grad=True)
                      for k in ("W1", "b1", "W2", "b2"))
    z1 = X @ W1 + b1
    h1 = z1.relu()
    scores = h1 @ W2 + b2
    if penalty == "mul":
        loss = tl.cross_entropy(scores, y) + reg * ((W1 * W1).sum() + (W2 * W2).sum())
    else:
        loss = tl.cross_entropy(scores, y) + tl.l2_penalty([W1, W2], reg)
    return loss, dict(locals())


def lines(text):
    return [line.split("  #")[0].rstrip() for line in text.splitlines()]


@pytest.mark.parametrize("penalty", ["mul", "l2_penalty"])
def test_the_seeds_chain_to_W1(penalty):
    loss, names = seed000_net(penalty)
    text = tl.explain(loss, names["W1"], names=names)
    assert lines(text) == [
        "dscores (5, 3) = (softmax(scores) - onehot(y)) / N",
        "dh1 (5, 10) = dscores (5, 3) @ W2.T (3, 10)",
        "dz1 (5, 10) = dh1 * (z1 > 0)",
        "dW1 (4, 10) = X.T (4, 5) @ dz1 (5, 10) + 2 * reg * W1",
    ]
    # each line's comment is the op table's rule (or the composite's name)
    assert "# cross_entropy" in text.splitlines()[0]
    assert "# relu: d relu(x)/dx = 1[x > 0]" in text.splitlines()[2]
    assert "matmul: d(a@b)/db = a.T @ g" in text.splitlines()[3]
    assert all(getattr(t, "grad", None) is None for t in names.values() if isinstance(t, tl.Tensor))


def test_biases_are_summed_back_over_the_batch():
    loss, names = seed000_net()
    assert lines(tl.explain(loss, names["b2"], names=names))[-1] == "db2 (3,) = dscores.sum(axis=0)"
    loss, names = seed000_net(bias_shape=(1, -1))  # seed 002's (1, H) biases
    assert lines(tl.explain(loss, names["b1"], names=names))[-1] == \
        "db1 (1, 10) = dz1.sum(axis=0, keepdims=True)"


def test_tensor_names_without_names_mapping_and_unnamed_ones():
    x = tl.Tensor(np.ones((2, 3)), requires_grad=True, name="x")
    w = tl.Tensor(np.ones((3, 4)), requires_grad=True, name="w")
    loss = ((x @ w).tanh() * 3.0).sum()
    text = lines(tl.explain(loss, w))
    assert text == ["dw (3, 4) = x.T (3, 2) @ (3 * (1 - tanh((x @ w))**2)) (2, 4)"]
    unnamed = tl.Tensor(np.ones(3), requires_grad=True)
    assert lines(tl.explain((unnamed * unnamed).sum(), unnamed)) == ["dwrt (3,) = 2 * array(3,)"]


def test_every_builtin_op_has_a_template():
    for name, op in OPS.items():
        if op.__module__ == "tinygrad_lite.ops":
            assert op.template or op.templates.__func__ is not tl.Function.templates.__func__, name


OP_GRAPHS = {
    "sub": lambda x, w: (x - w).sum(), "div": lambda x, w: (w / x).sum(),
    "maximum": lambda x, w: tl.maximum(x, w).sum(), "where": lambda x, w: tl.where(x.data > 1, x, w).sum(),
    "neg": lambda x, w: (-x).sum(), "pow": lambda x, w: (x ** 3).sum(), "exp": lambda x, w: x.exp().sum(),
    "log": lambda x, w: x.log().sum(), "sqrt": lambda x, w: x.sqrt().sum(), "abs": lambda x, w: abs(x).sum(),
    "sigmoid": lambda x, w: x.sigmoid().sum(), "tanh": lambda x, w: x.tanh().sum(),
    "clip": lambda x, w: x.clip(0.7, 1.2).sum(), "cast": lambda x, w: x.astype(np.float32).sum(),
    "mean": lambda x, w: x.mean(axis=1).sum(), "std": lambda x, w: x.std(axis=0).sum(),
    "max": lambda x, w: x.max(axis=1).sum(), "min": lambda x, w: x.min() * 1.0,
    "reshape": lambda x, w: x.reshape(12).sum(), "transpose": lambda x, w: x.permute(1, 0).sum(),
    "broadcast_to": lambda x, w: (tl.broadcast_to(w, (3, 4)) * x).sum(),
    "getitem": lambda x, w: x[np.arange(3), np.array([0, 2, 1])].sum(),
    "concatenate": lambda x, w: tl.concatenate([x, x * 2]).sum(), "stack": lambda x, w: tl.stack([x, x]).sum(),
    "matmul": lambda x, w: (x @ w).sum(),
}


@pytest.mark.parametrize("op", sorted(OP_GRAPHS))
def test_explain_runs_for_each_op_and_cites_its_rule(op):
    rs = np.random.RandomState(0)
    x = tl.Tensor(rs.rand(3, 4) + 0.5, requires_grad=True, name="x")
    w = tl.Tensor(rs.rand(4) + 0.5, requires_grad=True, name="w")
    text = tl.explain(OP_GRAPHS[op](x, w), x)
    assert text.splitlines()[-1].startswith("dx (3, 4) = ")
    assert f"{op}: {OPS[op].rule.split(', ')[0].split(' (')[0]}"[:12] in text


def test_composites_are_one_line_with_a_template_else_expanded():
    x = tl.Tensor(np.random.RandomState(1).randn(3, 4), requires_grad=True, name="x")
    w = tl.Tensor(np.ones(4), name="w")
    assert lines(tl.explain((tl.softmax(x) * w).sum(), x)) == [
        "dx (3, 4) = softmax(x) * (w - (w * softmax(x)).sum(axis=-1, keepdims=True))"]
    assert lines(tl.explain((tl.log_softmax(x) * w).sum(), x)) == [
        "dx (3, 4) = w - softmax(x) * w.sum(axis=-1, keepdims=True)"]
    expanded = tl.explain(tl.var(x), x)  # no template: its primitives, line by line
    assert "# sub:" in expanded and "mean: d mean(x)/dx" in expanded


def test_a_user_op_without_a_template_says_what_is_applied():
    Cube = cube_op(rule="3 x^2")
    x = tl.Tensor(np.ones(2), requires_grad=True, name="x")
    assert tl.explain(Cube.apply(x).sum(), x).startswith("dx (2,) = cube_backward(1, input 0)  # cube: 3 x^2")


def test_errors():
    x = tl.Tensor(np.ones(2), requires_grad=True, name="x")
    other = tl.Tensor(np.ones(2), requires_grad=True, name="other")
    loss = (x * 2).sum()
    with pytest.raises(ValueError, match=r"wrt \(other\) is not in root's graph"):
        tl.explain(loss, other)
    with pytest.raises(ValueError, match="does not require grad"):
        tl.explain(tl.Tensor(np.ones(2)).sum(), x)
    with pytest.raises(TypeError, match="must be Tensors"):
        tl.explain(loss, np.ones(2))
    with pytest.raises(TypeError, match="names= must be a mapping"):
        tl.explain(loss, x, names=["x"])


def test_cross_entropys_one_line_rule_is_shown_only_where_it_holds():
    s = tl.Tensor(np.random.default_rng(0).standard_normal((5, 3)), requires_grad=True)
    y = np.array([0, 1, 2, 1, 0])
    names = {"scores": s, "y": y}
    first = lines(tl.explain(tl.cross_entropy(s, y), s, names=names))
    assert first == ["dscores (5, 3) = (softmax(scores) - onehot(y)) / N"]
    summed = lines(tl.explain(tl.cross_entropy(s, y, reduction="sum"), s, names=names))
    assert summed == ["dscores (5, 3) = softmax(scores) - onehot(y)"]  # no / N
    for kw in ({"weight": np.array([1.0, 2.0, 3.0])}, {"label_smoothing": 0.1}, {"ignore_index": 1}):
        text = tl.explain(tl.cross_entropy(s, y, **kw), s, names=names)
        assert "onehot" not in text and "logsumexp" in text  # its gates, each with its rule
