"""Seed 004: "Neural networks from scratch" (the ``dscore`` formulation)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ._common import data, like, unpack


def scratch_two_layer(params: Mapping[str, Any], X: Any,
                      y: Any) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and hand-derived gradients of seed 004's network: no L2 term.

    Row layout: x (n, N_x), W1 (N_x, N_h), b1 (1, N_h), W2 (N_h, N_y), b2 (1, N_y),
    labels ``y_t`` (n,). Biases of shape (N_h,) also work; each gradient comes back
    in its parameter's shape. The seed's code, with its names::

        h = max(0, x W1 + b1)
        score = h W2 + b2
        y = exp(score); y /= sum(y, axis=1)            # softmax, one row per sample
        L = (1/n) sum_i -log y[i, y_t[i]]
        dscore = copy(y); dscore[range(n), y_t] -= 1; dscore /= n
        dW2 = h.T dscore                 db2 = sum(dscore, axis=0, keepdims=True)
        dh = dscore W2.T
        dr = dh; dr[h <= 0] = 0                         # RELU: dr = dh * 1(h > 0)
        dW1 = x.T dr                     db1 = sum(dr, axis=0, keepdims=True)

    ``dscore_j = y_j - 1(j = y_t)`` is the post's derivative of ``L_i`` through
    the softmax; the ``/ n`` is the mean. The seed's ``dr = dh; dr[h <= 0] = 0``
    also zeroes ``dh`` (the same array); here ``dh`` is a fresh array, so that
    write touches nothing of the caller's. ``exp`` is taken of ``score - max``
    per row (softmax does not change; the seed leaves the shift out).
    Returns ``(loss, grads)`` keyed ``W1, b1, W2, b2``; inputs are never modified.
    """
    who = "scratch_two_layer"
    W1, b1, W2, b2 = unpack(params, who)
    x, y_t = data(X, y, who, n_axis=0)
    n = x.shape[0]

    h = np.maximum(0, np.dot(x, W1) + b1)
    score = np.dot(h, W2) + b2
    y_ = np.exp(score - np.max(score, axis=1, keepdims=True))
    y_ /= np.sum(y_, axis=1, keepdims=True)
    loss = np.sum(-np.log(y_[np.arange(n), y_t])) / n

    dscore = np.copy(y_)
    dscore[range(n), y_t] -= 1
    dscore /= n
    dW2 = np.dot(h.T, dscore)
    db2 = np.sum(dscore, axis=0, keepdims=True)
    dh = np.dot(dscore, W2.T)
    dr = dh
    dr[h <= 0] = 0
    dW1 = np.dot(x.T, dr)
    db1 = np.sum(dr, axis=0, keepdims=True)

    grads = {"W1": dW1, "b1": like(db1, b1), "W2": dW2, "b2": like(db2, b2)}
    return float(loss), grads
