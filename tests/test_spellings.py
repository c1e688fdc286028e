"""The names PyTorch, NumPy, tinygrad and micrograd users type, each doing what it does
there: operator methods and functions, cat/stack, flatten, reshape(shape=), clip's
NumPy names, squeeze's two meanings, expand, flip, pad, tl.<op> for every elementwise
op, micrograd's scalar style, where, and cs231n's grad_check_sparse."""
from __future__ import annotations

import random

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite.nn import functional as F
from tinygrad_lite.tensor import TENSOR

torch = pytest.importorskip("torch")


def leaf(a):
    return tl.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def test_operator_methods_and_functions_under_torch_and_numpy_names():
    a, b = leaf([1.0, 2.0]), leaf([3.0, -4.0])
    pairs = [(a.add(b), a + b), (a.add(b, alpha=2), a + 2 * b), (a.sub(b, alpha=0.5), a - 0.5 * b),
             (a.mul(b), a * b), (a.div(b), a / b), (a.neg(), -a), (a.pow(b), a ** b),
             (a.pow(2), a ** 2), (a.matmul(b), a @ b), (tl.add(a, b), a + b),
             (tl.subtract(a, b), a - b), (tl.sub(a, b), a - b), (tl.multiply(a, b), a * b),
             (tl.mul(a, b), a * b), (tl.divide(a, b), a / b), (tl.div(2.0, b), 2.0 / b),
             (tl.negative(a), -a), (tl.neg(a), -a), (tl.power(a, b), a ** b), (tl.pow(2.0, b), 2.0 ** b),
             (tl.power(np.array([2.0, 3.0]), b), np.array([2.0, 3.0]) ** b), (tl.matmul(a, b), a @ b)]
    for got, want in pairs:
        assert isinstance(got, tl.Tensor) and got.requires_grad
        np.testing.assert_array_equal(got.data, want.data)
    with pytest.raises(ValueError, match="div: rounding_mode='floor'"):
        a.div(b, rounding_mode="floor")


def test_every_elementwise_op_has_a_free_function():
    x = leaf([-1.5, 0.5, 2.0])
    for name in ("abs", "exp", "log1p", "sqrt", "relu", "sigmoid", "tanh", "sign", "sin", "cos",
                 "expm1", "erf", "square", "relu6", "hardswish", "mish", "leaky_relu", "elu",
                 "softplus", "gelu"):
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(getattr(tl, name)(x).data, getattr(x, name)().data, err_msg=name)
    np.testing.assert_array_equal(tl.log(abs(x)).data, abs(x).log().data)
    np.testing.assert_array_equal(tl.exp(np.array([0.0, 1.0])).data, np.exp([0.0, 1.0]))
    assert tl.minimum(x, 0.0).data.tolist() == [-1.5, 0.0, 0.0]
    assert tl.clamp(x, -1, 1).data.tolist() == [-1.0, 0.5, 1.0]


def test_erf_is_the_c_librarys_to_the_last_bit():
    import math
    x = np.concatenate([np.linspace(-6, 6, 1001), [0.0, -0.0, 1e-300, np.inf, -np.inf]])
    np.testing.assert_array_equal(tl.erf(x).data, [math.erf(v) for v in x])
    np.testing.assert_allclose(tl.erf(x).data, torch.erf(torch.tensor(x)).numpy(), rtol=1e-15, atol=1e-16)
    assert tl.erf(np.float32([0.5])).dtype == np.float32
    assert np.isnan(tl.erf(np.array([np.nan])).item())


