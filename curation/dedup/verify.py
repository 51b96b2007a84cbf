"""Candidate verification: LSH candidates become edges only when they are similar enough.

``DedupConfig.verify``: ``"off"`` (FineWeb / datatrove: every pair sharing a band is joined),
``"signature"`` (estimated Jaccard = share of equal MinHash values >= ``verify_threshold``) or
``"exact"`` (Jaccard of the word-shingle sets >= ``verify_threshold``).

Within one bucket the verified pairs form a graph; only a spanning forest of it is emitted
(:func:`spanning_pairs`): its components are those of all verified pairs, whatever the member order,
so every engine that calls these functions gets the same clusters. Members with identical
signatures (identical shingle sets for ``exact``) are joined without comparison.

Stored per signature task: ``WORK/sig/full/r{rank}.bin`` (``uint32[num_perm]`` per signed document,
the low 32 bits of each MinHash value) or ``WORK/sig/shingles/r{rank}.bin`` + ``.idx`` (sorted
shingle hashes and their offsets); a doc key's row is its index in the task.
"""

from __future__ import annotations

import math

import numpy as np
import xxhash

from corpusmill.curation.dedup import storage
from corpusmill.curation.dedup.records import EDGE

__all__ = [
    "VERIFY_MODES",
    "fingerprint",
    "required_matches",
    "spanning_pairs",
    "spanning_pairs_exact",
    "VerifyStore",
    "verified_edges",
]

VERIFY_MODES = ("off", "signature", "exact")
_BATCH_MEMBERS = 65_536  # documents whose signatures are held at once by verified_edges


