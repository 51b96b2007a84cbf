"""numba-compiled versions of the three dedup hot loops (imported lazily by :mod:`corpusmill.curation.dedup.kernels`).

Each function computes exactly what its numpy counterpart computes (same integer arithmetic modulo
2**64, same order of rules), only in one pass with no temporary arrays:

- :func:`normalize` == ``corpusmill.curation.dedup.normalize._normalize_array`` + the final strip;
- :func:`shingles` == ``corpusmill.curation.dedup.normalize.shingles_from_codepoints(..., unique=False)``
  (the same prefix sums, one loop);
- :func:`signature` == ``corpusmill.curation.dedup.minhash.MinHasher._signature_numpy``.

``tests/curation/dedup/test_dedup_kernels.py`` checks the equality on all the shared data and on random Unicode.
Why compiled code (measured in benchmarks/RESULTS.md): in numpy the 112 permutations cost ~5 ns per
(shingle x permutation) because uint64 multiply-add and the Mersenne reduction each make a pass over
a temporary array; normalisation and shingling are ~10 array passes each. Here LLVM vectorises the
permutation loop and the rest is one pass over the code points.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_P = np.uint64((1 << 61) - 1)
_S61 = np.uint64(61)
_S33 = np.uint64(33)
_C1 = np.uint64(0xFF51AFD7ED558CCD)
_C2 = np.uint64(0xC4CEB9FE1A85EC53)
_ZERO = np.uint64(0)

# code point classes (corpusmill.curation.dedup.normalize)
_DELETE, _DIGIT, _DIGIT_SEP, _EXPAND = 2, 4, 5, 8
_SPACE_CP = np.uint32(32)
_ZERO_CP = np.uint32(48)


@njit(cache=True, nogil=True)
def normalize(cp, cmap, ccls, abort_on_expand):
    """Normalised code points of ``cp`` (uint32), or an empty array and True when ``abort_on_expand``
    and a character needs the string-level NFKD first."""
    n = cp.size
    out = np.empty(n, dtype=np.uint32)
    k = 0
    last_space = True  # no output yet: a leading space is dropped
    prev_digit = False  # was code point i-1 part of a digit run (separators between digits included)
    for i in range(n):
        c = ccls[cp[i]]
        if c == _EXPAND and abort_on_expand:
            return out[:0], True
        if c == _DIGIT:
            d = True
        elif c == _DIGIT_SEP:
            d = i > 0 and ccls[cp[i - 1]] == _DIGIT and i + 1 < n and ccls[cp[i + 1]] == _DIGIT
        else:
            d = False
        if d:
            if not prev_digit:  # the first character of a digit run becomes one "0"
                out[k] = _ZERO_CP
                k += 1
                last_space = False
            prev_digit = True
            continue
        prev_digit = False
        if c == _DELETE:
            continue
        if c & 1:  # space, punctuation, symbol, control, or a separator outside a number
            if last_space:
                continue
            out[k] = _SPACE_CP
            last_space = True
        else:
            out[k] = cmap[cp[i]]
            last_space = False
        k += 1
    if k and out[k - 1] == _SPACE_CP:
        k -= 1
    return out[:k], False


@njit(cache=True, nogil=True)
def _fmix64(h):
    h ^= h >> _S33
    h *= _C1
    h ^= h >> _S33
    h *= _C2
    h ^= h >> _S33
    return h


@njit(cache=True, nogil=True)
def shingles(z, char_values, pw, ipw, n):
    """64-bit hashes of the word n-grams of normalised code points ``z``, in text order (repeats kept).
    ``pw[i] = M**i`` and ``ipw[i] = M**-i`` (mod 2**64) for i < z.size."""
    L = z.size
    if L == 0:
        return np.empty(0, dtype=np.uint64)
    n_spaces = 0
    for i in range(L):
        if z[i] == _SPACE_CP:
            n_spaces += 1
    n_words = n_spaces + 1
    # starts[w] = first code point of word w; word w ends at starts[w + 1] - 1 (a space) or at L
    starts = np.empty(n_words + 1, dtype=np.int64)
    starts[0] = 0
    w = 1
    for i in range(L):
        if z[i] == _SPACE_CP:
            starts[w] = i + 1
            w += 1
    starts[n_words] = L + 1
    if n_words <= n:
        n_out = 1
    else:
        n_out = n_words - n + 1
    prefix = np.empty(L + 1, dtype=np.uint64)  # prefix[i] = sum_{j<i} v(z_j) * M**-j
    acc = _ZERO
    prefix[0] = acc
    for i in range(L):
        acc += char_values[z[i]] * ipw[i]
        prefix[i + 1] = acc
    out = np.empty(n_out, dtype=np.uint64)
    for k in range(n_out):
        s = starts[k]
        e = L if n_words <= n else starts[k + n] - 1
        out[k] = _fmix64((prefix[e] - prefix[s]) * pw[e - 1])
    return out


@njit(cache=True, nogil=True)
def signature(x, a, b):
    """min over x of ((a*x + b) mod 2**64) mod (2**61 - 1), for every (a, b) pair."""
    m = a.size
    acc = np.full(m, np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    for i in range(x.size):
        xi = x[i]
        for j in range(m):
            y = a[j] * xi + b[j]
            y = (y & _P) + (y >> _S61)
            if y >= _P:
                y -= _P
            if y < acc[j]:
                acc[j] = y
    return acc
