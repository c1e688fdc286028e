"""tinygrad_lite: a small, exact reverse-mode autograd engine on NumPy.

    import numpy as np, tinygrad_lite as tl
    x = tl.Tensor(np.random.randn(5, 4))
    W = tl.Tensor(np.random.randn(4, 3), requires_grad=True, name="W")
    loss = tl.cross_entropy(x @ W, np.array([0, 1, 2, 2, 1]))
    loss.backward(); W.grad
"""
from .autograd import (Group, backward_order, detect_anomaly, enable_grad, group, input_grads,
                       is_grad_enabled, no_grad, propagate, set_grad_enabled, unbroadcast)
from .functional import (composite, cross_entropy, l2_penalty, log_softmax, multiclass_hinge,
                         softmax, std, var)
from .functional_autograd import hessian, hvp, jacobian, jvp, vhp, vjp
from .gradcheck import (GradcheckError, eval_numerical_gradient, eval_numerical_gradient_array,
                        gradcheck, numerical_gradient, rel_error)
from .ops import OPS, Function
from .tensor import (Tensor, argmax, broadcast_to, clip, concatenate, exp, expand_dims, grad,
                     log, maximum, ones, ones_like, permute, randn, relu, reshape, sigmoid, sqrt,
                     squeeze, stack, swapaxes, tanh, tensor, transpose, where, zeros, zeros_like)
from .explain import explain
from .compare import GradientReport, compare_gradients

from . import data, models, nn, optim  # noqa: E402  (tl.nn.Linear, tl.optim.SGD, ...)

__version__ = "0.1.0"
