"""compare: intermediate and per-branch hand gradients, the first wrong wire in
backward order, its diagnosis (each on a deliberately broken derivation of seed
000's two-layer net), wrong_wires() and the command's --svg."""
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import reference as ref
from tinygrad_lite.compare import compare_gradients, named

REG = 0.05
PARAMS = ("W1", "b1", "W2", "b2")


def toy(hidden=10, seed=None):
    """Seed 001's toy model and data at seed 000's reg (``seed``: random biases too,
    so a mask taken from ``X @ W1`` differs from one taken from ``X @ W1 + b1``)."""
    params, (X, y) = ref.init_toy_model(hidden_size=hidden), ref.init_toy_data()
    if seed is not None:
        rs = np.random.RandomState(seed)
        params = {k: v + (3.0 if k == "b1" else 0.3) * rs.randn(*v.shape) for k, v in params.items()}
    return params, X, y


def loss_fn_for(X, y, half=False):
    """Seed 000's net as Tensor ops, its intermediates named as the seeds name them."""
    c = 0.5 * REG if half else REG
    Xt = tl.Tensor(X, name="X")

    def loss_fn(p):
        z1 = named(Xt @ p["W1"] + p["b1"], "z1")
        h1 = named(z1.relu(), "h1")
        scores = named(h1 @ p["W2"] + p["b2"], "scores")
        return tl.cross_entropy(scores, y) + c * ((p["W1"] * p["W1"]).sum() + (p["W2"] * p["W2"]).sum())
    return loss_fn


