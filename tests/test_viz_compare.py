"""compare= with a report that says which wire is wrong: ``wrong_wires()`` pairs
(a whole wire, or one branch of a fan-out) and ``first_divergence`` (marked with
its diagnosis), besides the older failing()/mapping/iterable forms."""
from __future__ import annotations

import re

import pytest

import tinygrad_lite as tl

import viz
from test_viz import coloured, needs_renderer, texts, toy_net

ORANGE = viz.MISMATCH_COLOR


class Divergence:
    def __init__(self, tensor, name, diagnosis):
        self.tensor, self.name, self.diagnosis = tensor, name, diagnosis


class Report:
    """The duck-typed protocol: wrong_wires() and first_divergence."""

    def __init__(self, pairs, first=None, failing=()):
        self.pairs, self.first_divergence, self._failing = pairs, first, set(failing)

    def wrong_wires(self):
        return iter(self.pairs)

    def failing(self):  # present too: wrong_wires, the finer answer, wins
        return self._failing


def _users(loss, t):
    return [n for n in viz._graph.Graph(loss).tensors if any(p is t for p in n.parents)]


def _l2_user(loss, W):
    users = _users(loss, W)
    assert len(users) == 2
    return next(u for u in users if u.op.name != "matmul"), next(u for u in users if u.op.name == "matmul")


def _orange_edges(src):
    """(tail, head) of every orange edge of a DOT source."""
    return re.findall(rf"\t(\w+) -> (\w+) \[[^\]]*color={ORANGE}", src)


def test_only_the_wrong_branch_of_a_fan_out_is_marked():
    loss, names = toy_net(backward=False)
    W2 = names["W2"]
    l2, matmul = _l2_user(loss, W2)
    report = Report([(W2, l2)], failing={"W2"})
    d = viz.draw(loss, names=names, collapse=False, compare=report)
    G = viz._graph.Graph(loss, names=names, collapse=False)
    i = G.index[id(W2)]
    edges = _orange_edges(d.source)
    assert edges == [(f"t{i}", G.unit_of[id(l2)].uid)]  # the L2 branch, nothing else
    assert "W2 \u2717" not in d.source  # the parameter's own name is not marked
    assert "this branch&#x27;s hand gradient differs" in d.source  # (escaped for DOT)


def test_a_whole_wire_is_marked_when_consumer_is_none():
    loss, names = toy_net(backward=False)
    W1 = names["W1"]
    src = viz.draw(loss, names=names, compare=Report([(W1, None)])).source
    assert "W1 \u2717" in src and "W2 \u2717" not in src
    assert len(_orange_edges(src)) == 2  # both branches out of W1's box
    assert re.search(rf'subgraph cluster_w\d+ {{\n\t\tcolor={ORANGE}', src)  # W1's box
    assert "hand gradient differs" in src


def test_an_intermediate_wire_and_a_branch_into_a_collapsed_gate():
    loss, names = toy_net(backward=False)
    scores = names["scores"]
    ce = _users(loss, scores)[0]  # inside cross_entropy: collapsed into one gate
    src = viz.draw(loss, names=names, compare=Report([(scores, ce)])).source
    assert "scores \u2717" in src  # one gate uses scores: its only branch is the wire


@needs_renderer
def test_the_first_divergence_is_marked_with_its_diagnosis():
    loss, names = toy_net(backward=False)
    W2 = names["W2"]
    l2, _ = _l2_user(loss, W2)
    diag = "off by a factor of 2: the L2 convention (reg*sum(W**2) gives 2*reg*W)"
    report = Report([(W2, l2), (names["W1"], None)], first=Divergence(W2, "W2", diag))
    svg = viz.render_svg(loss, names=names, compare=report)
    red = " ".join(coloured(svg, viz.GRAD_COLOR))
    assert "\u2717 first wrong wire" in red
    assert "off by a factor of 2: the L2" in red and "(reg*sum(W**2) gives" in red  # wrapped
    plain = [s for s, _ in texts(svg)]
    assert "W2 \u2717" in plain and "W1 \u2717" in plain
    src = viz.draw(loss, names=names, compare=report).source
    assert 'penwidth=4' in src  # drawn heavier than the other wrong wires


def test_the_first_wrong_wire_at_a_fan_out_draws_only_its_wrong_branch():
    # W2's whole gradient is wrong because its L2 branch is: the box says so, but the
    # branch into the matmul carries a right gradient and is drawn as any right wire.
    loss, names = toy_net(backward=False)
    W2 = names["W2"]
    l2, matmul = _l2_user(loss, W2)
    report = Report([(W2, l2)], first=Divergence(W2, "W2", "sign flipped"))
    src = viz.draw(loss, names=names, collapse=False, compare=report).source
    G = viz._graph.Graph(loss, names=names, collapse=False)
    wire, l2_gate, mm_gate = f"t{G.index[id(W2)]}", G.unit_of[id(l2)].uid, G.unit_of[id(matmul)].uid
    assert _orange_edges(src) == [(wire, l2_gate)]
    assert re.search(rf"\t{wire} -> {l2_gate} \[[^\]]*penwidth=4", src)  # the first: heaviest
    assert not re.search(rf"\t{wire} -> {mm_gate} \[[^\]]*penwidth", src)
    assert "W2 \u2717" in src and "first wrong wire" in src and "sign flipped" in src


def test_first_divergence_found_by_name_in_another_build_of_the_graph():
    loss, names = toy_net(backward=False)
    other, other_names = toy_net(backward=False)  # the report's own graph
    report = Report([(other_names["W1"], None)],
                    first=Divergence(other_names["W1"], "W1", "sign flipped"))
    src = viz.draw(loss, names=names, compare=report).source
    assert "W1 \u2717" in src and "sign flipped" in src


def test_no_divergence_and_no_wrong_wires_marks_nothing():
    loss, names = toy_net(backward=False)
    src = viz.draw(loss, names=names, compare=Report([], first=None, failing={"W1"})).source
    assert ORANGE not in src and "\u2717" not in src


def test_empty_diagnosis_still_marks_the_first_wire():
    loss, names = toy_net(backward=False)
    src = viz.draw(loss, names=names, compare=Report([], Divergence(names["b2"], "b2", ""))).source
    assert "first wrong wire" in src and "b2 \u2717" in src


@pytest.mark.parametrize("pairs, match", [
    ([("W1", None)], r"\(Tensor, Tensor or None\)"),
    ([(None, None)], r"\(Tensor, Tensor or None\)"),
    ([42], "pairs"),
])
def test_malformed_wrong_wires_are_a_clear_error(pairs, match):
    loss, names = toy_net(backward=False)
    with pytest.raises(TypeError, match=match):
        viz.draw(loss, names=names, compare=Report(pairs))


def test_nodes_style_marks_the_branch_too():
    loss, names = toy_net(backward=False)
    W2 = names["W2"]
    l2, _ = _l2_user(loss, W2)
    src = viz.draw(loss, names=names, style="nodes", collapse=False,
                   compare=Report([(W2, l2)])).source
    assert len(_orange_edges(src)) == 1 and "W2 (10, 3) float64 \u2717" not in src


def test_old_forms_still_mark_whole_wires():
    loss, names = toy_net(backward=False)
    for cmp in ({"W1"}, ["W1"], {"W1": False, "b1": True}):
        src = viz.draw(loss, names=names, compare=cmp).source
        assert "W1 \u2717" in src and "b1 \u2717" not in src
    assert tl  # (the engine is only read)
