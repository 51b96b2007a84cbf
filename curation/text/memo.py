"""A bounded memo: a dict that computes missing values and forgets old generations."""

from __future__ import annotations


MISSING = object()
_MEMO_LIMIT = 150_000  # entries per memo generation (at most two generations are kept)


class Memo(dict):
    """A dict that computes missing values, so ``map(memo.__getitem__, keys)`` runs at C speed on hits.

    Bounded with two generations: when it holds ``_MEMO_LIMIT`` entries they become the old generation
    and the memo starts empty; a key found in the old generation is copied back. Frequent keys survive,
    memory stays below two generations (~150 bytes an entry for a typical chunk)."""

    __slots__ = ("_fn", "_old")

    def __init__(self, fn) -> None:
        super().__init__()
        self._fn = fn
        self._old: dict = {}

    def __missing__(self, key):
        value = self._old.get(key, MISSING)
        if value is MISSING:
            value = self._fn(key)
        if len(self) >= _MEMO_LIMIT:
            self._old = dict(self)
            self.clear()
        self[key] = value
        return value
