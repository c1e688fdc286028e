"""``Module``: parameters and sub-modules registered by attribute, their names,
traversal, modes, and state (``state_dict``, ``save``/``load``).

Names follow *ownership*: a parameter belongs to the first module it is assigned
to, and a module to the first module it is attached to (the tree built bottom-up
in ``__init__``); its name is its path from the top of that ownership chain.
Later containers (a slice ``seq[1:]``, ``Sequential(model[0], ...)``, a module
shared by a second parent) hold the same objects without renaming them. A module
stops owning what is removed from it (``del``, reassignment); the next module it
is attached to adopts it.

Ownership, not the path from whichever module is asked (as ``named_parameters``
derives its keys), because a tensor has one ``.name`` for every diagram it is
drawn in: wrapping or slicing a model must not rename the tensors of the model
it came from.
"""
from __future__ import annotations

import os
import weakref
from collections import OrderedDict
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple, Union

import numpy as np

from .._files import atomic_write, read_npz
from ..autograd import Group, is_held, modify
from ..tensor import Tensor

__all__ = ["Module", "Parameter"]


def Parameter(data: Any, name: Optional[str] = None) -> Tensor:
    """A trainable tensor: a float ``Tensor`` with ``requires_grad=True``. Assigning
    it as a module attribute registers it (and renames it to its dotted name)."""
    arr = data.data if isinstance(data, Tensor) else np.asarray(data)
    if arr.dtype.kind in "iub":
        arr = arr.astype(np.float64)
    if arr.dtype.kind != "f":
        raise TypeError(f"Parameter: expected numeric data, got dtype {arr.dtype}")
    return Tensor(arr, requires_grad=True, name=name)


#: id(parameter) -> (weakref to it, weakref to its owning module, its key there): only
#: to tell whether a tensor being registered already has an owner. The owner itself
#: records what it owns (``_owned_params``; a module's ``_owner`` is (parent, key)),
#: so copies and pickles keep their structure. An entry counts only while the owner
#: still holds that tensor under that key (deleting or replacing it releases it).
#: Keyed by id, not a ``WeakKeyDictionary``: that compares keys with ``==``, which a
#: Tensor answers elementwise.
_PARAM_OWNERS: Dict[int, Tuple[Any, Any, str]] = {}


def _has_owner(p: Tensor) -> bool:
    entry = _PARAM_OWNERS.get(id(p))
    if entry is None or entry[0]() is not p:
        return False
    owner = entry[1]()
    return owner is not None and _is_owned_by(p, owner, entry[2])


def _claim_param(p: Tensor, owner: "Module", key: str) -> None:
    i = id(p)

    def forget(ref: Any, i: int = i) -> None:
        entry = _PARAM_OWNERS.get(i)
        if entry is not None and entry[0] is ref:
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
        d["_aliases"] = {}  # dotted name -> public name: see _alias_parameters
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
            if not _has_owner(value):
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
        original owned."""
        self.__dict__.update(state)
        for key in state.get("_owned_params", ()):
            p = state["_params"].get(key)
            if p is not None and not _has_owner(p):
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

    def _alias_parameters(self, aliases: Mapping[str, str]) -> None:
        """For subclasses: give parameters public names other than their dotted paths
        (TwoLayerNet: ``{'fc1.W': 'W1', ...}``), used by ``named_parameters``,
        ``state_dict`` and the tensors' ``.name``."""
        self.__dict__["_aliases"] = dict(aliases)
        self._rename()

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
