"""Language codes as the filters compare them (ISO 639-3 -> 639-1, aliases) and a filter's
``languages:`` scope."""

from __future__ import annotations

import re
from typing import Any

from datatrove.data import Document


_ISO3_TO_1 = {
    "eng": "en", "ara": "ar", "arb": "ar", "bul": "bg", "cat": "ca", "ces": "cs", "cze": "cs", "dan": "da",
    "nld": "nl", "dut": "nl", "fin": "fi", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "guj": "gu",
    "heb": "he", "hin": "hi", "hun": "hu", "ind": "id", "msa": "ms", "zsm": "ms", "may": "ms", "ita": "it",
    "nob": "nb", "nor": "nb", "pol": "pl", "por": "pt", "ron": "ro", "rum": "ro", "rus": "ru", "slk": "sk",
    "slo": "sk", "spa": "es", "swe": "sv", "tur": "tr", "ukr": "uk", "vie": "vi", "fas": "fa", "pes": "fa",
    "per": "fa", "ell": "el", "gre": "el", "zho": "zh", "chi": "zh", "cmn": "zh", "jpn": "ja", "kor": "ko",
}
_LANG_ALIASES = {"no": "nb", "iw": "he", "in": "id"}


def normalize_language(code: Any) -> str | None:
    """``"en"``, ``"en-US"``, ``"eng_Latn"``, ``"ENG"`` -> ``"en"``; None/empty -> None."""
    if not code:
        return None
    base = re.split(r"[-_]", str(code).strip().lower(), maxsplit=1)[0]
    if not base:
        return None
    base = _ISO3_TO_1.get(base, base)
    return _LANG_ALIASES.get(base, base)


def in_scope(doc: Document, languages: frozenset[str] | None) -> bool:
    """Whether a filter restricted to ``languages`` (None = all) applies to ``doc``.

    A document without a language counts as English, as it does for the word split."""
    if languages is None:
        return True
    return (normalize_language(doc.metadata.get("language")) or "en") in languages


def language_set(languages) -> frozenset[str] | None:
    if languages is None:
        return None
    if isinstance(languages, str):
        languages = [languages]
    return frozenset(normalize_language(x) for x in languages)
