"""The backward walk and its guards (tinygrad_lite/autograd.py): in-place changes
between forward and backward end in the right gradient or an error, grad mode and
group tags are per thread, a failed backward changes no gradient, the walk yields
every node once with its whole gradient; gradients accumulate as PyTorch's (each
leaf's its own array, intermediates' read-only), only what needs a gradient gets
one, the graph is freed with its root, and anomaly mode names the op."""
from __future__ import annotations

import gc
import sys
import threading
import warnings
import weakref

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import optim

MODIFIED = "modified by an in-place operation"


def leaf(values, name=None):
    return tl.Tensor(np.array(values, dtype=float), requires_grad=True, name=name)


def square_sum():
    W = leaf([1.0, 2.0, 3.0], name="W")
    return W, (W * W).sum()


# ----------------------------------------------------------------- in-place edits

def test_unchanged_graph_gives_the_gradient_and_then_the_update_works():
    W, loss = square_sum()
    loss.backward()
    np.testing.assert_array_equal(W.grad, [2.0, 4.0, 6.0])
    W.data -= 0.1 * W.grad  # the usual manual update after backward
    np.testing.assert_allclose(W.data, [0.8, 1.6, 2.4])


@pytest.mark.parametrize("change", [
    "no_grad_isub", "detach_iadd", "detach_setitem", "tensor_of_tensor_iadd", "sgd_step",
    "no_grad_view_iadd",
])
def test_a_library_in_place_change_makes_backward_raise(change):
    W, loss = square_sum()
    if change == "no_grad_isub":
        with tl.no_grad():
            W -= 1.0
    elif change == "detach_iadd":
        d = W.detach()
        d += 1.0
    elif change == "detach_setitem":
        W.detach()[0] = 100.0
    elif change == "tensor_of_tensor_iadd":
        t = tl.Tensor(W)
        t += 1.0
    elif change == "sgd_step":
        W.grad = np.ones(3)
        optim.SGD([W], lr=0.5).step()
    elif change == "no_grad_view_iadd":
        with tl.no_grad():
            v = W.reshape(3, 1)  # a view of W's array, outside the graph
            v += 1.0
    with pytest.raises(RuntimeError, match=MODIFIED) as info:
        loss.backward()
    assert "'W'" in str(info.value) and "(3,)" in str(info.value) and "mul" in str(info.value)


@pytest.mark.parametrize("change", ["data_setitem", "numpy_setitem", "data_imul",
                                    "view_then_data_imul"])
def test_a_raw_numpy_write_to_a_saved_leaf_fails_at_the_write(change):
    W = leaf([1.0, 2.0, 3.0], name="W")
    source = W.reshape(3, 1) if change == "view_then_data_imul" else W
    loss = (source * source).sum()
    with pytest.raises(ValueError, match="read-only"):
        if change == "data_setitem":
            W.data[...] = 10.0
        elif change == "numpy_setitem":
            W.numpy()[0] = 100.0
        else:
            W.data *= 2.0
    loss.backward()
    np.testing.assert_array_equal(W.grad, [2.0, 4.0, 6.0])
    W.data[...] = 10.0  # writable again once the backward completed


