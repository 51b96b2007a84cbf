"""Gopher quality rules (Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from
Training Gopher", arXiv:2112.11446, section A.1.1 / Table A1), as implemented by datatrove's
``GopherQualityFilter`` (datatrove 0.10.1, ``pipeline/filters/gopher_quality_filter.py``; the same rules
are in NeMo-Curator and dolma). Thresholds and their sources: docs/filters.md, "GopherQuality".

Same words (see :mod:`corpusmill.curation.text`), same rule order and the same drop reasons as
datatrove, so decisions can be compared one to one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from datatrove.data import Document

from corpusmill.curation.text.doc_stats import get_stats
from corpusmill.curation.text.languages import language_set
from corpusmill.curation.stage import Filter

#: Gopher's stop words (Rae et al. 2021, A.1.1): a document must contain at least 2 of them
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")

_BULLETS = ("•", "-")
_ELLIPSES = ("...", "…")


class GopherQuality(Filter):
    """Drop documents that fail Gopher's quality heuristics.

    Rules, in datatrove's order (reason on the left), defaults from Rae et al. 2021 Table A1 /
    datatrove:

    - ``gopher_short_doc`` / ``gopher_long_doc``: non-symbol words outside ``[min_doc_words,
      max_doc_words]`` = [50, 100,000]. A "non-symbol word" has a character outside datatrove's
      ``PUNCTUATION_SET``.
    - ``gopher_below_avg_threshold`` / ``gopher_above_avg_threshold``: mean length of the non-symbol
      words outside [3, 10] characters.
    - ``gopher_too_many_hashes`` / ``gopher_too_many_ellipsis``: "#" count, or "..." + "…" count, per
      word (all words) above ``max_symbol_word_ratio`` = 0.1.
    - ``gopher_too_many_bullets``: more than 90 % of lines start with "•" or "-" (after leading blanks).
    - ``gopher_too_many_end_ellipsis``: more than 30 % of lines end with "..." or "…".
    - ``gopher_below_alpha_threshold``: under 80 % of words contain an alphabetic character
      (``min_alpha_words_ratio``; datatrove calls this parameter ``max_non_alpha_words_ratio``).
    - ``gopher_enough_stop_words``: fewer than ``min_stop_words`` = 2 distinct words of ``stop_words``
      (default :data:`GOPHER_STOP_WORDS`, matched case-sensitively as datatrove does; words and stop
      words compared in Unicode NFC). This is the English
      rule; for other languages use :class:`corpusmill.curation.filters.stop_words.StopWords` and set
      ``min_stop_words=None`` here.

    A threshold of ``None`` or ``0`` switches its rule off (datatrove's convention). ``languages``
    restricts the filter to documents whose ``metadata["language"]`` is in the set (a missing language
    counts as English); other documents pass untouched. The thresholds are English ones: FineWeb-2 shows
    they need re-tuning per language.

    Signals (``gopher_quality.*``): ``words`` (non-symbol words), ``mean_word_length``, ``hash_ratio``,
    ``ellipsis_ratio``, ``bullet_lines_ratio``, ``end_ellipsis_lines_ratio``, ``alpha_words_ratio``,
    ``stop_words`` (distinct stop words found). Ratios over zero words or lines are 0.
    """

    name = "gopher_quality"
    THRESHOLDS = {
        "words": [("min", "min_doc_words"), ("max", "max_doc_words")],
        "mean_word_length": [("min", "min_avg_word_length"), ("max", "max_avg_word_length")],
        "hash_ratio": [("max", "max_symbol_word_ratio")],
        "ellipsis_ratio": [("max", "max_symbol_word_ratio")],
        "bullet_lines_ratio": [("max", "max_bullet_lines_ratio")],
        "end_ellipsis_lines_ratio": [("max", "max_ellipsis_lines_ratio")],
        "alpha_words_ratio": [("min", "min_alpha_words_ratio")],
        "stop_words": [("min", "min_stop_words")],
    }

    def __init__(
        self,
        min_doc_words: int | None = 50,
        max_doc_words: int | None = 100_000,
        min_avg_word_length: float | None = 3,
        max_avg_word_length: float | None = 10,
        max_symbol_word_ratio: float | None = 0.1,
        max_bullet_lines_ratio: float | None = 0.9,
        max_ellipsis_lines_ratio: float | None = 0.3,
        min_alpha_words_ratio: float | None = 0.8,
        min_stop_words: int | None = 2,
        stop_words: Iterable[str] | None = None,
        languages: Iterable[str] | str | None = None,
    ):
        self.min_doc_words = min_doc_words
        self.max_doc_words = max_doc_words
        self.min_avg_word_length = min_avg_word_length
        self.max_avg_word_length = max_avg_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio = max_bullet_lines_ratio
        self.max_ellipsis_lines_ratio = max_ellipsis_lines_ratio
        self.min_alpha_words_ratio = min_alpha_words_ratio
        self.min_stop_words = min_stop_words
        self.stop_words = frozenset(
            unicodedata.normalize("NFC", w) for w in (GOPHER_STOP_WORDS if stop_words is None else stop_words)
        )
        # a text in decomposed form (NFD: seen in the UDHR's Vietnamese) would never match accented stop
        # words; ASCII stop words (Gopher's English ones) match either way, as in datatrove
        self._nfc_words = not all(w.isascii() for w in self.stop_words)
        self.languages = language_set(languages)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        st = get_stats(doc)
        text = st.text
        n_words, n_nonsym, nonsym_chars, n_alpha = st.word_props
        mean_len = nonsym_chars / n_nonsym if n_nonsym else 0.0
        hashes = text.count("#") / n_words if n_words else 0.0
        ellipses = (text.count("...") + text.count("…")) / n_words if n_words else 0.0
        lines = st.splitlines
        n_lines = len(lines)
        bullets = sum(1 for ln in lines if ln.lstrip().startswith(_BULLETS)) / n_lines if n_lines else 0.0
        end_ell = sum(1 for ln in lines if ln.rstrip().endswith(_ELLIPSES)) / n_lines if n_lines else 0.0
        alpha = n_alpha / n_words if n_words else 0.0
        n_stop = 0
        if self.stop_words:
            words = st.words
            if self._nfc_words and not unicodedata.is_normalized("NFC", text):
                words = [unicodedata.normalize("NFC", w) for w in words]
            n_stop = len(self.stop_words.intersection(words))

        s = self.signals(doc)
        s["words"] = n_nonsym
        s["mean_word_length"] = mean_len
        s["hash_ratio"] = hashes
        s["ellipsis_ratio"] = ellipses
        s["bullet_lines_ratio"] = bullets
        s["end_ellipsis_lines_ratio"] = end_ell
        s["alpha_words_ratio"] = alpha
        s["stop_words"] = n_stop

        if self.min_doc_words and n_nonsym < self.min_doc_words:
            return False, "gopher_short_doc"
        if self.max_doc_words and n_nonsym > self.max_doc_words:
            return False, "gopher_long_doc"
        if self.min_avg_word_length and mean_len < self.min_avg_word_length:
            return False, "gopher_below_avg_threshold"
        if self.max_avg_word_length and mean_len > self.max_avg_word_length:
            return False, "gopher_above_avg_threshold"
        if self.max_symbol_word_ratio and hashes > self.max_symbol_word_ratio:
            return False, "gopher_too_many_hashes"
        if self.max_symbol_word_ratio and ellipses > self.max_symbol_word_ratio:
            return False, "gopher_too_many_ellipsis"
        if self.max_bullet_lines_ratio and bullets > self.max_bullet_lines_ratio:
            return False, "gopher_too_many_bullets"
        if self.max_ellipsis_lines_ratio and end_ell > self.max_ellipsis_lines_ratio:
            return False, "gopher_too_many_end_ellipsis"
        if self.min_alpha_words_ratio and alpha < self.min_alpha_words_ratio:
            return False, "gopher_below_alpha_threshold"
        if self.min_stop_words and n_stop < self.min_stop_words:
            return False, "gopher_enough_stop_words"
        return True
