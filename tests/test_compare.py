"""compare_gradients / GradientReport and the ``python -m tinygrad_lite.compare`` command."""
import functools
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import reference as ref
from tinygrad_lite.compare import DEFAULT_TOLERANCES, GradientReport, compare_gradients
from tinygrad_lite.problems import MODELS, cs231n_loss_fn, problem, run
from tinygrad_lite.reference import broken_two_layer

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False


@pytest.fixture(scope="module")
def toy():
    params, (X, y) = ref.init_toy_model(), ref.init_toy_data()
    reg = 0.05
    return params, X, y, reg, cs231n_loss_fn(X, y, reg)


def toy_hand(toy, **kw):
    params, X, y, reg, _ = toy
    return functools.partial(ref.cs231n_two_layer, X=X, y=y, reg=reg, **kw)


# ----------------------------------------------------------------- the four seeds' reports

@pytest.mark.parametrize("model", MODELS)
def test_each_seed_report_passes(model):
    report = run(model)
    assert isinstance(report, GradientReport)
    assert report.ok(), str(report)
    assert report.kinds == (("hand", "numeric", "torch") if HAVE_TORCH else ("hand", "numeric"))
    assert report.failing() == set() and report.failing("any") == set()
    assert report.names == ["W1", "b1", "W2", "b2"]
    text = str(report)
    for name in report.names:
        assert f"\n{name} " in text
    assert "[PASS]" in text and report.worst is not None and report.worst.ok


@pytest.mark.parametrize("data", ["random", "scaled"])
def test_column_other_data_passes(data):
    assert run("column", data, seed=3).ok()


def test_cs231n_random_and_half_l2_pass():
    assert run("cs231n", "random", seed=5).ok()
    r = run("cs231n", l2_half=True)
    assert r.ok() and r.losses["engine"] == pytest.approx(ref.TOY_CORRECT_LOSS, abs=1e-10)


# ----------------------------------------------------------------- broken derivations

@pytest.mark.parametrize("bug,param", [("l2", "W2"), ("db2", "b2"), ("relu", "W1")])
@pytest.mark.parametrize("l2_half", [False, True])
def test_broken_derivation_is_caught_and_named(toy, bug, param, l2_half):
    params, X, y, reg, _ = toy
    loss_fn = cs231n_loss_fn(X, y, reg, l2_half=l2_half)
    hand = functools.partial(broken_two_layer, X=X, y=y, reg=reg, l2_half=l2_half, bug=bug)
    report = compare_gradients(loss_fn, params, hand, numeric=False, torch=False)
    assert not report.ok() and report.ok("numeric", "torch")  # nothing else is wrong
    assert report.failing() == {param}
    assert [leaf.name for leaf in report.failing_leaves()] == [param]
    c = report[param].comparisons["hand"]
    assert not c.ok and c.rel_error > 1e-3
    # the index and both numbers are the engine's and the hand's there
    _, good = ref.cs231n_two_layer(params, X, y, reg, l2_half=l2_half)
    _, bad = hand(params)
    assert c.engine == pytest.approx(good[param][c.index], rel=1e-12, abs=1e-15)
    assert c.other == bad[param][c.index]
    w = report.worst
    assert (w.param, w.comparison, w.index, w.engine, w.other, w.ok) == \
        (param, "hand", c.index, c.engine, c.other, False)
    text = str(report)
    assert "[FAIL]" in text
    assert f"FAIL {param}{list(c.index)}, engine vs hand: engine {c.engine:.10g} vs hand {c.other:.10g}" in text
    assert f"FAIL {param}" in report.to_markdown()


def test_broken_derivation_caught_with_numeric_and_torch_too(toy):
    params, X, y, reg, loss_fn = toy
    hand = functools.partial(broken_two_layer, X=X, y=y, reg=reg, bug="db2")
    report = compare_gradients(loss_fn, params, hand)
    assert report.failing() == {"b2"} and report.failing("numeric") == set()
    assert report.failing("torch") == set() and report.failing("any") == {"b2"}
    assert report.ok("numeric") and not report.ok("hand") and not report.ok()
    b2 = report["b2"].comparisons["hand"]
    assert b2.other == pytest.approx(5 * b2.engine)  # N = 5: the missing 1/N


