"""The word split of every language but English: a regex split close to spaCy's affix rules, each
Han / Hiragana / Katakana character a word of its own."""

from __future__ import annotations

from typing import Any

import regex  # (datatrove depends on it)

from corpusmill.curation.text.languages import normalize_language


_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
_EDGE = rf"[^\p{{L}}\p{{M}}\p{{N}}_\s{_CJK}]"  # punctuation, symbols, controls, ...
_GENERIC = regex.compile(
    rf"[{_CJK}]"  # one character, one word
    rf"|(?!{_EDGE})[^\s{_CJK}](?:[^\s{_CJK}]*(?<!{_EDGE}))?"  # a word: from and to a letter/mark/digit
    rf"|({_EDGE})\1*"  # a run of one repeated punctuation / symbol / control character
)


def generic_words(text: str) -> list[str]:
    """Language-neutral word split for non-English text (see the module docstring)."""
    return [m.group() for m in _GENERIC.finditer(text)]


def uses_english_rules(language: Any) -> bool:
    """Missing language or English -> the spaCy-equivalent English split (datatrove's default)."""
    return normalize_language(language) in (None, "en")
