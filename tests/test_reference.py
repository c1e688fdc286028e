"""The seeds' hand derivations (tinygrad_lite.reference) against the engine, central
differences and PyTorch, on the seeds' fixtures and on seeded random data."""
import functools

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import reference as ref
from tinygrad_lite.compare import compare_gradients
from tinygrad_lite.problems import column_loss_fn, cs231n_loss_fn, ng_loss_fn, scratch_loss_fn

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

KEYS = ("W1", "b1", "W2", "b2")


def rows_params(rs, D, H, C, bias="flat", scale=0.5):
    shape = (lambda n: (1, n)) if bias == "row" else (lambda n: (n,))
    return {"W1": rs.randn(D, H) * scale, "b1": rs.randn(*shape(H)) * 0.1,
            "W2": rs.randn(H, C) * scale, "b2": rs.randn(*shape(C)) * 0.1}


def cols_params(rs, D, H, C, scale=1.0):
    return {"W1": rs.randn(H, D) * scale, "b1": rs.randn(H) * 0.1,
            "W2": rs.randn(C, H) * scale, "b2": rs.randn(C) * 0.1}


def check(loss_fn, params, hand, numeric=True):
    """Engine vs hand (and torch when installed) <= 1e-9 relative, vs numeric within
    its default; the hand loss equals the engine's."""
    report = compare_gradients(loss_fn, params, hand, numeric=numeric, torch="auto")
    assert report.ok(), str(report)
    for row in report:
        assert row.comparisons["hand"].rel_error <= 1e-9 or row.comparisons["hand"].max_abs <= 1e-12, \
            str(report)
        if HAVE_TORCH:
            assert row.comparisons["torch"].ok, str(report)
    assert ("torch" in report.kinds) == HAVE_TORCH
    assert abs(report.losses["hand"] - report.losses["engine"]) <= 1e-12 * max(1, abs(report.losses["engine"]))
    return report


def frozen(*arrays):
    """Read-only copies: any in-place write by a reference raises."""
    out = []
    for a in arrays:
        if isinstance(a, dict):
            a = {k: frozen(v)[0] for k, v in a.items()}
        else:
            a = np.array(a)
            a.setflags(write=False)
        out.append(a)
    return out


# ----------------------------------------------------------------- cs231n (000, 001)

def test_cs231n_toy_fixture_matches_seed_001():
    params, (X, y) = ref.init_toy_model(), ref.init_toy_data()
    scores = np.maximum(0, X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
    assert np.abs(scores - ref.TOY_CORRECT_SCORES).max() < 1e-7  # seed 001 prints 3.68e-08
    loss_half, g_half = ref.cs231n_two_layer(params, X, y, 0.1, l2_half=True)
    loss_full, g_full = ref.cs231n_two_layer(params, X, y, 0.05)
    assert abs(loss_half - ref.TOY_CORRECT_LOSS) < 1e-10
    assert abs(loss_full - ref.TOY_CORRECT_LOSS) < 1e-10
    for k in KEYS:  # 0.5 * 0.1 == 0.05: the same function, the same gradients
        np.testing.assert_allclose(g_half[k], g_full[k], rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("l2_half", [False, True])
def test_cs231n_fixture_vs_engine(l2_half):
    params, (X, y) = ref.init_toy_model(), ref.init_toy_data()
    reg = 0.1 if l2_half else 0.05
    report = check(cs231n_loss_fn(X, y, reg, l2_half=l2_half), params,
                   functools.partial(ref.cs231n_two_layer, X=X, y=y, reg=reg, l2_half=l2_half))
    # seed 001's numerical check prints these max relative errors: same data, same h
    seed_001 = {"b2": 4.447635e-11, "W1": 3.561318e-09, "W2": 3.440708e-09, "b1": 2.738421e-09}
    for k, v in seed_001.items():
        assert report[k].comparisons["numeric"].rel_error == pytest.approx(v, rel=1e-2)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("l2_half", [False, True])
def test_cs231n_random(seed, l2_half):
    rs = np.random.RandomState(seed)
    params = rows_params(rs, D=4, H=6, C=3)
    X, y = rs.randn(5, 4), rs.randint(3, size=5)
    reg = float(rs.uniform(0.01, 1.0))
    check(cs231n_loss_fn(X, y, reg, l2_half=l2_half), params,
          functools.partial(ref.cs231n_two_layer, X=X, y=y, reg=reg, l2_half=l2_half))


def test_cs231n_l2_conventions():
    rs = np.random.RandomState(3)
    params = rows_params(rs, 4, 5, 3)
    X, y = rs.randn(6, 4), rs.randint(3, size=6)
    l0, g0 = ref.cs231n_two_layer(params, X, y, 0.0)
    l1, g1 = ref.cs231n_two_layer(params, X, y, 0.3)
    lh, gh = ref.cs231n_two_layer(params, X, y, 0.3, l2_half=True)
    sq = np.sum(params["W1"] ** 2) + np.sum(params["W2"] ** 2)
    assert l1 - l0 == pytest.approx(0.3 * sq, rel=1e-12)
    assert lh - l0 == pytest.approx(0.15 * sq, rel=1e-12)
    np.testing.assert_allclose(g1["W2"] - g0["W2"], 0.6 * params["W2"], rtol=1e-12)
    np.testing.assert_allclose(gh["W2"] - g0["W2"], 0.3 * params["W2"], rtol=1e-12)
    for k in ("b1", "b2"):  # biases are not regularised
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-12, atol=1e-16)


def test_cs231n_matches_seed_000_literal_code():
    """The unshifted softmax and ``np.where(a <= 0, 0, 1)`` of seed 000, verbatim."""
    rs = np.random.RandomState(4)
    params = rows_params(rs, 4, 5, 3)
    X, y = rs.randn(6, 4), rs.randint(3, size=6)
    reg, N = 0.2, 6
    W1, b1, W2, b2 = (params[k] for k in KEYS)
    a = np.matmul(X, W1) + b1
    a[a < 0] = 0
    b = a
    scores = np.matmul(b, W2) + b2
    d = np.exp(scores)
    f = d[np.arange(N), y] / np.sum(d, axis=1).reshape(1, N)
    loss = np.sum(-np.log(f)) / N + reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    gs = d / np.sum(d, axis=1, keepdims=True)
    gs[np.arange(N), y] -= 1
    gs /= N
    ga = np.where(a <= 0, 0, 1) * gs.dot(W2.T)
    want = {"W1": X.T.dot(ga) + 2 * reg * W1, "b1": np.sum(ga, axis=0),
            "W2": b.T.dot(gs) + 2 * reg * W2, "b2": np.sum(gs, axis=0)}
    got_loss, got = ref.cs231n_two_layer(params, X, y, reg)
    assert got_loss == pytest.approx(loss, rel=1e-13)
    for k in KEYS:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-15)


