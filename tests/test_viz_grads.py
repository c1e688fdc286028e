"""viz's gradients: every wire's gradient comes from one walk of the engine
(``tl.propagate``) over the drawn graph, never from a ``.grad`` another pass wrote,
and nothing is stored; the steps follow the same walk."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import Tensor

import viz
from test_viz import RED, coloured, leaf, needs_renderer, toy_net


@pytest.fixture
def count_walks(monkeypatch):
    """How many times viz runs the engine's walk."""
    calls = []
    real = tl.propagate

    def spy(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)
    monkeypatch.setattr(tl, "propagate", spy)
    return calls


def red_source_labels(src):
    """The red labels of a DOT source, in order."""
    return re.findall(r'label="?([^"\]]*?)"? [^\]]*fontcolor=red', src)


# ----------------------------------------------------------------- the graph's own gradients

@needs_renderer
def test_another_pass_grad_is_never_drawn():
    p = Tensor(3.0, requires_grad=True, name="p")
    (p * 2).backward()  # p.grad = 2, from another graph
    svg = viz.render_svg(p * 5)
    assert coloured(svg, RED) == Counter({"5": 1, "1": 1})  # dp = 5 in this graph
    assert p.grad == 2.0  # and left alone


def test_draw_before_and_after_backward_is_the_same_diagram():
    before, _ = toy_net(backward=False)
    src = viz.draw(before).source
    after, _ = toy_net()
    after.backward()  # twice: .grad holds double the gradient, the diagram does not
    assert viz.draw(after).source == src


def test_one_walk_per_diagram_and_none_when_hidden(count_walks):
    loss, names = toy_net(backward=False)
    viz.draw(loss, names=names)
    assert count_walks == [loss]
    viz.draw(loss, show_grads=False)
    viz.draw(loss, show_grads=False, style="nodes")
    assert count_walks == [loss]
    steps = viz.backprop_steps(loss)
    assert count_walks == [loss, loss] and len(steps) == len(tl.backward_order(loss))


def test_show_grads_false_hides_every_gradient():
    loss, names = toy_net()
    for style in ("circuit", "nodes"):
        src = viz.draw(loss, names=names, show_grads=False, style=style).source
        assert "fontcolor=red" not in src and "fontcolor=darkgreen" in src


def test_fan_out_branches_add_up_to_the_total_and_match_tl_grad():
    loss, names = toy_net(backward=False)
    W1, W2 = names["W1"], names["W2"]
    d = viz.draw(loss, names=names)
    fresh = tl.grad(loss, [W1, W2])
    for W, g in zip((W1, W2), fresh):
        users = [n for n in viz._graph.Graph(loss).tensors if any(p is W for p in n.parents)]
        assert len(users) == 2  # the data term's @ and the L2 term's **2
        parts = [d.gradient_of(W, u) for u in users]
        np.testing.assert_allclose(parts[0] + parts[1], d.gradient_of(W), rtol=1e-15, atol=0)
        np.testing.assert_allclose(d.gradient_of(W), g, rtol=1e-14, atol=0)
    assert all(t.grad is None for t in (W1, W2))


def test_gradient_of_returns_copies():
    x = leaf([1.0, 2.0], "x")
    d = viz.draw((x * 3).sum())
    g = d.gradient_of(x)
    g[:] = 0
    np.testing.assert_array_equal(d.gradient_of(x), [3.0, 3.0])
    assert viz.draw((x * 3).sum(), show_grads=False).gradient_of(x) is None


# ----------------------------------------------------------------- roots

def test_a_non_scalar_root_has_no_gradients_unless_given():
    x = leaf([1.0, -2.0], "x")
    y = x * 3
    src = viz.draw(y).source
    assert "fontcolor=red" not in src and "fontcolor=darkgreen" in src
    d = viz.draw(y, gradient=np.array([1.0, 10.0]))
    np.testing.assert_array_equal(d.gradient_of(x), [3.0, 30.0])
    np.testing.assert_array_equal(d.gradient_of(y), [1.0, 10.0])
    d = viz.draw(y, gradient=Tensor(np.array([2.0, 0.0])))  # a Tensor's values
    np.testing.assert_array_equal(d.gradient_of(x), [6.0, 0.0])


def test_a_one_element_root_of_any_shape_starts_from_ones():
    x = leaf([[2.0]], "x")
    d = viz.draw(x * x)  # shape (1, 1)
    np.testing.assert_array_equal(d.gradient_of(x), [[4.0]])


