"""The two kinds of curation stage.

A :class:`Filter` looks at one document and answers keep (``True``) or drop (``False`` or
``(False, reason)``), datatrove's convention; it records measurements with ``self.signals(doc)`` and
says where it cuts them in ``THRESHOLDS``, and knows nothing about executors, files or other documents.
A :class:`Transform` rewrites a document in place (HTML -> text, language tagging, toxicity scoring)
and may reject it by returning a reason string.

:func:`apply_stage` is the one place that runs a stage on a document: engines call it, it turns
exceptions into counted errors so one bad document never stops a run, and a document outside a stage's
``languages`` or ``sources`` scope passes untouched. Stages with ``batch_size > 1`` (model scorers) are
fed lists through :func:`apply_stage_batch`, with the same results and error accounting. A filter with
``per_shard`` set (keep the top X % of each shard) decides a shard's documents together: both engines pass
each shard, in position order and ending with its shard-end event, through :func:`apply_stage_per_shard`.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from datatrove.data import Document

from corpusmill.curation.document import EVENT, SHARD_END, is_alive, reject, signals
from corpusmill.curation.text.doc_stats import drop_stats
from corpusmill.curation.text.languages import in_scope

log = logging.getLogger("corpusmill")


class SignalWriter:
    """``doc``'s signals under the stage's prefix: ``w["words"] = 3`` stores ``"<stage>.words": 3.0``."""

    __slots__ = ("_s", "_prefix")

    def __init__(self, store: dict, prefix: str) -> None:
        self._s = store
        self._prefix = prefix

    def __setitem__(self, key: str, value: float) -> None:
        self._s[self._prefix + key] = float(value)


def rule_on(v: Any) -> bool:
    """Stages switch a rule off with None / 0 (datatrove's convention) or -1 (C4)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v not in (0, -1) and math.isfinite(v)


class Stage:
    #: name used in the accounting (dropped-by-stage) and in recipes
    name: str = "stage"
    #: normalised language codes this stage applies to (None: every document; a missing language is English)
    languages: frozenset[str] | None = None
    #: documents per ``filter_batch`` / ``transform_batch`` call the engines hand over (1: one at a time)
    batch_size: int = 1
    #: ``source_kind`` values (web, book, wikipedia, ...) this stage applies to (None: every document).
    #: Set from a recipe's ``sources:`` by :func:`corpusmill.curation.registry.build_stage`.
    sources: frozenset[str] | None = None
    #: True: a filter whose verdicts depend on the whole shard (e.g. keep the best X % of it); the engines then
    #: hold a shard's documents and hand the ones it judges to ``filter_shard`` in one call at the shard's end
    per_shard: bool = False

    def setup(self) -> None:
        """Load models or other heavy state. Called once per worker before the first document."""

    def applies_to(self, doc: Document) -> bool:
        return in_scope(doc, self.languages)

    def signals(self, doc: Document) -> SignalWriter:
        return SignalWriter(signals(doc), self.name + ".")

    #: signal (without the stage prefix) -> [(``"min"`` | ``"max"``, parameter attribute)]: where the filter
    #: cuts its signals; stats and the report draw these lines
    THRESHOLDS: ClassVar[dict[str, list[tuple[str, str]]]] = {}

    def thresholds(self) -> dict[str, list[tuple[str, float, str]]]:
        """signal -> [(kind, value, parameter)] for the rules that are on with this filter's parameters."""
        out = {}
        for sig, specs in self.THRESHOLDS.items():
            lines = [(kind, float(v), attr) for kind, attr in specs if rule_on(v := getattr(self, attr, None))]
            if lines:
                out[sig] = lines
        return out


class Filter(Stage):
    name = "filter"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:  # pragma: no cover - interface
        raise NotImplementedError

    def filter_batch(self, docs: list[Document]) -> list[Any]:
        """One verdict per document (as :meth:`filter`), or an exception instance for a document that failed.
        Override to score a batch in one call; if it raises, no document may have been changed yet."""
        return [self.filter(d) for d in docs]

    def filter_shard(self, docs: list[Document]) -> list[Any]:
        """With ``per_shard``: one verdict per document of a whole shard (those it judges, in position
        order), or an exception instance for a document that failed."""
        return self.filter_batch(docs)


class Transform(Stage):
    name = "transform"

    def transform(self, doc: Document) -> str | None:  # pragma: no cover - interface
        """Change ``doc`` in place; return None to keep it or a drop reason."""
        raise NotImplementedError

    def transform_batch(self, docs: list[Document]) -> list[Any]:
        """One result per document (as :meth:`transform`), or an exception instance for a failed document.
        Override to work on a batch in one call; if it raises, no document may have been changed yet."""
        return [self.transform(d) for d in docs]


def _record(stage: Stage, doc: Document, result: Any) -> None:
    """Apply a filter verdict or a transform result to ``doc``."""
    if isinstance(stage, Filter):
        if isinstance(result, tuple):
            keep, reason = result[0], (result[1] if len(result) > 1 else None)
        else:
            keep, reason = bool(result), None
        if not keep:
            reject(doc, stage.name, str(reason) if reason else stage.name)
    elif result:  # a reason is a string; anything else truthy still drops, named by its str()
        reject(doc, stage.name, result if isinstance(result, str) else str(result))


def _record_error(stage: Stage, doc: Document, e: BaseException) -> None:
    log.warning(
        "stage %s failed on %s (%s #%s): %r",
        stage.name,
        doc.id,
        doc.metadata.get("source_file"),
        doc.metadata.get("position"),
        e,
    )
    reject(
        doc,
        stage.name,
        f"exception:{type(e).__name__}",
        error="".join(traceback.format_exception_only(type(e), e)).strip()[:2000],
    )


def in_stage_scope(stage: Stage, doc: Document) -> bool:
    """Whether ``stage`` judges ``doc``: its ``sources`` and its ``languages`` scope (both engines ask this)."""
    return in_sources(doc, getattr(stage, "sources", None)) and stage.applies_to(doc)


def in_sources(doc: Document, sources: frozenset[str] | None) -> bool:
    """Whether a stage restricted to ``sources`` (None = all) applies to ``doc`` (its ``source_kind``;
    a document without one only meets an unrestricted stage)."""
    return sources is None or doc.metadata.get("source_kind") in sources


def apply_stage(stage: Stage, doc: Document) -> Document:
    """Run ``stage`` on ``doc`` (skipping rejected docs and control records). Never raises."""
    if not is_alive(doc) or not in_stage_scope(stage, doc):
        return doc
    try:
        _record(stage, doc, stage.filter(doc) if isinstance(stage, Filter) else stage.transform(doc))
    except Exception as e:  # one bad document must not stop the run: count it, log it, go on
        _record_error(stage, doc, e)
    return doc


def apply_stage_batch(stage: Stage, docs: list[Document]) -> list[Document]:
    """Run ``stage`` on the live, in-scope documents of ``docs`` in one ``filter_batch`` /
    ``transform_batch`` call; returns ``docs`` (same order). Never raises. Results are those of
    :func:`apply_stage` one by one: a document the batch reports as failed becomes a counted error, and if
    the batch call itself raises, its documents are run one at a time so only the bad one errors."""
    todo = [d for d in docs if is_alive(d) and in_stage_scope(stage, d)]
    if not todo:
        return docs
    try:
        results = stage.filter_batch(todo) if isinstance(stage, Filter) else stage.transform_batch(todo)
        if len(results) != len(todo):
            raise ValueError(f"batch call returned {len(results)} results for {len(todo)} documents")
    except Exception as e:  # find the bad document(s): one at a time, each failure a counted error
        log.warning("stage %s failed on a batch of %d documents (%r); running them one at a time", stage.name, len(todo), e)
        for d in todo:
            apply_stage(stage, d)
        return docs
    for d, r in zip(todo, results):
        if isinstance(r, BaseException):
            _record_error(stage, d, r)
            continue
        try:
            _record(stage, d, r)
        except Exception as e:
            _record_error(stage, d, e)
    return docs


def apply_stage_shard(stage: Filter, docs: list[Document]) -> list[Document]:
    """Run a ``per_shard`` filter on the live, in-scope documents of one whole shard in one ``filter_shard``
    call; returns the documents it judged. Never raises: if the call itself fails, each of them is a counted
    error (verdicts that depend on the whole shard cannot be recovered one document at a time)."""
    todo = [d for d in docs if is_alive(d) and in_stage_scope(stage, d)]
    if not todo:
        return todo
    try:
        results = stage.filter_shard(todo)
        if len(results) != len(todo):
            raise ValueError(f"shard call returned {len(results)} results for {len(todo)} documents")
    except Exception as e:
        results = [e] * len(todo)
    for d, r in zip(todo, results):
        try:
            if isinstance(r, BaseException):
                raise r
            _record(stage, d, r)
        except Exception as e:
            _record_error(stage, d, e)
    return todo


def apply_stage_per_shard(stage: Filter, docs: Iterable[Document], seconds: dict[str, float] | None = None) -> Iterator[Document]:
    """``docs`` (one or more shards, each in position order and ending with its shard-end event) through a
    ``per_shard`` filter, in the same order. A shard is held from the first document the stage judges to
    its end event, then decided by :func:`apply_stage_shard`; documents before that pass at once. The
    seconds spent deciding are added to ``seconds[source_file]``. Both engines call this, so their
    decisions are the same; a shard is always decided whole (a stream that stops before a shard's end
    event decides what it holds, with a warning)."""
    held: dict[str, list[Document]] = {}

    def decide(sf: str) -> list[Document]:
        shard = held.pop(sf, [])
        if shard:
            t0 = time.perf_counter()
            apply_stage_shard(stage, shard)
            if seconds is not None:
                seconds[sf] = seconds.get(sf, 0.0) + time.perf_counter() - t0
        return shard

    for doc in docs:
        md = doc.metadata
        sf = md.get("source_file")
        if md.get(EVENT) == SHARD_END:
            yield from decide(sf)
            yield doc
        elif sf in held or (is_alive(doc) and in_stage_scope(stage, doc)):
            # Hold rather than run a second pass over the shard (which would keep only scores but read it and
            # run every earlier stage twice); a held document sheds the filters' text cache, which is ~35x
            # its text (measured in docs/filters.md, "Quality classifier"), and later stages rebuild it.
            drop_stats(doc)
            held.setdefault(sf, []).append(doc)
        else:
            yield doc
    for sf in list(held):
        log.warning("stage %s: the stream ended before the end of shard %s; deciding its %d held documents",
                    stage.name, sf, len(held[sf]))
        yield from decide(sf)
