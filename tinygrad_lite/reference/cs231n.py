"""Seeds 000 and 001: cs231n's two-layer net, derived by hand in NumPy.

Row layout throughout: X (N, D), W1 (D, H), b1 (H,), W2 (H, C), b2 (C,), labels
y (N,) index the columns of the (N, C) scores.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from ._common import data, like, unpack


def cs231n_two_layer(params: Mapping[str, Any], X: Any, y: Any, reg: float = 0.0, *,
                     l2_half: bool = False) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and hand-derived gradients of cs231n's ``TwoLayerNet.loss``.

    ``l2_half=False`` is seed 000 (usmanr149): ``loss += reg * (sum(W1*W1) + sum(W2*W2))``
    and ``grads['W'] = ... + 2 * reg * W``. ``l2_half=True`` is seed 001 (LJ Miranda):
    ``reg_loss = 0.5 * reg * sum(W1*W1) + 0.5 * reg * sum(W2*W2)`` and
    ``grads['W'] += reg * W``. Biases are never regularised.

    Forward (seed 000's names, seed 001's in brackets)::

        a = X W1 + b1; a[a < 0] = 0; b = a        # [z1, a1 = max(0, z1)]
        scores = b W2 + b2                         # [z2]
        d = exp(scores); f = d[i, y_i] / sum_j d[i, j]   # [a2 = softmax]
        loss = sum(-log f) / N + L2

    The exponent is taken of ``scores - max_j scores`` (the max shift): softmax is
    unchanged by it and it keeps ``exp`` from overflowing; the seeds leave it out.

    Backward (seed 000's ``grad_L_wrt_*``; its listing says ``grad_L_wrt_c`` for
    ``grad_L_wrt_scores`` in four places, a typo, read here as the latter)::

        dscores = softmax(scores); dscores[i, y_i] -= 1; dscores /= N
        dW2 = b.T dscores            db2 = sum_i dscores
        db  = dscores W2.T           da  = where(a <= 0, 0, 1) * db   # ReLU mask
        dW1 = X.T da                 db1 = sum_i da
        dW1 += 2 reg W1 ; dW2 += 2 reg W2     (l2_half: += reg W)

    Returns ``(loss, grads)`` with ``grads`` keyed ``W1, b1, W2, b2`` like ``params``
    and each gradient in its parameter's shape. Inputs are never modified.
    """
    return _two_layer(params, X, y, reg, l2_half, None, "cs231n_two_layer")


#: The mistakes ``broken_two_layer`` can make.
BUGS = ("l2", "db2", "relu")


def broken_two_layer(params: Mapping[str, Any], X: Any, y: Any, reg: float = 0.0, *,
                     l2_half: bool = False, bug: str = "l2") -> tuple[float, dict[str, np.ndarray]]:
    """:func:`cs231n_two_layer` (``l2_half`` for 001/002's ``0.5 * reg``) with one
    classic mistake, to see a failing comparison:

    - ``"l2"``: dW2's L2 term with the other convention's factor (``reg * W2``
      for ``reg * |W|^2``, ``2 * reg * W2`` for ``0.5 * reg * |W|^2``);
    - ``"db2"``: db2 without the 1/N (summing the un-normalised dscores);
    - ``"relu"``: dW1 from the upstream gradient without the ReLU mask (db1 keeps it).
    """
    if bug not in BUGS:
        raise ValueError(f"broken_two_layer: bug must be one of {', '.join(BUGS)}, got {bug!r}")
    return _two_layer(params, X, y, reg, l2_half, bug, "broken_two_layer")


