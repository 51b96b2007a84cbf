"""Model-based quality filter (``quality``): a fastText classifier of "reference-like" vs crawl text, in
the manner of GPT-3's and DCLM's quality classifiers, trained offline on the user's own data with
``corpusmill train-quality``.

The score is P(``__label__hq``) on the first ``max_chars`` characters, preprocessed as at training time
(the model's ``<stem>.quality.json`` sidecar). ``threshold`` keeps documents scoring at least that;
``top_fraction`` keeps the best X % measured against the crawl the model was trained on (the cut is
the (1 - X) quantile of its held-out crawl scores, stored in the sidecar). ``action: tag`` only
records the score. ``model: null`` is the shipped model (``curation/data/quality_en.ftz``).
Training recipe and measured separation: docs/filters.md, "Quality classifier".
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from collections.abc import Iterable
from typing import Any

from datatrove.data import Document

from corpusmill.curation.text.languages import language_set
from corpusmill.curation.stage import Filter

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SHIPPED_MODEL = DATA_DIR / "quality_en.ftz"
POSITIVE = "__label__hq"
NEGATIVE = "__label__cc"
_TOKEN = re.compile(r"\w+|[^\w\s]")


def sidecar_path(model: str | Path) -> Path:
    """``x/model.ftz`` -> ``x/model.quality.json`` (training data, preprocessing, held-out metrics)."""
    p = Path(model)
    return p.with_name(p.stem + ".quality.json")


def prepare(text: str, max_chars: int = 10_000, lowercase: bool = True) -> str:
    """One line of space-separated words and punctuation marks (training and scoring use this)."""
    text = text[:max_chars]
    if lowercase:
        text = text.lower()
    return " ".join(_TOKEN.findall(text))


class QualityClassifier(Filter):
    """Score documents with a fastText quality model; keep the good ones.

    Args:
        model: a model written by ``corpusmill train-quality`` (its sidecar beside it); None = shipped.
        threshold: keep documents with score >= threshold.
        top_fraction: instead of a threshold, keep about this share of crawl-like text (0 < x <= 1):
            the threshold becomes the (1 - x) quantile of the model's held-out crawl scores.
        action: ``"drop"`` (reason ``low_quality``) or ``"tag"`` (score only).

    Sets ``metadata["quality_score"]``; signal ``quality.score``.
    """

    name = "quality"
    THRESHOLDS = {"score": [("min", "threshold")]}

    def __init__(
        self,
        model: str | None = None,
        threshold: float | None = None,
        top_fraction: float | None = None,
        action: str = "drop",
        languages: Iterable[str] | str | None = None,
    ):
        if action not in ("drop", "tag"):
            raise ValueError(f"action must be 'drop' or 'tag', got {action!r}")
        if threshold is not None and top_fraction is not None:
            raise ValueError("give threshold or top_fraction, not both")
        if threshold is not None and not (isinstance(threshold, (int, float)) and 0 <= threshold <= 1):
            raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
        if top_fraction is not None and not (isinstance(top_fraction, (int, float)) and 0 < top_fraction <= 1):
            raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction!r}")
        self.model_path = Path(model) if model else SHIPPED_MODEL
        if not self.model_path.is_file():
            raise ValueError(f"model: no such file {str(self.model_path)!r} (train one with corpusmill train-quality)")
        side = sidecar_path(self.model_path)
        if not side.is_file():
            raise ValueError(f"model: {side.name} missing next to {self.model_path.name} (written by train-quality)")
        self.meta: dict[str, Any] = json.loads(side.read_text(encoding="utf-8"))
        pre = self.meta.get("preprocessing", {})
        self.max_chars = int(pre.get("max_chars", 10_000))
        self.lowercase = bool(pre.get("lowercase", True))
        self.top_fraction = top_fraction
        if top_fraction is not None:
            threshold = self.crawl_quantile(1 - top_fraction)
        elif threshold is None:
            threshold = float(self.meta.get("default_threshold", 0.5))
        self.threshold = float(threshold) if action == "drop" else None
        self.action = action
        self._model = None
        self.languages = language_set(languages)

    def crawl_quantile(self, q: float) -> float:
        """The ``q`` quantile of the held-out crawl scores (linear interpolation over the stored 101 points)."""
        pts = self.meta["heldout"]["negative_score_percentiles"]
        x = q * (len(pts) - 1)
        i = min(int(x), len(pts) - 2)
        return float(pts[i] + (pts[i + 1] - pts[i]) * (x - i))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_model"] = None
        return state

    def setup(self) -> None:
        if self._model is None:
            import fasttext

            self._model = fasttext.load_model(str(self.model_path))

    def score(self, text: str) -> float:
        if self._model is None:
            self.setup()
        labels, probs = self._model.predict(prepare(text, self.max_chars, self.lowercase), k=2)
        p = dict(zip(labels, probs))
        return float(min(1.0, max(0.0, p.get(POSITIVE, 1.0 - p.get(NEGATIVE, 1.0)))))

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        s = self.score(doc.text)
        doc.metadata["quality_score"] = s
        self.signals(doc)["score"] = s
        if self.action == "drop" and s < self.threshold:
            return False, "low_quality"
        return True
