"""Parquet writers whose files appear atomically.

Rows go to ``<dir>/.tmp-<name>-<token>`` and the file is renamed to ``<dir>/<name>`` only when it is
complete, so a crash never leaves a partial file under a final name; leftovers of a crashed run are
removed by :func:`remove_stale_temporaries` when the shard is written again. Paths may be local or
fsspec URLs (a rename on an object store is a copy + delete: still never a partial final object).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from corpusmill.curation.arrow_rows import table_from_rows

TMP_PREFIX = ".tmp-"


def _codec(compression: str) -> str | None:
    return None if compression == "none" else compression


class AtomicParquetWriter:
    """Buffer rows, write row groups of ``row_group_size`` rows, publish on :meth:`close`."""

    def __init__(
        self,
        directory: str,
        name: str,
        schema: pa.Schema,
        compression: str = "zstd",
        row_group_size: int = 5000,
    ) -> None:
        self.fs, self.dir = fsspec.core.url_to_fs(directory)
        self.fs.makedirs(self.dir, exist_ok=True)
        self.final = f"{self.dir}/{name}"
        self.tmp = f"{self.dir}/{TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        self.schema = schema
        self.row_group_size = row_group_size
        self._fh = self.fs.open(self.tmp, "wb")
        self._writer = pq.ParquetWriter(self._fh, schema, compression=_codec(compression))
        self._rows: list[dict[str, Any]] = []
        self.rows_written = 0

    def write(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.row_group_size:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(table_from_rows(self._rows, self.schema))  # (pa.array would import pandas)
            self.rows_written += len(self._rows)
            self._rows = []

    def close(self) -> str:
        """Write what is buffered, close, and rename into place. Returns the final path."""
        self._flush()
        self._writer.close()
        self._fh.close()
        if isinstance(self.fs, LocalFileSystem):
            os.replace(self.tmp, self.final)
        else:
            self.fs.mv(self.tmp, self.final)
        return self.final

    def abort(self) -> None:
        try:
            self._writer.close()
            self._fh.close()
        finally:
            if self.fs.exists(self.tmp):
                self.fs.rm(self.tmp)


def remove_stale_temporaries(directory: str, name: str) -> None:
    """Delete ``.tmp-<name>-*`` leftovers of an interrupted write."""
    fs, d = fsspec.core.url_to_fs(directory)
    if not fs.exists(d):
        return
    for p in fs.glob(f"{d}/{TMP_PREFIX}{name}-*"):
        fs.rm(p)


def write_table_atomic(directory: str, name: str, table: pa.Table, compression: str = "zstd") -> str:
    w = AtomicParquetWriter(directory, name, table.schema, compression, max(1, table.num_rows))
    w._writer.write_table(table)
    w.rows_written = table.num_rows
    return w.close()
