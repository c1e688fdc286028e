"""Optimizers with PyTorch's names and cs231n's update rules (``optim.py`` of the
assignments), updating each parameter's array in place.

    opt = optim.SGD(model.parameters(), lr=1e-1, momentum=0.9)
    for epoch in range(epochs):
        for X, y in batches:
            opt.zero_grad()
            loss = F.cross_entropy(model(X), y)
            loss.backward()
            opt.step()

In place means ``p.data`` keeps its identity: views such as ``TwoLayerNet.params``
see every step. Parameters whose ``.grad`` is None are skipped (as PyTorch).
``state_dict()`` / ``load_state_dict()`` save and restore the buffers, ``lr``, the
hyperparameters and Adam's step count as plain dicts of numbers and array copies.
"""
from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional

import numpy as np

from ._checks import is_integer, is_number
from .autograd import effect, modify
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "ExponentialLR"]


def _number(who: str, name: str, value: Any, low: float = 0.0, high: float = np.inf,
            high_open: bool = False) -> float:
    if not is_number(value):
        raise TypeError(f"{who}: {name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (low <= value and (value < high if high_open else value <= high)) or np.isnan(value):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"{who}: {name} must be in {bound}, got {value}")
    return value


def _apply_step(p: Tensor, step: np.ndarray) -> None:
    """``p.data += step`` in place, through the engine's guard: a graph that used the
    old values then refuses to backward instead of giving a wrong gradient."""
    modify(p, lambda a: np.add(a, step, out=a, casting="same_kind"))


class Optimizer:
    """Base class: holds the parameter list, ``lr`` and per-parameter state.

    A subclass's ``step`` runs through ``autograd.effect``: ``tl.compile`` records
    it as one call, so a replayed training step runs the optimizer's own Python
    again (its step count, a changed ``lr`` and its buffers included)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_recorded", False):
            def recorded_step(self: "Optimizer") -> None:
                effect(step, self, self.params)
            recorded_step._recorded = True
            recorded_step.__doc__, recorded_step.__name__ = step.__doc__, "step"
            recorded_step.__qualname__ = step.__qualname__
            cls.step = recorded_step

    def __init__(self, params: Any, lr: float) -> None:
        who = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{who}: params must be an iterable of Tensors (e.g. model.parameters()), "
                            f"got a single Tensor; wrap it in a list")
        if isinstance(params, dict):
            params = params.values()
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"{who}: params must be an iterable of Tensors, got {type(params).__name__}") from None
        if not params:
            raise ValueError(f"{who}: got an empty parameter list")
        seen: dict = {}  # id of each array -> its first index
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{who}: parameter {i} is a {type(p).__name__}, not a Tensor "
                                f"(pass model.parameters(), not the params dict of arrays)")
            if not p.requires_grad or p.op is not None:
                raise ValueError(f"{who}: parameter {i} ({p.name or 'unnamed'}, shape {p.shape}) must be "
                                 f"a leaf tensor with requires_grad=True")
            first = seen.setdefault(id(p.data), i)  # a tied weight listed twice: stepped twice
            if first != i:
                raise ValueError(f"{who}: parameters {first} and {i} ({p.name or 'unnamed'}, shape "
                                 f"{p.shape}) are the same tensor (or share its array); list it once")
        self.params: List[Tensor] = params
        self.param_groups = [{"params": params, "lr": _number(who, "lr", lr)}]
        self.state: dict = {}

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.param_groups[0]["lr"] = _number(type(self).__name__, "lr", value)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _grads(self) -> Iterable:
        for p in self.params:
            g = p.grad
            if g is not None:
                yield p, (g.data if isinstance(g, Tensor) else g)

    def step(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ state
    #: names of the per-parameter buffers (cs231n's config keys), in state_dict order
    _buffers: tuple = ()

    def _hyper(self) -> dict:
        """The hyperparameters (and counters) saved in ``param_groups[0]`` besides lr."""
        return {}

    def _set_hyper(self, group: Mapping) -> None:
        pass

    def _get_buffers(self, p: Tensor) -> Optional[dict]:
        s = self.state.get(id(p))
        if s is None:
            return None
        return dict(s) if isinstance(s, dict) else {self._buffers[0]: s}

    def _set_buffers(self, p: Tensor, bufs: dict) -> None:
        self.state[id(p)] = bufs if len(self._buffers) > 1 else bufs[self._buffers[0]]

    def state_dict(self) -> dict:
        """A snapshot in PyTorch's layout, of plain dicts, numbers and *copies* of arrays:
        ``{"state": {i: {buffer: array}}, "param_groups": [{"params": [0, 1, ...],
        "lr": ..., <hyperparameters>}]}``, where ``i`` is the parameter's position in
        the list given to the optimizer (parameters without state yet are absent).
        The buffers are cs231n's (``velocity``; ``m``, ``v``; ``cache``), not
        PyTorch's: do not load a ``torch.optim`` state_dict here or vice versa."""
        state = {}
        for i, p in enumerate(self.params):
            bufs = self._get_buffers(p)
            if bufs is not None:
                state[i] = {k: np.array(bufs[k], copy=True) for k in self._buffers}
        group = {"params": list(range(len(self.params))), "lr": self.lr}
        group.update(self._hyper())
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: Mapping) -> "Optimizer":
        """Restore ``state_dict()`` output (copies it in): buffers, lr, hyperparameters
        and step count. The optimizer must hold the same number of parameters, with the
        same shapes, in the same order. Raises ``ValueError`` / ``TypeError`` naming
        what does not fit, before anything changes. Returns self."""
        who = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            keys = f" with keys {sorted(map(str, state_dict))}" if isinstance(state_dict, Mapping) else ""
            raise TypeError(f"{who}: expected a dict with keys 'state' and 'param_groups' "
                            f"(what state_dict() returns), got {type(state_dict).__name__}{keys}")
        groups = state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)) or len(groups) != 1 or not isinstance(groups[0], Mapping):
            raise ValueError(f"{who}: expected exactly one param group, got {groups!r:.80}")
        group = groups[0]
        n = len(self.params)
        saved = group.get("params")
        if not isinstance(saved, (list, tuple)):
            raise ValueError(f"{who}: the param group's 'params' must be the list of parameter "
                             f"indices, got {saved!r:.80}")
        if len(saved) != n:
            raise ValueError(f"{who}: the state is for {len(saved)} parameters, this optimizer has {n}")
        expected = {"params", "lr", *self._hyper()}
        if set(group) != expected:
            raise ValueError(f"{who}: param group keys {sorted(group)} do not match {type(self).__name__}'s "
                             f"{sorted(expected)} (a state_dict of another optimizer?)")
        state = state_dict["state"]
        if not isinstance(state, Mapping):
            raise TypeError(f"{who}: 'state' must be a dict index -> buffers, got {type(state).__name__}")
        new: dict = {}
        for i, bufs in state.items():
            if not is_integer(i) or not 0 <= i < n:
                raise ValueError(f"{who}: state index {i!r} is not a parameter index in [0, {n})")
            p = self.params[int(i)]
            if not isinstance(bufs, Mapping) or set(bufs) != set(self._buffers):
                raise ValueError(f"{who}: state of parameter {i} ({p.name or 'unnamed'}) must have the "
                                 f"buffers {list(self._buffers)}, got "
                                 f"{sorted(bufs) if isinstance(bufs, Mapping) else type(bufs).__name__}")
            arrays = {}
            for k in self._buffers:
                try:
                    arr = np.asarray(bufs[k])
                except ValueError:  # a ragged nested list
                    raise ValueError(f"{who}: {k} of parameter {i} ({p.name or 'unnamed'}) is not an "
                                     f"array (rows of different lengths)") from None
                if arr.shape != p.shape:
                    raise ValueError(f"{who}: {k} of parameter {i} ({p.name or 'unnamed'}) has shape "
                                     f"{arr.shape}, the parameter has shape {p.shape}")
                if arr.dtype.kind not in "fiu":
                    raise TypeError(f"{who}: {k} of parameter {i} has dtype {arr.dtype}")
                if not np.isfinite(arr).all():
                    raise ValueError(f"{who}: {k} of parameter {i} ({p.name or 'unnamed'}) holds nan "
                                     f"or inf: every step would spread it into the parameter")
                arrays[k] = arr.astype(p.dtype, copy=True)
            new[int(i)] = arrays
        lr = _number(type(self).__name__, "lr", group["lr"])
        before = dict(self.__dict__)
        try:
            self._set_hyper(group)
        except (TypeError, ValueError):
            self.__dict__.clear()  # a bad hyperparameter changes nothing
            self.__dict__.update(before)
            raise
        self.lr = lr
        self.state = {}
        for i, arrays in new.items():
            self._set_buffers(self.params[i], arrays)
        return self