@pytest.mark.parametrize("gradient, err, match", [
    (np.ones(3), ValueError, r"gradient= has shape \(3,\), the root has shape \(2,\)"),
    ("abc", TypeError, "gradient= must be an array"),
    (object(), TypeError, "gradient= must be an array"),
])
def test_a_bad_gradient_is_a_clear_error(gradient, err, match):
    y = leaf([1.0, 2.0], "x") * 2
    for call in (lambda: viz.draw(y, gradient=gradient),
                 lambda: viz.draw(y, gradient=gradient, show_grads=False),
                 lambda: viz.backprop_steps(y, gradient=gradient)):
        with pytest.raises(err, match=match):
            call()


def test_gradient_for_a_root_without_grad_is_an_error():
    c = Tensor(np.ones(2)) * 2
    assert "fontcolor=red" not in viz.draw(c).source
    with pytest.raises(ValueError, match="does not require grad"):
        viz.draw(c, gradient=np.ones(2))


def test_a_changed_input_is_the_engine_error_not_a_wrong_number():
    W = leaf([1.0, 2.0], "W")
    loss = (W * W).sum()
    with tl.no_grad():
        W -= 1.0
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        viz.draw(loss)


# ----------------------------------------------------------------- steps

def _first_only():
    class FirstOnly(tl.Function):
        """a * b whose backward gives b nothing (returns None for it)."""
        name = "first_only"

        @staticmethod
        def forward(a, b):
            return a * b

        @staticmethod
        def backward(g, out, xs, needs):
            return g * xs[1], None
    return FirstOnly


def _highlighted(src):
    """The names drawn in the highlight colour in a step's DOT source."""
    return re.findall(r'label="?([A-Za-z]\w*)"? [^\]]*fontcolor=blue', src)


def test_step_captions_name_the_highlighted_node_when_an_op_returns_none(tmp_path):
    FirstOnly = _first_only()
    a, b = leaf(2.0, "a"), leaf(3.0, "b")
    c = FirstOnly.apply(a, b)
    c.name = "c"
    out = c * leaf(4.0, "d")
    out.name = "out"
    order = tl.backward_order(out)
    steps = viz.backprop_steps(out)
    assert len(steps) == len(order) - 1  # b gets no gradient: no step for it
    page = viz.write_steps_html(out, tmp_path / "s.html").read_text()
    captions = eval(re.search(r"captions = (\[.*?\]),", page).group(1))
    assert len(captions) == len(steps) == page.count("<svg")
    for step, caption in zip(steps, captions):
        shown = _highlighted(step.source)
        assert len(shown) == 1 and f"gradient of {shown[0]} " in caption, (shown, caption)
    assert not any("gradient of b " in c for c in captions)
    assert b.grad is None and a.grad is None


def test_steps_show_what_the_walk_knows_so_far():
    x, y, z = leaf(-2.0, "x"), leaf(5.0, "y"), leaf(-4.0, "z")
    q = x + y
    f = q * z
    steps = viz.backprop_steps(f, names={"q": q, "f": f})
    unknown = [src.count('"?"') + src.count("label=?") for src in (s.source for s in steps)]
    assert unknown == [4, 3, 2, 1, 0]  # q, z, y, x become known one by one


def test_every_step_is_drawn_in_one_direction():
    loss, names = toy_net(backward=False)  # long: top to bottom once the numbers are in
    directions = {re.search(r"rankdir=(\w+)", s.source).group(1)
                  for s in viz.backprop_steps(loss, names=names)}
    assert directions == {"TB"}
    assert {re.search(r"rankdir=(\w+)", s.source).group(1)
            for s in viz.backprop_steps(loss, rankdir="LR")} == {"LR"}


@needs_renderer
def test_write_steps_html_is_atomic(tmp_path, monkeypatch):
    f = leaf(2.0, "x") * 3
    path = tmp_path / "steps.html"
    path.write_text("old")

    def boom(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        viz.write_steps_html(f, path)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["steps.html"]
    with pytest.raises(OSError, match="disk full"):
        viz.render_svg(f, tmp_path / "f.svg")
    assert [p.name for p in tmp_path.iterdir()] == ["steps.html"]


@pytest.mark.parametrize("kw", [{"rtol": -1}, {"atol": float("nan")}, {"rtol": "1"}])
def test_quiz_tolerances_are_checked(kw, tmp_path):
    f = leaf(2.0, "x") * 3
    with pytest.raises(ValueError, match="must be a finite number"):
        viz.write_steps_html(f, tmp_path / "q.html", quiz=True, **kw)
    assert list(tmp_path.iterdir()) == []
