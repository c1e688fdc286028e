"""The losses against ``torch.nn.functional`` itself (not a replay of our graph): every
option PyTorch has for cross_entropy, binary_cross_entropy(_with_logits) and mse_loss,
values and gradients, plus their errors. The op-table factory (test_ops.py) checks the
same composites against central differences and second derivatives."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from tinygrad_lite.nn import functional as F

from test_ops import draw_cross_entropy, rng_of

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def as_torch(value):
    return torch.tensor(np.asarray(value)) if value is not None else None


def compare(ours_fn, theirs_fn, x, target, target_grad: bool = False):
    """Value and gradients (of x, and of a float target when ``target_grad``) of our
    loss and PyTorch's, with the same upstream gradient."""
    t = tl.Tensor(x, requires_grad=True)
    y = tl.Tensor(target, requires_grad=True) if target_grad else target
    out = ours_fn(t, y)
    grad_output = np.random.default_rng(0).uniform(0.5, 1.5, out.shape)
    leaves = [t, y] if target_grad else [t]
    ours = tl.grad(out, leaves, grad_outputs=grad_output)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.tensor(np.asarray(target), requires_grad=target_grad)
    tout = theirs_fn(tx, ty)
    theirs = torch.autograd.grad(tout, [tx, ty] if target_grad else [tx], torch.tensor(grad_output))
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, atol=1e-14)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-10, atol=1e-14)
    return out


@given(data=st.data())
def test_cross_entropy_matches_torch_functional(data):
    rng = rng_of(data.draw)
    shape, target, kw = draw_cross_entropy(data.draw, rng)
    x = rng.uniform(-3, 3, shape)
    theirs_kw = dict(kw, weight=as_torch(kw.get("weight")))
    target_grad = target.dtype.kind == "f" and data.draw(st.booleans())
    compare(lambda t, y: tl.cross_entropy(t, y, **kw),
            lambda t, y: TF.cross_entropy(t, y if target.dtype.kind == "f" else y.long(), **theirs_kw),
            x, target, target_grad)


@given(data=st.data())
def test_binary_losses_match_torch_functional(data):
    rng = rng_of(data.draw)
    shape = data.draw(st.sampled_from([(), (4,), (3, 2), (2, 3, 2)]))
    name = data.draw(st.sampled_from(["binary_cross_entropy", "binary_cross_entropy_with_logits",
                                      "mse_loss"]))
    kw = {"reduction": data.draw(st.sampled_from(["mean", "sum", "none"]))}
    if name != "mse_loss" and data.draw(st.booleans()):
        kw["weight"] = rng.uniform(0.2, 2.0, shape[-1:])
    if name == "binary_cross_entropy_with_logits" and data.draw(st.booleans()):
        kw["pos_weight"] = rng.uniform(0.2, 3.0, shape[-1:])
    x = rng.uniform(0.01, 0.99, shape) if name == "binary_cross_entropy" else rng.uniform(-30, 30, shape)
    target = rng.uniform(0.05, 0.95, shape) if data.draw(st.booleans()) else (rng.random(shape) < 0.5) * 1.0
    theirs_kw = {k: as_torch(v) if k != "reduction" else v for k, v in kw.items()}
    compare(lambda t, y: getattr(tl, name)(t, y, **kw),
            lambda t, y: getattr(TF, name)(t, y, **theirs_kw), x, target,
            target_grad=data.draw(st.booleans()))


def test_cross_entropy_default_is_cs231ns_mean_over_the_batch():
    scores = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    y = np.array([1, 2])
    shifted = scores - scores.max(axis=1, keepdims=True)
    manual = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(2), y])
    assert tl.cross_entropy(scores, y).item() == pytest.approx(manual, rel=1e-15)
    per = tl.cross_entropy(scores, y, reduction="none")
    assert per.shape == (2,) and per.sum().item() == pytest.approx(2 * manual)


def _constants(loss: tl.Tensor) -> list:
    return [p.data for n in tl.backward_order(loss) if n.op is not None for p in n.parents
            if p.op is None and not p.requires_grad]