class SGD(Optimizer):
    """Stochastic gradient descent.

    ``momentum=0``: ``w -= lr * dw`` (cs231n's ``sgd``; bit-identical to
    ``w += -lr * dw``). ``momentum=mu``: cs231n's ``sgd_momentum``,
    ``v = mu * v - lr * dw; w += v`` (PyTorch keeps ``v = mu * v + dw`` and applies
    ``lr`` after: the same steps while ``lr`` is constant). ``weight_decay=wd``
    adds ``wd * w`` to ``dw`` first (PyTorch's; prefer ``l2_penalty`` in the loss
    to match cs231n's losses).
    """

    def __init__(self, params: Any, lr: float = 1e-2, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = _number("SGD", "momentum", momentum, 0.0, 1.0, high_open=True)
        self.weight_decay = _number("SGD", "weight_decay", weight_decay)

    _buffers = ("velocity",)

    def _hyper(self) -> dict:
        return {"momentum": self.momentum, "weight_decay": self.weight_decay}

    def _set_hyper(self, group: Mapping) -> None:
        self.momentum = _number("SGD", "momentum", group["momentum"], 0.0, 1.0, high_open=True)
        self.weight_decay = _number("SGD", "weight_decay", group["weight_decay"])

    def step(self) -> None:
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        for p, g in self._grads():
            if wd:
                g = g + wd * p.data
            if mu:
                v = self.state.get(id(p))
                if v is None:
                    v = self.state[id(p)] = np.zeros_like(p.data)
                v *= mu
                v -= lr * g
                _apply_step(p, v)
            else:
                _apply_step(p, -lr * g)


class Adam(Optimizer):
    """cs231n's ``adam`` (with bias correction), the same rule as ``torch.optim.Adam``:
    ``m = b1 m + (1-b1) dw; v = b2 v + (1-b2) dw^2; t += 1;
    w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)``."""

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1 = _number("Adam", "beta1", betas[0], 0.0, 1.0, high_open=True)
        self.beta2 = _number("Adam", "beta2", betas[1], 0.0, 1.0, high_open=True)
        self.eps = _number("Adam", "eps", eps)
        self.weight_decay = _number("Adam", "weight_decay", weight_decay)
        self.t = 0

    _buffers = ("m", "v")

    def _hyper(self) -> dict:
        return {"betas": (self.beta1, self.beta2), "eps": self.eps,
                "weight_decay": self.weight_decay, "t": self.t}

    def _set_hyper(self, group: Mapping) -> None:
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1 = _number("Adam", "beta1", betas[0], 0.0, 1.0, high_open=True)
        self.beta2 = _number("Adam", "beta2", betas[1], 0.0, 1.0, high_open=True)
        self.eps = _number("Adam", "eps", group["eps"])
        self.weight_decay = _number("Adam", "weight_decay", group["weight_decay"])
        t = group["t"]
        if not is_integer(t) or t < 0:
            raise ValueError(f"Adam: the step count t must be an int >= 0, got {t!r}")
        self.t = int(t)

    def step(self) -> None:
        self.t += 1
        b1, b2, lr, eps, t = self.beta1, self.beta2, self.lr, self.eps, self.t
        for p, g in self._grads():
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            s = self.state.get(id(p))
            if s is None:
                s = self.state[id(p)] = {"m": np.zeros_like(p.data), "v": np.zeros_like(p.data)}
            m, v = s["m"], s["v"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            mt = m / (1 - b1 ** t)
            vt = v / (1 - b2 ** t)
            _apply_step(p, -lr * mt / (np.sqrt(vt) + eps))


class RMSprop(Optimizer):
    """cs231n's ``rmsprop`` (= ``torch.optim.RMSprop`` without momentum):
    ``cache = alpha * cache + (1 - alpha) * dw^2; w -= lr * dw / (sqrt(cache) + eps)``.
    ``alpha`` is cs231n's ``decay_rate``."""

    def __init__(self, params: Any, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.alpha = _number("RMSprop", "alpha", alpha, 0.0, 1.0, high_open=True)
        self.eps = _number("RMSprop", "eps", eps)
        self.weight_decay = _number("RMSprop", "weight_decay", weight_decay)

    _buffers = ("cache",)

    def _hyper(self) -> dict:
        return {"alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay}

    def _set_hyper(self, group: Mapping) -> None:
        self.alpha = _number("RMSprop", "alpha", group["alpha"], 0.0, 1.0, high_open=True)
        self.eps = _number("RMSprop", "eps", group["eps"])
        self.weight_decay = _number("RMSprop", "weight_decay", group["weight_decay"])

    def step(self) -> None:
        a, lr, eps = self.alpha, self.lr, self.eps
        for p, g in self._grads():
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            cache = self.state.get(id(p))
            if cache is None:
                cache = self.state[id(p)] = np.zeros_like(p.data)
            cache *= a
            cache += (1 - a) * (g * g)
            _apply_step(p, -lr * g / (np.sqrt(cache) + eps))


class ExponentialLR:
    """Multiply the optimizer's ``lr`` by ``gamma`` each time ``step()`` is called:
    call it once per epoch (cs231n's ``learning_rate *= learning_rate_decay``)."""

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ExponentialLR: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.gamma = _number("ExponentialLR", "gamma", gamma)
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def step(self) -> None:
        # an effect: a tl.compile'd step that calls it decays the lr at every replay
        effect(ExponentialLR._decay, self, [], (self.optimizer,))

    def _decay(self) -> None:
        self.last_epoch += 1
        self.optimizer.lr = self.optimizer.lr * self.gamma

    def get_last_lr(self) -> List[float]:
        return [self.optimizer.lr]

    def state_dict(self) -> dict:
        """``{"gamma", "base_lr", "last_epoch"}`` (the lr itself is the optimizer's)."""
        return {"gamma": self.gamma, "base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict: Mapping) -> "ExponentialLR":
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"gamma", "base_lr", "last_epoch"}:
            raise TypeError("ExponentialLR.load_state_dict: expected a dict with keys gamma, base_lr, last_epoch")
        gamma = _number("ExponentialLR", "gamma", state_dict["gamma"])
        base_lr = _number("ExponentialLR", "base_lr", state_dict["base_lr"])
        last = state_dict["last_epoch"]
        if not is_integer(last) or last < 0:
            raise ValueError(f"ExponentialLR: last_epoch must be an int >= 0, got {last!r}")
        self.gamma, self.base_lr, self.last_epoch = gamma, base_lr, int(last)
        return self