def _two_layer(params: Mapping[str, Any], X: Any, y: Any, reg: float, l2_half: bool,
               bug: Optional[str], who: str) -> tuple[float, dict[str, np.ndarray]]:
    """Seed 000's forward and backward; ``bug`` (one of :data:`BUGS`, or None) makes
    its one mistake where it is made by hand."""
    W1, b1, W2, b2 = unpack(params, who)
    X, y = data(X, y, who, n_axis=0)
    N, D = X.shape

    # first layer activation
    a = np.matmul(X, W1) + b1
    a[a < 0] = 0
    b = a

    # second layer activation
    scores = np.matmul(b, W2) + b2

    # softmax (max-shifted) and mean cross-entropy
    d = np.exp(scores - np.max(scores, axis=1, keepdims=True))
    f = d[np.arange(N), y] / np.sum(d, axis=1)
    p_ = -np.log(f)
    loss = np.sum(p_) / N
    c = 0.5 * reg if l2_half else reg
    loss += c * (np.sum(W1 * W1) + np.sum(W2 * W2))

    # backward
    unscaled = d / np.sum(d, axis=1, keepdims=True)
    unscaled[np.arange(N), y] -= 1
    grad_L_wrt_scores = unscaled / N

    grad_L_wrt_W2 = b.T.dot(grad_L_wrt_scores)
    grad_L_wrt_b = grad_L_wrt_scores.dot(W2.T)
    grad_L_wrt_b2 = np.sum(unscaled if bug == "db2" else grad_L_wrt_scores, axis=0)
    grad_L_wrt_a = np.where(a <= 0, 0, 1) * grad_L_wrt_b
    grad_L_wrt_W1 = X.T.dot(grad_L_wrt_b if bug == "relu" else grad_L_wrt_a)
    grad_L_wrt_b1 = np.sum(grad_L_wrt_a, axis=0)

    k = reg if l2_half else 2 * reg  # d/dW of c * sum(W * W) is 2 c W
    k_W2 = k if bug != "l2" else (2 * k if l2_half else k / 2)
    grads = {
        "W1": grad_L_wrt_W1 + k * W1,
        "b1": like(grad_L_wrt_b1, b1),
        "W2": grad_L_wrt_W2 + k_W2 * W2,
        "b2": like(grad_L_wrt_b2, b2),
    }
    return float(loss), grads


def init_toy_model(input_size: int = 4, hidden_size: int = 10, num_classes: int = 3,
                   std: float = 1e-1, seed: Optional[int] = 0) -> dict[str, np.ndarray]:
    """Seed 001's toy model: ``np.random.seed(0)`` then cs231n's ``TwoLayerNet``
    init (``W = std * randn``, zero biases). ``seed=None`` leaves the global state alone.
    Uses a private ``RandomState`` so the caller's ``np.random`` is not disturbed."""
    rs = np.random.RandomState(seed) if seed is not None else np.random
    W1 = std * rs.randn(input_size, hidden_size)
    b1 = np.zeros(hidden_size)
    W2 = std * rs.randn(hidden_size, num_classes)
    b2 = np.zeros(num_classes)
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def init_toy_data(num_inputs: int = 5, input_size: int = 4,
                  seed: Optional[int] = 1) -> tuple[np.ndarray, np.ndarray]:
    """Seed 001's toy data: ``np.random.seed(1)``, ``X = 10 * randn(5, 4)``,
    ``y = [0, 1, 2, 2, 1]``."""
    rs = np.random.RandomState(seed) if seed is not None else np.random
    X = 10 * rs.randn(num_inputs, input_size)
    y = np.array([0, 1, 2, 2, 1])
    return X, y


#: The scores seed 001 prints for its toy model on its toy data (cs231n's ``correct_scores``).
TOY_CORRECT_SCORES = np.array([
    [-0.81233741, -1.27654624, -0.70335995],
    [-0.17129677, -1.18803311, -0.47310444],
    [-0.51590475, -1.01354314, -0.8504215],
    [-0.15419291, -0.48629638, -0.52901952],
    [-0.00618733, -0.12435261, -0.15226949]])

#: cs231n's ``correct_loss`` for the toy problem: with seed 001's ``0.5 * reg`` at
#: ``reg=0.1`` (the 2016 notebook), equivalently seed 000's ``reg`` at ``reg=0.05``.
TOY_CORRECT_LOSS = 1.30378789133
