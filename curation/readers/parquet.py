"""Parquet documents: one row is one candidate record, read in small batches.

``text_column`` (default ``text``) holds the text; ``id_column`` (default ``id``) is kept as metadata
``original_id``, ``url_column`` (default ``url``) as ``url`` and ``title_column`` (default ``title``)
as ``title``; other columns (all, or the ones
named in ``metadata_columns``) are kept in metadata under their names, except corpusmill's reserved
keys. Values are made JSON-friendly (timestamps as ISO strings, binary as UTF-8 text).

A file without the text column gives ONE error record (``missing_text_column``) for the shard; a file
that is not Parquet, ``corrupt_parquet``; a row group that cannot be read gives one error record at
its first unread row and reading goes on with the next row group (later rows keep their positions,
which are row numbers in the file). A null text is ``missing_text_field``.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import logging
import shutil
import tempfile
from typing import Any, BinaryIO, Iterator

from corpusmill.curation.document import RESERVED_KEYS
from corpusmill.curation.readers.base import Reader, Record, register

log = logging.getLogger("corpusmill")

_OWN_KEYS = frozenset({"original_id", "source_kind", "source_file", "position"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _seekable(raw: BinaryIO) -> BinaryIO:
    """Parquet needs random access (the footer is at the end): spool a plain stream to a temp file."""
    try:
        if raw.seekable():
            return raw
    except (AttributeError, OSError, ValueError):
        pass
    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    shutil.copyfileobj(raw, spool, 1 << 20)
    spool.seek(0)
    return spool


@register
class ParquetReader(Reader):
    """Options: ``text_column``, ``id_column``, ``url_column``, ``title_column``, ``metadata_columns`` (None = all),
    ``batch_size`` (rows per batch, default 256), ``source_kind`` (default ``parquet``)."""

    name = "parquet"
    source_kind = "parquet"
    default_globs = ("*.parquet",)

    def __init__(
        self,
        *,
        text_column: str = "text",
        id_column: str | None = "id",
        url_column: str | None = "url",
        title_column: str | None = "title",
        metadata_columns: list[str] | None = None,
        batch_size: int = 256,
        source_kind: str | None = None,
        **rest,
    ) -> None:
        super().__init__(**rest)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise TypeError(f"batch_size must be a positive int, got {batch_size!r}")
        self.text_column = text_column
        self.id_column = id_column
        self.url_column = url_column
        self.title_column = title_column
        self.metadata_columns = list(metadata_columns) if metadata_columns is not None else None
        self.batch_size = batch_size
        if source_kind:
            self.source_kind = source_kind

    def records(self, raw: BinaryIO, path: str) -> Iterator[Record]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(_seekable(raw))
        except Exception as e:  # not Parquet, truncated footer, ...
            yield Record(0, drop_reason="corrupt_parquet", error=f"cannot open Parquet file: {type(e).__name__}: {e}")
            return
        names = pf.schema_arrow.names
        if self.text_column not in names:
            yield Record(
                0,
                drop_reason="missing_text_column",
                error=f"no column {self.text_column!r} (columns: {', '.join(names)})",
            )
            return
        extra = [c for c in (self.metadata_columns if self.metadata_columns is not None else names) if c in names]
        own = (self.id_column, self.url_column, self.title_column)
        extra = [c for c in extra if c != self.text_column and c not in own]
        extra = [c for c in extra if c not in RESERVED_KEYS and c not in _OWN_KEYS and not c.startswith("cm_")]
        columns = [self.text_column, *(c for c in own if c and c in names), *extra]
        position = 0
        for rg in range(pf.num_row_groups):
            first = position
            rows = pf.metadata.row_group(rg).num_rows
            try:
                for batch in pf.iter_batches(batch_size=self.batch_size, row_groups=[rg], columns=columns):
                    for row in batch.to_pylist():
                        yield self._record(position, row, extra)
                        position += 1
            except Exception as e:  # a damaged row group: one error record, then the next group
                if position < first + rows:
                    yield Record(position, drop_reason="corrupt_parquet", error=f"row group {rg}: {type(e).__name__}: {e}")
                else:  # every row was read: nothing lost
                    log.warning("%s: row group %d: %r after its last row", path, rg, e)
            position = first + rows

    def _record(self, position: int, row: dict, extra: list[str]) -> Record:
        md: dict[str, Any] = {c: _jsonable(row[c]) for c in extra}
        if self.id_column and row.get(self.id_column) is not None:
            md["original_id"] = _jsonable(row[self.id_column])
        for column, key in ((self.url_column, "url"), (self.title_column, "title")):
            if column and row.get(column) is not None:
                md[key] = _jsonable(row[column])
        text = row[self.text_column]
        if text is None:
            return Record(position, metadata=md, drop_reason="missing_text_field", error=f"null {self.text_column!r}")
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        elif not isinstance(text, str):
            return Record(position, metadata=md, drop_reason="bad_text_field", error=f"{self.text_column!r} is a {type(text).__name__}")
        return Record(position, text=text, metadata=md)


__all__ = ["ParquetReader"]
