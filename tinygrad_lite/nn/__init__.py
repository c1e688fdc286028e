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
is their dotted name (``fc1.W``), so diagrams label them. Names follow *ownership*:
a parameter belongs to the first module it is assigned to, and a module to the
first module it is attached to (the tree built bottom-up in ``__init__``); its
name is its path from the top of that ownership chain. Later containers (a slice
``seq[1:]``, ``Sequential(model[0], ...)``, a module shared by a second parent) hold
the same objects without renaming them. A module stops owning what is removed
from it (``del``, reassignment); the next module it is attached to adopts it. Every module call tags
the nodes it creates with ``Group(name, kind="module")``, where ``name`` is the
module's dotted name in its parent (``fc1``), or its class name when it has none
(a top-level model, or a module used on its own).
"""
from __future__ import annotations

import os
import weakref
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from .._files import atomic_write, read_npz
from ..autograd import Group, is_held, modify
from ..tensor import Tensor
from . import functional, init  # noqa: F401
from .functional import dropout

__all__ = ["Module", "Parameter", "Linear", "ReLU", "Sigmoid", "Tanh", "Identity", "Flatten",
           "Dropout", "Sequential", "ModuleList", "ModuleDict", "CrossEntropyLoss",
           "MultiClassHingeLoss", "functional",
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


#: id(parameter) -> (weakref to it, weakref to its owning module, its key there): only
#: to tell whether a tensor being registered already has an owner. The owner itself
#: records what it owns (``_owned_params``; a module's ``_owner`` is (parent, key)),
#: so copies and pickles keep their structure. An entry counts only while the owner
#: still holds that tensor under that key (deleting or replacing it releases it).
_PARAM_OWNERS: Dict[int, Tuple[Any, Any, str]] = {}


def _param_owner(p: Tensor) -> Optional[Tuple["Module", str]]:
    e = _PARAM_OWNERS.get(id(p))
    if e is None or e[0]() is not p:
        return None
    m = e[1]()
    if m is None or not _is_owned_by(p, m, e[2]):
        return None
    return m, e[2]


def _claim_param(p: Tensor, owner: "Module", key: str) -> None:
    i = id(p)

    def forget(ref: Any, i: int = i) -> None:
        e = _PARAM_OWNERS.get(i)
        if e is not None and e[0] is ref:
            del _PARAM_OWNERS[i]

    owner.__dict__["_owned_params"].add(key)
    _PARAM_OWNERS[i] = (weakref.ref(p, forget), weakref.ref(owner), key)


def _is_owned_by(p: Tensor, m: "Module", key: str) -> bool:
    d = m.__dict__
    return key in d["_owned_params"] and d["_params"].get(key) is p


def _holds_modules_or_params(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return any(isinstance(v, Module) or (isinstance(v, Tensor) and v.requires_grad) for v in items)


def _writable(arr: np.ndarray) -> bool:
    """``modify`` can write into ``arr``: it is writable, or read-only only because a
    recorded graph reads it (the guard ``modify`` lifts for library writes)."""
    return arr.flags.writeable or is_held(arr) or (arr.base is not None and is_held(arr.base))


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
        d["_owner"] = None  # (owning parent, key there) once adopted
        d["_owned_params"] = set()  # keys of the parameters this module owns
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
            self._register(name, value)
            object.__setattr__(self, name, value)
            return
        if isinstance(value, (list, tuple, dict)) and _holds_modules_or_params(value):
            kind = "dict" if isinstance(value, dict) else type(value).__name__
            fix = "nn.ModuleDict({...})" if kind == "dict" else "nn.ModuleList([...])"
            raise TypeError(
                f"{type(self).__name__}.{name}: a plain {kind} of modules or parameters is not "
                f"registered (named_parameters() and the optimizer would never see them); "
                f"use {fix} for modules, or assign each parameter as its own attribute")
        object.__setattr__(self, name, value)

    def _register(self, name: str, value: Any) -> None:
        """Put ``value`` in the registry under ``name`` (no attribute is set) and adopt
        it if nothing owns it yet; ``None`` or a plain value just unregisters ``name``."""
        params, modules = self._registry()
        if isinstance(value, Tensor) and value.requires_grad:
            if value.op is not None:
                raise ValueError(f"{type(self).__name__}.{name}: a parameter must be a leaf tensor "
                                 f"(this one was computed by {value.op.name}); use .detach()")
            modules.pop(name, None)
            self.__dict__["_owned_params"].discard(name)
            params[name] = value  # a replaced entry keeps its place in the order
            if _param_owner(value) is None:
                _claim_param(value, self, name)
                self._rename()
        elif isinstance(value, Module):
            value._registry()
            if value is self or any(m is self for m in value.modules()):
                raise ValueError(f"{type(self).__name__}.{name}: a module cannot contain itself")
            params.pop(name, None)
            self.__dict__["_owned_params"].discard(name)
            modules[name] = value
            if value._parent() is None:
                value.__dict__["_owner"] = (self, name)
                self._rename()
        else:
            params.pop(name, None)
            modules.pop(name, None)
            self.__dict__["_owned_params"].discard(name)

    def __delattr__(self, name: str) -> None:
        params, modules = self._registry()
        params.pop(name, None)
        modules.pop(name, None)
        self.__dict__["_owned_params"].discard(name)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, tensor: Optional[Tensor]) -> None:
        setattr(self, name, tensor)

    def add_module(self, name: str, module: Optional["Module"]) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"add_module: a module name must be a non-empty string without '.', got {name!r}")
        setattr(self, name, module)

    def __setstate__(self, state: dict) -> None:
        """Unpickling and ``copy.deepcopy``: the copy owns the copies of what the
        original owned (recorded for the new tensors' ids)."""
        self.__dict__.update(state)
        for key in state.get("_owned_params", ()):
            p = state["_params"].get(key)
            if p is not None and _param_owner(p) is None:
                _claim_param(p, self, key)

    # ------------------------------------------------------------ ownership and names
    def _parent(self) -> Optional[Tuple["Module", str]]:
        """(owning parent, key) while that parent still holds self under key, else None."""
        o = self.__dict__.get("_owner")
        if o is None or o[0].__dict__["_modules"].get(o[1]) is not self:
            return None
        return o

    def _rename(self) -> None:
        """Re-derive names from the top of self's ownership chain: every parameter
        owned along it gets its dotted path, every module its group name."""
        root = self
        while True:
            up = root._parent()
            if up is None:
                break
            root = up[0]
        root.__dict__["_group_name"] = type(root).__name__  # the top uses its class name
        for pname, p in root._owned_parameters():
            p.name = pname
        for cname, child in root._owned_children():
            child._set_path(cname)

    def _owned_children(self) -> Iterator[Tuple[str, "Module"]]:
        for cname, child in self._registry()[1].items():
            o = child._parent()
            if o is not None and o[0] is self and o[1] == cname:
                yield cname, child

    def _owned_parameters(self) -> Iterator[Tuple[str, Tensor]]:
        """(dotted name, tensor) for the parameters owned through self (aliases applied)."""
        params = self._registry()[0]
        aliases = self._aliases
        for name, p in params.items():
            if _is_owned_by(p, self, name):
                yield aliases.get(name, name), p
        for cname, child in self._owned_children():
            for sub, p in child._owned_parameters():
                full = f"{cname}.{sub}"
                yield aliases.get(full, full), p

    def _set_path(self, path: str) -> None:
        last = path.rsplit(".", 1)[-1]
        self.__dict__["_group_name"] = path if not last.isdigit() else f"{path}:{type(self).__name__}"
        for cname, child in self._owned_children():
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
        optimizers and ``params`` views stay valid). ``strict`` requires the same keys.
        Every key, shape and dtype is checked before the first array is copied: an
        error leaves every parameter as it was."""
        who = f"load_state_dict({type(self).__name__})"
        if not hasattr(state, "keys"):
            raise TypeError(f"{who}: expected a mapping of name -> array, got {type(state).__name__}")
        own = dict(self.named_parameters())
        keys = set(state.keys())
        missing, unexpected = sorted(set(own) - keys), sorted(map(str, keys - set(own)))
        if strict and (missing or unexpected):
            raise ValueError(f"{who}: missing keys {missing}, unexpected keys {unexpected}")
        checked = []
        for name, p in own.items():
            if name not in keys:
                continue
            value = state[name]
            try:
                arr = np.asarray(value.data if isinstance(value, Tensor) else value)
            except (ValueError, TypeError) as e:
                raise TypeError(f"{who}: {name} is not an array of numbers ({e})") from None
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"{who}: {name} has dtype {arr.dtype}; a parameter takes "
                                f"numbers (the parameter is {p.dtype})")
            if arr.shape != p.shape:
                raise ValueError(f"{who}: {name} has shape {arr.shape}, the parameter has shape {p.shape}")
            if not _writable(p.data):
                raise ValueError(f"{who}: the array of parameter {name} is read-only; nothing was loaded")
            checked.append((p, arr))
        for p, arr in checked:  # as an optimizer step: a graph recorded before sees the change
            modify(p, lambda a, arr=arr: np.copyto(a, arr, casting="unsafe"))
        return self

    def save(self, path: Union[str, "os.PathLike[str]"]) -> str:
        """Write the parameters to an ``.npz`` file (no pickle); returns the path written
        (``.npz`` is appended when missing, as ``np.savez`` does). The file is written
        to a temporary file next to it and renamed into place once complete: a full
        disk, an error or an interrupt leaves the previous file as it was."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        state = self.state_dict()
        with atomic_write(path, f"{type(self).__name__}.save") as f:
            np.savez(f, **state)
        return path

    def load(self, path: Union[str, "os.PathLike[str]"], strict: bool = True) -> "Module":
        """Load parameters saved by ``save`` (``allow_pickle=False``). Returns self."""
        return self.load_state_dict(read_npz(path, f"{type(self).__name__}.load"), strict=strict)

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
    ``Sequential(OrderedDict([('fc1', ...), ...]))`` uses the given names.

    ``seq[i]`` is the i-th module; ``seq[a:b]`` is a new ``Sequential`` holding the
    same module objects under their original keys (as PyTorch: ``m[1:]`` has
    children ``1``, ``2``...); it renames nothing, since the modules stay owned by
    ``seq`` (see the module docstring)."""

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
        key, n = str(len(self._modules)), len(self._modules)
        while key in self._modules:  # a slice keeps its keys: '1', '2' -> append as '3'
            n += 1
            key = str(n)
        self.add_module(key, module)
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
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        try:
            return mods[index]
        except (IndexError, TypeError):
            raise IndexError(f"Sequential: index {index!r} out of range for {len(mods)} modules") from None


def _check_key(who: str, key: Any) -> str:
    if not isinstance(key, str) or not key or "." in key:
        raise KeyError(f"{who}: a key must be a non-empty string without '.', got {key!r}")
    return key


class ModuleList(Module):
    """A list of modules, registered (``named_parameters`` gives ``0.W``, ``1.W``...),
    as ``torch.nn.ModuleList``: indexing, slicing (a new ``ModuleList``, renumbered
    from 0, renaming nothing), ``len``, iteration, ``append``, ``extend``, ``insert``,
    ``+``, ``del``, ``ml[i] = m``. Deleting or inserting renumbers the keys (and so the
    names of the parameters this list owns). It has no ``forward``: iterate it."""

    def __init__(self, modules: Any = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _check(self, m: Any, what: str) -> "Module":
        if not isinstance(m, Module):
            raise TypeError(f"ModuleList.{what}: expected a Module, got {type(m).__name__}")
        return m

    def _index(self, i: Any) -> int:
        n = len(self._modules)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"ModuleList: indices must be ints or slices, got {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"ModuleList: index {i} out of range for {n} modules")
        return int(i) % n

    def _relist(self, mods: list) -> None:
        """Re-register ``mods`` under keys 0..n-1: what this list owned stays owned
        (under its new key), a module nobody owns is adopted; then rename."""
        owned = {id(m) for _, m in self._owned_children()}
        reg = self._registry()[1]
        reg.clear()
        for i, m in enumerate(mods):
            reg[str(i)] = m
        claimed: set = set()
        for i, m in enumerate(mods):
            if id(m) not in claimed and (id(m) in owned or m._parent() is None):
                claimed.add(id(m))
                m.__dict__["_owner"] = (self, str(i))
        self._rename()

    def __getitem__(self, index: Any) -> Any:
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(mods[index])
        return mods[self._index(index)]

    def __setitem__(self, index: Any, module: Module) -> None:
        self._check(module, "__setitem__")
        self._register(str(self._index(index)), module)

    def __delitem__(self, index: Any) -> None:
        mods = list(self._modules.values())
        if isinstance(index, slice):
            del mods[index]
        else:
            del mods[self._index(index)]
        self._relist(mods)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __iadd__(self, modules: Any) -> "ModuleList":
        return self.extend(modules)

    def __add__(self, other: Any) -> "ModuleList":
        return ModuleList(list(self) + list(other))

    def append(self, module: Module) -> "ModuleList":
        self._register(str(len(self._modules)), self._check(module, "append"))
        return self

    def extend(self, modules: Any) -> "ModuleList":
        if isinstance(modules, Module) or not hasattr(modules, "__iter__"):
            raise TypeError(f"ModuleList.extend: expected an iterable of Modules, got {type(modules).__name__}")
        for m in list(modules):
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        self._check(module, "insert")
        mods = list(self._modules.values())
        mods.insert(index, module)
        if any(m is self for m in module.modules()):
            raise ValueError("ModuleList.insert: a module cannot contain itself")
        self._relist(mods)


class ModuleDict(Module):
    """A dict of modules, registered under their keys, as ``torch.nn.ModuleDict``:
    ``md[key]``, ``md[key] = m``, ``del md[key]``, ``key in md``, ``len``, iteration
    over the keys, ``keys()``, ``values()``, ``items()``, ``update``, ``pop``,
    ``clear``; ``md.key`` works too when no method has that name. Keys are non-empty
    strings without '.'. It has no ``forward``."""

    def __init__(self, modules: Any = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        try:
            return self._modules[key]
        except (KeyError, TypeError):
            raise KeyError(f"ModuleDict has no {key!r}; keys are {list(self._modules)}") from None

    def __setitem__(self, key: str, module: Module) -> None:
        _check_key("ModuleDict", key)
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict[{key!r}]: expected a Module, got {type(module).__name__}")
        self._register(key, module)

    def __delitem__(self, key: str) -> None:
        self[key]  # the KeyError with the keys
        del self._modules[key]

    def __getattr__(self, name: str) -> Any:  # only called for missing attributes
        modules = self.__dict__.get("_modules", {})
        if name in modules:
            return modules[name]
        raise AttributeError(f"'ModuleDict' object has no attribute {name!r}")

    def __contains__(self, key: Any) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._modules))

    def keys(self) -> Any:
        return list(self._modules.keys())

    def values(self) -> Any:
        return list(self._modules.values())

    def items(self) -> Any:
        return list(self._modules.items())

    def update(self, modules: Any) -> None:
        items = modules.items() if hasattr(modules, "items") else modules
        for key, m in items:
            self[key] = m

    def pop(self, key: str) -> Module:
        m = self[key]
        del self[key]
        return m

    def clear(self) -> None:
        self._modules.clear()


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