def test_cat_and_stack_in_numpy_torch_and_tinygrad_spellings():
    a, b, c = leaf(np.ones((2, 3))), leaf(np.zeros((2, 3))), np.full((2, 3), 2.0)
    want = np.concatenate([a.data, b.data, c], axis=1)
    for got in (tl.cat([a, b, c], dim=1), tl.cat((a, b, c), 1), tl.cat([a, b, c], axis=1),
                a.cat(b, c, dim=1), tl.Tensor.cat([a, b, c], dim=1), tl.concatenate([a, b, c], dim=1),
                tl.concatenate((a, b, c), axis=1)):
        np.testing.assert_array_equal(got.data, want)
    want = np.stack([a.data, b.data, c], axis=1)
    for got in (tl.stack([a, b, c], dim=1), tl.stack([a, b, c], 1), a.stack(b, c, dim=1),
                tl.Tensor.stack([a, b, c], dim=1), tl.Tensor.stack(a, b, c, dim=1)):
        np.testing.assert_array_equal(got.data, want)
    assert a.cat(b).shape == (4, 3) and a.stack(b).shape == (2, 2, 3)
    with pytest.raises(TypeError, match="cat: give axis or dim"):
        tl.cat([a, b], dim=1, axis=0)
    with pytest.raises(TypeError, match="sequence of tensors"):
        tl.stack(a)
    with pytest.raises(ValueError, match="concatenate"):
        a.cat(np.ones((2, 4)))


@pytest.mark.parametrize("shape,start,end", [((2, 3, 4), 0, -1), ((2, 3, 4), 1, -1), ((2, 3, 4), 0, 1),
                                             ((2, 3, 4, 5), 1, 2), ((2, 3), -1, -1), ((), 0, -1),
                                             ((3,), 0, 0)])
def test_flatten_is_torchs(shape, start, end):
    a = np.arange(float(np.prod(shape, dtype=int))).reshape(shape)
    want = torch.flatten(torch.tensor(a), start, end).numpy()
    got = leaf(a).flatten(start, end)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.data, want)
    assert tl.flatten(a, start_dim=start, end_dim=end).shape == want.shape


def test_flatten_errors():
    x = leaf(np.ones((2, 3)))
    with pytest.raises(np.exceptions.AxisError, match="flatten: axis 2"):
        x.flatten(2)
    with pytest.raises(ValueError, match="start_dim 1 comes after end_dim 0"):
        x.flatten(1, 0)


def test_reshape_takes_shape_as_a_keyword():
    x = leaf(np.arange(6.0))
    assert x.reshape(shape=(2, 3)).shape == (2, 3) and x.reshape(shape=[3, -1]).shape == (3, 2)
    with pytest.raises(TypeError, match="reshape: give the shape once"):
        x.reshape(2, shape=(3,))
    with pytest.raises(TypeError, match="reshape"):
        x.reshape(newshape=(6,))


def test_clip_takes_numpys_names_and_np_clip_works():
    x = leaf([-2.0, 0.5, 3.0])
    for got in (x.clip(a_min=-1, a_max=1), x.clip(-1, 1), tl.clip(x, a_min=-1, a_max=1),
                np.clip(x, -1, 1), x.clamp(-1, 1), x.clamp(min=-1, max=1)):
        assert got.data.tolist() == [-1.0, 0.5, 1.0] and got.requires_grad
    assert x.clip(a_max=0.0).data.tolist() == [-2.0, 0.0, 0.0]
    with pytest.raises(TypeError, match="clip: give min or a_min, not both"):
        x.clip(0.0, a_min=1.0)
    with pytest.raises(ValueError, match="clip: give min, max or both"):
        x.clip()


def test_squeeze_positional_or_dim_is_torchs_axis_keyword_is_numpys():
    x = leaf(np.ones((1, 3, 1)))
    assert x.squeeze().shape == (3,)
    assert x.squeeze(0).shape == (3, 1) and x.squeeze(dim=-1).shape == (1, 3)
    assert x.squeeze(1).shape == (1, 3, 1)          # size 3: left as it is (PyTorch)
    assert x.squeeze((0, 1)).shape == (3, 1)         # a tuple of dims (PyTorch >= 2.0)
    assert tl.squeeze(x, 1).shape == (1, 3, 1)
    assert x.squeeze(axis=0).shape == (3, 1) and x.squeeze(axis=(0, 2)).shape == (3,)
    for numpy_spelling in (lambda: x.squeeze(axis=1), lambda: tl.squeeze(x, axis=1)):
        with pytest.raises(ValueError, match=r"squeeze: .*size not equal to one.*\(1, 3, 1\)"):
            numpy_spelling()
    with pytest.raises(np.exceptions.AxisError, match="squeeze: axis 3"):
        x.squeeze(3)
    with pytest.raises(TypeError, match="dim .* or axis"):
        x.squeeze(0, axis=0)
    s = leaf(2.0)
    assert s.squeeze(0).shape == () and s.squeeze(-1).shape == ()
    for dims in ((1, 3, 1), (2, 1), (1,)):
        t = torch.ones(dims)
        for d in range(-len(dims), len(dims)):
            assert leaf(np.ones(dims)).squeeze(d).shape == tuple(t.squeeze(d).shape)


