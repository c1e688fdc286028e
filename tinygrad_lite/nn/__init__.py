"""``tinygrad_lite.nn``: modules with PyTorch's names, in cs231n's row layout.

    import numpy as np
    from tinygrad_lite import nn
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(4, 10, std=1e-1), nn.ReLU(), nn.Linear(10, 3, std=1e-1))
    loss = nn.functional.cross_entropy(model(np.random.randn(5, 4)), np.array([0, 1, 2, 2, 1]))
    loss.backward()
    dict(model.named_parameters())  # {'0.W': Tensor, '0.b': ..., '2.W': ..., '2.b': ...}

``Linear`` computes ``x @ W + b`` with ``W`` of shape (in, out) and ``b`` of shape
(out,): cs231n's layout. Its parameters are called ``W`` and ``b`` on purpose: not
PyTorch's ``weight``, whose layout is (out, in).

Parameters are plain ``Tensor`` objects with ``requires_grad=True`` whose ``.name``
is their dotted name (``fc1.W``), so diagrams label them; a parameter is named by
the module that owns it (see ``nn.module``). Every module call tags the nodes it
creates with ``Group(name, kind="module")``, where ``name`` is the module's dotted
name in its parent (``fc1``), or its class name when it has none (a top-level
model, or a module used on its own).

The files: ``module.py`` (``Module``: registration, names, traversal, state),
``containers.py`` (``Sequential``, ``ModuleList``, ``ModuleDict``), ``layers.py``
(layers and losses), ``functional.py`` and ``init.py``.
"""
from . import functional, init
from .containers import ModuleDict, ModuleList, Sequential
from .layers import (CrossEntropyLoss, Dropout, Flatten, Identity, Linear, MultiClassHingeLoss, ReLU,
                     Sigmoid, Tanh)
from .module import Module, Parameter

__all__ = ["Module", "Parameter", "Linear", "ReLU", "Sigmoid", "Tanh", "Identity", "Flatten",
           "Dropout", "Sequential", "ModuleList", "ModuleDict", "CrossEntropyLoss",
           "MultiClassHingeLoss", "functional", "init"]
