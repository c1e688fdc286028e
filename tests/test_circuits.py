"""The cs231n circuits, as the notes print them."""
import numpy as np

import tinygrad_lite as tl


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
