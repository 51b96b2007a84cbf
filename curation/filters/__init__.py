"""Heuristic quality filters (corpusmill :class:`corpusmill.curation.stage.Filter` stages).

:class:`GopherQuality` (``gopher_quality``), :class:`GopherRepetition` (``gopher_repetition``),
:class:`C4Quality` (``c4``), :class:`FineWebQuality` (``fineweb``), :class:`StopWords` (``stop_words``)
and :class:`TokenToWordRatio` (``token_ratio``, ours). Model-based and safety stages are imported from
their modules: ``url.URLFilter``, ``quality.QualityClassifier``, ``decontamination.Decontaminate``,
``pii.PII``. All share one word / line / paragraph split per document (:mod:`corpusmill.curation.text`)
and record signals as ``<stage>.<signal>``. Sources and thresholds: docs/filters.md.
"""

from corpusmill.curation.filters.c4 import C4Quality
from corpusmill.curation.filters.fineweb import FineWebQuality
from corpusmill.curation.filters.gopher_quality import GopherQuality
from corpusmill.curation.filters.gopher_repetition import GopherRepetition
from corpusmill.curation.filters.stop_words import StopWords
from corpusmill.curation.filters.token_ratio import TokenToWordRatio

__all__ = [
    "C4Quality",
    "FineWebQuality",
    "GopherQuality",
    "GopherRepetition",
    "StopWords",
    "TokenToWordRatio",
]