def test_a_users_constant_array_is_guarded_until_backward():
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    W = leaf([[0.5], [-1.0]])
    loss = (X @ W).sum()
    with pytest.raises(ValueError, match="read-only"):
        X[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        X += 1.0
    loss.backward()
    np.testing.assert_array_equal(W.grad, X.sum(axis=0, keepdims=True).T)
    X[0] = 0.0  # the user's own array is theirs again


def test_a_freed_graph_releases_its_guards():
    W = leaf([1.0, 2.0])
    loss = (W * W).sum()
    with pytest.raises(ValueError):
        W.data[0] = 5.0
    del loss  # never backwarded, but gone
    W.data[0] = 5.0
    assert W.data[0] == 5.0


@pytest.mark.parametrize("partial", ["tl.grad", "inputs="])
def test_a_backward_to_some_inputs_keeps_the_other_branches_guarded(partial):
    # V's branch was not differentiated: a raw write to V before the full backward would
    # make that backward's gradient of V wrong, so it must still fail at the write
    W, V = leaf([1.0, 1.0, 1.0]), leaf([1.0, 2.0, 3.0])
    loss = (W * W).sum() + (V * V).sum()
    if partial == "tl.grad":
        tl.grad(loss, W)
    else:
        loss.backward(inputs=[W])
    W.data[0] = 1.0  # the walk read W's branch: it is W's own array again
    with pytest.raises(ValueError, match="read-only"):
        V.data[...] = 100.0
    loss.backward()
    np.testing.assert_array_equal(V.grad, [2.0, 4.0, 6.0])
    V.data[...] = 100.0  # now every branch was read


def test_a_constant_tensor_changed_in_place_makes_backward_raise():
    X = tl.Tensor(np.array([[1.0, 2.0]]), name="X")
    W = leaf([[1.0], [1.0]])
    loss = (X @ W).sum()
    X[0, 0] = 7.0  # the library path: allowed, stamped
    with pytest.raises(RuntimeError, match=MODIFIED) as info:
        loss.backward()
    assert "'X'" in str(info.value) and "matmul" in str(info.value)


def test_an_intermediate_changed_through_detach_makes_backward_raise():
    x = leaf([1.0, -2.0, 3.0])
    h = (x * 2.0).exp()
    loss = h.sum()
    d = h.detach()
    d *= 0.0
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_optimizer_step_then_second_backward_on_the_old_graph_raises():
    W, loss = square_sum()
    loss.backward()
    opt = optim.SGD([W], lr=0.1)
    opt.step()
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_a_change_made_before_the_graph_was_recorded_is_fine():
    W = leaf([1.0, 2.0])
    with tl.no_grad():
        W -= 1.0
    (W * W).sum().backward()
    np.testing.assert_array_equal(W.grad, [0.0, 2.0])


def test_two_backwards_on_one_graph_accumulate():
    W, loss = square_sum()
    loss.backward()
    loss.backward()
    np.testing.assert_array_equal(W.grad, [4.0, 8.0, 12.0])


def test_failed_in_place_change_keeps_the_array_guarded():
    W, loss = square_sum()
    with pytest.raises(ValueError):
        with tl.no_grad():
            W -= np.ones(4)  # a shape error: nothing changed, nothing stamped
    loss.backward()
    np.testing.assert_array_equal(W.grad, [2.0, 4.0, 6.0])
    with pytest.raises(ValueError, match="read-only"):
        loss2 = (W * 1.0).sum()
        W.data[0] = 1.0
    loss2.backward()


# ----------------------------------------------------------------- threads

def run_in_thread(fn):
    errors = []

    def target():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported to the main thread
            errors.append(e)
    t = threading.Thread(target=target)
    t.start()
    return t, errors


def test_no_grad_in_one_thread_leaves_another_threads_graph_recording():
    inside, release = threading.Event(), threading.Event()

    def hold_no_grad():
        with tl.no_grad():
            inside.set()
            release.wait(5)

    t, errors = run_in_thread(hold_no_grad)
    assert inside.wait(5)
    W1 = leaf([1.0, 2.0])
    (W1 * 3.0).sum().backward()  # this thread is still in grad mode
    release.set()
    t.join()
    assert not errors
    np.testing.assert_array_equal(W1.grad, [3.0, 3.0])


def test_overlapping_no_grad_blocks_in_two_threads_restore_grad_mode():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with tl.no_grad():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with tl.no_grad():
            second_in.set()
            first_out.wait(5)

    threads = [run_in_thread(first), run_in_thread(second)]
    for t, _ in threads:
        t.join()
    assert tl.is_grad_enabled()
    assert not any(errors for _, errors in threads)
    seen = []
    t, errors = run_in_thread(lambda: seen.append(tl.is_grad_enabled()))
    t.join()
    assert seen == [True]


def test_group_tags_and_anomaly_mode_do_not_leak_across_threads():
    inside, release = threading.Event(), threading.Event()

    def hold_group():
        with tl.group("cross_entropy"), tl.detect_anomaly():
            inside.set()
            release.wait(5)

    t, errors = run_in_thread(hold_group)
    assert inside.wait(5)
    x, y = leaf([1.0]), leaf([2.0])
    out = (x + y) * 3
    assert out.groups == () and out.parents[0].groups == ()
    assert not tl.autograd.state.anomaly
    release.set()
    t.join()
    assert not errors


def test_a_switch_object_entered_twice_restores_both_levels():
    ng = tl.no_grad()
    with ng:
        with tl.enable_grad():
            with ng:
                assert not tl.is_grad_enabled()
            assert tl.is_grad_enabled()
        assert not tl.is_grad_enabled()
    assert tl.is_grad_enabled()


# ----------------------------------------------------------------- a failed backward

def failing_op(fails):
    """A user op whose backward raises ZeroDivisionError when ``fails(g)`` (made inside
    each test: the op table is restored after every test)."""
    class FailsInBackward(tl.Function):
        name = "fails_in_backward_test"

        @staticmethod
        def forward(xp, a):
            return a * 1.0

        @staticmethod
        def backward(xp, g, out, xs, needs):
            if fails(np.asarray(getattr(g, "data", g))):
                raise ZeroDivisionError("deliberate failure in the middle of the pass")
            return (g,)

        @staticmethod
        def torch(a):
            return a * 1.0
    return FailsInBackward


def test_a_backward_that_raises_mid_pass_puts_every_gradient_back():
    FailsOnSecondInput = failing_op(lambda g: True)
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    before_b = np.array([10.0, 20.0])
    b.grad = before_b.copy()
    # The walk reaches the root, the mul and b (stored) before the failing op.
    loss = (FailsOnSecondInput.apply(a * 2.0) + b * 5.0).sum()
    with pytest.raises(ZeroDivisionError):
        loss.backward()
    assert a.grad is None and loss.grad is None
    np.testing.assert_array_equal(b.grad, before_b)
    assert all(t.grad is None for t in tl.backward_order(loss) if t is not b)


def test_a_failed_second_backward_puts_back_the_gradients_of_the_first():
    # The nodes the walk reaches before the failure already hold gradients from a first
    # backward: the rollback must restore those values (not clear them). A leaf whose
    # .grad is a Tensor (create_graph) is replaced, not added into, so it is rolled back too.
    FailsOnNegativeGradient = failing_op(lambda g: (g < 0).any())
    x, w = leaf([1.0, 2.0]), leaf([0.5, -1.5])
    h = x * 3.0
    loss = (FailsOnNegativeGradient.apply(h) * 2.0 + w * w).sum()
    loss.backward(create_graph=True)  # every node's .grad set; w.grad a Tensor
    before = {id(t): np.array(getattr(t.grad, "data", t.grad)) for t in tl.backward_order(loss)}
    kinds = {id(t): type(t.grad) for t in tl.backward_order(loss)}
    with pytest.raises(ZeroDivisionError):
        loss.backward(np.array(-1.0))  # reaches the root, the add, w and the mul, then fails
    for t in tl.backward_order(loss):
        assert type(t.grad) is kinds[id(t)]
        np.testing.assert_array_equal(getattr(t.grad, "data", t.grad), before[id(t)])


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


# ----------------------------------------------------------------- the walk itself

def test_propagate_yields_each_node_once_with_its_whole_gradient():
    x = leaf([1.0, 2.0], name="x")
    y = x * x + x * 3.0
    loss = y.sum()
    seen = {}
    for node, g, grads in tl.propagate(loss, np.ones(())):
        assert id(node) not in seen
        seen[id(node)] = g.copy()
        assert len(grads) == len(node.parents)
    np.testing.assert_array_equal(seen[id(x)], 2 * x.data + 3.0)
    assert x.grad is None and loss.grad is None  # the walk stores nothing


def test_propagate_gives_each_wire_its_own_gradient():
    x = leaf([1.0, 2.0])
    a = x * 2.0
    b = x * x
    branches = {}
    for node, _g, grads in tl.propagate((a + b).sum(), np.ones(())):
        for p, pg in zip(node.parents, grads):
            if p is x:
                branches.setdefault(id(node), []).append(pg.copy())
    np.testing.assert_array_equal(branches[id(a)], [[2.0, 2.0]])
    np.testing.assert_array_equal(branches[id(b)], [x.data, x.data])  # each wire of x * x


def test_grad_prunes_branches_that_do_not_reach_the_inputs():
    calls = []

    class Spy(tl.Function):
        name = "spy_prune_test"

        @staticmethod
        def forward(xp, a):
            return a * 1.0

        @staticmethod
        def backward(xp, g, out, xs, needs):
            calls.append(1)
            return (g,)

    x, w = leaf([1.0]), leaf([2.0])
    loss = (x * 3.0).sum() + Spy.apply(w).sum()
    assert tl.grad(loss, x).tolist() == [3.0]
    assert calls == []
    assert tl.grad(loss, w).tolist() == [1.0]
    assert calls == [1]


def test_backward_inputs_stores_only_those():
    x, w = leaf([1.0]), leaf([2.0])
    h = x * w
    h.sum().backward(inputs=[x])
    assert x.grad.tolist() == [2.0] and w.grad is None and h.grad is None


def test_retain_graph_is_accepted_and_the_graph_stays():
    W, loss = square_sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(W.grad, [4.0, 8.0, 12.0])


def test_numerical_gradients_may_perturb_a_guarded_leaf_and_put_it_back():
    W = leaf([1.0, -2.0, 0.5])
    loss = (W * W * W).sum()  # alive, not backwarded: W's array is guarded
    f = lambda _: float((W * W * W).sum().item())  # noqa: E731
    num = tl.eval_numerical_gradient(f, W.data)
    assert not W.data.flags.writeable  # still guarded for the live graph
    loss.backward()  # the perturbation was undone exactly: no in-place error
    assert tl.rel_error(num, W.grad) < 1e-8
    assert tl.gradcheck(lambda w: (w * w).sum(), [W])


def test_a_view_node_of_a_leaf_cannot_be_written_through():
    W = leaf([1.0, 2.0, 3.0])
    v = W[0:2]
    loss = (v * W[1:3]).sum()
    with pytest.raises(ValueError, match="read-only"):
        v.data[...] = 0.0
    loss.backward()
    np.testing.assert_array_equal(W.grad, [2.0, 4.0, 2.0])


def test_a_node_freed_while_its_thread_holds_the_guard_table_does_not_deadlock():
    # A garbage collection may free a node (and run its hold's release) in the middle
    # of another hold's bookkeeping, in the same thread.
    from tinygrad_lite import autograd
    W = leaf([1.0, 2.0])
    done = threading.Event()

    def free_inside_the_lock():
        loss = (W * W).sum()
        autograd._lock_acquire()
        try:
            del loss  # its release must queue, not wait for the lock this thread holds
        finally:
            autograd._unlock_and_drain()
        done.set()

    t = threading.Thread(target=free_inside_the_lock, daemon=True)
    t.start()
    assert done.wait(5), "a release inside the locked table deadlocked"
    W.data[0] = 5.0  # the queued release was applied


# ----------------------------------------------------------------- accumulation and the gradients stored

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
    gradient = np.ones((2, 3))
    y = leaf(np.zeros((2, 3)))
    y2 = y + 0.0
    y2.backward(gradient)
    gradient[:] = 7.0
    assert y.grad.sum() == 6.0 and y2.grad.sum() == 6.0


def test_leaf_gradients_accumulate_in_place_and_stay_arrays():
    z = leaf(np.array(2.0))
    (z * 3.0).backward()
    first = z.grad
    (z * 3.0).backward()
    assert type(z.grad) is np.ndarray and z.grad.flags.writeable and z.grad is first
    assert z.grad == 6.0


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
    # before both shares are counted (else x + x * x would give 2 + 4x).
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


def test_l2_term_gradient_is_the_same_when_the_sum_spreads_a_view():
    # A big sum passes its gradient back as a broadcast view; pow 2 then scales x once.
    rng = np.random.default_rng(3)
    for dtype in (np.float64, np.float32):
        w = tl.Tensor(rng.standard_normal((80, 70)).astype(dtype), requires_grad=True)
        (0.3 * (w ** 2).sum()).backward()
        assert w.grad.dtype == dtype
        np.testing.assert_array_equal(w.grad, np.asarray(0.3, dtype) * (2 * w.data))


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



# ----------------------------------------------------------------- what needs a gradient, grad modes

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


def test_set_grad_enabled_as_a_call_a_context_and_a_decorator_as_torch():
    x = leaf([1.0, 2.0])
    try:
        tl.set_grad_enabled(False)  # a plain call takes effect, as torch.set_grad_enabled
        assert not tl.is_grad_enabled() and not (x * 2).requires_grad
        with tl.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not tl.is_grad_enabled()  # the block puts back the mode it found
    finally:
        tl.set_grad_enabled(True)
    assert tl.is_grad_enabled()

    @tl.set_grad_enabled(False)
    def predict(t):
        return t.exp()

    assert tl.is_grad_enabled()  # decorating changed nothing
    assert not predict(x).requires_grad and tl.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with tl.set_grad_enabled(False):
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



# ----------------------------------------------------------------- graph memory

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


def test_backward_with_no_inputs_listed_is_an_error_as_in_torch():
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()
    for empty in ([], ()):
        with pytest.raises(RuntimeError, match="inputs= is empty"):
            loss.backward(inputs=empty)
    assert w.grad is None
    loss.backward(inputs=(t for t in [w]))  # a generator is read once, not emptied by the check
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])
    loss.backward(inputs=w)  # one Tensor
    np.testing.assert_array_equal(w.grad, [4.0, 8.0])
