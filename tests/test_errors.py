"""Bad input raises the class NumPy/PyTorch users expect (ValueError for shapes,
TypeError for dtypes, IndexError for indices, RuntimeError for misuse of backward),
with a message naming the op and the shapes or values at fault, before any state
changes (no data, .grad or graph is touched)."""
import re

import numpy as np
import pytest

import tinygrad_lite as tl


@pytest.fixture
def env():
    """A small graph with gradients already stored, to check nothing changes."""
    a = tl.Tensor(np.arange(20.0).reshape(5, 4), requires_grad=True, name="a")
    h = a * 2
    (h.sum()).backward()
    return {"a": a, "h": h}


def snapshot(env):
    return {k: (t.data.copy(), None if t.grad is None else t.grad.copy(), t.op, t.parents)
            for k, t in env.items()}


def assert_unchanged(env, before):
    for k, t in env.items():
        data, grad, op, parents = before[k]
        np.testing.assert_array_equal(t.data, data)
        np.testing.assert_array_equal(t.grad, grad)
        assert t.op is op and t.parents == parents


def words(*parts):
    """Every part must appear in the message, in order."""
    return ".*".join(re.escape(p) for p in parts)


CASES = {
    # name: (call(env), exception class, the message must name these, in order)
    "matmul (5, 4) @ (3, 10)": (lambda e: e["a"] @ np.ones((3, 10)), ValueError,
                                ("matmul", "(5, 4)", "(3, 10)")),
    "matmul batch dims": (lambda e: tl.Tensor(np.ones((2, 5, 4))) @ np.ones((3, 4, 2)) + e["a"].sum(),
                          ValueError, ("matmul", "(2, 5, 4)", "(3, 4, 2)")),
    "matmul 0-d": (lambda e: e["a"] @ 2.0, ValueError, ("matmul", "0-d")),
    "broadcast add": (lambda e: e["a"] + np.ones(3), ValueError, ("add", "(5, 4)", "(3,)")),
    "broadcast mul": (lambda e: e["h"] * tl.Tensor(np.ones((2, 4))), ValueError, ("mul", "(5, 4)", "(2, 4)")),
    "broadcast sub (array on the left)": (lambda e: np.ones((4, 5)) - e["a"], ValueError,
                                          ("sub", "(4, 5)", "(5, 4)")),
    "broadcast where": (lambda e: tl.where(np.ones(3, bool), e["a"], 0.0), ValueError, ("where", "(5, 4)")),
    "broadcast maximum": (lambda e: tl.maximum(e["a"], np.ones(2)), ValueError, ("maximum", "(5, 4)", "(2,)")),
    "non-scalar backward": (lambda e: e["h"].backward(), RuntimeError, ("backward", "scalar", "(5, 4)", "gradient=")),
    "backward without graph": (lambda e: tl.Tensor([1.0]).sum().backward(), RuntimeError,
                               ("backward", "does not require grad")),
    "gradient of the wrong shape (ValueError)": (lambda e: e["h"].backward(np.ones((4, 5))), ValueError,
                                                 ("backward", "(4, 5)", "(5, 4)")),
    "gradient of the wrong shape (RuntimeError)": (lambda e: e["h"].backward(np.ones(20)), RuntimeError,
                                                   ("backward", "(20,)", "(5, 4)")),
    "grad() of a tensor without grad": (lambda e: tl.grad(e["h"].sum(), tl.Tensor([1.0])), RuntimeError,
                                        ("grad", "does not require grad")),
    "integer tensor asked for grad": (lambda e: tl.Tensor(np.array([1, 2]), requires_grad=True), TypeError,
                                      ("only floating-point", "int64")),
    "integer zeros asked for grad": (lambda e: tl.zeros(3, dtype=np.int32, requires_grad=True), TypeError,
                                     ("int32",)),
    "requires_grad_ on labels": (lambda e: tl.Tensor(np.array([0, 1])).requires_grad_(), TypeError,
                                 ("requires_grad_", "int64")),
    "strings": (lambda e: tl.Tensor(["a", "b"]), TypeError, ("Tensor", "dtype")),
    "index out of range": (lambda e: e["a"][7], IndexError, ("getitem", "7", "size 5")),
    "index out of range, axis 1": (lambda e: e["a"][:, -5], IndexError, ("getitem", "-5", "axis 1", "size 4")),
    "index array out of range": (lambda e: e["a"][np.array([0, 9])], IndexError, ("getitem", "9", "size 5")),
    "cs231n pick out of range": (lambda e: e["a"][np.arange(5), np.array([0, 1, 2, 3, 4])], IndexError,
                                 ("getitem", "4", "size 4")),
    "mask of the wrong shape": (lambda e: e["a"][np.ones(3, bool)], IndexError, ("getitem", "5", "3")),
    "float index": (lambda e: e["a"][1.5], IndexError, ("getitem",)),
    "t[mask] = 0 in a graph": (lambda e: e["h"].__setitem__(e["h"].data > 3, 0.0), RuntimeError,
                               ("setitem", "tl.where")),
    "t[mask] = 0 on a parameter": (lambda e: e["a"].__setitem__(e["a"].data > 3, 0.0), RuntimeError,
                                   ("setitem", "t * (mask == 0)")),
    "cross_entropy label out of range": (lambda e: tl.cross_entropy(e["a"], [0, 1, 2, 3, 4]), IndexError,
                                         ("cross_entropy", "label 4", "4 classes")),
    "cross_entropy negative label": (lambda e: tl.cross_entropy(e["a"], [0, -1, 2, 3, 0]), IndexError,
                                     ("cross_entropy", "label -1")),
    "cross_entropy float labels": (lambda e: tl.cross_entropy(e["a"], np.zeros(5)), TypeError,
                                   ("cross_entropy", "integers", "float64")),
    "cross_entropy labels shape": (lambda e: tl.cross_entropy(e["a"], np.zeros(4, int)), ValueError,
                                   ("cross_entropy", "(5,)", "(5, 4)", "(4,)")),
    "cross_entropy 1-D scores": (lambda e: tl.cross_entropy(e["a"][0], np.zeros(4, int)), ValueError,
                                 ("cross_entropy", "2-D", "(4,)")),
    "reshape bad size": (lambda e: e["a"].reshape(3, 7), ValueError, ("reshape", "20", "(3,7)", "(5, 4)")),
    "sum bad axis": (lambda e: e["a"].sum(axis=2), ValueError, ("sum", "axis 2", "dimension 2")),
    "mean bad axis": (lambda e: e["h"].mean(axis=(0, 5)), ValueError, ("mean", "axis 5")),
    "max bad axis": (lambda e: e["a"].max(axis=-3), ValueError, ("max", "axis -3")),
    "min repeated axis": (lambda e: e["a"].min(axis=(0, 0)), ValueError, ("min", "axis")),
    "transpose bad axis": (lambda e: e["a"].transpose(0, 2), ValueError, ("transpose", "axis 2")),
    "transpose too few axes": (lambda e: e["a"].transpose(0), ValueError, ("transpose", "(5, 4)")),
    "softmax bad axis": (lambda e: e["a"].softmax(axis=2), ValueError, ("softmax", "axis 2", "(5, 4)")),
    "log_softmax bad axis": (lambda e: tl.log_softmax(e["a"], axis=-3), ValueError, ("log_softmax", "axis -3")),
    "concatenate shapes": (lambda e: tl.concatenate([e["a"], np.ones((5, 3))], axis=0), ValueError,
                           ("concatenate", "(5, 4)", "(5, 3)")),
    "concatenate bad axis": (lambda e: tl.concatenate([e["a"], e["a"]], axis=3), ValueError,
                             ("concatenate", "axis 3")),
    "concatenate nothing": (lambda e: tl.concatenate([]), ValueError, ("concatenate",)),
    "stack shapes": (lambda e: tl.stack([e["a"], np.ones((5, 3))]), ValueError, ("stack", "(5, 4)", "(5, 3)")),
    "squeeze a real axis": (lambda e: e["a"].squeeze(axis=0), ValueError, ("squeeze", "(5, 4)")),
    "expand_dims bad axis": (lambda e: e["a"].expand_dims(5), ValueError, ("expand_dims", "axis 5")),
    "pow with a string exponent": (lambda e: e["a"] ** "2", TypeError, ("pow", "exponent")),
    "power shapes": (lambda e: e["a"] ** np.ones(3), ValueError, ("power", "(5, 4)", "(3,)")),
    "clip without bounds": (lambda e: e["a"].clip(), ValueError, ("clip",)),
    "item of many": (lambda e: e["a"].item(), ValueError, ("item", "(5, 4)")),
    "len of 0-d": (lambda e: len(e["a"].sum()), TypeError, ("0-d",)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_error(name, env):
    call, cls, parts = CASES[name]
    before = snapshot(env)
    with pytest.raises(cls, match=words(*parts)):
        call(env)
    assert_unchanged(env, before)


def test_index_errors_are_also_what_numpy_raises():
    """Axis errors are NumPy's AxisError (a ValueError and an IndexError), as NumPy users catch."""
    a = tl.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(np.exceptions.AxisError):
        a.sum(axis=3)
    with pytest.raises(IndexError):
        a.sum(axis=3)


def test_setitem_on_plain_data_works_and_in_graph_says_what_to_write():
    x = tl.Tensor(np.array([1.0, -2.0, 3.0]))
    x[x.data < 0] = 0.0               # no graph: plain NumPy assignment
    np.testing.assert_array_equal(x.data, [1.0, 0.0, 3.0])
    w = tl.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    dh = w * 2
    with pytest.raises(RuntimeError) as info:
        dh[dh.data <= 0] = 0
    msg = str(info.value)
    assert "tl.where(mask, 0.0, t)" in msg and "relu" in msg
    np.testing.assert_array_equal(dh.data, [2.0, -4.0, 6.0])


def test_a_backward_call_refused_before_the_pass_changes_no_gradient():
    # These calls are refused before the walk starts (a non-scalar root without a
    # gradient, a gradient of the wrong shape); a failure in the middle of the walk is
    # tests/test_autograd.py's test_a_failed_second_backward_puts_back_the_gradients_of_the_first.
    x = tl.Tensor(np.ones(3), requires_grad=True)
    y = x * 2
    y.sum().backward()
    for bad in (lambda: y.backward(), lambda: y.backward(np.ones(4)), lambda: y.backward(np.ones((3, 1)))):
        with pytest.raises((RuntimeError, ValueError)):
            bad()
        np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
        np.testing.assert_array_equal(y.grad, [1.0, 1.0, 1.0])


def test_log_of_negative_warns_outside_anomaly_mode_and_raises_inside():
    x = tl.Tensor(np.array([-1.0, 1.0]), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="invalid value"):
        y = x.log()
    assert np.isnan(y.data[0]) and y.data[1] == 0.0
    with pytest.warns(RuntimeWarning):
        with pytest.raises(FloatingPointError, match=words("log", "forward", "(2,)")):
            with tl.detect_anomaly():
                x.log()