@pytest.mark.parametrize("make", [
    lambda s: tl.cross_entropy(s, np.array([0, 1, 2, 0])),
    lambda s: tl.cross_entropy(s, np.array([0, -100, 2, 0]), np.array([1.0, 2.0, 3.0]), label_smoothing=0.2),
    lambda s: tl.cross_entropy(s, np.full((4, 3), 1 / 3), reduction="sum"),
    lambda s: tl.log_softmax(s, axis=0).sum(),
    lambda s: tl.softmax(s).sum(),
])
def test_the_composites_read_no_values_of_the_logits(make):
    """Built on logsumexp or the fused softmax cross-entropy (the max shift is inside
    the gate): two different logits
    give graphs with the same ops and the same constants, so a tracer can follow it."""
    rng = np.random.default_rng(0)
    first = make(tl.Tensor(rng.standard_normal((4, 3)), requires_grad=True))
    second = make(tl.Tensor(rng.standard_normal((4, 3)) * 100, requires_grad=True))
    ops_of = lambda loss: [n.op.name for n in tl.backward_order(loss) if n.op is not None]  # noqa: E731
    assert ops_of(first) == ops_of(second)
    assert {"logsumexp", "softmax_cross_entropy"} & set(ops_of(first))
    for a, b in zip(_constants(first), _constants(second)):
        np.testing.assert_array_equal(a, b)


def test_cross_entropy_ignored_labels_and_weights():
    scores = np.random.default_rng(1).standard_normal((4, 3))
    y = np.array([0, -100, 2, 1])
    w = np.array([1.0, 2.0, 0.5])
    out = tl.cross_entropy(scores, y, w)
    ref = TF.cross_entropy(torch.tensor(scores), torch.tensor(y), torch.tensor(w))
    assert out.item() == pytest.approx(ref.item(), rel=1e-14)
    assert tl.cross_entropy(scores, y, reduction="none").data[1] == 0.0
    # nothing counts: a nan loss and zero gradients, as PyTorch
    s = tl.Tensor(scores, requires_grad=True)
    for labels, w in ((np.full(4, -100), None), (np.array([0, 0, 2, 2]), np.array([0.0, 1.0, 0.0])),
                      (np.full(4, 1), np.array([1.0, 0.0, 1.0]))):
        loss = tl.cross_entropy(s, labels, w)
        ref = TF.cross_entropy(torch.tensor(scores, requires_grad=True), torch.tensor(labels),
                               None if w is None else torch.tensor(w))
        assert np.isnan(loss.item()) and np.isnan(ref.item())
        loss.backward()
        np.testing.assert_array_equal(s.grad, np.zeros((4, 3)))
        s.grad = None


@pytest.mark.parametrize("call,cls,words", [
    (lambda s: tl.cross_entropy(s, np.array([0, 1, 1]), reduction="avg"), ValueError, "reduction"),
    (lambda s: tl.cross_entropy(s, np.array([0, 1, 1]), label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda s: tl.cross_entropy(s, np.array([0, 1, 1]), np.ones(4)), ValueError, r"weight.*\(3,\)"),
    (lambda s: tl.cross_entropy(s, np.array([0, 1, 3])), IndexError, "label 3"),
    (lambda s: tl.cross_entropy(s, np.array([0, -100, 1]), ignore_index=-1), IndexError, "label -100"),
    (lambda s: tl.cross_entropy(s, np.ones((3, 3)), ignore_index=0), ValueError, "ignore_index"),
    (lambda s: tl.cross_entropy(s, np.ones((3, 2))), TypeError, r"integers.*\(3,\)"),
    (lambda s: tl.cross_entropy(s.sum(), np.array(0)), ValueError, "2-D"),
    (lambda s: tl.binary_cross_entropy(s.sigmoid(), np.full((3, 3), 1.5)), ValueError, "between 0 and 1"),
    (lambda s: tl.binary_cross_entropy(s, np.ones((3, 3))), ValueError, "input must be between"),
    (lambda s: tl.binary_cross_entropy(s.sigmoid(), np.ones(3)), ValueError, "shape"),
    (lambda s: tl.binary_cross_entropy_with_logits(s, np.ones((3, 3)), reduction=None), ValueError, "reduction"),
    (lambda s: tl.mse_loss(s, np.ones((3, 3)), reduction="max"), ValueError, "mse_loss: reduction"),
])
def test_loss_errors_name_the_loss(call, cls, words):
    s = tl.Tensor(np.linspace(-2, 2, 9).reshape(3, 3), requires_grad=True)
    with pytest.raises(cls, match=words):
        call(s)


def test_functional_module_has_the_losses_and_activations_under_torch_names():
    for name in ("cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                 "mse_loss", "log_softmax", "softmax", "leaky_relu", "elu", "softplus", "gelu",
                 "relu6", "hardswish", "mish", "pad"):
        assert callable(getattr(F, name)), name
        assert name in F.__all__