def test_unsqueeze_and_expand_as_torch():
    x = leaf(np.arange(3.0))
    for d in (0, 1, -1, -2):
        assert x.unsqueeze(d).shape == tuple(torch.arange(3.0).unsqueeze(d).shape)
    y = x.unsqueeze(0)
    assert y.expand(4, 3).shape == (4, 3) and y.expand(4, -1).shape == (4, 3)
    assert y.expand((2, 4, -1)).shape == (2, 4, 3) and tl.expand(y, 2, 3).shape == (2, 3)
    y.expand(4, -1).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0, 4.0])
    for bad, words in (((4, 4), "expanded size \\(4\\) must match the existing size \\(3\\)"),
                       ((3,), "number of sizes"), ((-1, 2, 3), "-1 is not allowed"),
                       ((2, -2), "ints >= -1")):
        with pytest.raises(RuntimeError, match=words):
            y.expand(*bad)


def test_flip_forms_and_torch():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = leaf(a)
    for got, dims in ((x.flip(0), (0,)), (x.flip(0, 2), (0, 2)), (x.flip((1, -1)), (1, 2)),
                      (x.flip(axis=1), (1,)), (tl.flip(x, axis=(0, 1)), (0, 1)), (x.flip(), (0, 1, 2))):
        np.testing.assert_array_equal(got.data, torch.tensor(a).flip(dims).numpy())
    with pytest.raises(ValueError, match="flip: repeated axis"):
        x.flip(0, -3)
    with pytest.raises(np.exceptions.AxisError, match="flip: axis 3"):
        x.flip(3)


@pytest.mark.parametrize("width", [1, (1, 2), ((0, 1), (2, 0)), [(1, 1)], ((2,), (1,))])
def test_pad_takes_numpys_pad_width(width):
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(tl.pad(a, width, constant_values=7).data,
                                  np.pad(a, width, constant_values=7))
    np.testing.assert_array_equal(leaf(a).pad(width, value=-1).data, np.pad(a, width, constant_values=-1))


@pytest.mark.parametrize("amounts", [(1, 2), (0, 1, 2, 0), (-1, 1), (1, -1, -1, 2), (2, 2, 0, 0)])
def test_functional_pad_is_torchs_flat_form_with_cropping(amounts):
    a = np.arange(12.0).reshape(3, 4)
    x = leaf(a)
    out = F.pad(x, amounts, value=0.5)
    t = torch.tensor(a, requires_grad=True)
    want = torch.nn.functional.pad(t, amounts, value=0.5)
    np.testing.assert_array_equal(out.data, want.detach().numpy())
    w = np.random.default_rng(0).standard_normal(out.shape)
    (out * w).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad, t.grad.numpy())


def test_pad_errors():
    x = leaf(np.ones((2, 3)))
    for call, cls, words in ((lambda: x.pad(-1), ValueError, "negative"),
                             (lambda: x.pad(1.5), TypeError, "ints"),
                             (lambda: x.pad(((1, 1), (1, 1), (1, 1))), ValueError, "2 dimension"),
                             (lambda: tl.pad(x, 1, mode="reflect"), ValueError, "constant"),
                             (lambda: F.pad(x, (1,)), ValueError, "two per padded axis"),
                             (lambda: F.pad(x, (-2, -2)), ValueError, "leaves nothing"),
                             (lambda: x.pad(1, np.ones(2)), ValueError, "one number")):
        with pytest.raises(cls, match=words):
            call()


def test_micrograd_scalars_need_requires_grad():
    # micrograd's README example: Value(-4.0) tracks gradients by default, a Tensor asks
    # for it with requires_grad=True; everything else reads the same
    a = tl.Tensor(-4.0, requires_grad=True)
    b = tl.Tensor(2.0, requires_grad=True)
    c = a + b
    d = a * b + b ** 3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e ** 2
    g = f / 2.0
    g += 10.0 / f
    assert f"{g.data:.4f}" == "24.7041"
    g.backward()
    assert f"{a.grad:.4f}" == "138.8338" and f"{b.grad:.4f}" == "645.5773"
    plain = tl.Tensor(3.0)
    assert plain.dtype == np.float64 and plain.shape == () and not plain.requires_grad
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        (plain * 2).backward()


