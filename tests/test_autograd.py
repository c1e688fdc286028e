"""The backward walk and its guards (tinygrad_lite/autograd.py): in-place changes
between forward and backward end in the right gradient or an error, grad mode and
group tags are per thread, a failed backward changes no gradient, the walk yields
every node once with its whole gradient."""
from __future__ import annotations

import threading

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

def test_a_backward_that_raises_mid_pass_puts_every_gradient_back():
    class FailsOnSecondInput(tl.Function):
        name = "fails_in_backward_test"

        @staticmethod
        def forward(xp, a):
            return a * 1.0

        @staticmethod
        def backward(xp, g, out, xs, needs):
            raise ZeroDivisionError("deliberate failure in the middle of the pass")

        @staticmethod
        def torch(a):
            return a * 1.0

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
    for node, g, grads in tl.propagate((a + b).sum(), np.ones(())):
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
