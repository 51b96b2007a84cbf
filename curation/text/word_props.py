"""Per distinct word, memoised: does it have a character outside datatrove's PUNCTUATION_SET, a letter."""


from __future__ import annotations


from corpusmill.curation.text.memo import Memo


def _punctuation_set() -> frozenset[str]:
    from datatrove.utils.text import PUNCTUATION_SET

    return frozenset(PUNCTUATION_SET)


_PUNCT_SET = _punctuation_set()


# per distinct word: has a character outside datatrove's PUNCTUATION_SET / an alphabetic character
NON_SYMBOL = Memo(lambda w: any(ch not in _PUNCT_SET for ch in w))
HAS_ALPHA = Memo(lambda w: any(ch.isalpha() for ch in w))
