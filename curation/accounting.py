"""Per-shard accounting: read = kept + dropped (by stage and reason) + errored.

:class:`ShardSink` is the end of every pipeline, whatever the engine. It receives every record of a
shard — kept, dropped and errored alike, since stages mark rather than remove — writes the curated and
dropped Parquet files, and when the shard's end event arrives checks its own count against the
reader's and writes the shard's manifest row. The manifest is written last: its presence means the
shard is complete (engines use it to skip finished shards on a rerun).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import fsspec
import pyarrow.parquet as pq
from datatrove.data import Document

from corpusmill.curation.arrow_rows import table_from_rows
from corpusmill.curation.document import DROPPED, ERROR, ERRORED, EVENT, REASON, SHARD_END, STAGE, STATUS
from corpusmill.curation.rows import curated_row, dropped_row
from corpusmill.curation.sanitize import fix_str, sanitize
from corpusmill.curation.writers import AtomicParquetWriter, remove_stale_temporaries, write_table_atomic
from corpusmill.schemas import CURATED_SCHEMA, DROPPED_SCHEMA, MANIFEST_SCHEMA

log = logging.getLogger("corpusmill")


class AccountingError(RuntimeError):
    """The counts of a shard or run do not add up: some record was lost or counted twice."""


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def shard_key(source_file: str) -> str:
    """File-name-safe key of a shard: never contains a path separator, so it cannot escape the run dir."""
    import hashlib

    h = hashlib.blake2b(source_file.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
    readable = _UNSAFE.sub("_", source_file.replace("/", "__")).strip("._")[:150] or "shard"
    return f"{readable}-{h}"


def manifest_path(output_dir: str, source_file: str) -> str:
    return f"{output_dir.rstrip('/')}/manifest/{shard_key(source_file)}.parquet"


def shard_done(output_dir: str, source_file: str, recipe_hash: str | None = None) -> bool:
    """True when the shard's manifest exists (and was written by the same recipe, when given)."""
    path = manifest_path(output_dir, source_file)
    fs, p = fsspec.core.url_to_fs(path)
    if not fs.exists(p):
        return False
    if recipe_hash is None:
        return True
    try:
        with fs.open(p, "rb") as fh:
            row = pq.read_table(fh, columns=["recipe_hash"]).column(0)[0].as_py()
    except Exception:
        return False
    return row == recipe_hash


