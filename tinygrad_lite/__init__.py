"""tinygrad_lite: a small, exact reverse-mode autograd engine on NumPy.

    import numpy as np, tinygrad_lite as tl
    x = tl.Tensor(np.random.randn(5, 4))
    W = tl.Tensor(np.random.randn(4, 3), requires_grad=True, name="W")
    loss = tl.cross_entropy(x @ W, np.array([0, 1, 2, 2, 1]))
    loss.backward(); W.grad

The core (the op table, the backward pass, Tensor, the composites, gradient checks,
tracing) is imported here; what is built on it (``tl.nn``, ``tl.optim``, ``tl.data``,
``tl.models``, ``tl.compare_gradients``, ``tl.explain``, ``tl.reference``, ...) on first
use, so importing the core never loads the layers above it (docs/architecture.md).
"""
from importlib import import_module as _import_module
from typing import Any as _Any

from .autograd import (Group, backward_order, detect_anomaly, enable_grad, group, input_grads,
                       is_grad_enabled, no_grad, propagate, set_grad_enabled, unbroadcast)
from .functional import (binary_cross_entropy, binary_cross_entropy_with_logits, composite,
                         cross_entropy, l2_penalty, log_softmax, logsoftmax, mse_loss,
                         multiclass_hinge, softmax, std, var)
from .functional_autograd import hessian, hvp, jacobian, jvp, vhp, vjp
from .gradcheck import (GradcheckError, eval_numerical_gradient, eval_numerical_gradient_array,
                        grad_check_sparse, gradcheck, numerical_gradient, rel_error)
from .ops import OPS, Function
from .tensor import (GradientShapeError, Tensor, abs, add, argmax, broadcast_to, cat, clamp, clip,
                     concatenate, cos, cumsum, div, divide, elu, erf, exp, expand, expand_dims,
                     expm1, flatten, flip, gelu, grad, hardswish, leaky_relu, log, log1p,
                     logsumexp, matmul, maximum, minimum, mish, mul, multiply, neg, negative,
                     ones, ones_like, pad, permute, pow, power, prod, randn, relu, relu6, reshape,
                     sigmoid, sign, sin, softplus, sqrt, square, squeeze, stack, sub, subtract,
                     swapaxes, tanh, tensor, tensor_names, transpose, unsqueeze, where, zeros,
                     zeros_like)
from .compiler import Compiled, compile  # noqa: A004  (PyTorch's name, tl.compile)
from .source import BackwardSource, backward_source
from .trace import TraceError
from . import autograd, compiler, functional, functional_autograd, ops, source, trace

__version__ = "0.1.0"

#: The names of the layers above the core, imported on first use: name -> (module of
#: this package, attribute of it; None for the module itself).
_LAZY = {
    "nn": ("nn", None), "optim": ("optim", None), "data": ("data", None),
    "models": ("models", None), "sweep": ("sweep", None), "compare": ("compare", None),
    "reference": ("reference", None), "problems": ("problems", None),
    "compare_gradients": ("compare", "compare_gradients"),
    "GradientReport": ("compare", "GradientReport"),
    "explain": ("derivation", "explain"),
}


def __getattr__(name: str) -> _Any:
    """``tl.nn``, ``tl.compare_gradients``, ...: imported when first read (PEP 562)."""
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = _import_module(f"{__name__}.{module}")
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # later reads find it without coming here
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    # the backward pass
    "Group", "backward_order", "detect_anomaly", "enable_grad", "group", "input_grads",
    "is_grad_enabled", "no_grad", "propagate", "set_grad_enabled", "unbroadcast",
    # composites
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "composite", "cross_entropy",
    "l2_penalty", "log_softmax", "logsoftmax", "mse_loss", "multiclass_hinge", "softmax", "std",
    "var",
    # torch.autograd.functional
    "hessian", "hvp", "jacobian", "jvp", "vhp", "vjp",
    # gradient checks
    "GradcheckError", "eval_numerical_gradient", "eval_numerical_gradient_array",
    "grad_check_sparse", "gradcheck", "numerical_gradient", "rel_error",
    # the op table
    "OPS", "Function",
    # Tensor and its functions
    "GradientShapeError", "Tensor", "abs", "add", "argmax", "broadcast_to", "cat", "clamp", "clip",
    "concatenate", "cos",
    "cumsum", "div", "divide", "elu", "erf", "exp", "expand", "expand_dims", "expm1", "flatten",
    "flip", "gelu", "grad", "hardswish", "leaky_relu", "log", "log1p", "logsumexp", "matmul",
    "maximum", "minimum", "mish", "mul", "multiply", "neg", "negative", "ones", "ones_like", "pad",
    "permute", "pow", "power", "prod", "randn", "relu", "relu6", "reshape", "sigmoid", "sign",
    "sin", "softplus", "sqrt", "square", "squeeze", "stack", "sub", "subtract", "swapaxes", "tanh",
    "tensor", "tensor_names", "transpose", "unsqueeze", "where", "zeros", "zeros_like",
    # tl.compile and tl.backward_source
    "Compiled", "compile", "BackwardSource", "backward_source", "TraceError",
    # the core's modules
    "autograd", "compiler", "functional", "functional_autograd", "ops", "source", "trace",
    # above the core (the import * loads them; tl.reference, tl.problems and tl.sweep
    # are read as attributes only)
    "nn", "optim", "data", "models", "compare", "compare_gradients", "GradientReport", "explain",
]
