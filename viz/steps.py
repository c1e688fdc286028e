"""The backward pass one node at a time: ``backprop_steps`` and ``write_steps_html``.

Both follow the engine's own walk (``tl.propagate``): a step is a node the walk
reaches, in the walk's order, with the gradients known once it has been reached.
"""
from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

import tinygrad_lite as tl
from tinygrad_lite import Tensor

from ._format import array_lines
from ._graph import Graph
from ._grads import WireGrads, root_gradient
from .draw import draw_known, rule_for
from .render import Diagram, svg_from_source, write_atomically


class _Step:
    """One node the walk reached: the node, what was known just before it (its own
    branches hidden: a quiz asks for them) and just after it."""
    __slots__ = ("node", "before", "after")

    def __init__(self, node: Tensor, before: WireGrads, after: WireGrads) -> None:
        self.node, self.before, self.after = node, before, after


def _walk(root: Any, gradient: Any, who: str) -> list:
    if not isinstance(root, Tensor):
        raise TypeError(f"{who}: root must be a Tensor, got {type(root).__name__}")
    if not root.requires_grad:
        raise ValueError(f"{who}: the root does not require grad: no backward pass")
    start = root_gradient(root, gradient, who)
    if start is None:
        raise ValueError(f"{who}: the root has shape {root.shape}; pass gradient= (as for "
                         f"backward on a non-scalar)")
    known = WireGrads()
    steps = []
    before = known.snapshot()
    for node in known.walk(root, start):
        after = known.snapshot()
        steps.append(_Step(node, before.without_branches_into(node), after))
        before = after
    return steps


def _draw_step(root: Tensor, grads: WireGrads, node: Tensor, kw: dict) -> Diagram:
    return draw_known(root, grads, node, **kw)


def backprop_steps(root: Tensor, gradient: Any = None, **draw_kwargs: Any) -> list:
    """One ``Diagram`` per node the engine's backward walk (``tl.propagate``)
    reaches, in its order: step k highlights the k-th node, with the gradients known
    once it has been reached (the rest show ``?``). Nothing is stored on any tensor;
    it works before ``backward()`` too. ``collapse`` defaults to False here so each
    step's node is visible."""
    steps = _walk(root, gradient, "backprop_steps")
    kw = _step_options(root, steps, draw_kwargs)
    return [_draw_step(root, s.after, s.node, kw) for s in steps]


def _step_options(root: Tensor, steps: list, draw_kwargs: dict) -> dict:
    """The draw options of every step: no collapsing unless asked for, and one
    direction for all (``rankdir="auto"`` decided on the last, fullest step), so
    the picture does not turn as the numbers fill in."""
    kw = {"collapse": False, **draw_kwargs}
    if kw.get("rankdir", "auto") == "auto" and steps:
        kw["rankdir"] = _draw_step(root, steps[-1].after, steps[-1].node, kw)._rankdir
    return kw


def _caption(node: Tensor, names: dict) -> str:
    name = names.get(id(node)) or node.name
    what = node.op.name if node.op is not None else "leaf"
    return f"gradient of {name + ' ' if name else ''}({what}, shape {tuple(node.shape)})"


def _who(node: Tensor, names: dict) -> str:
    """The wire a quiz question names: its name, else what makes it."""
    name = names.get(id(node)) or node.name
    if name:
        return name
    return f"the output of {node.op.label(**node.args)}" if node.op is not None else "a leaf"


def _strip_prolog(svg: str) -> str:
    i = svg.find("<svg")
    return svg[i:] if i >= 0 else svg


def _svg(d: Diagram) -> str:
    return _strip_prolog(svg_from_source(d.source))


def _plain(a: np.ndarray) -> Any:
    """An array as JSON: nested lists, non-finite numbers as strings."""
    if a.ndim == 0:
        v = float(a)
        return v if math.isfinite(v) else str(v)
    return [_plain(x) for x in a]


def _rules(root: Tensor, step: _Step, names: dict, kw: dict) -> list:
    """Where the node's gradient comes from: one line per wire from a gate that
    uses it, with that gate's local rule and the gradient along the wire."""
    G = Graph(root, names=kw.get("names"), collapse=False)
    out = []
    for use in G.uses[id(step.node)]:
        pg = step.after.branch.get((id(use.node), use.pos))
        if pg is None:
            continue
        gate = G.unit_of[id(use.node)]
        rule = rule_for(gate, [use]) or ""
        out.append({"gate": gate.label, "rule": rule,
                    "value": " ".join(array_lines(pg, max_elems=12))})
    return out