@dataclass
class _ShardState:
    source_file: str
    curated: AtomicParquetWriter
    dropped: AtomicParquetWriter
    started: float = field(default_factory=time.time)
    kept: int = 0
    kept_bytes: int = 0
    dropped_by: Counter = field(default_factory=Counter)
    errored_by: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def versions() -> dict[str, str]:
    from importlib import metadata
    import platform

    out = {"python": platform.python_version()}
    for dist in ("corpusmill", "datatrove", "pyarrow", "apache-beam"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


class ShardSink:
    """Writes every record of every shard it is given and accounts for them."""

    def __init__(
        self,
        output_dir: str,
        *,
        engine: str = "datatrove",
        recipe_hash: str = "",
        compression: str = "zstd",
        row_group_size: int = 5000,
        dropped_text_chars: int = 2000,
    ) -> None:
        self.output_dir = output_dir.rstrip("/")
        self.engine = engine
        self.recipe_hash = recipe_hash
        self.compression = compression
        self.row_group_size = row_group_size
        self.dropped_text_chars = dropped_text_chars
        self._shards: dict[str, _ShardState] = {}
        self._versions = versions()
        self.completed: list[dict[str, Any]] = []

    # --------------------------------------------------------------------------------------------
    def _state(self, source_file: str) -> _ShardState:
        st = self._shards.get(source_file)
        if st is None:
            key = shard_key(source_file)
            name = f"{key}.parquet"
            for sub in ("curated", "dropped"):
                remove_stale_temporaries(f"{self.output_dir}/{sub}", name)
            st = _ShardState(
                source_file,
                AtomicParquetWriter(f"{self.output_dir}/curated", name, CURATED_SCHEMA, self.compression, self.row_group_size),
                AtomicParquetWriter(f"{self.output_dir}/dropped", name, DROPPED_SCHEMA, self.compression, self.row_group_size),
            )
            self._shards[source_file] = st
        return st

    def consume(self, doc: Document) -> dict[str, Any] | None:
        """Take one record (or a shard-end event). Returns the manifest row when a shard completes."""
        md = doc.metadata
        source_file = md.get("source_file")
        if source_file is None:
            raise AccountingError(f"document {doc.id!r} has no source_file: cannot account for it")
        st = self._state(source_file)
        if md.get(EVENT) == SHARD_END:
            return self._finish(st, md)
        status = md.get(STATUS)
        if status not in (None, DROPPED, ERRORED):
            raise AccountingError(f"document {doc.id!r} has unknown status {status!r}")
        try:
            repairs = sanitize(doc)
            row = curated_row(doc) if status is None else dropped_row(doc, self.dropped_text_chars)
        except Exception as e:  # a value nothing can repair (e.g. metadata nested past the recursion limit)
            log.warning("%s: record %s cannot be written: %r", source_file, md.get("position"), e)
            doc = self._unwritable(doc, source_file, e)
            status, repairs = ERRORED, set()
            row = dropped_row(doc, self.dropped_text_chars)
        st.repaired.update(repairs)
        if status is None:
            st.curated.write(row)
            st.kept += 1
            st.kept_bytes += len(doc.text.encode("utf-8", "surrogatepass"))
        else:
            st.dropped.write(row)
            md = doc.metadata
            (st.errored_by if status == ERRORED else st.dropped_by)[(md.get(STAGE), md.get(REASON))] += 1
        return None

    @staticmethod
    def _unwritable(doc: Document, source_file: str, e: Exception) -> Document:
        try:
            position = int(doc.metadata.get("position", -1))
        except (TypeError, ValueError, OverflowError):
            position = -1
        md = {"source_file": fix_str(source_file, set()), "position": position,
              STATUS: ERRORED, STAGE: "write", REASON: "unwritable_record", ERROR: repr(e)[:2000]}
        return Document(text="", id=str(doc.id), metadata=md)

    def _finish(self, st: _ShardState, event: dict[str, Any]) -> dict[str, Any]:
        read = int(event.get("read", -1))
        dropped = sum(st.dropped_by.values())
        errored = sum(st.errored_by.values())
        if read != st.kept + dropped + errored:
            for w in (st.curated, st.dropped):
                w.abort()
            del self._shards[st.source_file]
            raise AccountingError(
                f"{st.source_file}: reader read {read} records but the sink saw kept={st.kept} "
                f"+ dropped={dropped} + errored={errored} = {st.kept + dropped + errored}"
            )
        st.curated.close()
        st.dropped.close()
        finished = time.time()
        started = float(event.get("started_at", st.started))
        row = {
            "shard": fix_str(st.source_file, set()),
            "input_path": event.get("input_path"),
            "reader": event.get("reader"),
            "source_kind": event.get("source_kind"),
            "engine": self.engine,
            "recipe_hash": self.recipe_hash,
            "read": read,
            "kept": st.kept,
            "dropped": dropped,
            "errored": errored,
            "dropped_by": [{"stage": s, "reason": r, "count": c} for (s, r), c in sorted(st.dropped_by.items())],
            "errored_by": [{"stage": s, "reason": r, "count": c} for (s, r), c in sorted(st.errored_by.items())],
            "input_bytes": event.get("input_bytes"),
            "kept_text_bytes": st.kept_bytes,
            "started_at": datetime.fromtimestamp(started, timezone.utc),
            "finished_at": datetime.fromtimestamp(finished, timezone.utc),
            "seconds": finished - started,
            "stage_seconds": sorted((event.get("stage_seconds") or {}).items()),
            "versions": sorted(self._versions.items()),
            "repaired": sorted(st.repaired.items()),
            "skipped": sorted((event.get("skipped") or {}).items()),
        }
        write_table_atomic(
            f"{self.output_dir}/manifest",
            f"{shard_key(st.source_file)}.parquet",
            table_from_rows([row], MANIFEST_SCHEMA),
            self.compression,
        )
        del self._shards[st.source_file]
        self.completed.append(row)
        return row

    def close(self) -> None:
        """End of input. A shard without its end event was cut short: that is an accounting error."""
        if self._shards:
            open_shards = ", ".join(sorted(self._shards))
            for st in self._shards.values():
                st.curated.abort()
                st.dropped.abort()
            self._shards.clear()
            raise AccountingError(f"input ended before these shards finished: {open_shards}")
