"""Per-language thresholds for a filter: ``per_language:`` in a recipe.

``per_language: fineweb2`` on ``gopher_quality``, ``gopher_repetition`` or ``fineweb`` applies
FineWeb-2's published per-language values (``huggingface/fineweb-2``, ``configs/<lang>_<Script>.yml``;
shipped in ``curation/data/fineweb2_thresholds.json``); ``per_language: {de: {...}, ...}`` gives your own
table of the stage's parameters. A document whose ``metadata["language"]`` has an entry is filtered with
those overrides; any other goes to the stage as configured. Drop reasons, signals and the stage name
are the stage's own. The mapping onto our stages and the differences from FineWeb-2: docs/filters.md,
"Per-language thresholds".
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from datatrove.data import Document

from corpusmill.curation.text.languages import normalize_language
from corpusmill.curation.stage import Filter

__all__ = ["PerLanguage", "fineweb2_table", "FINEWEB2_STAGES", "resolve_table"]

TABLE_FILE = "fineweb2_thresholds.json"
#: languages written without spaces between words: our word split makes every Han/Kana character a
#: word (zh, ja) or a whole phrase one word (th, lo, km, my), while FineWeb-2 measured its values with
#: a word segmenter, so its n-gram, word-length and stop-word thresholds do not apply to our words
#: (on the shared WARC sample they dropped most Chinese pages for top-2-gram repetition). These
#: languages are left to the stage as configured.
NOT_APPLICABLE = frozenset({"zh", "ja", "th", "lo", "km", "my"})


def _repetition(t: dict) -> dict:
    return {
        "dup_line_frac": t["dup_line_frac"],
        "top_n_grams": [tuple(x) for x in t["top_n_grams"]],
        "dup_n_grams": [tuple(x) for x in t["dup_n_grams"]],
        "dup_para_frac": 0,
        "dup_line_char_frac": 0,
        "dup_para_char_frac": 0,
    }


def _fineweb(t: dict) -> dict:
    return {
        "line_punct_thr": t["line_punct_thr"],
        "new_line_ratio": t["new_line_ratio"],
        "short_line_thr": 999,  # off
        "char_duplicates_ratio": 0.1,
    }


def _gopher_quality(t: dict) -> dict:
    return {
        "min_avg_word_length": t["min_avg_word_length"],
        "max_avg_word_length": t["max_avg_word_length"],
        "min_alpha_words_ratio": t["max_non_alpha_words_ratio"],
        "stop_words": list(t["stopwords"]),
        "min_stop_words": 2,
    }


#: stage name -> FineWeb-2 table entry -> that stage's parameters
FINEWEB2_STAGES = {"gopher_repetition": _repetition, "fineweb": _fineweb, "gopher_quality": _gopher_quality}


@lru_cache(maxsize=1)
def fineweb2_table() -> dict[str, dict]:
    """lid.176 label -> FineWeb-2's values for that language (``curation/data/fineweb2_thresholds.json``)."""
    raw = resources.files("corpusmill.curation").joinpath("data", TABLE_FILE).read_text(encoding="utf-8")
    return json.loads(raw)["languages"]


def resolve_table(stage_name: str, per_language: Any) -> dict[str, dict]:
    """``per_language`` as given in a recipe -> {normalised language: parameter overrides}."""
    if isinstance(per_language, str):
        if per_language.strip().lower() != "fineweb2":
            raise ValueError(f"per_language: unknown table {per_language!r} (known: fineweb2, or a mapping "
                             "language -> parameters)")
        if stage_name not in FINEWEB2_STAGES:
            raise ValueError(f"per_language: fineweb2 has no thresholds for stage {stage_name!r} "
                             f"(it has: {', '.join(sorted(FINEWEB2_STAGES))})")
        fn = FINEWEB2_STAGES[stage_name]
        return {
            normalize_language(lang): fn(entry)
            for lang, entry in fineweb2_table().items()
            if normalize_language(lang) not in NOT_APPLICABLE
        }
    if isinstance(per_language, dict):
        out = {}
        for lang, params in per_language.items():
            code = normalize_language(lang)
            if not code or not isinstance(params, dict):
                raise ValueError(f"per_language: entry {lang!r} must map a language code to stage parameters")
            out[code] = dict(params)
        return out
    raise ValueError("per_language must be 'fineweb2' or a mapping language -> stage parameters")


class PerLanguage(Filter):
    """A filter stage with one parameter set per language (see the module docstring)."""

    def __init__(self, stage_name: str, cls: type, params: dict, per_language: Any) -> None:
        self.base = cls(**params)
        self.name = self.base.name
        self.variants: dict[str, Filter] = {}
        common = {k: v for k, v in params.items() if k != "languages"}
        for lang, overrides in resolve_table(stage_name, per_language).items():
            if "languages" in overrides:
                raise ValueError(f"per_language: {lang}: 'languages' cannot be set per language")
            try:
                self.variants[lang] = cls(**{**common, **overrides})
            except TypeError as e:
                raise ValueError(f"per_language: {lang}: {e}") from None

    def setup(self) -> None:
        self.base.setup()
        for v in self.variants.values():
            v.setup()

    def applies_to(self, doc: Document) -> bool:
        """A language of the table always; any other as the stage's own ``languages`` scope says."""
        lang = normalize_language(doc.metadata.get("language")) or "en"
        return lang in self.variants or self.base.applies_to(doc)

    def thresholds(self) -> dict[str, list[tuple[str, float, str]]]:
        return self.base.thresholds()  # the stage's own values (stats labels them as such)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lang = normalize_language(doc.metadata.get("language")) or "en"
        return self.variants.get(lang, self.base).filter(doc)

    def __getattr__(self, item: str):  # thresholds for reports: the stage's own (base) parameters
        if item in ("base", "variants"):
            raise AttributeError(item)
        return getattr(self.base, item)
