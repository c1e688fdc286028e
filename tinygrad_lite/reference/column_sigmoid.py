"""Seed 003: "Fully Connected Neural Networks From Scratch": column layout, a
sigmoid hidden layer, L2 on the weights only."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ._common import data, like, unpack


def column_sigmoid_two_layer(params: Mapping[str, Any], X: Any, y: Any,
                             reg: float = 0.0) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and hand-derived gradients of seed 003's ``python_feedforward`` +
    ``python_loss`` + ``python_backprop``.

    Column layout, one example per column: X (D_in, N), W1 (H, D_in), b1 (H,),
    W2 (D_out, H), b2 (D_out,); the scores are (D_out, N) and the labels y (N,)
    index their *rows*: ``logits[y, arange(N)]``. Forward and backward::

        z1 = W1 X + repmat(b1, N, 1).T            a1 = 1 / (1 + exp(-z1))
        z2 = W2 a1 + repmat(b2, N, 1).T           logits = exp(z2) / sum_rows exp(z2)
        loss = -sum(log logits[y, arange(N)]) / N + 0.5 reg (|W1|_F^2 + |W2|_F^2)
        diff = (logits - onehot(y)) / N           (onehot is (D_out, N))
        dW2 = diff a1.T + reg W2                  db2 = sum(diff.T, axis=0).T
        da1 = W2.T diff                           dz1 = da1 * a1 * (1 - a1)
        dW1 = dz1 X.T + reg W1                    db1 = sum(dz1.T, axis=0).T

    (``0.5 cancels``: the L2 term's 0.5 and the derivative's 2.) The biases are not
    regularised. ``exp`` is taken of ``z2 - max`` over each column (softmax does
    not change; the seed leaves the shift out). Returns ``(loss, grads)`` keyed
    ``W1, b1, W2, b2``; inputs are never modified.

    The seed's own fixture is :func:`seed003_fixture` — and a trap: see there.
    """
    who = "column_sigmoid_two_layer"
    W1, b1, W2, b2 = unpack(params, who)
    X, y = data(X, y, who, n_axis=1)
    N = X.shape[1]
    D_out = W2.shape[0]

    # python_feedforward (repmat(b, N, 1).T is b as a column, repeated N times)
    z1 = W1.dot(X) + np.tile(b1.reshape(-1), (N, 1)).T
    a1 = 1. / (1. + np.exp(-z1))
    z2 = W2.dot(a1) + np.tile(b2.reshape(-1), (N, 1)).T
    e = np.exp(z2 - np.max(z2, axis=0, keepdims=True))
    logits = e / np.tile(np.sum(e, axis=0), (D_out, 1))

    # python_loss
    yc_scores = logits[y, np.arange(N)]
    ce_sum = -np.sum(np.log(yc_scores))
    data_loss = ce_sum / N
    norms = np.sum(W1 * W1) + np.sum(W2 * W2)  # scipy.linalg.norm(W) ** 2, summed
    loss = data_loss + 0.5 * reg * norms

    # python_backprop
    one_hot_y = np.zeros((D_out, N))
    one_hot_y[y, np.arange(N)] = np.ones(N)
    diff = (1.0 / N) * (logits - one_hot_y)
    dW2 = np.matmul(diff, a1.T) + reg * W2  # 0.5 cancels
    db2 = np.sum(diff.T, axis=0).T
    da1 = np.matmul(W2.T, diff)
    dz1 = np.multiply(da1, np.multiply(a1, (1 - a1)))
    dW1 = np.matmul(dz1, X.T) + reg * W1  # 0.5 cancels
    db1 = np.sum(dz1.T, axis=0).T

    grads = {"W1": dW1, "b1": like(db1, b1), "W2": dW2, "b2": like(db2, b2)}
    return float(loss), grads


def seed003_fixture() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, float]:
    """Seed 003's own example, ``(params, X, y, reg)``, as its ``main()`` builds it:
    N=2, D_in=3, H=4, D_out=5, reg=0.5, ``X = arange(6).reshape(3, 2)``, ``y = [3, 4]``,
    W1 = ones((4, 3)) with columns 1, 2, 3; W2 = 2 everywhere; b1 = 1; b2 = 2.

    Example::

        >>> params, X, y, reg = seed003_fixture()
        >>> loss, grads = column_sigmoid_two_layer(params, X, y, reg)
        >>> round(loss, 6)
        35.609438
        >>> bool(abs(grads["b1"]).max() < 1e-20)
        True

    **The trap.** W2 and b2 are constant, so every class gets the same score and
    the softmax is uniform (1/5 each) whatever the hidden layer does; the gradient
    reaching a1 is ``W2.T @ diff = 2 * (sum of each column of diff) = 0`` up to
    rounding. The pre-activations (17 and 23 for both examples' every unit) also
    saturate the sigmoid, ``a1 (1 - a1) ~ 4e-8 and 1e-10``. So the hidden layer's
    data gradients are about 1e-24: db1 is ~0 and dW1 is just ``reg * W1``. A
    derivation that returns zeros for the hidden layer's data gradient (or drops
    the sigmoid's derivative, or transposes a1) passes this fixture. Check a hidden
    layer also on scaled inputs (``0.1 * X``) and random weights, where it carries
    real gradient: see :func:`seed003_scaled`.
    """
    N, D_in, H, D_out = 2, 3, 4, 5
    reg = 0.5
    X = np.reshape(np.array(range(D_in * N)), (D_in, N))
    y = np.array([3, 4])
    W1 = np.ones((H, D_in))
    W1[:, 1] *= 2.
    W1[:, 2] *= 3.
    W2 = np.ones((D_out, H)) * 2.
    b1 = np.ones(H)
    b2 = np.ones(D_out) * 2.
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, X, y, reg


def seed003_scaled(seed: int = 0, scale: float = 0.1) -> tuple[dict[str, np.ndarray], np.ndarray,
                                                              np.ndarray, float]:
    """Seed 003's fixture with the trap removed: X scaled by ``scale`` (the sigmoid
    leaves saturation) and W2, b2 perturbed by seeded noise (the softmax is no
    longer uniform), so every parameter carries a gradient of order 1e-2..1."""
    params, X, y, reg = seed003_fixture()
    rs = np.random.RandomState(seed)
    params = {k: v.copy() for k, v in params.items()}
    params["W1"] = params["W1"] * scale
    params["W2"] = params["W2"] + rs.randn(*params["W2"].shape)
    params["b2"] = params["b2"] + rs.randn(*params["b2"].shape)
    return params, X * scale, y, reg
