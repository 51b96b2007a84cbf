"""The per-document cache: a document's words, lines and paragraphs, computed once and shared by
every filter (``doc.metadata["_cm_text_stats"]``, rebuilt when a stage rewrites the text)."""

from __future__ import annotations

import re
from collections import Counter
from itertools import accumulate, compress
from typing import Any

import numpy as np
from datatrove.data import Document

from corpusmill.curation.text.english_words import english
from corpusmill.curation.text.ngrams import SubstringHasher
from corpusmill.curation.text.other_words import generic_words, uses_english_rules
from corpusmill.curation.text.word_props import HAS_ALPHA, NON_SYMBOL


CACHE_KEY = "_cm_text_stats"


def _empty_stats() -> "TextStats":
    return TextStats(None, None)


class TextStats:
    """Lazily computed views of one text; every attribute is computed at most once."""

    __slots__ = ("text", "english", "_c")

    def __init__(self, text: str | None, language: Any) -> None:
        self.text = text
        self.english = uses_english_rules(language)
        self._c: dict[str, Any] = {}

    def __reduce__(self):  # never ship word lists across processes
        return (_empty_stats, ())

    def _get(self, key: str, fn):
        c = self._c
        v = c.get(key)
        if v is None:
            v = c[key] = fn()
        return v

    # -- words ----------------------------------------------------------------------------------
    @property
    def words(self) -> list[str]:
        """Words as datatrove's ``split_into_words`` gives them (English), or :func:`generic_words`."""

        def compute():
            if not self.english:
                return generic_words(self.text)
            chunks, words, fixed = english().split(self.text)
            if not fixed:
                self._c["chunks"] = chunks
            return words

        return self._get("words", compute)

    @property
    def word_counts(self) -> Counter:
        return self._get("word_counts", lambda: Counter(self.words))

    @property
    def word_props(self) -> tuple[int, int, int, int]:
        """(words, non-symbol words, characters in non-symbol words, words with a letter)."""

        def compute():
            words = self.words
            chunks = self._c.get("chunks")
            if chunks is not None:  # English: per-chunk sums, memoised
                return (len(words), *english().props_of_chunks(chunks))
            nonsym = list(map(NON_SYMBOL.__getitem__, words))
            return (
                len(words),
                sum(nonsym),
                sum(map(len, compress(words, nonsym))),
                sum(map(HAS_ALPHA.__getitem__, words)),
            )

        return self._get("word_props", compute)

    @property
    def word_offsets(self) -> tuple[str, list[int]]:
        """All words concatenated, and the offset of every word in that string (plus the end)."""

        def compute():
            words = self.words
            return "".join(words), list(accumulate(map(len, words), initial=0))

        return self._get("word_offsets", compute)

    @property
    def concat_hasher(self) -> tuple[SubstringHasher, np.ndarray]:
        """Hasher over ``"".join(words)`` and the word offsets there (repeated n-grams)."""

        def compute():
            concat, offsets = self.word_offsets
            return SubstringHasher(concat), np.asarray(offsets, dtype=np.int64)

        return self._get("concat_hasher", compute)

    @property
    def space_hasher(self) -> tuple[SubstringHasher, np.ndarray, np.ndarray]:
        """Hasher over ``" ".join(words)`` and every word's start / end there (top n-grams)."""

        def compute():
            words = self.words
            _, offsets = self.word_offsets
            off = np.asarray(offsets, dtype=np.int64)
            starts = off[:-1] + np.arange(len(words), dtype=np.int64)
            ends = off[1:] + np.arange(len(words), dtype=np.int64)
            return SubstringHasher(" ".join(words)), starts, ends

        return self._get("space_hasher", compute)

    # -- lines and paragraphs -------------------------------------------------------------------
    @property
    def splitlines(self) -> list[str]:
        """``text.splitlines()`` (Gopher quality, C4)."""
        return self._get("splitlines", lambda: self.text.splitlines())

    @property
    def newline_lines(self) -> list[str]:
        """``text.split("\\n")`` without blank lines (FineWeb)."""
        return self._get("newline_lines", lambda: [ln for ln in self.text.split("\n") if ln.strip() != ""])

    @property
    def repetition_lines(self) -> list[str]:
        r"""``re.split("\n+", text)`` (Gopher repetition)."""
        return self._get("repetition_lines", lambda: _LINES_RE.split(self.text))

    @property
    def paragraphs(self) -> list[str]:
        r"""``re.split("\n{2,}", text.strip())`` (Gopher repetition)."""
        return self._get("paragraphs", lambda: _PARAS_RE.split(self.text.strip()))


_LINES_RE = re.compile("\n+")
_PARAS_RE = re.compile(r"\n{2,}")


def get_stats(doc: Document) -> TextStats:
    """The shared :class:`TextStats` of ``doc``'s current text (built on first use, cached in metadata)."""
    md = doc.metadata
    text = doc.text if doc.text is not None else ""
    st = md.get(CACHE_KEY)
    if isinstance(st, TextStats) and (st.text is text or st.text == text):
        lang_en = uses_english_rules(md.get("language"))
        if st.english == lang_en:
            return st
    st = TextStats(text, md.get("language"))
    md[CACHE_KEY] = st
    return st


def drop_stats(doc: Document) -> None:
    """Remove the cached statistics from ``doc`` (e.g. before handing it to a non-corpusmill writer)."""
    doc.metadata.pop(CACHE_KEY, None)
