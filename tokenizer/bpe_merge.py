"""The BPE merge loop over pre-counted words, compiled with numba (rustbpe's algorithm, 64-bit counts).

Words are byte strings with counts (:mod:`corpusmill.tokenizer.bpe_count`). Token ids: the 256 bytes,
then ``256 + i`` for the i-th merge. Each step merges the pair with the highest count; equal counts go
to the smaller ``(left id, right id)``: rustbpe's order, so the merges equal rustbpe's on the same text.
State, as in rustbpe and HF's trainer: pair counts (an open-addressing hash table), for each pair the
words it was seen in (a linked list, appended when the pair is created), and a binary heap of pairs with
lazy deletion (a popped pair whose count has dropped since it was pushed is pushed back with the new
count; counts of existing pairs only drop, new pairs are pushed once after the step that made them).
Compiled code is cached on disk by numba (``__pycache__`` or ``NUMBA_CACHE_DIR``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_S32 = np.uint64(32)


@njit(cache=True, nogil=True)
def _slot(keys, key, mask):
    i = np.int64((np.uint64(key) * _GOLD) >> _S32) & mask
    while True:
        k = keys[i]
        if k == key or k == -1:
            return i
        i = (i + 1) & mask


@njit(cache=True, nogil=True)
def _grow(a, n):
    if n < a.size:
        return a
    b = np.empty(max(2 * a.size, n + 1), dtype=a.dtype)
    b[: a.size] = a
    return b


@njit(cache=True, nogil=True)
def _rehash(cap, pa, pb, npairs):
    keys = np.full(cap, -1, dtype=np.int64)
    vals = np.empty(cap, dtype=np.int32)
    for q in range(npairs):
        kk = (np.int64(pa[q]) << 32) | pb[q]
        t = _slot(keys, kk, cap - 1)
        keys[t], vals[t] = kk, q
    return keys, vals


@njit(cache=True, nogil=True)
def _before(hc, hp, pa, pb, i, j):
    """Heap entry i comes out before entry j: larger count, then smaller (left, right)."""
    if hc[i] != hc[j]:
        return hc[i] > hc[j]
    x, y = hp[i], hp[j]
    if pa[x] != pa[y]:
        return pa[x] < pa[y]
    return pb[x] < pb[y]


@njit(cache=True, nogil=True)
def _swap(hc, hp, i, j):
    c, p = hc[i], hp[i]
    hc[i], hp[i] = hc[j], hp[j]
    hc[j], hp[j] = c, p


@njit(cache=True, nogil=True)
def _sift_up(hc, hp, pa, pb, i):
    while i > 0:
        parent = (i - 1) >> 1
        if _before(hc, hp, pa, pb, i, parent):
            _swap(hc, hp, i, parent)
            i = parent
        else:
            break


@njit(cache=True, nogil=True)
def _sift_down(hc, hp, pa, pb, i, n):
    while True:
        left = 2 * i + 1
        if left >= n:
            break
        best = left
        if left + 1 < n and _before(hc, hp, pa, pb, left + 1, left):
            best = left + 1
        if _before(hc, hp, pa, pb, best, i):
            _swap(hc, hp, i, best)
            i = best
        else:
            break


@njit(cache=True, nogil=True)
def learn_merges(flat, offsets, counts, n_merges, min_count):
    """Merges as an (m, 2) int32 array of (left id, right id), m <= n_merges, and their counts (int64).

    ``flat``: uint8 bytes of all words; word w is ``flat[offsets[w]:offsets[w + 1]]``; ``counts[w]`` > 0.
    Stops early when no pair is seen ``min_count`` (>= 1) times.
    """
    n_words = offsets.size - 1
    total = max(flat.size, 16)
    # the words as doubly linked lists of symbols over the flat array (-1: none / merged away)
    sym = flat.astype(np.int32)
    nxt = np.arange(1, flat.size + 1, dtype=np.int32)
    prv = np.arange(-1, flat.size - 1, dtype=np.int32)
    cnt = np.empty(flat.size, dtype=np.int64)  # the count of the word each position belongs to
    for w in range(n_words):
        s, e = offsets[w], offsets[w + 1]
        if e > s:
            prv[s] = -1
            nxt[e - 1] = -1
            cnt[s:e] = counts[w]

    # pairs: hash table key (a << 32 | b) -> pair index; per pair: a, b, count, head of its position list
    cap = 1 << 16  # hash table slots, kept at most half full
    mask = cap - 1
    keys = np.full(cap, -1, dtype=np.int64)
    vals = np.empty(cap, dtype=np.int32)
    pa = np.empty(cap // 2, dtype=np.int32)
    pb = np.empty(cap // 2, dtype=np.int32)
    pc = np.zeros(cap // 2, dtype=np.int64)
    head = np.empty(cap // 2, dtype=np.int32)
    npairs = 0
    node_pos = np.empty(total, dtype=np.int32)  # position lists: linked nodes (position, next node)
    node_next = np.empty(total, dtype=np.int32)
    nnodes = 0

    merges = np.empty((n_merges, 2), dtype=np.int32)
    mcounts = np.empty(n_merges, dtype=np.int64)
    hc = np.empty(16, dtype=np.int64)  # heap of (count, pair index)
    hp = np.empty(16, dtype=np.int32)
    hn = 0
    m = -1  # -1: the initial count; then the merge being applied
    a, b, new = -1, -1, -1
    top = -1
    x, r = -1, -1
    while m < n_merges:
        first_new = npairs
        # walk the positions to count (m == -1) or the position list of the pair merged at step m
        node = head[top] if m >= 0 else -1
        k_i = 0
        while True:
            if m == -1:
                if k_i >= flat.size:
                    break
                p = k_i
                k_i += 1
                q = nxt[p]
                if q == -1:
                    continue
                # count pair (sym[p], sym[q]) at p
                n_up = 1
            else:
                if node == -1:
                    break
                p = node_pos[node]
                node = node_next[node]
                if sym[p] != a:
                    continue
                q = nxt[p]
                if q == -1 or sym[q] != b:
                    continue
                if a == b:  # a run of one symbol merges left to right: start at the run's first symbol
                    while prv[p] != -1 and sym[prv[p]] == a:
                        p = prv[p]
                    q = nxt[p]
                n_up = 0
            c = cnt[p]
            while True:  # m >= 0: each merge of (a, b) at p, then the next one of the same run (a == b)
                if m >= 0:
                    x = prv[p]
                    r = nxt[q]
                    pc[top] -= c
                    # (x, a) -> (x, new) at x; (b, y) -> (new, y) at p
                    if x != -1:
                        old = (np.int64(sym[x]) << 32) | a
                        pc[vals[_slot(keys, old, mask)]] -= c
                    if r != -1:
                        old = (np.int64(b) << 32) | sym[r]
                        pc[vals[_slot(keys, old, mask)]] -= c
                    sym[p] = new
                    sym[q] = -1
                    nxt[p] = r
                    if r != -1:
                        prv[r] = p
                    n_up = (1 if x != -1 else 0) + (2 if r != -1 else 0)
                for side in range(2):
                    if m == -1:
                        if side == 1:
                            break
                        at, u, v = p, sym[p], sym[q]
                    elif side == 0:
                        if not n_up & 1:
                            continue
                        at, u, v = x, sym[x], new
                    else:
                        if not n_up & 2:
                            continue
                        at, u, v = p, new, sym[r]
                    key = (np.int64(u) << 32) | v
                    k = _slot(keys, key, mask)
                    if keys[k] == -1:
                        if 2 * (npairs + 1) > cap:
                            cap *= 2
                            mask = cap - 1
                            keys, vals = _rehash(cap, pa, pb, npairs)
                            k = _slot(keys, key, mask)
                        keys[k] = key
                        vals[k] = npairs
                        pa = _grow(pa, npairs)
                        pb = _grow(pb, npairs)
                        pc = _grow(pc, npairs)
                        head = _grow(head, npairs)
                        pa[npairs], pb[npairs], pc[npairs], head[npairs] = u, v, 0, -1
                        npairs += 1
                    pi = vals[k]
                    pc[pi] += c
                    node_pos = _grow(node_pos, nnodes)
                    node_next = _grow(node_next, nnodes)
                    node_pos[nnodes], node_next[nnodes] = at, head[pi]
                    head[pi] = nnodes
                    nnodes += 1
                if m >= 0 and a == b:
                    p = nxt[p]  # the symbol after the merged one: merge again if it starts another (a, a)
                    if p != -1 and sym[p] == a:
                        q = nxt[p]
                        if q != -1 and sym[q] == a:
                            continue
                break
        # pairs created by this step (all of them, after the initial count) enter the heap
        if hn + (npairs - first_new) > hc.size:
            hc = _grow(hc, hn + (npairs - first_new))
            hp = _grow(hp, hn + (npairs - first_new))
        for pi in range(first_new, npairs):
            if pc[pi] > 0:
                hc[hn], hp[hn] = pc[pi], pi
                hn += 1
                if m >= 0:
                    _sift_up(hc, hp, pa, pb, hn - 1)
        if m == -1:
            for i in range(hn // 2 - 1, -1, -1):
                _sift_down(hc, hp, pa, pb, i, hn)
        m += 1
        # the next merge: the pair with the largest count (lazy deletion of stale heap entries)
        top = -1
        while hn > 0:
            top_c, t = hc[0], hp[0]
            hn -= 1
            if hn > 0:
                hc[0], hp[0] = hc[hn], hp[hn]
                _sift_down(hc, hp, pa, pb, 0, hn)
            cur = pc[t]
            if cur == top_c:
                top = t
                break
            if cur > 0:  # counts only drop: push it back with its current count
                hc[hn], hp[hn] = cur, t
                hn += 1
                _sift_up(hc, hp, pa, pb, hn - 1)
        if m >= n_merges or top == -1 or pc[top] < min_count:
            break
        a, b = pa[top], pb[top]
        new = 256 + m
        merges[m, 0], merges[m, 1] = a, b
        mcounts[m] = pc[top]
    return merges[:m], mcounts[:m]
