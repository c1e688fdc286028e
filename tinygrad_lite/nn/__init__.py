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
is their dotted name (``fc1.W``), so diagrams label them. Every module call tags
the nodes it creates with ``Group(name, kind="module")``, where ``name`` is the
module's dotted name in its parent (``fc1``), or its class name when it has none
(a top-level model, or a module used on its own).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from ..autograd import Group
from ..tensor import Tensor
from . import functional, init  # noqa: F401
from .functional import dropout

__all__ = ["Module", "Parameter", "Linear", "ReLU", "Sigmoid", "Tanh", "Identity", "Flatten",
           "Dropout", "Sequential", "CrossEntropyLoss", "MultiClassHingeLoss", "functional",
           "init"]


def Parameter(data: Any, name: Optional[str] = None) -> Tensor:
    """A trainable tensor: a float ``Tensor`` with ``requires_grad=True``. Assigning
    it as a module attribute registers it (and renames it to its dotted name)."""
    arr = data.data if isinstance(data, Tensor) else np.asarray(data)
    if arr.dtype.kind in "iub":
        arr = arr.astype(np.float64)
    if arr.dtype.kind != "f":
        raise TypeError(f"Parameter: expected numeric data, got dtype {arr.dtype}")
    return Tensor(arr, requires_grad=True, name=name)