def derive(p, X, y, bug=None, half=False):
    """Seed 000's backward by hand (every intermediate too), with one mistake."""
    W1, b1, W2, b2 = (p[k] for k in PARAMS)
    N = len(X)
    z1 = X @ W1 + b1
    h1 = np.maximum(0, z1)
    s = h1 @ W2 + b2
    e = np.exp(s - s.max(axis=1, keepdims=True))
    dscores = e / e.sum(axis=1, keepdims=True)
    dscores[np.arange(N), y] -= 1
    if bug != "no_1/N":
        dscores /= N
    k = REG if half else 2 * REG  # the right L2 gradient coefficient
    if bug == "l2":
        k = k / 2 if not half else 2 * k
    dW2 = h1.T @ dscores + k * W2
    db2 = dscores.sum(axis=0)
    dh1 = dscores @ W2.T
    dz1 = dh1 * (z1 > 0)
    if bug == "relu":
        dz1 = dh1
    elif bug == "relu_wrong_array":
        dz1 = dh1 * ((X @ W1) > 0)  # the mask of the pre-activation without its bias
    elif bug == "sigmoid":  # the derivative of another activation: no structure
        sg = 1 / (1 + np.exp(-z1))
        dz1 = dh1 * sg * (1 - sg)
    dW1 = X.T @ dz1 + (REG if half else 2 * REG) * W1
    db1 = dz1.sum(axis=0)
    if bug == "sign":
        dW1 = -dW1
    elif bug == "transposed":
        dW1 = dW1.T
    elif bug == "row":
        dW1 = dW1.copy()
        dW1[2] += 0.01
    elif bug == "column":
        dW2 = dW2 * np.array([1.0, 1.3, 1.0])
    elif bug == "bias":
        db2 = db2 + np.array([0.0, 1e-3, -2e-3])
    elif bug == "twice_b2":
        db2 = 2 * db2
    elif bug == "twice_W2":
        dW2 = 2 * dW2
    elif bug == "db1_mean":
        db1 = dz1.mean(axis=0)
    elif bug == "l2_on_bias":
        db2 = db2 + 2 * REG * b2
    return {"scores": dscores, "h1": dh1, "z1": dz1, "W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def report_for(bug=None, only=None, half=False, hidden=10, seed=None, extra=None):
    params, X, y = toy(hidden, seed)

    def hand(p):
        g = derive(p, X, y, bug, half)
        g = {k: v for k, v in g.items() if only is None or k in only}
        g.update(extra(p, X, y) if extra else {})
        return g
    return compare_gradients(loss_fn_for(X, y, half), params, hand, numeric=False, torch=False)


# ----------------------------------------------------------------- intermediates

def test_intermediate_rows_in_backward_order_with_the_engine_values():
    r = report_for()
    assert r.ok() and r.first_divergence is None and r.wrong_wires() == []
    assert r.names == ["W1", "b1", "W2", "b2", "scores", "h1", "z1"]
    assert [row.role for row in r] == ["param"] * 4 + ["intermediate"] * 3
    order = tl.backward_order(r.graph)
    for row in r:
        assert any(row.tensor is t for t in order) and row.tensor.name == row.name
        np.testing.assert_array_equal(row.engine, tl.grad(r.graph, row.tensor))
    text, md = str(r), r.to_markdown()
    assert text.index("\nscores (intermediate)") < text.index("\nh1 (intermediate)") \
        < text.index("\nz1 (intermediate)")
    assert "| z1 (intermediate) | (5, 10) |" in md and md.index("| scores (") < md.index("| z1 (")


def test_intermediates_with_no_grad_on_them_and_seed_names():
    params, X, y = toy()
    g = derive(params, X, y)
    seeds_style = {"dscores": g["scores"], "dz1": g["z1"], "grad_L_wrt_h1": g["h1"],
                   "dW1": g["W1"], "db1": g["b1"], "dW2": g["W2"], "db2": g["b2"]}
    r = compare_gradients(loss_fn_for(X, y), params, seeds_style, numeric=False, torch=False)
    assert r.ok() and set(r.names) == {"scores", "z1", "h1", *PARAMS}
    assert r["z1"].role == "intermediate"


def test_unknown_ambiguous_and_constant_names_are_refused():
    params, X, y = toy()
    loss_fn = loss_fn_for(X, y)
    with pytest.raises(ValueError, match=r"'dz2', which matches no tensor of the graph \(the named "
                                         r"tensors with a gradient: scores, h1, z1, b2, W2, b1, W1\)"):
        compare_gradients(loss_fn, params, {"dz2": np.zeros(3)}, numeric=False, torch=False)
    with pytest.raises(ValueError, match=r"'X' \(shape \(5, 4\)\) does not depend on any parameter"):
        compare_gradients(loss_fn, params, {"X": np.zeros((5, 4))}, numeric=False, torch=False)

    def twice(p):  # two tensors share a name
        a = named(tl.Tensor(X) @ p["W1"], "h")
        return (named(a.relu(), "h") * 1.0).sum()
    with pytest.raises(ValueError, match="2 tensors of the graph are named 'h'"):
        compare_gradients(twice, params, {"h": np.zeros((5, 10))}, numeric=False, torch=False)

    def both(p):  # "dh" could be the gradient of "h" or the tensor "dh" itself
        h = named(tl.Tensor(X) @ p["W1"], "h")
        return named(h * 2.0, "dh").sum()
    with pytest.raises(ValueError, match="'dh' is ambiguous: the graph has tensors named 'dh' and 'h'"):
        compare_gradients(both, {"W1": params["W1"]}, {"dh": np.zeros((5, 10))}, numeric=False,
                          torch=False)
    with pytest.raises(ValueError, match=r"hand gradient for 'z1' has shape \(10, 5\), but tensor "
                                         r"'z1' has shape \(5, 10\) \(transposed\?\)"):
        compare_gradients(loss_fn, params, {"z1": np.zeros((10, 5))}, numeric=False, torch=False)
    with pytest.raises(TypeError, match="key must be a tensor's name"):
        compare_gradients(loss_fn, params, {3: np.zeros(3)}, numeric=False, torch=False)


def test_named_helper():
    t = tl.Tensor(np.ones(2))
    assert named(t, "t") is t and t.name == "t"
    with pytest.raises(TypeError, match="expected a Tensor"):
        named(np.ones(2), "t")


# ----------------------------------------------------------------- diagnoses

L2_HALF = "off by a factor of 1/2"

CASES = [
    # bug, what the hand side gives, first wrong wire, diagnosis (a part of it)
    ("no_1/N", None, "scores", "off by N = 5: a missing or extra 1/N (mean vs sum)"),
    ("no_1/N", PARAMS, "b2", "off by N = 5: a missing or extra 1/N (mean vs sum)"),
    ("db1_mean", None, "b1", "off by 1/N = 1/5: a missing or extra 1/N (mean vs sum)"),
    ("l2", None, "W2", "the L2 term's gradient is off: k = -reg, the 0.5*reg*sum(W**2) vs "
                       "reg*sum(W**2) convention"),
    ("l2", PARAMS, "W2", "k = -reg"),
    ("relu", None, "z1", "the ReLU mask is missing (or applied to the wrong array)"),
    ("relu", PARAMS, "b1", "the ReLU mask is missing upstream: b1's hand gradient is the "
                           "engine's with the mask of relu(z1) left out"),
    ("sign", None, "W1", "sign flipped"),
    ("twice_W2", PARAMS, "W2", "off by a factor of 2"),  # the data part too: not the L2 convention
    ("row", None, "W1", "differs only in row 2 (of 4)"),
    ("column", None, "W2", "differs only in column 1 (of 3)"),
    ("bias", None, "b2", "only the bias b2 differs (every other hand gradient agrees)"),
    ("l2_on_bias", None, "b2", "hand - engine = k * b2 with k = 0.1: the hand side has an L2-style "
                               "term the loss does not have"),
]


@pytest.mark.parametrize("bug,only,first,diagnosis", CASES)
def test_each_diagnosis_on_a_broken_derivation(bug, only, first, diagnosis):
    r = report_for(bug, only, seed=1 if bug == "l2_on_bias" else None)  # the toy's b2 is 0
    d = r.first_divergence
    assert d is not None and d.name == first and d.kind == "hand"
    assert d.tensor is r[first].tensor and d.comparison is r[first]["hand"] and not d.comparison.ok
    assert diagnosis in d.diagnosis, d.diagnosis
    assert f"first wrong wire (backward order): {first}" in str(r)
    assert f"diagnosis: {d.diagnosis}" in str(r) and d.diagnosis in r.to_markdown()


def test_a_right_derivation_in_float32_is_called_round_off_not_left_unexplained():
    params, X, y = toy(10, None)
    right_in_float32 = compare_gradients(
        loss_fn_for(X, y, False), params,
        lambda p: {k: v.astype(np.float32) for k, v in derive(p, X, y, None, False).items()
                   if k in PARAMS}, numeric=False, torch=False)
    d = right_in_float32.first_divergence
    assert d is not None and d.diagnosis.startswith("agrees to within single-precision round-off")
    assert "float32 arithmetic on the hand side" in d.diagnosis
    # a real mistake is never explained away as round-off
    assert report_for("twice_W2", PARAMS).first_divergence.diagnosis == "off by a factor of 2"


def test_a_whole_gradient_scaled_is_not_blamed_on_the_l2_convention():
    # dW2 doubled as a whole: its data part h1.T @ dscores is doubled too, which no
    # mix-up of reg*sum(W**2) and 0.5*reg*sum(W**2) does
    d = report_for("twice_W2", PARAMS).first_divergence
    assert d.name == "W2" and d.diagnosis == "off by a factor of 2"


@pytest.mark.parametrize("order", [PARAMS, PARAMS[::-1], ("b1", "W2", "W1", "b2")])
@pytest.mark.parametrize("bug,wires", [("half_l2", ["W2", "W1"]), ("relu", ["z1", "b1", "W1"])])
def test_the_first_wrong_wire_does_not_depend_on_the_order_of_params(order, bug, wires):
    # Leaves are placed after their last consumer (the loss's side first), not in the
    # order compare_gradients created them from the params dict. "half_l2": both L2
    # gradients in seed 001's convention while the loss is seed 000's.
    params, X, y = toy()
    r = compare_gradients(loss_fn_for(X, y), {k: params[k] for k in order},
                          lambda p: derive(p, X, y, None if bug == "half_l2" else bug,
                                           half=bug == "half_l2"), numeric=False, torch=False)
    assert r.first_divergence.name == wires[0]
    assert [t.name for t, _ in r.wrong_wires()] == wires


def test_l2_convention_the_other_way_and_factor_two_off_an_l2_term():
    d = report_for("l2", half=True).first_divergence
    assert d.name == "W2" and "k = +reg" in d.diagnosis and "0.5*reg*sum(W2**2) with reg = 0.05" \
        in d.diagnosis
    d = report_for("twice_b2").first_divergence  # b2 has no L2 term: no L2 story
    assert d.name == "b2" and d.diagnosis == "off by a factor of 2"


def test_transposed_gradient():
    d = report_for("transposed", hidden=4).first_divergence  # W1 is (4, 4)
    assert d.name == "W1" and d.diagnosis == "transposed"
    # another shape cannot be compared element by element: the error says what it is
    with pytest.raises(ValueError, match=r"'W1' has shape \(10, 4\), but parameter 'W1' has shape "
                                         r"\(4, 10\) \(transposed\?: it equals the engine's gradient "
                                         r"transposed\)"):
        report_for("transposed")


def test_relu_mask_from_the_wrong_array():
    d = report_for("relu_wrong_array", seed=1).first_divergence
    assert d.name == "z1" and d.diagnosis.startswith("the ReLU mask is")


@pytest.mark.parametrize("seed", range(4))
def test_unrelated_wrong_gradients_get_no_diagnosis(seed):
    rs = np.random.RandomState(seed)
    params, X, y = toy(seed=seed)
    good = derive(params, X, y)
    noisy = {k: v + 1e-4 * rs.randn(*v.shape) for k, v in good.items()}
    r = compare_gradients(loss_fn_for(X, y), params, noisy, numeric=False, torch=False)
    assert r.first_divergence.name == "scores" and r.first_divergence.diagnosis == ""
    assert "diagnosis: none" in str(r)
    only = {k: noisy[k] for k in PARAMS}
    r = compare_gradients(loss_fn_for(X, y), params, only, numeric=False, torch=False)
    assert r.first_divergence.diagnosis == ""


@pytest.mark.parametrize("only", [None, PARAMS])
def test_a_wrong_unstructured_derivation_gets_no_diagnosis(only):
    d = report_for("sigmoid", only, seed=2).first_divergence
    assert d.name == ("z1" if only is None else "b1") and d.diagnosis == ""
    d = report_for("relu_wrong_array", PARAMS, seed=1).first_divergence  # not a missing mask
    assert d.diagnosis == ""


def test_zero_and_nan_hand_gradients():
    d = report_for(extra=lambda p, X, y: {"b2": np.zeros(3)}).first_divergence
    assert d.diagnosis == "the hand gradient is zero everywhere (the engine's is not)"
    d = report_for(extra=lambda p, X, y: {"b2": np.array([np.nan, 0, 0])}).first_divergence
    assert d.diagnosis == "the hand gradient has 1 nan/inf element(s)"


def test_missing_hand_gradient_only_when_nothing_disagrees():
    r = report_for(only=("W1", "W2", "b2"))
    d = r.first_divergence
    assert d.name == "b1" and d.comparison.missing and r.wrong_wires() == []
    assert report_for("sign", only=("W1", "W2", "b2")).first_divergence.name == "W1"


# ----------------------------------------------------------------- branches and wrong wires

def _mul_node(r, name):
    return next(t for t in tl.backward_order(r.graph)
                if t.op is not None and t.op.name == "mul" and t.parents[0] is r.leaves[name])


def _matmul_node(r, name):
    return next(t for t in tl.backward_order(r.graph)
                if t.op is not None and t.op.name == "matmul"
                and any(p is r.leaves[name] for p in t.parents))


def same(wires, expected):
    """``wires == expected`` by identity (Tensor's == is elementwise)."""
    return len(wires) == len(expected) and all(
        t is u and c is d for (t, c), (u, d) in zip(wires, expected))


def test_one_branch_explains_the_difference():
    r = report_for("l2")
    W2 = r.leaves["W2"]
    assert same(r.wrong_wires(), [(W2, _mul_node(r, "W2"))])
    assert r.first_divergence.consumer is _mul_node(r, "W2")
    assert "its branch into W2 * W2" in str(r)
    r = report_for("no_1/N", PARAMS)  # the data branches of W1 and W2, the whole of b1, b2
    wires = r.wrong_wires()
    assert [t.name for t, _ in wires] == ["b2", "W2", "b1", "W1"]
    assert same(wires, [(r.leaves["b2"], None), (r.leaves["W2"], _matmul_node(r, "W2")),
                        (r.leaves["b1"], None), (r.leaves["W1"], _matmul_node(r, "W1"))])
    r = report_for("sign")
    assert same(r.wrong_wires(), [(r.leaves["W1"], None)])  # the whole gradient: no one branch


def test_relu_upstream_names_the_data_branch():
    r = report_for("relu", PARAMS)
    assert same(r.wrong_wires(), [(r.leaves["b1"], None), (r.leaves["W1"], _matmul_node(r, "W1"))])


def test_per_branch_hand_gradients():
    def branches(p, X, y):
        h1 = np.maximum(0, X @ p["W1"] + p["b1"])
        dscores = derive(p, X, y)["scores"]
        return {("W2", "@"): h1.T @ dscores, ("W2", "l2"): REG * p["W2"]}  # L2 branch halved
    r = report_for(extra=branches)
    assert r["W2 -> @"].role == "branch" and r["W2 -> @"].ok()
    assert not r["W2 -> l2"].ok() and r["W2"].ok()
    mul = _mul_node(r, "W2")
    assert r["W2 -> l2"].consumer is mul
    assert same(r.wrong_wires(), [(r.leaves["W2"], mul)])
    d = r.first_divergence
    assert d.name == "W2 -> l2" and d.role == "branch" and d.consumer is mul
    assert d.diagnosis == L2_HALF + ": the L2 convention (reg*sum(W**2) gives 2*reg*W)"
    assert "W2 -> l2 (branch)" in str(r) and "W2" not in r.failing()


def test_per_branch_key_errors():
    params, X, y = toy()
    loss_fn = loss_fn_for(X, y)
    with pytest.raises(ValueError, match=r"\('W2', 'sum'\) matches none of the ops using 'W2' "
                                         r"\(its consumers: W2 \* W2; h1 @ W2\)"):
        compare_gradients(loss_fn, params, {("W2", "sum"): np.zeros((10, 3))}, numeric=False, torch=False)
    with pytest.raises(TypeError, match="pair"):
        compare_gradients(loss_fn, params, {("W2", "@", 1): np.zeros((10, 3))}, numeric=False, torch=False)


def test_wrong_wires_are_the_graphs_own_tensors():
    r = report_for("relu")
    order = {id(t) for t in tl.backward_order(r.graph)}
    assert [t.name for t, _ in r.wrong_wires()] == ["z1", "b1", "W1"]
    for t, c in r.wrong_wires():
        assert id(t) in order and (c is None or (id(c) in order and any(p is t for p in c.parents)))
    assert r.first_divergence.tensor is r.wrong_wires()[0][0]


# ----------------------------------------------------------------- the command

def test_cli_prints_the_diagnosis_and_writes_the_diagram(tmp_path):
    out = tmp_path / "relu.svg"
    r = subprocess.run([sys.executable, "-m", "tinygrad_lite.compare", "--model", "cs231n", "--bug",
                        "l2", "--no-numeric", "--torch", "off", "--svg", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "first wrong wire (backward order): W2, its branch into W2 * W2" in r.stdout
    assert "diagnosis: the L2 term's gradient is off: k = -reg" in r.stdout
    assert out.read_text().lstrip().startswith(("<?xml", "<svg"))
    bad = tmp_path / "no" / "such" / "dir.svg"
    r = subprocess.run([sys.executable, "-m", "tinygrad_lite.compare", "--model", "cs231n",
                        "--no-numeric", "--torch", "off", "--svg", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "error: --svg" in r.stderr and not bad.exists()


def test_docs_compare_examples_run(tmp_path, monkeypatch, capsys):
    """Every ```python block of docs/compare.md, in order, in one namespace."""
    import pathlib
    import re
    doc = pathlib.Path(__file__).resolve().parents[1] / "docs" / "compare.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(doc), "exec"), namespace)
    out = capsys.readouterr().out
    assert "diagnosis: the ReLU mask is missing" in out and "dW1 (4, 10) = X.T (4, 5) @ dz1" in out
