"""Exact-duplicate keys.

A document's exact key is the xxh3-128 digest of its text, as two uint64 halves (high, low):

- ``mode="normalized"`` (default): of the UTF-8 bytes of :func:`corpusmill.curation.dedup.normalize.normalize_text`,
  so texts that differ only in case, punctuation, digits, accents or spacing are exact duplicates
  (the same normalisation MinHash uses, so every exact cluster lies inside a MinHash cluster);
- ``mode="raw"``: of the text's UTF-8 bytes as they are (byte-identical duplicates only).

A text whose key source is empty (no words after normalisation, or an empty raw text) has no key:
it is never an exact duplicate (empty pages are a filter's business, not dedup's).

128 bits: the probability that two different texts share a key is ~2**-128 per pair, nil even for
10**12 documents.
"""

from __future__ import annotations

import numpy as np
import xxhash

from corpusmill.curation.dedup.normalize import codepoints_to_text, normalize_codepoints

__all__ = ["EXACT_MODES", "exact_key", "exact_key_from_codepoints"]

EXACT_MODES = ("normalized", "raw")
_LOW = 0xFFFFFFFFFFFFFFFF


def _split(v: int) -> tuple[int, int]:
    return v >> 64, v & _LOW


def exact_key_from_codepoints(z: np.ndarray) -> tuple[int, int] | None:
    """Key of an already normalised text (see :func:`corpusmill.curation.dedup.normalize.normalize_codepoints`)."""
    if z.size == 0:
        return None
    return _split(xxhash.xxh3_128_intdigest(codepoints_to_text(z).encode("utf-8", "surrogatepass")))


def exact_key(text: str, mode: str = "normalized") -> tuple[int, int] | None:
    """(high, low) halves of the xxh3-128 digest of the text (normalised or raw); None if empty."""
    if mode == "normalized":
        return exact_key_from_codepoints(normalize_codepoints(text))
    if mode == "raw":
        if not text:
            return None
        return _split(xxhash.xxh3_128_intdigest(text.encode("utf-8", "surrogatepass")))
    raise ValueError(f"unknown exact dedup mode {mode!r} (expected one of {EXACT_MODES})")