def test_where_with_comparisons_and_torchs_method():
    x = leaf([0.2, 0.7, 0.9])
    mask = x > 0.5
    assert isinstance(mask, np.ndarray) and mask.dtype == bool and not hasattr(mask, "where")
    out = tl.where(x > 0.5, x, 0.0)
    assert out.data.tolist() == [0.0, 0.7, 0.9]
    np.testing.assert_array_equal(x.where(x > 0.5, -x).data, [-0.2, 0.7, 0.9])  # torch's order
    np.testing.assert_array_equal(x.where(tl.Tensor(mask), 1.0).data, [1.0, 0.7, 0.9])
    assert tl.where(np.array([True, False]), 4, 2).dtype == np.where([True, False], 4, 2).dtype


def test_cumsum_takes_axis_or_dim():
    x = leaf(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.cumsum(dim=1).data, np.cumsum(x.data, axis=1))
    np.testing.assert_array_equal(x.cumsum(0).data, np.cumsum(x.data, axis=0))
    np.testing.assert_array_equal(x.cumsum().data, np.cumsum(x.data))
    with pytest.raises(TypeError, match="cumsum: give axis or dim"):
        x.cumsum(0, dim=1)


def test_activation_settings_are_checked():
    x = leaf([1.0])
    for call, cls, words in ((lambda: x.gelu("exact"), ValueError, "gelu: approximate"),
                             (lambda: x.softplus(beta=0), ValueError, "beta must not be 0"),
                             (lambda: x.leaky_relu("0.1"), TypeError, "negative_slope must be a number"),
                             (lambda: x.elu(alpha=None), TypeError, "elu: alpha")):
        with pytest.raises(cls, match=words):
            call()


def test_grad_check_sparse_is_cs231ns(capsys):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 4))
    X, y = rng.standard_normal((6, 5)), np.array([0, 1, 2, 3, 0, 1])
    Wt = tl.Tensor(W, requires_grad=True)
    loss = tl.cross_entropy(tl.Tensor(X) @ Wt, y)
    loss.backward()
    f = lambda w: tl.cross_entropy(X @ w, y).item()  # noqa: E731  (cs231n: f(W) with W changing in place)
    random.seed(1)
    errors = tl.grad_check_sparse(f, W, Wt.grad, num_checks=7)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(errors) == len(lines) == 7 and max(errors) < 1e-7
    assert lines[0].startswith("numerical: ") and "analytic: " in lines[0] and "relative error: " in lines[0]
    random.seed(1)
    again = tl.grad_check_sparse(f, W, Wt.grad, num_checks=7, verbose=False)
    assert again == errors and capsys.readouterr().out == ""   # random.seed repeats the entries
    np.testing.assert_array_equal(W, tl.Tensor(W).data)        # every entry put back
    wrong = tl.grad_check_sparse(f, W, Wt.grad * 2, num_checks=3, verbose=False)
    assert min(wrong) > 0.3
    with pytest.raises(ValueError, match="analytic_grad has shape"):
        tl.grad_check_sparse(f, W, Wt.grad[0])
    with pytest.raises(TypeError, match="floating"):
        tl.grad_check_sparse(f, [1.0], [1.0])


