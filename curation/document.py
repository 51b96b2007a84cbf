"""Document conventions shared by every stage and engine.

We use datatrove's :class:`~datatrove.data.Document` as is; corpusmill's bookkeeping lives in reserved
``metadata`` keys prefixed ``cm_`` (so any datatrove step can sit between ours): ``cm_status``
(``"dropped"`` / ``"error"`` once rejected; rejected documents keep flowing, skipped by stages, so the
sink accounts for every record), ``cm_stage`` / ``cm_reason`` / ``cm_error``, and ``cm_event`` (a
text-less shard control record, so even an empty shard gets its manifest row); plus the provenance keys
(``source_kind``, ``source_file``, ``position``, ``url``, ``title``) and ``signals`` (name -> float).
Details: docs/architecture.md, "Document conventions".
"""

from __future__ import annotations

import hashlib
from typing import Any

from datatrove.data import Document

STATUS = "cm_status"
STAGE = "cm_stage"
REASON = "cm_reason"
ERROR = "cm_error"
EVENT = "cm_event"
SIGNALS = "signals"

DROPPED = "dropped"
ERRORED = "error"

SHARD_END = "shard_end"

# keys that are not copied into metadata_json when a document is written
RESERVED_KEYS = frozenset(
    {
        STATUS,
        STAGE,
        REASON,
        ERROR,
        EVENT,
        SIGNALS,
        "source_kind",
        "source_file",
        "position",
        "url",
        "title",
        "language",
        "language_score",
        "toxicity",
        "dedup_cluster",
        "dedup_cluster_size",
        "input_path",
        "reader",
    }
)


def stable_id(source_file: str, position: int) -> str:
    """Id derived from the shard's relative path and the record's position in it (16 hex digits)."""
    h = hashlib.blake2b(f"{source_file}\x00{position}".encode(), digest_size=8)
    return h.hexdigest()


def new_document(text: str, source_file: str, position: int, **metadata: Any) -> Document:
    metadata["source_file"] = source_file
    metadata["position"] = position
    return Document(text=text, id=stable_id(source_file, position), metadata=metadata)


def is_alive(doc: Document) -> bool:
    """True for a real document no stage has rejected yet."""
    md = doc.metadata
    return STATUS not in md and EVENT not in md


def is_event(doc: Document) -> bool:
    return EVENT in doc.metadata


def reject(doc: Document, stage: str, reason: str, *, error: str | None = None) -> Document:
    """Mark ``doc`` as dropped by ``stage`` for ``reason`` (or errored, when ``error`` is given)."""
    md = doc.metadata
    md[STATUS] = ERRORED if error is not None else DROPPED
    md[STAGE] = stage
    md[REASON] = reason
    if error is not None:
        md[ERROR] = error
    return doc


def signals(doc: Document) -> dict[str, float]:
    """The document's signal dict, created on first use."""
    s = doc.metadata.get(SIGNALS)
    if s is None:
        s = doc.metadata[SIGNALS] = {}
    return s
