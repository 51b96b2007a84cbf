"""Model-based quality filter (``quality``): a fastText classifier of "reference-like" vs crawl text, in
the manner of GPT-3's and DCLM's quality classifiers, trained offline on the user's own data with
``corpusmill train-quality``.

The score is P(``__label__hq``) on the first ``max_chars`` characters, preprocessed as at training time
(the model's ``<stem>.quality.json`` sidecar). Three ways to cut: ``threshold`` (score >= t);
``top_fraction_per_shard`` (the best X % of each input shard, decided when the shard is complete);
``top_fraction_of_training_crawl`` (a fixed threshold: the (1 - X) quantile of the held-out crawl
scores in the sidecar). ``action: tag`` only records the score. ``model: null`` is the shipped model
(``curation/data/quality_en.ftz``). Recipe, modes and measured separation: docs/filters.md.
"""

from __future__ import annotations

import json
import math
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


def keep_count(n: int, fraction: float) -> int:
    """How many of a shard's ``n`` scored documents ``top_fraction_per_shard`` keeps: ceil(fraction * n)
    (a shard with any document keeps at least one; 1e-9 absorbs float error, 0.3 * 10 = 3.0000000000000004)."""
    return min(n, math.ceil(fraction * n - 1e-9))


def _fraction(name: str, v: Any) -> None:
    if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1):
        raise ValueError(f"{name} must be a number in (0, 1], got {v!r}")


