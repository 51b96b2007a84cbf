"""Duplicate and n-gram counting shared by Gopher repetition and FineWeb: on strings, and via
substring hashing (numpy) verified against the strings."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

import numpy as np


def find_duplicates(items: list[str]) -> tuple[int, int]:
    """(number of repeated elements, characters in them) -- every occurrence after the first counts."""
    cnt = Counter(items)
    if len(cnt) == len(items):
        return 0, 0
    elements = chars = 0
    for x, c in cnt.items():
        if c > 1:
            elements += c - 1
            chars += (c - 1) * len(x)
    return elements, chars


def top_ngram_chars(words: list[str], n: int) -> int:
    """Characters covered by the most frequent word n-gram (``" "``-joined length x count).

    Ties go to the n-gram seen first, as ``Counter.most_common(1)`` does on the joined strings.
    Returns -1 when there is no n-gram.
    """
    if len(words) < n:
        return -1
    cnt = Counter(zip(*(words[i:] for i in range(n))))
    gram, c = max(cnt.items(), key=_second)
    return (sum(map(len, gram)) + n - 1) * c


def _second(kv):
    return kv[1]


def duplicated_ngram_chars(concat: str, offsets: list[int], n: int) -> int:
    """datatrove's ``find_all_duplicate``: characters in repeated word n-grams, n-grams compared as the
    *concatenation* of their words, scanning left to right and jumping n words past every repeat.

    Only positions whose n-gram occurred before can be repeats, so the scan visits just those; a first
    occurrence counts as seen unless an earlier repeat jumped over it.
    """
    nw = len(offsets) - 1
    m = nw - n + 1
    if m <= 0:
        return 0
    keys = [concat[a:b] for a, b in zip(offsets, offsets[n:])]
    first = dict(zip(reversed(keys), range(m - 1, -1, -1)))  # key -> first position
    if len(first) == m:
        return 0
    firsts = list(map(first.__getitem__, keys))
    present: set[int] = set()  # first positions of keys known to be in the "seen" set
    hits: list[int] = []
    repeated = 0
    skip_until = 0
    for i in [i for i, f in enumerate(firsts) if f != i]:
        if i < skip_until:
            continue
        f = firsts[i]
        if f in present:
            hit = True
        else:
            # the first occurrence was added unless a repeat before it jumped over it
            j = bisect_left(hits, f) - 1
            hit = not (j >= 0 and f < hits[j] + n)
            present.add(f)
            if not hit:
                continue
        repeated += offsets[i + n] - offsets[i]
        hits.append(i)
        skip_until = i + n
    return repeated


_U64 = np.uint64
_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_BASE_INV = pow(_BASE, -1, 1 << 64)
_powers = np.ones(1, dtype=_U64)
_inv_powers = np.ones(1, dtype=_U64)


def _power_tables(length: int) -> tuple[np.ndarray, np.ndarray]:
    """B**i and B**-i modulo 2**64 for i < length (grown on demand, shared)."""
    global _powers, _inv_powers
    if len(_powers) < length:
        n = max(length, 2 * len(_powers), 1024)
        _powers = np.cumprod(np.concatenate([np.ones(1, _U64), np.full(n - 1, _BASE, _U64)]), dtype=_U64)
        _inv_powers = np.cumprod(np.concatenate([np.ones(1, _U64), np.full(n - 1, _BASE_INV, _U64)]), dtype=_U64)
    return _powers, _inv_powers


class SubstringHasher:
    """Polynomial hashes (mod 2**64) of arbitrary substrings of one string, vectorised.

    Equal substrings always get equal hashes; unequal ones almost never do, and the callers check the
    strings wherever the answer depends on a hash equality, so results are exact.
    """

    __slots__ = ("text", "_prefix", "_inv")

    def __init__(self, text: str) -> None:
        self.text = text
        cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(_U64)
        pw, ipw = _power_tables(len(cp) + 1)
        prefix = np.zeros(len(cp) + 1, dtype=_U64)
        np.cumsum(cp * pw[: len(cp)], dtype=_U64, out=prefix[1:])
        self._prefix = prefix
        self._inv = ipw

    def hashes(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        p = self._prefix
        return (p[ends] - p[starts]) * self._inv[starts]


def _group(h: np.ndarray):
    """Group equal values: (sort order, group start offsets in it, smallest position per group,
    group id of every sorted element)."""
    order = np.argsort(h, kind="quicksort")
    hs = h[order]
    new = np.empty(len(h), dtype=bool)
    new[0] = True
    np.not_equal(hs[1:], hs[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    first = np.minimum.reduceat(order, starts)
    return order, starts, first, new


def top_ngram_chars_hashed(hasher: SubstringHasher, starts: np.ndarray, ends: np.ndarray, words, n: int) -> int:
    """:func:`top_ngram_chars` with n-grams as substrings of ``" ".join(words)`` (``starts``/``ends`` of
    every word there)."""
    m = len(starts) - n + 1
    if m <= 0:
        return -1
    a = starts[:m]
    b = ends[n - 1 :]
    h = hasher.hashes(a, b)
    order, starts, first, _ = _group(h)
    counts = np.diff(np.append(starts, m))
    cmax = counts.max()
    groups = np.flatnonzero(counts == cmax)
    g = groups[np.argmin(first[groups])]  # the most frequent; ties -> seen first (Counter order)
    f = int(first[g])
    text = hasher.text
    members = order[starts[g] : starts[g] + cmax]
    al, bl = a[members].tolist(), b[members].tolist()
    ref = text[int(a[f]) : int(b[f])]
    if all(text[x:y] == ref for x, y in zip(al, bl)):
        return (int(b[f]) - int(a[f])) * int(cmax)
    return top_ngram_chars(words, n)  # a hash collision: count the exact way


def duplicated_ngram_chars_hashed(hasher: SubstringHasher, offsets: np.ndarray, n: int) -> int:
    """:func:`duplicated_ngram_chars` with the first-occurrence search done on hashes."""
    m = len(offsets) - n
    if m <= 0:
        return 0
    a = offsets[:m]
    b = offsets[n:]
    h = hasher.hashes(a, b)
    order, starts, first, new = _group(h)
    if len(starts) == m:
        return 0
    firsts = np.empty(m, dtype=np.int64)
    firsts[order] = first[np.cumsum(new) - 1]
    cand_a = np.flatnonzero(firsts != np.arange(m))
    fc = firsts[cand_a]
    ai, bi, af, bf = a[cand_a].tolist(), b[cand_a].tolist(), a[fc].tolist(), b[fc].tolist()
    text = hasher.text
    for x, y, u, v in zip(ai, bi, af, bf):
        if text[x:y] != text[u:v]:
            return duplicated_ngram_chars(text, offsets.tolist(), n)  # a hash collision
    present: set[int] = set()
    hits: list[int] = []
    repeated = 0
    skip_until = 0
    for i, f, x, y in zip(cand_a.tolist(), fc.tolist(), ai, bi):
        if i < skip_until:
            continue
        if f not in present:
            present.add(f)
            j = bisect_left(hits, f) - 1
            if j >= 0 and f < hits[j] + n:
                continue  # its first occurrence was jumped over: this one is the first seen
        repeated += y - x
        hits.append(i)
        skip_until = i + n
    return repeated
