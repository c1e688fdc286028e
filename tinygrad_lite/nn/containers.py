"""Containers: ``Sequential``, ``ModuleList`` and ``ModuleDict``, as in ``torch.nn``."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator, Union

from .._checks import is_integer
from .module import Module

__all__ = ["Sequential", "ModuleList", "ModuleDict"]


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
        if not is_integer(i):
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
