"""Gopher's stop-word rule, generalised to every language that has a stop-word list.

Rae et al. 2021 (arXiv:2112.11446, A.1.1) keep a document only if it contains at least two of the
English words {the, be, to, of, and, that, have, with}. Here the list depends on ``metadata["language"]``
(set by the language-ID stage): Gopher's eight words for English by default (``english="gopher"``, or
``"package"``), the ``stop-words`` PyPI package's lists (python-stop-words, BSD-3-Clause) for 33 other
languages; ``min_stop_word_ratio`` adds an optional density rule. Lists, cleaning, matching and the
UDHR measurements: docs/filters.md, "StopWords".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping

from datatrove.data import Document

from corpusmill.curation.filters.gopher_quality import GOPHER_STOP_WORDS
from corpusmill.curation.text.doc_stats import get_stats
from corpusmill.curation.text.languages import language_set, normalize_language
from corpusmill.curation.stage import Filter

#: languages written without spaces: stop words are looked up as substrings of the text
NO_SPACE_LANGUAGES = frozenset({"zh", "ja"})

#: languages whose words are compared without diacritics: the package's Greek list is polytonic
#: (Ancient Greek spelling, "σ" for final sigma) and would miss modern monotonic text
FOLD_DIACRITICS = frozenset({"el"})

_package_cache: dict[str, frozenset[str] | None] = {}


def fold(word: str) -> str:
    """Lowercase, without combining marks, final sigma as sigma (for :data:`FOLD_DIACRITICS`)."""
    word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", word.lower()).replace("ς", "σ")


def _clean(entries: Iterable[str]) -> list[str]:
    """The package lists need a little cleaning: the Hebrew entries keep their quotes and commas
    (``"אבל",``), Italian and Persian have stray ``"`` / ``,``; entries of several words (most of the
    Vietnamese list, part of Gujarati, Korean, Persian) can never equal one word and are left out."""
    out = []
    for w in entries:
        w = w.strip().strip('",').strip()
        if w and not any(c.isspace() for c in w) and any(c.isalnum() for c in w):
            out.append(w)
    return out


def package_stop_words(language: str) -> frozenset[str] | None:
    """The ``stop-words`` package's list for an ISO 639-1 code, cleaned and lowercased (None if the
    package has no list for it)."""
    if language not in _package_cache:
        from stop_words import LANGUAGE_MAPPING, get_stop_words

        if language in LANGUAGE_MAPPING:
            _package_cache[language] = frozenset(w.lower() for w in _clean(get_stop_words(language)))
        else:
            _package_cache[language] = None
    return _package_cache[language]


class StopWords(Filter):
    """Drop documents with too few stop words of their language.

    Rules (reason):

    - ``gopher_enough_stop_words`` (datatrove's reason for Gopher's rule): fewer than ``min_stop_words``
      (default 2, Gopher) *distinct* stop words of the document's language.
    - ``stop_words_low_ratio``: stop-word occurrences per word below ``min_stop_word_ratio``
      (default None = off).
    - ``stop_words_no_list``: the language has no list and ``unknown_language="drop"``; with the
      default ``"keep"`` such documents pass (signals recorded, ``stop_words.has_list`` = 0).

    The language is ``metadata["language"]`` normalised to ISO 639-1 (``"en-US"``, ``"eng_Latn"`` ->
    ``"en"``); a document without one is treated as ``default_language`` ("en"), as datatrove's filters
    assume English. Words are the shared split of :mod:`corpusmill.curation.text`, compared lowercased
    (``case_sensitive=True`` compares as they are, like datatrove's Gopher rule: "The" is then not
    "the"); for Greek also without diacritics (:data:`FOLD_DIACRITICS`). For zh and ja, written without spaces, a stop word counts when it occurs as a substring of
    the text, and the ratio is its occurrences per word of the split (one per Han / kana character).

    ``stop_words`` maps language -> words to replace or add lists.

    Signals (``stop_words.*``): ``count`` (distinct stop words), ``ratio`` (occurrences per word),
    ``has_list`` (1 or 0).
    """

    name = "stop_words"
    THRESHOLDS = {"count": [("min", "min_stop_words")], "ratio": [("min", "min_stop_word_ratio")]}

    def __init__(
        self,
        min_stop_words: int | None = 2,
        min_stop_word_ratio: float | None = None,
        english: str = "gopher",
        stop_words: Mapping[str, Iterable[str]] | None = None,
        default_language: str = "en",
        unknown_language: str = "keep",
        case_sensitive: bool = False,
        languages: Iterable[str] | str | None = None,
    ):
        if english not in ("gopher", "package"):
            raise ValueError("english must be 'gopher' or 'package'")
        if unknown_language not in ("keep", "drop"):
            raise ValueError("unknown_language must be 'keep' or 'drop'")
        self.min_stop_words = min_stop_words
        self.min_stop_word_ratio = min_stop_word_ratio
        self.english = english
        self.case_sensitive = case_sensitive
        self.custom = {normalize_language(k): frozenset(v) for k, v in (stop_words or {}).items()}
        self.default_language = normalize_language(default_language) or "en"
        self.unknown_language = unknown_language
        self.languages = language_set(languages)
        self._lists: dict[tuple[str, bool], frozenset[str] | None] = {}

    def stop_words_for(self, language: str) -> frozenset[str] | None:
        """The words compared for ``language`` (lowercased / folded as the text words will be)."""
        key = (language, self.case_sensitive)
        if key in self._lists:
            return self._lists[key]
        if language in self.custom:
            words = self.custom[language]
        elif language == "en" and self.english == "gopher":
            words = frozenset(GOPHER_STOP_WORDS)
        else:
            words = package_stop_words(language)
        if words is not None:  # text words are compared in NFC too (see filter)
            words = frozenset(unicodedata.normalize("NFC", w) for w in words)
        if words is not None and not self.case_sensitive:
            norm = fold if language in FOLD_DIACRITICS else str.lower
            words = frozenset(norm(w) for w in words)
        self._lists[key] = words
        return words

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lang = normalize_language(doc.metadata.get("language")) or self.default_language
        words_set = self.stop_words_for(lang)
        s = self.signals(doc)
        if not words_set:
            s["count"] = 0.0
            s["ratio"] = 0.0
            s["has_list"] = 0.0
            if self.unknown_language == "drop":
                return False, "stop_words_no_list"
            return True
        st = get_stats(doc)
        n_words = len(st.words)
        if lang in NO_SPACE_LANGUAGES:
            text = st.text if self.case_sensitive else st.text.lower()
            found = [w for w in words_set if w in text]
            count = len(found)
            occurrences = sum(text.count(w) for w in found)
        else:
            counts = st.word_counts
            if not unicodedata.is_normalized("NFC", st.text):  # decomposed accents (NFD) would never match
                nfc: dict[str, int] = {}
                for w, c in counts.items():
                    k = unicodedata.normalize("NFC", w)
                    nfc[k] = nfc.get(k, 0) + c
                counts = nfc
            if not self.case_sensitive:
                norm = fold if lang in FOLD_DIACRITICS else str.lower
                lowered: dict[str, int] = {}
                for w, c in counts.items():
                    lw = norm(w)
                    lowered[lw] = lowered.get(lw, 0) + c
                counts = lowered
            hits = [c for w, c in counts.items() if w in words_set]
            count = len(hits)
            occurrences = sum(hits)
        ratio = occurrences / n_words if n_words else 0.0
        s["count"] = count
        s["ratio"] = ratio
        s["has_list"] = 1.0
        if self.min_stop_words and count < self.min_stop_words:
            return False, "gopher_enough_stop_words"
        if self.min_stop_word_ratio and ratio < self.min_stop_word_ratio:
            return False, "stop_words_low_ratio"
        return True
