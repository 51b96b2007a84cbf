"""Gopher repetition rules (Rae et al. 2021, arXiv:2112.11446, Table A1), as implemented by datatrove's
``GopherRepetitionFilter`` (datatrove 0.10.1, ``pipeline/filters/gopher_repetition_filter.py``).
Thresholds and their sources: docs/filters.md, "GopherRepetition".

Same words, same order of rules, same arithmetic and same drop reasons as datatrove; only faster: the
words come from the shared :mod:`corpusmill.curation.text`, top n-grams are counted as word tuples,
and the repeated-n-gram scan visits only positions whose n-gram occurred before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from datatrove.data import Document

from corpusmill.curation.text.doc_stats import get_stats
from corpusmill.curation.text.languages import language_set
from corpusmill.curation.text.ngrams import duplicated_ngram_chars_hashed, find_duplicates, top_ngram_chars_hashed
from corpusmill.curation.stage import Filter, rule_on

#: Rae et al. 2021 Table A1: (n, max fraction of characters in the most frequent n-gram)
TOP_N_GRAMS = ((2, 0.20), (3, 0.18), (4, 0.16))
#: Rae et al. 2021 Table A1: (n, max fraction of characters in repeated n-grams)
DUP_N_GRAMS = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))


class GopherRepetition(Filter):
    """Drop documents with too much repeated content.

    Rules in order (reason: rule), defaults from Rae et al. 2021 Table A1 / datatrove:

    - ``empty``: empty text.
    - ``dup_para_frac``: more than 30 % of paragraphs (``text.strip()`` split on 2+ newlines) repeat an
      earlier paragraph; ``dup_para_char_frac``: their characters exceed 20 % of the text.
    - ``dup_line_frac`` / ``dup_line_char_frac``: the same for lines (split on 1+ newlines), 30 % / 20 %.
    - ``top_{n}_gram``: the most frequent word n-gram (n = 2, 3, 4) covers more than 20 / 18 / 16 % of
      the characters (n-gram length with single spaces x its count, over the text length).
    - ``duplicated_{n}_n_grams``: characters in repeated word n-grams (n = 5..10; n-grams compared as the
      concatenation of their words, a left-to-right scan that skips n words after every repeat, as
      datatrove does) exceed 15, 14, 13, 12, 11, 10 % of the text.

    A threshold of ``None`` or ``0`` switches its rule off. ``languages``: see
    :class:`~corpusmill.curation.filters.gopher_quality.GopherQuality`.

    Signals (``gopher_repetition.*``): ``dup_para_frac``, ``dup_para_char_frac``, ``dup_line_frac``,
    ``dup_line_char_frac``, ``top_{2,3,4}_gram_char_frac``, ``dup_{5..10}_gram_char_frac``.
    """

    name = "gopher_repetition"
    THRESHOLDS = {
        "dup_para_frac": [("max", "dup_para_frac")],
        "dup_para_char_frac": [("max", "dup_para_char_frac")],
        "dup_line_frac": [("max", "dup_line_frac")],
        "dup_line_char_frac": [("max", "dup_line_char_frac")],
    }

    def __init__(
        self,
        dup_line_frac: float | None = 0.3,
        dup_para_frac: float | None = 0.3,
        dup_line_char_frac: float | None = 0.2,
        dup_para_char_frac: float | None = 0.2,
        top_n_grams: Sequence[tuple[int, float]] = TOP_N_GRAMS,
        dup_n_grams: Sequence[tuple[int, float]] = DUP_N_GRAMS,
        languages: Iterable[str] | str | None = None,
    ):
        self.dup_line_frac = dup_line_frac
        self.dup_para_frac = dup_para_frac
        self.dup_line_char_frac = dup_line_char_frac
        self.dup_para_char_frac = dup_para_char_frac
        self.top_n_grams = tuple((int(n), float(f)) for n, f in top_n_grams)
        self.dup_n_grams = tuple((int(n), float(f)) for n, f in dup_n_grams)
        self.languages = language_set(languages)

    def thresholds(self) -> dict[str, list[tuple[str, float, str]]]:
        out = super().thresholds()
        for param in ("top_n_grams", "dup_n_grams"):
            for n, f in getattr(self, param) or ():
                if rule_on(f):
                    out[f"{param[:3]}_{n}_gram_char_frac"] = [("max", float(f), param)]
        return out

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        s = self.signals(doc)
        st = get_stats(doc)
        text = st.text
        if not text:
            for key in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"):
                s[key] = 0.0
            for n, _ in self.top_n_grams:
                s[f"top_{n}_gram_char_frac"] = 0.0
            for n, _ in self.dup_n_grams:
                s[f"dup_{n}_gram_char_frac"] = 0.0
            return False, "empty"
        n_chars = len(text)
        reason = None

        paragraphs = st.paragraphs
        dup, dup_chars = find_duplicates(paragraphs)
        para_frac = dup / len(paragraphs)
        para_char_frac = dup_chars / n_chars
        s["dup_para_frac"] = para_frac
        s["dup_para_char_frac"] = para_char_frac
        if self.dup_para_frac and para_frac > self.dup_para_frac:
            reason = "dup_para_frac"
        elif self.dup_para_char_frac and para_char_frac > self.dup_para_char_frac:
            reason = "dup_para_char_frac"

        lines = st.repetition_lines
        dup, dup_chars = find_duplicates(lines)
        line_frac = dup / len(lines)
        line_char_frac = dup_chars / n_chars
        s["dup_line_frac"] = line_frac
        s["dup_line_char_frac"] = line_char_frac
        if reason is None:
            if self.dup_line_frac and line_frac > self.dup_line_frac:
                reason = "dup_line_frac"
            elif self.dup_line_char_frac and line_char_frac > self.dup_line_char_frac:
                reason = "dup_line_char_frac"

        words = st.words
        if self.top_n_grams and words:
            hasher, starts, ends = st.space_hasher
        for n, frac in self.top_n_grams:
            top = top_ngram_chars_hashed(hasher, starts, ends, words, n) if words else -1
            value = top / n_chars if top >= 0 else 0.0
            s[f"top_{n}_gram_char_frac"] = value
            if reason is None and top >= 0 and value > frac:
                reason = f"top_{n}_gram"

        if self.dup_n_grams:
            chasher, offsets = st.concat_hasher
            for n, frac in self.dup_n_grams:
                value = duplicated_ngram_chars_hashed(chasher, offsets, n) / n_chars
                s[f"dup_{n}_gram_char_frac"] = value
                if reason is None and value > frac:
                    reason = f"duplicated_{n}_n_grams"

        if reason is not None:
            return False, reason
        return True