def _as_input(x: Any, who: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor(x)
    except TypeError as e:
        raise TypeError(f"{who}: {e}") from None


class Module:
    """Base class: subclasses set parameters (Tensors with ``requires_grad=True``)
    and sub-modules as attributes in ``__init__`` (after ``super().__init__()``) and
    define ``forward``. Call the module, not ``forward``: the call tags the graph."""

    def __init__(self) -> None:
        d = self.__dict__
        d["_params"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["_aliases"] = {}  # dotted name -> public name (TwoLayerNet: 'fc1.W' -> 'W1')
        d["_group_name"] = type(self).__name__
        d["training"] = True

    # ------------------------------------------------------------ registration
    def _registry(self) -> Tuple[dict, dict]:
        try:
            return self.__dict__["_params"], self.__dict__["_modules"]
        except KeyError:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() in __init__ before "
                               f"assigning parameters or sub-modules") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, (Tensor, Module)) or name in self.__dict__.get("_params", ()) \
                or name in self.__dict__.get("_modules", ()):
            params, modules = self._registry()
            params.pop(name, None)
            modules.pop(name, None)
            if isinstance(value, Tensor) and value.requires_grad:
                if value.op is not None:
                    raise ValueError(f"{type(self).__name__}.{name}: a parameter must be a leaf tensor "
                                     f"(this one was computed by {value.op.name}); use .detach()")
                params[name] = value
            elif isinstance(value, Module):
                value._registry()
                modules[name] = value
            object.__setattr__(self, name, value)
            self._set_names()
            return
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        params, modules = self._registry()
        params.pop(name, None)
        modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, tensor: Optional[Tensor]) -> None:
        setattr(self, name, tensor)

    def add_module(self, name: str, module: Optional["Module"]) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"add_module: a module name must be a non-empty string without '.', got {name!r}")
        setattr(self, name, module)

    def _set_names(self, prefix: str = "", path: Optional[str] = None) -> None:
        """Name every parameter by its dotted name and every sub-module by its path."""
        for pname, p in self.named_parameters():
            p.name = prefix + pname
        for cname, child in self._registry()[1].items():
            child._set_path(prefix + cname)

    def _set_path(self, path: str) -> None:
        last = path.rsplit(".", 1)[-1]
        self.__dict__["_group_name"] = path if not last.isdigit() else f"{path}:{type(self).__name__}"
        for cname, child in self._registry()[1].items():
            child._set_path(f"{path}.{cname}")

    # ------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with Group(self._group_name, kind="module"):
            return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ traversal
    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Tensor]]:
        """(dotted name, tensor) for every parameter, each tensor once."""
        seen: set = set()
        for name, p in self._named_parameters_raw():
            if id(p) in seen:
                continue
            seen.add(id(p))
            yield prefix + name, p

    def _named_parameters_raw(self) -> Iterator[Tuple[str, Tensor]]:
        params, modules = self._registry()
        aliases = self._aliases
        for name, p in params.items():
            yield aliases.get(name, name), p
        for cname, child in modules.items():
            for sub, p in child._named_parameters_raw():
                full = f"{cname}.{sub}"
                yield aliases.get(full, full), p

    def parameters(self) -> Iterator[Tensor]:
        for _, p in self.named_parameters():
            yield p

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        yield from self._registry()[1].items()

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # ------------------------------------------------------------ modes and grads
    def train(self, mode: bool = True) -> "Module":
        """Training mode (Dropout drops); ``train(False)`` is ``eval()``. Returns self.
        (TwoLayerNet's cs231n ``train(X, y, ...)`` is a different method.)"""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self) -> "Module":
        return Module.train(self, False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # ------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, np.ndarray]:
        """A snapshot: dotted name -> a *copy* of the parameter's array."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state: Any, strict: bool = True) -> "Module":
        """Copy arrays into the parameters in place (their identity is kept, so
        optimizers and ``params`` views stay valid). ``strict`` requires the same keys."""
        if not hasattr(state, "keys"):
            raise TypeError(f"load_state_dict: expected a mapping of name -> array, got {type(state).__name__}")
        own = dict(self.named_parameters())
        keys = set(state.keys())
        missing, unexpected = sorted(set(own) - keys), sorted(keys - set(own))
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict({type(self).__name__}): missing keys {missing}, "
                             f"unexpected keys {unexpected}")
        for name in own:
            if name not in keys:
                continue
            value = state[name]
            arr = np.asarray(value.data if isinstance(value, Tensor) else value)
            p = own[name]
            if arr.shape != p.shape:
                raise ValueError(f"load_state_dict({type(self).__name__}): {name} has shape {arr.shape}, "
                                 f"the parameter has shape {p.shape}")
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"load_state_dict({type(self).__name__}): {name} has dtype {arr.dtype}")
            p.data[...] = arr
        return self

    def save(self, path: Union[str, "os.PathLike[str]"]) -> str:
        """Write the parameters to an ``.npz`` file (no pickle); returns the path written
        (``.npz`` is appended when missing, as ``np.savez`` does)."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        state = self.state_dict()
        with open(path, "wb") as f:
            np.savez(f, **state)
        return path

    def load(self, path: Union[str, "os.PathLike[str]"], strict: bool = True) -> "Module":
        """Load parameters saved by ``save`` (``allow_pickle=False``). Returns self."""
        path = os.fspath(path)
        if not os.path.exists(path) and os.path.exists(path + ".npz"):
            path += ".npz"
        if not os.path.exists(path):
            raise FileNotFoundError(f"{type(self).__name__}.load: no such file: {path}")
        with np.load(path, allow_pickle=False) as f:
            state = {k: f[k] for k in f.files}
        return self.load_state_dict(state, strict=strict)

    # ------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


def _check_int(who: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")
    return int(value)


_INITS: Dict[str, Callable[[tuple], np.ndarray]] = {
    "he": init.he_normal,
    "kaiming": init.he_normal,
    "xavier": init.xavier_normal,
    "xavier_uniform": init.xavier_uniform,
}


class Linear(Module):
    """``x @ W + b`` (cs231n's affine layer) with ``W`` (in_features, out_features)
    and ``b`` (out_features,).

    Initialisation (one draw from ``np.random``, so ``np.random.seed`` repeats it):
    ``std=s`` gives cs231n's ``s * np.random.randn(in, out)``; otherwise ``init``
    picks it: ``"he"`` (default, seed 002's ``randn(in, out) * sqrt(2 / in)``, for
    ReLU layers), ``"xavier"`` (normal, ``sqrt(2 / (in + out))``),
    ``"xavier_uniform"``, or a callable ``shape -> array``. The bias starts at zero.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 std: Optional[float] = None, init: Union[str, Callable, None] = "he",
                 dtype: Any = np.float64) -> None:
        super().__init__()
        who = "Linear"
        self.in_features = _check_int(who, "in_features", in_features)
        self.out_features = _check_int(who, "out_features", out_features)
        shape = (self.in_features, self.out_features)
        if std is not None:
            if isinstance(std, bool) or not isinstance(std, (int, float, np.floating)) or std < 0:
                raise ValueError(f"{who}: std must be a number >= 0, got {std!r}")
            W = std * np.random.randn(*shape)
        elif callable(init):
            W = np.asarray(init(shape))
            if W.shape != shape:
                raise ValueError(f"{who}: init returned shape {W.shape}, expected {shape}")
        elif init in _INITS:
            W = _INITS[init](shape)
        else:
            raise ValueError(f"{who}: unknown init {init!r}; use std=..., a callable, or one of "
                             f"{sorted(_INITS)}")
        self.W = Parameter(np.asarray(W, dtype=dtype), name="W")
        if bias:
            self.b = Parameter(np.zeros(self.out_features, dtype=dtype), name="b")
        else:
            self.b = None

    def forward(self, x: Any) -> Tensor:
        x = _as_input(x, self._group_name)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self._group_name} (Linear {self.in_features} -> {self.out_features}): "
                             f"expected input of shape (N, {self.in_features}), got {x.shape}")
        out = x @ self.W
        return out if self.b is None else out + self.b

    def __getattr__(self, name: str) -> Any:  # only called for missing attributes
        if name in ("weight", "bias"):
            raise AttributeError(
                f"Linear has no {name!r}: its parameters are W, of shape (in_features, out_features) "
                f"(the transpose of PyTorch's weight), and b, of shape (out_features,)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.b is not None}"


class ReLU(Module):
    """max(0, x), elementwise."""

    def forward(self, x: Any) -> Tensor:
        return _as_input(x, self._group_name).relu()


class Sigmoid(Module):
    def forward(self, x: Any) -> Tensor:
        return _as_input(x, self._group_name).sigmoid()


class Tanh(Module):
    def forward(self, x: Any) -> Tensor:
        return _as_input(x, self._group_name).tanh()


class Identity(Module):
    def forward(self, x: Any) -> Tensor:
        return _as_input(x, self._group_name)


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...): images to cs231n's rows."""

    def forward(self, x: Any) -> Tensor:
        x = _as_input(x, self._group_name)
        if x.ndim < 1:
            raise ValueError(f"{self._group_name}: cannot flatten a 0-d input")
        return x.reshape(x.shape[0], -1) if x.ndim != 2 else x


class Dropout(Module):
    """Inverted dropout; ``p`` is the probability of zeroing a unit (PyTorch's
    meaning; cs231n's assignment calls the *keep* probability ``p``). Active in
    ``train()`` mode, the identity after ``eval()``. ``p=1`` (allowed, as in PyTorch)
    outputs zeros in training."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def forward(self, x: Any) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Sequential(Module):
    """Modules applied in order. ``Sequential(m0, m1, ...)`` names them ``0``, ``1``...;
    ``Sequential(OrderedDict([('fc1', ...), ...]))`` uses the given names."""

    def __init__(self, *modules: Any) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {name!r} is a {type(m).__name__}, not a Module")
            self.add_module(name, m)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def append(self, module: Module) -> "Sequential":
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append: expected a Module, got {type(module).__name__}")
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __getitem__(self, index: Union[int, slice, str]) -> Any:
        if isinstance(index, str):
            return self._modules[index]
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*mods[index])
        try:
            return mods[index]
        except IndexError:
            raise IndexError(f"Sequential: index {index} out of range for {len(mods)} modules") from None


class CrossEntropyLoss(Module):
    """``CrossEntropyLoss()(logits, labels)``: mean softmax cross-entropy."""

    def forward(self, logits: Any, labels: Any) -> Tensor:
        return functional.cross_entropy(logits, labels)


class MultiClassHingeLoss(Module):
    """``MultiClassHingeLoss()(scores, labels)``: cs231n's SVM loss, mean over the batch."""

    def __init__(self, delta: float = 1.0) -> None:
        super().__init__()
        self.delta = delta

    def forward(self, scores: Any, labels: Any) -> Tensor:
        return functional.multiclass_hinge(scores, labels, delta=self.delta)