def test_cs231n_large_scores_stay_finite():
    """The max shift: scores of ~1e3 overflow the seed's bare exp, not the reference."""
    rs = np.random.RandomState(5)
    params = rows_params(rs, 4, 5, 3)
    params["b2"] = params["b2"] + 1000.0
    X, y = rs.randn(6, 4), rs.randint(3, size=6)
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.exp(np.maximum(0, X @ params["W1"] + params["b1"]) @ params["W2"]
                                      + params["b2"])).all()
    loss, grads = ref.cs231n_two_layer(params, X, y, 0.0)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())
    check(cs231n_loss_fn(X, y, 0.0), params,
          functools.partial(ref.cs231n_two_layer, X=X, y=y, reg=0.0), numeric=False)


# ----------------------------------------------------------------- ng (002)

def test_he_init():
    w, b = ref.initialize_he_weights(400, 300, rng=0)
    assert w.shape == (400, 300) and b.shape == (1, 300) and not b.any()
    assert w.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    np.random.seed(7)
    w1, _ = ref.initalize_he_weights(3, 2)  # the seed's spelling draws from np.random
    np.random.seed(7)
    np.testing.assert_array_equal(w1, np.random.randn(3, 2) * np.sqrt(2. / 3))
    p = ref.init_ng_params(4, 25, 3, rng=0)
    assert {k: v.shape for k, v in p.items()} == {"W1": (4, 25), "b1": (1, 25),
                                                  "W2": (25, 3), "b2": (1, 3)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ng_random(seed):
    rs = np.random.RandomState(seed)
    params = ref.init_ng_params(4, 7, 3, rng=rs)
    params["b1"] = params["b1"] + 0.1 * rs.randn(1, 7)  # He init's zero biases hide db errors
    X, y = rs.randn(6, 4), rs.randint(3, size=6)
    lambd = float(rs.uniform(1e-3, 0.5))
    report = check(ng_loss_fn(X, y, lambd), params,
                   functools.partial(ref.ng_two_layer, X=X, y=y, lambd=lambd))
    assert report["b1"].engine.shape == (1, 7)


def test_ng_is_cs231n_with_half_l2_and_row_biases():
    rs = np.random.RandomState(8)
    params = ref.init_ng_params(4, 6, 3, rng=rs)
    X, y = rs.randn(5, 4), rs.randint(3, size=5)
    ln, gn = ref.ng_two_layer(params, X, y, 0.4)
    flat = {k: v.reshape(-1) if k[0] == "b" else v for k, v in params.items()}
    lc, gc = ref.cs231n_two_layer(flat, X, y, 0.4, l2_half=True)
    assert ln == pytest.approx(lc, rel=1e-13)
    for k in KEYS:
        assert gn[k].shape == params[k].shape
        np.testing.assert_allclose(gn[k].reshape(-1), gc[k].reshape(-1), rtol=1e-12, atol=1e-16)


def test_ng_default_lambd_is_the_seeds():
    rs = np.random.RandomState(9)
    params = ref.init_ng_params(3, 4, 2, rng=rs)
    X, y = rs.randn(4, 3), rs.randint(2, size=4)
    assert ref.ng_two_layer(params, X, y)[0] == ref.ng_two_layer(params, X, y, 1e-3)[0]


# ----------------------------------------------------------------- column sigmoid (003)

def test_column_fixture_values_and_trap():
    params, X, y, reg = ref.seed003_fixture()
    assert X.tolist() == [[0, 1], [2, 3], [4, 5]] and y.tolist() == [3, 4] and reg == 0.5
    assert params["W1"].tolist() == [[1, 2, 3]] * 4
    z1 = params["W1"] @ X + params["b1"][:, None]
    assert z1.tolist() == [[17, 23]] * 4  # saturates the sigmoid
    loss, g = ref.column_sigmoid_two_layer(params, X, y, reg)
    # uniform softmax: -log(1/5) + 0.5 * 0.5 * (4 * (1 + 4 + 9) + 20 * 4)
    assert loss == pytest.approx(np.log(5) + 0.25 * (56 + 80), rel=1e-12)
    assert np.abs(g["b1"]).max() < 1e-20                      # ~1e-24
    np.testing.assert_allclose(g["W1"], reg * params["W1"], rtol=0, atol=1e-20)
    np.testing.assert_allclose(g["b2"], (np.full((5, 2), 0.2) - np.eye(5)[:, [3, 4]]).sum(1) / 2)
    check(column_loss_fn(X, y, reg), params,
          functools.partial(ref.column_sigmoid_two_layer, X=X, y=y, reg=reg))


def zero_hidden_derivation(params, X, y, reg):
    """A wrong derivation: the hidden layer's data gradient dropped (only reg * W1)."""
    loss, g = ref.column_sigmoid_two_layer(params, X, y, reg)
    g = dict(g)
    g["W1"] = reg * np.asarray(params["W1"], dtype=float)
    g["b1"] = np.zeros_like(g["b1"])
    return loss, g


def test_column_trap_zero_hidden_passes_fixture_but_not_scaled_or_random():
    params, X, y, reg = ref.seed003_fixture()
    report = compare_gradients(column_loss_fn(X, y, reg), params,
                               functools.partial(zero_hidden_derivation, X=X, y=y, reg=reg),
                               numeric=False, torch=False)
    assert report.ok()  # the trap: zeros pass on the seed's own fixture
    assert any("b1" in n and "cannot tell" in n for n in report.notes)

    params, X, y, reg = ref.seed003_scaled(0)
    report = compare_gradients(column_loss_fn(X, y, reg), params,
                               functools.partial(zero_hidden_derivation, X=X, y=y, reg=reg),
                               numeric=False, torch=False)
    assert report.failing() == {"W1", "b1"}


@pytest.mark.parametrize("seed", [0, 1])
def test_column_scaled(seed):
    params, X, y, reg = ref.seed003_scaled(seed)
    loss, g = ref.column_sigmoid_two_layer(params, X, y, reg)
    assert np.abs(g["b1"]).max() > 1e-3  # the hidden layer carries real gradient here
    check(column_loss_fn(X, y, reg), params,
          functools.partial(ref.column_sigmoid_two_layer, X=X, y=y, reg=reg))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_column_random(seed):
    rs = np.random.RandomState(seed)
    D, N, H, C = 3, 5, 4, 6
    params = cols_params(rs, D, H, C)
    X, y = rs.randn(D, N), rs.randint(C, size=N)
    reg = float(rs.uniform(0.0, 1.0))
    check(column_loss_fn(X, y, reg), params,
          functools.partial(ref.column_sigmoid_two_layer, X=X, y=y, reg=reg))


def test_column_is_the_transpose_of_a_row_sigmoid_net():
    """Seed 003's column layout = the row layout with everything transposed."""
    rs = np.random.RandomState(10)
    params = cols_params(rs, 3, 4, 5)
    X, y = rs.randn(3, 6), rs.randint(5, size=6)
    W1, b1, W2, b2 = (tl.Tensor(params[k], requires_grad=True) for k in KEYS)
    a1 = (tl.Tensor(X.T) @ W1.T + b1).sigmoid()
    loss = tl.cross_entropy(a1 @ W2.T + b2, y) + 0.25 * ((W1 * W1).sum() + (W2 * W2).sum())
    loss.backward()
    hand_loss, g = ref.column_sigmoid_two_layer(params, X, y, 0.5)
    assert hand_loss == pytest.approx(loss.item(), rel=1e-13)
    for k, t in zip(KEYS, (W1, b1, W2, b2)):
        np.testing.assert_allclose(g[k], t.grad, rtol=1e-10, atol=1e-15)


# ----------------------------------------------------------------- scratch (004)

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scratch_random(seed):
    rs = np.random.RandomState(seed)
    params = rows_params(rs, 4, 5, 3, bias="row")
    X, y = rs.randn(6, 4), rs.randint(3, size=6)
    check(scratch_loss_fn(X, y), params, functools.partial(ref.scratch_two_layer, X=X, y=y))


def test_scratch_is_cs231n_without_l2():
    rs = np.random.RandomState(11)
    params = rows_params(rs, 4, 5, 3)  # (H,) biases work too
    X, y = rs.randn(6, 4), rs.randint(3, size=6)
    ls, gs = ref.scratch_two_layer(params, X, y)
    lc, gc = ref.cs231n_two_layer(params, X, y, 0.0)
    assert ls == pytest.approx(lc, rel=1e-14)
    for k in KEYS:
        assert gs[k].shape == params[k].shape
        np.testing.assert_allclose(gs[k], gc[k], rtol=1e-13, atol=1e-17)


def test_scratch_on_cs231n_toy_fixture():
    params, (X, y) = ref.init_toy_model(), ref.init_toy_data()
    params = {k: v.reshape(1, -1) if k[0] == "b" else v for k, v in params.items()}
    check(scratch_loss_fn(X, y), params, functools.partial(ref.scratch_two_layer, X=X, y=y))


# ----------------------------------------------------------------- all references

def _cases():
    rs = np.random.RandomState(12)
    rows = rows_params(rs, 4, 5, 3)
    Xr, yr = rs.randn(6, 4), np.array([0, 1, 2, 2, 1, 0])
    ng = ref.init_ng_params(4, 5, 3, rng=rs)
    cp, Xc, yc, reg = ref.seed003_fixture()
    return [
        ("cs231n", lambda p, X, y: ref.cs231n_two_layer(p, X, y, 0.3), rows, Xr, yr),
        ("cs231n-half", lambda p, X, y: ref.cs231n_two_layer(p, X, y, 0.3, l2_half=True), rows, Xr, yr),
        ("ng", lambda p, X, y: ref.ng_two_layer(p, X, y, 0.1), ng, Xr, yr),
        ("column", lambda p, X, y: ref.column_sigmoid_two_layer(p, X, y, reg), cp, Xc, yc),
        ("scratch", lambda p, X, y: ref.scratch_two_layer(p, X, y), rows, Xr, yr),
    ]


@pytest.mark.parametrize("name,fn,params,X,y", _cases(), ids=[c[0] for c in _cases()])
def test_references_never_write_their_inputs(name, fn, params, X, y):
    before = ({k: v.copy() for k, v in params.items()}, X.copy(), y.copy())
    loss, grads = fn(params, X, y)
    for k in KEYS:
        np.testing.assert_array_equal(params[k], before[0][k])
    np.testing.assert_array_equal(X, before[1])
    np.testing.assert_array_equal(y, before[2])
    # read-only inputs: an in-place write would raise
    fp, fX, fy = frozen(params, X, y)
    loss2, grads2 = fn(fp, fX, fy)
    assert loss2 == loss
    # results are fresh arrays, keyed and shaped like the params
    assert set(grads) == set(KEYS)
    for k in KEYS:
        assert grads[k].shape == np.shape(params[k]) and grads[k].dtype == np.float64
        assert not np.shares_memory(grads[k], params[k])
        np.testing.assert_array_equal(grads2[k], grads[k])


@pytest.mark.parametrize("name,fn,params,X,y", _cases(), ids=[c[0] for c in _cases()])
def test_references_return_float_loss(name, fn, params, X, y):
    loss, _ = fn(params, X, y)
    assert isinstance(loss, float) and np.isfinite(loss)


def test_reference_input_errors():
    params, (X, y) = ref.init_toy_model(), ref.init_toy_data()
    with pytest.raises(KeyError, match="b2"):
        ref.cs231n_two_layer({k: v for k, v in params.items() if k != "b2"}, X, y)
    with pytest.raises(ValueError, match=r"y must have shape \(5,\)"):
        ref.cs231n_two_layer(params, X, y[:3])
    with pytest.raises(TypeError, match="integer"):
        ref.scratch_two_layer(params, X, y.astype(float))
    cp, Xc, yc, reg = ref.seed003_fixture()
    with pytest.raises(ValueError, match=r"y must have shape \(3,\) for X of shape \(2, 3\)"):
        ref.column_sigmoid_two_layer(cp, Xc.T, yc, reg)  # a row-layout X for a column net
