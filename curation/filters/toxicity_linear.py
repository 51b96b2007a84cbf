"""A logistic model over hashed word uni-/bigrams and character n-grams, numpy only.

The second member of the shipped toxicity model (its calibration combines this model's logit with the
fastText logit and the word-list score; docs/toxicity.md). Features of a prepared text (``prepare_text``
output): its distinct words, word bigrams and character ``char``-grams of ``<word>``, hashed with xxh32
into ``dim`` buckets, each worth 1/sqrt(number of distinct features). Trained by full-batch Adam on
the logistic loss with per-row weights and L2 (:func:`fit`): deterministic, no extra package.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import xxhash


def hashed_features(prepared: str, dim: int, char: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, float]:
    """(sorted distinct bucket ids, the value of each) of one prepared text."""
    toks = prepared.split()
    keys = set(toks)
    keys.update(a + " " + b for a, b in zip(toks, toks[1:]))
    lo, hi = char
    if hi:
        for t in set(toks):
            w = f"<{t}>"
            for n in range(lo, hi + 1):
                keys.update("#" + w[i : i + n] for i in range(len(w) - n + 1))
    idx = np.unique(np.fromiter((xxhash.xxh32_intdigest(k) % dim for k in keys), dtype=np.int64, count=len(keys)))
    return idx, 1.0 / math.sqrt(max(len(idx), 1))


class HashedLinear:
    """``margin(texts)``: the logit of P(toxic) of prepared texts. Stored as ``.npz`` (float16 weights)."""

    def __init__(self, weights: np.ndarray, bias: float, char: tuple[int, int] = (0, 0)):
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bias = float(bias)
        self.char = (int(char[0]), int(char[1]))

    @classmethod
    def load(cls, path: str | os.PathLike) -> HashedLinear:
        with np.load(path) as z:
            return cls(z["weights"], float(z["bias"]), tuple(int(c) for c in z["char"]))

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "wb") as f:
            np.savez_compressed(f, weights=self.weights.astype(np.float16), bias=np.float64(self.bias), char=np.array(self.char))

    def margin(self, prepared: Sequence[str]) -> list[float]:
        out = []
        for t in prepared:
            idx, v = hashed_features(t, len(self.weights), self.char)
            out.append(float(self.weights[idx].astype(np.float64).sum() * v + self.bias))
        return out


def _matrix(prepared: Sequence[str], dim: int, char: tuple[int, int]):
    idx, val, indptr = [], [], [0]
    for t in prepared:
        i, v = hashed_features(t, dim, char)
        idx.append(i)
        val.append(np.full(len(i), v))
        indptr.append(indptr[-1] + len(i))
    return np.concatenate(idx), np.concatenate(val), np.asarray(indptr)


def fit(
    prepared: Sequence[str],
    labels: Sequence[bool],
    row_weights: Sequence[float],
    dim: int = 1 << 20,
    char: tuple[int, int] = (0, 0),
    l2: float = 1e-5,
    iters: int = 200,
    lr: float = 0.05,
) -> HashedLinear:
    """Weighted logistic regression, full-batch Adam (same input -> same weights)."""
    idx, val, indptr = _matrix(prepared, dim, char)
    counts = np.diff(indptr)
    rows_nz = counts > 0
    y = np.asarray(labels, dtype=float)
    sw = np.asarray(row_weights, dtype=float)
    sw = sw / sw.sum()
    w = np.zeros(dim)
    b = 0.0
    m_w, v_w = np.zeros(dim), np.zeros(dim)
    m_b = v_b = 0.0
    b1, b2, eps = 0.9, 0.999, 1e-8
    for it in range(1, iters + 1):
        z = np.full(len(y), b)
        z[rows_nz] += np.add.reduceat(w[idx] * val, indptr[:-1][rows_nz])
        g = (1.0 / (1.0 + np.exp(-z)) - y) * sw
        gw = np.bincount(idx, weights=val * np.repeat(g, counts), minlength=dim) + l2 * w
        gb = float(g.sum())
        m_w = b1 * m_w + (1 - b1) * gw
        v_w = b2 * v_w + (1 - b2) * gw * gw
        m_b = b1 * m_b + (1 - b1) * gb
        v_b = b2 * v_b + (1 - b2) * gb * gb
        step = lr * math.sqrt(1 - b2**it) / (1 - b1**it)
        w -= step * m_w / (np.sqrt(v_w) + eps)
        b -= step * m_b / (math.sqrt(v_b) + eps)
    return HashedLinear(w, b, char)
