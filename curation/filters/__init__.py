"""Heuristic quality filters (corpusmill :class:`corpusmill.curation.stage.Filter` stages).

- :class:`GopherQuality` (``gopher_quality``), :class:`GopherRepetition` (``gopher_repetition``):
  Rae et al. 2021 (Gopher / MassiveText), decisions identical to datatrove's filters.
- :class:`C4Quality` (``c4``): Raffel et al. 2020 line and page rules (paper or TFDS-code thresholds).
- :class:`FineWebQuality` (``fineweb``): Penedo et al. 2024.
- :class:`StopWords` (``stop_words``): Gopher's stop-word rule for any language with a stop-word list.
- :class:`TokenToWordRatio` (``token_ratio``): subword tokens per word within per-language bounds (ours).
- Model-based and safety stages (import them from their modules): ``url.URLFilter`` (``url_filter``),
  ``quality.QualityClassifier`` (``quality``), ``decontamination.Decontaminate`` (``decontaminate``),
  ``pii.PII`` (``pii``).

All of them share one word / line / paragraph split per document (:mod:`corpusmill.curation.text`) and
record their measurements under ``metadata["signals"]["<stage>.<signal>"]``. See docs/filters.md.
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
