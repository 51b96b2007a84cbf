"""C4's page cleaning (Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified
Text-to-Text Transformer", JMLR 21(140), section 2.2; code: tensorflow_datasets ``text/c4_utils.py``
``clean_page``), as implemented by datatrove's ``C4QualityFilter`` (datatrove 0.10.1,
``pipeline/filters/c4_filters.py``).

``variant`` selects the paper's reading of the thresholds (``"paper"``, default: 5 sentences / 3 words
per line, what datatrove and FineWeb run) or the released TFDS code's (``"tfds"``: 3 / 5). Sources,
the choice of default, and what is not implemented (LDNOOBW bad words, ``split_paragraph=False``):
docs/filters.md, "C4Quality".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from datatrove.data import Document

from corpusmill.curation.text.doc_stats import get_stats
from corpusmill.curation.text.english_words import english
from corpusmill.curation.text.languages import language_set
from corpusmill.curation.stage import Filter

CITATION_RE = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
PAPER_END_MARKS = (".", "?", "!", '"', "'")
TFDS_END_MARKS = (".", "?", "!", '"')
ELLIPSIS = "..."
POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
VARIANTS = {
    # variant: (min_num_sentences, min_words_per_line, end marks, count words after citation removal)
    "paper": (5, 3, PAPER_END_MARKS, False),
    "tfds": (3, 5, TFDS_END_MARKS, True),
}


class C4Quality(Filter):
    """C4's line filter and page rules. Keeps the lines that pass and, by default, rewrites
    ``doc.text`` to them (as C4 and datatrove do) when the page is kept.

    Per line (after ``strip()``): drop a line with a word longer than ``max_word_length`` (1000); remove
    citations ``[1]``, ``[edit]``, ``[citation needed]``; drop a line not ending in a terminal mark or
    ending in "..." (when ``filter_no_terminal_punct``); drop a line with fewer than
    ``min_words_per_line`` whitespace words; then drop the *page* if the line contains "lorem ipsum"
    (reason ``lorem_ipsum``), drop the line if it mentions "javascript", drop the *page* if the line has
    a "{" (``curly_bracket``), drop the line if it has a cookie / policy phrase. A page keeping fewer than
    ``min_num_sentences`` sentences is dropped (``too_few_sentences``; -1 switches the rule off).

    ``variant`` sets the defaults of ``min_num_sentences``, ``min_words_per_line`` and the end marks
    (see the module docstring); explicit arguments override it. FineWeb's setting is
    ``C4Quality(filter_no_terminal_punct=False)``. ``rewrite_text=False`` only decides, leaving the text
    as it is. Sentences are counted with the English (spaCy sentencizer) rule whatever the language.

    Signals (``c4.*``): ``lines`` (lines in the page), ``kept_lines``, ``kept_line_ratio``,
    ``sentences`` (in kept lines), ``javascript_lines``, ``policy_lines``, ``no_terminal_punct_lines``,
    ``too_short_lines``, ``too_long_word_lines``. For a page dropped on "lorem ipsum" or "{" the counts
    cover the lines read up to that line.
    """

    name = "c4"
    THRESHOLDS = {"sentences": [("min", "min_num_sentences")]}

    def __init__(
        self,
        variant: str = "paper",
        filter_no_terminal_punct: bool = True,
        min_num_sentences: int | None = None,
        min_words_per_line: int | None = None,
        max_word_length: int = 1000,
        remove_citations: bool = True,
        filter_lorem_ipsum: bool = True,
        filter_javascript: bool = True,
        filter_curly_bracket: bool = True,
        filter_policy: bool = True,
        rewrite_text: bool = True,
        languages: Iterable[str] | str | None = None,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, not {variant!r}")
        v_sent, v_words, v_marks, v_after = VARIANTS[variant]
        self.variant = variant
        self.filter_no_terminal_punct = filter_no_terminal_punct
        self.min_num_sentences = v_sent if min_num_sentences is None else min_num_sentences
        self.min_words_per_line = v_words if min_words_per_line is None else min_words_per_line
        self.end_marks = v_marks
        self.count_words_after_citations = v_after
        self.max_word_length = max_word_length
        self.remove_citations = remove_citations
        self.filter_lorem_ipsum = filter_lorem_ipsum
        self.filter_javascript = filter_javascript
        self.filter_curly_bracket = filter_curly_bracket
        self.filter_policy = filter_policy
        self.rewrite_text = rewrite_text
        self.languages = language_set(languages)

    def setup(self) -> None:
        english()

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lines = get_stats(doc).splitlines
        count_sentences = english().count_sentences if self.min_num_sentences != -1 else None
        max_len = self.max_word_length
        min_words = self.min_words_per_line
        end_marks = self.end_marks
        after = self.count_words_after_citations
        kept: list[str] = []
        n_sent = 0
        too_long = no_punct = too_short = js = policy = 0
        reason = None
        for line in lines:
            line = line.strip()
            words = line.split()
            if max_len != -1 and words and max(map(len, words)) > max_len:
                too_long += 1
                continue
            if self.remove_citations and "[" in line:
                line = CITATION_RE.sub("", line)
                if after:
                    words = line.split()
            if self.filter_no_terminal_punct and (not line.endswith(end_marks) or line.endswith(ELLIPSIS)):
                no_punct += 1
                continue
            if len(words) < min_words:
                too_short += 1
                continue
            low = line.lower()
            if self.filter_lorem_ipsum and "lorem ipsum" in low:
                reason = "lorem_ipsum"
                break
            if self.filter_javascript and "javascript" in low:
                js += 1
                continue
            if self.filter_curly_bracket and "{" in line:
                reason = "curly_bracket"
                break
            if self.filter_policy and any(p in low for p in POLICY_SUBSTRINGS):
                policy += 1
                continue
            if count_sentences is not None:
                n_sent += count_sentences(line)
            kept.append(line)

        s = self.signals(doc)
        s["lines"] = len(lines)
        s["kept_lines"] = len(kept)
        s["kept_line_ratio"] = len(kept) / len(lines) if lines else 0.0
        s["sentences"] = n_sent
        s["javascript_lines"] = js
        s["policy_lines"] = policy
        s["no_terminal_punct_lines"] = no_punct
        s["too_short_lines"] = too_short
        s["too_long_word_lines"] = too_long
        if reason is not None:
            return False, reason
        if n_sent < self.min_num_sentences:
            return False, "too_few_sentences"
        if self.rewrite_text:
            doc.text = "\n".join(kept).strip()
        return True
