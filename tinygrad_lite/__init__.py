"""tinygrad_lite: a small, exact reverse-mode autograd engine on NumPy.

    import numpy as np, tinygrad_lite as tl
    x = tl.Tensor(np.random.randn(5, 4))
    W = tl.Tensor(np.random.randn(4, 3), requires_grad=True, name="W")
    loss = tl.cross_entropy(x @ W, np.array([0, 1, 2, 2, 1]))
    loss.backward(); W.grad
"""
from .autograd import (Group, backward_order, detect_anomaly, enable_grad, group, input_grads,
                       is_grad_enabled, no_grad, propagate, set_grad_enabled, unbroadcast)
from .functional import (binary_cross_entropy, binary_cross_entropy_with_logits, composite,
                         cross_entropy, l2_penalty, log_softmax, logsoftmax, mse_loss,
                         multiclass_hinge, softmax, std, var)
from .functional_autograd import hessian, hvp, jacobian, jvp, vhp, vjp
from .gradcheck import (GradcheckError, eval_numerical_gradient, eval_numerical_gradient_array,
                        grad_check_sparse, gradcheck, numerical_gradient, rel_error)
from .ops import OPS, Function
from .tensor import (Tensor, abs, add, argmax, broadcast_to, cat, clamp, clip, concatenate, cos,
                     cumsum, div, divide, elu, erf, exp, expand, expand_dims, expm1, flatten, flip,
                     gelu, grad, hardswish, leaky_relu, log, log1p, logsumexp, matmul, maximum,
                     minimum, mish, mul, multiply, neg, negative, ones, ones_like, pad, permute,
                     pow, power, prod, randn, relu, relu6, reshape, sigmoid, sign, sin, softplus,
                     sqrt, square, squeeze, stack, sub, subtract, swapaxes, tanh, tensor, transpose,
                     unsqueeze, where, zeros, zeros_like)
from .explain import explain
from .compare import GradientReport, compare_gradients
from .compiler import Compiled, compile  # noqa: A004  (PyTorch's name, tl.compile)
from .source import BackwardSource, backward_source
from .trace import TraceError

from . import data, models, nn, optim  # noqa: E402  (tl.nn.Linear, tl.optim.SGD, ...)

__version__ = "0.1.0"
