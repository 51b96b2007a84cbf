"""The two kinds of curation stage.

A :class:`Filter` looks at one document and answers keep (``True``) or drop (``False`` or
``(False, reason)``), datatrove's convention. It may record signals with
:func:`curation.document.signals`. It knows nothing about executors, files or other documents.

A :class:`Transform` rewrites a document in place (HTML -> text, language tagging, toxicity scoring)
and may reject it by returning a reason string.

:func:`apply_stage` is the one place that runs a stage on a document: engines call it, and it turns
exceptions into counted errors so one bad document never stops a run.
"""

from __future__ import annotations

import logging
import traceback

from datatrove.data import Document

from curation.document import is_alive, reject

log = logging.getLogger("corpusmill")


class Stage:
    #: name used in the accounting (dropped-by-stage) and in recipes
    name: str = "stage"

    def setup(self) -> None:
        """Load models or other heavy state. Called once per worker before the first document."""


class Filter(Stage):
    name = "filter"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:  # pragma: no cover - interface
        raise NotImplementedError


class Transform(Stage):
    name = "transform"

    def transform(self, doc: Document) -> str | None:  # pragma: no cover - interface
        """Change ``doc`` in place; return None to keep it or a drop reason."""
        raise NotImplementedError


def apply_stage(stage: Stage, doc: Document) -> Document:
    """Run ``stage`` on ``doc`` (skipping rejected docs and control records). Never raises."""
    if not is_alive(doc):
        return doc
    try:
        if isinstance(stage, Filter):
            verdict = stage.filter(doc)
            if isinstance(verdict, tuple):
                keep, reason = verdict[0], (verdict[1] if len(verdict) > 1 else None)
            else:
                keep, reason = bool(verdict), None
            if not keep:
                reject(doc, stage.name, str(reason) if reason else stage.name)
        else:
            reason = stage.transform(doc)
            if reason:  # a reason is a string; anything else truthy still drops, named by its str()
                reject(doc, stage.name, reason if isinstance(reason, str) else str(reason))
    except Exception as e:  # one bad document must not stop the run: count it, log it, go on
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
    return doc
