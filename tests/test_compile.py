"""tl.compile: a traced training step replays eager's numbers, retraces when it must,
refuses what it cannot replay (changing nothing), and survives what users do between
calls."""
import random
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import cube_op
from test_ops import SPECS, operands

import tinygrad_lite as tl
from tinygrad_lite import optim
from tinygrad_lite.data import spiral
from tinygrad_lite.models import TwoLayerNet
from tinygrad_lite.nn import functional as F

STEPS = 100
TOL = {np.float64: 1e-12, np.float32: 1e-5}


# ----------------------------------------------------------------- helpers

def assert_close(actual, expected, dtype=np.float64, what=""):
    """Relative to the largest magnitude: rel <= 1e-12 (float64), 1e-5 (float32)."""
    if expected is None or actual is None:
        assert actual is None and expected is None, what
        return
    a = np.asarray(getattr(actual, "data", actual), dtype=np.float64)
    e = np.asarray(getattr(expected, "data", expected), dtype=np.float64)
    assert a.shape == e.shape, what
    scale = max(float(np.max(np.abs(e), initial=0.0)), 1e-300)
    assert float(np.max(np.abs(a - e), initial=0.0)) <= TOL[dtype] * scale, what


def assert_state_close(actual, expected, dtype=np.float64, what="state"):
    """Nested dicts/lists of arrays and numbers (an optimizer's state_dict)."""
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), what
        for k in expected:
            assert_state_close(actual[k], expected[k], dtype, f"{what}[{k!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), what
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_state_close(a, e, dtype, f"{what}[{i}]")
    elif isinstance(expected, np.ndarray):
        assert_close(actual, expected, dtype, what)
    else:
        assert actual == pytest.approx(expected, rel=TOL[dtype]), what


def toy_data(dtype=np.float64, n=5):
    """cs231n's toy problem: 5 samples, 4 features, 3 classes."""
    rng = np.random.RandomState(1)
    return (10 * rng.randn(n, 4)).astype(dtype), np.array([0, 1, 2, 2, 1] * (n // 5))


class HandNet:
    """The two-layer net written with Tensor ops (a cs231n solution's forward)."""

    def __init__(self, dtype=np.float64, sizes=(4, 10, 3), seed=0, std=1e-1):
        D, H, C = sizes
        rng = np.random.RandomState(seed)
        self.W1 = tl.Tensor((std * rng.randn(D, H)).astype(dtype), requires_grad=True, name="W1")
        self.b1 = tl.Tensor(np.zeros(H, dtype), requires_grad=True, name="b1")
        self.W2 = tl.Tensor((std * rng.randn(H, C)).astype(dtype), requires_grad=True, name="W2")
        self.b2 = tl.Tensor(np.zeros(C, dtype), requires_grad=True, name="b2")

    def parameters(self):
        return [self.W1, self.b1, self.W2, self.b2]

    def scores(self, X):
        return tl.maximum(0, X @ self.W1 + self.b1) @ self.W2 + self.b2

    def loss(self, X, y, reg=0.05):
        return F.cross_entropy(self.scores(X), y) + reg * ((self.W1 * self.W1).sum()
                                                           + (self.W2 * self.W2).sum())


def update_by_hand(params, lr=0.05):
    """The update users write without an optimizer: ``p -= lr * p.grad; p.grad = None``."""
    with tl.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None


def twins(step, make_net=HandNet):
    """``step(net, *args)`` on two equal nets: (the eager step, its parameters, the
    compiled step, its parameters)."""
    eager_net, net = make_net(), make_net()
    return (lambda *args: step(eager_net, *args), eager_net.parameters(),
            tl.compile(lambda *args: step(net, *args)), net.parameters())


def sgd_step_of(net, X, y):
    """One SGD step of ``net`` on ``(X, y)`` with the library's update."""
    loss = net.loss(X, y)
    loss.backward()
    update_by_hand(net.parameters())
    return loss


def replays_like_eager_in_one_trace(step, *args):
    """``step(net, *args)`` compiled gives eager's results over STEPS calls, traced once."""
    eager, eager_params, compiled, params = twins(step)
    run_both(eager, eager_params, compiled, params, [args] * STEPS)
    assert compiled.traces == 1


def made_twice(make):
    """``make()`` returns a step and what it works on: (the eager step, its state, the
    compiled step, its state), from two calls."""
    (eager, *eager_state), (step, *state) = make(), make()
    unpack = (lambda rest: rest[0]) if len(state) == 1 else tuple
    return eager, unpack(eager_state), tl.compile(step), unpack(state)


def make_model(kind, dtype, sizes=(4, 10, 3)):
    if kind == "TwoLayerNet":
        np.random.seed(0)
        net = TwoLayerNet(*sizes, std=1e-1, dtype=dtype)
        return net, list(net.parameters()), lambda X, y: net.loss_tensor(X, y, reg=0.05)
    net = HandNet(dtype, sizes)
    return net, net.parameters(), net.loss


def make_step(kind, update, dtype, sizes=(4, 10, 3), lr=0.05):
    """A training step as users write it, and its optimizer (None: a manual update)."""
    _, params, loss_fn = make_model(kind, dtype, sizes)
    if update == "no_grad":
        def step(X, y):
            loss = loss_fn(X, y)
            loss.backward()
            update_by_hand(params, lr)
            return loss
        return step, params, None
    opt = (optim.SGD(params, lr=lr, momentum=0.9) if update == "sgd"
           else optim.Adam(params, lr=lr / 5))

    def step(X, y):
        opt.zero_grad()
        loss = loss_fn(X, y)
        loss.backward()
        opt.step()
        return loss
    return step, params, opt


def run_both(eager_step, eager_params, compiled_step, compiled_params, batches, dtype=np.float64,
             eager_opt=None, compiled_opt=None, compare_grads=True):
    """Call both steps on each batch, comparing loss, parameters, .grad and optimizer
    state after every call; returns the compiled step's results."""
    results = []
    for i, args in enumerate(batches):
        expected, actual = eager_step(*args), compiled_step(*args)
        results.append(actual)
        assert_close(actual, expected, dtype, f"loss at step {i}")
        for p, q in zip(compiled_params, eager_params):
            assert_close(p.data, q.data, dtype, f"{p.name} at step {i}")
            if compare_grads:
                assert_close(p.grad, q.grad, dtype, f"{p.name}.grad at step {i}")
        if eager_opt is not None:
            assert_state_close(compiled_opt.state_dict(), eager_opt.state_dict(), dtype)
    return results


# ----------------------------------------------------------------- equal to eager

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("update", ["sgd", "adam", "no_grad"])
@pytest.mark.parametrize("kind", ["TwoLayerNet", "tensor ops"])
def test_two_layer_net_compiled_equals_eager_over_100_steps(kind, update, dtype):
    X, y = toy_data(dtype)
    eager, eager_params, eager_opt = make_step(kind, update, dtype)
    step, params, opt = make_step(kind, update, dtype)
    compiled = tl.compile(step)
    run_both(eager, eager_params, compiled, params, [(X, y)] * STEPS, dtype, eager_opt, opt)
    assert compiled.traces == 1
    if opt is not None:
        assert opt.state_dict()["param_groups"] == eager_opt.state_dict()["param_groups"]


def test_compiled_step_feeds_new_batches_each_call():
    """Arrays are inputs: a new batch of the same shape replays, with its values."""
    X, y = spiral(points_per_class=40, num_classes=3, seed=0)
    eager, eager_params, eager_opt = make_step("TwoLayerNet", "sgd", np.float64, (2, 16, 3))
    step, params, opt = make_step("TwoLayerNet", "sgd", np.float64, (2, 16, 3))
    compiled = tl.compile(step)
    rng = np.random.RandomState(3)
    batches = []
    for _ in range(30):
        idx = rng.choice(len(X), 24)
        batches.append((X[idx], y[idx]))
    run_both(eager, eager_params, compiled, params, batches, np.float64, eager_opt, opt)
    assert compiled.traces == 1


def test_spiral_softmax_and_two_layer_net_over_100_steps():
    """The spiral problem of the cs231n notes: the whole set each step, a wide net."""
    X, y = spiral(points_per_class=100, num_classes=3, seed=0)
    eager, eager_params, _ = make_step("tensor ops", "no_grad", np.float64, (2, 100, 3), lr=1.0)
    step, params, _ = make_step("tensor ops", "no_grad", np.float64, (2, 100, 3), lr=1.0)
    compiled = tl.compile(step)
    losses = run_both(eager, eager_params, compiled, params, [(X, y)] * STEPS)
    assert compiled.traces == 1
    assert float(losses[-1].data) < float(losses[0].data) - 0.2  # the replays train it


def softsign_op():
    class SoftSign(tl.Function):
        """x / (1 + |x|) with NumPy's functions through xp (abs, where)."""

        @staticmethod
        def forward(xp, x):
            return x / (1 + xp.abs(x))

        @staticmethod
        def backward(xp, g, out, xs, needs):
            d = 1 + xp.abs(xs[0])
            return (g / (d * d),)
    return SoftSign


@pytest.mark.parametrize("make_op", [cube_op, softsign_op])
def test_a_user_defined_op_written_with_xp_is_traced(make_op):
    op = make_op()
    assert tl.OPS[op.name] is op
    X, y = toy_data()

    def step(net, X, y):
        h = op.apply(X @ net.W1 + net.b1) * 0.01
        loss = F.cross_entropy(h @ net.W2 + net.b2, y)
        loss.backward()
        update_by_hand(net.parameters())
        return loss
    replays_like_eager_in_one_trace(step, X, y)


def test_max_detach_shift_in_a_hand_written_softmax():
    """cs231n's numerically stable softmax: ``scores - scores.max(...)``, detached."""
    X, y = toy_data()

    def step(net, X, y):
        scores = net.scores(X)
        shifted = scores - scores.max(axis=1, keepdims=True).detach()
        log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
        loss = -log_probs[np.arange(len(y)), y].mean()
        loss.backward()
        update_by_hand(net.parameters())
        return loss
    replays_like_eager_in_one_trace(step, X, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_draws_the_same_masks_as_eager(dtype):
    X, y = toy_data(dtype)

    def make():
        net = HandNet(dtype)
        params = net.parameters()
        opt = optim.SGD(params, lr=0.05)

        def step(X, y):
            opt.zero_grad()
            h = F.dropout(tl.maximum(0, X @ net.W1 + net.b1), p=0.3)
            loss = F.cross_entropy(h @ net.W2 + net.b2, y)
            loss.backward()
            opt.step()
            return loss
        return step, params
    eager, eager_params, compiled, params = made_twice(make)
    losses = []
    for i in range(STEPS):
        np.random.seed(i)
        expected = eager(X, y)
        state_after_eager = np.random.get_state()
        np.random.seed(i)
        actual = compiled(X, y)
        assert_close(actual, expected, dtype)
        for p, q in zip(params, eager_params):
            assert_close(p.data, q.data, dtype)
        after = np.random.get_state()  # the replay drew as many numbers as eager
        assert after[2] == state_after_eager[2] and np.array_equal(after[1], state_after_eager[1])
        losses.append(float(actual.data))
    assert compiled.traces == 1
    assert len(set(losses)) > STEPS // 2  # a new mask each call, not the traced one


def test_grad_accumulates_across_calls_when_not_zeroed():
    X, y = toy_data()

    def step(net, X, y):
        loss = net.loss(X, y)
        loss.backward()
        return loss
    eager, eager_params, compiled, params = twins(step)
    run_both(eager, eager_params, compiled, params, [(X, y)] * 10)
    # the first call (no .grad yet) and the later ones (adding into it) are two traces
    assert compiled.traces == 2
    # zeroing between calls goes back to the first trace
    for p, q in zip(params, eager_params):
        p.grad = q.grad = None
    run_both(eager, eager_params, compiled, params, [(X, y)] * 3)
    assert compiled.traces == 2


def test_grad_accumulates_into_a_gradient_the_user_set():
    X, y = toy_data()

    def step(net, X, y):
        loss = net.loss(X, y)
        loss.backward()
        with tl.no_grad():
            net.W1 -= 0.01 * net.W1.grad
        return loss
    eager, eager_params, compiled, params = twins(step)
    for i in range(5):
        for p, q in zip(params, eager_params):  # the user's own gradient, each call
            p.grad = np.full(p.shape, 0.1 * i)
            q.grad = np.full(q.shape, 0.1 * i)
        run_both(eager, eager_params, compiled, params, [(X, y)])


def test_learning_rate_scheduler_and_rmsprop_inside_the_step():
    X, y = toy_data()

    def make():
        net = HandNet()
        opt = optim.RMSprop(net.parameters(), lr=1e-2)
        sched = optim.ExponentialLR(opt, gamma=0.95)

        def step(X, y):
            opt.zero_grad()
            loss = net.loss(X, y)
            loss.backward()
            opt.step()
            sched.step()  # a decay per call: replayed, not frozen
            return loss
        return step, net.parameters(), opt, sched
    eager, (eager_params, eager_opt, eager_sched), compiled, (params, opt, sched) = \
        made_twice(make)
    run_both(eager, eager_params, compiled, params, [(X, y)] * 30, np.float64, eager_opt, opt)
    assert opt.lr == eager_opt.lr == pytest.approx(1e-2 * 0.95 ** 30)
    assert sched.state_dict() == eager_sched.state_dict()


def test_tl_grad_inside_the_step_first_and_second_order():
    """``tl.grad`` is traced; ``create_graph=True`` there too (a gradient penalty)."""
    X, _ = toy_data()

    def make():
        W = tl.Tensor(np.random.RandomState(0).randn(4, 3) * 0.1, requires_grad=True, name="W")

        def step(X):
            nonlocal W
            out = (X @ W).tanh()
            (g,) = tl.grad((out * out).sum(), [W], create_graph=True)
            penalty = (g * g).sum()
            (dW,) = tl.grad(penalty + out.sum(), [W])
            with tl.no_grad():
                W -= 1e-3 * dW
            return penalty, dW
        return step, [W]
    eager, eager_params, compiled, params = made_twice(make)
    for _ in range(10):
        (pe, ge), (pc, gc) = eager(X), compiled(X)
        assert_close(pc, pe)
        assert_close(gc, ge)
        assert_close(params[0].data, eager_params[0].data)
    assert compiled.traces == 1


# ----------------------------------------------------------------- what traces again

def test_new_shape_dtype_or_constant_traces_again_same_shapes_do_not():
    X, y = toy_data()
    net = HandNet()

    @tl.compile
    def step(X, y, reg):
        loss = net.loss(X, y, reg)
        loss.backward()
        update_by_hand(net.parameters())
        return loss

    step(X, y, 0.05)
    assert step.traces == 1
    step(X + 1, y[::-1].copy(), 0.05)          # new values, same shapes: a replay
    step(X[::-1], y, 0.05)                     # a view of another layout: a replay
    assert step.traces == 1
    step(X[:3], y[:3], 0.05)                   # a new shape
    assert step.traces == 2
    step(X.astype(np.float32), y, 0.05)        # a new dtype
    assert step.traces == 3
    step(X, y.astype(np.int32), 0.05)          # the labels' dtype
    assert step.traces == 4
    step(X, y, 0.1)                            # a new Python constant
    assert step.traces == 5
    step(X, y, 0.05)                           # every earlier signature is kept
    step(X[:3], y[:3], 0.05)
    step(X, y, 0.1)
    assert step.traces == 5
    step.clear()
    step(X, y, 0.05)
    assert step.traces == 6


def test_a_new_python_constant_gives_its_own_numbers():
    X, y = toy_data()
    eager_net, net = HandNet(), HandNet()

    def make(n):
        def step(X, y, lr):
            loss = n.loss(X, y)
            loss.backward()
            update_by_hand(n.parameters(), lr)
            return loss
        return step
    eager, compiled = make(eager_net), tl.compile(make(net))
    run_both(eager, eager_net.parameters(), compiled, net.parameters(),
             [(X, y, lr) for lr in (0.1, 0.01, 0.1, 0.01, 0.05)])
    assert compiled.traces == 3


def test_other_parameters_trace_again():
    """Tensors that require grad are identified, not described by shape: another
    model's parameters are another trace."""
    X, y = toy_data()
    nets = [HandNet(seed=s) for s in (0, 1)]
    eager_nets = [HandNet(seed=s) for s in (0, 1)]
    step = sgd_step_of
    compiled = tl.compile(step)
    for i in range(6):
        k = i % 2
        run_both(lambda X, y, k=k: step(eager_nets[k], X, y), eager_nets[k].parameters(),
                 lambda X, y, k=k: compiled(nets[k], X, y), nets[k].parameters(), [(X, y)])
    assert compiled.traces == 2


def test_a_cache_of_signatures_is_bounded(monkeypatch):
    from tinygrad_lite import compiler
    monkeypatch.setattr(compiler, "MAX_SIGNATURES", 4)
    W = tl.Tensor(np.ones(3), requires_grad=True)

    @tl.compile
    def step(x, k):
        loss = (W * x * k).sum()
        loss.backward()
        W.grad = None
        return loss
    for k in range(compiler.MAX_SIGNATURES + 5):
        assert float(step(np.ones(3), float(k)).data) == 3.0 * k
    assert len(step._cache) == compiler.MAX_SIGNATURES


# ----------------------------------------------------------------- refusals

KEPT: list = []


class _Holder:
    pass


def legacy_op():
    class Legacy(tl.Function):
        """A user op of the older NumPy-only signature (no xp): cannot be traced."""

        @staticmethod
        def forward(x):
            return 2 * x

        @staticmethod
        def backward(g, out, xs, needs):
            return (2 * g,)
    return Legacy


def _raw_write_through_an_alias(loss, X, net):
    net.raw[...] *= 0.5  # the real array of W1, named before the call


REFUSALS = {
    ".item()": (lambda loss, X, net: loss.item(), ".item()"),
    "float()": (lambda loss, X, net: float(loss), "float()"),
    "int()": (lambda loss, X, net: int(loss), "int()"),
    "bool()": (lambda loss, X, net: bool(loss), "bool()"),
    "if on a tensor": (lambda loss, X, net: 1 if loss > 1 else 0, "an `if`"),
    ".tolist()": (lambda loss, X, net: net.W1.tolist(), ".tolist()"),
    ".numpy()": (lambda loss, X, net: net.W1.numpy(), ".numpy()"),
    "np.asarray(t)": (lambda loss, X, net: np.asarray(net.scores(X)), "np.asarray"),
    "a formatted print": (lambda loss, X, net: f"{loss:.3f}", ".item()"),
    "data-dependent branching": (
        lambda loss, X, net: net.W1 * 2 if (net.W1.data > 0).any() else net.W1, "an `if`"),
    "a value read from .data": (lambda loss, X, net: float(np.linalg.norm(net.W1.data)),
                                "float()"),
    "np.nonzero": (lambda loss, X, net: np.nonzero(X), "depends on the values"),
    "a boolean mask": (lambda loss, X, net: X[X > 0], "boolean mask"),
    "np.random inside": (lambda loss, X, net: net.W1 * np.random.rand(), "np.random"),
    "a default_rng inside": (lambda loss, X, net: net.W1 * net.rng.random(), "Generator"),
    "Python's random inside": (lambda loss, X, net: net.W1 * random.random(), "random module"),
    "a value kept in an attribute": (
        lambda loss, X, net: setattr(net.holder, "scores", net.scores(X)), "still referenced"),
    "a value kept in a global": (lambda loss, X, net: KEPT.append(loss), "still referenced"),
    "a raw write into a parameter": (
        lambda loss, X, net: net.W1.data.__isub__(0.1), "raw NumPy write"),
    "a legacy NumPy-only op": (lambda loss, X, net: legacy_op().apply(net.W1), "no xp"),
    "backward(create_graph=True)": (
        lambda loss, X, net: (net.W1 * net.W1).sum().backward(create_graph=True), "create_graph"),
    "work the replay cannot reproduce": (_raw_write_through_an_alias, "did not reproduce"),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refused_at_trace_time_naming_it_and_nothing_changes(name):
    body, words = REFUSALS[name]
    X, y = toy_data()
    net = HandNet()
    net.rng = np.random.default_rng(0)
    net.holder = _Holder()
    net.raw = net.W1.data
    opt = optim.Adam(net.parameters(), lr=1e-2)
    sched = optim.ExponentialLR(opt, 0.9)
    for _ in range(2):  # some optimizer state and a gradient to keep
        loss = net.loss(X, y)
        loss.backward()
        opt.step()
        sched.step()

    def step(X, y):
        loss = net.loss(X, y)
        loss.backward()  # adds into the .grad left above
        opt.step()
        sched.step()
        body(loss, X, net)
        return loss

    before = [(p.data, p.data.copy(), p.grad, p.grad.copy()) for p in net.parameters()]
    opt_before, sched_before = opt.state_dict(), sched.state_dict()
    rng_before, gen_before, py_before = np.random.get_state(), net.rng.bit_generator.state, \
        random.getstate()
    compiled = tl.compile(step)
    try:
        with pytest.raises(tl.TraceError) as info:
            compiled(X, y)
    finally:
        KEPT.clear()
    assert words in str(info.value), str(info.value)
    assert isinstance(info.value, RuntimeError)
    for p, (data, values, grad, grad_values) in zip(net.parameters(), before):
        assert p.data is data and type(p.data) is np.ndarray
        np.testing.assert_array_equal(p.data, values)
        assert p.grad is grad
        np.testing.assert_array_equal(p.grad, grad_values)
    assert_state_close(opt.state_dict(), opt_before)
    assert sched.state_dict() == sched_before
    after = np.random.get_state()
    assert after[2] == rng_before[2] and np.array_equal(after[1], rng_before[1])
    assert net.rng.bit_generator.state == gen_before
    assert random.getstate() == py_before
    # and the model trains on, eagerly, as if the refused call had never been made
    loss = net.loss(X, y)
    loss.backward()
    opt.step()


def test_a_refusal_names_the_op_being_traced():
    W = tl.Tensor(np.ones((2, 2)), requires_grad=True)

    class Peek(tl.Function):
        name = "peek"

        @staticmethod
        def forward(xp, x):
            return x * float(x.sum())  # a Python number from the values

        @staticmethod
        def backward(xp, g, out, xs, needs):
            return (g,)

    with pytest.raises(tl.TraceError, match="peek forward"):
        tl.compile(lambda: Peek.apply(W).sum())()


def test_a_label_equal_to_ignore_index_is_refused():
    W = tl.Tensor(np.ones((4, 3)), requires_grad=True)
    step = tl.compile(lambda X, y: F.cross_entropy(X @ W, y, ignore_index=1))
    X, y = toy_data()
    with pytest.raises(tl.TraceError, match="ignore_index"):
        step(X, y)
    assert step(X, np.array([0, 2, 2, 0, 0])).shape == ()  # no label is ignore_index


def test_a_label_out_of_range_in_a_replay_raises_as_eagerly():
    W = tl.Tensor(np.ones((4, 3)), requires_grad=True)
    step = tl.compile(lambda X, y: F.cross_entropy(X @ W, y))
    X, y = toy_data()
    step(X, y)
    with pytest.raises(IndexError, match="out of range"):
        step(X, np.array([0, 1, 2, 3, 1]))
    assert step.traces == 1


# ----------------------------------------------------------------- modes and threads

def test_nested_compile_is_part_of_the_outer_trace():
    X, y = toy_data()

    def make():
        net = HandNet()

        def inner(X, y):
            loss = net.loss(X, y)
            loss.backward()
            return loss

        def outer(X, y, inner):
            loss = inner(X, y)
            update_by_hand(net.parameters())
            return loss * 2
        return inner, outer, net.parameters()
    eager_inner, eager_outer, eager_params = make()
    inner, outer, params = make()
    compiled_inner = tl.compile(inner)
    compiled_outer = tl.compile(outer)
    run_both(lambda X, y: eager_outer(X, y, eager_inner), eager_params,
             lambda X, y: compiled_outer(X, y, compiled_inner), params, [(X, y)] * 10)
    assert compiled_outer.traces == 1 and compiled_inner.traces == 0


def test_detect_anomaly_runs_the_function_eagerly():
    X, _ = toy_data()
    W = tl.Tensor(np.ones((4, 3)), requires_grad=True)
    step = tl.compile(lambda X: (X @ W).log().sum())  # rows of X @ W below 0: nan
    with tl.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(FloatingPointError, match="log forward"):
            step(X)
    assert step.traces == 0
    with np.errstate(invalid="ignore"):
        assert np.isnan(step(X).data)  # traced outside anomaly mode: nan, as eagerly
    with tl.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(FloatingPointError):
            step(X)  # a replay is never taken under anomaly mode
    assert step.traces == 1


def test_threads_each_with_its_own_compiled_step():
    X, y = toy_data()
    expected = {}
    for k in range(2):
        step, params, _ = make_step("tensor ops", "adam", np.float64)
        for _ in range(30):
            step(X + k, y)
        expected[k] = [p.data.copy() for p in params]
    results, errors = {}, []
    barrier = threading.Barrier(2)

    def work(k):
        try:
            step, params, _ = make_step("tensor ops", "adam", np.float64)
            compiled = tl.compile(step)
            barrier.wait()  # both trace at the same time
            for _ in range(30):
                compiled(X + k, y)
            results[k] = ([p.data.copy() for p in params], compiled.traces)
        except BaseException as e:  # noqa: BLE001  reported by the main thread
            errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for k in range(2):
        arrays, traces = results[k]
        assert traces == 1
        for a, e in zip(arrays, expected[k]):
            assert_close(a, e)


def test_no_grad_around_the_call_is_its_own_trace():
    X, y = toy_data()
    net = HandNet()
    step = tl.compile(lambda X: net.scores(X))
    with_graph = step(X)
    with tl.no_grad():
        without = step(X)
    assert step.traces == 2
    np.testing.assert_array_equal(with_graph.data, without.data)


# ----------------------------------------------------------------- adversarial

def _pair(kind="tensor ops", update="sgd"):
    eager, eager_params, eager_opt = make_step(kind, update, np.float64)
    step, params, opt = make_step(kind, update, np.float64)
    return (eager, eager_params, eager_opt), (tl.compile(step), params, opt)


def _both(e, c, X, y, steps=1):
    for _ in range(steps):
        run_both(e[0], e[1], c[0], c[1], [(X, y)], np.float64, e[2], c[2])


def test_inputs_changed_in_place_between_calls():
    e, c = _pair()
    Xe, ye = toy_data()
    Xc, yc = Xe.copy(), ye.copy()
    for i in range(5):
        assert_close(c[0](Xc, yc), e[0](Xe, ye))
        Xe *= 0.5
        Xc *= 0.5
        ye[i % 5] = yc[i % 5] = (ye[i % 5] + 1) % 3
        for p, q in zip(c[1], e[1]):
            assert_close(p.data, q.data)
    assert c[0].traces == 1


def test_parameters_given_new_arrays_and_optimizer_state_loaded_between_calls():
    e, c = _pair("TwoLayerNet", "adam")
    X, y = toy_data()
    _both(e, c, X, y, 3)
    rng = np.random.RandomState(7)
    fresh = [0.1 * rng.randn(*p.shape) for p in e[1]]
    for params in (e[1], c[1]):
        for p, a in zip(params, fresh):
            p.data = a.copy()  # a new array object
    _both(e, c, X, y, 3)
    opt_state = e[2].state_dict()
    e[2].load_state_dict(opt_state)
    c[2].load_state_dict(opt_state)
    _both(e, c, X, y, 3)
    assert c[0].traces == 1


def test_two_layer_net_load_state_dict_between_calls():
    X, y = toy_data()

    def make():
        np.random.seed(0)
        net = TwoLayerNet(4, 10, 3, std=1e-1)
        opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)

        def step(X, y):
            opt.zero_grad()
            loss = net.loss_tensor(X, y, 0.05)
            loss.backward()
            opt.step()
            return loss
        return net, opt, step
    ne, oe, se = make()
    nc, oc, sc = make()
    sc = tl.compile(sc)
    saved = ne.state_dict()
    for i in range(6):
        run_both(se, list(ne.parameters()), sc, list(nc.parameters()), [(X, y)], np.float64,
                 oe, oc)
        if i == 2:
            ne.load_state_dict(saved)
            nc.load_state_dict(saved)
        if i == 4:
            ne.params["W1"] = saved["W1"] * 2
            nc.params["W1"] = saved["W1"] * 2
    assert sc.traces == 1


def test_learning_rate_changed_on_the_optimizer_between_calls():
    for update in ("sgd", "adam"):
        e, c = _pair(update=update)
        X, y = toy_data()
        for i in range(6):
            e[2].lr = c[2].lr = 0.05 / (i + 1)
            e[2].param_groups[0]["lr"] = c[2].param_groups[0]["lr"] = 0.05 / (i + 2)
            _both(e, c, X, y)
        assert c[0].traces == 1


def test_grad_set_by_the_user_between_calls():
    X, y = toy_data()

    def step(net, X, y):  # accumulates: no zero_grad
        loss = net.loss(X, y)
        loss.backward()
        with tl.no_grad():
            for p in net.parameters():
                p -= 0.01 * p.grad
        return loss
    eager, eager_params, compiled, params = twins(step)
    for i in range(8):
        run_both(eager, eager_params, compiled, params, [(X, y)])
        for p, q in zip(params, eager_params):
            if i % 3 == 0:
                p.grad = q.grad = None
            elif i % 3 == 1:
                p.grad, q.grad = np.full(p.shape, 0.5), np.full(q.shape, 0.5)
            else:
                p.grad *= 0.5  # in place, into the array the replay stored
                q.grad *= 0.5


def test_a_grad_stored_by_a_replay_is_the_callers_own():
    """A gradient computed from constants only is still a new array at each call."""
    C = np.arange(3.0)

    def make():
        W = tl.Tensor(np.ones(3), requires_grad=True)

        def step():
            W.grad = None
            loss = (W * C).sum()
            loss.backward()
            return loss
        return step, W
    eager, We, compiled, Wc = made_twice(make)
    kept = []
    for _ in range(4):
        eager()
        compiled()
        np.testing.assert_array_equal(Wc.grad, We.grad)
        kept.append(Wc.grad)
        Wc.grad *= 10  # the user's change to this call's gradient
        We.grad *= 10
    assert len({id(g) for g in kept}) == len(kept)


def test_an_argument_aliasing_a_parameter():
    X, _ = toy_data()

    def make():
        W = tl.Tensor(np.random.RandomState(0).randn(4, 3), requires_grad=True, name="W")

        def step(A, X):
            nonlocal W
            loss = ((X @ W) * (X @ A)).sum()
            loss.backward()
            with tl.no_grad():
                W -= 1e-4 * W.grad
            W.grad = None
            return loss + (X @ A).sum()  # A read again after W changed in place
        return step, W
    eager, We, compiled, Wc = made_twice(make)
    for i in range(6):
        # W's own array, a view of it, a copy, a Tensor sharing it: all one signature
        arg = [lambda W: W.data, lambda W: W.data[:, :], lambda W: W.data.copy(),
               lambda W: tl.Tensor(W.data), lambda W: W.detach(), lambda W: W.data][i]
        assert_close(compiled(arg(Wc), X), eager(arg(We), X))
        assert_close(Wc.data, We.data)


def test_two_tensors_that_shared_an_array_no_longer_do():
    X, _ = toy_data()

    def make():
        W = tl.Tensor(np.random.RandomState(0).randn(4, 3), requires_grad=True, name="W")
        return W, W.detach()

    def step(W, T, X):
        loss = ((X @ W) * (X @ T)).sum()
        loss.backward()
        with tl.no_grad():
            W -= 1e-4 * W.grad
        W.grad = None
        return loss
    (We, Te), (Wc, Tc) = make(), make()
    compiled = tl.compile(step)
    for i in range(5):
        assert_close(compiled(Wc, Tc, X), step(We, Te, X))
        assert_close(Wc.data, We.data)
        if i == 1:
            We.data = We.data.copy()
            Wc.data = Wc.data.copy()


def test_returned_arrays_kept_or_changed_by_the_user():
    X, y = toy_data()

    def step(net, X, y):
        loss = net.loss(X, y)
        loss.backward()
        grad = net.W2.grad
        update_by_hand(net.parameters())
        return loss, grad, net.scores(X).data
    eager, eager_params, compiled, params = twins(step)
    kept, expected = [], []
    for i in range(8):
        out, want = compiled(X, y), eager(X, y)  # (checked against eager: unaffected)
        for a, b in zip(out, want):
            assert_close(a, b)
        if i % 2:  # kept as it is
            kept.append(out)
            expected.append([np.array(getattr(b, "data", b), copy=True) for b in want])
        else:  # written into by the user
            out[0].data[...] = 1e9
            out[1][...] = 1e9
            out[2][...] = 1e9
    for out, want in zip(kept, expected):  # each call's results are still its own
        for a, b in zip(out, want):
            assert_close(a, b)
    for p, q in zip(params, eager_params):
        assert_close(p.data, q.data)


def test_a_returned_array_written_by_the_user_does_not_reach_the_next_call():
    X, y = toy_data()
    e, c = _pair()
    for _ in range(4):
        out, want = c[0](X, y), e[0](X, y)
        assert_close(out, want)
        out.data[...] = np.nan
        del out


def test_view_arguments():
    big = np.random.RandomState(3).randn(12, 8)
    _, y = toy_data()
    e, c = _pair()
    views = [big[:5, :4], big[::2, :4][:5], big[1:6, 4:], big[:5, :4].T.T, big[6:11, ::2]]
    for v in views * 2:
        run_both(e[0], e[1], c[0], c[1], [(v, y)], np.float64, e[2], c[2])
        big[...] += 0.25  # the base changes under the views
    assert c[0].traces == 1


def test_tensors_and_data_of_outside_arrays_used_as_constants():
    """A Tensor argument that does not require grad is an input like an array."""
    X, y = toy_data()
    e, c = _pair()
    Xt = tl.Tensor(X.copy())
    for _ in range(4):
        run_both(e[0], e[1], c[0], c[1], [(Xt, y)])
        Xt.data *= 1.5
    assert c[0].traces == 1


# ----------------------------------------------------------------- every op

@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=4)
@given(data=st.data())
def test_every_op_replays_its_forward_and_backward(name, data):
    """Each primitive and composite of the op table, traced and replayed, gives eager's
    output and gradients (its array operands are inputs of the replay)."""
    case = data.draw(st.composite(lambda draw: SPECS[name](draw))(), label="case")
    ops_, grads = operands(case)
    with np.errstate(all="ignore"):
        out = case.fn(*ops_)
        seed = np.random.default_rng(len(case.desc)).uniform(-1, 1, out.shape)
        expected = tl.grad(out, grads, grad_outputs=seed)

        def step(*operands_):
            result = case.fn(*operands_)
            result.backward(seed)
            return result
        compiled = tl.compile(step)
        for _ in range(2):
            for t in grads:
                t.grad = None
            try:
                result = compiled(*ops_)
            except tl.TraceError as e:  # a mask Tensor picks a value-dependent shape
                assert "boolean mask" in str(e) and case.desc.startswith("bool_"), case.desc
                return
            np.testing.assert_allclose(result.data, out.data, rtol=1e-12, atol=0,
                                       err_msg=case.desc)
            for t, g in zip(grads, expected):
                np.testing.assert_allclose(t.grad, g, rtol=1e-12, atol=0, err_msg=case.desc)
    assert compiled.traces == 1


# ----------------------------------------------------------------- Python state a replay reads

def test_a_module_switched_to_eval_traces_again():
    """Dropout reads the module's mode in Python: a replay holds only while it is the
    same."""
    from tinygrad_lite import nn

    def make():
        np.random.seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    eager, model = make(), make()
    X, _ = toy_data()
    forward = tl.compile(lambda X: model(X).sum())
    for mode in (True, False, True, False):
        eager.train(mode)
        model.train(mode)
        np.random.seed(1)
        expected = eager(X).sum()
        np.random.seed(1)
        assert_close(forward(X), expected)
    assert forward.traces == 2


def test_a_parameter_that_stops_requiring_grad_traces_again():
    X, y = toy_data()
    nets = HandNet(), HandNet()

    def make(net):
        def step(X, y):
            loss = net.loss(X, y)
            loss.backward()
            with tl.no_grad():
                for p in net.parameters():
                    if p.grad is not None:
                        p -= 0.05 * p.grad
                    p.grad = None
            return loss
        return step
    eager, compiled = make(nets[0]), tl.compile(make(nets[1]))
    for frozen in (False, True, False):
        for net in nets:
            net.W1.requires_grad_(not frozen)
        run_both(eager, nets[0].parameters(), compiled, nets[1].parameters(), [(X, y)] * 2)
    assert compiled.traces == 2


def test_compile_on_a_method_traces_per_instance():
    X, y = toy_data()

    class Trainer:
        def __init__(self):
            self.net = HandNet()
            self.opt = optim.SGD(self.net.parameters(), lr=0.05)

        def step(self, X, y):
            self.opt.zero_grad()
            loss = self.net.loss(X, y)
            loss.backward()
            self.opt.step()
            return loss

    class CompiledTrainer(Trainer):
        step = tl.compile(Trainer.step)

    eager = [Trainer(), Trainer()]
    compiled = [CompiledTrainer(), CompiledTrainer()]
    for i in range(6):
        e, c = eager[i % 2], compiled[i % 2]
        run_both(e.step, e.net.parameters(), c.step, c.net.parameters(), [(X, y)])
    assert CompiledTrainer.step.traces == 2


def test_an_object_that_dies_cannot_lend_its_id_to_a_new_one():
    """The cache keeps the objects a signature names by identity alive."""
    X, y = toy_data()
    step = sgd_step_of
    compiled = tl.compile(step)

    def train_a_new_net():
        net, eager_net = HandNet(), HandNet()
        run_both(lambda X, y: step(eager_net, X, y), eager_net.parameters(),
                 lambda X, y: compiled(net, X, y), net.parameters(), [(X, y)] * 2)
    for _ in range(4):  # a new net each time, the old one dropped
        train_a_new_net()


def test_a_memmap_argument_is_an_input(tmp_path):
    X, y = toy_data()
    mapped = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="w+", shape=X.shape)
    mapped[...] = X
    e, c = _pair()
    for _ in range(3):
        run_both(e[0], e[1], c[0], c[1], [(mapped, y)])
        mapped *= 0.5
    assert c[0].traces == 1


def test_a_returned_view_of_a_parameter_is_read_only_as_eagerly():
    X, _ = toy_data()

    def make():
        W = tl.Tensor(np.random.RandomState(0).randn(4, 3), requires_grad=True)

        def forward(X):
            return (X @ W).sum(), W.T
        return forward, W
    eager, We, compiled, Wc = made_twice(make)
    for _ in range(2):
        (le, te), (lc, tc) = eager(X), compiled(X)
        assert_close(lc, le)
        np.testing.assert_array_equal(tc.data, te.data)
        for t in (te, tc):
            with pytest.raises(ValueError, match="read-only"):
                t.data[0, 0] = 1.0
    np.testing.assert_array_equal(Wc.data, We.data)


def test_a_graph_kept_alive_across_calls_guards_as_eagerly():
    """A graph recorded before a call and not backwarded holds the parameters' arrays
    read-only: the replay's update lifts that guard as eager's does, and stamps the
    parameters, so the old graph's backward raises instead of using the new values."""
    X, y = toy_data()
    e, c = _pair(update="adam")
    for _ in range(4):
        old = [e[1][0].sum() * 2, c[1][0].sum() * 2]  # graphs over W1, kept
        _both(e, c, X, y)
        for graph in old:
            with pytest.raises(RuntimeError, match="modified by an in-place operation"):
                graph.backward()
    assert c[0].traces == 1
    e, c = _pair(update="no_grad")
    for _ in range(3):
        old = [(X @ e[1][0]).sum(), (X @ c[1][0]).sum()]
        assert not c[1][0].data.flags.writeable  # held by the graph
        _both(e, c, X, y)
        assert not c[1][0].data.flags.writeable  # and still, after the replay
        for graph in old:
            with pytest.raises(RuntimeError, match="modified by an in-place operation"):
                graph.backward()


def test_a_backward_into_a_graph_recorded_before_the_call_is_refused():
    W = tl.Tensor(np.ones((4, 3)), requires_grad=True)
    X, _ = toy_data()
    h = (X @ W).tanh()  # recorded outside: a replay could not recompute or check it

    def step(h):
        loss = (h * h).sum()
        loss.backward()
        return loss
    with pytest.raises(tl.TraceError, match="tanh node .* recorded before the compiled call"):
        tl.compile(step)(h)
    assert W.grad is None and h.grad is None
    leaf = h.detach().requires_grad_()  # cut from that graph: fine
    assert_close(tl.compile(step)(leaf), step(h.detach().requires_grad_()))


def test_compile_a_module():
    from tinygrad_lite import nn
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    forward = tl.compile(model)
    X, _ = toy_data()
    with tl.no_grad():
        assert_close(forward(X), model(X))
        model[0].W.data[...] *= 0.5  # (no graph holds it under no_grad)
        assert_close(forward(X), model(X))
    assert forward.traces == 1 and "training" not in vars(forward)
