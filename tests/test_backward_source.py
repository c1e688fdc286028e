"""``tl.backward_source``, the answer key as plain NumPy: for every primitive and every
composite (the case generators of tests/test_ops.py) the printed function is executed,
called on fresh arrays of the same shapes, and must give the engine's gradients for
those arrays (rel <= 1e-12 in float64). Its parameters are exactly the graph's named
leaves; unnamed constants are written into the source."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl

from test_ops import SPECS, Case

REL = 1e-12



def named_operands(case: Case) -> tuple[list, list, dict]:
    """The operands, the leaves that require grad, and every named leaf by name: leaves
    that require grad are x0, x1, ..., constant Tensors c0, c1, ... (both become the
    function's parameters); arrays and numbers stay unnamed (written into the source)."""
    operands, grads, named = [], [], {}
    for i, (arr, kind) in enumerate(zip(case.arrays, case.kinds)):
        if kind == "grad":
            t = tl.Tensor(arr, requires_grad=True, name=f"x{i}")
            grads.append(t)
        elif kind == "const":
            t = tl.Tensor(arr, name=f"c{i}")
        else:
            operands.append(float(arr) if kind == "number" else arr)
            continue
        named[t.name] = t
        operands.append(t)
    return operands, grads, named


def fresh(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """New values of the same shape, close enough to stay off the kinks and inside the
    domains the case generator chose (a relative change of at most 1e-3)."""
    if a.dtype.kind != "f":
        return a.copy()
    return a * (1 + 1e-3 * rng.uniform(-1, 1, a.shape))


def close(what: str, got: np.ndarray, want: np.ndarray, case: Case) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs {want.shape} ({case.desc})"
    diff = np.abs(got - want)
    rel = diff / np.maximum(1e-300, np.abs(got) + np.abs(want))
    bad = (rel > REL) & (diff > 1e-300) & ~(np.isnan(got) & np.isnan(want))
    assert not bad.any(), (f"{what} for {case.desc}: worst rel {np.nanmax(rel):.3e}\n"
                           f"source:\n{got}\nengine:\n{want}")


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_backward_source_runs_and_gives_the_engines_gradients(name, data):
    case = data.draw(st.composite(lambda draw: SPECS[name](draw))(), label="case")
    operands, grads, named = named_operands(case)
    out = case.fn(*operands)
    seed = np.random.default_rng(len(case.desc)).uniform(-1, 1, out.shape)
    source = tl.backward_source(out, gradient=seed)
    backward = source.function()
    first = backward(**{k: named[k].data for k in source.parameters})
    # the parameters: every leaf that requires grad, and named constants the graph reads
    # (a constant an op turned into a new constant first is written into the source)
    assert {t.name for t in grads} <= set(source.parameters) <= set(named), case.desc
    assert set(first) == {t.name for t in grads}, case.desc
    for t, g in zip(grads, tl.grad(out, grads, grad_outputs=seed)):
        close("gradient of the graph's own arrays", np.asarray(first[t.name]), g, case)

    # fresh arrays of the same shapes: the source recomputes the forward pass
    rng = np.random.default_rng(len(case.desc) + 1)
    # (constants keep their values: a target must stay a probability, a label a class)
    new = {k: fresh(t.data, rng) if t.requires_grad else t.data.copy()
           for k, t in named.items() if k in source.parameters}
    again = backward(**new)
    replaced = [tl.Tensor(new[o.name], requires_grad=o.requires_grad, name=o.name)
                if isinstance(o, tl.Tensor) and o.name in new else o for o in operands]
    new_grads = [o for o in replaced if isinstance(o, tl.Tensor) and o.requires_grad]
    new_out = case.fn(*replaced)
    for t, g in zip(new_grads, tl.grad(new_out, new_grads, grad_outputs=seed)):
        close("gradient for fresh arrays", np.asarray(again[t.name]), g, case)


# ----------------------------------------------------------------- cases the generator rarely draws

def test_backward_source_of_an_index_tuple_holding_arrays():
    x = tl.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="x")
    out = (x[:, np.array([2, 0, 2])] ** 2).sum()
    got = tl.backward_source(out).function()(x=x.data)
    np.testing.assert_array_equal(got["x"], tl.grad(out, x))


def test_backward_source_of_erf():
    x = tl.Tensor(np.array([-0.5, 0.25, 1.5]), requires_grad=True, name="x")
    out = x.erf().sum()
    got = tl.backward_source(out).function()(x=x.data)
    np.testing.assert_allclose(got["x"], tl.grad(out, x), rtol=REL)


def test_backward_source_of_an_empty_selection():
    x = tl.Tensor(np.array([[-0.5], [2.0]]), requires_grad=True, name="x")
    out = x[np.array([False, False])]
    seed = np.zeros((0, 1))
    got = tl.backward_source(out, gradient=seed).function()(x=x.data)
    np.testing.assert_array_equal(got["x"], tl.grad(out, x, grad_outputs=seed))
