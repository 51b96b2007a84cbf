"""Reader interface: turn one raw shard (a byte stream) into records with provenance.

A reader streams: it never holds a whole shard in memory. It yields :class:`Record` objects in file
order; ``position`` is the ordinal of the candidate record in the shard (0, 1, 2, ...), counting
records that are dropped or errored too, so ids are stable across reruns and engines.

A record is one of:
- a document: ``text`` (and provenance ``metadata``: url, title, ...);
- read but rejected at stage ``read``: ``drop_reason`` set (e.g. a wiki redirect, a non-text WARC payload);
- errored: ``error`` set (a human message) and ``drop_reason`` the short error kind (e.g. ``corrupt_gzip``).

Corrupt input must never raise out of :meth:`Reader.records`: the reader yields an error record with
the position where it happened and carries on with the next record it can find (or ends the shard).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar, Iterator

from datatrove.data import Document

from corpusmill.curation.document import ERRORED, EVENT, SHARD_END, new_document, reject
from corpusmill.curation.sanitize import sanitize

log = logging.getLogger("corpusmill")


@dataclass
class Record:
    position: int
    text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    drop_reason: str | None = None
    error: str | None = None


class Reader:
    #: key used in recipes (``reader: warc``)
    name: ClassVar[str] = "reader"
    #: default ``source_kind`` of the documents this reader yields
    source_kind: ClassVar[str] = "text"
    #: glob patterns this reader picks up when a recipe input names a directory
    default_globs: ClassVar[tuple[str, ...]] = ("*",)

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"reader {self.name!r} got unknown option(s): {', '.join(sorted(options))}")
        #: input records of the last shard that are not candidate documents, by type (e.g. WARC ``request``):
        #: not in ``read``, reported in the shard-end event and the manifest's ``skipped`` map
        self.skipped: Counter[str] = Counter()

    def records(self, raw: BinaryIO, path: str) -> Iterator[Record]:  # pragma: no cover - interface
        """Yield the records of one shard. ``raw`` is the undecoded, still-compressed byte stream."""
        raise NotImplementedError

    # ------------------------------------------------------------------ engine-facing helpers
    def documents(self, raw: BinaryIO, path: str, source_file: str) -> Iterator[Document]:
        """Records of one shard as datatrove Documents, rejected ones marked, then a shard-end event.

        The shard-end event carries the number of records read, so the sink can check its own count, and
        the records skipped by type.
        """
        self.skipped = Counter()
        n = 0
        position = -1
        try:
            for rec in self.records(raw, path):
                n += 1
                position = rec.position
                yield self._to_document(rec, source_file)
        except Exception as e:  # a reader bug or an unforeseen corruption: count it, end the shard
            position += 1
            n += 1
            log.warning("reader %s failed in %s at record %d: %r", self.name, path, position, e)
            doc = new_document("", source_file, position, source_kind=self.source_kind)
            yield reject(doc, "read", f"reader_exception:{type(e).__name__}", error=repr(e)[:2000])
        end = {EVENT: SHARD_END, "source_file": source_file, "read": n, "skipped": dict(self.skipped)}
        yield Document(text="", id=f"{source_file}#end", metadata=end)

    def _to_document(self, rec: Record, source_file: str) -> Document:
        md = dict(rec.metadata)
        md.setdefault("source_kind", self.source_kind)
        doc = new_document(rec.text, source_file, rec.position, **md)
        try:
            sanitize(doc)  # stages see valid strings: a lone surrogate is replaced (and counted) here, not at the sink
        except Exception as e:  # e.g. metadata nested past the recursion limit: this record only
            doc = new_document("", source_file, rec.position, source_kind=md["source_kind"])
            return reject(doc, "read", "bad_metadata", error=f"metadata cannot be stored: {e!r}"[:2000])
        if rec.error is not None:
            log.warning("%s: record %d errored: %s (%s)", source_file, rec.position, rec.drop_reason, rec.error)
            reject(doc, "read", rec.drop_reason or "read_error", error=rec.error)
        elif rec.drop_reason is not None:
            reject(doc, "read", rec.drop_reason)
        return doc


REGISTRY: dict[str, type[Reader]] = {}


def register(cls: type[Reader]) -> type[Reader]:
    REGISTRY[cls.name] = cls
    return cls


__all__ = ["Record", "Reader", "register", "REGISTRY", "ERRORED"]