def fingerprint(signature: np.ndarray) -> np.ndarray:
    """The stored form of a signature: the low 32 bits of each value (two different values agree
    by chance with probability 2**-32: no measurable change to the estimate)."""
    return (np.asarray(signature, dtype=np.uint64) & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def required_matches(threshold: float, num_perm: int) -> int:
    """Equal signature values needed for an estimated Jaccard >= threshold (integer, so every
    engine decides alike)."""
    return max(1, math.ceil(threshold * num_perm - 1e-9))


class _Forest:
    def __init__(self, m: int) -> None:
        self.parent = list(range(m))

    def find(self, x: int) -> int:
        p = self.parent
        while p[x] != x:
            p[x] = p[p[x]]
            x = p[x]
        return x

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True


def _collapse(ids: list) -> tuple[list[int], list[tuple[int, int]]]:
    """Indices of the first member of each distinct value, and (first, i) pairs for the repeats."""
    first: dict = {}
    reps, pairs = [], []
    for i, v in enumerate(ids):
        j = first.setdefault(v, i)
        if j == i:
            reps.append(i)
        else:
            pairs.append((j, i))
    return reps, pairs


def spanning_pairs(sigs: np.ndarray, need: int) -> list[tuple[int, int]]:
    """Index pairs (i < j) of a spanning forest of the graph "at least ``need`` equal values" over
    the rows of ``sigs`` (m x num_perm fingerprints of one bucket)."""
    sigs = np.ascontiguousarray(sigs)
    m = sigs.shape[0]
    if m < 2:
        return []
    reps, pairs = _collapse([r.tobytes() for r in sigs]) if m > 2 else ([0, 1], [])
    forest = _Forest(m)
    for a, b in pairs:
        forest.union(a, b)
    if len(reps) > 1:
        s = sigs[reps]
        for k in range(1, len(reps)):
            eq = np.count_nonzero(s[:k] == s[k], axis=1)
            for j in np.flatnonzero(eq >= need).tolist():
                if forest.union(reps[j], reps[k]):
                    pairs.append((reps[j], reps[k]))
    return pairs


def jaccard_sets(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of two sorted distinct uint64 arrays."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def spanning_pairs_exact(shingles: list[np.ndarray], threshold: float) -> list[tuple[int, int]]:
    """As :func:`spanning_pairs`, for "word-shingle Jaccard >= threshold" over sorted shingle sets."""
    m = len(shingles)
    if m < 2:
        return []
    reps, pairs = _collapse([xxhash.xxh3_128_intdigest(s.tobytes()) for s in shingles])
    forest = _Forest(m)
    for a, b in pairs:
        forest.union(a, b)
    for k in range(1, len(reps)):
        for j in range(k):
            if forest.find(reps[j]) != forest.find(reps[k]) and jaccard_sets(shingles[reps[j]], shingles[reps[k]]) >= threshold:
                forest.union(reps[j], reps[k])
                pairs.append((reps[j], reps[k]))
    return pairs


class VerifyStore:
    """Positioned reads of the stored fingerprints / shingle sets of given doc keys."""

    def __init__(self, workdir: str, mode: str, num_perm: int) -> None:
        self.workdir = storage.join(workdir)
        self.mode = mode
        self.num_perm = num_perm
        self._files: dict = {}

    def _file(self, name: str):
        f = self._files.get(name)
        if f is None:
            f = self._files[name] = storage.RandomReader(f"{self.workdir}/sig/{name}")
        return f

    def signatures(self, keys: np.ndarray) -> np.ndarray:
        """(len(keys), num_perm) uint32 for sorted doc keys."""
        width = 4 * self.num_perm
        out = np.empty((keys.size, self.num_perm), dtype=np.uint32)
        for rank, sel, rows in _by_rank(keys):
            f = self._file(f"full/r{rank:05d}.bin")
            out[sel] = np.frombuffer(f.read_rows(rows, width), dtype=np.uint32).reshape(-1, self.num_perm)
        return out

    def shingles(self, keys: np.ndarray) -> list[np.ndarray]:
        out: list = [None] * keys.size
        for rank, sel, rows in _by_rank(keys):
            idx = self._file(f"shingles/r{rank:05d}.idx")
            data = self._file(f"shingles/r{rank:05d}.bin")
            bounds = np.frombuffer(idx.read_rows(rows, 8, span=2), dtype=np.uint64).reshape(-1, 2)
            for i, (lo, hi) in zip(np.flatnonzero(sel).tolist(), bounds.tolist()):
                out[i] = np.frombuffer(data.read_range(8 * lo, 8 * hi), dtype=np.uint64)
        return out

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def _by_rank(keys: np.ndarray):
    ranks = (keys >> np.uint64(32)).astype(np.int64)
    rows = (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
    for rank in np.unique(ranks).tolist():
        sel = ranks == rank
        yield rank, sel, rows[sel]


def verified_edges(window: np.ndarray, store: VerifyStore, mode: str, threshold: float) -> np.ndarray:
    """Edges (EDGE dtype) of the verified spanning forests of the buckets of a sorted window of
    records (fields h, g, key)."""
    n = window.size
    if n < 2:
        return np.empty(0, dtype=EDGE)
    h, g, key = window["h"], window["g"], window["key"]
    new = np.ones(n, dtype=bool)
    new[1:] = (h[1:] != h[:-1]) | (g[1:] != g[:-1])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, n))
    multi = sizes >= 2
    starts, sizes = starts[multi], sizes[multi]
    need = required_matches(threshold, store.num_perm)
    out_a: list[np.ndarray] = []
    out_b: list[np.ndarray] = []
    i = 0
    while i < starts.size:  # batches of whole buckets, so that few signatures are held at once
        j, members = i, 0
        while j < starts.size and (members == 0 or members + sizes[j] <= _BATCH_MEMBERS):
            members += int(sizes[j])
            j += 1
        bs, bz = starts[i:j], sizes[i:j]
        idx = np.arange(members) + np.repeat(bs - (np.cumsum(bz) - bz), bz)  # the rows of these buckets
        ukeys = np.unique(key[idx])
        if mode == "signature":
            sig = store.signatures(ukeys)
            two = bz == 2  # most buckets: one comparison, vectorised
            if two.any():
                a, b = key[bs[two]], key[bs[two] + 1]
                eq = np.count_nonzero(sig[np.searchsorted(ukeys, a)] == sig[np.searchsorted(ukeys, b)], axis=1)
                ok = eq >= need
                out_a.append(a[ok])
                out_b.append(b[ok])
            for s, z in zip(bs[~two].tolist(), bz[~two].tolist()):
                k = key[s : s + z]
                p = spanning_pairs(sig[np.searchsorted(ukeys, k)], need)
                if p:
                    pa_ = np.array(p, dtype=np.int64)
                    out_a.append(k[pa_[:, 0]])
                    out_b.append(k[pa_[:, 1]])
        else:
            sh = store.shingles(ukeys)
            for s, z in zip(bs.tolist(), bz.tolist()):
                k = key[s : s + z]
                p = spanning_pairs_exact([sh[x] for x in np.searchsorted(ukeys, k).tolist()], threshold)
                if p:
                    pa_ = np.array(p, dtype=np.int64)
                    out_a.append(k[pa_[:, 0]])
                    out_b.append(k[pa_[:, 1]])
        i = j
    if not out_a:
        return np.empty(0, dtype=EDGE)
    a, b = np.concatenate(out_a), np.concatenate(out_b)
    out = np.empty(a.size, dtype=EDGE)
    out["a"] = np.minimum(a, b)
    out["b"] = np.maximum(a, b)
    return out