def test_broken_cli_exit_status():
    r = subprocess.run([sys.executable, "-m", "tinygrad_lite.compare", "--model", "ng", "--bug", "l2",
                        "--torch", "off", "--no-numeric"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "FAIL W2[" in r.stdout and "[FAIL]" in r.stdout


# ----------------------------------------------------------------- shape errors and hand forms

def test_transposed_hand_gradient_is_a_clear_error(toy):
    params, X, y, reg, loss_fn = toy
    _, g = ref.cs231n_two_layer(params, X, y, reg)
    g["W1"] = g["W1"].T
    with pytest.raises(ValueError, match=r"'W1' has shape \(10, 4\), but parameter 'W1' has shape "
                                         r"\(4, 10\) \(transposed\?: it equals the engine's gradient transposed\)"):
        compare_gradients(loss_fn, params, g, numeric=False, torch=False)


def test_sum_over_wrong_axis_is_a_clear_error(toy):
    params, X, y, reg, loss_fn = toy
    def hand(p):
        loss, g = ref.cs231n_two_layer(p, X, y, reg)
        N = X.shape[0]
        scores = np.maximum(0, X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        g["b2"] = np.sum(scores, axis=1) / N  # (N,) instead of (C,)
        return loss, g
    with pytest.raises(ValueError, match=r"'b2' has shape \(5,\), but parameter 'b2' has shape \(3,\)"):
        compare_gradients(loss_fn, params, hand, numeric=False, torch=False)


def test_keepdims_bias_for_flat_param_is_a_clear_error(toy):
    params, X, y, reg, loss_fn = toy
    _, g = ref.cs231n_two_layer(params, X, y, reg)
    g["b1"] = g["b1"].reshape(1, -1)
    with pytest.raises(ValueError, match=r"'b1' has shape \(1, 10\), but parameter 'b1' has shape \(10,\)"):
        compare_gradients(loss_fn, params, g, numeric=False, torch=False)


def test_hand_forms(toy):
    params, X, y, reg, loss_fn = toy
    loss, g = ref.cs231n_two_layer(params, X, y, reg)
    as_dict = compare_gradients(loss_fn, params, g, numeric=False, torch=False)
    assert as_dict.ok() and as_dict.losses["hand"] is None and "hand" not in as_dict.loss_checks
    seed_002_keys = {"d" + k: v for k, v in g.items()}  # dW1, db1, ...
    assert compare_gradients(loss_fn, params, seed_002_keys, numeric=False, torch=False).ok()
    only_grads = compare_gradients(loss_fn, params, lambda p: ref.cs231n_two_layer(p, X, y, reg)[1],
                                   numeric=False, torch=False)
    assert only_grads.ok()
    with_loss = compare_gradients(loss_fn, params, toy_hand(toy), numeric=False, torch=False)
    assert with_loss.losses["hand"] == pytest.approx(loss) and with_loss.loss_checks["hand"].ok


def test_unknown_and_missing_hand_keys(toy):
    params, X, y, reg, loss_fn = toy
    _, g = ref.cs231n_two_layer(params, X, y, reg)
    with pytest.raises(ValueError, match=r"'Z', which matches no tensor of the graph \(the "
                                         r"named tensors with a gradient: probs, scores, a, b2, W2, b1, W1\)"):
        compare_gradients(loss_fn, params, {**g, "Z": np.zeros(3)}, numeric=False, torch=False)
    with pytest.raises(ValueError, match=r"'X' \(shape \(5, 4\)\) does not depend on any "
                                         r"parameter, so it has no gradient"):
        compare_gradients(loss_fn, params, {**g, "dX": np.zeros(3)}, numeric=False, torch=False)
    del g["b2"]
    report = compare_gradients(loss_fn, params, g, numeric=False, torch=False)
    assert not report.ok() and report.failing() == {"b2"}
    assert report["b2"].comparisons["hand"].missing
    assert "gives no gradient for 'b2'" in str(report) and "missing" in str(report)


def test_wrong_hand_loss_fails(toy):
    params, X, y, reg, loss_fn = toy
    def hand(p):
        loss, g = ref.cs231n_two_layer(p, X, y, reg)
        return loss + 0.01, g
    report = compare_gradients(loss_fn, params, hand, numeric=False, torch=False)
    assert report.failing() == set() and not report.ok()
    assert not report.loss_checks["hand"].ok and "FAIL loss, engine vs hand" in str(report)


def test_nan_in_hand_fails(toy):
    params, X, y, reg, loss_fn = toy
    _, g = ref.cs231n_two_layer(params, X, y, reg)
    g["W2"] = g["W2"].copy()
    g["W2"][2, 1] = np.nan
    report = compare_gradients(loss_fn, params, g, numeric=False, torch=False)
    assert report.failing() == {"W2"} and report.worst.index == (2, 1)


def test_bad_hand_and_loss_fn_types(toy):
    params, X, y, reg, loss_fn = toy
    with pytest.raises(TypeError, match="hand must be"):
        compare_gradients(loss_fn, params, [1, 2], numeric=False, torch=False)
    with pytest.raises(TypeError, match="must return a Tensor"):
        compare_gradients(lambda p: 1.0, params, numeric=False, torch=False)
    with pytest.raises(ValueError, match="scalar"):
        compare_gradients(lambda p: p["W1"] * 2, params, numeric=False, torch=False)
    with pytest.raises(ValueError, match="does not depend on any parameter"):
        compare_gradients(lambda p: tl.Tensor(np.float64(1.0)), params, numeric=False, torch=False)
    with pytest.raises(TypeError, match="non-empty dict"):
        compare_gradients(loss_fn, {}, numeric=False, torch=False)


# ----------------------------------------------------------------- report contents

def test_report_rows_numbers_and_rendering(toy):
    params, X, y, reg, loss_fn = toy
    report = compare_gradients(loss_fn, params, toy_hand(toy))
    loss, g = ref.cs231n_two_layer(params, X, y, reg)
    assert report.losses["engine"] == pytest.approx(loss, rel=1e-13)
    for row in report:
        assert row.shape == params[row.name].shape and row.engine.shape == row.shape
        np.testing.assert_allclose(row.engine, g[row.name], rtol=1e-10, atol=1e-15)
        for kind, c in row.comparisons.items():
            assert c.rtol, c.atol == DEFAULT_TOLERANCES[kind]
            assert c.rel_error == pytest.approx(tl.rel_error(row.engine, row.others[kind]))
            assert c.max_abs == pytest.approx(np.abs(row.engine - row.others[kind]).max())
    md = report.to_markdown()
    assert md.count("\n| ") == 5 and "| W1 | (4, 10) |" in md  # header + 4 rows
    assert "hand rel_error" in str(report) and "numeric max|diff|" in str(report)
    assert "loss: engine 1.30378789133, hand 1.30378789133" in str(report)
    w = report.worst
    assert w.comparison == "numeric" and w.ok  # central differences are the noisiest
    assert w.rel_error == max(r.comparisons[k].rel_error for r in report for k in report.kinds)
    assert repr(report).startswith("<GradientReport ok")


def test_params_and_hand_inputs_are_not_modified(toy):
    params, X, y, reg, loss_fn = toy
    before = {k: v.copy() for k, v in params.items()}
    def mutating_hand(p):  # as seeds 002/004 might: updates in place
        loss, g = ref.cs231n_two_layer(p, X, y, reg)
        p["W1"] -= 1.0
        return loss, g
    report = compare_gradients(loss_fn, params, mutating_hand)
    assert report.ok()
    assert any("modified its params argument (W1)" in n for n in report.notes)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


def test_graph_and_leaves_hook_for_viz(toy):
    params, X, y, reg, loss_fn = toy
    report = compare_gradients(loss_fn, params, toy_hand(toy), numeric=False)
    assert isinstance(report.graph, tl.Tensor) and report.graph.size == 1
    assert report.graph.item() == report.losses["engine"]
    order = tl.backward_order(report.graph)
    assert order[0] is report.graph
    for name, leaf in report.leaves.items():
        assert leaf.name == name and leaf.op is None and leaf.requires_grad
        assert any(leaf is t for t in order)
        np.testing.assert_array_equal(leaf.grad, report[name].engine)
    assert report.failing() == set() and report.failing_leaves() == []
    with pytest.raises(ValueError):
        report.failing("nope")


def test_tolerance_overrides(toy):
    params, X, y, reg, loss_fn = toy
    strict = compare_gradients(loss_fn, params, numeric=True, torch=False,
                               tolerances={"numeric": (1e-12, 1e-15)})
    assert not strict.ok() and strict.failing("numeric") == {"W1", "b1", "W2", "b2"}
    assert strict.failing() == set()  # no hand side: nothing fails against it
    with pytest.raises(ValueError, match="unknown comparison"):
        compare_gradients(loss_fn, params, tolerances={"exact": (0, 0)})


def test_element_passes_on_rel_or_abs():
    p = {"w": np.array([1e-13, 1.0])}
    loss_fn = lambda t: (t["w"] * np.array([1e-13, 2.0])).sum()  # noqa: E731
    # element 0: engine 1e-13 vs hand 5e-13: rel 0.67 but |diff| 4e-13 <= 1e-12 -> passes
    assert compare_gradients(loss_fn, p, {"w": np.array([5e-13, 2.0])}, numeric=False, torch=False).ok()
    r = compare_gradients(loss_fn, p, {"w": np.array([1e-13, 2.0 + 1e-8])}, numeric=False, torch=False)
    assert r.failing() == {"w"} and r.worst.index == (1,)


def test_nothing_compared():
    r = compare_gradients(lambda t: (t["w"] ** 2).sum(), {"w": np.ones(3)}, numeric=False, torch=False)
    assert r.kinds == () and r.worst is None and r.ok()
    assert "[PASS]" in str(r)


def test_unused_param_gets_zero_engine_gradient():
    r = compare_gradients(lambda t: (t["w"] ** 2).sum(), {"w": np.ones(2), "unused": np.ones(3)},
                          {"w": 2 * np.ones(2), "unused": np.zeros(3)})
    assert r.ok() and any("'unused' does not reach the loss" in n for n in r.notes)


# ----------------------------------------------------------------- torch column

@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch not installed")
def test_torch_column_matches(toy):
    params, X, y, reg, loss_fn = toy
    report = compare_gradients(loss_fn, params, numeric=False, torch=True)
    assert report.kinds == ("torch",) and report.ok()
    assert report.losses["torch"] == pytest.approx(report.losses["engine"], rel=1e-14)
    off = compare_gradients(loss_fn, params, numeric=False, torch=False)
    assert off.kinds == () and not off.notes


def test_torch_absent(toy, monkeypatch):
    params, X, y, reg, loss_fn = toy
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    report = compare_gradients(loss_fn, params, toy_hand(toy), numeric=False, torch="auto")
    assert report.kinds == ("hand",) and report.ok()
    assert any("PyTorch is not installed" in n for n in report.notes)
    assert "note: PyTorch is not installed" in str(report)
    with pytest.raises(ImportError, match="torch=True but PyTorch is not installed"):
        compare_gradients(loss_fn, params, numeric=False, torch=True)
    with pytest.raises(ValueError, match="torch must be"):
        compare_gradients(loss_fn, params, numeric=False, torch="yes")


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch not installed")
def test_torch_replay_failure_is_a_note_under_auto():
    class NoTwin(tl.Function):
        symbol = "sq"
        rule = "2x"

        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def backward(g, out, xs, needs):
            return (g * 2 * xs[0],)

    fn = lambda t: NoTwin.apply(t["w"]).sum()  # noqa: E731
    r = compare_gradients(fn, {"w": np.arange(3.0)}, {"w": 2 * np.arange(3.0)})
    assert r.kinds == ("hand", "numeric") and r.ok()
    assert any("replaying the graph in PyTorch failed" in n for n in r.notes)
    with pytest.raises(RuntimeError, match="replaying the graph in PyTorch failed"):
        compare_gradients(fn, {"w": np.arange(3.0)}, numeric=False, torch=True)


# ----------------------------------------------------------------- problems and the CLI

def test_problem_errors():
    with pytest.raises(ValueError, match="model must be one of"):
        problem("vgg")
    with pytest.raises(ValueError, match="ng has data random, not 'fixture'"):
        problem("ng", "fixture")
    with pytest.raises(ValueError, match="bug= applies"):
        problem("column", bug="l2")


def test_cli_all_four_models():
    procs = {m: subprocess.Popen([sys.executable, "-m", "tinygrad_lite.compare", "--model", m,
                                  "--torch", "off"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for m in MODELS}
    for m, p in procs.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, (m, out, err)
        assert "[PASS]" in out and "hand rel_error" in out and "numeric rel_error" in out
        for name in ("W1", "b1", "W2", "b2"):
            assert f"\n{name} " in out
    # the column fixture's trap is pointed out
    # (checked on the text the CLI printed above for column)


def test_cli_markdown_column_notes_and_errors():
    r = subprocess.run([sys.executable, "-m", "tinygrad_lite.compare", "--model", "column",
                        "--markdown", "--torch", "off", "--no-numeric"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "| b1 | (4,) |" in r.stdout and "cannot tell a right derivation from zeros" in r.stdout
    r = subprocess.run([sys.executable, "-m", "tinygrad_lite.compare", "--model", "scratch",
                        "--data", "fixture"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "scratch has data random" in r.stderr


def test_row_and_worst_conveniences():
    r = run("ng", torch=False)
    row = r["W1"]
    assert row["hand"] is row.comparisons["hand"]
    assert row.hand_rel_error == row.comparisons["hand"].rel_error and row.torch_rel_error is None
    d = r.as_dicts()[0]
    assert d["name"] == "W1" and d["shape"] == (4, 25) and d["ok"] and "numeric_max_abs" in d
    w = r.worst
    assert (w.name, w.parameter, w.kind, w.numbers) == (w.param, w.param, w.comparison, (w.engine, w.other))
    with pytest.raises(AttributeError):
        row.nothing_here


def test_scalar_parameter():
    r = compare_gradients(lambda t: (t["a"] ** 3).sum(), {"a": np.float64(2.0)}, {"a": 12.0})
    assert r.ok() and r["a"].shape == () and r.worst.index == ()


def test_float32_params_are_compared_in_float64(toy):
    params, X, y, reg, loss_fn = toy
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    r = compare_gradients(loss_fn, p32, toy_hand(toy), numeric=False, torch=False)
    assert r.ok() and all(row.engine.dtype == np.float64 for row in r)
    assert any(n.startswith("params cast to float64: W1 (float32)") for n in r.notes)


@pytest.mark.parametrize("h", [0, 0.0, -1e-5, float("nan"), float("inf"), True])
def test_bad_step_h_is_a_clear_error(toy, h):
    params, X, y, reg, loss_fn = toy
    with pytest.raises(ValueError, match=r"h \(the central-difference step\) must be a finite number > 0"):
        compare_gradients(loss_fn, params, numeric=True, torch=False, h=h)


@pytest.mark.parametrize("flag, value", [("--h", "0"), ("--h", "-1"), ("--h", "nan"), ("--h", "inf"),
                                         ("--h", "abc"), ("--seed", "-1"), ("--seed", "1.5"),
                                         ("--seed", str(2 ** 32))])
def test_cli_bad_numbers_are_usage_errors_naming_the_flag(capsys, flag, value):
    from tinygrad_lite.compare.__main__ import main
    with pytest.raises(SystemExit) as exit_:
        main(["--model", "cs231n", flag, value, "--torch", "off"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {flag}: " in err and value in err and "Traceback" not in err


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch not installed")
def test_torch_gradients_unused_leaf_gets_zeros_and_no_grad_leaf_is_named():
    from tinygrad_lite.torch_replay import torch_gradients
    w = tl.Tensor(np.arange(3.0), requires_grad=True, name="w")
    outside = tl.Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True, name="outside")
    loss = (w * w).sum()
    gw, go = torch_gradients(loss, [w, outside])
    np.testing.assert_allclose(gw, 2 * np.arange(3.0))
    assert go.shape == (2, 2) and go.dtype == np.float32 and not go.any()
    (go_only,) = torch_gradients(loss, [outside])
    assert not go_only.any()
    assert torch_gradients(loss, []) == []
    with pytest.raises(ValueError, match=r"leaf 1 \(const, shape \(3,\)\) does not require grad"):
        torch_gradients(loss, [w, tl.Tensor(np.ones(3), name="const")])
    with pytest.raises(TypeError, match="leaf 0 is a ndarray"):
        torch_gradients(loss, [np.ones(3)])


# ----------------------------------------------------------------- bad input, named

@pytest.mark.parametrize("grad, error, what", [
    ("0.1 0.2", TypeError, "is a str"),
    ([[0.1, 0.2, 0.3]] * 3 + [[0.1]], ValueError, "ragged nested sequence"),
    (np.ones((4, 10), dtype=complex), TypeError, "dtype complex128"),
    (np.ones((4, 10), dtype=bool), TypeError, "dtype bool"),
    (np.array([{}, {}]), TypeError, "dtype object"),
])
def test_hand_gradient_that_is_not_numbers_names_the_parameter(toy, grad, error, what):
    params, X, y, reg, loss_fn = toy
    _, g = ref.cs231n_two_layer(params, X, y, reg)
    with pytest.raises(error, match=rf"the hand gradient for 'W1' .*{what}"):
        compare_gradients(loss_fn, params, dict(g, W1=grad), numeric=False, torch=False)
    with pytest.raises(error, match=rf"parameter 'W1' .*{what}"):
        compare_gradients(loss_fn, dict(params, W1=grad), numeric=False, torch=False)


@pytest.mark.parametrize("loss", ["1.3", [1.0, 2.0], None])
def test_hand_loss_that_is_not_one_number_is_named(toy, loss):
    params, X, y, reg, loss_fn = toy
    _, g = ref.cs231n_two_layer(params, X, y, reg)
    with pytest.raises((TypeError, ValueError), match="loss hand|hand\\(params\\) returned a loss"):
        compare_gradients(loss_fn, params, lambda p: (loss, g), numeric=False, torch=False)


@pytest.mark.parametrize("tolerances, error, match", [
    ({"hand": 1e-9}, TypeError, r"tolerances\['hand'\] must be a pair \(rtol, atol\), got 1e-09"),
    ({"hand": (1e-9,)}, TypeError, r"tolerances\['hand'\] must be a pair"),
    ({"hand": (1e-9, 1e-12, 0)}, TypeError, r"tolerances\['hand'\] must be a pair"),
    ({"hand": "ab"}, TypeError, r"tolerances\['hand'\] must be a pair"),
    ({"numeric": (-1e-6, 1e-8)}, ValueError,
     r"tolerances\['numeric'\]: rtol must be a finite number >= 0, got -1e-06"),
    ({"numeric": (1e-6, float("nan"))}, ValueError,
     r"tolerances\['numeric'\]: atol must be a finite number >= 0, got nan"),
    ({"torch": (float("inf"), 0)}, ValueError, r"tolerances\['torch'\]: rtol must be a finite"),
    ({"hand": (True, 0)}, TypeError, r"tolerances\['hand'\]: rtol must be a number, got True"),
    ({"hand": ("1e-9", 0)}, TypeError, r"tolerances\['hand'\]: rtol must be a number, got '1e-9'"),
    ([("hand", (1e-9, 0))], TypeError, "tolerances must be a dict kind -> \\(rtol, atol\\)"),
    ({"exact": (0, 0)}, ValueError, "unknown comparison 'exact' in tolerances"),
])
def test_bad_tolerances_name_the_kind_and_the_tolerance(toy, tolerances, error, match):
    params, X, y, reg, loss_fn = toy
    with pytest.raises(error, match=match):
        compare_gradients(loss_fn, params, numeric=False, torch=False, tolerances=tolerances)


def test_tolerances_accept_lists_and_zero():
    p = {"w": np.array([1.0, 2.0])}
    r = compare_gradients(lambda t: (t["w"] ** 2).sum(), p, {"w": np.array([2.0, 4.0])}, numeric=False,
                          torch=False, tolerances={"hand": [0, 0]})
    assert r.ok() and r["w"]["hand"].rtol == 0.0 and r.tolerances["numeric"] == DEFAULT_TOLERANCES["numeric"]


# ----------------------------------------------------------------- the caller's tensors are not touched

def test_a_tensor_from_outside_params_keeps_its_grad():
    outside = tl.Tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True, name="outside")
    held = np.full(3, 7.0)
    outside.grad = held
    scaled = outside * 2.0  # an intermediate of the caller's, made before the call
    fresh = tl.Tensor(np.ones(3), requires_grad=True)  # one whose .grad is still None

    def loss_fn(t):
        return (t["w"] * outside).sum() + (scaled * t["w"] * fresh).sum()

    w = np.array([0.3, 0.2, -0.1])
    hand = {"w": outside.data + 2.0 * outside.data}
    report = compare_gradients(loss_fn, {"w": w}, hand, torch=HAVE_TORCH and "auto")
    assert report.ok(), str(report)
    assert outside.grad is held and np.array_equal(held, np.full(3, 7.0))
    assert scaled.grad is None and fresh.grad is None
    # the report's own graph carries its gradients, as after backward(), for diagrams
    leaf = report.leaves["w"]
    np.testing.assert_array_equal(leaf.grad, hand["w"])
    assert leaf.grad.flags.writeable and report.graph.grad == 1.0
    inner = [t for t in tl.backward_order(report.graph) if t.op is not None and t.stamp > leaf.stamp]
    assert inner and all(t.grad is not None and not t.grad.flags.writeable for t in inner)


def test_a_loss_fn_that_ignores_its_tensors_is_still_refused():
    outside = tl.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="does not depend on any parameter"):
        compare_gradients(lambda t: (outside * 3).sum(), {"w": np.ones(2)}, numeric=False, torch=False)
    assert outside.grad is None


def test_cli_whose_reader_is_gone_ends_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` once head has exited: every write fails with EPIPE
    try:
        r = subprocess.run([sys.executable, "-m", "tinygrad_lite.compare", "--model", "cs231n",
                            "--torch", "off", "--no-numeric"], stdout=write_end,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert r.returncode == 1 and r.stderr == ""