class QualityClassifier(Filter):
    """Score documents with a fastText quality model; keep the good ones.

    Args:
        model: a model written by ``corpusmill train-quality`` (its sidecar beside it), a local path or a
            URL (``gs://``, ``s3://`` ...: fetched with its sidecar on the worker); None = shipped.
        threshold: keep documents with score >= threshold (default: the model's, 0.5 for the shipped one).
        top_fraction_per_shard: keep the best ``x`` of each input shard's judged documents
            (``ceil(x * n)``; ties by position in the shard, then id). The engines hold a shard until its
            end to decide it (``per_shard``).
        top_fraction_of_training_crawl: a fixed threshold instead: the (1 - x) quantile of the model's
            held-out crawl scores, so about ``x`` of text like that crawl passes (what ``top_fraction`` was).
        action: ``"drop"`` (reason ``low_quality``) or ``"tag"`` (score only).
        batch_size: documents per fastText call.
        top_fraction: removed (it was ambiguous); naming it is an error that says which key to use.

    Sets ``metadata["quality_score"]``; signal ``quality.score``.
    """

    name = "quality"
    THRESHOLDS = {"score": [("min", "threshold")]}

    def __init__(
        self,
        model: str | None = None,
        threshold: float | None = None,
        top_fraction_per_shard: float | None = None,
        top_fraction_of_training_crawl: float | None = None,
        action: str = "drop",
        batch_size: int = 256,
        languages: Iterable[str] | str | None = None,
        top_fraction: float | None = None,
    ):
        if top_fraction is not None:
            raise ValueError(
                "top_fraction is ambiguous and no longer accepted: write top_fraction_per_shard: X (the best X "
                "of each input shard) or top_fraction_of_training_crawl: X (the former top_fraction: a fixed "
                "threshold from the model's training crawl)")
        if action not in ("drop", "tag"):
            raise ValueError(f"action must be 'drop' or 'tag', got {action!r}")
        given = [k for k, v in (("threshold", threshold), ("top_fraction_per_shard", top_fraction_per_shard),
                                ("top_fraction_of_training_crawl", top_fraction_of_training_crawl)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"give one of threshold, top_fraction_per_shard, top_fraction_of_training_crawl, not {' and '.join(given)}")
        if threshold is not None and not (isinstance(threshold, (int, float)) and 0 <= threshold <= 1):
            raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
        _fraction("top_fraction_per_shard", top_fraction_per_shard)
        _fraction("top_fraction_of_training_crawl", top_fraction_of_training_crawl)
        self.model = str(model) if model else str(SHIPPED_MODEL)
        self.action = action
        self.batch_size = max(1, int(batch_size))
        self.top_fraction_per_shard = top_fraction_per_shard
        self.top_fraction_of_training_crawl = top_fraction_of_training_crawl
        self.per_shard = action == "drop" and top_fraction_per_shard is not None
        self._threshold_param = threshold
        self.threshold: float | None = None
        self.meta: dict[str, Any] | None = None
        self._model = None
        self.languages = language_set(languages)
        if "://" in self.model and not self.model.startswith("file://"):
            return  # a staged or remote model: fetched with its sidecar in setup(), on the worker
        self.model = self.model.removeprefix("file://")
        path = Path(self.model)
        if not path.is_file():
            raise ValueError(f"model: no such file {self.model!r} (train one with corpusmill train-quality)")
        if not sidecar_path(path).is_file():
            raise ValueError(f"model: {sidecar_path(path).name} missing next to {path.name} (written by train-quality)")
        self._load_meta(path)

    @property
    def model_path(self) -> Path:
        return Path(self.model)

    def _load_meta(self, path: Path) -> None:
        self.meta = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
        pre = self.meta.get("preprocessing", {})
        self.max_chars = int(pre.get("max_chars", 10_000))
        self.lowercase = bool(pre.get("lowercase", True))
        threshold = self._threshold_param
        if self.top_fraction_of_training_crawl is not None:
            threshold = self.crawl_quantile(1 - self.top_fraction_of_training_crawl)
        elif threshold is None:
            threshold = float(self.meta.get("default_threshold", 0.5))
        self.threshold = float(threshold) if self.action == "drop" and not self.per_shard else None

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
        if self._model is not None:
            return
        if self.meta is None:  # remote: the local copy comes with its sidecar (corpusmill.curation.assets)
            from corpusmill.curation.assets import localize

            path = localize(self.model)
            if not sidecar_path(path).is_file():
                raise FileNotFoundError(f"{sidecar_path(path).name} missing next to {self.model}")
            self.model = str(path)
            self._load_meta(path)
        import fasttext

        self._model = fasttext.load_model(self.model)

    def score(self, text: str) -> float:
        return self.score_many([text])[0]

    def score_many(self, texts: list[str]) -> list[float]:
        """P(``__label__hq``) of each text, one fastText call for the list."""
        if self._model is None:
            self.setup()
        labels, probs = self._model.predict([prepare(t, self.max_chars, self.lowercase) for t in texts], k=2)
        out = []
        for lab, pr in zip(labels, probs):
            p = dict(zip(lab, pr))
            out.append(float(min(1.0, max(0.0, p.get(POSITIVE, 1.0 - p.get(NEGATIVE, 1.0))))))
        return out

    def _scores(self, docs: list[Document]) -> list[Any]:
        """A score per document, or the exception that document raised (a failing batch is retried one by one)."""
        out: list[Any] = []
        for i in range(0, len(docs), self.batch_size):
            part = docs[i : i + self.batch_size]
            try:
                out += self.score_many([d.text for d in part])
            except Exception:
                for d in part:
                    try:
                        out.append(self.score(d.text))
                    except Exception as e:
                        out.append(e)
        return out

    def _tag(self, doc: Document, s: float) -> None:
        doc.metadata["quality_score"] = s
        self.signals(doc)["score"] = s

    def _verdict(self, doc: Document, s: float) -> bool | tuple[bool, str]:
        self._tag(doc, s)
        if self.action == "drop" and s < self.threshold:
            return False, "low_quality"
        return True

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self.per_shard:
            raise RuntimeError("top_fraction_per_shard decides whole shards: run the stage through an engine (filter_shard)")
        return self._verdict(doc, self.score(doc.text))

    def filter_batch(self, docs: list[Document]) -> list[Any]:
        if self.per_shard:
            return self.filter_shard(docs)
        return [s if isinstance(s, BaseException) else self._verdict(d, s) for d, s in zip(docs, self._scores(docs))]

    def filter_shard(self, docs: list[Document]) -> list[Any]:
        """Keep the ``keep_count`` best-scoring documents of the shard; ties go to the earlier position."""
        if not self.per_shard:
            return self.filter_batch(docs)
        scores = self._scores(docs)
        ok = [i for i, s in enumerate(scores) if not isinstance(s, BaseException)]
        ranked = sorted(ok, key=lambda i: (-scores[i], _position(docs[i]), str(docs[i].id)))
        keep = set(ranked[: keep_count(len(ok), self.top_fraction_per_shard)])
        out: list[Any] = []
        for i, (d, s) in enumerate(zip(docs, scores)):
            if isinstance(s, BaseException):
                out.append(s)
                continue
            self._tag(d, s)
            out.append(True if i in keep else (False, "low_quality"))
        return out


def _position(doc: Document) -> int:
    try:
        return int(doc.metadata.get("position", 0))
    except (TypeError, ValueError):
        return 0