def write_steps_html(root: Tensor, path: Union[str, os.PathLike], title: Optional[str] = None,
                     gradient: Any = None, quiz: bool = False, rtol: float = 0.02,
                     atol: float = 0.005, **draw_kwargs: Any) -> Path:
    """A self-contained HTML page (SVGs, style and script inline, no network) of the
    backward pass, written atomically to ``path``.

    ``quiz=False``: ``backprop_steps(root)`` with previous/next buttons and the arrow
    keys. ``quiz=True``: at each step the page asks for the gradient of the next wire
    (one number, a whole array typed as text, or an array one element at a time),
    checks the answer (an entry ``a`` is right when ``|a - e| <= rtol * |e| + atol *
    m``, ``m`` the gradient's largest magnitude), then shows the value and the local
    rule of each gate it flows back from, and keeps the score."""
    for nm, v in (("rtol", rtol), ("atol", atol)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 \
                or not math.isfinite(v):
            raise ValueError(f"write_steps_html: {nm}= must be a finite number >= 0, got {v!r}")
    steps = _walk(root, gradient, "write_steps_html")
    draw_kwargs = _step_options(root, steps, draw_kwargs)
    names = tl.tensor_names(draw_kwargs.get("names"), "write_steps_html")
    title = title or ("Backpropagation quiz: predict each gradient" if quiz
                      else "Backpropagation, one node at a time")
    if not quiz:
        blocks = "\n".join(f'<div class="step">{_svg(_draw_step(root, s.after, s.node, draw_kwargs))}'
                           f'</div>' for s in steps)
        captions = [_caption(s.node, names) for s in steps]
        page = _PAGE.format(title=html.escape(title), steps=blocks,
                            captions=_json(captions))
    else:
        data = []
        for k, s in enumerate(steps):
            g = s.after.whole[id(s.node)]
            data.append({
                "caption": _caption(s.node, names),
                "name": _who(s.node, names),
                "shape": list(g.shape), "expected": _plain(np.asarray(g, dtype=np.float64)),
                "shown": array_lines(g, max_elems=max(g.size, 1))
                if g.size <= 60 else array_lines(g),
                "rules": _rules(root, s, names, draw_kwargs) if k else [],
            })
        questions = "\n".join(
            f'<div class="q" id="q{k}">{_svg(_draw_step(root, s.before, s.node, draw_kwargs))}</div>'
            f'<div class="a" id="a{k}">{_svg(_draw_step(root, s.after, s.node, draw_kwargs))}</div>'
            for k, s in enumerate(steps))
        page = _QUIZ.format(title=html.escape(title), diagrams=questions, data=_json(data),
                            rtol=json.dumps(float(rtol)), atol=json.dumps(float(atol)))
    path = Path(path)
    write_atomically(path, page)
    return path


def _json(obj: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(obj).replace("</", "<\\/").replace("<!--", "<\\!--")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 1em; }}
.step {{ display: none; }} .step.on {{ display: block; }}
button {{ font-size: 1em; margin-right: .5em; }}
#where {{ margin-left: 1em; }}
</style></head><body>
<h1>{title}</h1>
<p><button id="prev" type="button">&larr; previous</button><button id="next" type="button">next &rarr;</button>
<span id="where"></span> <span style="color:#666">(arrow keys work too)</span></p>
{steps}
<script>
(function () {{
  var steps = document.querySelectorAll('.step'), captions = {captions}, k = 0;
  function show(i) {{
    k = Math.max(0, Math.min(steps.length - 1, i));
    for (var j = 0; j < steps.length; j++) steps[j].className = 'step' + (j === k ? ' on' : '');
    document.getElementById('where').textContent = 'step ' + (k + 1) + ' of ' + steps.length + ': ' + captions[k];
  }}
  document.getElementById('prev').onclick = function () {{ show(k - 1); }};
  document.getElementById('next').onclick = function () {{ show(k + 1); }};
  document.addEventListener('keydown', function (e) {{
    if (e.key === 'ArrowLeft') show(k - 1);
    if (e.key === 'ArrowRight') show(k + 1);
  }});
  show(0);
}})();
</script></body></html>
"""

_QUIZ = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 1em; font-size: 16px; }}
.q, .a {{ display: none; }} .on {{ display: block; }}
#panel {{ border: 1px solid #bbb; border-radius: 6px; padding: .6em 1em; margin: .6em 0;
         max-width: 60em; }}
button, input, textarea {{ font-size: 1em; }} button {{ margin: .2em .4em .2em 0; }}
textarea {{ width: 100%; box-sizing: border-box; font-family: monospace; }}
#score {{ font-weight: bold; margin-left: 1em; }}
.right {{ color: #1a7f1a; font-weight: bold; }} .wrong {{ color: #c00; font-weight: bold; }}
.value {{ color: #c00; font-family: monospace; white-space: pre; }}
.rule {{ color: #333; font-family: monospace; }}
#hint {{ color: #555; }}
</style></head><body>
<h1>{title}</h1>
<p>Predict the gradient of the highlighted wire from the gradients already known,
then check it. A number is right within <span id="tol"></span>.<span id="score"></span></p>
<div id="panel">
  <p id="question"></p>
  <div id="modes"><label><input type="radio" name="mode" id="mode-whole" checked> the whole
    array as text</label> <label><input type="radio" name="mode" id="mode-element"> one
    element at a time</label></div>
  <div id="whole"><textarea id="answer" rows="2" spellcheck="false"></textarea></div>
  <div id="element">element <input id="index" size="10"> <input id="element-answer" size="14"></div>
  <p><button id="check" type="button">Check</button><button id="reveal" type="button">Show the
    answer</button><button id="next" type="button">Next wire &rarr;</button></p>
  <p id="feedback" aria-live="polite"></p>
  <div id="answer-box"><div id="value" class="value"></div><div id="rules"></div></div>
  <p id="hint"></p>
</div>
<div id="diagrams">
{diagrams}
</div>
<script>
(function () {{
  var data = {data}, rtol = {rtol}, atol = {atol};
  var k = 0, right = 0, answered = 0, element = 0;
  var $ = function (id) {{ return document.getElementById(id); }};
  $('tol').textContent = (rtol * 100) + '% of it, plus ' + (atol * 100) + '% of the largest entry';
  function flat(a) {{ return Array.isArray(a) ? [].concat.apply([], a.map(flat)) : [a]; }}
  function num(v) {{ return typeof v === 'string' ? parseFloat(v.replace('inf', 'Infinity')) : v; }}
  function size(shape) {{ return shape.reduce(function (p, n) {{ return p * n; }}, 1); }}
  function scale(values) {{ return values.reduce(function (m, v) {{ return Math.max(m, Math.abs(v) || 0); }}, 0); }}
  function close(a, e, m) {{
    if (isNaN(e)) return isNaN(a);
    if (!isFinite(e)) return a === e;
    return Math.abs(a - e) <= rtol * Math.abs(e) + atol * m;
  }}
  function parse(text) {{
    var number = /[-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?|[-+]?\\binf(?:inity)?\\b|\\bnan\\b/gi;
    var found = text.match(number) || [];
    return found.map(function (s) {{
      s = s.toLowerCase();
      if (s.indexOf('nan') >= 0) return NaN;
      if (s.indexOf('inf') >= 0) return s[0] === '-' ? -Infinity : Infinity;
      return parseFloat(s);
    }});
  }}
  function unravel(i, shape) {{
    var out = [];
    for (var d = shape.length - 1; d >= 0; d--) {{ out.unshift(i % shape[d]); i = Math.floor(i / shape[d]); }}
    return out;
  }}
  function ravel(text, shape) {{
    var idx = parse(text);
    if (idx.length !== shape.length) return -1;
    var i = 0;
    for (var d = 0; d < shape.length; d++) {{
      var n = idx[d];
      if (n < 0) n += shape[d];
      if (!(n >= 0 && n < shape[d] && n === Math.floor(n))) return -1;
      i = i * shape[d] + n;
    }}
    return i;
  }}
  function say(text, cls) {{ var f = $('feedback'); f.textContent = text; f.className = cls || ''; }}
  function score() {{ $('score').textContent = 'Score: ' + right + ' right of ' + answered; }}
  function reveal() {{
    var q = data[k];
    $('q' + k).className = 'q';
    $('a' + k).className = 'a on';
    $('value').textContent = 'gradient of ' + q.name + ' = ' + q.shown.join('\\n');
    var rules = $('rules');
    rules.textContent = '';
    q.rules.forEach(function (r) {{
      var p = document.createElement('p');
      p.className = 'rule';
      p.textContent = 'from ' + r.gate + (r.rule ? ' (' + r.rule + ')' : '') + ': ' + r.value;
      rules.appendChild(p);
    }});
    if (q.rules.length > 1) {{
      var p = document.createElement('p');
      p.textContent = 'It feeds ' + q.rules.length + ' gates: its gradient is the sum of these.';
      rules.appendChild(p);
    }}
  }}
  function show(i) {{
    k = i;
    var q = data[k], n = size(q.shape);
    for (var j = 0; j < data.length; j++) {{
      $('q' + j).className = 'q' + (j === k ? ' on' : '');
      $('a' + j).className = 'a';
    }}
    element = 0;
    $('value').textContent = ''; $('rules').textContent = ''; say('');
    $('answer').value = ''; $('element-answer').value = '';
    $('index').value = q.shape.length ? unravel(0, q.shape).join(', ') : '';
    var shapeText = q.shape.length
      ? ' (shape (' + q.shape.join(', ') + (q.shape.length === 1 ? ',' : '') + '))' : '';
    $('question').textContent = 'Step ' + (k + 1) + ' of ' + data.length + ': what is the gradient of '
      + q.name + shapeText + '?';
    $('modes').style.display = n > 1 ? '' : 'none';
    if (n <= 1) $('mode-whole').checked = true;
    mode();
    $('next').disabled = k + 1 >= data.length;
    if (k === 0) {{
      reveal();
      $('question').textContent = 'Step 1 of ' + data.length + ': the backward pass starts at '
        + q.name + ' with this gradient (ones for a loss).';
      ['modes', 'whole', 'element', 'check', 'reveal'].forEach(function (id) {{ $(id).style.display = 'none'; }});
    }} else {{
      ['check', 'reveal'].forEach(function (id) {{ $(id).style.display = ''; }});
    }}
  }}
  function mode() {{
    var el = $('mode-element').checked;
    $('whole').style.display = el ? 'none' : '';
    $('element').style.display = el ? '' : 'none';
    var n = size(data[k].shape);
    $('hint').textContent = n <= 1 || k === 0 ? '' : el
      ? 'Type the element\\'s index (e.g. 0, 1) and its value; the index moves on after each check.'
      : 'Type ' + n + ' numbers in row-major order (NumPy\\'s print-out works).';
  }}
  function check() {{
    var q = data[k], expected = flat(q.expected).map(num), m = scale(expected);
    if ($('mode-element').checked) {{
      var i = ravel($('index').value, q.shape), a = parse($('element-answer').value);
      if (i < 0) {{
        say('The element index must be ' + q.shape.length + ' whole numbers within ('
            + q.shape.join(', ') + ').', 'wrong');
        return;
      }}
      if (a.length !== 1) {{ say('Type one number.', 'wrong'); return; }}
      var ok = close(a[0], expected[i], m);
      var where = 'element [' + unravel(i, q.shape).join(', ') + '] of the gradient of ' + q.name;
      answered++; if (ok) right++;
      say((ok ? 'Right: ' : 'Not quite: ') + where + ' is ' + expected[i]
          + (ok ? '' : ' (you typed ' + a[0] + ')'), ok ? 'right' : 'wrong');
      if (i + 1 < expected.length) {{
        $('index').value = unravel(i + 1, q.shape).join(', ');
        $('element-answer').value = '';
      }}
      showRules();
    }} else {{
      var got = parse($('answer').value);
      if (got.length !== expected.length) {{
        say('Expected ' + expected.length + ' number' + (expected.length > 1 ? 's' : '')
            + ', read ' + got.length + '.', 'wrong');
        return;
      }}
      var bad = 0;
      for (var j = 0; j < got.length; j++) if (!close(got[j], expected[j], m)) bad++;
      answered++; if (!bad) right++;
      var msg = got.length === 1
        ? 'the gradient of ' + q.name + ' is ' + q.shown.join(' ') + ' (you typed ' + got[0] + ').'
        : bad + ' of ' + got.length + ' numbers are off: the answer is below.';
      say(bad ? 'Not quite: ' + msg : 'Right!', bad ? 'wrong' : 'right');
      reveal();
    }}
    score();
  }}
  function showRules() {{
    var q = data[k], rules = $('rules');
    if (rules.childNodes.length) return;
    q.rules.forEach(function (r) {{
      var p = document.createElement('p');
      p.className = 'rule';
      p.textContent = 'from ' + r.gate + (r.rule ? ' (' + r.rule + ')' : '');
      rules.appendChild(p);
    }});
  }}
  $('mode-whole').onchange = mode; $('mode-element').onchange = mode;
  $('check').onclick = check;
  $('reveal').onclick = function () {{ reveal(); say('The answer:'); }};
  $('next').onclick = function () {{ if (k + 1 < data.length) show(k + 1); }};
  [$('answer'), $('element-answer')].forEach(function (box) {{
    box.addEventListener('keydown', function (e) {{
      if (e.key === 'Enter' && !e.shiftKey) {{ e.preventDefault(); check(); }}
    }});
  }});
  score();
  show(0);
}})();
</script></body></html>
"""