def test_tensor_cumprod_is_a_scan_of_products_with_exact_gradients():
    x = leaf([[2.0, 0.0, 3.0, 0.5, 4.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    out = TENSOR.cumprod(x, 1)
    np.testing.assert_array_equal(out.data, np.cumprod(x.data, axis=1))
    names = {n.op.name for n in tl.backward_order(out) if n.op is not None}
    assert names <= {"mul", "concatenate", "getitem"}
    t = torch.tensor(x.data, requires_grad=True)
    w = np.arange(10.0).reshape(2, 5)
    (gx,) = tl.grad((out * w).sum(), [x], create_graph=True)
    (tg,) = torch.autograd.grad((torch.cumprod(t, 1) * torch.tensor(w)).sum(), [t], create_graph=True)
    np.testing.assert_allclose(gx.data, tg.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(tl.grad(gx.sum(), [x])[0], torch.autograd.grad(tg.sum(), [t])[0].numpy(),
                               rtol=1e-13)


def test_numpy_functions_on_a_tensor_dispatch_to_its_methods():
    x = leaf(np.arange(6.0).reshape(2, 3))
    for got, want in ((np.reshape(x, (3, 2)), np.arange(6.0).reshape(3, 2)),
                      (np.cumsum(x, axis=1), np.cumsum(x.data, axis=1)),
                      (np.prod(x, axis=0), np.prod(x.data, axis=0)),
                      (np.squeeze(x[None], axis=0), x.data)):
        assert isinstance(got, tl.Tensor) and got.requires_grad
        np.testing.assert_array_equal(got.data, want)
    with pytest.raises(ValueError, match="order='C'"):
        x.reshape((3, 2), order="F")


def test_tensor_pad_reads_a_flat_sequence_of_four_or_more_as_torch_does():
    a = np.arange(6.0).reshape(2, 3)
    want = torch.nn.functional.pad(torch.tensor(a), (1, 2, 0, 1)).numpy()
    np.testing.assert_array_equal(leaf(a).pad((1, 2, 0, 1)).data, want)
    np.testing.assert_array_equal(leaf(a).pad((1, 2)).data, np.pad(a, (1, 2)))  # two: NumPy's


def test_functional_activations_take_torchs_arguments():
    x = leaf([-1.0, 0.5])
    np.testing.assert_array_equal(F.leaky_relu(x, negative_slope=0.2, inplace=False).data, [-0.2, 0.5])
    np.testing.assert_array_equal(F.elu(x, alpha=1.0).data, x.elu().data)
    np.testing.assert_array_equal(F.softplus(x, beta=2, threshold=10).data, x.softplus(2, 10).data)
    np.testing.assert_array_equal(F.gelu(x, approximate="tanh").data, x.gelu("tanh").data)
    np.testing.assert_array_equal(F.relu(x, inplace=False).data, [0.0, 0.5])
    for fn in (F.relu, F.relu6, F.hardswish, F.mish, F.leaky_relu):
        with pytest.raises(ValueError, match="inplace=True is not supported"):
            fn(x, inplace=True)


@pytest.mark.parametrize("name", ["std", "var"])
@pytest.mark.parametrize("kw", [{"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": (0, 1)},
                                {"dim": 1, "correction": 0}, {"dim": 1, "unbiased": False},
                                {"dim": -1, "unbiased": True}, {"keepdim": True, "dim": None}])
def test_std_and_var_spelled_as_torch_are_torchs(name, kw):
    # PyTorch's spelling (dim=, keepdim=) brings PyTorch's default correction of 1
    a = np.random.default_rng(3).uniform(-2, 2, (3, 4))
    for got in (getattr(leaf(a), name)(**kw), getattr(tl, name)(leaf(a), **kw)):
        want = getattr(torch.tensor(a), name)(**kw).numpy()
        np.testing.assert_allclose(got.data, want, rtol=1e-13)
        assert got.shape == want.shape


@pytest.mark.parametrize("name", ["std", "var"])
def test_std_and_var_spelled_as_numpy_are_numpys(name):
    a = np.random.default_rng(4).uniform(-2, 2, (3, 4))
    x = leaf(a)
    for got, want in ((getattr(x, name)(1), getattr(np, name)(a, 1)),
                      (getattr(x, name)(axis=0, ddof=1), getattr(np, name)(a, axis=0, ddof=1)),
                      (getattr(np, name)(x), getattr(np, name)(a)),  # dispatches to the method
                      (getattr(np, name)(x, axis=1, ddof=1, keepdims=True),
                       getattr(np, name)(a, axis=1, ddof=1, keepdims=True)),
                      (getattr(x, name)(axis=1, correction=1), getattr(np, name)(a, 1, ddof=1))):
        assert isinstance(got, tl.Tensor) and got.requires_grad
        np.testing.assert_allclose(got.data, want, rtol=1e-13)


@pytest.mark.parametrize("kw,message", [
    ({"ddof": 1, "correction": 1}, "one of ddof, correction and unbiased"),
    ({"dim": 1, "unbiased": 2}, "unbiased must be True or False"),
    ({"ddof": "1"}, "ddof must be a number"),
    ({"axis": 1, "dim": 1}, "axis or dim, not both"),
    ({"dim": 1, "out": np.empty(3)}, "out= is not supported"),
])
def test_std_and_var_keyword_errors_name_the_keyword(kw, message):
    for name in ("std", "var"):
        with pytest.raises(TypeError, match=message):
            getattr(leaf(np.ones((3, 4))), name)(**kw)


def test_view_numel_dim_and_mT_are_torchs():
    a = np.random.default_rng(5).standard_normal((2, 3, 4))
    x, t = leaf(a), torch.tensor(a, requires_grad=True)
    assert x.numel() == t.numel() == 24 and x.dim() == t.dim() == 3
    for shape in ((6, 4), ((4, -1),), (-1,), (2, 12)):
        assert x.view(*shape).shape == tuple(t.view(*shape).shape)
    w = np.random.default_rng(6).standard_normal((2, 3, 4))
    (x.mT * w.transpose(0, 2, 1)).sum().backward()
    (t.mT * torch.tensor(w.transpose(0, 2, 1))).sum().backward()
    np.testing.assert_array_equal(x.grad, t.grad.numpy())
    np.testing.assert_array_equal(leaf(np.ones((3, 2))).mT.data, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"mT: .*got shape \(3,\)"):
        leaf(np.ones(3)).mT
    with pytest.raises(TypeError, match="view: .*use astype"):
        x.view(np.float32)
    with pytest.raises(TypeError, match="view: .*got none"):
        x.view()
    with pytest.raises(TypeError, match="view: .*ints"):
        x.view((2, 12.0))
    for bad in ((-2, 12), (-1, -1), (2, -3)):  # NumPy would read any negative size as -1
        with pytest.raises(ValueError, match=r"view: invalid shape"):
            x.view(*bad)
    with pytest.raises(ValueError, match="view: cannot reshape"):
        x.view(5, 5)
    assert leaf(2.0).view(()).shape == () and leaf(2.0).view(1).shape == (1,)


@pytest.mark.parametrize("name", ["std", "var"])
def test_std_and_var_axis_errors_name_themselves_and_a_0d_tensor_takes_axis_0(name):
    x = leaf(np.ones((2, 3)))
    with pytest.raises(np.exceptions.AxisError, match=f"{name}: axis 5 is out of bounds"):
        getattr(x, name)(axis=5)
    with pytest.raises(ValueError, match=f"{name}: repeated axis"):
        getattr(x, name)(axis=(0, 0))
    s = leaf(2.0)  # PyTorch reduces a 0-d tensor over dim 0 or -1 (its one element)
    for kw in ({"axis": 0}, {"axis": -1}, {"dim": 0, "correction": 0}):
        got, want = getattr(s, name)(**kw), getattr(torch.tensor(2.0, dtype=torch.float64), name)(
            **({"dim": 0, "correction": 0} if "axis" in kw else kw))
        assert got.shape == () and float(got.data) == float(want) == 0.0
    with pytest.raises(np.exceptions.AxisError, match=f"{name}: axis 1 is out of bounds for a 0-d"):
        getattr(s, name)(axis=1)


@pytest.mark.parametrize("name", ["sum", "mean", "std", "var"])
@pytest.mark.parametrize("empty", [(), []])
def test_dim_of_no_axes_reduces_every_axis_as_torch_and_axis_of_none_reduces_none_as_numpy(name, empty):
    a = np.arange(6.0).reshape(2, 3) ** 2
    x = leaf(a)
    got, want = getattr(x, name)(dim=empty), getattr(torch.tensor(a), name)(dim=empty)
    np.testing.assert_allclose(got.data, want.numpy(), rtol=1e-13)
    assert got.shape == ()
    if name in ("sum", "mean"):  # NumPy's axis=() keeps every element
        np.testing.assert_array_equal(getattr(x, name)(axis=()).data, getattr(np, name)(a, axis=()))
