"""Read one shard into Documents, whatever the engine (datatrove steps and Beam DoFns both use it)."""

from __future__ import annotations

import logging
import time
from typing import Any

import fsspec
from datatrove.data import Document, DocumentsPipeline

from corpusmill.curation.document import EVENT, SHARD_END, new_document, reject
from corpusmill.curation.readers import get_reader
from corpusmill.pipelines.inputs import Shard
from corpusmill.pipelines.progress import Progress

log = logging.getLogger("corpusmill")


class _CountingReader:
    """Wraps a raw file object to know how many bytes were consumed (for progress)."""

    def __init__(self, fh) -> None:
        self._fh = fh
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        b = self._fh.read(n)
        self.pos += len(b)
        return b

    def readinto(self, buf) -> int:
        n = self._fh.readinto(buf)
        self.pos += n or 0
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def read_shard(shard: Shard, progress: Progress | None = None) -> DocumentsPipeline:
    """All records of one shard as Documents, ending with an enriched shard-end event. Never raises."""
    started = time.time()
    reader = get_reader(shard.reader, **shard.options)
    n_since = 0
    counting = None
    try:
        fh = fsspec.open(shard.path, "rb").open()
    except Exception as e:  # unreadable file: one errored record, so it shows in the accounting
        log.warning("cannot open %s: %r", shard.path, e)
        doc = new_document("", shard.source_file, 0, source_kind=reader.source_kind)
        yield reject(doc, "read", "unreadable_file", error=repr(e)[:2000])
        docs = iter([Document(text="", id=f"{shard.source_file}#end", metadata={EVENT: SHARD_END, "source_file": shard.source_file, "read": 1})])
    else:
        counting = _CountingReader(fh)
        docs = reader.documents(counting, shard.path, shard.source_file)
    try:
        for doc in docs:
            if doc.metadata.get(EVENT) == SHARD_END:
                doc.metadata.update(
                    input_path=shard.path,
                    reader=shard.reader,
                    source_kind=reader.source_kind,
                    input_bytes=shard.size,
                    started_at=started,
                    stage_seconds={"read": time.time() - started},
                )
            elif progress is not None:
                n_since += 1
                if n_since >= 64:
                    progress.update(n_since, counting.pos if counting else 0)
                    n_since = 0
            yield doc
    finally:
        if counting is not None:
            counting.close()
    if progress is not None:
        progress.docs += n_since
        progress.shard_finished(shard.size)
