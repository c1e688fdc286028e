"""examples/two_layer.py's circuit diagram shows the gradients of the loss it draws:
after training left the last batch's gradient in every parameter's .grad, the
diagram still matches a fresh tl.grad of its loss to float64 round-off."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np

import tinygrad_lite as tl
from tinygrad_lite.data import spiral
from tinygrad_lite.models import TwoLayerNet

import viz
from test_viz import SVG, needs_renderer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def example():
    spec = importlib.util.spec_from_file_location(
        "two_layer_example", os.path.join(ROOT, "examples", "two_layer.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def red_boxes(svg):
    """The red lines of each node of an SVG, as tuples."""
    out = []
    for g in ET.fromstring(svg).iter(SVG + "g"):
        if g.get("class") == "node":
            red = tuple("".join(t.itertext()) for t in g.iter(SVG + "text") if t.get("fill") == "red")
            if red:
                out.append(red)
    return out


def test_the_diagram_matches_a_fresh_grad_after_training():
    X, y = spiral(20, 3, seed=0)
    np.random.seed(0)
    net = TwoLayerNet(2, 8, 3, std=1e-1)
    net.train(X, y, X, y, learning_rate=1.0, reg=1e-3, num_iters=5, batch_size=16)
    params = dict(net.named_parameters())
    stale = {k: p.grad.copy() for k, p in params.items()}  # the last batch's gradient
    d = example().circuit_diagram(net, X, y, 1e-3)
    fresh = tl.grad(net.loss_tensor(X[:5], y[:5], reg=1e-3), list(params.values()))
    for (k, p), g in zip(params.items(), fresh):
        drawn = d.gradient_of(p)
        np.testing.assert_allclose(drawn, g, rtol=1e-13, atol=1e-300, err_msg=k)
        assert not np.allclose(stale[k], g), k  # what .grad held would have been wrong
        np.testing.assert_array_equal(p.grad, stale[k])  # and drawing left it alone


@needs_renderer
def test_the_examples_svg_prints_the_fresh_gradients(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, os.path.join("examples", "two_layer.py"), "--iters", "40",
                        "--skip-gradcheck", "--quiet", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    svg = (out / "two_layer_net.svg").read_text()
    net = TwoLayerNet.from_file(out / "two_layer_net.npz")
    X, y = spiral(100, 3, seed=0)  # the example's defaults: spiral, seed 0, reg 5e-4
    params = dict(net.named_parameters())
    fresh = tl.grad(net.loss_tensor(X[:5], y[:5], reg=5e-4), list(params.values()))
    boxes = red_boxes(svg)
    for k, g in zip(params, fresh):
        lines = viz.array_lines(g, narrow=True)
        expected = tuple(lines[1:]) if g.size > 6 else tuple(lines)
        assert expected in boxes, (k, expected)


def test_circuit_diagram_writes_no_grad():
    X, y = spiral(10, 3, seed=1)
    np.random.seed(0)
    net = TwoLayerNet(2, 4, 3)
    example().circuit_diagram(net, X, y, 0.0)
    assert all(p.grad is None for _, p in net.named_parameters())
