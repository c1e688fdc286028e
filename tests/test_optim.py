"""tinygrad_lite.optim: cs231n's update rules, in place; ExponentialLR."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn, optim
from tinygrad_lite.data import spiral
from tinygrad_lite.nn import functional as F


def _param(shape=(3, 4), seed=0):
    rng = np.random.RandomState(seed)
    p = tl.Tensor(rng.randn(*shape), requires_grad=True, name="w")
    return p, rng


def test_sgd_is_the_hand_update_in_place():
    p, rng = _param()
    data = p.data
    w0 = p.data.copy()
    g = rng.randn(3, 4)
    p.grad = g.copy()
    optim.SGD([p], lr=0.1).step()
    assert p.data is data  # in place
    np.testing.assert_array_equal(p.data, w0 - 0.1 * g)
    w_cs231n = w0.copy()
    w_cs231n += -0.1 * g  # cs231n's spelling: bit-identical
    np.testing.assert_array_equal(p.data, w_cs231n)


def test_sgd_momentum_is_cs231n_sgd_momentum():
    p, rng = _param()
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    w, v = p.data.copy(), np.zeros((3, 4))
    for _ in range(4):
        g = rng.randn(3, 4)
        p.grad = g
        opt.step()
        lr = opt.lr
        v = 0.9 * v - lr * g  # cs231n: v = mu * v - learning_rate * dw; w += v
        w = w + v
        np.testing.assert_allclose(p.data, w, rtol=1e-13, atol=1e-15)
        opt.lr = opt.lr * 0.5  # a changing lr: the cs231n rule (not PyTorch's) is used


def test_sgd_weight_decay_and_skips_params_without_grad():
    p, rng = _param()
    q, _ = _param(seed=1)
    w0, q0 = p.data.copy(), q.data.copy()
    g = rng.randn(3, 4)
    p.grad = g
    optim.SGD([p, q], lr=0.1, weight_decay=0.01).step()
    np.testing.assert_allclose(p.data, w0 - 0.1 * (g + 0.01 * w0))
    np.testing.assert_array_equal(q.data, q0)  # q.grad is None: untouched


def test_adam_is_cs231n_adam():
    p, rng = _param()
    opt = optim.Adam([p], lr=1e-2)
    w, m, v = p.data.copy(), np.zeros((3, 4)), np.zeros((3, 4))
    for t in range(1, 6):
        g = rng.randn(3, 4)
        p.grad = g
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g ** 2
        mb, vb = m / (1 - 0.9 ** t), v / (1 - 0.999 ** t)
        w = w - 1e-2 * mb / (np.sqrt(vb) + 1e-8)
        np.testing.assert_allclose(p.data, w, rtol=1e-12, atol=1e-14)


def test_rmsprop_is_cs231n_rmsprop():
    p, rng = _param()
    opt = optim.RMSprop([p], lr=1e-2, alpha=0.99)
    w, cache = p.data.copy(), np.zeros((3, 4))
    for _ in range(5):
        g = rng.randn(3, 4)
        p.grad = g
        opt.step()
        cache = 0.99 * cache + 0.01 * g ** 2
        w = w - 1e-2 * g / (np.sqrt(cache) + 1e-8)
        np.testing.assert_allclose(p.data, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_matches_torch_optimizers(name):
    torch = pytest.importorskip("torch")
    p, rng = _param()
    tp = torch.tensor(p.data.copy(), requires_grad=True)
    kw = {"SGD": dict(lr=0.1, momentum=0.9), "Adam": dict(lr=1e-2), "RMSprop": dict(lr=1e-2)}[name]
    ours, theirs = getattr(optim, name)([p], **kw), getattr(torch.optim, name)([tp], **kw)
    for _ in range(5):
        g = rng.randn(3, 4)
        p.grad = g.copy()
        tp.grad = torch.tensor(g)
        ours.step()
        theirs.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_zero_grad():
    p, _ = _param()
    p.grad = np.ones((3, 4))
    opt = optim.SGD([p], lr=0.1)
    opt.zero_grad()
    assert p.grad is None


def test_exponential_lr_schedule():
    p, _ = _param()
    opt = optim.SGD([p], lr=0.1)
    sched = optim.ExponentialLR(opt, gamma=0.95)
    lrs = []
    for _ in range(4):
        lrs.append(opt.lr)
        sched.step()
    np.testing.assert_allclose(lrs, [0.1 * 0.95 ** k for k in range(4)])
    assert sched.get_last_lr() == [opt.lr] and sched.last_epoch == 4
    assert opt.param_groups[0]["lr"] == opt.lr


def test_optimizer_errors():
    p, _ = _param()
    with pytest.raises(TypeError, match="not a Tensor"):
        optim.SGD([p.data], lr=0.1)
    with pytest.raises(TypeError, match="wrap it in a list"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="lr must be in"):
        optim.SGD([p], lr=-1.0)
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([], lr=0.1)
    with pytest.raises(ValueError, match="requires_grad"):
        optim.SGD([tl.Tensor(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD([p], lr=0.1, momentum=1.5)


def test_training_loop_with_modules():
    X, y = spiral(50, 3, seed=0)
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(2, 50), nn.ReLU(), nn.Linear(50, 3))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    sched = optim.ExponentialLR(opt, gamma=0.99)
    first = None
    for _ in range(150):
        opt.zero_grad()
        loss = F.cross_entropy(model(X), y) + F.l2_penalty([model[0].W, model[2].W], 1e-4)
        loss.backward()
        opt.step()
        sched.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first
    with tl.no_grad():
        assert (np.argmax(model(X).data, axis=1) == y).mean() > 0.8


# ----------------------------------------------------------------- state_dict

def _steps(opt, params, rng, n):
    for _ in range(n):
        for p in params:
            p.grad = rng.randn(*p.shape)
        opt.step()


@pytest.mark.parametrize("name, kw, buffers", [
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=1e-3), ["velocity"]),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-7), ["m", "v"]),
    ("RMSprop", dict(lr=1e-2, alpha=0.9), ["cache"]),
])
def test_state_dict_round_trip_continues_identically(name, kw, buffers):
    p, _ = _param()
    q, _ = _param((5,), seed=1)
    opt = getattr(optim, name)([p, q], **kw)
    _steps(opt, [p, q], np.random.RandomState(0), 3)
    opt.lr = opt.lr * 0.5  # a decayed lr is saved too
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"} and sorted(sd["state"]) == [0, 1]
    assert list(sd["state"][0]) == buffers and sd["state"][1][buffers[0]].shape == (5,)
    group = sd["param_groups"][0]
    assert group["params"] == [0, 1] and group["lr"] == opt.lr
    if name == "Adam":
        assert group["t"] == 3 and group["betas"] == (0.8, 0.99)
    # a snapshot: later steps do not change it
    saved = {i: {k: v.copy() for k, v in b.items()} for i, b in sd["state"].items()}
    p_saved, q_saved = p.data.copy(), q.data.copy()
    _steps(opt, [p, q], np.random.RandomState(1), 2)
    for i in saved:
        for k in buffers:
            np.testing.assert_array_equal(sd["state"][i][k], saved[i][k])
    # restore into fresh parameters and a fresh optimizer with other settings
    p2 = tl.Tensor(p_saved.copy(), requires_grad=True)
    q2 = tl.Tensor(q_saved.copy(), requires_grad=True)
    fresh = getattr(optim, name)([p2, q2], lr=0.5)
    assert fresh.load_state_dict(sd) is fresh and fresh.lr == group["lr"]
    p.data[...], q.data[...] = p_saved, q_saved
    opt.load_state_dict(sd)
    _steps(opt, [p, q], np.random.RandomState(2), 3)
    _steps(fresh, [p2, q2], np.random.RandomState(2), 3)
    np.testing.assert_array_equal(p2.data, p.data)
    np.testing.assert_array_equal(q2.data, q.data)
    sd["state"][0][buffers[0]][...] = 123.0  # the loaded buffers are copies
    assert not (fresh.state_dict()["state"][0][buffers[0]] == 123.0).any()


def test_state_dict_of_a_fresh_optimizer_and_plain_sgd():
    p, rng = _param()
    opt = optim.SGD([p], lr=0.1)
    assert opt.state_dict() == {"state": {}, "param_groups": [
        {"params": [0], "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0}]}
    _steps(opt, [p], rng, 2)
    assert opt.state_dict()["state"] == {}  # plain SGD keeps no buffers
    adam = optim.Adam([p])
    adam.load_state_dict(adam.state_dict())
    assert adam.t == 0 and adam.state == {}


def test_load_state_dict_errors_change_nothing():
    p, rng = _param()
    q, _ = _param((2,), seed=1)
    opt = optim.Adam([p, q], lr=1e-2)
    _steps(opt, [p, q], rng, 2)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="is for 2 parameters, this optimizer has 1"):
        optim.Adam([p]).load_state_dict(sd)
    with pytest.raises(ValueError, match="a state_dict of another optimizer"):
        optim.SGD([p, q], lr=0.1, momentum=0.9).load_state_dict(sd)
    other = optim.Adam([q, p], lr=1e-2)  # the same parameters in another order
    with pytest.raises(ValueError, match=r"m of parameter 0 .* has shape \(3, 4\), the parameter has shape \(2,\)"):
        other.load_state_dict(sd)
    with pytest.raises(TypeError, match="keys 'state' and 'param_groups'"):
        opt.load_state_dict({"lr": 0.1})
    bad = {"state": sd["state"], "param_groups": [dict(sd["param_groups"][0], betas=(0.9, 1.5))]}
    before = (opt.lr, opt.beta1, opt.beta2, opt.t)
    with pytest.raises(ValueError, match="beta2"):
        opt.load_state_dict(bad)
    assert (opt.lr, opt.beta1, opt.beta2, opt.t) == before
    with pytest.raises(ValueError, match="state index 5"):
        opt.load_state_dict({"state": {5: sd["state"][0]}, "param_groups": sd["param_groups"]})


def test_exponential_lr_state_dict():
    p, _ = _param()
    opt = optim.SGD([p], lr=0.1)
    sched = optim.ExponentialLR(opt, gamma=0.9)
    sched.step()
    sd = sched.state_dict()
    assert sd == {"gamma": 0.9, "base_lr": 0.1, "last_epoch": 1}
    other = optim.ExponentialLR(optim.SGD([p], lr=0.1), gamma=0.5).load_state_dict(sd)
    assert other.gamma == 0.9 and other.last_epoch == 1


@pytest.mark.parametrize("make", [optim.SGD, optim.Adam, optim.RMSprop])
def test_a_parameter_listed_twice_is_refused_before_it_is_stepped_twice(make):
    w = tl.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    for params in ([w, w], [w, tl.Tensor(w.data, requires_grad=True)]):
        with pytest.raises(ValueError, match=r"parameters 0 and 1 .* list it once"):
            make(params, lr=0.1)
    np.testing.assert_array_equal(w.data, [1.0, 2.0])
