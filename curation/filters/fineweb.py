"""FineWeb's own quality filter (Penedo et al. 2024, "The FineWeb Datasets: Decanting the Web for the
Finest Text Data at Scale", arXiv:2406.17557, section 3.3), as implemented by datatrove's
``FineWebQualityFilter`` (datatrove 0.10.1, ``pipeline/filters/fineweb_quality_filter.py``).
FineWeb-2 re-tunes these per language (``huggingface/fineweb-2``,
``configs/afr_Latn.yml``: line_punct 0.053, new_line 0.209); pass them as arguments. See docs/filters.md.
"""

from __future__ import annotations

from collections.abc import Iterable

from datatrove.data import Document
from datatrove.utils.text import TERMINAL_PUNCTUATION

from corpusmill.curation.text.doc_stats import get_stats
from corpusmill.curation.text.languages import language_set
from corpusmill.curation.text.ngrams import find_duplicates
from corpusmill.curation.stage import Filter


class FineWebQuality(Filter):
    """Drop documents that fail FineWeb's line-level heuristics.

    Over the non-blank lines of ``text.split("\\n")`` (lines are not stripped), in order:

    - ``empty``: no non-blank line.
    - ``line_punct_ratio``: share of lines ending in a terminal punctuation character (datatrove's
      ``TERMINAL_PUNCTUATION``, ~160 characters over many scripts) below ``line_punct_thr`` = 0.12
      (with ``line_punct_exclude_zero``, a share of exactly 0 passes).
    - ``short_line_ratio``: share of lines of at most ``short_line_length`` = 30 characters above
      ``short_line_thr`` = 0.67.
    - ``char_dup_ratio``: characters in repeated lines over the characters of the text without newlines
      above ``char_duplicates_ratio`` = 0.01.
    - ``list_ratio``: newlines per word above ``new_line_ratio`` = 0.3.

    ``languages``: see :class:`~corpusmill.curation.filters.gopher_quality.GopherQuality`.

    Signals (``fineweb.*``): ``line_punct_ratio``, ``short_line_ratio``, ``char_dup_ratio``,
    ``new_line_ratio`` (0 when there are no lines / words).
    """

    name = "fineweb"
    THRESHOLDS = {
        "line_punct_ratio": [("min", "line_punct_thr")],
        "short_line_ratio": [("max", "short_line_thr")],
        "char_dup_ratio": [("max", "char_duplicates_ratio")],
        "new_line_ratio": [("max", "new_line_ratio")],
    }

    def __init__(
        self,
        line_punct_thr: float = 0.12,
        line_punct_exclude_zero: bool = False,
        stop_chars: Iterable[str] | None = None,
        short_line_thr: float = 0.67,
        short_line_length: int = 30,
        char_duplicates_ratio: float = 0.01,
        new_line_ratio: float = 0.3,
        languages: Iterable[str] | str | None = None,
    ):
        self.line_punct_thr = line_punct_thr
        self.line_punct_exclude_zero = line_punct_exclude_zero
        self.stop_chars = tuple(stop_chars) if stop_chars is not None else tuple(TERMINAL_PUNCTUATION)
        self.short_line_thr = short_line_thr
        self.short_line_length = short_line_length
        self.char_duplicates_ratio = char_duplicates_ratio
        self.new_line_ratio = new_line_ratio
        self.languages = language_set(languages)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        st = get_stats(doc)
        text = st.text
        lines = st.newline_lines
        s = self.signals(doc)
        if not lines:
            for key in ("line_punct_ratio", "short_line_ratio", "char_dup_ratio", "new_line_ratio"):
                s[key] = 0.0
            return False, "empty"
        n = len(lines)
        stop = self.stop_chars
        punct = sum(1 for ln in lines if ln.endswith(stop)) / n
        short_len = self.short_line_length
        short = sum(1 for ln in lines if len(ln) <= short_len) / n
        n_chars = len(text) - text.count("\n")
        dup = find_duplicates(lines)[1] / n_chars if n_chars else 0.0
        n_words = len(st.words)
        new_line = text.count("\n") / n_words if n_words else 0.0
        s["line_punct_ratio"] = punct
        s["short_line_ratio"] = short
        s["char_dup_ratio"] = dup
        s["new_line_ratio"] = new_line

        if punct < self.line_punct_thr and not (punct == 0 and self.line_punct_exclude_zero):
            return False, "line_punct_ratio"
        if short > self.short_line_thr:
            return False, "short_line_ratio"
        if dup > self.char_duplicates_ratio:
            return False, "char_dup_ratio"
        if new_line > self.new_line_ratio:
            return False, "list_ratio"
        return True
