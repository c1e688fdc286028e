"""The cs231n circuits, as the notes print them."""
import numpy as np

import tinygrad_lite as tl
from tinygrad_lite import reference as ref


def test_add_mul_circuit():
    x, y, z = (tl.Tensor(v, requires_grad=True) for v in (-2.0, 5.0, -4.0))
    q = x + y
    f = q * z
    f.backward()
    assert f.item() == -12.0
    assert (x.grad, y.grad, z.grad, q.grad) == (-4.0, -4.0, 3.0, -4.0)


def test_sigmoid_neuron_circuit():
    w = tl.Tensor([2.0, -3.0, -3.0], requires_grad=True)
    x = tl.Tensor([-1.0, -2.0], requires_grad=True)
    f = (w[0] * x[0] + w[1] * x[1] + w[2]).sigmoid()
    f.backward()
    assert round(f.item(), 2) == 0.73
    np.testing.assert_array_equal(np.round(w.grad, 2), [-0.20, -0.39, 0.20])
    np.testing.assert_array_equal(np.round(x.grad, 2), [0.39, -0.59])


def _toy():
    """cs231n's toy problem (seed 001): np.random.seed(0) model, np.random.seed(1) data."""
    params = ref.init_toy_model()
    X, y = ref.init_toy_data()
    return X, y, [params[k] for k in ("W1", "b1", "W2", "b2")]


def test_two_layer_net_written_as_the_seeds_write_it():
    """Seed 001's forward, line by line on Tensors, against its hand-derived backward."""
    X, y, arrays = _toy()
    W1, b1, W2, b2 = (tl.Tensor(a.copy(), requires_grad=True) for a in arrays)
    N, reg = X.shape[0], 0.05
    z1 = X @ W1 + b1                                   # ndarray on the left
    a1 = tl.maximum(0, z1)
    scores = a1 @ W2 + b2
    exp_scores = scores.exp()
    a2 = exp_scores / exp_scores.sum(axis=1, keepdims=True)
    corect_logprobs = -a2[range(N), y].log()
    data_loss = corect_logprobs.sum() / N
    reg_loss = 0.5 * reg * (W1 * W1).sum() + 0.5 * reg * (W2 * W2).sum()
    loss = data_loss + reg_loss
    loss.backward()

    # the seed's backward, on plain arrays
    _, hand = ref.cs231n_two_layer(dict(zip(("W1", "b1", "W2", "b2"), arrays)), X, y, reg, l2_half=True)
    expected = [hand[k] for k in ("W1", "b1", "W2", "b2")]
    for t, g in zip((W1, b1, W2, b2), expected):
        assert tl.rel_error(t.grad, g) < 1e-10
    # and cs231n's own check of the whole loss
    for t in (W1, b1, W2, b2):
        f = lambda _: float(tl.cross_entropy(tl.maximum(0, X @ W1 + b1) @ W2 + b2, y).item()  # noqa: E731
                            + 0.5 * reg * ((W1.data ** 2).sum() + (W2.data ** 2).sum()))
        assert tl.rel_error(tl.eval_numerical_gradient(f, t), t.grad) < 1e-8


def test_seed_000_softmax_circuit_with_reshape_broadcast():
    """Seed 000 divides (N,) by a (1, N) row: the engine broadcasts it exactly as NumPy."""
    X, y, arrays = _toy()
    W1, b1, W2, b2 = (tl.Tensor(a.copy(), requires_grad=True) for a in arrays)
    N, reg = X.shape[0], 0.05
    a = X @ W1 + b1
    b = a.relu()
    scores = b @ W2 + b2
    ytrue = np.array([[i, c] for i, c in enumerate(y)])
    d = scores.exp()
    f = d[ytrue[:, 0], ytrue[:, 1]] / d.sum(axis=1).reshape(1, N)
    assert f.shape == (1, N)
    loss = (-f.log()).sum() / N + reg * ((W1 * W1).sum() + (W2 * W2).sum())
    loss.backward()
    _, hand = ref.cs231n_two_layer(dict(zip(("W1", "b1", "W2", "b2"), arrays)), X, y, reg)
    for t, g in zip((W1, b1, W2, b2), (hand[k] for k in ("W1", "b1", "W2", "b2"))):
        assert tl.rel_error(t.grad, g) < 1e-10


def test_the_circuits_diagrams_show_the_notes_gradients_without_backward():
    """viz computes each wire's gradient itself: the notes' numbers, no backward()."""
    import viz
    x, y, z = (tl.Tensor(v, requires_grad=True) for v in (-2.0, 5.0, -4.0))
    q = x + y
    f = q * z
    d = viz.draw(f)
    assert [float(d.gradient_of(t)) for t in (f, q, z, x, y)] == [1.0, -4.0, 3.0, -4.0, -4.0]
    w = tl.Tensor([2.0, -3.0, -3.0], requires_grad=True)
    xs = tl.Tensor([-1.0, -2.0], requires_grad=True)
    s = (w[0] * xs[0] + w[1] * xs[1] + w[2]).sigmoid()
    d = viz.draw(s)
    np.testing.assert_array_equal(np.round(d.gradient_of(w), 2), [-0.20, -0.39, 0.20])
    np.testing.assert_array_equal(np.round(d.gradient_of(xs), 2), [0.39, -0.59])
    assert all(t.grad is None for t in (x, y, z, q, w, xs))
